//! The compiled routing table and the per-request decision.

use std::collections::HashMap;

use regex::Regex;

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
            PathRewrite::Regex { substitution, .. } => {
                let Some(re) = &self.rewrite_regex else {
                    return path_and_query.to_owned();
                };
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
        if r.strip_trailing_slash && path.ends_with('/') {
            path.pop();
        }
        if well_known(scheme) == Some(port) {
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
            let ok = req.headers.header(name).is_some_and(|v| m.matches(&v));
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
}

/// Request headers, read on demand (each read may be a host call).
pub trait HeaderSource {
    /// The value of a header (name lower-case), if present.
    fn header(&self, name: &str) -> Option<String>;
}

/// No headers at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeaders;

impl HeaderSource for NoHeaders {
    fn header(&self, _name: &str) -> Option<String> {
        None
    }
}

impl HeaderSource for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
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

/// A percentage as the weights `[share, rest]` out of 10 000, for the weighted round robin that
/// samples faults and mirrors deterministically.
fn shares(percent: f64) -> [u32; 2] {
    let share = (percent.clamp(0.0, 100.0) * 100.0).round() as u32;
    [share, 10_000 - share]
}

impl TryFrom<RoutingConfig> for Router {
    type Error = ConfigError;

    fn try_from(config: RoutingConfig) -> Result<Self, Self::Error> {
        if config.api_version != ROUTING_API_VERSION {
            return Err(ConfigError::ApiVersion {
                got: config.api_version,
                want: ROUTING_API_VERSION,
            });
        }
        let mut needs_source = false;
        let mut backend_ids = HashMap::new();
        let mut backends = Vec::with_capacity(config.backends.len());
        for (key, backend) in config.backends {
            for (i, ep) in backend.endpoints.iter().enumerate() {
                if ep.parse::<std::net::SocketAddr>().is_err() {
                    return Err(ConfigError::Invalid {
                        field: format!("backends[{key:?}].endpoints[{i}]"),
                        message: format!("{ep:?} is not an ip:port"),
                    });
                }
            }
            backend_ids.insert(key.clone(), backends.len());
            backends.push(CompiledBackend {
                key,
                cluster: backend.cluster,
                endpoints: backend.endpoints,
                lb: backend.lb,
            });
        }
        let resolve = |field: String, key: &str| -> Result<BackendId, ConfigError> {
            backend_ids
                .get(key)
                .copied()
                .ok_or_else(|| ConfigError::Invalid {
                    field,
                    message: format!("backend {key:?} is not in backends"),
                })
        };
        let default_backend = match &config.default_backend {
            Some(key) => Some(resolve("defaultBackend".into(), key)?),
            None => None,
        };
        let mut hosts = HostTable::default();
        let mut vhosts = Vec::with_capacity(config.virtual_hosts.len());
        for (vi, vhost) in config.virtual_hosts.into_iter().enumerate() {
            let at = |rest: &str| format!("virtualHosts[{vi}]{rest}");
            let idx = vhosts.len();
            for (hi, host) in vhost.hosts.iter().enumerate() {
                validate_host_pattern(host).map_err(|message| ConfigError::Invalid {
                    field: at(&format!(".hosts[{hi}]")),
                    message,
                })?;
                // A host claimed by an earlier virtual host stays with it.
                hosts.insert(host, vhost.wildcard, idx);
            }
            let mut paths = PathTable::default();
            let mut routes = Vec::with_capacity(vhost.routes.len());
            for (ri, route) in vhost.routes.into_iter().enumerate() {
                let field = |rest: &str| at(&format!(".routes[{ri}]{rest}"));
                let path = match &route.path {
                    PathMatch::Exact(p) => CompiledPath::Exact(p.clone()),
                    PathMatch::Prefix(p) => CompiledPath::Prefix(prefix_key(p).to_owned()),
                    PathMatch::Regex(r) => CompiledPath::Regex(compile_regex(field(".path"), r)?),
                };
                if let PathMatch::Exact(p) | PathMatch::Prefix(p) = &route.path {
                    if !p.starts_with('/') {
                        return Err(ConfigError::Invalid {
                            field: field(".path"),
                            message: format!("path {p:?} must start with '/'"),
                        });
                    }
                }
                let action = match route.action {
                    RouteAction::Forward {
                        backends: bs,
                        rewrite,
                    } => {
                        let mut out = Vec::with_capacity(bs.len());
                        let mut filters = Vec::with_capacity(bs.len());
                        for (bi, b) in bs.into_iter().enumerate() {
                            let at = |rest: &str| field(&format!(".action.backends[{bi}]{rest}"));
                            let id = match &b.backend {
                                Some(key) => Some(resolve(at(".backend"), key)?),
                                None => None,
                            };
                            out.push((id, b.weight));
                            if b.filters.is_empty() {
                                filters.push(None);
                                continue;
                            }
                            let f = b.filters;
                            let regex_path = |p: &Option<PathRewrite>| {
                                matches!(p, Some(PathRewrite::Regex { .. }))
                            };
                            if f.rewrite.as_ref().is_some_and(|r| regex_path(&r.path))
                                || f.redirect.as_ref().is_some_and(|r| regex_path(&r.path))
                            {
                                return Err(ConfigError::Invalid {
                                    field: at(".filters"),
                                    message: "a backend's rewrite or redirect replaces the full \
                                              path or the prefix, not by regex"
                                        .into(),
                                });
                            }
                            let mut mirrors = Vec::with_capacity(f.mirrors.len());
                            for (mi, m) in f.mirrors.iter().enumerate() {
                                let id = resolve(
                                    at(&format!(".filters.mirrors[{mi}].backend")),
                                    &m.backend,
                                )?;
                                mirrors.push((id, shares(m.percent)));
                            }
                            filters.push(Some(Box::new(BackendFilter {
                                request_headers: f.request_headers,
                                response_headers: f.response_headers,
                                rewrite: f.rewrite,
                                redirect: f.redirect,
                                mirrors,
                            })));
                        }
                        Action::Forward {
                            backends: out,
                            rewrite,
                            filters,
                        }
                    }
                    RouteAction::Redirect(r) => Action::Redirect(r),
                    RouteAction::Respond { status, body } => Action::Respond { status, body },
                };
                let mut mirrors = Vec::with_capacity(route.mirrors.len());
                for (mi, m) in route.mirrors.iter().enumerate() {
                    let id = resolve(field(&format!(".mirrors[{mi}].backend")), &m.backend)?;
                    mirrors.push((id, shares(m.percent)));
                }
                let sources = match &route.sources {
                    None => None,
                    Some(list) => {
                        let mut ips = Vec::with_capacity(list.len());
                        for (si, ip) in list.iter().enumerate() {
                            ips.push(ip.parse::<std::net::IpAddr>().map_err(|_| {
                                ConfigError::Invalid {
                                    field: field(&format!(".sources[{si}]")),
                                    message: format!("{ip:?} is not an IP address"),
                                }
                            })?);
                        }
                        needs_source = true;
                        Some(ips)
                    }
                };
                let client_ranges = match &route.client_ranges {
                    None => None,
                    Some(r) => {
                        let parse = |list: &[String], what: &str| {
                            list.iter()
                                .enumerate()
                                .map(|(i, c)| {
                                    c.parse::<Cidr>().map_err(|message| ConfigError::Invalid {
                                        field: field(&format!(".clientRanges.{what}[{i}]")),
                                        message,
                                    })
                                })
                                .collect::<Result<Vec<_>, _>>()
                        };
                        needs_source = true;
                        Some((parse(&r.allow, "allow")?, parse(&r.deny, "deny")?))
                    }
                };
                let cors = match route.cors {
                    None => None,
                    Some(policy) => {
                        let mut origins = Vec::with_capacity(policy.allow_origins.len());
                        for (oi, o) in policy.allow_origins.iter().enumerate() {
                            origins.push(Matcher::compile(
                                field(&format!(".cors.allowOrigins[{oi}]")),
                                o,
                            )?);
                        }
                        Some(CompiledCors { origins, policy })
                    }
                };
                let mut headers = Vec::with_capacity(route.headers.len());
                for (hi, h) in route.headers.iter().enumerate() {
                    headers.push((
                        h.name.to_ascii_lowercase(),
                        Matcher::compile(field(&format!(".headers[{hi}]")), &h.value)?,
                        h.invert,
                    ));
                }
                let mut query = Vec::with_capacity(route.query.len());
                for (qi, q) in route.query.iter().enumerate() {
                    query.push((
                        q.name.clone(),
                        Matcher::compile(field(&format!(".query[{qi}]")), &q.value)?,
                    ));
                }
                let rewrite_source = match &action {
                    Action::Forward {
                        rewrite:
                            Some(Rewrite {
                                path: Some(PathRewrite::Regex { regex, .. }),
                                ..
                            }),
                        ..
                    } => Some(regex),
                    Action::Redirect(Redirect {
                        path: Some(PathRewrite::Regex { regex, .. }),
                        ..
                    }) => Some(regex),
                    _ => None,
                };
                let rewrite_regex = match rewrite_source {
                    Some(re) => Some(Regex::new(re).map_err(|e| ConfigError::Invalid {
                        field: field(".action"),
                        message: format!("rewrite regex {re:?} does not compile: {e}"),
                    })?),
                    None => None,
                };
                let compiled = CompiledRoute {
                    name: route.name,
                    path,
                    rewrite_regex,
                    headers,
                    query,
                    method: route.method,
                    sources,
                    client_ranges,
                    upstream_headers: route.upstream.headers(),
                    cors,
                    action,
                    request_headers: route.request_headers,
                    response_headers: route.response_headers,
                    abort: route.abort.map(|a| (a.status, shares(a.percent))),
                    delay: route.delay.map(|d| (d.millis, shares(d.percent))),
                    mirrors,
                };
                if vhost.order == RouteOrder::LongestPath {
                    if !compiled.headers.is_empty()
                        || !compiled.query.is_empty()
                        || compiled.method.is_some()
                        || compiled.sources.is_some()
                    {
                        return Err(ConfigError::Invalid {
                            field: field(""),
                            message: "a longestPath virtual host matches on the path only".into(),
                        });
                    }
                    let inserted = match &route.path {
                        PathMatch::Exact(p) => paths.insert_exact(p, routes.len()),
                        PathMatch::Prefix(p) => paths.insert_prefix(p, routes.len()),
                        PathMatch::Regex(_) => {
                            return Err(ConfigError::Invalid {
                                field: field(".path"),
                                message: "regex paths need a listed virtual host".into(),
                            })
                        }
                    }
                    .map_err(|e| ConfigError::Invalid {
                        field: field(".path"),
                        message: e.to_string(),
                    })?;
                    // A later route with the same path is shadowed; keep it out of the table.
                    if !inserted {
                        continue;
                    }
                }
                routes.push(compiled);
            }
            let default_backend = match &vhost.default_backend {
                Some(key) => Some(resolve(at(".defaultBackend"), key)?),
                None => None,
            };
            let listed = (vhost.order == RouteOrder::Listed).then(|| {
                ListedIndex::new(routes.iter().map(|r| match &r.path {
                    CompiledPath::Exact(p) => PathSpec::Exact(p),
                    CompiledPath::Prefix(p) => PathSpec::Prefix(p),
                    CompiledPath::Regex(re) => PathSpec::Regex(re.as_str()),
                }))
            });
            vhosts.push(CompiledVhost {
                name: vhost.name,
                order: vhost.order,
                paths,
                listed,
                routes,
                default_backend,
            });
        }
        Ok(Router {
            generation: config.generation,
            forward: config.forward,
            port: config.port,
            hosts,
            vhosts,
            default_backend,
            backends,
            needs_source,
            passthrough: config.passthrough,
        })
    }
}

fn validate_host_pattern(host: &str) -> Result<(), String> {
    if host == "*" {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty()
        || name.contains('*')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(format!("{host:?} is not a host name or *.wildcard"));
    }
    Ok(())
}

impl Router {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        Backend, HeaderMatch, QueryMatch, Route, StringMatch, VirtualHost, WildcardMode,
    };

    fn backend(name: &str) -> Backend {
        Backend {
            cluster: format!("outbound|80||{name}"),
            endpoints: vec!["127.0.0.1:1".into()],
            lb: Default::default(),
        }
    }

    fn vhost(hosts: &[&str], routes: &[(PathMatch, &str)], default: Option<&str>) -> VirtualHost {
        VirtualHost {
            name: format!("vh {hosts:?}"),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            wildcard: WildcardMode::SingleLabel,
            order: RouteOrder::LongestPath,
            routes: routes
                .iter()
                .enumerate()
                .map(|(i, (path, b))| {
                    Route::new(format!("r{i}"), path.clone(), RouteAction::to(*b))
                })
                .collect(),
            default_backend: default.map(str::to_owned),
        }
    }

    fn config() -> RoutingConfig {
        let mut c = RoutingConfig::empty("t");
        for b in ["a", "b", "c", "d", "e", "dflt", "vdflt"] {
            c.backends.insert(b.into(), backend(b));
        }
        c.virtual_hosts = vec![
            vhost(
                &["foo.bar.com"],
                &[
                    (PathMatch::Prefix("/".into()), "a"),
                    (PathMatch::Exact("/x".into()), "b"),
                ],
                None,
            ),
            vhost(
                &["*.bar.com"],
                &[(PathMatch::Prefix("/w".into()), "c")],
                Some("vdflt"),
            ),
            vhost(&["*"], &[(PathMatch::Prefix("/any".into()), "d")], None),
            // Shadowed by the first virtual host for foo.bar.com.
            vhost(
                &["foo.bar.com", "e.test"],
                &[(PathMatch::Prefix("/".into()), "e")],
                None,
            ),
        ];
        c.default_backend = Some("dflt".into());
        c
    }

    fn decide(router: &Router, host: &str, path: &str) -> String {
        let d = router.decide_path(host, path);
        match router.single_backend(&d) {
            Some(b) => router.backend(b).key.clone(),
            None => "404".into(),
        }
    }

    #[test]
    fn decisions() {
        let router = Router::try_from(config()).unwrap();
        for (host, path, want) in [
            ("foo.bar.com", "/", "a"),
            ("foo.bar.com", "/x", "b"),
            ("foo.bar.com", "/x?q=1", "b"),
            ("foo.bar.com", "/x/", "a"),
            ("FOO.bar.com:8080", "/x", "b"),
            ("foo.bar.com.", "/x", "b"),
            ("baz.bar.com", "/w/1", "c"),
            ("baz.bar.com", "/v", "vdflt"),
            ("a.baz.bar.com", "/any/1", "d"),
            ("bar.com", "/any", "d"),
            ("bar.com", "/none", "dflt"),
            ("e.test", "/", "e"),
            ("", "/any", "d"),
        ] {
            assert_eq!(decide(&router, host, path), want, "{host}{path}");
        }
    }

    #[test]
    fn no_default_is_404() {
        let mut c = config();
        c.default_backend = None;
        let router = Router::try_from(c).unwrap();
        assert_eq!(decide(&router, "bar.com", "/none"), "404");
        assert_eq!(decide(&router, "baz.bar.com", "/v"), "vdflt");
    }

    #[test]
    fn describe_names_the_route() {
        let router = Router::try_from(config()).unwrap();
        let d = router.decide_path("foo.bar.com", "/x");
        assert_eq!(
            router.describe(&d),
            "r1 (exact path, host vh [\"foo.bar.com\"])"
        );
        let d = router.decide_path("q.bar.com", "/");
        assert_eq!(router.describe(&d), "vh [\"*.bar.com\"]: default backend");
    }

    #[test]
    fn bad_configs_name_the_field() {
        type Mutation = Box<dyn Fn(&mut RoutingConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.api_version = "v0".into()), "apiVersion"),
            (
                Box::new(|c| c.virtual_hosts[1].routes[0].action = RouteAction::to("zz")),
                "virtualHosts[1].routes[0].action.backends[0].backend",
            ),
            (
                Box::new(|c| c.virtual_hosts[0].routes[1].path = PathMatch::Exact("x".into())),
                "virtualHosts[0].routes[1].path",
            ),
            (
                Box::new(|c| c.virtual_hosts[2].hosts[0] = "a b".into()),
                "virtualHosts[2].hosts[0]",
            ),
            (
                Box::new(|c| c.virtual_hosts[2].hosts[0] = "*.*.b".into()),
                "virtualHosts[2].hosts[0]",
            ),
            (
                Box::new(|c| c.default_backend = Some("nope".into())),
                "defaultBackend",
            ),
            (
                Box::new(|c| c.virtual_hosts[1].default_backend = Some("nope".into())),
                "virtualHosts[1].defaultBackend",
            ),
            (
                Box::new(|c| {
                    c.backends
                        .get_mut("a")
                        .unwrap()
                        .endpoints
                        .push("h:1".into())
                }),
                "backends[\"a\"].endpoints[1]",
            ),
        ];
        for (mutate, field) in cases {
            let mut c = config();
            mutate(&mut c);
            let err = Router::try_from(c).unwrap_err();
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn json_errors_name_the_path() {
        let mut v: serde_json::Value = serde_json::from_str(&config().to_json()).unwrap();
        v["virtualHosts"][0]["routes"][1]["path"]["type"] = "Glob".into();
        let err = Router::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("virtualHosts[0].routes[1].path"),
            "{err}"
        );
        v["virtualHosts"][0]["routes"][1]["path"]["type"] = "exact".into();
        v["virtualHosts"][0]["extra"] = true.into();
        let err = Router::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        for junk in [&b""[..], b"{", b"[]", b"null", b"\xff\xfe"] {
            assert!(Router::from_json(junk).is_err());
        }
    }

    fn listed(routes: Vec<Route>) -> Router {
        let mut c = RoutingConfig::empty("t");
        for b in ["a", "b", "c"] {
            c.backends.insert(b.into(), backend(b));
        }
        c.virtual_hosts = vec![VirtualHost {
            name: "gw".into(),
            hosts: vec!["*.example.com".into()],
            wildcard: WildcardMode::MultiLabel,
            order: RouteOrder::Listed,
            routes,
            default_backend: None,
        }];
        Router::try_from(c).unwrap()
    }

    #[test]
    fn routes_by_client_address() {
        let mut from_a = route("from-a", PathMatch::Prefix("/".into()), "a");
        from_a.sources = Some(vec!["127.0.0.5".into(), "::1".into()]);
        let mut nobody = route("nobody", PathMatch::Prefix("/".into()), "b");
        nobody.sources = Some(vec![]);
        let router = listed(vec![
            nobody,
            from_a,
            route("rest", PathMatch::Prefix("/".into()), "c"),
        ]);
        assert!(router.needs_source());
        let go = |source: Option<&str>| {
            let d = router.decide(&Request {
                authority: "x.example.com",
                path: "/",
                method: "GET",
                headers: &NoHeaders,
                source: source.map(|s| s.parse().unwrap()),
            });
            router
                .backend(router.single_backend(&d).unwrap())
                .key
                .clone()
        };
        assert_eq!(go(Some("127.0.0.5")), "a");
        assert_eq!(go(Some("::1")), "a");
        assert_eq!(go(Some("127.0.0.6")), "c");
        assert_eq!(go(None), "c");
        assert!(!listed(vec![route("r", PathMatch::Prefix("/".into()), "a")]).needs_source());

        let mut bad = route("bad", PathMatch::Prefix("/".into()), "a");
        bad.sources = Some(vec!["pod-a".into()]);
        let mut c = RoutingConfig::empty("t");
        c.backends.insert("a".into(), backend("a"));
        c.virtual_hosts = vec![VirtualHost {
            name: "gw".into(),
            hosts: vec!["*".into()],
            wildcard: WildcardMode::MultiLabel,
            order: RouteOrder::Listed,
            routes: vec![bad],
            default_backend: None,
        }];
        let err = Router::try_from(c).unwrap_err().to_string();
        assert!(
            err.contains("sources[0]") && err.contains("not an IP address"),
            "{err}"
        );
    }

    fn route(name: &str, path: PathMatch, backend: &str) -> Route {
        Route::new(name, path, RouteAction::to(backend))
    }

    #[test]
    fn listed_routes_match_every_condition_first_wins() {
        let mut with_header = route("h", PathMatch::Prefix("/".into()), "a");
        with_header.headers = vec![HeaderMatch {
            name: "X-Version".into(),
            value: StringMatch::Regex("v[12]".into()),
            invert: false,
        }];
        let mut with_query = route("q", PathMatch::Prefix("/".into()), "b");
        with_query.query = vec![QueryMatch {
            name: "animal".into(),
            value: StringMatch::Exact("whale".into()),
        }];
        with_query.method = Some("POST".into());
        let regex = route("r", PathMatch::Regex("/r/[0-9]+".into()), "c");
        let router = listed(vec![with_header, with_query, regex]);
        let go = |path: &str, method: &str, headers: &Vec<(String, String)>| {
            let d = router.decide(&Request {
                authority: "a.b.example.com",
                path,
                method,
                headers,
                source: None,
            });
            router
                .single_backend(&d)
                .map(|b| router.backend(b).key.clone())
        };
        let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(go("/x", "GET", &h("x-version", "v2")).as_deref(), Some("a"));
        assert_eq!(go("/x", "GET", &h("x-version", "v3")), None);
        assert_eq!(
            go("/x", "GET", &h("x-version", "v22")),
            None,
            "regexes are anchored"
        );
        assert_eq!(go("/x?animal=whale", "POST", &vec![]).as_deref(), Some("b"));
        assert_eq!(
            go("/x?a=1&animal=whale", "POST", &vec![]).as_deref(),
            Some("b")
        );
        assert_eq!(go("/x?animal=whale", "GET", &vec![]), None);
        assert_eq!(go("/x?animal=whales", "POST", &vec![]), None);
        assert_eq!(go("/r/42", "GET", &vec![]).as_deref(), Some("c"));
        assert_eq!(go("/r/42/x", "GET", &vec![]), None);
        assert_eq!(
            router.decide_path("example.com", "/r/1"),
            Decision::NoRoute,
            "a wildcard never takes the apex"
        );
    }

    #[test]
    fn bad_regexes_and_mixed_orders_are_refused() {
        let mut c = config();
        c.virtual_hosts[0].routes[0].path = PathMatch::Regex("(".into());
        let err = Router::try_from(c).unwrap_err().to_string();
        assert!(
            err.contains("virtualHosts[0].routes[0].path") && err.contains("does not compile"),
            "{err}"
        );
        let mut c = config();
        c.virtual_hosts[0].routes[0].method = Some("GET".into());
        let err = Router::try_from(c).unwrap_err().to_string();
        assert!(err.contains("matches on the path only"), "{err}");
    }

    #[test]
    fn prefix_replacement_follows_the_gateway_api_table() {
        for (path, prefix, repl, want) in [
            ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo/", "/foo", "/xyz", "/xyz/"),
            ("/foo/bar", "/foo", "", "/bar"),
            ("/foo/", "/foo", "", "/"),
            ("/foo", "/foo", "", "/"),
            ("/foo/", "/foo", "/", "/"),
            ("/foo", "/foo", "/", "/"),
            ("/foo/bar?x=1", "/foo", "/y", "/y/bar?x=1"),
            ("/anything", "", "/pre", "/pre/anything"),
        ] {
            assert_eq!(
                replace_prefix(path, prefix, repl),
                want,
                "{path} {prefix} {repl}"
            );
        }
    }
}

