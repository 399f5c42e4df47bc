//! `portico-filter-routing`: the HTTP routing filter — proxy-wasm glue over
//! [`portico_core::routing::plan::Planner`], which decides everything.
//!
//! Entry point: the `proxy_wasm::main!` below registers [`RoutingRoot`].
//!
//! Per request, in `on_http_request_headers`: read every request header (one host call), ask
//! the planner for a [`Plan`], and carry it out — header edits (client-sent steering headers
//! dropped; `x-envoy-original-dst-host` or `x-portico-cluster` set for Envoy's router), a local
//! reply, a delay (the stream is paused and released on the root context's tick), mirror copies
//! (HTTP callouts once the body is complete), counters. On the response, the header edits the
//! planner gives for what it remembered; at the end of the stream, [`Planner::done`].
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

use portico_core::config::STEER_STATE;
use portico_core::routing::plan::{Memo, MirrorCopy, Outcome, Peer, Plan, Planner, Reply};
use portico_core::Router;
use portico_glue::Counters;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType};

const FILTER: &str = "portico-routing";

proxy_wasm::main! {{
    portico_glue::install(FILTER);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(RoutingRoot::default()) });
}}

/// How often the root context looks at delayed requests while any wait.
const DELAY_TICK: Duration = Duration::from_millis(5);

/// The largest request body copied to mirrors; a longer request is not mirrored.
const MIRROR_BODY_LIMIT: usize = 1 << 20;

/// How long a mirror copy may take (its answer is dropped either way).
const MIRROR_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by every HTTP context of one VM (one Envoy worker).
#[derive(Debug)]
struct Shared {
    planner: Planner,
    counters: Counters,
}

impl Shared {
    fn count(&self, outcome: Outcome) {
        self.counters.bump(outcome as usize);
    }
}

/// A request held by an injected delay: its context, when it is due (clock nanoseconds), and
/// its reply, if it has one (else it continues to Envoy's router).
#[derive(Debug)]
struct Parked {
    context_id: u32,
    due_ns: u128,
    reply: Option<Reply>,
}

/// Requests held by injected delays, shared by the root (which releases them on its tick) and
/// the HTTP contexts (which park themselves). Outlives configuration changes.
type Delays = Rc<RefCell<Vec<Parked>>>;

/// Root context: compiles the configuration in `on_configure`, releases delayed requests on its
/// tick.
#[derive(Debug, Default)]
pub struct RoutingRoot {
    shared: Option<Rc<Shared>>,
    delays: Delays,
}

impl Context for RoutingRoot {}

