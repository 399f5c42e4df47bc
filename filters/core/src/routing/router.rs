//! The compiled routing table and the per-request decision.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::matching::re2::Regex;

use crate::config::{
    ForwardMode, HeaderMods, PathMatch, PathRewrite, Redirect, Rewrite, RouteAction, RouteOrder,
    RoutingConfig, ROUTING_API_VERSION,
};
use crate::matching::cidr::Cidr;
use crate::matching::host::{normalize_host, HostTable};
use crate::matching::path::{path_only, prefix_key, PathKind, PathTable};
use crate::matching::string::{compile_regex, Matcher};
use crate::routing::cors::CompiledCors;
use crate::routing::listed::{ListedIndex, PathSpec};
use crate::ConfigError;

/// Index of a backend in the router.
pub type BackendId = usize;

/// A backend ready for requests.
#[derive(Debug, Clone)]
pub struct CompiledBackend {
    /// Key (`name.namespace.svc.cluster.local:port`).
    pub key: String,
    /// Envoy cluster name.
    pub cluster: String,
    /// Ready endpoints, `ip:port`.
    pub endpoints: Vec<String>,
    /// How an endpoint is picked.
    pub lb: crate::config::LoadBalancer,
    /// The endpoint is where the client connected.
    pub original_destination: bool,
}

#[derive(Debug, Clone)]
enum CompiledPath {
    Exact(String),
    /// Without its trailing `/`.
    Prefix(String),
    Regex(Regex),
}

impl CompiledPath {
    fn matches(&self, path: &str) -> bool {
        match self {
            CompiledPath::Exact(p) => p == path,
            CompiledPath::Prefix(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            CompiledPath::Regex(r) => r.is_match(path),
        }
    }
}

/// What a compiled route does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Forward to a backend picked by weight; `None` entries are invalid references.
    Forward {
        /// `(backend, weight)`.
        backends: Vec<(Option<BackendId>, u32)>,
        /// Rewrite before forwarding.
        rewrite: Option<Rewrite>,
        /// Per backend (same order), its own filters, if it has any.
        filters: Vec<Option<Box<BackendFilter>>>,
    },
    /// Redirect.
    Redirect(Redirect),
    /// Fixed answer.
    Respond {
        /// Status.
        status: u16,
        /// Body.
        body: String,
    },
}

/// What a request picked for one backend gets on top of its route's changes.
#[derive(Debug, Clone)]
pub struct BackendFilter {
    /// Request header changes, after the route's.
    pub request_headers: HeaderMods,
    /// Response header changes, after the route's.
    pub response_headers: HeaderMods,
    /// Rewrite in place of the route's.
    pub rewrite: Option<Rewrite>,
    /// Host for this backend when the rewrite that applies sets none.
    pub host: Option<String>,
    /// Redirect instead of forwarding.
    pub redirect: Option<Redirect>,
    /// Mirrors and their weights `[mirror, skip]` out of 10 000, besides the route's.
    pub mirrors: Vec<(BackendId, [u32; 2])>,
}

/// A route ready for requests.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// Diagnostic name.
    pub name: String,
    path: CompiledPath,
    /// The compiled regex of a `PathRewrite::Regex` (in the rewrite or the redirect).
    rewrite_regex: Option<Regex>,
    headers: Vec<(String, Matcher, bool)>,
    query: Vec<(String, Matcher)>,
    method: Option<String>,
    /// Client addresses the route applies to (`None`: any).
    sources: Option<Vec<std::net::IpAddr>>,
    /// Which clients the route serves once matched: `(allow, deny)`.
    pub client_ranges: Option<(Vec<Cidr>, Vec<Cidr>)>,
    /// Timeouts and retries, as the request headers Envoy's router reads.
    pub upstream_headers: Vec<(&'static str, String)>,
    /// The CORS policy.
    pub cors: Option<CompiledCors>,
    /// What to do.
    pub action: Action,
    /// Request header changes.
    pub request_headers: HeaderMods,
    /// Response header changes.
    pub response_headers: HeaderMods,
    /// Injected fault: status and the weights `[abort, pass]` out of 10 000.
    pub abort: Option<(u16, [u32; 2])>,
    /// Injected delay: milliseconds and the weights `[delay, pass]` out of 10 000.
    pub delay: Option<(u64, [u32; 2])>,
    /// Mirrors: backend and the weights `[mirror, skip]` out of 10 000.
    pub mirrors: Vec<(BackendId, [u32; 2])>,
    /// Client certificate rules (ingress-nginx `auth-tls-*`) and the compiled subject regex.
    pub client_certificate: Option<(crate::config::ClientCertificate, Option<Regex>)>,
}

