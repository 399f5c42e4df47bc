//! Gateway API (`gateway.networking.k8s.io/v1`): GatewayClass, Gateway, HTTPRoute and
//! ReferenceGrant, translated into per-listener routing configurations.
//!
//! # Semantics (from the Gateway API specification)
//! - A route attaches to a Gateway listener through `parentRefs` (`sectionName`, `port`), if the
//!   listener's `allowedRoutes` admits its namespace (`Same` by default, `All`, `Selector`) and
//!   kind. Its effective hostnames are the intersection of its `hostnames` with the listener's
//!   `hostname`; a route with hostnames and no intersection does not attach.
//! - `*.example.com` covers one or more labels, never `example.com`. A request takes the most
//!   specific hostname (exact, then the longest wildcard, then none); within it, matches are
//!   tried in the spec's precedence: exact path, longest prefix, method, most headers, most
//!   query parameters, oldest route, `namespace/name`, rule order. Regex paths come after exact
//!   paths and before prefixes (the spec leaves their place to implementations).
//! - A rule without `matches` matches `PathPrefix /`. Backend weights default to 1; weight 0
//!   never receives traffic; an unresolvable reference (missing Service, other kinds, another
//!   namespace without a ReferenceGrant) answers 500 for its share.

use std::collections::{BTreeMap, HashMap};

use portico_core::config::{
    Backend, BackendFilters, Cors, ForwardMode, HeaderMatch, HeaderMods, Mirror, PathMatch,
    PathRewrite, QueryMatch, Redirect, Rewrite, Route, RouteAction, RouteOrder, RoutingConfig,
    StringMatch, UpstreamPolicy, VirtualHost, WeightedBackend, WildcardMode,
};

use crate::model::gateway::*;
use crate::model::{namespace_of, Object, ObjectMeta, Resource};
use crate::translate::{backend_key, cluster_name, ErrorKind, Index, TranslateError};

/// An origin pattern of the Gateway API (`https://*.example.com`, `*`) as a string match.
fn origin_match(origin: &str) -> StringMatch {
    if origin == "*" {
        StringMatch::Regex(".*".into())
    } else if origin.contains('*') {
        StringMatch::Regex(regex::escape(origin).replace("\\*", ".*"))
    } else {
        StringMatch::Exact(origin.to_owned())
    }
}

const GROUP: &str = "gateway.networking.k8s.io";

/// The intersection of a route hostname and a listener hostname (`None`: no intersection).
pub fn intersect(route: &str, listener: Option<&str>) -> Option<String> {
    let Some(listener) = listener else {
        return Some(route.to_owned());
    };
    let covers = |wild: &str, name: &str| {
        wild.strip_prefix('*')
            .is_some_and(|suffix| name.len() > suffix.len() && name.ends_with(suffix))
    };
    if route == listener || covers(listener, route) {
        Some(route.to_owned())
    } else if covers(route, listener) {
        Some(listener.to_owned())
    } else {
        None
    }
}

/// How specifically a listener takes `host`: exactly that hostname (2), a wildcard covering it
/// (1, longer is more specific), no hostname (0); `None` when it does not take it.
fn listener_rank(l: &GatewayListener, host: &str) -> Option<(u8, usize)> {
    match l.hostname.as_deref() {
        None => Some((0, 0)),
        Some(h) if h.eq_ignore_ascii_case(host) => Some((2, h.len())),
        Some(h) => {
            let suffix = h.strip_prefix('*')?;
            (host.len() > suffix.len() && host.ends_with(suffix)).then_some((1, h.len()))
        }
    }
}

/// Whether some listener on the port takes `host` more specifically than `l` does.
fn outranked(listeners: &[(&Gateway, &GatewayListener)], l: &GatewayListener, host: &str) -> bool {
    let own = listener_rank(l, host);
    listeners
        .iter()
        .filter_map(|(_, other)| listener_rank(other, host))
        .any(|r| Some(r) > own)
}

/// Sort key of one match, in the spec's precedence order (smaller first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Precedence {
    path_kind: u8,
    path_len: std::cmp::Reverse<usize>,
    no_method: bool,
    headers: std::cmp::Reverse<usize>,
    query: std::cmp::Reverse<usize>,
    created: String,
    route: String,
    rule: usize,
    matched: usize,
}

struct Attached<'a> {
    route: &'a HttpRoute,
    hostnames: Vec<String>,
}

