//! The routing filter's configuration, as the controller serializes it and the filter parses it.
//!
//! These types are the wire format between `portico-controller` and `portico-filter-routing`: one
//! definition, used on both sides. Every struct rejects unknown fields, so a controller/filter
//! version skew is an error at `on_configure`, never a silently ignored setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `apiVersion` every routing configuration carries; a filter refuses any other.
pub const ROUTING_API_VERSION: &str = "routing.portico.dev/v1alpha2";

/// Request header the filter sets to an `ip:port` to send a request straight to one pod endpoint
/// through Envoy's `ORIGINAL_DST` cluster (`use_http_header: true`). The filter always removes a
/// client-sent copy first: Envoy honours it from anyone.
pub const ORIGINAL_DST_HEADER: &str = "x-envoy-original-dst-host";

/// Request header the filter sets to a cluster name for Envoy's `cluster_header` route.
pub const CLUSTER_HEADER: &str = "x-portico-cluster";

/// The Envoy filter state the routing filter sets to steer a request (`set_envoy_filter_state`,
/// then `clear_route_cache`): the `ORIGINAL_DST` cluster's destination, and what the listener's
/// routes require before they forward anything — a client cannot set filter state, so with the
/// filter failing open or missing, nothing it sends is forwarded.
pub const STEER_STATE: &str = "envoy.network.transport_socket.original_dst_address";

/// The [`STEER_STATE`] value of a request steered to a cluster by [`CLUSTER_HEADER`] (the
/// `cluster_header` route needs the state too; the address is not used).
pub const CLUSTER_STEER: &str = "0.0.0.0:0";

/// Name of the Envoy `ORIGINAL_DST` cluster the endpoint mode sends through.
pub const ORIGINAL_DST_CLUSTER: &str = "portico|original-dst";

/// Name of the Envoy `ORIGINAL_DST` cluster that takes a connection where its client was going
/// (the sidecar's TLS passthrough: Istio's `PassthroughCluster`). It reads no header.
pub const PASSTHROUGH_CLUSTER: &str = "portico|passthrough";

/// Request header the egress filter sets to `passthrough` when no entry the client may see has
/// the request's host (ALLOW_ANY), removing any the client sent: the sidecar's routing then
/// sends the request where the client was going even for a host it routes for other clients.
pub const EGRESS_VERDICT_HEADER: &str = "x-portico-egress";

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
    /// Port clients addressed on this listener (redirects derive their port from it).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Virtual hosts in the order the controller emitted them.
    #[serde(default)]
    pub virtual_hosts: Vec<VirtualHost>,
    /// Backend for requests no virtual host or route takes (nginx's default backend); else 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
    /// Every backend a route or default may name, by key (`name.namespace.svc.cluster.local:port`).
    #[serde(default)]
    pub backends: BTreeMap<String, Backend>,
    /// A request for a host no virtual host takes (and no default backend) goes on to the
    /// destination the client addressed: a sidecar's `ALLOW_ANY` outbound policy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passthrough: bool,
    /// A request that a virtual host takes but none of its routes matches goes to that host's
    /// own default backend, else 404: never to the global [`RoutingConfig::default_backend`],
    /// which then serves only hosts no virtual host takes (ingress-nginx: each server's `/`
    /// location; the catch-all server `_` is only for other hosts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_defaults_only: bool,
    /// The port's TLS table, for requests that arrived over TLS: the Host checks of its chains
    /// ([`crate::tls::select::HostCheck`]) and its response headers (HSTS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::select::TlsTable>,
    /// The answer (status, empty body) to a request for a host no virtual host takes, instead of
    /// 404: a sidecar's `REGISTRY_ONLY` outbound policy (Istio's `block_all`: 502).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_host_status: Option<u16>,
}

fn default_port() -> u16 {
    80
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
    /// How routes are chosen.
    #[serde(default)]
    pub order: RouteOrder,
    /// Routes.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Backend for requests this host takes but no route matches; falls back to the global one
    /// (unless [`RoutingConfig::host_defaults_only`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
}