impl CompiledRoute {
    /// The `Prefix` value (without trailing `/`) when the route matches by prefix.
    pub fn prefix(&self) -> Option<&str> {
        match &self.path {
            CompiledPath::Prefix(p) => Some(p),
            _ => None,
        }
    }

    /// The path (query kept) after a rewrite, or `None` when `rewrite` leaves it alone.
    pub fn rewrite_path(&self, rewrite: &PathRewrite, path_and_query: &str) -> String {
        let (path, query) = match path_and_query.find('?') {
            Some(i) => path_and_query.split_at(i),
            None => (path_and_query, ""),
        };
        match rewrite {
            PathRewrite::Full(p) => {
                if p.contains('?') {
                    p.clone()
                } else {
                    format!("{p}{query}")
                }
            }
            PathRewrite::Prefix(p) => {
                replace_prefix(path_and_query, self.prefix().unwrap_or(""), p)
            }
            PathRewrite::Regex {
                substitution,
                global,
                ..
            } => {
                let Some(re) = &self.rewrite_regex else {
                    return path_and_query.to_owned();
                };
                if *global {
                    // Envoy's regex_rewrite: every match substituted, the query kept as is.
                    let out = re.replace_all(path, substitution.as_str());
                    return format!("{out}{query}");
                }
                let Some(caps) = re.captures(path) else {
                    return path_and_query.to_owned();
                };
                let mut out = String::new();
                caps.expand(substitution, &mut out);
                if !out.starts_with('/') {
                    out.insert(0, '/');
                }
                // nginx keeps the query unless the replacement has its own.
                if !out.contains('?') {
                    out.push_str(query);
                }
                out
            }
        }
    }

