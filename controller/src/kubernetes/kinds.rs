//! The kinds the Kubernetes source watches: every kind [`crate::model::Object`] reads, each with
//! the API versions it may be served at (the first one the cluster serves is watched; the API
//! server converts stored objects to it).

use kube::discovery::ApiResource;

/// One watched kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group (`""`: core).
    pub group: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource name (plural).
    pub plural: &'static str,
    /// Namespaced (else cluster-scoped).
    pub namespaced: bool,
    /// Versions to watch, preferred first; all are versions [`crate::model::Object`] parses.
    pub versions: &'static [&'static str],
}

impl Kind {
    /// The API resource of this kind at `version`.
    pub fn api_resource(&self, version: &str) -> ApiResource {
        ApiResource {
            group: self.group.to_owned(),
            version: version.to_owned(),
            api_version: if self.group.is_empty() {
                version.to_owned()
            } else {
                format!("{}/{version}", self.group)
            },
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }

    /// `HTTPRoute.gateway.networking.k8s.io`, `Service`: how logs name the kind.
    pub fn label(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

const fn kind(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    versions: &'static [&'static str],
) -> Kind {
    Kind {
        group,
        kind,
        plural,
        namespaced,
        versions,
    }
}

const CORE: &str = "";
const GATEWAY: &str = crate::model::GATEWAY_GROUP;
const ISTIO: &str = crate::model::ISTIO_GROUP;
const ISTIO_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha3"];

/// Every kind the controller reads.
pub const WATCHED: &[Kind] = &[
    kind(CORE, "Namespace", "namespaces", false, &["v1"]),
    kind(CORE, "Service", "services", true, &["v1"]),
    kind(CORE, "Pod", "pods", true, &["v1"]),
    kind(CORE, "Secret", "secrets", true, &["v1"]),
    kind(
        crate::model::DISCOVERY_GROUP,
        "EndpointSlice",
        "endpointslices",
        true,
        &["v1"],
    ),
    kind(
        crate::model::NETWORKING_GROUP,
        "Ingress",
        "ingresses",
        true,
        &["v1"],
    ),
    kind(
        crate::model::NETWORKING_GROUP,
        "IngressClass",
        "ingressclasses",
        false,
        &["v1"],
    ),
    kind(
        GATEWAY,
        "GatewayClass",
        "gatewayclasses",
        false,
        &["v1", "v1beta1"],
    ),
    kind(GATEWAY, "Gateway", "gateways", true, &["v1", "v1beta1"]),
    kind(GATEWAY, "HTTPRoute", "httproutes", true, &["v1", "v1beta1"]),
    kind(
        GATEWAY,
        "TLSRoute",
        "tlsroutes",
        true,
        &["v1", "v1alpha3", "v1alpha2"],
    ),
    kind(
        GATEWAY,
        "ReferenceGrant",
        "referencegrants",
        true,
        &["v1", "v1beta1"],
    ),
    kind(ISTIO, "Gateway", "gateways", true, ISTIO_VERSIONS),
    kind(
        ISTIO,
        "VirtualService",
        "virtualservices",
        true,
        ISTIO_VERSIONS,
    ),
    kind(
        ISTIO,
        "DestinationRule",
        "destinationrules",
        true,
        ISTIO_VERSIONS,
    ),
    kind(
        ISTIO,
        "ServiceEntry",
        "serviceentries",
        true,
        ISTIO_VERSIONS,
    ),
    kind(ISTIO, "Sidecar", "sidecars", true, ISTIO_VERSIONS),
    kind(
        crate::model::PORTICO_GROUP,
        "PorticoConfig",
        "porticoconfigs",
        true,
        &["v1alpha1"],
    ),
];

/// The watched kind of `group`/`kind`.
pub fn find(group: &str, kind: &str) -> Option<&'static Kind> {
    WATCHED.iter().find(|k| k.group == group && k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Object, ParseMode};

    /// Every watched kind at every version it may be watched at is a kind the model reads.
    #[test]
    fn every_watched_version_parses() {
        for k in WATCHED {
            for v in k.versions {
                let ar = k.api_resource(v);
                let mut value = serde_json::json!({
                    "apiVersion": ar.api_version,
                    "kind": k.kind,
                    "metadata": {"name": "x"},
                });
                if k.namespaced {
                    value["metadata"]["namespace"] = "default".into();
                }
                let parsed = Object::parse(value, ParseMode::Tolerant);
                assert!(
                    !matches!(&parsed, Err(e) if e.is_unsupported_kind()),
                    "{} {v}: {parsed:?}",
                    k.label()
                );
            }
        }
    }
}