#[cfg(test)]
mod rewrite_tests {
    use super::*;
    use crate::config::{Backend, Route, VirtualHost, WildcardMode};

    fn one_route(path: PathMatch, action: RouteAction) -> Router {
        let mut c = RoutingConfig::empty("t");
        c.backends.insert(
            "a".into(),
            Backend {
                cluster: "c".into(),
                endpoints: vec![],
                lb: Default::default(),
            },
        );
        c.virtual_hosts = vec![VirtualHost {
            name: "v".into(),
            hosts: vec!["*".into()],
            wildcard: WildcardMode::SingleLabel,
            order: RouteOrder::Listed,
            routes: vec![Route::new("r", path, action)],
            default_backend: None,
        }];
        Router::try_from(c).unwrap()
    }

    #[test]
    fn regex_rewrites_expand_captures_and_keep_the_query() {
        let rw = PathRewrite::Regex {
            regex: "(?i)^/something(/|$)(.*)".into(),
            substitution: "/$2".into(),
        };
        let router = one_route(
            PathMatch::Regex("(?i)/something(/|$)(.*)".into()),
            RouteAction::Forward {
                backends: vec![],
                rewrite: Some(Rewrite {
                    host: None,
                    path: Some(rw.clone()),
                }),
            },
        );
        let r = router.route(0, 0);
        for (input, want) in [
            ("/something", "/"),
            ("/something/", "/"),
            ("/something/new", "/new"),
            ("/SOMETHING/new?x=1", "/new?x=1"),
            ("/other", "/other"),
        ] {
            assert_eq!(r.rewrite_path(&rw, input), want, "{input}");
        }
    }

