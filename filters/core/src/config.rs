//! The routing filter's configuration, as the controller serializes it and the filter parses it.
//!
//! These types are the wire format between `portico-controller` and `portico-filter-routing`: one
//! definition, used on both sides. Every struct rejects unknown fields, so a controller/filter
//! version skew is an error at `on_configure`, never a silently ignored setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `apiVersion` every routing configuration carries; a filter refuses any other.
pub const ROUTING_API_VERSION: &str = "routing.portico.dev/v1alpha1";

/// Request header the filter sets to an `ip:port` to send a request straight to one pod endpoint
/// through Envoy's `ORIGINAL_DST` cluster (`use_http_header: true`). The filter always removes a
/// client-sent copy first: Envoy honours it from anyone.
pub const ORIGINAL_DST_HEADER: &str = "x-envoy-original-dst-host";

/// Request header the filter sets to a cluster name for Envoy's `cluster_header` route.
pub const CLUSTER_HEADER: &str = "x-portico-cluster";

/// Name of the Envoy `ORIGINAL_DST` cluster the endpoint mode sends through.
pub const ORIGINAL_DST_CLUSTER: &str = "portico|original-dst";

/// The whole routing configuration of one filter instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoutingConfig {
    /// Must be [`ROUTING_API_VERSION`].
    pub api_version: String,
    /// Opaque version of this configuration (the controller uses a content hash); logged on load.
    pub generation: String,
    /// How a chosen backend is reached.
    #[serde(default)]
    pub forward: ForwardMode,
    /// Virtual hosts in the order the controller emitted them.
    #[serde(default)]
    pub virtual_hosts: Vec<VirtualHost>,
    /// Backend for requests no virtual host or route takes (nginx's default backend); else 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
    /// Every backend a route or default may name, by key (`name.namespace.svc.cluster.local:port`).
    #[serde(default)]
    pub backends: BTreeMap<String, Backend>,
}

/// How the filter hands a request to Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForwardMode {
    /// Pick one ready pod endpoint in the filter and send it through the `ORIGINAL_DST` cluster.
    #[default]
    Endpoint,
    /// Name the backend's Envoy cluster (`outbound|PORT||FQDN`) and let Envoy balance.
    Cluster,
}

/// A set of host names sharing one route table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualHost {
    /// Diagnostic name (which object made it), shown in logs and traces.
    pub name: String,
    /// Host names: `foo.example.com`, `*.example.com`, or `*` for the catch-all.
    pub hosts: Vec<String>,
    /// What `*.` covers.
    #[serde(default)]
    pub wildcard: WildcardMode,
    /// Routes; precedence is decided by the matcher, not by order, except between equals.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Backend for requests this host takes but no route matches; falls back to the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
}

/// What a `*.` host label covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WildcardMode {
    /// Exactly one DNS label (Kubernetes Ingress).
    #[default]
    SingleLabel,
    /// One or more labels, never the apex (Gateway API, Istio).
    MultiLabel,
}

/// One route: a match and the backend it sends to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Diagnostic name (`Ingress default/shop rules[0].http.paths[1]`).
    pub name: String,
    /// Path match.
    pub path: PathMatch,
    /// Key into [`RoutingConfig::backends`].
    pub backend: String,
}

/// A path match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    tag = "type",
    content = "value"
)]
pub enum PathMatch {
    /// The whole path (query excluded) equals the value, case-sensitively.
    Exact(String),
    /// The path's `/`-separated elements start with the value's elements; a trailing `/` in the
    /// value is ignored, so `/foo` matches `/foo`, `/foo/` and `/foo/bar` but not `/foobar`.
    Prefix(String),
}

/// Where a backend's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backend {
    /// Envoy cluster name, used in [`ForwardMode::Cluster`].
    pub cluster: String,
    /// Ready pod endpoints, `ip:port`, used in [`ForwardMode::Endpoint`]. Empty → 503.
    #[serde(default)]
    pub endpoints: Vec<String>,
}

impl RoutingConfig {
    /// An empty configuration at the current API version: every request gets 404.
    pub fn empty(generation: impl Into<String>) -> Self {
        RoutingConfig {
            api_version: ROUTING_API_VERSION.to_owned(),
            generation: generation.into(),
            forward: ForwardMode::default(),
            virtual_hosts: Vec::new(),
            default_backend: None,
            backends: BTreeMap::new(),
        }
    }

    /// Parses the JSON the controller wrote.
    ///
    /// # Errors
    /// [`crate::ConfigError::Json`] naming the field path at fault (`virtualHosts[2].routes[0].path`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::ConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| crate::ConfigError::Json {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }

    /// Serializes to the JSON the filter parses.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}