/// How a virtual host chooses among its routes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteOrder {
    /// The longest matching path wins, `Exact` over `Prefix` on a tie (Kubernetes Ingress).
    /// Routes may match on the path only.
    #[default]
    LongestPath,
    /// The first route in list order whose whole match holds (the controller lists them in the
    /// precedence order of their API: Gateway API, Istio, regex Ingress).
    Listed,
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

/// One route: a match, what to do, and header changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Diagnostic name (`Ingress default/shop rules[0].http.paths[1]`).
    pub name: String,
    /// Path match.
    pub path: PathMatch,
    /// Header matches (all must hold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// Query parameter matches (all must hold).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<QueryMatch>,
    /// Method match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Client (source) IP addresses the route applies to; `None`: any client. Istio's
    /// `sourceLabels` / `sourceNamespace`, resolved to the IPs of the matching Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Which clients the route serves once it matched (others get 403): nginx's
    /// `allowlist-source-range` / `denylist-source-range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ranges: Option<ClientRanges>,
    /// Timeouts and retries of forwarded requests, handed to Envoy's router.
    #[serde(default, skip_serializing_if = "UpstreamPolicy::is_empty")]
    pub upstream: UpstreamPolicy,
    /// Cross-origin resource sharing, as Envoy's CORS filter applies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// What to do.
    pub action: RouteAction,
    /// Request header changes, applied before forwarding.
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub request_headers: HeaderMods,
    /// Response header changes.
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub response_headers: HeaderMods,
    /// Fault injection: answer this share of requests with a status instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
    /// Fault injection: hold this share of requests for a while before acting on them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
    /// Copies of a forwarded request sent to other backends; their answers are ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
    /// ingress-nginx client certificate authentication of the route's host (`auth-tls-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
}

/// ingress-nginx's client certificate rules for a host (`auth-tls-*` annotations, nginx.tmpl's
/// server block), applied before anything else of the route. The TLS handshake (Envoy) asks for
/// the certificate and checks its chain; these are the HTTP answers nginx gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientCertificate {
    /// `auth-tls-secret` cannot be used (not `namespace/name`, another namespace, missing):
    /// every request to the host gets 403.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
    /// `auth-tls-verify-client: on`: a request over TLS without a client certificate gets 400.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// `auth-tls-error-page`: such a request is redirected (302) here instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_page: Option<String>,
    /// `auth-tls-match-cn`: a regex the client certificate's subject DN (RFC 2253) must contain
    /// a match of, else 403 (also over plain HTTP, where the subject is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_subject: Option<String>,
    /// Send `ssl-client-verify` and `ssl-client-subject-dn` upstream (the host has a CA); the
    /// TLS chain adds `ssl-client-issuer-dn` (and `ssl-client-cert`), whose client-sent copies
    /// are removed here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headers: bool,
}

/// A CORS policy. A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from
/// an allowed origin is answered here with the allow headers; another request from an allowed
/// origin gets `Access-Control-Allow-Origin` (and credentials, exposed headers) on its response.
/// Requests from other origins go on untouched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cors {
    /// Allowed origins.
    #[serde(default)]
    pub allow_origins: Vec<StringMatch>,
    /// Allowed methods (`*`: whichever the preflight asks for). The answers join the entries with
    /// `", "` and write each verbatim: Istio's translation gives one entry, pilot's `,`-joined
    /// string, as Envoy's `CorsPolicy.allow_methods` holds it (and likewise for the lists below).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    /// Allowed request headers (`*`: whichever the preflight asks for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers the browser may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// How long a preflight may be cached, in seconds (sent as written: ingress-nginx sends a
    /// negative `cors-max-age` too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Allow credentials.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_credentials: bool,
    /// ingress-nginx's behaviour instead of Envoy's: no `allowOrigins` means any origin (answered
    /// `*`, with or without an `Origin` header); every allowed response carries all the allow
    /// headers; any `OPTIONS` from an allowed origin is answered 204.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nginx: bool,
    /// A preflight from an origin not allowed is answered here (Envoy's
    /// `forward_not_matching_preflights: false`: 200, no `Access-Control-Allow-Origin`) instead
    /// of going to the backend: Istio's `unmatchedPreflights: IGNORE`, and the Gateway API's CORS
    /// filter as Istio and Envoy Gateway translate it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_unmatched_preflights: bool,
}

