//! The Kubernetes objects Portico reads, as typed structs, one module per API group:
//!
//! | module | API group | kinds |
//! | --- | --- | --- |
//! | [`meta`] | (all) | `ObjectMeta`, `ObjectRef`, `LabelSelector` |
//! | [`core`] | `v1`, `discovery.k8s.io/v1` | Service, Namespace, Pod, EndpointSlice |
//! | [`networking`] | `networking.k8s.io/v1` | Ingress, IngressClass |
//! | [`gateway`] | `gateway.networking.k8s.io` | GatewayClass, Gateway, HTTPRoute, ReferenceGrant |
//! | [`istio`] | `networking.istio.io` | Gateway, VirtualService, DestinationRule |
//!
//! Only the fields Portico interprets are modelled. The model knows nothing of translation: it
//! imports nothing from the rest of the crate.

pub mod core;
pub mod gateway;
pub mod istio;
pub mod meta;
pub mod networking;

use serde::Deserialize;
use serde_json::Value;

pub use self::core::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Namespace, Pod, PodIp, PodStatus,
    Service, ServicePort, ServiceSpec,
};
pub use self::meta::{namespace_of, LabelSelector, LabelSelectorRequirement, ObjectMeta, ObjectRef};
pub use self::networking::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressClass,
    IngressClassSpec, IngressRule, IngressServiceBackend, IngressSpec, IngressTls,
    ServiceBackendPort,
};

/// The API group of core kinds.
pub const CORE_GROUP: &str = "";
/// `discovery.k8s.io`.
pub const DISCOVERY_GROUP: &str = "discovery.k8s.io";
/// `networking.k8s.io`.
pub const NETWORKING_GROUP: &str = "networking.k8s.io";
/// `gateway.networking.k8s.io`.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// `networking.istio.io`.
pub const ISTIO_GROUP: &str = "networking.istio.io";

/// A kind: its API group, its name, whether it is namespaced, and its metadata.
pub trait Resource {
    /// API group.
    const GROUP: &'static str;
    /// Kind.
    const KIND: &'static str;
    /// Namespaced (else cluster-scoped).
    const NAMESPACED: bool;
    /// Metadata.
    fn metadata(&self) -> &ObjectMeta;
    /// The object's reference; cluster-scoped kinds have no namespace.
    fn object_ref(&self) -> ObjectRef {
        let meta = self.metadata();
        let namespace = if Self::NAMESPACED {
            namespace_of(meta)
        } else {
            ""
        };
        ObjectRef::new(Self::GROUP, Self::KIND, namespace, &meta.name)
    }
}

macro_rules! resources {
    ($($variant:ident($ty:ty) = $group:expr, $kind:literal, $namespaced:literal;)*) => {
        $(
            impl Resource for $ty {
                const GROUP: &'static str = $group;
                const KIND: &'static str = $kind;
                const NAMESPACED: bool = $namespaced;
                fn metadata(&self) -> &ObjectMeta {
                    &self.metadata
                }
            }
        )*

        /// One object of a kind Portico reads.
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum Object {
            $(
                #[doc = concat!("`", $kind, "`.")]
                $variant($ty),
            )*
        }

        impl Object {
            /// Metadata.
            pub fn meta(&self) -> &ObjectMeta {
                match self {
                    $(Object::$variant(o) => &o.metadata,)*
                }
            }

            /// Kind.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => $kind,)*
                }
            }

            /// API group.
            pub fn group(&self) -> &'static str {
                match self {
                    $(Object::$variant(_) => $group,)*
                }
            }

            /// Group, kind, namespace and name; cluster-scoped kinds have no namespace.
            pub fn object_ref(&self) -> ObjectRef {
                match self {
                    $(Object::$variant(o) => o.object_ref(),)*
                }
            }
        }
    };
}

