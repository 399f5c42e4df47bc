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

mod rules;
pub mod status;
mod tls;

use std::collections::{BTreeMap, HashMap};

use portico_core::config::{
    Backend, ForwardMode, HeaderMatch, PathMatch, QueryMatch, Route, RouteOrder, RoutingConfig,
    StringMatch, VirtualHost, WildcardMode,
};

use self::rules::{rule_action, string_match, RuleAction};
use super::common::{Index, MeshAttachment, MeshRoutes, Precedence};
use super::diagnostics::{ErrorKind, TranslateError};
use super::tls::TlsOut;
use crate::model::gateway::*;
use crate::model::{namespace_of, Object, ObjectMeta, Resource};

pub(super) const GROUP: &str = "gateway.networking.k8s.io";

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

/// A route's effective hostnames on a listener: its `hostnames` intersected with the
/// listener's hostname (none: the listener's, or `*`); empty when none intersects.
pub(super) fn route_hostnames(hostnames: &[String], l: &GatewayListener) -> Vec<String> {
    if hostnames.is_empty() {
        vec![l.hostname.clone().unwrap_or_else(|| "*".into())]
    } else {
        hostnames
            .iter()
            .filter_map(|h| intersect(&h.to_ascii_lowercase(), l.hostname.as_deref()))
            .collect()
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

struct Attached<'a> {
    route: &'a HttpRoute,
    hostnames: Vec<String>,
}

pub(super) fn listener_admits(
    gateway: &Gateway,
    listener: &GatewayListener,
    route_kind: &str,
    route: &ObjectMeta,
    namespaces: &HashMap<&str, &ObjectMeta>,
) -> bool {
    let allowed = listener.allowed_routes.clone().unwrap_or_default();
    if let Some(kinds) = &allowed.kinds {
        if !kinds
            .iter()
            .any(|k| k.kind == route_kind && k.group.as_deref().unwrap_or(GROUP) == GROUP)
        {
            return false;
        }
    }
    let gw_ns = namespace_of(&gateway.metadata);
    let route_ns = namespace_of(route);
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

/// The port of a Service a route's `parentRef` names (`None`: every port). A Service parent's
/// `sectionName` is a port name; with `port` too, both must name the same port (the spec's
/// `ParentReference.SectionName`). A name no port has attaches to nothing (`NoMatchingParent`):
/// the error says so.
pub(super) fn service_parent_port(
    service: &crate::model::core::Service,
    parent: &crate::model::gateway::ParentRef,
    ns: &str,
) -> Result<Option<u16>, String> {
    let Some(section) = parent.section_name.as_deref() else {
        return Ok(parent.port);
    };
    service
        .spec
        .ports
        .iter()
        .find(|p| p.name.as_deref() == Some(section))
        .map(|p| p.port)
        .filter(|named| parent.port.is_none_or(|p| p == *named))
        .map(Some)
        .ok_or_else(|| {
            format!(
                "Service {ns}/{} has no port named {section:?}{}",
                parent.name,
                parent
                    .port
                    .map_or(String::new(), |p| format!(" with port {p}"))
            )
        })
}

/// The `Conflicted` reason of listeners that share a port and a hostname.
pub(super) const HOSTNAME_CONFLICT: &str = "HostnameConflict";

/// Why a listener is not served: the condition it gets (`Accepted` false, or `Conflicted`
/// true), the spec's reason, and the diagnostic.
#[derive(Debug, Clone)]
pub(super) struct ListenerProblem {
    /// `Accepted` (status False) or `Conflicted` (status True).
    pub(super) condition: &'static str,
    /// The spec's reason (`UnsupportedProtocol`, `ProtocolConflict`, …).
    pub(super) reason: &'static str,
    pub(super) field: String,
    pub(super) kind: ErrorKind,
}

/// Whether a listener can be served, before its certificates and routes are looked at.
#[derive(Debug, Clone)]
pub(super) enum ListenerVerdict {
    Usable,
    Rejected(ListenerProblem),
}

/// The verdict on every listener of `gateways` (in their order). Portico serves every Gateway
/// on one set of ports, so a port's protocol is its first listener's across Gateways: HTTP
/// shares a port with no other protocol, HTTPS and TLS (Passthrough) share one (both choose by
/// SNI); two listeners of a Gateway on one port with one hostname conflict, and neither is
/// served (the spec forbids picking a winner).
pub(super) fn classify_listeners(gateways: &[&Gateway]) -> Vec<Vec<ListenerVerdict>> {
    let mut protocols: BTreeMap<u16, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for g in gateways {
        let mut verdicts = Vec::new();
        for (li, l) in g.spec.listeners.iter().enumerate() {
            let reject = |condition, reason, field: String, kind| {
                ListenerVerdict::Rejected(ListenerProblem {
                    condition,
                    reason,
                    field,
                    kind,
                })
            };
            let verdict = if l.protocol == "TLS" {
                let mode = l.tls.as_ref().and_then(|t| t.mode.as_deref()).unwrap_or("");
                if mode != "Passthrough" {
                    reject(
                        "Accepted",
                        "UnsupportedValue",
                        format!("spec.listeners[{li}].tls.mode"),
                        ErrorKind::Ignored(format!(
                            "TLS listeners are supported in Passthrough mode only (got {mode:?}); this listener is not served"
                        )),
                    )
                } else if protocols.get(&l.port).is_some_and(|p| *p == "HTTP") {
                    reject(
                        "Conflicted",
                        "ProtocolConflict",
                        format!("spec.listeners[{li}].protocol"),
                        ErrorKind::InvalidSetting(format!(
                            "port {} already has HTTP listeners (ProtocolConflict); this listener is not served",
                            l.port
                        )),
                    )
                } else {
                    protocols.entry(l.port).or_insert("TLS");
                    ListenerVerdict::Usable
                }
            } else if l.protocol != "HTTP" && l.protocol != "HTTPS" {
                // The Gateway's other listeners still serve: only this one is left out.
                reject(
                    "Accepted",
                    "UnsupportedProtocol",
                    format!("spec.listeners[{li}].protocol"),
                    ErrorKind::Ignored(format!(
                        "{} listeners are not supported yet (HTTP and HTTPS only); this listener is not served",
                        l.protocol
                    )),
                )
            } else {
                let first = *protocols.entry(l.port).or_insert(l.protocol.as_str());
                let compatible = first == l.protocol || (first != "HTTP" && l.protocol != "HTTP");
                let conflict = g.spec.listeners.iter().enumerate().find(|(lj, o)| {
                    *lj != li
                        && o.port == l.port
                        && o.protocol == l.protocol
                        && o.hostname.as_deref().map(str::to_ascii_lowercase)
                            == l.hostname.as_deref().map(str::to_ascii_lowercase)
                });
                if !compatible {
                    reject(
                        "Conflicted",
                        "ProtocolConflict",
                        format!("spec.listeners[{li}].protocol"),
                        ErrorKind::InvalidSetting(format!(
                            "port {} already has {first} listeners (ProtocolConflict); this listener is not served",
                            l.port
                        )),
                    )
                } else if let Some((lj, o)) = conflict {
                    reject(
                        "Conflicted",
                        HOSTNAME_CONFLICT,
                        format!("spec.listeners[{li}]"),
                        ErrorKind::Ignored(format!("conflicts with listener {} (spec.listeners[{lj}]): same port and hostname; neither is served", o.name)),
                    )
                } else {
                    ListenerVerdict::Usable
                }
            };
            verdicts.push(verdict);
        }
        out.push(verdicts);
    }
    out
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
                portico_core::matching::re2::compile(&value).map_err(|e| {
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
                    portico_core::matching::re2::compile(r).map_err(|e| {
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
                    portico_core::matching::re2::compile(r).map_err(|e| {
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
                    client_certificate: None,
                },
            ));
        }
    }
    Ok(out)
}

/// Translates every Gateway and HTTPRoute into the per-port configurations, and returns the
/// HTTPRoutes attached to Services (for the sidecar).
pub(crate) fn translate(
    objects: &[Object],
    index: &Index<'_>,
    forward: ForwardMode,
    ports: &mut BTreeMap<u16, RoutingConfig>,
    backends: &mut BTreeMap<String, Backend>,
    tls_out: TlsOut<'_, '_>,
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
    routes.sort_by_key(|r| crate::model::oldest_first(&r.metadata));
    let route_ref = |r: &HttpRoute| r.object_ref();

    // Listeners by port.
    let mut listeners: BTreeMap<u16, Vec<(&Gateway, &GatewayListener)>> = BTreeMap::new();
    // TLS listeners (passthrough), by port: TLSRoutes attach to them.
    let mut tls_listeners: BTreeMap<u16, Vec<(&Gateway, &GatewayListener)>> = BTreeMap::new();
    let verdicts = classify_listeners(&gateways);
    for (g, verdicts) in gateways.iter().zip(&verdicts) {
        for (li, (l, verdict)) in g.spec.listeners.iter().zip(verdicts).enumerate() {
            match verdict {
                ListenerVerdict::Usable => {}
                ListenerVerdict::Rejected(p) => {
                    errors.push(TranslateError {
                        object: g.object_ref(),
                        field: p.field.clone(),
                        kind: p.kind.clone(),
                    });
                    // A hostname conflict keeps the port open: it answers 404, as nothing on
                    // it is accepted for routing.
                    if p.reason == HOSTNAME_CONFLICT {
                        listeners.entry(l.port).or_default();
                    }
                    continue;
                }
            }
            if l.protocol == "TLS" {
                tls_listeners.entry(l.port).or_default().push((g, l));
                continue;
            }
            if l.protocol == "HTTPS" {
                if let Err(e) =
                    tls::https_listener(objects, tls_out.certs, tls_out.ports, g, li, l, errors)
                {
                    errors.push(e.error);
                    continue;
                }
            }
            listeners.entry(l.port).or_default().push((g, l));
        }
    }

    tls::tls_routes(
        objects,
        index,
        &tls_listeners,
        &namespaces,
        tls_out.ports,
        backends,
        errors,
    );

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
            let Some(service) = index.services.get(&(ns, parent.name.as_str())) else {
                errors.push(TranslateError {
                    object: route_ref(r),
                    field: format!("spec.parentRefs[{pi}].name"),
                    kind: ErrorKind::MissingReference(format!(
                        "Service {ns}/{} not found",
                        parent.name
                    )),
                });
                continue;
            };
            let port = match service_parent_port(service, parent, ns) {
                Ok(port) => port,
                Err(message) => {
                    errors.push(TranslateError {
                        object: route_ref(r),
                        field: format!("spec.parentRefs[{pi}].sectionName"),
                        kind: ErrorKind::MissingReference(message),
                    });
                    continue;
                }
            };
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
                    port,
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
                    if !listener_admits(g, l, "HTTPRoute", &r.metadata, &namespaces) {
                        continue;
                    }
                    let names = route_hostnames(&r.spec.hostnames, l);
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