fn listener_admits(
    gateway: &Gateway,
    listener: &GatewayListener,
    route: &HttpRoute,
    namespaces: &HashMap<&str, &ObjectMeta>,
) -> bool {
    let allowed = listener.allowed_routes.clone().unwrap_or_default();
    if let Some(kinds) = &allowed.kinds {
        if !kinds
            .iter()
            .any(|k| k.kind == "HTTPRoute" && k.group.as_deref().unwrap_or(GROUP) == GROUP)
        {
            return false;
        }
    }
    let gw_ns = namespace_of(&gateway.metadata);
    let route_ns = namespace_of(&route.metadata);
    let from = allowed
        .namespaces
        .as_ref()
        .and_then(|n| n.from.clone())
        .unwrap_or_else(|| "Same".into());
    match from.as_str() {
        "All" => true,
        "Selector" => {
            let selector = allowed
                .namespaces
                .as_ref()
                .and_then(|n| n.selector.clone())
                .unwrap_or_default();
            let mut labels = namespaces
                .get(route_ns)
                .map(|m| m.labels.clone())
                .unwrap_or_default();
            labels
                .entry("kubernetes.io/metadata.name".into())
                .or_insert_with(|| route_ns.to_owned());
            selector.matches(&labels)
        }
        _ => gw_ns == route_ns,
    }
}

fn string_match(type_: Option<&str>, value: &str) -> Result<StringMatch, String> {
    match type_.unwrap_or("Exact") {
        "Exact" => Ok(StringMatch::Exact(value.to_owned())),
        "RegularExpression" => Ok(StringMatch::Regex(value.to_owned())),
        other => Err(format!("type {other:?} is not Exact or RegularExpression")),
    }
}

fn header_mods(m: &HeaderModifier) -> HeaderMods {
    HeaderMods {
        set: m
            .set
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
            .collect(),
        add: m
            .add
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
            .collect(),
        remove: m.remove.iter().map(|h| h.to_ascii_lowercase()).collect(),
    }
}

fn path_modifier(m: &HttpPathModifier, field: &str) -> Result<PathRewrite, (String, ErrorKind)> {
    match (
        m.type_.as_str(),
        &m.replace_full_path,
        &m.replace_prefix_match,
    ) {
        ("ReplaceFullPath", Some(p), _) => Ok(PathRewrite::Full(p.clone())),
        ("ReplacePrefixMatch", _, Some(p)) => Ok(PathRewrite::Prefix(p.clone())),
        (t, _, _) => Err((
            format!("{field}.type"),
            ErrorKind::Invalid(format!("{t:?} needs its matching replace field")),
        )),
    }
}

/// Everything one rule does besides matching.
struct RuleAction {
    action: RouteAction,
    request: HeaderMods,
    response: HeaderMods,
    mirrors: Vec<Mirror>,
    upstream: UpstreamPolicy,
    cors: Option<Cors>,
}

/// Resolves a Service reference of an HTTPRoute to a backend key (registering the backend).
/// `None`, with a warning naming `field`, when it does not resolve.
#[allow(clippy::too_many_arguments)]
fn service_ref(
    b: &HttpBackendRef,
    field: &str,
    route: &HttpRoute,
    objects: &[Object],
    index: &Index<'_>,
    backends: &mut BTreeMap<String, Backend>,
    warnings: &mut Vec<(String, ErrorKind)>,
) -> Option<String> {
    let route_ns = namespace_of(&route.metadata);
    let group = b.group.as_deref().unwrap_or("");
    let kind = b.kind.as_deref().unwrap_or("Service");
    let ns = b.namespace.as_deref().unwrap_or(route_ns);
    // A mesh route may send to the Service it is attached to wherever that Service lives (a
    // consumer route's parent): no ReferenceGrant needed for it.
    let is_parent = route.spec.parent_refs.iter().any(|p| {
        p.kind.as_deref() == Some("Service")
            && p.group.as_deref().unwrap_or("").is_empty()
            && p.name == b.name
            && p.namespace.as_deref().unwrap_or(route_ns) == ns
    });
    if !group.is_empty() || kind != "Service" {
        warnings.push((
            format!("{field}.kind"),
            ErrorKind::MissingReference(format!("{group}/{kind} is not a supported backend kind")),
        ));
        return None;
    }
    if ns != route_ns && !is_parent && !granted(objects, route_ns, ns, &b.name) {
        warnings.push((
            format!("{field}.namespace"),
            ErrorKind::MissingReference(format!(
                "no ReferenceGrant in {ns} lets HTTPRoutes of {route_ns} refer to Service {}",
                b.name
            )),
        ));
        return None;
    }
    let Some(port) = b.port else {
        warnings.push((
            format!("{field}.port"),
            ErrorKind::Invalid("required for a Service".into()),
        ));
        return None;
    };
    let Some(svc) = index.services.get(&(ns, b.name.as_str())) else {
        warnings.push((
            format!("{field}.name"),
            ErrorKind::MissingReference(format!("Service {ns}/{} not found", b.name)),
        ));
        return None;
    };
    let key = backend_key(ns, &b.name, port);
    let port_name = svc
        .spec
        .ports
        .iter()
        .find(|p| p.port == port)
        .map(|p| p.name.clone().unwrap_or_default());
    if port_name.is_none() {
        warnings.push((
            format!("{field}.port"),
            ErrorKind::MissingReference(format!("Service {ns}/{} has no port {port}", b.name)),
        ));
    }
    let endpoints = port_name
        .map(|n| index.endpoints(ns, &b.name, &n))
        .unwrap_or_default();
    backends.entry(key.clone()).or_insert(Backend {
        cluster: cluster_name(ns, &b.name, port),
        endpoints,
        lb: Default::default(),
    });
    Some(key)
}