impl RootContext for RoutingRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(router) = portico_glue::load_config(FILTER, Router::from_json) else {
            return false;
        };
        log::info!(
            "{FILTER}: configuration {} loaded ({} backends)",
            router.generation(),
            router.backend_count()
        );
        self.shared = Some(Rc::new(Shared {
            planner: Planner::new(router, portico_glue::seed()),
            counters: Counters::define(&Outcome::METRIC_NAMES),
        }));
        true
    }

    fn on_tick(&mut self) {
        let due: Vec<Parked> = {
            let mut parked = self.delays.borrow_mut();
            let (due, waiting) = parked
                .drain(..)
                .partition(|p| portico_glue::is_due(p.due_ns));
            *parked = waiting;
            due
        };
        for p in due {
            // The request may be gone (the client hung up): then there is nothing to release.
            if !portico_glue::enter(p.context_id) {
                continue;
            }
            match p.reply {
                None => {
                    let _ = proxy_wasm::hostcalls::resume_http_request();
                }
                Some(reply) => portico_glue::send_reply(&reply),
            }
        }
        if self.delays.borrow().is_empty() {
            portico_glue::set_tick(Duration::ZERO);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(RoutingHttp {
            context_id,
            shared: self.shared.clone(),
            delays: self.delays.clone(),
            memo: Memo::default(),
            mirror: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Mirror copies waiting for the end of the request body.
#[derive(Debug)]
struct PendingMirror {
    copies: Vec<MirrorCopy>,
    body: Vec<u8>,
}

/// Per-request context.
#[derive(Debug)]
pub struct RoutingHttp {
    context_id: u32,
    shared: Option<Rc<Shared>>,
    delays: Delays,
    /// What the plan left for the response and the end of the stream.
    memo: Memo,
    /// Mirror copies sent once the body is complete.
    mirror: Option<PendingMirror>,
}

impl Context for RoutingHttp {}

/// The stream's addresses, read from the host only when the planner asks.
struct StreamPeer;

impl Peer for StreamPeer {
    fn source(&self) -> Option<String> {
        portico_glue::property_string(&["source", "address"])
    }
    fn destination(&self) -> Option<String> {
        portico_glue::property_string(&["destination", "address"])
    }
    fn tls(&self) -> Option<Option<String>> {
        // Envoy sets the TLS version only on a TLS connection; the SNI needs `tls_inspector`,
        // which every Portico TLS listener has.
        portico_glue::property_string(&["connection", "tls_version"]).filter(|v| !v.is_empty())?;
        Some(portico_glue::property_string(&[
            "connection",
            "requested_server_name",
        ]))
    }
    fn client_subject(&self) -> Option<String> {
        portico_glue::property_string(&["connection", "subject_peer_certificate"])
            .filter(|s| !s.is_empty())
    }
}

impl RoutingHttp {
    /// Carries out a plan's reply or continuation, now or after its delay.
    fn finish(&mut self, reply: Option<Reply>, delay_ms: Option<u64>) -> Action {
        if let Some(ms) = delay_ms {
            let mut parked = self.delays.borrow_mut();
            if parked.is_empty() {
                portico_glue::set_tick(DELAY_TICK);
            }
            parked.push(Parked {
                context_id: self.context_id,
                due_ns: portico_glue::due_in(ms),
                reply,
            });
            return Action::Pause;
        }
        match reply {
            None => Action::Continue,
            Some(reply) => {
                portico_glue::send_reply(&reply);
                Action::Pause
            }
        }
    }

    fn send_mirrors(&self, shared: &Shared, pending: PendingMirror) {
        let body = (!pending.body.is_empty()).then_some(pending.body.as_slice());
        for copy in &pending.copies {
            let headers: Vec<(&str, &str)> = copy
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match self.dispatch_http_call(&copy.cluster, headers, body, vec![], MIRROR_TIMEOUT) {
                Ok(_) => shared.count(Outcome::Mirrored),
                Err(e) => log::warn!("{FILTER}: mirror to {} not sent: {e:?}", copy.cluster),
            }
        }
    }

    fn carry_out(&mut self, shared: &Shared, plan: Plan, end_of_stream: bool) -> Action {
        if let Some(steer) = &plan.steer {
            // The listener's routes forward only what carries this state (a client cannot set
            // it); the route is picked again with it.
            if let Err(e) = portico_glue::set_filter_state(STEER_STATE, steer) {
                log::warn!("{FILTER}: setting {STEER_STATE}: {e:?}; the request is not forwarded");
            }
        }
        portico_glue::edit_request_headers(&plan.edits);
        if plan.steer.is_some() && plan.edits.is_empty() {
            // Envoy clears the route cache itself on every request header change a wasm filter
            // makes (and picks the route when the router asks, after this filter): a plan with
            // edits needs no call of its own, which saves a host call per request.
            portico_glue::clear_route_cache();
        }
        for outcome in plan.counts.iter() {
            shared.count(outcome);
        }
        self.memo = plan.memo;
        if !plan.mirrors.is_empty() {
            let pending = PendingMirror {
                copies: plan.mirrors,
                body: Vec::new(),
            };
            if end_of_stream {
                self.send_mirrors(shared, pending);
            } else {
                self.mirror = Some(pending);
            }
        }
        self.finish(plan.reply, plan.delay_ms)
    }
}

impl HttpContext for RoutingHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            // on_configure never succeeded; Envoy would not run us, but never forward unrouted.
            return self.finish(Some(Reply::text(500, "routing not configured\n")), None);
        };
        // One host call for every header: the planner reads them locally, borrowed from the
        // host's buffer (not the SDK's copies, which also abort on bytes that are not UTF-8).
        let headers = portico_glue::HeaderMap::request();
        let plan = shared.planner.request(headers.pairs(), &StreamPeer);
        self.carry_out(&shared, plan, end_of_stream)
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
            log::warn!("{FILTER}: request body over {MIRROR_BODY_LIMIT} bytes, not mirrored");
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

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(shared) = self.shared.as_ref() {
            let edits = shared.planner.response(&self.memo, &|name| {
                portico_glue::header_value(MapType::HttpResponseHeaders, name)
            });
            portico_glue::edit_response_headers(&edits);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(shared) = self.shared.as_ref() {
            shared.planner.done(&mut self.memo);
        }
    }
}
