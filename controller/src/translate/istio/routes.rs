//! One VirtualService's HTTP routes as routes, for an ingress gateway or the sidecars.

use std::collections::BTreeMap;

use portico_core::config::{
    Abort, Backend, BackendFilters, Cors, Delay, HashKey, HeaderMatch, HeaderMods, LoadBalancer,
    Mirror, PathMatch, PathRewrite, QueryMatch, Redirect, Rewrite, Route, RouteAction, StringMatch,
    UpstreamPolicy, WeightedBackend,
};
use serde_json::Value;

use crate::model::istio::*;
use crate::model::{namespace_of, Object, Resource};
use crate::translate::common::{duration_ms, Index};
use crate::translate::diagnostics::{ErrorKind, TranslateError};

/// Istio's `timeout` and `retries` as Envoy router policy.
pub(super) fn upstream_policy(
    timeout: Option<&str>,
    retries: Option<&HttpRetry>,
) -> Result<UpstreamPolicy, (String, ErrorKind)> {
    let mut p = UpstreamPolicy::default();
    if let Some(t) = timeout {
        p.timeout_ms = Some(duration_ms(t).map_err(|e| (".timeout".to_owned(), e.into()))?);
    }
    if let Some(r) = retries {
        p.retries = Some(r.attempts.unwrap_or(2));
        if let Some(t) = &r.per_try_timeout {
            p.per_try_timeout_ms =
                Some(duration_ms(t).map_err(|e| (".retries.perTryTimeout".to_owned(), e.into()))?);
        }
        // Istio's default conditions, and numeric entries as retriable status codes.
        let on = r.retry_on.as_deref().unwrap_or(
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        );
        let mut conditions = Vec::new();
        let mut codes = Vec::new();
        for c in on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match c.parse::<u16>() {
                Ok(code) => codes.push(code),
                Err(_) => conditions.push(c.to_owned()),
            }
        }
        if r.retry_on.is_none() {
            codes.push(503);
        }
        if !codes.is_empty() && !conditions.iter().any(|c| c == "retriable-status-codes") {
            conditions.push("retriable-status-codes".into());
        }
        p.retry_on = Some(conditions.join(","));
        p.retriable_status_codes = codes;
    }
    Ok(p)
}

pub(super) fn string_match(m: &StringMatchSpec, ignore_case: bool) -> Result<StringMatch, String> {
    let ci = |s: &str| {
        if ignore_case {
            format!("(?i){s}")
        } else {
            s.to_owned()
        }
    };
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(e), None, None) if ignore_case => Ok(StringMatch::Regex(ci(&regex::escape(e)))),
        (Some(e), None, None) => Ok(StringMatch::Exact(e.clone())),
        (None, Some(p), None) if ignore_case => {
            Ok(StringMatch::Regex(ci(&format!("{}.*", regex::escape(p)))))
        }
        (None, Some(p), None) => Ok(StringMatch::Prefix(p.clone())),
        (None, None, Some(r)) => {
            portico_core::matching::re2::compile(r)
                .map_err(|e| format!("regex does not compile: {e}"))?;
            Ok(StringMatch::Regex(ci(r)))
        }
        _ => Err("exactly one of exact, prefix and regex".into()),
    }
}

/// A VirtualService host as Istio reads it: a name without a dot is a short name, relative to
/// the VirtualService's namespace (`reviews` → `reviews.NS.svc.cluster.local`); `*`, IP
/// addresses and dotted names stay as they are.
pub(super) fn fqdn_of_short_name(host: &str, vs_ns: &str) -> String {
    if host == "*" || host.contains('.') || host.parse::<std::net::IpAddr>().is_ok() {
        host.to_owned()
    } else {
        format!("{host}.{vs_ns}.svc.cluster.local")
    }
}

