//! `portico-filter-routing`: the HTTP routing filter, as proxy-wasm glue over
//! [`portico_core::Router`].
//!
//! Entry point: the `proxy_wasm::main!` below registers [`RoutingRoot`].
//!
//! Per request, in `on_http_request_headers`:
//! 1. remove any client-sent `x-envoy-original-dst-host` and `x-portico-cluster` (Envoy honours
//!    both, so a client could otherwise steer the request anywhere);
//! 2. decide the route from `:authority` and `:path`;
//! 3. no route → local 404; a backend without ready endpoints → local 503; otherwise set
//!    `x-envoy-original-dst-host: IP:PORT` (one ready endpoint, round robin per worker) or
//!    `x-portico-cluster: outbound|PORT||FQDN`, and continue to Envoy's router.
//!
//! Every outcome bumps a counter visible in Envoy's `/stats/prometheus`
//! (`portico_routing_<outcome>_total`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use portico_core::config::{ForwardMode, HeaderMods, CLUSTER_HEADER, ORIGINAL_DST_HEADER};
use portico_core::config::{HashKey, LoadBalancer};
use portico_core::lb::{rendezvous, InFlight, Random, RoundRobin, WeightedRoundRobin};
use portico_core::matching::cidr::admitted as client_admitted;
use portico_core::routing::router::Action as RouteAction;
use portico_core::{BackendId, Decision, Request, Router};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("portico-routing panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RoutingRoot::default()) });
}}

/// The outcomes counted, in metric-id order.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Forwarded = 0,
    NoRoute = 1,
    NoEndpoints = 2,
    Redirected = 3,
    Responded = 4,
    NoBackend = 5,
    Mirrored = 6,
    Delayed = 7,
}

const METRIC_NAMES: [&str; 8] = [
    "portico_routing_forwarded_total",
    "portico_routing_no_route_total",
    "portico_routing_no_endpoints_total",
    "portico_routing_redirected_total",
    "portico_routing_direct_response_total",
    "portico_routing_no_backend_total",
    "portico_routing_mirrored_total",
    "portico_routing_delayed_total",
];

/// How often the root context looks at delayed requests while any wait.
const DELAY_TICK: Duration = Duration::from_millis(5);

/// The largest request body copied to mirrors; a longer request is not mirrored.
const MIRROR_BODY_LIMIT: usize = 1 << 20;

/// How long a mirror copy may take (its answer is dropped either way).
const MIRROR_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by every HTTP context of one VM (one Envoy worker): the compiled router, the
/// round-robin positions and the metric ids.
#[derive(Debug)]
struct Shared {
    router: Router,
    rr: RefCell<RoundRobin>,
    wrr: RefCell<WeightedRoundRobin>,
    random: RefCell<Random>,
    inflight: RefCell<InFlight>,
    metrics: [Option<u32>; 8],
}

