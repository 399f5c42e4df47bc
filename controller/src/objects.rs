//! The Kubernetes objects Portico reads, as typed structs.
//!
//! Only the fields Portico interprets are modelled. The `spec` of a routing object
//! (Ingress, IngressClass) rejects unknown fields, so a field Portico does not implement is an
//! error naming it rather than a silently ignored setting. Objects whose specs Portico only reads
//! a part of (Service, EndpointSlice) accept the rest, as it does not change routing. Metadata and
//! `status` are never interpreted beyond what is listed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// `kind namespace/name`, the way every error names an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `Ingress`, `Service`, …
    pub kind: String,
    /// Namespace (`default` when the manifest leaves it out).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Object metadata; the fields Portico reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name (required).
    #[serde(default)]
    pub name: String,
    /// Namespace; empty means `default` for namespaced kinds.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 creation time; orders conflicting objects (oldest wins).
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpIngressRuleValue {
    /// Paths.
    pub paths: Vec<HttpIngressPath>,
}

/// `rules[].http.paths[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressServiceBackend {
    /// Service name, same namespace as the Ingress.
    pub name: String,
    /// Service port.
    pub port: ServiceBackendPort,
}

/// A Service port, by name or number.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressClassSpec {
    /// Controller name, e.g. `portico.dev/ingress-controller`.
    #[serde(default)]
    pub controller: String,
    /// Controller-specific parameters (not interpreted).
    #[serde(default)]
    pub parameters: Option<Value>,
}

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
    /// Protocol (TCP when absent).
    #[serde(default)]
    pub protocol: Option<String>,
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

/// A label selector (`matchLabels`, `matchExpressions`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be equal.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One selector expression.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector (an empty selector selects everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let v = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => v.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => !v.is_some_and(|v| e.values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
    }
}

/// One object of a kind Portico reads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Object {
    /// Ingress.
    Ingress(Ingress),
    /// IngressClass.
    IngressClass(IngressClass),
    /// Service.
    Service(Service),
    /// EndpointSlice.
    EndpointSlice(EndpointSlice),
    /// Namespace.
    Namespace(Namespace),
    /// Gateway API GatewayClass.
    GatewayClass(crate::gateway::GatewayClass),
    /// Gateway API Gateway.
    Gateway(crate::gateway::Gateway),
    /// Gateway API HTTPRoute.
    HttpRoute(crate::gateway::HttpRoute),
    /// Gateway API ReferenceGrant.
    ReferenceGrant(crate::gateway::ReferenceGrant),
    /// Istio Gateway.
    IstioGateway(crate::istio::IstioGateway),
    /// Istio VirtualService.
    VirtualService(crate::istio::VirtualService),
    /// Istio DestinationRule.
    DestinationRule(crate::istio::DestinationRule),
    /// Pod (labels and IPs).
    Pod(crate::istio::Pod),
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

    /// Metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Ingress(o) => &o.metadata,
            Object::IngressClass(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Namespace(o) => &o.metadata,
            Object::GatewayClass(o) => &o.metadata,
            Object::Gateway(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::ReferenceGrant(o) => &o.metadata,
            Object::IstioGateway(o) => &o.metadata,
            Object::VirtualService(o) => &o.metadata,
            Object::DestinationRule(o) => &o.metadata,
            Object::Pod(o) => &o.metadata,
        }
    }

    /// Kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Ingress(_) => "Ingress",
            Object::IngressClass(_) => "IngressClass",
            Object::Service(_) => "Service",
            Object::EndpointSlice(_) => "EndpointSlice",
            Object::Namespace(_) => "Namespace",
            Object::GatewayClass(_) => "GatewayClass",
            Object::Gateway(_) => "Gateway",
            Object::HttpRoute(_) => "HTTPRoute",
            Object::ReferenceGrant(_) => "ReferenceGrant",
            Object::IstioGateway(_) => "Gateway",
            Object::VirtualService(_) => "VirtualService",
            Object::DestinationRule(_) => "DestinationRule",
            Object::Pod(_) => "Pod",
        }
    }

    /// `kind namespace/name`; cluster-scoped kinds have no namespace.
    pub fn object_ref(&self) -> ObjectRef {
        let namespace = match self {
            Object::IngressClass(_) | Object::Namespace(_) | Object::GatewayClass(_) => {
                String::new()
            }
            _ => namespace_of(self.meta()).to_owned(),
        };
        ObjectRef {
            kind: self.kind().to_owned(),
            namespace,
            name: self.meta().name.clone(),
        }
    }
}

/// The namespace of a namespaced object (`default` when the manifest leaves it out).
pub fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
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
