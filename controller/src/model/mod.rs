//! The Kubernetes objects Portico reads, as typed structs, one module per API group:
//!
//! | module | API group | kinds |
//! | --- | --- | --- |
//! | [`meta`] | (all) | `ObjectMeta`, `ObjectRef`, `LabelSelector` |
//! | [`core`] | `v1`, `discovery.k8s.io/v1` | Service, Namespace, Pod, Secret, EndpointSlice |
//! | [`networking`] | `networking.k8s.io/v1` | Ingress, IngressClass |
//! | [`gateway`] | `gateway.networking.k8s.io` | GatewayClass, Gateway, HTTPRoute, TLSRoute, ReferenceGrant |
//! | [`istio`] | `networking.istio.io` | Gateway, VirtualService, DestinationRule, ServiceEntry, Sidecar |
//! | [`portico`] | `portico.dev` | PorticoConfig |
//!
//! Only the fields Portico interprets are modelled. The model knows nothing of translation: it
//! imports nothing from the rest of the crate.
//!
//! # Strict and tolerant parsing
//! Whether an unknown field is an error is decided by the reader, not by the types:
//! [`ParseMode::Strict`] for routing as a user wrote it — both sources, the directory and the
//! Kubernetes watchers, read this way, so a field Portico does not implement in the part of an
//! object that decides routing is an error naming it rather than a
//! silently ignored setting, as the Gateway API asks of an implementation meeting a feature it
//! does not support; [`ParseMode::Tolerant`] ignores every unknown field (for tools that only
//! look). Which part of a kind is held to strictness is [`Resource::STRICT_ROOTS`]: the `spec`
//! of routing kinds; Services, EndpointSlices, Namespaces and Pods carry much that does not
//! change routing and are read
//! tolerantly either way. Metadata and `status` are never interpreted beyond what is modelled.

pub mod core;
pub mod gateway;
pub mod istio;
pub mod meta;
pub mod networking;
pub mod portico;

use serde::Deserialize;
use serde_json::Value;

pub use self::core::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Namespace, Pod, PodIp, PodStatus,
    Secret, Service, ServicePort, ServiceSpec,
};
pub use self::meta::{
    namespace_of, oldest_first, LabelSelector, LabelSelectorRequirement, ObjectMeta, ObjectRef,
};
pub use self::networking::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec, IngressTls, ServiceBackendPort,
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
/// `portico.dev`.
pub const PORTICO_GROUP: &str = "portico.dev";