/// Timeouts and retries for a route's forwarded requests. The filter hands them to Envoy's router
/// with the request headers it consumes (`x-envoy-upstream-rq-timeout-ms`,
/// `x-envoy-upstream-rq-per-try-timeout-ms`, `x-envoy-max-retries`, `x-envoy-retry-on`,
/// `x-envoy-retriable-status-codes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamPolicy {
    /// Whole-request timeout, retries included, in milliseconds (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Timeout of each attempt, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout_ms: Option<u64>,
    /// Retries after the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Envoy retry conditions (`connect-failure,retriable-status-codes,…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
    /// Status codes retried under `retriable-status-codes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u16>,
}

impl UpstreamPolicy {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        self == &UpstreamPolicy::default()
    }

    /// The request headers that carry the policy to Envoy's router.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(t) = self.timeout_ms {
            out.push(("x-envoy-upstream-rq-timeout-ms", t.to_string()));
        }
        if let Some(t) = self.per_try_timeout_ms {
            out.push(("x-envoy-upstream-rq-per-try-timeout-ms", t.to_string()));
        }
        if let Some(n) = self.retries {
            out.push(("x-envoy-max-retries", n.to_string()));
        }
        if let Some(on) = &self.retry_on {
            out.push(("x-envoy-retry-on", on.clone()));
        }
        if !self.retriable_status_codes.is_empty() {
            let codes: Vec<String> = self
                .retriable_status_codes
                .iter()
                .map(u16::to_string)
                .collect();
            out.push(("x-envoy-retriable-status-codes", codes.join(",")));
        }
        out
    }
}

impl Route {
    /// A route that matches on the path alone and acts, with no header changes, faults,
    /// mirrors, client conditions, timeouts or CORS; set the rest with struct update syntax.
    pub fn new(name: impl Into<String>, path: PathMatch, action: RouteAction) -> Route {
        Route {
            name: name.into(),
            path,
            headers: Vec::new(),
            query: Vec::new(),
            method: None,
            sources: None,
            client_ranges: None,
            upstream: UpstreamPolicy::default(),
            cors: None,
            action,
            request_headers: HeaderMods::default(),
            response_headers: HeaderMods::default(),
            abort: None,
            delay: None,
            mirrors: Vec::new(),
            client_certificate: None,
        }
    }
}

/// Client address ranges (CIDRs, or single addresses): a client in `deny` is refused; when
/// `allow` is not empty, a client outside it is refused too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientRanges {
    /// Allowed ranges (empty: every client not denied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Denied ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// An injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Abort {
    /// Status answered.
    pub status: u16,
    /// Share of requests, in percent (0–100).
    pub percent: f64,
}

impl Eq for Abort {}

/// An injected delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Delay {
    /// How long, in milliseconds.
    pub millis: u64,
    /// Share of requests, in percent (0–100).
    pub percent: f64,
}

impl Eq for Delay {}

/// A mirror: a copy of the request (host `<host>-shadow`, as Envoy's request mirror) sent to
/// another backend, whose answer is dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mirror {
    /// Backend key.
    pub backend: String,
    /// Share of requests mirrored, in percent (0–100).
    pub percent: f64,
}

impl Eq for Mirror {}

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
    /// The whole path matches the regular expression (RE2 syntax).
    Regex(String),
}

/// A header match; names are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// How the value must look.
    pub value: StringMatch,
    /// Match when the header does *not* match instead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invert: bool,
}

/// A query parameter match; names are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueryMatch {
    /// Parameter name.
    pub name: String,
    /// How the value must look.
    pub value: StringMatch,
}

/// How a string must look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    tag = "type",
    content = "value"
)]
pub enum StringMatch {
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// The whole value matches the regular expression.
    Regex(String),
    /// Present, any value.
    Present,
}