/// What a list of HTTPRoute filters (a rule's, or a backendRef's) does.
#[derive(Default)]
struct Filters {
    request: HeaderMods,
    response: HeaderMods,
    redirect: Option<Redirect>,
    rewrite: Option<Rewrite>,
    mirrors: Vec<Mirror>,
    cors: Option<Cors>,
}

/// Translates a list of filters at `at` (`spec.rules[0]` or `spec.rules[0].backendRefs[1]`).
#[allow(clippy::too_many_arguments)]
fn filters(
    list: &[HttpRouteFilter],
    at: &str,
    route: &HttpRoute,
    objects: &[Object],
    index: &Index<'_>,
    backends: &mut BTreeMap<String, Backend>,
    warnings: &mut Vec<(String, ErrorKind)>,
) -> Result<Filters, (String, ErrorKind)> {
    let unsupported =
        |field: String, what: &str| Err((field, ErrorKind::Unsupported(what.to_owned())));
    let mut out = Filters::default();
    for (fi, f) in list.iter().enumerate() {
        let field = format!("{at}.filters[{fi}]");
        match f.type_.as_str() {
            "RequestHeaderModifier" => {
                let m = f.request_header_modifier.as_ref().ok_or((
                    format!("{field}.requestHeaderModifier"),
                    ErrorKind::Invalid("required".into()),
                ))?;
                out.request = header_mods(m);
            }
            "ResponseHeaderModifier" => {
                let m = f.response_header_modifier.as_ref().ok_or((
                    format!("{field}.responseHeaderModifier"),
                    ErrorKind::Invalid("required".into()),
                ))?;
                out.response = header_mods(m);
            }
            "RequestRedirect" => {
                let r = f.request_redirect.as_ref().ok_or((
                    format!("{field}.requestRedirect"),
                    ErrorKind::Invalid("required".into()),
                ))?;
                let path = match &r.path {
                    Some(p) => Some(path_modifier(p, &format!("{field}.requestRedirect.path"))?),
                    None => None,
                };
                if let Some(code) = r.status_code {
                    if ![301, 302, 303, 307, 308].contains(&code) {
                        return Err((
                            format!("{field}.requestRedirect.statusCode"),
                            ErrorKind::Invalid(format!("{code} is not 301, 302, 303, 307 or 308")),
                        ));
                    }
                }
                out.redirect = Some(Redirect {
                    url: None,
                    scheme: r.scheme.clone(),
                    host: r.hostname.clone(),
                    port: r.port,
                    path,
                    status: r.status_code,
                    strip_trailing_slash: false,
                });
            }
            "URLRewrite" => {
                let r = f.url_rewrite.as_ref().ok_or((
                    format!("{field}.urlRewrite"),
                    ErrorKind::Invalid("required".into()),
                ))?;
                let path = match &r.path {
                    Some(p) => Some(path_modifier(p, &format!("{field}.urlRewrite.path"))?),
                    None => None,
                };
                out.rewrite = Some(Rewrite {
                    host: r.hostname.clone(),
                    path,
                });
            }
            "RequestMirror" => {
                let field = format!("{field}.requestMirror");
                let m = f
                    .request_mirror
                    .as_ref()
                    .ok_or((field.clone(), ErrorKind::Invalid("required".into())))?;
                if m.backend_ref.weight.is_some() || !m.backend_ref.filters.is_empty() {
                    return Err((
                        format!("{field}.backendRef"),
                        ErrorKind::Invalid("a mirror backendRef has no weight or filters".into()),
                    ));
                }
                let percent = match (m.percent, &m.fraction) {
                    (Some(_), Some(_)) => {
                        return Err((
                            field,
                            ErrorKind::Invalid("percent and fraction are exclusive".into()),
                        ))
                    }
                    (Some(p), None) if p <= 100 => f64::from(p),
                    (None, Some(fr)) => {
                        let d = fr.denominator.unwrap_or(100);
                        if d == 0 || fr.numerator > d {
                            return Err((
                                format!("{field}.fraction"),
                                ErrorKind::Invalid(
                                    "needs 0 <= numerator <= denominator, denominator > 0".into(),
                                ),
                            ));
                        }
                        f64::from(fr.numerator) * 100.0 / f64::from(d)
                    }
                    (None, None) => 100.0,
                    (Some(p), None) => {
                        return Err((
                            format!("{field}.percent"),
                            ErrorKind::Invalid(format!("{p} is over 100")),
                        ))
                    }
                };
                // A mirror that does not resolve is left out; the route still serves.
                if let Some(backend) = service_ref(
                    &m.backend_ref,
                    &format!("{field}.backendRef"),
                    route,
                    objects,
                    index,
                    backends,
                    warnings,
                ) {
                    out.mirrors.push(Mirror { backend, percent });
                }
            }
            "CORS" => {
                let c = f.cors.as_ref().ok_or((
                    format!("{field}.cors"),
                    ErrorKind::Invalid("required".into()),
                ))?;
                out.cors = Some(Cors {
                    allow_origins: c.allow_origins.iter().map(|o| origin_match(o)).collect(),
                    allow_methods: c.allow_methods.clone(),
                    allow_headers: c.allow_headers.clone(),
                    expose_headers: c.expose_headers.clone(),
                    max_age: Some(c.max_age.unwrap_or(5)),
                    allow_credentials: c.allow_credentials.unwrap_or(false),
                    nginx: false,
                });
            }
            "ExtensionRef" => {
                return unsupported(format!("{field}.extensionRef"), "ExtensionRef filters")
            }
            other => {
                return unsupported(format!("{field}.type"), &format!("filter type {other:?}"))
            }
        }
    }
    Ok(out)
}

