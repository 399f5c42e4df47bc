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

use portico_core::config::{ForwardMode, CLUSTER_HEADER, ORIGINAL_DST_HEADER};
use portico_core::lb::RoundRobin;
use portico_core::{Decision, Router};
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
}

const METRIC_NAMES: [&str; 3] = [
    "portico_routing_forwarded_total",
    "portico_routing_no_route_total",
    "portico_routing_no_endpoints_total",
];

/// State shared by every HTTP context of one VM (one Envoy worker): the compiled router, the
/// round-robin positions and the metric ids.
#[derive(Debug)]
struct Shared {
    router: Router,
    rr: RefCell<RoundRobin>,
    metrics: [Option<u32>; 3],
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
        log::info!(
            "portico-routing: configuration {} loaded ({} backends)",
            router.generation(),
            router.backend_count()
        );
        self.shared = Some(Rc::new(Shared {
            router,
            rr: RefCell::default(),
            metrics,
        }));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RoutingHttp {
            shared: self.shared.clone(),
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
}

impl HttpContext for RoutingHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Steering headers are ours alone: drop whatever the client sent before anything else.
        self.set_http_request_header(ORIGINAL_DST_HEADER, None);
        self.set_http_request_header(CLUSTER_HEADER, None);
        let Some(shared) = self.shared.clone() else {
            // on_configure never succeeded; Envoy would not run us, but never forward unrouted.
            return self.reply(500, "routing not configured\n");
        };
        let authority = self
            .get_http_request_header(":authority")
            .unwrap_or_default();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let router = &shared.router;
        let (id, backend) = match router.decide(&authority, &path) {
            Decision::Forward { backend, .. } => (backend, router.backend(backend)),
            Decision::NoRoute => {
                shared.count(Outcome::NoRoute);
                return self.reply(404, "404 page not found\n");
            }
        };
        match router.forward_mode() {
            ForwardMode::Endpoint => {
                let pick = shared.rr.borrow_mut().pick(id, backend.endpoints.len());
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