    /// The `Location` of a redirect: each part from the redirect, else from the request; the
    /// port is left out when it is the scheme's own.
    pub fn redirect_location(
        &self,
        r: &Redirect,
        scheme: &str,
        authority: &str,
        path: &str,
        listener_port: u16,
    ) -> String {
        if let Some(url) = &r.url {
            return url.clone();
        }
        let well_known = |s: &str| match s {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        let scheme = r.scheme.as_deref().unwrap_or(scheme);
        let host = match &r.host {
            Some(h) => h.clone(),
            None => normalize_host(authority).into_owned(),
        };
        let port = r.port.unwrap_or_else(|| match &r.scheme {
            Some(s) => well_known(s).unwrap_or(listener_port),
            None => listener_port,
        });
        let mut path = match &r.path {
            None => path.to_owned(),
            Some(rw) => self.rewrite_path(rw, path),
        };
        if r.drop_query {
            if let Some(q) = path.find('?') {
                path.truncate(q);
            }
        }
        if r.strip_trailing_slash && path.ends_with('/') {
            path.pop();
        }
        if well_known(scheme) == Some(port) && !r.explicit_port {
            format!("{scheme}://{host}{path}")
        } else {
            format!("{scheme}://{host}:{port}{path}")
        }
    }

    fn matches(&self, req: &Request<'_>, path: &str) -> bool {
        self.check(req, path).is_ok()
    }

    /// The first condition that fails, if any (no allocation: the hot path uses it too).
    fn check(&self, req: &Request<'_>, path: &str) -> Result<(), Miss> {
        if !self.path.matches(path) {
            return Err(Miss::Path);
        }
        self.check_rest(req)
    }

    /// [`CompiledRoute::check`] for a path already known to match.
    fn check_rest(&self, req: &Request<'_>) -> Result<(), Miss> {
        if let Some(m) = &self.method {
            if m != req.method {
                return Err(Miss::Method);
            }
        }
        if let Some(set) = &self.sources {
            if !req.source.is_some_and(|ip| set.contains(&ip)) {
                return Err(Miss::Source);
            }
        }
        for (i, (name, m, invert)) in self.headers.iter().enumerate() {
            let ok = req.headers.header(name).is_some_and(|v| m.matches(v));
            if ok == *invert {
                return Err(Miss::Header(i));
            }
        }
        for (i, (name, m)) in self.query.iter().enumerate() {
            if !query_values(req.path, name).any(|v| m.matches(v)) {
                return Err(Miss::Query(i));
            }
        }
        Ok(())
    }

    /// Why the route does not take the request, in words (for traces).
    fn explain_miss(&self, miss: Miss) -> String {
        match miss {
            Miss::Path => format!("path does not match {}", self.path.describe()),
            Miss::Method => format!("method is not {}", self.method.as_deref().unwrap_or("")),
            Miss::Source => format!(
                "the client address is not one of the route's {} source addresses",
                self.sources.as_ref().map_or(0, Vec::len)
            ),
            Miss::Header(i) => {
                let (name, m, invert) = &self.headers[i];
                format!(
                    "header {name} {}{}",
                    if *invert {
                        "matches (must not) "
                    } else {
                        "does not match "
                    },
                    m.describe()
                )
            }
            Miss::Query(i) => format!(
                "query parameter {} does not match {}",
                self.query[i].0,
                self.query[i].1.describe()
            ),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Miss {
    Path,
    Method,
    Source,
    Header(usize),
    Query(usize),
}

impl CompiledPath {
    fn describe(&self) -> String {
        match self {
            CompiledPath::Exact(p) => format!("exact {p:?}"),
            CompiledPath::Prefix(p) => format!("prefix {:?}", if p.is_empty() { "/" } else { p }),
            CompiledPath::Regex(r) => format!("regex {:?}", r.as_str()),
        }
    }
}

/// The values of a query parameter, in order (no percent-decoding).
fn query_values<'a>(path_and_query: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    query.split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name && !pair.is_empty()).then_some(v)
    })
}

#[derive(Debug, Clone)]
struct CompiledVhost {
    name: String,
    order: RouteOrder,
    paths: PathTable<usize>,
    /// The path index of a `listed` host (`None` for `longestPath`).
    listed: Option<ListedIndex>,
    routes: Vec<CompiledRoute>,
    default_backend: Option<BackendId>,
}

impl CompiledVhost {
    /// The first route in list order whose whole match holds, through the index.
    fn first_listed(&self, index: &ListedIndex, req: &Request<'_>, path: &str) -> Option<usize> {
        index.first(path, |i, path_known| {
            let r = &self.routes[i];
            if path_known {
                debug_assert!(r.path.matches(path), "{} indexed for {path:?}", r.name);
                r.check_rest(req).is_ok()
            } else {
                r.check(req, path).is_ok()
            }
        })
    }
}

/// A [`RoutingConfig`] compiled for lookups: host table, path tables, backends by index.
#[derive(Debug, Clone)]
pub struct Router {
    generation: String,
    forward: ForwardMode,
    port: u16,
    hosts: HostTable<usize>,
    vhosts: Vec<CompiledVhost>,
    default_backend: Option<BackendId>,
    backends: Vec<CompiledBackend>,
    /// Some route matches on the client address.
    needs_source: bool,
    /// Unknown hosts go to the addressed destination.
    passthrough: bool,
    /// A host's unmatched requests never go to the global default backend.
    host_defaults_only: bool,
    /// The port's TLS table (Host checks and response headers for requests over TLS).
    tls: Option<crate::tls::select::TlsTable>,
    /// The status for unknown hosts (REGISTRY_ONLY), instead of 404.
    unknown_host_status: Option<u16>,
}

/// Request headers as the router reads them (borrowed: the filter has read the whole map once).
pub trait HeaderSource {
    /// The value of a header (name lower-case), if present.
    fn header(&self, name: &str) -> Option<&str>;
}

/// No headers at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeaders;

impl HeaderSource for NoHeaders {
    fn header(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Request headers as the filter reads them from its host: each name and value borrowed from
/// the host's buffer, owned only where it was not UTF-8 (replaced lossily) or was edited.
pub type RequestHeaders<'h> = Vec<(Cow<'h, str>, Cow<'h, str>)>;

impl HeaderSource for RequestHeaders<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| crate::matching::same_header_name(k, name))
            .map(|(_, v)| v.as_ref())
    }
}