/// Translates one rule's filters and backends. Errors name the field.
fn rule_action(
    route: &HttpRoute,
    ri: usize,
    rule: &HttpRouteRule,
    objects: &[Object],
    index: &Index<'_>,
    backends: &mut BTreeMap<String, Backend>,
    warnings: &mut Vec<(String, ErrorKind)>,
) -> Result<RuleAction, (String, ErrorKind)> {
    let at = |rest: &str| format!("spec.rules[{ri}]{rest}");
    let unsupported =
        |field: String, what: &str| Err((field, ErrorKind::Unsupported(what.to_owned())));
    let mut upstream = UpstreamPolicy::default();
    if let Some(t) = &rule.timeouts {
        let ms = |v: &Option<String>, f: &str| -> Result<Option<u64>, (String, ErrorKind)> {
            v.as_deref()
                .map(|d| {
                    crate::istio::duration_ms(d)
                        .map_err(|e| (at(&format!(".timeouts.{f}")), ErrorKind::Invalid(e)))
                })
                .transpose()
        };
        upstream.timeout_ms = ms(&t.request, "request")?;
        upstream.per_try_timeout_ms = ms(&t.backend_request, "backendRequest")?;
        if let (Some(r), Some(b)) = (upstream.timeout_ms, upstream.per_try_timeout_ms) {
            if r != 0 && b > r {
                return Err((
                    at(".timeouts.backendRequest"),
                    ErrorKind::Invalid("must not be longer than timeouts.request".into()),
                ));
            }
        }
    }
    if let Some(r) = &rule.retry {
        // The spec: retry on connection errors whenever a retry stanza is configured, and on
        // the listed codes.
        let mut on = vec!["connect-failure", "refused-stream", "reset"];
        if !r.codes.is_empty() {
            on.push("retriable-status-codes");
        }
        upstream.retry_on = Some(on.join(","));
        upstream.retriable_status_codes = r.codes.clone();
        upstream.retries = r.attempts;
        if r.backoff.is_some() {
            warnings.push((
                at(".retry.backoff"),
                ErrorKind::Ignored("Envoy's default backoff is used".into()),
            ));
        }
    }
    if rule.session_persistence.is_some() {
        return unsupported(at(".sessionPersistence"), "session persistence");
    }
    let Filters {
        request,
        response,
        redirect,
        rewrite,
        mirrors,
        cors,
    } = filters(
        &rule.filters,
        &at(""),
        route,
        objects,
        index,
        backends,
        warnings,
    )?;
    if let Some(r) = redirect {
        if !rule.backend_refs.is_empty() {
            // The spec forbids both; the redirect answers and the backends would never be used.
            warnings.push((
                at(".backendRefs"),
                ErrorKind::Invalid("ignored: the rule redirects".into()),
            ));
        }
        return Ok(RuleAction {
            action: RouteAction::Redirect(r),
            request,
            response,
            mirrors,
            upstream,
            cors: cors.clone(),
        });
    }
    if rule.backend_refs.is_empty() {
        // No backend and nothing answering: every request gets 500.
        return Ok(RuleAction {
            action: RouteAction::Forward {
                backends: vec![WeightedBackend {
                    backend: None,
                    weight: 1,
                    filters: Default::default(),
                }],
                rewrite,
            },
            request,
            response,
            mirrors,
            upstream,
            cors: cors.clone(),
        });
    }
    let mut out = Vec::with_capacity(rule.backend_refs.len());
    for (bi, b) in rule.backend_refs.iter().enumerate() {
        let field = at(&format!(".backendRefs[{bi}]"));
        let weight = b.weight.unwrap_or(1);
        let resolved = service_ref(b, &field, route, objects, index, backends, warnings);
        let f = filters(
            &b.filters, &field, route, objects, index, backends, warnings,
        )?;
        if f.cors.is_some() {
            return unsupported(format!("{field}.filters"), "CORS on a backendRef");
        }
        out.push(WeightedBackend {
            backend: resolved,
            weight,
            filters: BackendFilters {
                request_headers: f.request,
                response_headers: f.response,
                rewrite: f.rewrite,
                redirect: f.redirect,
                mirrors: f.mirrors,
            },
        });
    }
    Ok(RuleAction {
        action: RouteAction::Forward {
            backends: out,
            rewrite,
        },
        request,
        response,
        mirrors,
        upstream,
        cors,
    })
}