    #[test]
    fn redirect_locations() {
        let router = one_route(
            PathMatch::Prefix("/old".into()),
            RouteAction::Respond {
                status: 200,
                body: String::new(),
            },
        );
        let r = router.route(0, 0);
        let loc = |red: Redirect, scheme: &str, port: u16| {
            r.redirect_location(&red, scheme, "Shop.Example.com:8080", "/old/x?q=1", port)
        };
        assert_eq!(
            loc(Redirect::default(), "http", 80),
            "http://shop.example.com/old/x?q=1"
        );
        assert_eq!(
            loc(Redirect::default(), "http", 8080),
            "http://shop.example.com:8080/old/x?q=1"
        );
        assert_eq!(
            loc(
                Redirect {
                    scheme: Some("https".into()),
                    ..Redirect::default()
                },
                "http",
                8080
            ),
            "https://shop.example.com/old/x?q=1"
        );
        assert_eq!(
            loc(
                Redirect {
                    port: Some(8443),
                    scheme: Some("https".into()),
                    ..Redirect::default()
                },
                "http",
                80
            ),
            "https://shop.example.com:8443/old/x?q=1"
        );
        assert_eq!(
            loc(
                Redirect {
                    host: Some("new.test".into()),
                    path: Some(PathRewrite::Prefix("/new".into())),
                    ..Redirect::default()
                },
                "http",
                80
            ),
            "http://new.test/new/x?q=1"
        );
        assert_eq!(
            loc(
                Redirect {
                    path: Some(PathRewrite::Full("/f".into())),
                    ..Redirect::default()
                },
                "http",
                80
            ),
            "http://shop.example.com/f?q=1"
        );
        assert_eq!(
            loc(
                Redirect {
                    url: Some("https://x.test/y".into()),
                    ..Redirect::default()
                },
                "http",
                80
            ),
            "https://x.test/y"
        );
    }
}

