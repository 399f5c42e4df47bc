//! One HTTPRoute rule: its matches, filters and backends as a route action.

use std::collections::BTreeMap;

use portico_core::config::{
    Backend, BackendFilters, Cors, HeaderMods, Mirror, PathRewrite, Redirect, Rewrite, RouteAction,
    StringMatch, UpstreamPolicy, WeightedBackend,
};

use super::GROUP;
use crate::model::gateway::*;
use crate::model::{namespace_of, Object};
use crate::translate::common::{backend_key, cluster_name, duration_ms, Index};
use crate::translate::diagnostics::ErrorKind;

/// An origin pattern of the Gateway API (`https://*.example.com`, `*`) as a string match.
pub(super) fn origin_match(origin: &str) -> StringMatch {
    if origin == "*" {
        StringMatch::Regex(".*".into())
    } else if origin.contains('*') {
        StringMatch::Regex(regex::escape(origin).replace("\\*", ".*"))
    } else {
        StringMatch::Exact(origin.to_owned())
    }
}

pub(super) fn string_match(type_: Option<&str>, value: &str) -> Result<StringMatch, String> {
    match type_.unwrap_or("Exact") {
        "Exact" => Ok(StringMatch::Exact(value.to_owned())),
        "RegularExpression" => Ok(StringMatch::Regex(value.to_owned())),
        other => Err(format!("type {other:?} is not Exact or RegularExpression")),
    }
}

pub(super) fn header_mods(m: &HeaderModifier) -> HeaderMods {
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

pub(super) fn path_modifier(
    m: &HttpPathModifier,
    field: &str,
) -> Result<PathRewrite, (String, ErrorKind)> {
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
pub(super) struct RuleAction {
    pub(super) action: RouteAction,
    pub(super) request: HeaderMods,
    pub(super) response: HeaderMods,
    pub(super) mirrors: Vec<Mirror>,
    pub(super) upstream: UpstreamPolicy,
    pub(super) cors: Option<Cors>,
}

/// Why a route's `backendRef` does not resolve: the spec's `ResolvedRefs` reason, the field of
/// the reference at fault, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackendProblem {
    /// `InvalidKind`, `RefNotPermitted` or `BackendNotFound`.
    pub(crate) reason: &'static str,
    /// `kind`, `namespace`, `port` or `name`.
    pub(crate) field: &'static str,
    pub(crate) message: String,
}

/// A route's reference to a backend, as HTTPRoute and TLSRoute write it.
pub(crate) struct BackendRefView<'a> {
    pub(crate) group: Option<&'a str>,
    pub(crate) kind: Option<&'a str>,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) port: Option<u16>,
}

/// Checks a backend reference of a `route_kind` in `route_ns` (whose `parents` are its
/// `parentRefs`): only Services (core group) are backends; another namespace needs a
/// ReferenceGrant there, unless the route is attached to that very Service (a GAMMA consumer
/// route); the Service must exist, and a port is required and must be one of the Service's.
pub(crate) fn backend_problem(
    route_kind: &str,
    route_ns: &str,
    parents: &[ParentRef],
    b: &BackendRefView<'_>,
    objects: &[Object],
    index: &Index<'_>,
) -> Option<BackendProblem> {
    let group = b.group.unwrap_or("");
    let kind = b.kind.unwrap_or("Service");
    let ns = b.namespace.unwrap_or(route_ns);
    let problem = |reason, field, message| {
        Some(BackendProblem {
            reason,
            field,
            message,
        })
    };
    if !group.is_empty() || kind != "Service" {
        return problem(
            "InvalidKind",
            "kind",
            format!("{group}/{kind} is not a supported backend kind (only Services are)"),
        );
    }
    let is_parent = parents.iter().any(|p| {
        p.kind.as_deref() == Some("Service")
            && p.group.as_deref().unwrap_or("").is_empty()
            && p.name == b.name
            && p.namespace.as_deref().unwrap_or(route_ns) == ns
    });
    if ns != route_ns
        && !is_parent
        && !granted(objects, (route_kind, route_ns), (ns, "Service", b.name))
    {
        return problem(
            "RefNotPermitted",
            "namespace",
            format!(
                "no ReferenceGrant in {ns} lets {route_kind}s of {route_ns} refer to Service {}",
                b.name
            ),
        );
    }
    let Some(port) = b.port else {
        return problem("BackendNotFound", "port", "required for a Service".into());
    };
    let Some(svc) = index.services.get(&(ns, b.name)) else {
        return problem(
            "BackendNotFound",
            "name",
            format!("Service {ns}/{} not found", b.name),
        );
    };
    if !svc.spec.ports.iter().any(|p| p.port == port) {
        return problem(
            "BackendNotFound",
            "port",
            format!("Service {ns}/{} has no port {port}", b.name),
        );
    }
    None
}