/// Whether a ReferenceGrant in `to_ns` lets HTTPRoutes of `from_ns` refer to Service `name`.
fn granted(objects: &[Object], from_ns: &str, to_ns: &str, name: &str) -> bool {
    objects.iter().any(|o| match o {
        Object::ReferenceGrant(g) => {
            namespace_of(&g.metadata) == to_ns
                && g.spec
                    .from
                    .iter()
                    .any(|f| f.group == GROUP && f.kind == "HTTPRoute" && f.namespace == from_ns)
                && g.spec.to.iter().any(|t| {
                    t.group.is_empty()
                        && t.kind == "Service"
                        && t.name.as_deref().is_none_or(|n| n == name)
                })
        }
        _ => false,
    })
}

/// The candidates of one route for one hostname: every (rule, match) with its precedence.
fn candidates(
    route: &HttpRoute,
    actions: &[RuleAction],
) -> Result<Vec<(Precedence, Route)>, (String, ErrorKind)> {
    let object = format!(
        "HTTPRoute {}/{}",
        namespace_of(&route.metadata),
        route.metadata.name
    );
    let mut out = Vec::new();
    for (ri, rule) in route.spec.rules.iter().enumerate() {
        let default_match = [HttpRouteMatch::default()];
        let matches: &[HttpRouteMatch] = if rule.matches.is_empty() {
            &default_match
        } else {
            &rule.matches
        };
        for (mi, m) in matches.iter().enumerate() {
            let field = format!("spec.rules[{ri}].matches[{mi}]");
            let (kind, value) = match &m.path {
                None => ("PathPrefix".to_owned(), "/".to_owned()),
                Some(p) => (
                    p.type_.clone().unwrap_or_else(|| "PathPrefix".into()),
                    p.value.clone().unwrap_or_else(|| "/".into()),
                ),
            };
            let (path, path_kind, path_len) = match kind.as_str() {
                "Exact" => (PathMatch::Exact(value.clone()), 0, value.len()),
                "RegularExpression" => (PathMatch::Regex(value.clone()), 1, value.len()),
                "PathPrefix" => {
                    let len = value.trim_end_matches('/').len();
                    (PathMatch::Prefix(value.clone()), 2, len)
                }
                other => {
                    return Err((
                        format!("{field}.path.type"),
                        ErrorKind::Invalid(format!(
                            "{other:?} is not Exact, PathPrefix or RegularExpression"
                        )),
                    ))
                }
            };
            if kind != "RegularExpression" && !value.starts_with('/') {
                return Err((
                    format!("{field}.path.value"),
                    ErrorKind::Invalid(format!("{value:?} must start with '/'")),
                ));
            }
            if kind == "RegularExpression" {
                regex::Regex::new(&value).map_err(|e| {
                    (
                        format!("{field}.path.value"),
                        ErrorKind::Invalid(format!("regex does not compile: {e}")),
                    )
                })?;
            }
            // Only the first match of a header name counts (the spec's rule for duplicates).
            let mut headers: Vec<HeaderMatch> = Vec::new();
            for (hi, h) in m.headers.iter().enumerate() {
                if headers.iter().any(|x| x.name.eq_ignore_ascii_case(&h.name)) {
                    continue;
                }
                let value = string_match(h.type_.as_deref(), &h.value)
                    .map_err(|e| (format!("{field}.headers[{hi}].type"), ErrorKind::Invalid(e)))?;
                if let StringMatch::Regex(r) = &value {
                    regex::Regex::new(r).map_err(|e| {
                        (
                            format!("{field}.headers[{hi}].value"),
                            ErrorKind::Invalid(format!("regex does not compile: {e}")),
                        )
                    })?;
                }
                headers.push(HeaderMatch {
                    name: h.name.to_ascii_lowercase(),
                    value,
                    invert: false,
                });
            }
            let mut query: Vec<QueryMatch> = Vec::new();
            for (qi, q) in m.query_params.iter().enumerate() {
                if query.iter().any(|x| x.name == q.name) {
                    continue;
                }
                let value = string_match(q.type_.as_deref(), &q.value).map_err(|e| {
                    (
                        format!("{field}.queryParams[{qi}].type"),
                        ErrorKind::Invalid(e),
                    )
                })?;
                if let StringMatch::Regex(r) = &value {
                    regex::Regex::new(r).map_err(|e| {
                        (
                            format!("{field}.queryParams[{qi}].value"),
                            ErrorKind::Invalid(format!("regex does not compile: {e}")),
                        )
                    })?;
                }
                query.push(QueryMatch {
                    name: q.name.clone(),
                    value,
                });
            }
            let a = &actions[ri];
            let precedence = Precedence {
                path_kind,
                path_len: std::cmp::Reverse(path_len),
                no_method: m.method.is_none(),
                headers: std::cmp::Reverse(headers.len()),
                query: std::cmp::Reverse(query.len()),
                created: route
                    .metadata
                    .creation_timestamp
                    .clone()
                    .unwrap_or_default(),
                route: format!("{}/{}", namespace_of(&route.metadata), route.metadata.name),
                rule: ri,
                matched: mi,
            };
            out.push((
                precedence,
                Route {
                    name: format!("{object} {field}"),
                    path,
                    headers,
                    query,
                    method: m.method.clone(),
                    sources: None,
                    client_ranges: None,
                    upstream: a.upstream.clone(),
                    cors: a.cors.clone(),
                    action: a.action.clone(),
                    request_headers: a.request.clone(),
                    response_headers: a.response.clone(),
                    abort: None,
                    delay: None,
                    mirrors: a.mirrors.clone(),
                },
            ));
        }
    }
    Ok(out)
}

