//! `gateway.networking.k8s.io` (v1, v1beta1): GatewayClass, Gateway, HTTPRoute and
//! ReferenceGrant, as serde types. What they mean is `translate::gateway_api`'s business.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::meta::{LabelSelector, ObjectMeta};

/// GatewayClass.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClass {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec (not interpreted: Portico serves every Gateway it is given).
    #[serde(default)]
    pub spec: Value,
}

/// Gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: GatewaySpec,
}

/// Gateway spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Class.
    pub gateway_class_name: String,
    /// Listeners.
    pub listeners: Vec<GatewayListener>,
    /// Requested addresses (not interpreted: Envoy binds where the controller is told).
    #[serde(default)]
    pub addresses: Option<Value>,
    /// Infrastructure labels and annotations (not interpreted).
    #[serde(default)]
    pub infrastructure: Option<Value>,
}

/// A Gateway listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListener {
    /// Name (what `sectionName` refers to).
    pub name: String,
    /// Hostname the listener takes.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Port.
    pub port: u16,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`.
    pub protocol: String,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// Which routes may attach.
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// A listener's `tls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` (default) or `Passthrough`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The certificates (Secrets) served.
    #[serde(default)]
    pub certificate_refs: Vec<SecretObjectReference>,
    /// Implementation-specific options.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Client certificate validation.
    #[serde(default)]
    pub frontend_validation: Option<Value>,
}

/// A reference to a Secret (or another kind) by group, kind, namespace and name.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretObjectReference {
    /// Group (`""`, the core group, by default).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind (`Secret` by default).
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace (the referrer's by default).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `allowedRoutes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    /// Namespaces.
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    /// Kinds.
    #[serde(default)]
    pub kinds: Option<Vec<RouteGroupKind>>,
}

/// `allowedRoutes.namespaces`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteNamespaces {
    /// `All`, `Same` (default) or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// For `Selector`.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// A route kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteGroupKind {
    /// Group.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind.
    pub kind: String,
}

/// HTTPRoute.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: HttpRouteSpec,
}

/// HTTPRoute spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// Gateways (and listeners) to attach to.
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    /// Hostnames.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Rules.
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// TLSRoute (`v1alpha2`, `v1alpha3`, `v1`): TLS connections by SNI, passed through.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoute {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: TlsRouteSpec,
}

/// TLSRoute spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteSpec {
    /// Gateways (and listeners) to attach to.
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    /// SNI host names.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Rules (one).
    #[serde(default)]
    pub rules: Vec<TlsRouteRule>,
}

/// A TLSRoute rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteRule {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Weighted backends.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
}

/// A parent reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// Group (default `gateway.networking.k8s.io`).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind (default `Gateway`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespace (default: the route's).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Listener name.
    #[serde(default)]
    pub section_name: Option<String>,
    /// Listener port.
    #[serde(default)]
    pub port: Option<u16>,
}

/// A rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Matches (any); none means `PathPrefix /`.
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// Filters.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Backends.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: Option<HttpRouteTimeouts>,
    /// Retry.
    #[serde(default)]
    pub retry: Option<HttpRouteRetry>,
    /// Session persistence (not supported).
    #[serde(default)]
    pub session_persistence: Option<Value>,
}

/// A match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    /// Path.
    #[serde(default)]
    pub path: Option<HttpPathMatch>,
    /// Headers.
    #[serde(default)]
    pub headers: Vec<NameValueMatch>,
    /// Query parameters.
    #[serde(default)]
    pub query_params: Vec<NameValueMatch>,
    /// Method.
    #[serde(default)]
    pub method: Option<String>,
}

/// A path match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` (default), `RegularExpression`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Value (default `/`).
    #[serde(default)]
    pub value: Option<String>,
}