impl HeaderSource for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| crate::matching::same_header_name(k, name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the router looks at.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// `:authority`.
    pub authority: &'a str,
    /// `:path`, query included.
    pub path: &'a str,
    /// `:method`.
    pub method: &'a str,
    /// Other headers.
    pub headers: &'a dyn HeaderSource,
    /// The client's address; only routes with `sources` read it (see [`Router::needs_source`]).
    pub source: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("authority", &self.authority)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What the router decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A route matched.
    Route {
        /// Virtual host index.
        vhost: usize,
        /// Route index.
        route: usize,
    },
    /// No route matched; a default backend takes the request.
    Default {
        /// The backend.
        backend: BackendId,
        /// The virtual host whose default it is (`None`: the global one).
        vhost: Option<usize>,
    },
    /// Nothing takes the request: 404.
    NoRoute,
}

impl Router {
    /// The port's TLS table, when the listener terminates TLS.
    pub fn tls(&self) -> Option<&crate::tls::select::TlsTable> {
        self.tls.as_ref()
    }

    /// The status a request for an unknown host gets instead of 404 (REGISTRY_ONLY's 502).
    pub fn unknown_host_status(&self) -> Option<u16> {
        self.unknown_host_status
    }

    /// Whether some route matches on the client address (so [`Request::source`] must be given).
    pub fn needs_source(&self) -> bool {
        self.needs_source
    }

