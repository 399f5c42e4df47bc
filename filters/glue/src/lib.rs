//! `portico-glue`: what every Portico filter does with its proxy-wasm host, and nothing else.
//! A filter's policy lives in `portico-core` and returns a plan (a [`Reply`], [`HeaderEdit`]s,
//! counters); the filter's crate wires proxy-wasm callbacks to it with these helpers:
//!
//! - [`install`]: log level and a panic hook that logs before the VM aborts;
//! - [`load_config`]: read the plugin configuration and compile it, logging a refusal (the
//!   caller returns `false` from `on_configure`, so Envoy keeps the last good configuration);
//! - [`Counters`]: counters defined once per VM, bumped by index;
//! - [`send_reply`], [`edit_request_headers`], [`edit_response_headers`]: carry out a plan;
//! - [`HeaderMap`], [`header_value`]: headers read without the SDK's copies and without its panic
//!   on bytes that are not UTF-8;
//! - [`property_string`], [`now_ns`], [`seed`]: what the host knows about the stream and time.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::time::{Duration, UNIX_EPOCH};

mod headers;
pub use headers::{header_value, HeaderMap};

pub use portico_core::effects::{HeaderEdit, Reply};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType, MetricType};

/// Sets the log level and a panic hook naming the filter (a panic in wasm aborts the VM; the
/// log line is what an operator sees).
pub fn install(filter: &'static str) {
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(move |info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("{filter} panicked: {info}"));
    }));
}