pub(super) struct Ctx<'a> {
    objects: &'a [Object],
    index: &'a Index<'a>,
    /// Fields accepted but not applied, reported once the translation is done.
    notes: std::cell::RefCell<Vec<TranslateError>>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(objects: &'a [Object], index: &'a Index<'a>) -> Self {
        Ctx {
            objects,
            index,
            notes: std::cell::RefCell::default(),
        }
    }

    /// Reports a field of `vs` that is kept but has no effect.
    fn note(&self, vs: &VirtualService, field: String, why: &str) {
        let e = TranslateError {
            object: vs.object_ref(),
            field,
            kind: ErrorKind::Ignored(why.to_owned()),
        };
        let mut notes = self.notes.borrow_mut();
        if !notes.contains(&e) {
            notes.push(e);
        }
    }

    /// Moves the notes into `errors` (each once).
    pub(super) fn report(&self, errors: &mut Vec<TranslateError>) {
        for e in self.notes.take() {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
}

/// Where routes are built for: an ingress gateway or the sidecars. It names the gateway for
/// `match[].gateways` and says who the client workload is for `sourceLabels` /
/// `sourceNamespace`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Client<'a> {
    /// An ingress gateway (`namespace/name`); the client is the gateway itself, its Gateway's
    /// `selector` labels and namespace.
    Gateway {
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
        namespace: &'a str,
    },
    /// Sidecars (`mesh`): any Pod, told apart by the request's source address.
    Mesh,
}

impl Client<'_> {
    fn gateway_name(&self) -> &str {
        match self {
            Client::Gateway { name, .. } => name,
            Client::Mesh => "mesh",
        }
    }
}

impl Ctx<'_> {
    /// Resolves a destination to a backend key (registering it), or an error message.
    pub(super) fn destination(
        &self,
        vs_ns: &str,
        d: &Destination,
        listener_port: u16,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Result<String, String> {
        let host = d.host.trim_end_matches('.');
        // A ServiceEntry host (exact): its backend on the destination's port, else its only
        // port, else the listener's.
        if let Some(se) = self.objects.iter().find_map(|o| match o {
            Object::ServiceEntry(se)
                if se.spec.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) =>
            {
                Some(se)
            }
            _ => None,
        }) {
            let port = match (&d.port, se.spec.ports.as_slice()) {
                (Some(p), _) => p.number,
                (None, [only]) => only.number,
                (None, _) => listener_port,
            };
            let (key, backend) = super::super::common::service_entry_backend(se, host, port)
                .ok_or_else(|| {
                    format!(
                        "ServiceEntry {} has no port {port} for {host}",
                        se.object_ref()
                    )
                })?;
            backends.entry(key.clone()).or_insert(backend);
            return Ok(key);
        }
        let (name, ns) = match host.strip_suffix(".svc.cluster.local") {
            Some(rest) => rest
                .split_once('.')
                .ok_or_else(|| format!("{host:?} is not name.namespace.svc.cluster.local"))?,
            None => match host.split_once('.') {
                Some((name, ns)) if !ns.contains('.') => (name, ns),
                Some(_) => {
                    return Err(format!(
                        "{host:?} is neither a Kubernetes Service nor a ServiceEntry host"
                    ))
                }
                None => (host, vs_ns),
            },
        };
        let svc = self
            .index
            .services
            .get(&(ns, name))
            .ok_or_else(|| format!("Service {ns}/{name} not found"))?;
        let port = match (&d.port, svc.spec.ports.as_slice()) {
            (Some(p), _) => svc
                .spec
                .ports
                .iter()
                .find(|sp| sp.port == p.number)
                .ok_or_else(|| format!("Service {ns}/{name} has no port {}", p.number))?,
            (None, [only]) => only,
            // Several ports and none given: the one the request came in on, as Istio picks.
            (None, ports) => ports
                .iter()
                .find(|sp| sp.port == listener_port)
                .ok_or_else(|| {
                    format!("Service {ns}/{name} has several ports: give destination.port")
                })?,
        };
        let mut endpoints = self
            .index
            .endpoints(ns, name, port.name.as_deref().unwrap_or(""));
        let fqdn = format!("{name}.{ns}.svc.cluster.local");
        let (key, cluster) = match &d.subset {
            None => (
                format!("{fqdn}:{}", port.port),
                format!("outbound|{}||{fqdn}", port.port),
            ),
            Some(subset) => {
                let labels = self.subset_labels(&fqdn, ns, subset)?;
                let ips: Vec<String> = self.pod_ips(ns, &labels);
                endpoints.retain(|e| {
                    e.parse::<std::net::SocketAddr>()
                        .is_ok_and(|a| ips.contains(&a.ip().to_string()))
                });
                (
                    format!("{fqdn}:{}/{subset}", port.port),
                    format!("outbound|{}|{subset}|{fqdn}", port.port),
                )
            }
        };
        let lb = self.load_balancer(&fqdn, d.subset.as_deref());
        backends.entry(key.clone()).or_insert(Backend {
            cluster,
            endpoints,
            lb,
            original_destination: false,
        });
        Ok(key)
    }

    /// The DestinationRule for a Service FQDN, if any.
    fn rule_for(&self, fqdn: &str) -> Option<&DestinationRule> {
        self.objects.iter().find_map(|o| match o {
            Object::DestinationRule(dr) => {
                let host = dr.spec.host.trim_end_matches('.');
                let dr_ns = namespace_of(&dr.metadata);
                let same = host == fqdn
                    || (!host.contains('.') && format!("{host}.{dr_ns}.svc.cluster.local") == fqdn)
                    || format!("{host}.svc.cluster.local") == fqdn;
                same.then_some(dr)
            }
            _ => None,
        })
    }

    fn subset_labels(
        &self,
        fqdn: &str,
        ns: &str,
        subset: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        self.rule_for(fqdn)
            .and_then(|dr| dr.spec.subsets.iter().find(|s| s.name == subset))
            .map(|s| s.labels.clone())
            .ok_or_else(|| {
                format!("no DestinationRule defines subset {subset:?} for {fqdn} (namespace {ns})")
            })
    }

    /// The load balancer for a Service FQDN and subset: the subset's policy over the rule's.
    fn load_balancer(&self, fqdn: &str, subset: Option<&str>) -> LoadBalancer {
        let Some(dr) = self.rule_for(fqdn) else {
            return LoadBalancer::RoundRobin;
        };
        let subset_policy = subset
            .and_then(|s| dr.spec.subsets.iter().find(|x| x.name == s))
            .and_then(|s| s.traffic_policy.as_ref());
        [subset_policy, dr.spec.traffic_policy.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|p| load_balancer(p).ok().flatten())
            .unwrap_or_default()
    }

    fn pod_ips(&self, ns: &str, labels: &BTreeMap<String, String>) -> Vec<String> {
        self.pods(Some(ns), labels)
    }

    /// The IPs of the Pods (in `ns`, or any namespace) that carry every label of `labels`.
    fn pods(&self, ns: Option<&str>, labels: &BTreeMap<String, String>) -> Vec<String> {
        self.index.pods(ns, labels)
    }
}