    /// Parses and compiles a configuration in one step.
    ///
    /// # Errors
    /// Any [`ConfigError`]: bad JSON (with the field path), wrong API version, a route naming an
    /// unknown backend, an invalid path, host, regex or endpoint.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Router::try_from(RoutingConfig::from_json(bytes)?)
    }

    /// The configuration's generation string.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// Whether requests may go to the destination the client addressed (the sidecar under
    /// ALLOW_ANY).
    pub fn passthrough(&self) -> bool {
        self.passthrough
    }

    /// Whether a request no virtual host takes goes to the destination the client addressed
    /// (see [`crate::config::RoutingConfig::passthrough`]).
    pub fn passes_through(&self, authority: &str) -> bool {
        self.passthrough
            && self.default_backend.is_none()
            && self.hosts.get(&normalize_host(authority)).is_none()
    }

    /// How forwarded requests reach their backend.
    pub fn forward_mode(&self) -> ForwardMode {
        self.forward
    }

    /// The listener port clients addressed.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A backend by id.
    pub fn backend(&self, id: BackendId) -> &CompiledBackend {
        &self.backends[id]
    }

    /// Number of backends (for sizing per-backend state such as [`crate::lb::RoundRobin`]).
    pub fn backend_count(&self) -> usize {
        self.backends.len()
    }

    /// A route by its indices (from [`Decision::Route`]).
    pub fn route(&self, vhost: usize, route: usize) -> &CompiledRoute {
        &self.vhosts[vhost].routes[route]
    }

    /// Decides where a request goes.
    ///
    /// Host first (exact, then the longest wildcard, then the catch-all). Within the host, a
    /// `longestPath` host takes the longest matching path (`Exact` over `Prefix` on a tie); a
    /// `listed` host takes the first route whose whole match holds. Then the host's default
    /// backend, then the global one; else [`Decision::NoRoute`]. A host no virtual host takes
    /// goes to the global default.
    ///
    /// A `listed` host finds its route through a path index (exact paths, prefixes and the
    /// literal start of regexes; see `routing/listed.rs`) that yields only the routes whose path
    /// can match, so the cost does not grow with the number of routes — except for regexes with
    /// no literal start (`(?i)…`, `[a-z]+/…`), which are candidates for every path.
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        self.decide_with(req, true)
    }

    /// [`Router::decide`] with `listed` hosts scanned route by route, as the definition says: the
    /// baseline for benchmarks and the reference for tests.
    #[doc(hidden)]
    pub fn decide_linear(&self, req: &Request<'_>) -> Decision {
        self.decide_with(req, false)
    }

    fn decide_with(&self, req: &Request<'_>, indexed: bool) -> Decision {
        let host = normalize_host(req.authority);
        let path = path_only(req.path);
        if let Some(&vi) = self.hosts.get(&host) {
            let vhost = &self.vhosts[vi];
            let hit = match (vhost.order, &vhost.listed) {
                (RouteOrder::LongestPath, _) => vhost.paths.lookup(path).map(|h| *h.value),
                (RouteOrder::Listed, Some(index)) if indexed => {
                    vhost.first_listed(index, req, path)
                }
                (RouteOrder::Listed, _) => vhost.routes.iter().position(|r| r.matches(req, path)),
            };
            if let Some(route) = hit {
                return Decision::Route { vhost: vi, route };
            }
            if let Some(backend) = vhost.default_backend {
                return Decision::Default {
                    backend,
                    vhost: Some(vi),
                };
            }
            if self.host_defaults_only {
                return Decision::NoRoute;
            }
        }
        match self.default_backend {
            Some(backend) => Decision::Default {
                backend,
                vhost: None,
            },
            None => Decision::NoRoute,
        }
    }

    /// [`Router::decide`], with a trace of every step: which virtual host took the host, each
    /// route tried and why it failed, which matched, and what it does. Not for the hot path.
    pub fn explain(&self, req: &Request<'_>) -> (Decision, Vec<String>) {
        let mut trace = Vec::new();
        let host = normalize_host(req.authority);
        let path = path_only(req.path);
        trace.push(format!(
            "request {} host {host:?} (authority {:?}) path {path:?}",
            req.method, req.authority
        ));
        match self.hosts.get(&host) {
            None => trace.push("no virtual host takes this host".into()),
            Some(&vi) => {
                let v = &self.vhosts[vi];
                trace.push(format!(
                    "virtual host {:?} (hosts by specificity; routes {:?})",
                    v.name, v.order
                ));
                match v.order {
                    RouteOrder::LongestPath => match v.paths.lookup(path) {
                        Some(hit) => trace.push(format!(
                            "longest matching path: {} ({:?}, {} characters)",
                            v.routes[*hit.value].name, hit.kind, hit.len
                        )),
                        None => trace.push("no path of this host matches".into()),
                    },
                    RouteOrder::Listed => {
                        for (i, r) in v.routes.iter().enumerate() {
                            match r.check(req, path) {
                                Ok(()) => {
                                    trace.push(format!("route {i} {}: matches", r.name));
                                    break;
                                }
                                Err(miss) => trace.push(format!(
                                    "route {i} {}: {}",
                                    r.name,
                                    r.explain_miss(miss)
                                )),
                            }
                        }
                    }
                }
            }
        }
        let decision = self.decide(req);
        let action = match decision {
            Decision::Route { vhost, route } => match &self.route(vhost, route).action {
                Action::Forward {
                    backends,
                    rewrite,
                    filters,
                } => {
                    let names: Vec<String> = backends
                        .iter()
                        .enumerate()
                        .map(|(i, (b, w))| {
                            format!(
                                "{} (weight {w}){}",
                                b.map_or("<invalid reference>".to_owned(), |b| self
                                    .backend(b)
                                    .key
                                    .clone()),
                                match filters.get(i).and_then(Option::as_deref) {
                                    Some(f) if f.redirect.is_some() => " with its own redirect",
                                    Some(_) => " with its own filters",
                                    None => "",
                                }
                            )
                        })
                        .collect();
                    format!(
                        "forward to {}{}",
                        names.join(", "),
                        if rewrite.is_some() { ", rewritten" } else { "" }
                    )
                }
                Action::Redirect(r) => format!("redirect {}", r.status.unwrap_or(302)),
                Action::Respond { status, .. } => format!("respond {status}"),
            },
            Decision::Default { backend, .. } => {
                format!("forward to {}", self.backend(backend).key)
            }
            Decision::NoRoute => "404".into(),
        };
        let mut extras = Vec::new();
        if let Decision::Route { vhost, route } = decision {
            let r = self.route(vhost, route);
            let pct = |w: &[u32; 2]| f64::from(w[0]) / 100.0;
            if let Some((ms, w)) = &r.delay {
                extras.push(format!("delay {ms} ms for {}% of requests", pct(w)));
            }
            if let Some((status, w)) = &r.abort {
                extras.push(format!("abort {status} for {}% of requests", pct(w)));
            }
            for (id, w) in &r.mirrors {
                extras.push(format!("mirror {}% to {}", pct(w), self.backend(*id).key));
            }
        }
        let extras: String = extras.iter().map(|e| format!("; {e}")).collect();
        trace.push(format!(
            "decision: {} → {action}{extras}",
            self.describe(&decision)
        ));
        (decision, trace)
    }

    /// [`Router::explain`] for a GET without headers.
    pub fn decide_path_explained(&self, authority: &str, path: &str) -> (Decision, Vec<String>) {
        self.explain(&Request {
            authority,
            path,
            method: "GET",
            headers: &NoHeaders,
            source: None,
        })
    }

    /// [`Router::decide`] for a GET without headers.
    pub fn decide_path(&self, authority: &str, path: &str) -> Decision {
        self.decide(&Request {
            authority,
            path,
            method: "GET",
            headers: &NoHeaders,
            source: None,
        })
    }

    /// The backend a decision forwards to when it has exactly one candidate (defaults, and routes
    /// with one weighted backend); `None` otherwise.
    pub fn single_backend(&self, decision: &Decision) -> Option<BackendId> {
        match *decision {
            Decision::Default { backend, .. } => Some(backend),
            Decision::Route { vhost, route } => match &self.route(vhost, route).action {
                Action::Forward { backends, .. } => match backends.as_slice() {
                    [(b, _)] => *b,
                    _ => None,
                },
                _ => None,
            },
            Decision::NoRoute => None,
        }
    }

    /// Names what took a request: `Ingress default/shop rules[0].http.paths[1]`.
    pub fn describe(&self, decision: &Decision) -> String {
        match *decision {
            Decision::Route { vhost, route } => {
                let v = &self.vhosts[vhost];
                let kind = match (&v.order, &v.routes[route].path) {
                    (_, CompiledPath::Exact(_)) => PathKind::Exact,
                    _ => PathKind::Prefix,
                };
                let kind = if kind == PathKind::Exact {
                    "exact"
                } else {
                    "prefix/regex"
                };
                format!("{} ({kind} path, host {})", v.routes[route].name, v.name)
            }
            Decision::Default { vhost: Some(v), .. } => {
                format!("{}: default backend", self.vhosts[v].name)
            }
            Decision::Default { vhost: None, .. } => "default backend".to_owned(),
            Decision::NoRoute => "no route".to_owned(),
        }
    }
}

/// Replaces the part of `path` a `Prefix` match took (`prefix`, without its trailing `/`) with
/// `replacement`, as the Gateway API's `ReplacePrefixMatch` does: `/foo/bar` with prefix `/foo`
/// and replacement `/xyz` becomes `/xyz/bar`; an empty result is `/`. The query is kept.
pub fn replace_prefix(path_and_query: &str, prefix: &str, replacement: &str) -> String {
    let (path, query) = match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    };
    let rest = path.get(prefix.len()..).unwrap_or("");
    let head = replacement.trim_end_matches('/');
    let mut out = format!("{head}{rest}");
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out.push_str(query);
    out
}

mod compile;

pub use compile::validate_host_pattern;
#[cfg(test)]
mod explain_tests;
#[cfg(test)]
mod rewrite_tests;
#[cfg(test)]
mod tests;