/// An HTTPRoute attached to a Service (the Gateway API's mesh support, GAMMA): its routes apply
/// to requests a sidecar sends to that Service.
#[derive(Debug, Clone)]
pub(crate) struct MeshAttachment {
    /// The Service port it applies to (`None`: every port).
    pub port: Option<u16>,
    /// A consumer route (in another namespace than the Service) applies only to requests from
    /// Pods of its own namespace; `None` for a producer route.
    pub consumer: Option<String>,
    /// Its routes, with their precedence.
    cands: Vec<(Precedence, Route)>,
}

impl MeshAttachment {
    /// Routes of several attachments merged in the spec's precedence order.
    pub fn merged<'a>(attachments: impl IntoIterator<Item = &'a MeshAttachment>) -> Vec<Route> {
        let mut all: Vec<&(Precedence, Route)> =
            attachments.into_iter().flat_map(|a| &a.cands).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter().map(|(_, r)| r.clone()).collect()
    }
}

/// Mesh attachments by Service `(namespace, name)`.
pub(crate) type MeshRoutes = BTreeMap<(String, String), Vec<MeshAttachment>>;

/// Translates every Gateway and HTTPRoute into the per-port configurations, and returns the
/// HTTPRoutes attached to Services (for the sidecar).
pub(crate) fn translate_gateways(
    objects: &[Object],
    index: &Index<'_>,
    forward: ForwardMode,
    ports: &mut BTreeMap<u16, RoutingConfig>,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) -> MeshRoutes {
    let mut mesh = MeshRoutes::new();
    let gateways: Vec<&Gateway> = objects
        .iter()
        .filter_map(|o| {
            if let Object::Gateway(g) = o {
                Some(g)
            } else {
                None
            }
        })
        .collect();
    let mut routes: Vec<&HttpRoute> = objects
        .iter()
        .filter_map(|o| {
            if let Object::HttpRoute(r) = o {
                Some(r)
            } else {
                None
            }
        })
        .collect();
    if gateways.is_empty() && routes.is_empty() {
        return mesh;
    }
    let namespaces: HashMap<&str, &ObjectMeta> = objects
        .iter()
        .filter_map(|o| {
            if let Object::Namespace(n) = o {
                Some((n.metadata.name.as_str(), &n.metadata))
            } else {
                None
            }
        })
        .collect();
    routes.sort_by_key(|r| {
        (
            r.metadata.creation_timestamp.clone().unwrap_or_default(),
            namespace_of(&r.metadata).to_owned(),
            r.metadata.name.clone(),
        )
    });
    let route_ref = |r: &HttpRoute| r.object_ref();

    // Listeners by port.
    let mut listeners: BTreeMap<u16, Vec<(&Gateway, &GatewayListener)>> = BTreeMap::new();
    for g in &gateways {
        for (li, l) in g.spec.listeners.iter().enumerate() {
            if l.protocol != "HTTP" {
                errors.push(TranslateError {
                    object: g.object_ref(),
                    field: format!("spec.listeners[{li}].protocol"),
                    // The Gateway's other listeners still serve: only this one is left out.
                    kind: ErrorKind::Ignored(format!(
                        "{} listeners are not supported yet (HTTP only); this listener is not served",
                        l.protocol
                    )),
                });
                continue;
            }
            // Listeners that share a port must differ in hostname; the spec forbids picking a
            // winner among conflicted ones, so none of them is served.
            let conflict = g.spec.listeners.iter().enumerate().find(|(lj, o)| {
                *lj != li
                    && o.port == l.port
                    && o.protocol == l.protocol
                    && o.hostname.as_deref().map(str::to_ascii_lowercase)
                        == l.hostname.as_deref().map(str::to_ascii_lowercase)
            });
            if let Some((lj, o)) = conflict {
                errors.push(TranslateError {
                    object: g.object_ref(),
                    field: format!("spec.listeners[{li}]"),
                    kind: ErrorKind::Ignored(format!("conflicts with listener {} (spec.listeners[{lj}]): same port and hostname; neither is served", o.name)),
                });
                // The port stays open and answers 404: nothing on it is accepted for routing.
                listeners.entry(l.port).or_default();
                continue;
            }
            listeners.entry(l.port).or_default().push((g, l));
        }
    }

    // Each route's actions, once.
    let mut per_route: Vec<(&HttpRoute, Vec<RuleAction>)> = Vec::new();
    for r in &routes {
        let mut warnings = Vec::new();
        let mut actions = Vec::new();
        let mut failed = None;
        for (ri, rule) in r.spec.rules.iter().enumerate() {
            match rule_action(r, ri, rule, objects, index, backends, &mut warnings) {
                Ok(a) => actions.push(a),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        for (field, kind) in warnings {
            errors.push(TranslateError {
                object: route_ref(r),
                field,
                kind,
            });
        }
        match failed {
            Some((field, kind)) => errors.push(TranslateError {
                object: route_ref(r),
                field,
                kind,
            }),
            None => per_route.push((r, actions)),
        }
    }

    // Routes attached to Services (GAMMA): hostnames do not apply; the Service must exist.
    for (r, actions) in &per_route {
        let route_ns = namespace_of(&r.metadata);
        let mut cands = None;
        for (pi, parent) in r.spec.parent_refs.iter().enumerate() {
            if parent.kind.as_deref() != Some("Service")
                || !parent.group.as_deref().unwrap_or("").is_empty()
            {
                continue;
            }
            let ns = parent.namespace.as_deref().unwrap_or(route_ns);
            if !index.services.contains_key(&(ns, parent.name.as_str())) {
                errors.push(TranslateError {
                    object: route_ref(r),
                    field: format!("spec.parentRefs[{pi}].name"),
                    kind: ErrorKind::MissingReference(format!(
                        "Service {ns}/{} not found",
                        parent.name
                    )),
                });
                continue;
            }
            if cands.is_none() {
                match candidates(r, actions) {
                    Ok(c) => cands = Some(c),
                    Err((field, kind)) => {
                        errors.push(TranslateError {
                            object: route_ref(r),
                            field,
                            kind,
                        });
                        break;
                    }
                }
            }
            let Some(cands) = &cands else { break };
            mesh.entry((ns.to_owned(), parent.name.clone()))
                .or_default()
                .push(MeshAttachment {
                    port: parent.port,
                    consumer: (ns != route_ns).then(|| route_ns.to_owned()),
                    cands: cands.clone(),
                });
        }
    }

    for (port, port_listeners) in listeners {
        // hostname pattern → candidates
        let mut vhosts: BTreeMap<String, Vec<(Precedence, Route)>> = BTreeMap::new();
        for (r, actions) in &per_route {
            let mut attached: Option<Attached<'_>> = None;
            for (pi, parent) in r.spec.parent_refs.iter().enumerate() {
                if parent.group.as_deref().unwrap_or(GROUP) != GROUP
                    || parent.kind.as_deref().unwrap_or("Gateway") != "Gateway"
                {
                    continue;
                }
                let parent_ns = parent
                    .namespace
                    .as_deref()
                    .unwrap_or(namespace_of(&r.metadata));
                for (g, l) in &port_listeners {
                    if g.metadata.name != parent.name || namespace_of(&g.metadata) != parent_ns {
                        continue;
                    }
                    if parent.section_name.as_deref().is_some_and(|s| s != l.name)
                        || parent.port.is_some_and(|p| p != l.port)
                    {
                        continue;
                    }
                    if !listener_admits(g, l, r, &namespaces) {
                        continue;
                    }
                    let names: Vec<String> = if r.spec.hostnames.is_empty() {
                        vec![l.hostname.clone().unwrap_or_else(|| "*".into())]
                    } else {
                        r.spec
                            .hostnames
                            .iter()
                            .filter_map(|h| {
                                intersect(&h.to_ascii_lowercase(), l.hostname.as_deref())
                            })
                            .collect()
                    };
                    if names.is_empty() {
                        errors.push(TranslateError {
                            object: route_ref(r),
                            field: format!("spec.parentRefs[{pi}]"),
                            kind: ErrorKind::MissingReference(format!(
                                "no hostname intersects listener {} of Gateway {}/{}",
                                l.name, parent_ns, g.metadata.name
                            )),
                        });
                        continue;
                    }
                    let a = attached.get_or_insert(Attached {
                        route: r,
                        hostnames: Vec::new(),
                    });
                    for n in names {
                        // Listener isolation: a request goes to the most specific listener that
                        // takes its host; a hostname another listener takes more specifically is
                        // not this listener's.
                        if outranked(&port_listeners, l, &n) {
                            continue;
                        }
                        if !a.hostnames.contains(&n) {
                            a.hostnames.push(n);
                        }
                    }
                }
            }
            let Some(a) = attached else { continue };
            let cands = match candidates(a.route, actions) {
                Ok(c) => c,
                Err((field, kind)) => {
                    errors.push(TranslateError {
                        object: route_ref(r),
                        field,
                        kind,
                    });
                    continue;
                }
            };
            for h in &a.hostnames {
                vhosts
                    .entry(h.clone())
                    .or_default()
                    .extend(cands.iter().cloned());
            }
        }
        // Every listener hostname has a virtual host, so a request its listener takes but none of
        // its routes match gets 404 instead of falling to a less specific listener's routes.
        for (_, l) in &port_listeners {
            vhosts
                .entry(l.hostname.clone().unwrap_or_else(|| "*".into()))
                .or_default();
        }
        let config = ports
            .entry(port)
            .or_insert_with(|| RoutingConfig::for_listener(port, forward));
        for (host, mut cands) in vhosts {
            cands.sort_by(|a, b| a.0.cmp(&b.0));
            config.virtual_hosts.push(VirtualHost {
                name: format!("Gateway API host {host} (port {port})"),
                hosts: vec![host],
                wildcard: WildcardMode::MultiLabel,
                order: RouteOrder::Listed,
                routes: cands.into_iter().map(|(_, r)| r).collect(),
                default_backend: None,
            });
        }
    }
    mesh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_intersection() {
        for (route, listener, want) in [
            ("foo.example.com", None, Some("foo.example.com")),
            (
                "foo.example.com",
                Some("foo.example.com"),
                Some("foo.example.com"),
            ),
            (
                "foo.example.com",
                Some("*.example.com"),
                Some("foo.example.com"),
            ),
            (
                "a.b.example.com",
                Some("*.example.com"),
                Some("a.b.example.com"),
            ),
            ("example.com", Some("*.example.com"), None),
            (
                "*.example.com",
                Some("foo.example.com"),
                Some("foo.example.com"),
            ),
            (
                "*.example.com",
                Some("*.example.com"),
                Some("*.example.com"),
            ),
            (
                "*.foo.example.com",
                Some("*.example.com"),
                Some("*.foo.example.com"),
            ),
            (
                "*.example.com",
                Some("*.foo.example.com"),
                Some("*.foo.example.com"),
            ),
            ("bar.test", Some("foo.test"), None),
        ] {
            assert_eq!(
                intersect(route, listener).as_deref(),
                want,
                "{route} ∩ {listener:?}"
            );
        }
    }
}