/// Whether a header is one Envoy does not let a route change as a plain header: a pseudo-header
/// or `host` (pilot's `isInternalHeader`, `pilot/pkg/networking/core/route/route.go`).
fn is_internal_header(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

/// Header operations as header changes, without the internal headers, which pilot leaves out
/// of `set`, `add` (`translateAppendHeaders`) and `remove` (`dropInternal`).
pub(super) fn header_mods(h: Option<&HeaderOperations>) -> HeaderMods {
    let Some(h) = h else {
        return HeaderMods::default();
    };
    let pairs = |m: &BTreeMap<String, String>| -> Vec<(String, String)> {
        m.iter()
            .filter(|(k, _)| !is_internal_header(k))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    };
    HeaderMods {
        set: pairs(&h.set),
        add: pairs(&h.add),
        remove: h
            .remove
            .iter()
            .filter(|k| !is_internal_header(k))
            .map(|k| k.to_ascii_lowercase())
            .collect(),
    }
}

/// The host rewrite request header operations ask for: `:authority` or `host` in `set`, else in
/// `add` (pilot's `TranslateHeadersOperations` / `isAuthorityHeader`; when a map names both,
/// the last one wins, as pilot's loop).
pub(super) fn header_authority(h: Option<&HeaderOperations>) -> Option<String> {
    let h = h?;
    let last = |m: &BTreeMap<String, String>| {
        m.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(":authority") || k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .next_back()
    };
    // An empty value asks for nothing (pilot: `if setAuthority != ""`, `if authority != ""`).
    last(&h.set)
        .filter(|v| !v.is_empty())
        .or_else(|| last(&h.add))
        .filter(|v| !v.is_empty())
}

/// Translates one HTTP route into routes (one per match block) for `port`.
pub(super) fn http_route(
    ctx: &Ctx<'_>,
    vs: &VirtualService,
    ri: usize,
    r: &HttpRoute,
    port: u16,
    client: Client<'_>,
    backends: &mut BTreeMap<String, Backend>,
) -> Result<Vec<Route>, (String, ErrorKind)> {
    let vs_ns = namespace_of(&vs.metadata);
    let gateway = client.gateway_name();
    let at = |rest: &str| format!("spec.http[{ri}]{rest}");
    let unsupported = |f: String, what: &str| Err((f, ErrorKind::Unsupported(what.to_owned())));
    for (present, field, what) in [(
        r.fault
            .as_ref()
            .and_then(|f| f.delay.as_ref())
            .is_some_and(|d| d.exponential_delay.is_some()),
        ".fault.delay.exponentialDelay",
        "exponential delays (Istio does not implement them either)",
    )] {
        if present {
            return unsupported(at(field), what);
        }
    }
    let mods = header_mods;
    let request_headers = mods(r.headers.as_ref().and_then(|h| h.request.as_ref()));
    let response_headers = mods(r.headers.as_ref().and_then(|h| h.response.as_ref()));
    let abort = match r.fault.as_ref().and_then(|f| f.abort.as_ref()) {
        Some(a) => {
            let Some(status) = a.http_status else {
                return unsupported(at(".fault.abort"), "aborts other than httpStatus");
            };
            // Istio: "If not specified, no request will be aborted."
            Some(Abort {
                status,
                percent: a.percentage.as_ref().map_or(0.0, |p| p.value),
            })
        }
        None => None,
    };
    let upstream =
        upstream_policy(r.timeout.as_deref(), r.retries.as_ref()).map_err(|(f, e)| (at(&f), e))?;
    if let Some(retries) = &r.retries {
        for (set, field) in [
            (
                retries.retry_remote_localities.is_some(),
                "retryRemoteLocalities",
            ),
            (
                retries.retry_ignore_previous_hosts.is_some(),
                "retryIgnorePreviousHosts",
            ),
            (retries.backoff.is_some(), "backoff"),
        ] {
            if set {
                ctx.note(
                    vs,
                    at(&format!(".retries.{field}")),
                    "not applied (Envoy's default)",
                );
            }
        }
    }
    let cors = match &r.cors_policy {
        None => None,
        Some(c) => {
            let mut origins = Vec::new();
            for (i, o) in c.allow_origins.iter().enumerate() {
                origins.push(string_match(o, false).map_err(|e| {
                    (
                        at(&format!(".corsPolicy.allowOrigins[{i}]")),
                        ErrorKind::Invalid(e),
                    )
                })?);
            }
            origins.extend(c.allow_origin.iter().map(|o| {
                if o == "*" {
                    StringMatch::Regex(".*".into())
                } else {
                    StringMatch::Exact(o.clone())
                }
            }));
            let max_age = match &c.max_age {
                Some(d) => {
                    let ms = duration_ms(d).map_err(|e| (at(".corsPolicy.maxAge"), e.into()))?;
                    Some(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
                }
                None => None,
            };
            // pilot `forwardNotMatchingPreflights`: IGNORE → Envoy answers an unmatched
            // preflight itself; anything else forwards it.
            let ignore_unmatched = match c.unmatched_preflights.as_deref() {
                None | Some("FORWARD" | "UNSPECIFIED") => false,
                Some("IGNORE") => true,
                Some(other) => {
                    return Err((
                        at(".corsPolicy.unmatchedPreflights"),
                        ErrorKind::Invalid(format!(
                            "{other:?} is not UNSPECIFIED, FORWARD or IGNORE"
                        )),
                    ))
                }
            };
            // pilot (route.go `TranslateCORSPolicy`) joins each list with "," into Envoy's
            // CorsPolicy string, which Envoy's CORS filter writes verbatim (a wildcard only when the
            // whole string is `*`): one entry each here.
            let joined = |l: &[String]| -> Vec<String> {
                let s = l.join(",");
                if s.is_empty() {
                    Vec::new()
                } else {
                    vec![s]
                }
            };
            Some(Cors {
                allow_origins: origins,
                allow_methods: joined(&c.allow_methods),
                allow_headers: joined(&c.allow_headers),
                expose_headers: joined(&c.expose_headers),
                max_age,
                allow_credentials: c.allow_credentials.unwrap_or(false),
                nginx: false,
                ignore_unmatched_preflights: ignore_unmatched,
            })
        }
    };
    let delay = match r.fault.as_ref().and_then(|f| f.delay.as_ref()) {
        Some(d) => {
            let Some(fixed) = &d.fixed_delay else {
                return Err((
                    at(".fault.delay.fixedDelay"),
                    ErrorKind::Invalid("required".into()),
                ));
            };
            let millis =
                duration_ms(fixed).map_err(|e| (at(".fault.delay.fixedDelay"), e.into()))?;
            // Istio: "If left unspecified, no request will be delayed."
            let percent = match (&d.percentage, d.percent) {
                (Some(p), _) => p.value,
                (None, Some(p)) => f64::from(p),
                (None, None) => 0.0,
            };
            Some(Delay { millis, percent })
        }
        None => None,
    };
    let mut mirrors = Vec::new();
    if let Some(m) = &r.mirror {
        let backend = ctx
            .destination(vs_ns, m, port, backends)
            .map_err(|e| (at(".mirror"), ErrorKind::Invalid(e)))?;
        let percent = match (&r.mirror_percentage, r.mirror_percent) {
            (Some(p), _) => p.value,
            (None, Some(p)) => f64::from(p),
            (None, None) => 100.0,
        };
        mirrors.push(Mirror { backend, percent });
    } else if r.mirror_percentage.is_some() || r.mirror_percent.is_some() {
        return Err((
            at(".mirrorPercentage"),
            ErrorKind::Invalid("set without mirror".into()),
        ));
    }
    for (i, m) in r.mirrors.iter().enumerate() {
        let backend = ctx
            .destination(vs_ns, &m.destination, port, backends)
            .map_err(|e| {
                (
                    at(&format!(".mirrors[{i}].destination")),
                    ErrorKind::Invalid(e),
                )
            })?;
        let percent = m.percentage.as_ref().map_or(100.0, |p| p.value);
        mirrors.push(Mirror { backend, percent });
    }
    let default_match = [HttpMatch::default()];
    let matches: &[HttpMatch] = if r.matches.is_empty() {
        &default_match
    } else {
        &r.matches
    };
    let mut out = Vec::new();
    for (mi, m) in matches.iter().enumerate() {
        let field = at(&format!(".match[{mi}]"));
        // Istio: a match naming gateways is decided by them alone; source labels are not read.
        let sources = match client {
            _ if !m.gateways.is_empty() => None,
            _ if m.source_labels.is_empty() && m.source_namespace.is_none() => None,
            Client::Gateway {
                labels, namespace, ..
            } => {
                let ours = m
                    .source_labels
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))
                    && m.source_namespace
                        .as_deref()
                        .is_none_or(|ns| ns == namespace);
                if !ours {
                    // This gateway is not the client the match names.
                    continue;
                }
                None
            }
            Client::Mesh => Some(ctx.pods(m.source_namespace.as_deref(), &m.source_labels)),
        };
        if m.port.is_some_and(|p| p != port) {
            continue;
        }
        if !m.gateways.is_empty()
            && !m
                .gateways
                .iter()
                .any(|g| g == gateway || format!("{vs_ns}/{g}") == gateway)
        {
            continue;
        }
        let invalid = |f: &str, e: String| (format!("{field}.{f}"), ErrorKind::Invalid(e));
        // The path: exact, a plain string prefix, or regex; all through regex when case-insensitive.
        let (path, prefix) = match &m.uri {
            // No uri match is Envoy's prefix "/" (what a rewrite replaces).
            None => (PathMatch::Regex("/.*".into()), Some("/".to_owned())),
            Some(u) => match (
                string_match(u, m.ignore_uri_case).map_err(|e| invalid("uri", e))?,
                &u.prefix,
            ) {
                (StringMatch::Exact(e), _) => (PathMatch::Exact(e), None),
                (StringMatch::Prefix(p), _) => (
                    PathMatch::Regex(format!("{}.*", regex::escape(&p))),
                    Some(p),
                ),
                (StringMatch::Regex(re), Some(p)) => (PathMatch::Regex(re), Some(p.clone())),
                (StringMatch::Regex(re), None) => (PathMatch::Regex(re), None),
                (StringMatch::Present, _) => (PathMatch::Regex(".*".into()), None),
            },
        };
        let mut headers = Vec::new();
        for (name, spec) in [
            ("authority", m.authority.as_ref().map(|a| (":authority", a))),
            ("scheme", m.scheme.as_ref().map(|s| (":scheme", s))),
            ("method", m.method.as_ref().map(|s| (":method", s))),
        ]
        .into_iter()
        .filter_map(|(n, x)| x.map(|x| (n, x)))
        {
            headers.push(HeaderMatch {
                name: spec.0.into(),
                value: string_match(spec.1, false).map_err(|e| invalid(name, e))?,
                invert: false,
            });
        }
        for (k, v) in &m.headers {
            let value = if v.exact.is_none() && v.prefix.is_none() && v.regex.is_none() {
                StringMatch::Present
            } else {
                string_match(v, false).map_err(|e| invalid(&format!("headers[{k}]"), e))?
            };
            headers.push(HeaderMatch {
                name: k.to_ascii_lowercase(),
                value,
                invert: false,
            });
        }
        for (k, v) in &m.without_headers {
            let value = if v.exact.is_none() && v.prefix.is_none() && v.regex.is_none() {
                StringMatch::Present
            } else {
                string_match(v, false).map_err(|e| invalid(&format!("withoutHeaders[{k}]"), e))?
            };
            headers.push(HeaderMatch {
                name: k.to_ascii_lowercase(),
                value,
                invert: true,
            });
        }
        let mut query = Vec::new();
        for (k, v) in &m.query_params {
            let value = if v.exact.is_none() && v.prefix.is_none() && v.regex.is_none() {
                StringMatch::Present
            } else {
                string_match(v, false).map_err(|e| invalid(&format!("queryParams[{k}]"), e))?
            };
            query.push(QueryMatch {
                name: k.clone(),
                value,
            });
        }
        let rewrite_path = |uri: &str| -> PathRewrite {
            match &prefix {
                // Replace the matched string prefix (not path segments).
                Some(p) => PathRewrite::Regex {
                    regex: format!("^{}(.*)$", regex::escape(p)),
                    substitution: format!("{uri}${{1}}"),
                    global: false,
                },
                None => PathRewrite::Full(uri.to_owned()),
            }
        };
        let action = if let Some(d) = &r.direct_response {
            if d.body.as_ref().is_some_and(|b| b.bytes.is_some()) {
                return unsupported(at(".directResponse.body.bytes"), "byte bodies");
            }
            RouteAction::Respond {
                status: d.status,
                body: d
                    .body
                    .as_ref()
                    .and_then(|b| b.string.clone())
                    .unwrap_or_default(),
            }
        } else if let Some(rd) = &r.redirect {
            let port = match (rd.port, rd.derive_port.as_deref()) {
                (Some(p), _) => Some(p),
                (None, Some("FROM_REQUEST_PORT")) => Some(port),
                _ => None,
            };
            let scheme = rd.scheme.clone().or_else(|| {
                (rd.derive_port.as_deref() == Some("FROM_PROTOCOL_DEFAULT"))
                    .then(|| "http".to_owned())
            });
            RouteAction::Redirect(Redirect {
                url: None,
                scheme,
                host: rd.authority.clone(),
                port,
                path: rd.uri.clone().map(PathRewrite::Full),
                status: Some(rd.redirect_code.unwrap_or(301)),
                strip_trailing_slash: false,
                explicit_port: false,
                drop_query: false,
            })
        } else {
            let path_rewrite =
                r.rewrite
                    .as_ref()
                    .and_then(|rw| match (&rw.uri_regex_rewrite, &rw.uri) {
                        (Some(rr), _) => Some(PathRewrite::Regex {
                            regex: rr.regex.clone(),
                            substitution: to_dollar(&rr.rewrite),
                            // Envoy's regex_rewrite (pilot's applyHTTPRouteDestination):
                            // every match substituted, not the whole path replaced.
                            global: true,
                        }),
                        (None, Some(uri)) => Some(rewrite_path(uri)),
                        (None, None) => None,
                    });
            // The route's host rewrite: `rewrite.authority`, else an `:authority` / `host`
            // request header operation (pilot's applyHTTPRouteDestination).
            let route_authority = r
                .rewrite
                .as_ref()
                .and_then(|rw| rw.authority.clone())
                .filter(|a| !a.is_empty())
                .or_else(|| header_authority(r.headers.as_ref().and_then(|h| h.request.as_ref())));
            let mut weighted = Vec::new();
            for (di, d) in r.route.iter().enumerate() {
                let key = ctx
                    .destination(vs_ns, &d.destination, port, backends)
                    .map_err(|e| {
                        (
                            at(&format!(".route[{di}].destination")),
                            ErrorKind::Invalid(e),
                        )
                    })?;
                let weight = d.weight.unwrap_or(if r.route.len() == 1 { 100 } else { 0 });
                let dest_request = d.headers.as_ref().and_then(|h| h.request.as_ref());
                // A destination's authority applies only when the route rewrites no host
                // (pilot's processDestination; for weighted clusters Envoy's
                // WeightedClusterEntry sets the cluster's host_rewrite_literal, then the route's
                // overwrites it, to the same effect): the backend's `host`, which yields to the
                // route's rewrite host.
                let host = header_authority(dest_request);
                weighted.push(WeightedBackend {
                    backend: Some(key),
                    weight,
                    filters: BackendFilters {
                        request_headers: mods(dest_request),
                        response_headers: mods(
                            d.headers.as_ref().and_then(|h| h.response.as_ref()),
                        ),
                        host,
                        ..BackendFilters::default()
                    },
                });
            }
            if weighted.is_empty() {
                return Err((
                    at(""),
                    ErrorKind::Invalid("a route needs route, redirect or directResponse".into()),
                ));
            }
            let rewrite =
                (route_authority.is_some() || path_rewrite.is_some()).then_some(Rewrite {
                    host: route_authority,
                    path: path_rewrite,
                });
            RouteAction::Forward {
                backends: weighted,
                rewrite,
            }
        };
        let name = format!(
            "VirtualService {vs_ns}/{} http[{ri}]{} match[{mi}]",
            vs.metadata.name,
            r.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        out.push(Route {
            name,
            path,
            headers,
            query,
            method: None,
            sources: sources.clone(),
            client_ranges: None,
            upstream: upstream.clone(),
            cors: cors.clone(),
            action,
            request_headers: request_headers.clone(),
            response_headers: response_headers.clone(),
            abort: abort.clone(),
            delay: delay.clone(),
            mirrors: mirrors.clone(),
            client_certificate: None,
        });
    }
    Ok(out)
}

/// Every HTTP route of a VirtualService on `port`, in order; the first bad one fails them all.
pub(super) fn vs_routes(
    ctx: &Ctx<'_>,
    vs: &VirtualService,
    port: u16,
    client: Client<'_>,
    backends: &mut BTreeMap<String, Backend>,
) -> Result<Vec<Route>, (String, ErrorKind)> {
    let mut routes = Vec::new();
    for (ri, r) in vs.spec.http.iter().enumerate() {
        routes.append(&mut http_route(ctx, vs, ri, r, port, client, backends)?);
    }
    Ok(routes)
}

/// A `trafficPolicy`'s load balancer: `Ok(None)` when it sets none, `Err` when it asks for
/// something Portico does not do.
pub(super) fn load_balancer(policy: &Value) -> Result<Option<LoadBalancer>, String> {
    let Some(lb) = policy.get("loadBalancer") else {
        return Ok(None);
    };
    if let Some(simple) = lb.get("simple").and_then(Value::as_str) {
        return match simple {
            "ROUND_ROBIN" | "UNSPECIFIED" => Ok(Some(LoadBalancer::RoundRobin)),
            "RANDOM" => Ok(Some(LoadBalancer::Random)),
            "LEAST_REQUEST" | "LEAST_CONN" => Ok(Some(LoadBalancer::LeastRequest)),
            other => Err(format!("loadBalancer.simple {other:?} is not supported")),
        };
    }
    if let Some(ch) = lb.get("consistentHash") {
        let s = |k: &str| ch.get(k).and_then(Value::as_str).map(str::to_owned);
        let key = if let Some(h) = s("httpHeaderName") {
            HashKey::Header(h.to_ascii_lowercase())
        } else if let Some(c) = ch
            .get("httpCookie")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
        {
            HashKey::Cookie(c.to_owned())
        } else if ch.get("useSourceIp").and_then(Value::as_bool) == Some(true) {
            HashKey::SourceIp
        } else if let Some(q) = s("httpQueryParameterName") {
            HashKey::QueryParameter(q)
        } else {
            return Err("consistentHash needs httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName".into());
        };
        return Ok(Some(LoadBalancer::ConsistentHash { key }));
    }
    Err("loadBalancer needs simple or consistentHash".into())
}

/// RE2 `\1` captures as the regex crate's `${1}`.
pub(super) fn to_dollar(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                n.push(d);
                chars.next();
            }
            out.push_str(&format!("${{{n}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}
