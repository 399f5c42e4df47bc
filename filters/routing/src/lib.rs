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

use portico_core::config::{ForwardMode, HeaderMods, CLUSTER_HEADER, ORIGINAL_DST_HEADER};
use portico_core::config::{HashKey, LoadBalancer};
use portico_core::lb::{rendezvous, InFlight, Random, RoundRobin, WeightedRoundRobin};
use portico_core::router::Action as RouteAction;
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
}

const METRIC_NAMES: [&str; 6] = [
    "portico_routing_forwarded_total",
    "portico_routing_no_route_total",
    "portico_routing_no_endpoints_total",
    "portico_routing_redirected_total",
    "portico_routing_direct_response_total",
    "portico_routing_no_backend_total",
];

/// State shared by every HTTP context of one VM (one Envoy worker): the compiled router, the
/// round-robin positions and the metric ids.
#[derive(Debug)]
struct Shared {
    router: Router,
    rr: RefCell<RoundRobin>,
    wrr: RefCell<WeightedRoundRobin>,
    random: RefCell<Random>,
    inflight: RefCell<InFlight>,
    metrics: [Option<u32>; 6],
}

impl Shared {
    fn count(&self, outcome: Outcome) {
        if let Some(id) = self.metrics[outcome as usize] {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}

/// Root context: parses and compiles the configuration in `on_configure`.
#[derive(Debug, Default)]
pub struct RoutingRoot {
    shared: Option<Rc<Shared>>,
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

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RoutingHttp {
            shared: self.shared.clone(),
            route: None,
            in_flight: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Per-request context.
#[derive(Debug)]
pub struct RoutingHttp {
    shared: Option<Rc<Shared>>,
    /// The matched route, for its response header changes.
    route: Option<(usize, usize)>,
    /// The endpoint picked by least-request, released when the request ends.
    in_flight: Option<String>,
}

impl Context for RoutingHttp {}

impl RoutingHttp {
    fn reply(&self, status: u32, body: &str) -> Action {
        self.send_http_response(
            status,
            vec![("content-type", "text/plain; charset=utf-8")],
            Some(body.as_bytes()),
        );
        Action::Pause
    }

    fn apply_request_mods(&self, mods: &HeaderMods) {
        for name in &mods.remove {
            self.set_http_request_header(name, None);
        }
        for (name, value) in &mods.set {
            self.set_http_request_header(name, Some(value));
        }
        for (name, value) in &mods.add {
            let joined = match self.get_http_request_header(name) {
                Some(old) => format!("{old},{value}"),
                None => value.clone(),
            };
            self.set_http_request_header(name, Some(&joined));
        }
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

    /// Hands the request to Envoy for `backend`: one ready endpoint, or its cluster.
    fn forward(&mut self, shared: &Shared, id: BackendId) -> Action {
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
                    return self.reply(503, "503 no ready endpoints\n");
                };
                self.set_http_request_header(ORIGINAL_DST_HEADER, Some(endpoint));
            }
            ForwardMode::Cluster => {
                if backend.endpoints.is_empty() {
                    shared.count(Outcome::NoEndpoints);
                    return self.reply(503, "503 no ready endpoints\n");
                }
                self.set_http_request_header(CLUSTER_HEADER, Some(&backend.cluster));
            }
        }
        shared.count(Outcome::Forwarded);
        Action::Continue
    }
}

impl HttpContext for RoutingHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
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
            return self.reply(500, "routing not configured\n");
        };
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let (authority, path, method) = (get(":authority"), get(":path"), get(":method"));
        let router = &shared.router;
        let decision = router.decide(&Request {
            authority,
            path,
            method,
            headers: &headers,
        });
        let (authority, path) = (authority.to_owned(), path.to_owned());
        let (vhost, index) = match decision {
            Decision::NoRoute => {
                shared.count(Outcome::NoRoute);
                return self.reply(404, "404 page not found\n");
            }
            Decision::Default { backend, .. } => return self.forward(&shared, backend),
            Decision::Route { vhost, route } => (vhost, route),
        };
        let route = router.route(vhost, index);
        self.route = Some((vhost, index));
        if let Some((status, weights)) = route.abort {
            // Deterministic share: over every 10 000 requests, exactly the configured number abort.
            if shared
                .wrr
                .borrow_mut()
                .pick((vhost, usize::MAX - index), &weights)
                == Some(0)
            {
                shared.count(Outcome::Responded);
                return self.reply(u32::from(status), "fault filter abort");
            }
        }
        match &route.action {
            RouteAction::Respond { status, body } => {
                shared.count(Outcome::Responded);
                self.reply(u32::from(*status), body)
            }
            RouteAction::Redirect(r) => {
                shared.count(Outcome::Redirected);
                let scheme = self
                    .get_http_request_header(":scheme")
                    .unwrap_or_else(|| "http".into());
                let location =
                    route.redirect_location(r, &scheme, &authority, &path, router.port());
                self.send_http_response(
                    u32::from(r.status.unwrap_or(302)),
                    vec![("location", &location)],
                    None,
                );
                Action::Pause
            }
            RouteAction::Forward { backends, rewrite } => {
                let weights: Vec<u32> = backends.iter().map(|(_, w)| *w).collect();
                let picked = shared
                    .wrr
                    .borrow_mut()
                    .pick((vhost, index), &weights)
                    .and_then(|i| backends[i].0);
                let Some(id) = picked else {
                    // Every weight is 0, or the pick is a reference that did not resolve.
                    shared.count(Outcome::NoBackend);
                    return self.reply(500, "500 no usable backend\n");
                };
                self.apply_request_mods(&route.request_headers);
                if let Some(rw) = rewrite {
                    if let Some(host) = &rw.host {
                        self.set_http_request_header(":authority", Some(host));
                    }
                    if let Some(p) = &rw.path {
                        self.set_http_request_header(":path", Some(&route.rewrite_path(p, &path)));
                    }
                }
                self.forward(&shared, id)
            }
        }
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
        let mods = &shared.router.route(vhost, route).response_headers;
        for name in &mods.remove {
            self.set_http_response_header(name, None);
        }
        for (name, value) in &mods.set {
            self.set_http_response_header(name, Some(value));
        }
        for (name, value) in &mods.add {
            let joined = match self.get_http_response_header(name) {
                Some(old) => format!("{old},{value}"),
                None => value.clone(),
            };
            self.set_http_response_header(name, Some(&joined));
        }
        Action::Continue
    }
}