/// A header or query parameter match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameValueMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteFilter {
    /// Filter type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `RequestHeaderModifier`.
    #[serde(default)]
    pub request_header_modifier: Option<HeaderModifier>,
    /// `ResponseHeaderModifier`.
    #[serde(default)]
    pub response_header_modifier: Option<HeaderModifier>,
    /// `RequestRedirect`.
    #[serde(default)]
    pub request_redirect: Option<RequestRedirect>,
    /// `URLRewrite`.
    #[serde(default)]
    pub url_rewrite: Option<UrlRewrite>,
    /// `RequestMirror`.
    #[serde(default)]
    pub request_mirror: Option<RequestMirror>,
    /// `ExtensionRef` (not supported).
    #[serde(default)]
    pub extension_ref: Option<Value>,
    /// `CORS`.
    #[serde(default)]
    pub cors: Option<CorsFilter>,
}

/// Header changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderModifier {
    /// Replace.
    #[serde(default)]
    pub set: Vec<NameValue>,
    /// Append.
    #[serde(default)]
    pub add: Vec<NameValue>,
    /// Remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A header.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameValue {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `requestRedirect`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRedirect {
    /// Scheme.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Path.
    #[serde(default)]
    pub path: Option<HttpPathModifier>,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Status code (302 by default).
    #[serde(default)]
    pub status_code: Option<u16>,
}

/// `urlRewrite`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlRewrite {
    /// Hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Path.
    #[serde(default)]
    pub path: Option<HttpPathModifier>,
}

/// A path modifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub type_: String,
    /// For `ReplaceFullPath`.
    #[serde(default)]
    pub replace_full_path: Option<String>,
    /// For `ReplacePrefixMatch`.
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

/// `requestMirror`: a copy of each request (or of `percent` / `fraction` of them) goes to
/// `backendRef`; its answer is dropped.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMirror {
    /// The backend the copies go to.
    pub backend_ref: HttpBackendRef,
    /// Share mirrored, 0–100.
    #[serde(default)]
    pub percent: Option<u32>,
    /// Share mirrored as a fraction.
    #[serde(default)]
    pub fraction: Option<Fraction>,
}

/// `numerator / denominator` (denominator 100 by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fraction {
    /// Numerator.
    pub numerator: u32,
    /// Denominator.
    #[serde(default)]
    pub denominator: Option<u32>,
}

/// The `CORS` filter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsFilter {
    /// Origins (`scheme://host[:port]`, `*` wildcards; `*` alone: any).
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Methods (`*`: any).
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request headers (`*`: any).
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers exposed to the page.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Preflight cache lifetime, seconds (5 by default).
    #[serde(default)]
    pub max_age: Option<u64>,
    /// Allow credentials.
    #[serde(default)]
    pub allow_credentials: Option<bool>,
}

/// `rules[].timeouts`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteTimeouts {
    /// The whole request, retries included (`0s`: none).
    #[serde(default)]
    pub request: Option<String>,
    /// Each request to a backend.
    #[serde(default)]
    pub backend_request: Option<String>,
}

/// `rules[].retry`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRetry {
    /// Status codes retried.
    #[serde(default)]
    pub codes: Vec<u16>,
    /// Retries allowed.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Wait between attempts (not applied: Envoy's default backoff).
    #[serde(default)]
    pub backoff: Option<String>,
}

/// A backend reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    /// Group (default core).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind (default `Service`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace (default: the route's).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Port (required for a Service).
    #[serde(default)]
    pub port: Option<u16>,
    /// Weight (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Filters for requests sent to this backend.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
}

/// ReferenceGrant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceGrant {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: ReferenceGrantSpec,
}

/// ReferenceGrant spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceGrantSpec {
    /// Who may refer.
    pub from: Vec<GrantFrom>,
    /// To what.
    pub to: Vec<GrantTo>,
}

/// `from` of a ReferenceGrant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantFrom {
    /// Group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
}

/// `to` of a ReferenceGrant.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantTo {
    /// Group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name (any when absent).
    #[serde(default)]
    pub name: Option<String>,
}
