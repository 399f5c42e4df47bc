//! `portico-filter-egress`: the sidecar's egress policy — proxy-wasm glue over
//! [`portico_core::egress::Egress`], which decides.
//!
//! One module, three roots (the `root_id` says which): `portico-egress-http` runs in the
//! sidecar's HTTP connection managers in front of the routing filter — a blocked request gets
//! Istio's `block_all` answer (502, no body), any other continues to routing —;
//! `portico-egress-tls` and `portico-egress-tcp` run as network filters in front of a TCP proxy:
//! they decide on the addresses, or (TLS chains) read the ClientHello when the port's entries
//! are picked by SNI, then name the cluster (`envoy.tcp_proxy.cluster`) or close the connection
//! (Istio's BlackHoleCluster). The TCP root never waits for client bytes, so protocols whose
//! server speaks first work.
//!
//! Every verdict bumps `portico_egress_<outcome>_total` and `portico_egress.<outcome>.<entry>`
//! (outcome `allowed` | `passthrough` | `blocked`; entry `serviceentry.NS.NAME`,
//! `service.NS.NAME` or `unknown`); every block is logged with its source, destination, host or
//! SNI, scope and rule. Without a configuration nothing passes.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use portico_core::config::EGRESS_VERDICT_HEADER;
use portico_core::effects::Reply;
use portico_core::egress::{Egress, Hello, Outcome, Start, Verdict};
use portico_glue::Counters;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType};

const FILTER: &str = "portico-egress";

/// The root id of the network filter of TLS chains.
pub const TLS_ROOT_ID: &str = "portico-egress-tls";
/// The root id of the network filter of TCP chains; any other root is the HTTP filter.
pub const TCP_ROOT_ID: &str = "portico-egress-tcp";

/// Which contexts a root makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Role {
    #[default]
    Http,
    Tls,
    Tcp,
}

proxy_wasm::main! {{
    portico_glue::install(FILTER);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(EgressRoot::default()) });
}}

#[derive(Debug)]
struct Shared {
    policy: Egress,
    counters: Counters,
    /// `(outcome, entry)` → counter index; the outcome's total is at `totals[outcome]`.
    by_entry: HashMap<(usize, String), usize>,
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Allowed => 0,
        Outcome::Passthrough => 1,
        Outcome::Blocked => 2,
    }
}

impl Shared {
    fn new(policy: Egress) -> Shared {
        let mut names: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| format!("portico_egress_{}_total", o.label()))
            .collect();
        let mut by_entry = HashMap::new();
        for id in policy.entry_ids() {
            for o in Outcome::ALL {
                by_entry.insert((outcome_index(o), id.clone()), names.len());
                names.push(format!("portico_egress.{}.{id}", o.label()));
            }
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Shared {
            counters: Counters::define(&refs),
            policy,
            by_entry,
        }
    }

    /// Counts a verdict, and logs it when it blocks.
    fn record(&self, kind: &str, verdict: &Verdict, name: Option<&str>) {
        let o = outcome_index(verdict.outcome);
        self.counters.bump(o);
        if let Some(i) = self.by_entry.get(&(o, verdict.entry.clone())) {
            self.counters.bump(*i);
        }
        let line = || {
            format!(
                "{FILTER}: {} {kind} source={} destination={} {}={} scope=\"{}\" entry={} rule=\"{}\"",
                verdict.outcome.label(),
                portico_glue::source_ip().map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
                portico_glue::destination().map_or_else(|| "-".to_owned(), |a| a.to_string()),
                if kind == "http" { "host" } else { "sni" },
                name.unwrap_or("-"),
                verdict.scope,
                verdict.entry,
                verdict.rule,
            )
        };
        if verdict.outcome == Outcome::Blocked {
            log::info!("{}", line());
        } else {
            log::debug!("{}", line());
        }
    }
}

/// Root context: compiles the configuration in `on_configure`; its root id picks HTTP or
/// network contexts.
#[derive(Debug, Default)]
pub struct EgressRoot {
    shared: Option<Rc<Shared>>,
    role: Role,
}

impl Context for EgressRoot {}

impl RootContext for EgressRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.role = match portico_glue::property_string(&["plugin_root_id"]).as_deref() {
            Some(TLS_ROOT_ID) => Role::Tls,
            Some(TCP_ROOT_ID) => Role::Tcp,
            _ => Role::Http,
        };
        let Some(policy) = portico_glue::load_config(FILTER, Egress::from_json) else {
            return false;
        };
        log::info!("{FILTER}: configuration {} loaded", policy.generation());
        self.shared = Some(Rc::new(Shared::new(policy)));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EgressHttp {
            shared: self.shared.clone(),
        }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(EgressStream {
            shared: self.shared.clone(),
            decided: false,
            tls: self.role == Role::Tls,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(match self.role {
            Role::Http => ContextType::HttpContext,
            Role::Tls | Role::Tcp => ContextType::StreamContext,
        })
    }
}

