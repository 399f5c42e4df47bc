//! `portico-filter-tls`: the TLS network filter — proxy-wasm glue over
//! [`portico_core::tls::passthrough::Passthrough`], which decides.
//!
//! Per connection: `on_new_connection` pauses (Envoy's TCP proxy then waits for downstream
//! data, `upstream_connect_mode: ON_DOWNSTREAM_DATA`); each `on_downstream_data` reads what the
//! client has sent so far and asks for a verdict — wait for the rest of the ClientHello, send
//! the connection to a cluster (`envoy.tcp_proxy.cluster` filter state, then continue), or
//! close it (not TLS, an SNI no passthrough chain takes, a ClientHello over 64 KiB).
//!
//! Counters: `portico_tls_forwarded_total`, `portico_tls_closed_total`.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::rc::Rc;

use portico_core::tls::passthrough::{Passthrough, Verdict};
use portico_glue::Counters;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType};

const FILTER: &str = "portico-tls";

/// Counter names, by index.
const METRICS: [&str; 2] = ["portico_tls_forwarded_total", "portico_tls_closed_total"];

proxy_wasm::main! {{
    portico_glue::install(FILTER);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(TlsRoot::default()) });
}}

#[derive(Debug)]
struct Shared {
    policy: Passthrough,
    counters: Counters,
}

/// Root context: compiles the configuration in `on_configure`.
#[derive(Debug, Default)]
pub struct TlsRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for TlsRoot {}

impl RootContext for TlsRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(policy) = portico_glue::load_config(FILTER, Passthrough::from_json) else {
            return false;
        };
        log::info!("{FILTER}: configuration {} loaded", policy.generation());
        self.shared = Some(Rc::new(Shared {
            policy,
            counters: Counters::define(&METRICS),
        }));
        true
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(TlsStream {
            shared: self.shared.clone(),
            decided: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

/// Per-connection context.
#[derive(Debug)]
pub struct TlsStream {
    shared: Option<Rc<Shared>>,
    decided: bool,
}

impl Context for TlsStream {}

impl StreamContext for TlsStream {
    fn on_new_connection(&mut self) -> Action {
        Action::Pause
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        if self.decided {
            return Action::Continue;
        }
        let Some(shared) = self.shared.clone() else {
            // No configuration: nothing may pass.
            self.close_downstream();
            return Action::Pause;
        };
        let data = self.get_downstream_data(0, data_size).unwrap_or_default();
        match shared.policy.decide(&data) {
            Verdict::Wait if !end_of_stream => Action::Pause,
            Verdict::Wait => {
                log::debug!("{FILTER}: the client ended before its ClientHello");
                shared.counters.bump(1);
                self.close_downstream();
                Action::Pause
            }
            Verdict::Forward {
                cluster,
                backend,
                why,
            } => {
                log::debug!("{FILTER}: {why}: {backend}");
                match portico_glue::set_filter_state("envoy.tcp_proxy.cluster", &cluster) {
                    Ok(()) => {
                        self.decided = true;
                        shared.counters.bump(0);
                        Action::Continue
                    }
                    Err(e) => {
                        log::warn!("{FILTER}: setting envoy.tcp_proxy.cluster: {e:?}");
                        shared.counters.bump(1);
                        self.close_downstream();
                        Action::Pause
                    }
                }
            }
            Verdict::Close(why) => {
                log::debug!("{FILTER}: closing: {why}");
                shared.counters.bump(1);
                self.close_downstream();
                Action::Pause
            }
        }
    }
}
