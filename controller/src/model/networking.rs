//! `networking.k8s.io/v1`: Ingress and IngressClass.

use serde::Deserialize;
use serde_json::Value;

use super::meta::ObjectMeta;

/// `networking.k8s.io/v1` Ingress.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: IngressSpec,
}

/// Ingress spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Class name.
    #[serde(default)]
    pub ingress_class_name: Option<String>,
    /// Backend for requests no rule takes.
    #[serde(default)]
    pub default_backend: Option<IngressBackend>,
    /// TLS blocks.
    #[serde(default)]
    pub tls: Vec<IngressTls>,
    /// Rules.
    #[serde(default)]
    pub rules: Vec<IngressRule>,
}

/// Ingress TLS block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    /// Hosts the certificate covers.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Secret holding the certificate.
    #[serde(default)]
    pub secret_name: Option<String>,
}

/// Ingress rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// Host; absent means every host no other rule names.
    #[serde(default)]
    pub host: Option<String>,
    /// HTTP paths.
    #[serde(default)]
    pub http: Option<HttpIngressRuleValue>,
}

/// `rules[].http`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressRuleValue {
    /// Paths.
    pub paths: Vec<HttpIngressPath>,
}

/// `rules[].http.paths[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressPath {
    /// Path; defaults to `/`.
    #[serde(default)]
    pub path: Option<String>,
    /// `Exact`, `Prefix` or `ImplementationSpecific` (required by the API).
    pub path_type: String,
    /// Backend.
    pub backend: IngressBackend,
}

/// An Ingress backend.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressBackend {
    /// A Service backend.
    #[serde(default)]
    pub service: Option<IngressServiceBackend>,
    /// A resource backend (not supported: reported as an error).
    #[serde(default)]
    pub resource: Option<Value>,
}

/// A Service backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressServiceBackend {
    /// Service name, same namespace as the Ingress.
    pub name: String,
    /// Service port.
    pub port: ServiceBackendPort,
}

/// A Service port, by name or number.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBackendPort {
    /// Port name.
    #[serde(default)]
    pub name: Option<String>,
    /// Port number.
    #[serde(default)]
    pub number: Option<u16>,
}

/// `networking.k8s.io/v1` IngressClass.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClass {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: IngressClassSpec,
}

/// IngressClass spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassSpec {
    /// Controller name, e.g. `portico.dev/ingress-controller`.
    #[serde(default)]
    pub controller: String,
    /// Controller-specific parameters (not interpreted).
    #[serde(default)]
    pub parameters: Option<Value>,
}