/// A kind: its API group, its name, whether it is namespaced, and its metadata.
pub trait Resource {
    /// API group.
    const GROUP: &'static str;
    /// Kind.
    const KIND: &'static str;
    /// Namespaced (else cluster-scoped).
    const NAMESPACED: bool;
    /// Top-level fields under which [`ParseMode::Strict`] refuses unknown fields.
    const STRICT_ROOTS: &'static [&'static str];
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
    ($($variant:ident($ty:ty) = $group:expr, $kind:literal, $namespaced:literal, $strict:expr;)*) => {
        $(
            impl Resource for $ty {
                const GROUP: &'static str = $group;
                const KIND: &'static str = $kind;
                const NAMESPACED: bool = $namespaced;
                const STRICT_ROOTS: &'static [&'static str] = $strict;
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

/// The `spec` of a routing kind: what a user's manifest is held to.
const SPEC: &[&str] = &["spec"];

resources! {
    Ingress(Ingress) = NETWORKING_GROUP, "Ingress", true, SPEC;
    IngressClass(IngressClass) = NETWORKING_GROUP, "IngressClass", false, SPEC;
    Service(Service) = CORE_GROUP, "Service", true, &[];
    EndpointSlice(EndpointSlice) = DISCOVERY_GROUP, "EndpointSlice", true, &[];
    Namespace(Namespace) = CORE_GROUP, "Namespace", false, &[];
    GatewayClass(gateway::GatewayClass) = GATEWAY_GROUP, "GatewayClass", false, SPEC;
    Gateway(gateway::Gateway) = GATEWAY_GROUP, "Gateway", true, SPEC;
    HttpRoute(gateway::HttpRoute) = GATEWAY_GROUP, "HTTPRoute", true, SPEC;
    TlsRoute(gateway::TlsRoute) = GATEWAY_GROUP, "TLSRoute", true, SPEC;
    ReferenceGrant(gateway::ReferenceGrant) = GATEWAY_GROUP, "ReferenceGrant", true, SPEC;
    IstioGateway(istio::IstioGateway) = ISTIO_GROUP, "Gateway", true, SPEC;
    VirtualService(istio::VirtualService) = ISTIO_GROUP, "VirtualService", true, SPEC;
    DestinationRule(istio::DestinationRule) = ISTIO_GROUP, "DestinationRule", true, SPEC;
    ServiceEntry(istio::ServiceEntry) = ISTIO_GROUP, "ServiceEntry", true, SPEC;
    Sidecar(istio::Sidecar) = ISTIO_GROUP, "Sidecar", true, SPEC;
    Pod(Pod) = CORE_GROUP, "Pod", true, &[];
    Secret(Secret) = CORE_GROUP, "Secret", true, &[];
    PorticoConfig(portico::PorticoConfig) = PORTICO_GROUP, "PorticoConfig", true, SPEC;
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

/// Where objects come from, and so how unknown fields are taken (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    /// Manifests a user wrote: an unknown field under a kind's [`Resource::STRICT_ROOTS`] is an
    /// error naming it.
    #[default]
    Strict,
    /// Objects a live API server returns: unknown fields (newer API versions, `status`,
    /// `metadata.managedFields`) are ignored.
    Tolerant,
}

/// One step of a field path.
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &serde_ignored::Path<'_>, out: &mut Vec<Step>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            steps(parent, out);
            out.push(Step::Index(*index));
        }
        Path::Map { parent, key } => {
            steps(parent, out);
            out.push(Step::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => steps(parent, out),
    }
}

/// `spec.rules[0].http`, as `serde_path_to_error` writes paths.
fn field_path(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn typed<T: Resource + for<'de> Deserialize<'de>>(
    value: Value,
    mode: ParseMode,
) -> Result<T, ObjectError> {
    let mut unknown: Vec<Vec<Step>> = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| {
        let mut s = Vec::new();
        steps(&path, &mut s);
        unknown.push(s);
    };
    let de = serde_ignored::Deserializer::new(value, &mut note);
    let object: T = serde_path_to_error::deserialize(de).map_err(|e| ObjectError::Field {
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    if mode == ParseMode::Strict {
        let strict = |s: &&Vec<Step>| matches!(s.first(), Some(Step::Key(root)) if T::STRICT_ROOTS.contains(&root.as_str()));
        if let Some(path) = unknown.iter().find(strict) {
            let name = match path.last() {
                Some(Step::Key(k)) => k.clone(),
                Some(Step::Index(i)) => i.to_string(),
                None => String::new(),
            };
            return Err(ObjectError::Field {
                field: field_path(path),
                message: format!("unknown field `{name}`"),
            });
        }
    }
    Ok(object)
}

impl Object {
    /// Reads one object from its JSON value (as a YAML document converts to), strictly: a
    /// manifest a user wrote (see [`Object::parse`]).
    ///
    /// # Errors
    /// [`ObjectError`]: not an object, a kind Portico does not read, or a field that does not fit.
    pub fn from_value(value: Value) -> Result<Object, ObjectError> {
        Object::parse(value, ParseMode::Strict)
    }

    /// Reads one object from its JSON value, taking unknown fields as `mode` says.
    ///
    /// # Errors
    /// [`ObjectError`]: not an object, a kind Portico does not read, a field that does not fit,
    /// or (strict) an unknown field.
    pub fn parse(value: Value, mode: ParseMode) -> Result<Object, ObjectError> {
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
            ("networking.k8s.io/v1", "Ingress") => Object::Ingress(typed(value, mode)?),
            ("networking.k8s.io/v1", "IngressClass") => Object::IngressClass(typed(value, mode)?),
            ("v1", "Service") => Object::Service(typed(value, mode)?),
            ("discovery.k8s.io/v1", "EndpointSlice") => Object::EndpointSlice(typed(value, mode)?),
            ("v1", "Namespace") => Object::Namespace(typed(value, mode)?),
            ("v1", "Pod") => Object::Pod(typed(value, mode)?),
            ("v1", "Secret") => Object::Secret(typed(value, mode)?),
            ("portico.dev/v1alpha1", "PorticoConfig") => Object::PorticoConfig(typed(value, mode)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "Gateway",
            ) => Object::IstioGateway(typed(value, mode)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "VirtualService",
            ) => Object::VirtualService(typed(value, mode)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "DestinationRule",
            ) => Object::DestinationRule(typed(value, mode)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "ServiceEntry",
            ) => Object::ServiceEntry(typed(value, mode)?),
            (
                "networking.istio.io/v1"
                | "networking.istio.io/v1beta1"
                | "networking.istio.io/v1alpha3",
                "Sidecar",
            ) => Object::Sidecar(typed(value, mode)?),
            (
                "gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1",
                "GatewayClass",
            ) => Object::GatewayClass(typed(value, mode)?),
            ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1", "Gateway") => {
                Object::Gateway(typed(value, mode)?)
            }
            ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1", "HTTPRoute") => {
                Object::HttpRoute(typed(value, mode)?)
            }
            (
                "gateway.networking.k8s.io/v1"
                | "gateway.networking.k8s.io/v1alpha3"
                | "gateway.networking.k8s.io/v1alpha2",
                "TLSRoute",
            ) => Object::TlsRoute(typed(value, mode)?),
            (
                "gateway.networking.k8s.io/v1beta1" | "gateway.networking.k8s.io/v1",
                "ReferenceGrant",
            ) => Object::ReferenceGrant(typed(value, mode)?),
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

/// The reference a document gives itself (group from `apiVersion`, kind, namespace or
/// `default`, name), whether or not it parses as an object; `None` without those fields.
pub fn ref_of_value(value: &Value) -> Option<ObjectRef> {
    let api_version = value.get("apiVersion")?.as_str()?;
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some(ObjectRef::new(group, kind, namespace, name))
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
