//! Istio (`networking.istio.io/v1`): Gateway, VirtualService and DestinationRule at the ingress
//! gateway, translated into per-listener routing configurations.
//!
//! # Semantics (from the Istio API reference)
//! - A VirtualService applies to the Gateways named in `gateways` (`name` or `namespace/name`;
//!   absent means `mesh` only, which the ingress gateway does not serve). Its `hosts` must be
//!   admitted by a server of the Gateway (`host`, `*.suffix`, `*`, optionally `namespace/` first).
//! - HTTP routes are tried in order, first match wins; the conditions of one `match` entry all
//!   hold, any entry may. `uri` / `authority` / `headers` / `method` / `scheme` / `queryParams`
//!   match `exact`, `prefix` (a plain string prefix) or `regex` (RE2, whole value);
//!   `withoutHeaders` negates; `ignoreUriCase` makes `uri` case-insensitive; `port` picks the
//!   listener.
//! - `route` destinations are weighted (a lone destination takes everything); `subset` selects
//!   the pods of a DestinationRule subset by label. `redirect` answers 301 by default;
//!   `rewrite.uri` replaces the matched prefix (or the whole path after an exact or regex
//!   match), `uriRegexRewrite` substitutes `\1` captures; `directResponse`; `headers`; and
//!   `fault.abort` with a percentage.

use std::collections::{BTreeMap, HashMap};

use portico_core::config::{
    Abort, Backend, BackendFilters, Cors, Delay, ForwardMode, HashKey, HeaderMatch, HeaderMods,
    LoadBalancer, Mirror, PathMatch, PathRewrite, QueryMatch, Redirect, Rewrite, Route,
    RouteAction, RouteOrder, RoutingConfig, StringMatch, UpstreamPolicy, VirtualHost,
    WeightedBackend, WildcardMode,
};
use serde_json::Value;

use crate::model::istio::*;
use crate::model::{namespace_of, Object, Resource};
use crate::translate::{ErrorKind, Index, TranslateError};

/// Istio's `timeout` and `retries` as Envoy router policy.
fn upstream_policy(
    timeout: Option<&str>,
    retries: Option<&HttpRetry>,
) -> Result<UpstreamPolicy, (String, String)> {
    let mut p = UpstreamPolicy::default();
    if let Some(t) = timeout {
        p.timeout_ms = Some(duration_ms(t).map_err(|e| (".timeout".to_owned(), e))?);
    }
    if let Some(r) = retries {
        p.retries = Some(r.attempts.unwrap_or(2));
        if let Some(t) = &r.per_try_timeout {
            p.per_try_timeout_ms =
                Some(duration_ms(t).map_err(|e| (".retries.perTryTimeout".to_owned(), e))?);
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

/// A duration as Istio writes it: Go (`1h2m3.5s`, `100ms`) or protobuf JSON (`0.5s`), in
/// milliseconds.
pub(crate) fn duration_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration like 5s, 100ms or 1m30s");
    let mut total = 0.0_f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(split);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    Ok(total.round() as u64)
}

fn string_match(m: &StringMatchSpec, ignore_case: bool) -> Result<StringMatch, String> {
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
            regex::Regex::new(r).map_err(|e| format!("regex does not compile: {e}"))?;
            Ok(StringMatch::Regex(ci(r)))
        }
        _ => Err("exactly one of exact, prefix and regex".into()),
    }
}

/// A VirtualService host as Istio reads it: a name without a dot is a short name, relative to
/// the VirtualService's namespace (`reviews` → `reviews.NS.svc.cluster.local`); `*`, IP
/// addresses and dotted names stay as they are.
fn fqdn_of_short_name(host: &str, vs_ns: &str) -> String {
    if host == "*" || host.contains('.') || host.parse::<std::net::IpAddr>().is_ok() {
        host.to_owned()
    } else {
        format!("{host}.{vs_ns}.svc.cluster.local")
    }
}

/// Whether a server host (`[ns/]host`) admits a VirtualService host from `vs_ns`.
fn server_admits(server_host: &str, gw_ns: &str, vs_ns: &str, vs_host: &str) -> bool {
    let (ns, host) = match server_host.split_once('/') {
        Some((ns, host)) => (ns, host),
        None => ("*", server_host),
    };
    let ns_ok = ns == "*" || (ns == "." && vs_ns == gw_ns) || ns == vs_ns;
    let covers = |wild: &str, name: &str| {
        wild == "*"
            || wild == name
            || wild
                .strip_prefix('*')
                .is_some_and(|s| name.ends_with(s) && name.len() > s.len())
    };
    ns_ok && (covers(host, vs_host) || covers(vs_host, host))
}