resources! {
    Ingress(Ingress) = NETWORKING_GROUP, "Ingress", true;
    IngressClass(IngressClass) = NETWORKING_GROUP, "IngressClass", false;
    Service(Service) = CORE_GROUP, "Service", true;
    EndpointSlice(EndpointSlice) = DISCOVERY_GROUP, "EndpointSlice", true;
    Namespace(Namespace) = CORE_GROUP, "Namespace", false;
    GatewayClass(gateway::GatewayClass) = GATEWAY_GROUP, "GatewayClass", false;
    Gateway(gateway::Gateway) = GATEWAY_GROUP, "Gateway", true;
    HttpRoute(gateway::HttpRoute) = GATEWAY_GROUP, "HTTPRoute", true;
    ReferenceGrant(gateway::ReferenceGrant) = GATEWAY_GROUP, "ReferenceGrant", true;
    IstioGateway(istio::IstioGateway) = ISTIO_GROUP, "Gateway", true;
    VirtualService(istio::VirtualService) = ISTIO_GROUP, "VirtualService", true;
    DestinationRule(istio::DestinationRule) = ISTIO_GROUP, "DestinationRule", true;
    Pod(Pod) = CORE_GROUP, "Pod", true;
}

/// Why a manifest document is not an object Portico can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// `apiVersion`/`kind` missing or not strings.
    #[error("not a Kubernetes object: {0}")]
    NotAnObject(String),
    /// A kind Portico does not read (yet).
    #[error("{api_version} {kind} is not supported")]
    UnsupportedKind {
        /// `apiVersion`.
        api_version: String,
        /// `kind`.
        kind: String,
    },
    /// The object does not fit its schema.
    #[error("{field}: {message}")]
    Field {
        /// Field path (`spec.rules[0].http.paths[0].pathType`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ObjectError {
    /// Whether the error is about the kind rather than the content.
    pub fn is_unsupported_kind(&self) -> bool {
        matches!(self, ObjectError::UnsupportedKind { .. })
    }
}

fn typed<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ObjectError> {
    serde_path_to_error::deserialize(value).map_err(|e| ObjectError::Field {
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

impl Object {
    /// Reads one object from its JSON value (as a YAML document converts to).
    ///
    /// # Errors
    /// [`ObjectError`]: not an object, a kind Portico does not read, or a field that does not fit.
    pub fn from_value(value: Value) -> Result<Object, ObjectError> {
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            return Err(ObjectError::NotAnObject(
                "apiVersion and kind are required".into(),
            ));
        }
        let (api_version, kind) = (api_version.to_owned(), kind.to_owned());
        let object = match (api_version.as_str(), kind.as_str()) {
            ("networking.k8s.io/v1", "Ingress") => Object::Ingress(typed(value)?),
            ("networking.k8s.io/v1", "IngressClass") => Object::IngressClass(typed(value)?),
            ("v1", "Service") => Object::Service(typed(value)?),
            ("discovery.k8s.io/v1", "EndpointSlice") => Object::EndpointSlice(typed(value)?),
            ("v1", "Namespace") => Object::Namespace(typed(value)?),
            ("v1", "Pod") => Object::Pod(typed(value)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "Gateway",
            ) => Object::IstioGateway(typed(value)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "VirtualService",
            ) => Object::VirtualService(typed(value)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "DestinationRule",
            ) => Object::DestinationRule(typed(value)?),
            (
                "gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1",
                "GatewayClass",
            ) => Object::GatewayClass(typed(value)?),
            ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1", "Gateway") => {
                Object::Gateway(typed(value)?)
            }
            ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1", "HTTPRoute") => {
                Object::HttpRoute(typed(value)?)
            }
            (
                "gateway.networking.k8s.io/v1beta1" | "gateway.networking.k8s.io/v1",
                "ReferenceGrant",
            ) => Object::ReferenceGrant(typed(value)?),
            _ => return Err(ObjectError::UnsupportedKind { api_version, kind }),
        };
        if object.meta().name.is_empty() {
            return Err(ObjectError::Field {
                field: "metadata.name".into(),
                message: "required".into(),
            });
        }
        Ok(object)
    }
}

/// Best-effort `kind namespace/name` of a document that may not parse as an object.
pub fn describe_value(value: &Value) -> String {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_owned();
    let meta = value.get("metadata");
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    format!(
        "{} {}/{}",
        s(value.get("kind")),
        ns,
        s(meta.and_then(|m| m.get("name")))
    )
}