impl<'a> From<&'a HttpBackendRef> for BackendRefView<'a> {
    fn from(b: &'a HttpBackendRef) -> Self {
        BackendRefView {
            group: b.group.as_deref(),
            kind: b.kind.as_deref(),
            namespace: b.namespace.as_deref(),
            name: &b.name,
            port: b.port,
        }
    }
}

/// Resolves a Service reference of an HTTPRoute to a backend key (registering the backend).
/// `None`, with a warning naming `field`, when it does not resolve (a port the Service does not
/// have included).
pub(super) fn service_ref(
    b: &HttpBackendRef,
    field: &str,
    route: &HttpRoute,
    objects: &[Object],
    index: &Index<'_>,
    backends: &mut BTreeMap<String, Backend>,
    warnings: &mut Vec<(String, ErrorKind)>,
) -> Option<String> {
    let route_ns = namespace_of(&route.metadata);
    let ns = b.namespace.as_deref().unwrap_or(route_ns);
    let problem = backend_problem(
        "HTTPRoute",
        route_ns,
        &route.spec.parent_refs,
        &b.into(),
        objects,
        index,
    );
    if let Some(p) = &problem {
        let kind = if p.field == "port" && b.port.is_none() {
            ErrorKind::InvalidSetting(p.message.clone())
        } else {
            ErrorKind::MissingReference(p.message.clone())
        };
        warnings.push((format!("{field}.{}", p.field), kind));
        // An invalid reference — a port the Service lacks included (`BackendNotFound`) — gets
        // 500 for its share (`HTTPRouteRule.BackendRefs`), not the 503 of a backend without
        // ready endpoints.
        return None;
    }
    let port = b.port?;
    let key = backend_key(ns, &b.name, port);
    let endpoints = index
        .services
        .get(&(ns, b.name.as_str()))
        .and_then(|svc| svc.spec.ports.iter().find(|p| p.port == port))
        .map(|p| index.endpoints(ns, &b.name, p.name.as_deref().unwrap_or("")))
        .unwrap_or_default();
    backends.entry(key.clone()).or_insert(Backend {
        cluster: cluster_name(ns, &b.name, port),
        endpoints,
        lb: Default::default(),
        original_destination: false,
    });
    Some(key)
}

/// What a list of HTTPRoute filters (a rule's, or a backendRef's) does.
#[derive(Default)]
pub(super) struct Filters {
    request: HeaderMods,
    response: HeaderMods,
    redirect: Option<Redirect>,
    rewrite: Option<Rewrite>,
    mirrors: Vec<Mirror>,
    cors: Option<Cors>,
}

/// Translates a list of filters at `at` (`spec.rules[0]` or `spec.rules[0].backendRefs[1]`).
#[allow(clippy::too_many_arguments)]
pub(super) fn filters(
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
                    explicit_port: false,
                    drop_query: false,
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
                    max_age: Some(
                        c.max_age
                            .map_or(5, |s| i64::try_from(s).unwrap_or(i64::MAX)),
                    ),
                    allow_credentials: c.allow_credentials.unwrap_or(false),
                    nginx: false,
                    // As Istio (`createCorsFilter`: `UnmatchedPreflights: IGNORE`) and Envoy
                    // Gateway (`ForwardNotMatchingPreflights: false`) translate it.
                    ignore_unmatched_preflights: true,
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
pub(super) fn rule_action(
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
                .map(|d| duration_ms(d).map_err(|e| (at(&format!(".timeouts.{f}")), e.into())))
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
                ErrorKind::InvalidSetting("ignored: the rule redirects".into()),
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
                host: None,
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

/// Whether a ReferenceGrant in `to_ns` lets objects of kind `from_kind` (of the Gateway API
/// group) in `from_ns` refer to the core-group object `to_kind` `name` (an HTTPRoute to a
/// Service, a Gateway to a Secret).
pub(super) fn granted(
    objects: &[Object],
    (from_kind, from_ns): (&str, &str),
    (to_ns, to_kind, name): (&str, &str, &str),
) -> bool {
    objects.iter().any(|o| match o {
        Object::ReferenceGrant(g) => {
            namespace_of(&g.metadata) == to_ns
                && g.spec
                    .from
                    .iter()
                    .any(|f| f.group == GROUP && f.kind == from_kind && f.namespace == from_ns)
                && g.spec.to.iter().any(|t| {
                    t.group.is_empty()
                        && t.kind == to_kind
                        && t.name.as_deref().is_none_or(|n| n == name)
                })
        }
        _ => false,
    })
}