impl Shared {
    fn count(&self, outcome: Outcome) {
        if let Some(id) = self.metrics[outcome as usize] {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Whether this request falls in the share `weights` (`[in, out]` of 10 000) of the
    /// sampler `key`: deterministic, so exactly the configured share of requests is picked.
    fn sample(&self, key: (usize, usize), weights: &[u32; 2]) -> bool {
        self.wrr.borrow_mut().pick(key, weights) == Some(0)
    }
}

/// What happens to a request once decided.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// On to Envoy's router (steering headers are set).
    Continue,
    /// A local answer.
    Reply {
        status: u32,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

impl Step {
    fn text(status: u32, body: &str) -> Step {
        Step::Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// A request held by an injected delay: its context, when it is due (clock nanoseconds), and
/// what it does then.
#[derive(Debug)]
struct Parked {
    context_id: u32,
    due_ns: u128,
    step: Step,
}

/// Requests held by injected delays, shared by the root (which releases them on its tick) and
/// the HTTP contexts (which park themselves). Outlives configuration changes.
type Delays = Rc<RefCell<Vec<Parked>>>;

fn now_ns() -> u128 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// Root context: parses and compiles the configuration in `on_configure`, and releases delayed
/// requests on its tick.
#[derive(Debug, Default)]
pub struct RoutingRoot {
    shared: Option<Rc<Shared>>,
    delays: Delays,
}

impl Context for RoutingRoot {}

impl RootContext for RoutingRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        let router = match Router::from_json(&raw) {
            Ok(router) => router,
            Err(e) => {
                // Returning false makes Envoy reject this configuration and keep the last good one.
                log::error!("portico-routing: rejected configuration: {e}");
                return false;
            }
        };
        let metrics =
            METRIC_NAMES.map(|name| hostcalls::define_metric(MetricType::Counter, name).ok());
        let seed = self
            .get_current_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        log::info!(
            "portico-routing: configuration {} loaded ({} backends)",
            router.generation(),
            router.backend_count()
        );
        self.shared = Some(Rc::new(Shared {
            router,
            rr: RefCell::default(),
            wrr: RefCell::default(),
            random: RefCell::new(Random::new(seed)),
            inflight: RefCell::default(),
            metrics,
        }));
        true
    }

    fn on_tick(&mut self) {
        let now = now_ns();
        let due: Vec<Parked> = {
            let mut parked = self.delays.borrow_mut();
            let (due, waiting) = parked.drain(..).partition(|p| p.due_ns <= now);
            *parked = waiting;
            due
        };
        for p in due {
            // The request may be gone (the client hung up): then there is nothing to release.
            if hostcalls::set_effective_context(p.context_id).is_err() {
                continue;
            }
            let _ = match p.step {
                Step::Continue => hostcalls::resume_http_request(),
                Step::Reply {
                    status,
                    headers,
                    body,
                } => {
                    let headers: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    hostcalls::send_http_response(status, headers, Some(&body))
                }
            };
        }
        if self.delays.borrow().is_empty() {
            let _ = hostcalls::set_tick_period(Duration::ZERO);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RoutingHttp {
            context_id,
            shared: self.shared.clone(),
            delays: self.delays.clone(),
            route: None,
            in_flight: None,
            mirror: None,
            backend_filters: None,
            cors_origin: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Mirror copies waiting for the end of the request body.
#[derive(Debug)]
struct PendingMirror {
    /// `(cluster, headers)` per copy.
    copies: Vec<(String, Vec<(String, String)>)>,
    body: Vec<u8>,
}

/// Per-request context.
#[derive(Debug)]
pub struct RoutingHttp {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    delays: Delays,
    /// The matched route, for its response header changes.
    route: Option<(usize, usize)>,
    /// The endpoint picked by least-request, released when the request ends.
    in_flight: Option<String>,
    /// Mirror copies sent once the body is complete.
    mirror: Option<PendingMirror>,
    /// The picked backend (its index in the route's list) when it has filters of its own.
    backend_filters: Option<usize>,
    /// The allowed origin of a CORS request, answered on the response.
    cors_origin: Option<String>,
}

impl Context for RoutingHttp {}

/// Applies header changes through a header map's accessors: remove, then set, then add (appended
/// to an existing value with a comma).
fn apply_mods(
    mods: &HeaderMods,
    get: impl Fn(&str) -> Option<String>,
    set: impl Fn(&str, Option<&str>),
) {
    for name in &mods.remove {
        set(name, None);
    }
    for (name, value) in &mods.set {
        set(name, Some(value));
    }
    for (name, value) in &mods.add {
        let joined = match get(name) {
            Some(old) => format!("{old},{value}"),
            None => value.clone(),
        };
        set(name, Some(&joined));
    }
}

/// Envoy's shadow host: `-shadow` after the host name, before any port.
fn shadow_host(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}-shadow:{port}")
        }
        _ => format!("{authority}-shadow"),
    }
}

impl RoutingHttp {
    /// Carries out a step now, or parks it when the route injects a delay for this request.
    fn finish(&mut self, step: Step, delay_ms: Option<u64>) -> Action {
        if let Some(ms) = delay_ms {
            let mut parked = self.delays.borrow_mut();
            if parked.is_empty() {
                let _ = hostcalls::set_tick_period(DELAY_TICK);
            }
            parked.push(Parked {
                context_id: self.context_id,
                due_ns: now_ns() + u128::from(ms) * 1_000_000,
                step,
            });
            return Action::Pause;
        }
        match step {
            Step::Continue => Action::Continue,
            Step::Reply {
                status,
                headers,
                body,
            } => {
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                self.send_http_response(status, headers, Some(&body));
                Action::Pause
            }
        }
    }

    fn apply_request_mods(&self, mods: &HeaderMods) {
        apply_mods(
            mods,
            |n| self.get_http_request_header(n),
            |n, v| self.set_http_request_header(n, v),
        );
    }

    fn apply_response_mods(&self, mods: &HeaderMods) {
        apply_mods(
            mods,
            |n| self.get_http_response_header(n),
            |n, v| self.set_http_response_header(n, v),
        );
    }

    /// The value a consistent hash is computed over, if the request has it.
    fn hash_key(&self, key: &HashKey) -> Option<String> {
        match key {
            HashKey::Header(name) => self.get_http_request_header(name),
            HashKey::Cookie(name) => self.get_http_request_header("cookie").and_then(|c| {
                c.split(';').find_map(|kv| {
                    kv.trim()
                        .strip_prefix(name.as_str())?
                        .strip_prefix('=')
                        .map(str::to_owned)
                })
            }),
            HashKey::SourceIp => {
                let addr = self.get_property(vec!["source", "address"])?;
                let addr = String::from_utf8(addr).ok()?;
                Some(
                    addr.parse::<std::net::SocketAddr>()
                        .map(|a| a.ip().to_string())
                        .unwrap_or(addr),
                )
            }
            HashKey::Path => self.get_http_request_header(":path"),
            HashKey::QueryParameter(name) => {
                let path = self.get_http_request_header(":path")?;
                let query = path.split_once('?')?.1;
                query.split('&').find_map(|kv| {
                    kv.strip_prefix(name.as_str())?
                        .strip_prefix('=')
                        .map(str::to_owned)
                })
            }
        }
    }

    /// Picks the mirrors this request goes to (the route's, then the picked backend's) and
    /// copies its (final) headers for each; sends them now when the request has no body, else
    /// once the body is complete.
    fn mirror(
        &mut self,
        shared: &Shared,
        at: (usize, usize),
        lists: [&[(BackendId, [u32; 2])]; 2],
        end_of_stream: bool,
    ) {
        let mut clusters = Vec::new();
        for (l, list) in lists.into_iter().enumerate() {
            for (i, (id, weights)) in list.iter().enumerate() {
                // One sampler per (route, mirror), apart from the backend split and the faults.
                let key = (at.0, usize::MAX / 2 - at.1 * 64 - l * 32 - i);
                if shared.sample(key, weights) {
                    clusters.push(shared.router.backend(*id).cluster.clone());
                }
            }
        }
        if clusters.is_empty() {
            return;
        }
        let mut headers = self.get_http_request_headers();
        headers.retain(|(k, _)| {
            !k.eq_ignore_ascii_case(ORIGINAL_DST_HEADER) && !k.eq_ignore_ascii_case(CLUSTER_HEADER)
        });
        for (k, v) in headers.iter_mut() {
            if k == ":authority" {
                *v = shadow_host(v);
            }
        }
        let copies = clusters.into_iter().map(|c| (c, headers.clone())).collect();
        let pending = PendingMirror {
            copies,
            body: Vec::new(),
        };
        if end_of_stream {
            self.send_mirrors(shared, pending);
        } else {
            self.mirror = Some(pending);
        }
    }

    fn send_mirrors(&self, shared: &Shared, pending: PendingMirror) {
        for (cluster, headers) in &pending.copies {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let body = (!pending.body.is_empty()).then_some(pending.body.as_slice());
            match self.dispatch_http_call(cluster, headers, body, vec![], MIRROR_TIMEOUT) {
                Ok(_) => shared.count(Outcome::Mirrored),
                Err(e) => log::warn!("portico-routing: mirror to {cluster} not sent: {e:?}"),
            }
        }
    }

    /// Hands the request to Envoy for `backend`: one ready endpoint, or its cluster.
    fn forward(&mut self, shared: &Shared, id: BackendId) -> Step {
        let router = &shared.router;
        let backend = router.backend(id);
        // A load balancer other than round robin is the filter's to apply, whatever the mode:
        // Envoy's cluster would only rotate.
        let mode = if backend.lb.is_round_robin() {
            router.forward_mode()
        } else {
            ForwardMode::Endpoint
        };
        match mode {
            ForwardMode::Endpoint => {
                let n = backend.endpoints.len();
                let pick = match &backend.lb {
                    _ if n == 0 => None,
                    LoadBalancer::RoundRobin => shared.rr.borrow_mut().pick(id, n),
                    LoadBalancer::Random => Some(shared.random.borrow_mut().below(n)),
                    LoadBalancer::LeastRequest => {
                        let i = shared.inflight.borrow_mut().pick(&backend.endpoints);
                        self.in_flight = i.map(|i| backend.endpoints[i].clone());
                        i
                    }
                    LoadBalancer::ConsistentHash { key } => match self.hash_key(key) {
                        Some(k) => rendezvous(k.as_bytes(), &backend.endpoints),
                        None => shared.rr.borrow_mut().pick(id, n),
                    },
                };
                let Some(endpoint) = pick.and_then(|i| backend.endpoints.get(i)) else {
                    shared.count(Outcome::NoEndpoints);
                    return Step::text(503, "503 no ready endpoints\n");
                };
                self.set_http_request_header(ORIGINAL_DST_HEADER, Some(endpoint));
            }
            ForwardMode::Cluster => {
                if backend.endpoints.is_empty() {
                    shared.count(Outcome::NoEndpoints);
                    return Step::text(503, "503 no ready endpoints\n");
                }
                self.set_http_request_header(CLUSTER_HEADER, Some(&backend.cluster));
            }
        }
        shared.count(Outcome::Forwarded);
        Step::Continue
    }

    /// Decides what happens to the request (and makes its header changes).
    #[allow(clippy::ptr_arg)] // the router reads headers through `&Vec`
    fn decide(
        &mut self,
        shared: &Shared,
        headers: &Vec<(String, String)>,
        end_of_stream: bool,
    ) -> (Step, Option<u64>) {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let (authority, path, method) = (get(":authority"), get(":path"), get(":method"));
        let router = &shared.router;
        // The client address costs a host call: read only when a route matches on it.
        let source = if router.needs_source() {
            self.get_property(vec!["source", "address"])
                .and_then(|a| String::from_utf8(a).ok())
                .and_then(|a| {
                    a.parse::<std::net::SocketAddr>()
                        .map(|s| s.ip())
                        .or_else(|_| a.parse())
                        .ok()
                })
        } else {
            None
        };
        let decision = router.decide(&Request {
            authority,
            path,
            method,
            headers,
            source,
        });
        let (vhost, index) = match decision {
            Decision::NoRoute if router.passes_through(authority) => {
                // ALLOW_ANY: on to where the client was going (the PROXY header / iptables
                // redirect's original destination), as Istio's PassthroughCluster.
                let dst = self
                    .get_property(vec!["destination", "address"])
                    .and_then(|a| String::from_utf8(a).ok());
                let Some(dst) = dst else {
                    shared.count(Outcome::NoRoute);
                    return (Step::text(404, "404 page not found\n"), None);
                };
                self.set_http_request_header(ORIGINAL_DST_HEADER, Some(&dst));
                shared.count(Outcome::Forwarded);
                return (Step::Continue, None);
            }
            Decision::NoRoute => {
                shared.count(Outcome::NoRoute);
                return (Step::text(404, "404 page not found\n"), None);
            }
            Decision::Default { backend, .. } => return (self.forward(shared, backend), None),
            Decision::Route { vhost, route } => (vhost, route),
        };
        let route = router.route(vhost, index);
        self.route = Some((vhost, index));
        if let Some(ranges) = &route.client_ranges {
            if !client_admitted(ranges, source) {
                shared.count(Outcome::Responded);
                return (Step::text(403, "403 Forbidden\n"), None);
            }
        }
        // Envoy's CORS filter (before faults and the router): answer an allowed preflight,
        // remember an allowed origin for the response.
        if let Some(cors) = route.cors.as_ref().filter(|c| c.nginx()) {
            // ingress-nginx: every OPTIONS from an allowed origin gets 204 and the headers.
            let origin = get("origin");
            if cors.allows(origin) {
                if method == "OPTIONS" {
                    shared.count(Outcome::Responded);
                    let mut headers = cors.nginx_headers(origin);
                    headers.push(("content-type".into(), "text/plain charset=UTF-8".into()));
                    return (
                        Step::Reply {
                            status: 204,
                            headers,
                            body: Vec::new(),
                        },
                        None,
                    );
                }
                self.cors_origin = Some(origin.to_owned());
            }
        } else if let Some(cors) = &route.cors {
            let origin = get("origin");
            if cors.allows(origin) {
                let asked = get("access-control-request-method");
                if method == "OPTIONS" && !asked.is_empty() {
                    shared.count(Outcome::Responded);
                    let headers =
                        cors.preflight(origin, asked, get("access-control-request-headers"));
                    return (
                        Step::Reply {
                            status: 200,
                            headers,
                            body: Vec::new(),
                        },
                        None,
                    );
                }
                self.cors_origin = Some(origin.to_owned());
            }
        }
        // Envoy's fault filter: the delay first, then the abort, each sampled on its own.
        let delay = route
            .delay
            .filter(|(_, w)| shared.sample((vhost, usize::MAX - 2 * index - 1), w))
            .map(|(ms, _)| ms);
        if delay.is_some() {
            shared.count(Outcome::Delayed);
        }
        if let Some((status, weights)) = route.abort {
            if shared.sample((vhost, usize::MAX - 2 * index), &weights) {
                shared.count(Outcome::Responded);
                return (Step::text(u32::from(status), "fault filter abort"), delay);
            }
        }
        let step = match &route.action {
            RouteAction::Respond { status, body } => {
                shared.count(Outcome::Responded);
                Step::text(u32::from(*status), body)
            }
            RouteAction::Redirect(r) => {
                shared.count(Outcome::Redirected);
                let scheme = get(":scheme");
                let scheme = if scheme.is_empty() { "http" } else { scheme };
                let location = route.redirect_location(r, scheme, authority, path, router.port());
                Step::Reply {
                    status: u32::from(r.status.unwrap_or(302)),
                    headers: vec![("location".into(), location)],
                    body: Vec::new(),
                }
            }
            RouteAction::Forward {
                backends,
                rewrite,
                filters,
            } => {
                let weights: Vec<u32> = backends.iter().map(|(_, w)| *w).collect();
                let picked = shared
                    .wrr
                    .borrow_mut()
                    .pick((vhost, index), &weights)
                    .and_then(|i| backends[i].0.map(|id| (i, id)));
                let Some((i, id)) = picked else {
                    // Every weight is 0, or the pick is a reference that did not resolve.
                    shared.count(Outcome::NoBackend);
                    return (Step::text(500, "500 no usable backend\n"), delay);
                };
                // The picked backend's own filters come after the route's.
                let own = filters.get(i).and_then(Option::as_deref);
                self.backend_filters = own.map(|_| i);
                self.apply_request_mods(&route.request_headers);
                if let Some(f) = own {
                    self.apply_request_mods(&f.request_headers);
                }
                for (name, value) in &route.upstream_headers {
                    self.set_http_request_header(name, Some(value));
                }
                if let Some(r) = own.and_then(|f| f.redirect.as_ref()) {
                    shared.count(Outcome::Redirected);
                    let scheme = get(":scheme");
                    let scheme = if scheme.is_empty() { "http" } else { scheme };
                    let location =
                        route.redirect_location(r, scheme, authority, path, router.port());
                    let step = Step::Reply {
                        status: u32::from(r.status.unwrap_or(302)),
                        headers: vec![("location".into(), location)],
                        body: Vec::new(),
                    };
                    return (step, delay);
                }
                let rewrite = own.and_then(|f| f.rewrite.as_ref()).or(rewrite.as_ref());
                if let Some(rw) = rewrite {
                    if let Some(host) = &rw.host {
                        self.set_http_request_header(":authority", Some(host));
                    }
                    if let Some(p) = &rw.path {
                        self.set_http_request_header(":path", Some(&route.rewrite_path(p, path)));
                    }
                }
                let own_mirrors = own.map_or(&[][..], |f| f.mirrors.as_slice());
                if !route.mirrors.is_empty() || !own_mirrors.is_empty() {
                    self.mirror(
                        shared,
                        (vhost, index),
                        [&route.mirrors, own_mirrors],
                        end_of_stream,
                    );
                }
                self.forward(shared, id)
            }
        };
        (step, delay)
    }
}

impl HttpContext for RoutingHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // One host call for every header: matching reads them locally.
        let headers = self.get_http_request_headers();
        // Steering headers are ours alone: drop whatever the client sent before anything else.
        for name in [ORIGINAL_DST_HEADER, CLUSTER_HEADER] {
            if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
                self.set_http_request_header(name, None);
            }
        }
        let Some(shared) = self.shared.clone() else {
            // on_configure never succeeded; Envoy would not run us, but never forward unrouted.
            return self.finish(Step::text(500, "routing not configured\n"), None);
        };
        let (step, delay) = self.decide(&shared, &headers, end_of_stream);
        self.finish(step, delay)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(mut pending) = self.mirror.take() else {
            return Action::Continue;
        };
        // Each call sees the chunk that arrived (the filter never buffers the stream).
        if body_size > 0 {
            let chunk = self.get_http_request_body(0, body_size).unwrap_or_default();
            pending.body.extend_from_slice(&chunk);
        }
        if pending.body.len() > MIRROR_BODY_LIMIT {
            log::warn!(
                "portico-routing: request body over {MIRROR_BODY_LIMIT} bytes, not mirrored"
            );
            return Action::Continue;
        }
        if end_of_stream {
            if let Some(shared) = self.shared.clone() {
                self.send_mirrors(&shared, pending);
            }
        } else {
            self.mirror = Some(pending);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let (Some(shared), Some(endpoint)) = (self.shared.as_ref(), self.in_flight.take()) {
            shared.inflight.borrow_mut().done(&endpoint);
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (Some(shared), Some((vhost, route))) = (self.shared.as_ref(), self.route) else {
            return Action::Continue;
        };
        let route = shared.router.route(vhost, route);
        self.apply_response_mods(&route.response_headers);
        if let (Some(origin), Some(cors)) = (self.cors_origin.as_deref(), &route.cors) {
            if cors.nginx() {
                for (name, value) in cors.nginx_headers(origin) {
                    self.set_http_response_header(&name, Some(&value));
                }
                return Action::Continue;
            }
            self.set_http_response_header("access-control-allow-origin", Some(origin));
            if cors.credentials() {
                self.set_http_response_header("access-control-allow-credentials", Some("true"));
            }
            if let Some(expose) = cors.expose() {
                self.set_http_response_header("access-control-expose-headers", Some(&expose));
            }
        }
        if let (Some(i), RouteAction::Forward { filters, .. }) =
            (self.backend_filters, &route.action)
        {
            if let Some(f) = filters.get(i).and_then(Option::as_deref) {
                self.apply_response_mods(&f.response_headers);
            }
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::shadow_host;

    #[test]
    fn shadow_hosts_keep_the_port_last() {
        assert_eq!(shadow_host("example.com"), "example.com-shadow");
        assert_eq!(shadow_host("example.com:8080"), "example.com-shadow:8080");
        assert_eq!(shadow_host("[::1]:80"), "[::1]-shadow:80");
        assert_eq!(shadow_host(""), "-shadow");
    }
}