/// What a matched route does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", tag = "type")]
pub enum RouteAction {
    /// Send to one of the backends, by weight.
    #[serde(rename_all = "camelCase")]
    Forward {
        /// Weighted backends; `backend: null` is an invalid reference (500 when picked).
        backends: Vec<WeightedBackend>,
        /// Host and path rewrite before forwarding.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rewrite: Option<Rewrite>,
    },
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed status and body.
    #[serde(rename_all = "camelCase")]
    Respond {
        /// Status code.
        status: u16,
        /// Body.
        #[serde(default)]
        body: String,
    },
}

impl RouteAction {
    /// Forward to one backend.
    pub fn to(backend: impl Into<String>) -> Self {
        RouteAction::Forward {
            backends: vec![WeightedBackend {
                backend: Some(backend.into()),
                weight: 1,
                filters: Default::default(),
            }],
            rewrite: None,
        }
    }
}

/// A backend and its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeightedBackend {
    /// Key into [`RoutingConfig::backends`]; `None` for a reference that could not be resolved.
    pub backend: Option<String>,
    /// Weight (0: never picked).
    pub weight: u32,
    /// What happens to requests sent to this backend, after the route's own changes (the
    /// Gateway API's `backendRefs[].filters`).
    #[serde(default, skip_serializing_if = "BackendFilters::is_empty")]
    pub filters: BackendFilters,
}

/// The changes a request picked for one backend gets, on top of its route's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendFilters {
    /// Request header changes, after the route's.
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub request_headers: HeaderMods,
    /// Response header changes, after the route's.
    #[serde(default, skip_serializing_if = "HeaderMods::is_empty")]
    pub response_headers: HeaderMods,
    /// A rewrite in place of the route's (full path or prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Rewrite>,
    /// The Host / `:authority` for requests sent to this backend when the rewrite that applies
    /// (this backend's, else the route's) sets none (Istio's destination `:authority` header
    /// operation, which yields to the route's host rewrite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Answer with this redirect instead of forwarding (full path or prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    /// Mirrors, besides the route's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
}

impl BackendFilters {
    /// No filter at all.
    pub fn is_empty(&self) -> bool {
        self.request_headers.is_empty()
            && self.response_headers.is_empty()
            && self.rewrite.is_none()
            && self.host.is_none()
            && self.redirect.is_none()
            && self.mirrors.is_empty()
    }
}

/// A request rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rewrite {
    /// New Host / `:authority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// New path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRewrite>,
}

/// How a path is rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    tag = "type",
    content = "value"
)]
pub enum PathRewrite {
    /// Replace the whole path (the query is kept).
    Full(String),
    /// Replace the part the route's `Prefix` path matched.
    Prefix(String),
    /// Match the path (query excluded) against `regex` and replace the whole path with
    /// `substitution`, where `$1`, `${name}` are the captures (nginx `rewrite`); the query is
    /// kept. With `global`, every match in the path is replaced by `substitution` instead and
    /// the rest of the path stays (Envoy's `regex_rewrite`, `RegexMatchAndSubstitute`: RE2's
    /// `GlobalReplace` over the path, the query kept; Istio's `uriRegexRewrite`).
    #[serde(rename_all = "camelCase")]
    Regex {
        /// Regular expression (RE2 syntax), matched anywhere unless anchored.
        regex: String,
        /// Replacement with `$n` captures.
        substitution: String,
        /// Replace every match instead of the whole path.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        global: bool,
    },
}

/// A redirect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Redirect {
    /// A whole `Location`, used as is (nginx's `permanent-redirect`); the other fields are then
    /// ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Scheme (`http`, `https`); default: the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Host; default: the request's, without its port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port; default: the scheme's well-known port when the scheme is set, else the listener's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Path; default: the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRewrite>,
    /// Status code (302 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Drop one trailing `/` of the path and query (nginx's from/to-www redirect), so `/` becomes
    /// nothing: `http://example.com`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_trailing_slash: bool,
    /// Write the port in `Location` even when it is the scheme's own (ingress-nginx's
    /// from-to-www redirect, `ngx_srv_redirect.lua`: `scheme://host:$server_port$request_uri`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explicit_port: bool,
    /// Leave the request's query out of `Location` (nginx's `return 302 $scheme://$http_host/…`
    /// for ingress-nginx's `app-root`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_query: bool,
}