/// Reads the plugin configuration and compiles it with `compile`. A refusal is logged as an
/// error naming the filter and returned as `None`: the caller's `on_configure` returns `false`,
/// and Envoy keeps serving the last good configuration. A success is logged at info with the
/// configuration's size and the time its compile took (Envoy runs it once to check a new
/// configuration and once per worker: the time is part of every update's latency).
pub fn load_config<T, E: std::fmt::Display>(
    filter: &str,
    compile: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Option<T> {
    let raw = hostcalls::get_buffer(
        proxy_wasm::types::BufferType::PluginConfiguration,
        0,
        usize::MAX,
    )
    .ok()
    .flatten()
    .unwrap_or_default();
    let started = hostcalls::get_current_time().ok();
    match compile(&raw) {
        Ok(config) => {
            let took = started.and_then(|t0| {
                hostcalls::get_current_time()
                    .ok()
                    .and_then(|t1| t1.duration_since(t0).ok())
            });
            let took = took.map_or(String::new(), |d| format!(" in {} µs", d.as_micros()));
            log::info!(
                "{filter}: configuration of {} bytes compiled{took}",
                raw.len()
            );
            Some(config)
        }
        Err(e) => {
            log::error!("{filter}: rejected configuration: {e}");
            None
        }
    }
}

/// Counters defined once per VM (visible in Envoy's `/stats/prometheus`), bumped by index.
#[derive(Debug, Clone)]
pub struct Counters {
    ids: Vec<Option<u32>>,
}

impl Counters {
    /// Defines one counter per name; a name the host refuses is never bumped.
    pub fn define(names: &[&str]) -> Counters {
        Counters {
            ids: names
                .iter()
                .map(|name| hostcalls::define_metric(MetricType::Counter, name).ok())
                .collect(),
        }
    }

    /// Adds one to counter `index` (its place in the names given to [`Counters::define`]).
    pub fn bump(&self, index: usize) {
        if let Some(Some(id)) = self.ids.get(index) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

/// Answers the current stream locally.
pub fn send_reply(reply: &Reply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let _ = hostcalls::send_http_response(reply.status, headers, Some(&reply.body));
}

fn edit(map: MapType, edits: &[HeaderEdit]) {
    for (name, value) in edits {
        let _ = hostcalls::set_map_value(map, name, value.as_deref());
    }
}

/// Resets the current HTTP stream: no response (on HTTP/1.1 Envoy closes the connection).
pub fn reset_request() {
    let _ = hostcalls::reset_http_request();
}

/// Carries out request header edits on the current stream, in order.
pub fn edit_request_headers(edits: &[HeaderEdit]) {
    edit(MapType::HttpRequestHeaders, edits);
}

/// Carries out response header edits on the current stream, in order.
pub fn edit_response_headers(edits: &[HeaderEdit]) {
    edit(MapType::HttpResponseHeaders, edits);
}

/// A property of the stream (`["source", "address"]`, …) as text, if the host has it.
pub fn property_string(path: &[&str]) -> Option<String> {
    let bytes = hostcalls::get_property(path.to_vec()).ok().flatten()?;
    String::from_utf8(bytes).ok()
}

/// The client's IP address (Envoy's `source.address`, `ip:port`).
pub fn source_ip() -> Option<std::net::IpAddr> {
    let s = property_string(&["source", "address"])?;
    s.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| s.parse::<std::net::IpAddr>())
        .ok()
}

/// Where the client was going (Envoy's `destination.address`: the original destination on a
/// listener that restores it, e.g. from a PROXY header).
pub fn destination() -> Option<std::net::SocketAddr> {
    property_string(&["destination", "address"])?.parse().ok()
}

/// The host's clock, in nanoseconds since the Unix epoch (0 if it has none).
pub fn now_ns() -> u128 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// A seed for per-worker random choices: the host's clock.
pub fn seed() -> u64 {
    match now_ns() {
        0 => 0x9e37_79b9_7f4a_7c15,
        ns => ns as u64,
    }
}

/// Sets the root context's tick period (zero stops it).
pub fn set_tick(period: Duration) {
    let _ = hostcalls::set_tick_period(period);
}

/// Makes `context_id` the current stream for the host calls that follow; `false` when the
/// stream is gone.
pub fn enter(context_id: u32) -> bool {
    hostcalls::set_effective_context(context_id).is_ok()
}

/// The time `ms` milliseconds from now, as the host's clock counts.
pub fn due_in(ms: u64) -> u128 {
    now_ns() + u128::from(ms) * 1_000_000
}

/// Whether a time from [`due_in`] has come.
pub fn is_due(due_ns: u128) -> bool {
    due_ns <= now_ns()
}

/// Sets an Envoy filter state object through the `set_envoy_filter_state` foreign function
/// (`envoy.tcp_proxy.cluster`, `envoy.network.transport_socket.original_dst_address`): the
/// `SetEnvoyFilterStateArguments` message, protobuf-encoded by hand (path = 1, value = 2,
/// span = 3: `FilterState` of the connection).
///
/// # Errors
/// The host's status, when it refuses.
pub fn set_filter_state(path: &str, value: &str) -> Result<(), proxy_wasm::types::Status> {
    let args = encode_filter_state(path, value);
    hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args)).map(|_| ())
}

/// Asks Envoy to pick the request's route again (the `clear_route_cache` foreign function): after
/// setting filter state a route matches on.
pub fn clear_route_cache() {
    let _ = hostcalls::call_foreign_function("clear_route_cache", None);
}

/// The protobuf encoding of `SetEnvoyFilterStateArguments { path, value, span: FilterState }`.
pub fn encode_filter_state(path: &str, value: &str) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut n: usize) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    let mut out = Vec::with_capacity(path.len() + value.len() + 8);
    for (tag, field) in [(0x0a, path), (0x12, value)] {
        out.push(tag);
        varint(&mut out, field.len());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn filter_state_arguments_encode_long_values() {
        let short = super::encode_filter_state("envoy.tcp_proxy.cluster", "c");
        assert_eq!(&short[..2], &[0x0a, 23]);
        let long = "x".repeat(300);
        let enc = super::encode_filter_state("p", &long);
        // 300 = 0b10_0101100 → 0xac 0x02
        assert_eq!(&enc[3..6], &[0x12, 0xac, 0x02]);
        assert_eq!(enc.len(), 3 + 3 + 300);
    }
}