struct Ctx<'a> {
    objects: &'a [Object],
    index: &'a Index<'a>,
    /// Fields accepted but not applied, reported once the translation is done.
    notes: std::cell::RefCell<Vec<TranslateError>>,
}

impl<'a> Ctx<'a> {
    fn new(objects: &'a [Object], index: &'a Index<'a>) -> Self {
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
    fn report(&self, errors: &mut Vec<TranslateError>) {
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
enum Client<'a> {
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
    fn destination(
        &self,
        vs_ns: &str,
        d: &Destination,
        listener_port: u16,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Result<String, String> {
        let host = d.host.trim_end_matches('.');
        let (name, ns) = match host.strip_suffix(".svc.cluster.local") {
            Some(rest) => rest.split_once('.').ok_or_else(|| format!("{host:?} is not name.namespace.svc.cluster.local"))?,
            None => match host.split_once('.') {
                Some((name, ns)) if !ns.contains('.') => (name, ns),
                Some(_) => return Err(format!("{host:?} is not a Kubernetes Service (ServiceEntry hosts are not supported yet)")),
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
        let mut out = Vec::new();
        for o in self.objects {
            if let Object::Pod(p) = o {
                if ns.is_none_or(|ns| namespace_of(&p.metadata) == ns)
                    && labels
                        .iter()
                        .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
                {
                    out.extend(p.status.pod_ip.clone());
                    out.extend(p.status.pod_ips.iter().map(|i| i.ip.clone()));
                }
            }
        }
        out
    }
}

/// Translates one HTTP route into routes (one per match block) for `port`.
fn http_route(
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
    let mods = |h: Option<&HeaderOperations>| HeaderMods {
        set: h
            .map(|h| {
                h.set
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        add: h
            .map(|h| {
                h.add
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        remove: h
            .map(|h| h.remove.iter().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default(),
    };
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
    let upstream = upstream_policy(r.timeout.as_deref(), r.retries.as_ref())
        .map_err(|(f, e)| (at(&f), ErrorKind::Invalid(e)))?;
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
                Some(d) => Some(
                    duration_ms(d)
                        .map_err(|e| (at(".corsPolicy.maxAge"), ErrorKind::Invalid(e)))?
                        / 1000,
                ),
                None => None,
            };
            if c.unmatched_preflights
                .as_deref()
                .is_some_and(|u| u != "FORWARD" && u != "UNSPECIFIED")
            {
                return unsupported(
                    at(".corsPolicy.unmatchedPreflights"),
                    "unmatchedPreflights other than FORWARD",
                );
            }
            Some(Cors {
                allow_origins: origins,
                allow_methods: c.allow_methods.clone(),
                allow_headers: c.allow_headers.clone(),
                expose_headers: c.expose_headers.clone(),
                max_age,
                allow_credentials: c.allow_credentials.unwrap_or(false),
                nginx: false,
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
            let millis = duration_ms(fixed)
                .map_err(|e| (at(".fault.delay.fixedDelay"), ErrorKind::Invalid(e)))?;
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
            })
        } else {
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
                weighted.push(WeightedBackend {
                    backend: Some(key),
                    weight,
                    filters: BackendFilters {
                        request_headers: mods(d.headers.as_ref().and_then(|h| h.request.as_ref())),
                        response_headers: mods(
                            d.headers.as_ref().and_then(|h| h.response.as_ref()),
                        ),
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
            let rewrite = r.rewrite.as_ref().map(|rw| {
                let path = match (&rw.uri_regex_rewrite, &rw.uri) {
                    (Some(rr), _) => Some(PathRewrite::Regex {
                        regex: rr.regex.clone(),
                        substitution: to_dollar(&rr.rewrite),
                    }),
                    (None, Some(uri)) => Some(rewrite_path(uri)),
                    (None, None) => None,
                };
                Rewrite {
                    host: rw.authority.clone(),
                    path,
                }
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
        });
    }
    Ok(out)
}

/// Every HTTP route of a VirtualService on `port`, in order; the first bad one fails them all.
fn vs_routes(
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
fn load_balancer(policy: &Value) -> Result<Option<LoadBalancer>, String> {
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
fn to_dollar(s: &str) -> String {
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

/// Hosts in first-seen order, and their routes.
type HostRoutes = (Vec<String>, HashMap<String, Vec<Route>>);

/// Translates Istio Gateways and VirtualServices into the per-port configurations.
pub(crate) fn translate_istio(
    objects: &[Object],
    index: &Index<'_>,
    forward: ForwardMode,
    ports: &mut BTreeMap<u16, RoutingConfig>,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) {
    let gateways: Vec<&IstioGateway> = objects
        .iter()
        .filter_map(|o| {
            if let Object::IstioGateway(g) = o {
                Some(g)
            } else {
                None
            }
        })
        .collect();
    let mut services: Vec<&VirtualService> = objects
        .iter()
        .filter_map(|o| {
            if let Object::VirtualService(v) = o {
                Some(v)
            } else {
                None
            }
        })
        .collect();
    for o in objects {
        if let Object::DestinationRule(dr) = o {
            let object = dr.object_ref();
            let policies = std::iter::once((
                "spec.trafficPolicy".to_owned(),
                dr.spec.traffic_policy.as_ref(),
            ))
            .chain(dr.spec.subsets.iter().enumerate().map(|(i, s)| {
                (
                    format!("spec.subsets[{i}].trafficPolicy"),
                    s.traffic_policy.as_ref(),
                )
            }));
            for (field, policy) in policies {
                let Some(policy) = policy else { continue };
                if let Err(e) = load_balancer(policy) {
                    errors.push(TranslateError {
                        object: object.clone(),
                        field: format!("{field}.loadBalancer"),
                        kind: ErrorKind::Ignored(format!("{e}; round robin is used")),
                    });
                }
                for key in policy
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    if key != "loadBalancer" {
                        errors.push(TranslateError {
                            object: object.clone(),
                            field: format!("{field}.{key}"),
                            kind: ErrorKind::Ignored("not implemented".into()),
                        });
                    }
                }
            }
        }
    }
    for gw in &gateways {
        for (si, server) in gw.spec.servers.iter().enumerate() {
            let protocol = server.port.protocol.to_ascii_uppercase();
            if !matches!(protocol.as_str(), "HTTP" | "HTTP2") {
                errors.push(TranslateError {
                    object: gw.object_ref(),
                    field: format!("spec.servers[{si}].port.protocol"),
                    kind: ErrorKind::Ignored(format!(
                        "{} servers are not supported yet (HTTP only); this server is not served",
                        server.port.protocol
                    )),
                });
            }
        }
    }
    if gateways.is_empty() || services.is_empty() {
        return;
    }
    services.sort_by_key(|v| {
        (
            v.metadata.creation_timestamp.clone().unwrap_or_default(),
            namespace_of(&v.metadata).to_owned(),
            v.metadata.name.clone(),
        )
    });
    let ctx = Ctx::new(objects, index);
    let vs_ref = |v: &VirtualService| v.object_ref();
    // port → host → routes, in VirtualService order.
    let mut per_port: BTreeMap<u16, HostRoutes> = BTreeMap::new();
    for vs in services {
        let vs_ns = namespace_of(&vs.metadata);
        if vs.spec.tls.is_some() || vs.spec.tcp.is_some() {
            errors.push(TranslateError {
                object: vs_ref(vs),
                field: "spec.tls".into(),
                kind: ErrorKind::Ignored("TLS and TCP routes are not implemented".into()),
            });
        }
        let mut produced: Vec<(u16, String, Vec<Route>)> = Vec::new();
        let mut failed = None;
        'gateways: for gw_name in &vs.spec.gateways {
            let (gns, gname) = gw_name.split_once('/').unwrap_or((vs_ns, gw_name));
            let Some(gw) = gateways
                .iter()
                .find(|g| g.metadata.name == gname && namespace_of(&g.metadata) == gns)
            else {
                continue;
            };
            let gw_ns = namespace_of(&gw.metadata);
            let gateway_name = format!("{gns}/{gname}");
            for server in &gw.spec.servers {
                if !matches!(
                    server.port.protocol.to_ascii_uppercase().as_str(),
                    "HTTP" | "HTTP2"
                ) {
                    continue;
                }
                let hosts: Vec<String> = vs
                    .spec
                    .hosts
                    .iter()
                    .map(|h| fqdn_of_short_name(&h.to_ascii_lowercase(), vs_ns))
                    .filter(|h| {
                        server
                            .hosts
                            .iter()
                            .any(|sh| server_admits(sh, gw_ns, vs_ns, h))
                    })
                    .collect();
                if hosts.is_empty() {
                    continue;
                }
                let client = Client::Gateway {
                    name: &gateway_name,
                    labels: &gw.spec.selector,
                    namespace: gw_ns,
                };
                let mut routes = match vs_routes(&ctx, vs, server.port.number, client, backends) {
                    Ok(routes) => routes,
                    Err(e) => {
                        failed = Some(e);
                        break 'gateways;
                    }
                };
                if server
                    .tls
                    .as_ref()
                    .and_then(|t| t.get("httpsRedirect"))
                    .and_then(Value::as_bool)
                    == Some(true)
                {
                    // `tls.httpsRedirect` on an HTTP server: "the load balancer will send a 301
                    // redirect for all http connections, asking the clients to use HTTPS".
                    routes = vec![Route::new(
                        format!(
                            "Gateway {gw_ns}/{} server port {} tls.httpsRedirect",
                            gw.metadata.name, server.port.number
                        ),
                        PathMatch::Prefix("/".into()),
                        RouteAction::Redirect(Redirect {
                            scheme: Some("https".into()),
                            status: Some(301),
                            ..Redirect::default()
                        }),
                    )];
                }
                for h in hosts {
                    produced.push((server.port.number, h, routes.clone()));
                }
            }
        }
        if let Some((field, kind)) = failed {
            errors.push(TranslateError {
                object: vs_ref(vs),
                field,
                kind,
            });
            continue;
        }
        for (port, host, routes) in produced {
            let (order, map) = per_port.entry(port).or_default();
            if !map.contains_key(&host) {
                order.push(host.clone());
            }
            map.entry(host).or_default().extend(routes);
        }
    }
    ctx.report(errors);
    for (port, (order, mut map)) in per_port {
        let config = ports
            .entry(port)
            .or_insert_with(|| RoutingConfig::for_listener(port, forward));
        for host in order {
            let routes = map.remove(&host).unwrap_or_default();
            config.virtual_hosts.push(VirtualHost {
                name: format!("Istio host {host} (port {port})"),
                hosts: vec![host],
                wildcard: WildcardMode::MultiLabel,
                order: RouteOrder::Listed,
                routes,
                default_backend: None,
            });
        }
    }
}

/// The routes of the HTTPRoutes attached to one Service port: each consumer namespace's routes
/// (for its Pods only, ending in a 404 so a consumer route replaces the producer's for them),
/// then the producer routes, each set in the spec's precedence order.
fn gamma_routes(
    ctx: &Ctx<'_>,
    attached: &[&crate::gateway::MeshAttachment],
    ns: &str,
    name: &str,
    port: u16,
) -> Vec<Route> {
    let mut out = Vec::new();
    let consumers: std::collections::BTreeSet<&str> = attached
        .iter()
        .filter_map(|a| a.consumer.as_deref())
        .collect();
    for c in consumers {
        let pods = ctx.pods(Some(c), &BTreeMap::new());
        let mine = attached
            .iter()
            .copied()
            .filter(|a| a.consumer.as_deref() == Some(c));
        for mut r in crate::gateway::MeshAttachment::merged(mine) {
            r.sources = Some(pods.clone());
            out.push(r);
        }
        out.push(Route {
            sources: Some(pods),
            ..Route::new(
                format!("consumer routes of namespace {c} for Service {ns}/{name} port {port}: none matched"),
                PathMatch::Prefix("/".into()),
                RouteAction::Respond {
                    status: 404,
                    body: "404 page not found\n".into(),
                },
            )
        });
    }
    out.extend(crate::gateway::MeshAttachment::merged(
        attached.iter().copied().filter(|a| a.consumer.is_none()),
    ));
    out
}

/// Whether a VirtualService applies to sidecars: it names no gateway, or names `mesh`.
fn binds_mesh(vs: &VirtualService) -> bool {
    vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh")
}

/// The sidecar's outbound routing, one configuration per Service port (Istio's outbound
/// listeners `0.0.0.0_PORT`): a virtual host per Service with that port, named as a client in
/// the cluster addresses it (`name.ns.svc.cluster.local`, `name.ns.svc`, `name.ns`, the bare
/// `name` for Services in `default` or with a name no other namespace uses, the ClusterIP).
///
/// Its routes are those of the VirtualServices bound to `mesh` (or to no gateway) whose hosts
/// name the Service (short names are relative to the VirtualService's namespace; a wildcard host
/// applies when no VirtualService names the Service exactly); a Service with none is routed to
/// itself. A VirtualService host that is no Service is served on port 80 only, as Istio does.
pub(crate) fn translate_mesh(
    objects: &[Object],
    index: &Index<'_>,
    gamma: &crate::gateway::MeshRoutes,
    forward: ForwardMode,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) -> BTreeMap<u16, RoutingConfig> {
    let ctx = Ctx::new(objects, index);
    let mut virtual_services: Vec<&VirtualService> = objects
        .iter()
        .filter_map(|o| match o {
            Object::VirtualService(v) if binds_mesh(v) => Some(v),
            _ => None,
        })
        .collect();
    virtual_services.sort_by_key(|v| {
        (
            v.metadata.creation_timestamp.clone().unwrap_or_default(),
            namespace_of(&v.metadata).to_owned(),
            v.metadata.name.clone(),
        )
    });
    let mut services: Vec<(&str, &str, &crate::objects::Service)> = index
        .services
        .iter()
        .filter(|(_, s)| s.spec.type_.as_deref() != Some("ExternalName"))
        .map(|((ns, name), s)| (*ns, *name, *s))
        .collect();
    services.sort_by_key(|(ns, name, _)| (*ns, *name));
    let fqdn = |ns: &str, name: &str| format!("{name}.{ns}.svc.cluster.local");
    let mut name_uses: HashMap<&str, usize> = HashMap::new();
    for (_, name, _) in &services {
        *name_uses.entry(name).or_default() += 1;
    }
    // Which VirtualServices name each Service exactly, which by a wildcard, and the hosts that
    // are no Service.
    let mut exact: Vec<Vec<&VirtualService>> = vec![Vec::new(); services.len()];
    let mut wildcard: Vec<Vec<&VirtualService>> = vec![Vec::new(); services.len()];
    let mut other_hosts: Vec<(String, &VirtualService)> = Vec::new();
    for vs in &virtual_services {
        let vs_ns = namespace_of(&vs.metadata);
        for host in &vs.spec.hosts {
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            if let Some(suffix) = host.strip_prefix('*') {
                for (i, (ns, name, _)) in services.iter().enumerate() {
                    if fqdn(ns, name).ends_with(suffix)
                        && !wildcard[i].iter().any(|w| std::ptr::eq(*w, *vs))
                    {
                        wildcard[i].push(vs);
                    }
                }
                continue;
            }
            let full = fqdn_of_short_name(&host, vs_ns);
            match services
                .iter()
                .position(|(ns, name, _)| fqdn(ns, name) == full)
            {
                Some(i) if !exact[i].iter().any(|w| std::ptr::eq(*w, *vs)) => exact[i].push(vs),
                Some(_) => {}
                None => other_hosts.push((full, vs)),
            }
        }
    }
    let mut report = |vs: &VirtualService, (field, kind): (String, ErrorKind)| {
        let e = TranslateError {
            object: vs.object_ref(),
            field,
            kind,
        };
        if !errors.contains(&e) {
            errors.push(e);
        }
    };
    // The routes of some VirtualServices on one port; one that fails is left out (and reported).
    let mut routes_for = |vss: &[&VirtualService],
                          port: u16,
                          backends: &mut BTreeMap<String, Backend>|
     -> Vec<Route> {
        let mut out = Vec::new();
        for vs in vss {
            match vs_routes(&ctx, vs, port, Client::Mesh, backends) {
                Ok(mut routes) => out.append(&mut routes),
                Err(e) => report(vs, e),
            }
        }
        out
    };
    let mut ports: BTreeMap<u16, RoutingConfig> = BTreeMap::new();
    let mut taken: HashMap<u16, std::collections::HashSet<String>> = HashMap::new();
    for (i, (ns, name, svc)) in services.iter().enumerate() {
        for sp in &svc.spec.ports {
            if sp
                .protocol
                .as_deref()
                .is_some_and(|p| !p.eq_ignore_ascii_case("TCP"))
            {
                continue;
            }
            let port = sp.port;
            let bound = if exact[i].is_empty() {
                &wildcard[i]
            } else {
                &exact[i]
            };
            // HTTPRoutes attached to the Service (Gateway API mesh) come before VirtualServices.
            let attached: Vec<&crate::gateway::MeshAttachment> = gamma
                .get(&((*ns).to_owned(), (*name).to_owned()))
                .map(|v| {
                    v.iter()
                        .filter(|a| a.port.is_none_or(|p| p == port))
                        .collect()
                })
                .unwrap_or_default();
            let mut routes = if attached.is_empty() {
                routes_for(bound, port, backends)
            } else {
                gamma_routes(&ctx, &attached, ns, name, port)
            };
            let producers = attached.iter().any(|a| a.consumer.is_none());
            if routes.is_empty() || (!attached.is_empty() && !producers) {
                // No VirtualService routes this port: the Service itself, as Istio's default route.
                let own = Destination {
                    host: fqdn(ns, name),
                    subset: None,
                    port: Some(PortSelector { number: port }),
                };
                let Ok(key) = ctx.destination(ns, &own, port, backends) else {
                    continue;
                };
                routes.push(Route::new(
                    format!("Service {ns}/{name} port {port} (default route)"),
                    PathMatch::Prefix("/".into()),
                    RouteAction::to(&key),
                ));
            }
            let mut hosts = vec![
                fqdn(ns, name),
                format!("{name}.{ns}.svc"),
                format!("{name}.{ns}"),
            ];
            if *ns == "default" || name_uses.get(name) == Some(&1) {
                hosts.push((*name).to_owned());
            }
            if let Some(ip) = svc
                .spec
                .cluster_ip
                .as_deref()
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            {
                hosts.push(ip.to_owned());
            }
            let seen = taken.entry(port).or_default();
            hosts.retain(|h| seen.insert(h.clone()));
            if hosts.is_empty() {
                continue;
            }
            ports
                .entry(port)
                .or_insert_with(|| RoutingConfig::for_listener(port, forward))
                .virtual_hosts
                .push(VirtualHost {
                    name: format!("Service {ns}/{name} port {port} (mesh)"),
                    hosts,
                    wildcard: WildcardMode::MultiLabel,
                    order: RouteOrder::Listed,
                    routes,
                    default_backend: None,
                });
        }
    }
    // Hosts that are no Service: port 80 only (Istio keeps them off other ports).
    for (host, vs) in other_hosts {
        let routes = routes_for(&[vs], 80, backends);
        let seen = taken.entry(80).or_default();
        if routes.is_empty() || !seen.insert(host.clone()) {
            continue;
        }
        ports
            .entry(80)
            .or_insert_with(|| RoutingConfig::for_listener(80, forward))
            .virtual_hosts
            .push(VirtualHost {
                name: format!("Istio host {host} (mesh)"),
                hosts: vec![host],
                wildcard: WildcardMode::MultiLabel,
                order: RouteOrder::Listed,
                routes,
                default_backend: None,
            });
    }
    // ALLOW_ANY (Istio's default outbound policy): unknown hosts, and ports no Service has
    // (the catch-all configuration, port 0), go where the client was going.
    for config in ports.values_mut() {
        config.passthrough = true;
    }
    let mut any = RoutingConfig::for_listener(0, forward);
    any.passthrough = true;
    ports.insert(0, any);
    ctx.report(errors);
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_captures_convert() {
        assert_eq!(to_dollar(r"/v2/\1/x\12"), "/v2/${1}/x${12}");
        assert_eq!(to_dollar("/a$b"), "/a$$b");
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("5s", 5000),
            ("100ms", 100),
            ("0.5s", 500),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1.5s", 1500),
        ] {
            assert_eq!(duration_ms(text), Ok(ms), "{text}");
        }
        for bad in ["", "5", "s", "5 s", "5d", "-1s"] {
            assert!(duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_hosts() {
        assert!(server_admits(
            "*",
            "istio-system",
            "default",
            "a.example.com"
        ));
        assert!(server_admits(
            "default/*.example.com",
            "istio-system",
            "default",
            "a.example.com"
        ));
        assert!(!server_admits(
            "other/*",
            "istio-system",
            "default",
            "a.example.com"
        ));
        assert!(server_admits("./*", "default", "default", "x"));
        assert!(!server_admits("./*", "istio-system", "default", "x"));
        assert!(server_admits("*.example.com", "ns", "ns", "*.example.com"));
        assert!(!server_admits("b.example.com", "ns", "ns", "a.example.com"));
    }
}