/// Per-request context.
#[derive(Debug)]
pub struct EgressHttp {
    shared: Option<Rc<Shared>>,
}

impl Context for EgressHttp {}

impl HttpContext for EgressHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Istio's `block_all` direct response: 502, no body.
        let blocked = || {
            portico_glue::send_reply(&Reply {
                status: 502,
                headers: Vec::new(),
                body: Vec::new(),
            })
        };
        let Some(shared) = self.shared.clone() else {
            log::info!("{FILTER}: blocked http: no configuration");
            blocked();
            return Action::Pause;
        };
        let authority = portico_glue::header_value(
            proxy_wasm::types::MapType::HttpRequestHeaders,
            ":authority",
        )
        .unwrap_or_default();
        let Some(destination) = portico_glue::destination() else {
            log::info!("{FILTER}: blocked http host={authority}: no destination address");
            blocked();
            return Action::Pause;
        };
        let verdict = shared
            .policy
            .decide_http(portico_glue::source_ip(), destination, &authority);
        shared.record("http", &verdict, Some(&authority));
        // Routing reads the verdict: the client's own header never gets there.
        let passthrough = (verdict.outcome == Outcome::Passthrough).then_some("passthrough");
        self.set_http_request_header(EGRESS_VERDICT_HEADER, passthrough);
        if verdict.outcome == Outcome::Blocked {
            if verdict.close {
                portico_glue::reset_request();
            } else {
                blocked();
            }
            return Action::Pause;
        }
        Action::Continue
    }
}

/// Per-connection context.
#[derive(Debug)]
pub struct EgressStream {
    shared: Option<Rc<Shared>>,
    decided: bool,
    /// On a TLS chain: may wait for the ClientHello.
    tls: bool,
}

impl Context for EgressStream {}

impl EgressStream {
    /// Carries a verdict out: the cluster for the TCP proxy, or a closed connection.
    fn apply(
        &mut self,
        shared: &Shared,
        kind: &str,
        verdict: &Verdict,
        sni: Option<&str>,
    ) -> Action {
        self.decided = true;
        shared.record(kind, verdict, sni);
        let cluster = match (&verdict.outcome, &verdict.cluster) {
            (Outcome::Blocked, _) | (_, None) => {
                self.close_downstream();
                return Action::Pause;
            }
            (_, Some(cluster)) => cluster,
        };
        match portico_glue::set_filter_state("envoy.tcp_proxy.cluster", cluster) {
            Ok(()) => Action::Continue,
            Err(e) => {
                log::warn!("{FILTER}: setting envoy.tcp_proxy.cluster: {e:?}; closing");
                self.close_downstream();
                Action::Pause
            }
        }
    }

    fn unconfigured(&mut self) -> Action {
        log::info!("{FILTER}: blocked connection: no configuration");
        self.decided = true;
        self.close_downstream();
        Action::Pause
    }
}

impl StreamContext for EgressStream {
    fn on_new_connection(&mut self) -> Action {
        let Some(shared) = self.shared.clone() else {
            return self.unconfigured();
        };
        let Some(destination) = portico_glue::destination() else {
            log::info!("{FILTER}: blocked connection: no destination address");
            self.decided = true;
            self.close_downstream();
            return Action::Pause;
        };
        let source = portico_glue::source_ip();
        if !self.tls {
            let v = shared.policy.decide_tcp(source, destination);
            return self.apply(&shared, "tcp", &v, None);
        }
        match shared.policy.decide_connection(source, destination) {
            Start::Decided(v) => self.apply(&shared, "tls", &v, None),
            Start::NeedHello => Action::Pause,
        }
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        if self.decided {
            return Action::Continue;
        }
        let Some(shared) = self.shared.clone() else {
            return self.unconfigured();
        };
        let destination =
            portico_glue::destination().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let data = self.get_downstream_data(0, data_size).unwrap_or_default();
        match shared
            .policy
            .decide_tls(portico_glue::source_ip(), destination, &data)
        {
            Hello::Wait if !end_of_stream => Action::Pause,
            Hello::Wait => {
                let v = Verdict {
                    outcome: Outcome::Blocked,
                    entry: portico_core::egress::UNKNOWN_ENTRY.into(),
                    cluster: None,
                    scope: String::new(),
                    rule: "the client ended before its ClientHello".into(),
                    close: true,
                };
                self.apply(&shared, "tls", &v, None)
            }
            Hello::Decided(v, sni) => self.apply(&shared, "tls", &v, sni.as_deref()),
        }
    }
}
