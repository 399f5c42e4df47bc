//! The core API group (`v1`: Service, Namespace, Pod) and `discovery.k8s.io/v1` EndpointSlice:
//! the fields that decide where traffic goes, nothing else.

use serde::Deserialize;

use super::meta::ObjectMeta;

/// `v1` Service: ports only.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ServiceSpec,
}

/// Service spec: the fields that affect routing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// The virtual IP (`None` for a headless Service).
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
}

/// A Service port.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Name; required when there are several ports.
    #[serde(default)]
    pub name: Option<String>,
    /// Port.
    pub port: u16,
    /// Target port on the Pods: a number or a container port name.
    #[serde(default)]
    pub target_port: Option<serde_json::Value>,
    /// Protocol (TCP when absent).
    #[serde(default)]
    pub protocol: Option<String>,
    /// Application protocol (`http`, `tcp`, `kubernetes.io/h2c`, …), which Istio reads before
    /// the port name.
    #[serde(default)]
    pub app_protocol: Option<String>,
}

impl ServicePort {
    /// `targetPort` as Kubernetes' `IntOrString.String()` writes it.
    pub fn target_port_text(&self) -> Option<String> {
        match self.target_port.as_ref()? {
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// `discovery.k8s.io/v1` EndpointSlice.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    /// Metadata; `labels["kubernetes.io/service-name"]` names the Service.
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: String,
    /// Endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Ports (null or absent: no ports).
    #[serde(default)]
    pub ports: Option<Vec<EndpointPort>>,
}

/// An endpoint of a slice.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Addresses (all of one address type).
    pub addresses: Vec<String>,
    /// Conditions.
    #[serde(default)]
    pub conditions: EndpointConditions,
}

/// Endpoint conditions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConditions {
    /// Ready; absent means ready (the API says to read "unknown" as ready).
    #[serde(default)]
    pub ready: Option<bool>,
    /// Serving.
    #[serde(default)]
    pub serving: Option<bool>,
    /// Terminating.
    #[serde(default)]
    pub terminating: Option<bool>,
}

/// An EndpointSlice port.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    /// Name, matching the Service port's name (empty for an unnamed port).
    #[serde(default)]
    pub name: Option<String>,
    /// Port number.
    #[serde(default)]
    pub port: Option<u16>,
    /// Protocol.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// `v1` Namespace: labels only (Gateway listeners select route namespaces by label).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// Metadata.
    pub metadata: ObjectMeta,
}

/// `v1` Pod: labels and IPs only.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Status.
    #[serde(default)]
    pub status: PodStatus,
}

/// Pod status.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// IP.
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
    /// IPs.
    #[serde(default, rename = "podIPs")]
    pub pod_ips: Vec<PodIp>,
}

/// One pod IP.
#[derive(Debug, Clone, Deserialize)]
pub struct PodIp {
    /// IP.
    pub ip: String,
}

/// `v1` Secret: the TLS key pairs (`kubernetes.io/tls`: `tls.crt`, `tls.key`) and CA bundles
/// (`ca.crt`, `cacert`) that listeners serve and check clients against.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// `kubernetes.io/tls`, `Opaque`, …
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Values, base64-encoded (as the API server returns them).
    #[serde(default)]
    pub data: std::collections::BTreeMap<String, String>,
    /// Values in clear (a manifest's write-only convenience; they win over `data`).
    #[serde(default)]
    pub string_data: std::collections::BTreeMap<String, String>,
}