/// Header changes: set (replace), add (append to an existing value with a comma), remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderMods {
    /// Replace or create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<(String, String)>,
    /// Append.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<(String, String)>,
    /// Remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderMods {
    /// No change at all.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
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
    /// How the filter picks an endpoint.
    #[serde(default, skip_serializing_if = "LoadBalancer::is_round_robin")]
    pub lb: LoadBalancer,
    /// The endpoint is wherever the client connected (an Istio ServiceEntry with
    /// `resolution: NONE`: Envoy's `ORIGINAL_DST`); `endpoints` is not used.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub original_destination: bool,
}

/// How an endpoint is picked (Istio DestinationRule `loadBalancer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", tag = "type")]
pub enum LoadBalancer {
    /// In turn, per worker.
    #[default]
    RoundRobin,
    /// At random.
    Random,
    /// The endpoint with the fewest requests in flight on this worker.
    LeastRequest,
    /// By a hash of part of the request: the same value always gets the same endpoint (while
    /// the endpoints stay the same); requests without it go round robin.
    #[serde(rename_all = "camelCase")]
    ConsistentHash {
        /// What is hashed.
        key: HashKey,
    },
}

impl LoadBalancer {
    /// The default.
    pub fn is_round_robin(&self) -> bool {
        *self == LoadBalancer::RoundRobin
    }
}

/// What a consistent hash is computed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    tag = "type",
    content = "name"
)]
pub enum HashKey {
    /// A request header's value.
    Header(String),
    /// A cookie's value.
    Cookie(String),
    /// The client's IP address.
    SourceIp,
    /// A query parameter's value.
    QueryParameter(String),
    /// The whole `:path`, query included (nginx's `$request_uri`).
    Path,
    /// An nginx variable expression (ingress-nginx's `upstream-hash-by`, e.g.
    /// `$request_uri$host`): text and variables concatenated over the request as the client sent
    /// it (before rewrites); a variable without a value adds nothing, so every request has a key
    /// (see [`crate::routing::nginx_var`]).
    Nginx(String),
}

impl RoutingConfig {
    /// An empty configuration at the current API version: every request gets 404.
    pub fn empty(generation: impl Into<String>) -> Self {
        RoutingConfig {
            api_version: ROUTING_API_VERSION.to_owned(),
            generation: generation.into(),
            forward: ForwardMode::default(),
            port: default_port(),
            virtual_hosts: Vec::new(),
            default_backend: None,
            backends: BTreeMap::new(),
            passthrough: false,
            host_defaults_only: false,
            tls: None,
            unknown_host_status: None,
        }
    }

    /// An empty configuration for the listener on `port` (generation filled in later).
    pub fn for_listener(port: u16, forward: ForwardMode) -> Self {
        RoutingConfig {
            port,
            forward,
            ..RoutingConfig::empty("")
        }
    }

    /// Parses the JSON the controller wrote.
    ///
    /// # Errors
    /// [`crate::ConfigError::Json`] naming the field path at fault (`virtualHosts[2].routes[0].path`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::ConfigError> {
        crate::json::decode::from_slice(bytes).map_err(|e| crate::ConfigError::Json {
            path: e.path(),
            message: e.message().to_owned(),
        })
    }

    /// Serializes to the JSON the filter parses.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}

mod decode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_redirect_and_hash_fields_are_optional_and_round_trip() {
        // A redirect written before `explicitPort` existed still parses, and a default one
        // serializes as before.
        let old: Redirect =
            serde_json::from_str(r#"{"host":"a","stripTrailingSlash":true}"#).unwrap();
        assert!(!old.explicit_port);
        assert_eq!(serde_json::to_string(&Redirect::default()).unwrap(), "{}");
        let new = Redirect {
            explicit_port: true,
            ..Redirect::default()
        };
        let json = serde_json::to_string(&new).unwrap();
        assert_eq!(json, r#"{"explicitPort":true}"#);
        assert_eq!(serde_json::from_str::<Redirect>(&json).unwrap(), new);
        let key = HashKey::Nginx("$request_uri$host".into());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, r#"{"type":"nginx","name":"$request_uri$host"}"#);
        assert_eq!(serde_json::from_str::<HashKey>(&json).unwrap(), key);
    }
}