#[cfg(test)]
mod explain_tests {
    use super::*;
    use crate::config::{Backend, HeaderMatch, Route, StringMatch, VirtualHost, WildcardMode};

    #[test]
    fn explains_every_route_tried() {
        let mut c = RoutingConfig::empty("t");
        c.backends.insert(
            "a".into(),
            Backend {
                cluster: "c".into(),
                endpoints: vec![],
                lb: Default::default(),
            },
        );
        let route = |name: &str, path: PathMatch, headers: Vec<HeaderMatch>| Route {
            headers,
            ..Route::new(name, path, RouteAction::to("a"))
        };
        c.virtual_hosts = vec![VirtualHost {
            name: "v".into(),
            hosts: vec!["*.example.com".into()],
            wildcard: WildcardMode::MultiLabel,
            order: RouteOrder::Listed,
            routes: vec![
                route("exact", PathMatch::Exact("/x".into()), vec![]),
                route(
                    "hdr",
                    PathMatch::Prefix("/".into()),
                    vec![HeaderMatch {
                        name: "v".into(),
                        value: StringMatch::Exact("2".into()),
                        invert: false,
                    }],
                ),
                route("all", PathMatch::Prefix("/".into()), vec![]),
            ],
            default_backend: None,
        }];
        let router = Router::try_from(c).unwrap();
        let (d, trace) = router.decide_path_explained("a.example.com", "/y");
        assert_eq!(d, Decision::Route { vhost: 0, route: 2 });
        assert_eq!(trace[2], "route 0 exact: path does not match exact \"/x\"");
        assert_eq!(trace[3], "route 1 hdr: header v does not match exact \"2\"");
        assert_eq!(trace[4], "route 2 all: matches");
        assert!(
            trace[5].starts_with("decision: all") && trace[5].ends_with("forward to a (weight 1)"),
            "{}",
            trace[5]
        );
        let (_, trace) = router.decide_path_explained("example.com", "/");
        assert_eq!(trace[1], "no virtual host takes this host");
    }
}
