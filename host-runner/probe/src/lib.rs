//! A proxy-wasm test filter built with the Rust SDK, exercising one ABI area per request header
//! `x-probe`, so host-runner's tests can assert what the host observed. Configuration (JSON):
//! `{"kind": "http" | "stream" | "pass-through" | "calls", "tick_ms": N, "calls": [...]}`.
//! `pass-through` is an HTTP filter that does nothing at all — no host call per request: the
//! proxy-wasm ABI's own cost, the floor `portico-e2e bench-envoy` measures the routing filter
//! against. `calls` makes exactly the host calls listed, in order, on each request's headers and
//! nothing else, each the way the Portico filters make it (`portico-glue`), so `portico-e2e
//! bench-envoy-instructions --abi-calls` can price each call in Envoy: `header-pairs` (every
//! request header, read and decoded), `header-value` (`:path` alone), `set-header`
//! (`x-probe-call: 1`, which also clears Envoy's route cache), `filter-state` (the steering
//! filter state, `0.0.0.0:0`), `clear-route-cache`, `metric` (a counter bumped).
//!
//! | `x-probe` | what the filter does |
//! |---|---|
//! | `headers` | adds, replaces and removes request headers; echoes every pair count in a response header |
//! | `body` | buffers the request body (Pause in the body callback until its end) and replaces it upper-cased; appends to the response body |
//! | `callout` | dispatches an HTTP call to cluster `auth`; on the answer, copies its status and body length into request headers and resumes |
//! | `grpc` | dispatches a gRPC call; on the answer, resumes with the status and message size |
//! | `shared` | increments shared-data key `hits` with CAS, and enqueues the request path on queue `paths` |
//! | `metrics` | bumps a counter, sets a gauge, records a histogram |
//! | `property` | copies `source.address` and `request.path` into response headers |
//! | `reply` | answers 418 locally |
//! | `panic` | panics (a trap) |
//! | `sizes` | logs `proxy_get_header_map_size` of each map and `proxy_get_buffer_status` of the bodies (imports the SDK does not wrap) |
//!
//! The root context sets a tick (`tick_ms`) whose callback increments shared-data key `ticks`,
//! and dequeues queue `paths` into shared-data key `last_path` when notified.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType, Status};
use serde::Deserialize;

// ABI 0.2.1 calls the SDK (0.2.5) declares no wrapper for.
extern "C" {
    fn proxy_get_header_map_size(map_type: u32, return_size: *mut usize) -> u32;
    fn proxy_get_buffer_status(
        buffer_type: u32,
        return_size: *mut usize,
        return_flags: *mut u32,
    ) -> u32;
}

/// `proxy_get_header_map_size`: `status size`.
#[allow(unsafe_code)] // an FFI call to the host: the only way to reach an import the SDK lacks
fn map_size(map_type: u32) -> String {
    let mut size = 0usize;
    // SAFETY: the host writes one usize to a valid pointer.
    let status = unsafe { proxy_get_header_map_size(map_type, &mut size) };
    format!("{status} {size}")
}

/// `proxy_get_buffer_status`: `status size flags`.
#[allow(unsafe_code)] // as above
fn buffer_status(buffer_type: u32) -> String {
    let (mut size, mut flags) = (0usize, 0u32);
    // SAFETY: the host writes one usize and one u32 to valid pointers.
    let status = unsafe { proxy_get_buffer_status(buffer_type, &mut size, &mut flags) };
    format!("{status} {size} {flags}")
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot::default()) });
}}

#[derive(Debug, Default, Clone, Deserialize)]
struct Config {
    kind: String,
    #[serde(default)]
    tick_ms: u64,
    /// For kind `calls`: the host calls made on each request's headers.
    #[serde(default)]
    calls: Vec<Call>,
}

/// One host call of kind `calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Call {
    HeaderPairs,
    HeaderValue,
    SetHeader,
    FilterState,
    ClearRouteCache,
    Metric,
}

#[derive(Debug, Default)]
struct ProbeRoot {
    config: Config,
    queue: Option<u32>,
    /// The counter kind `calls` bumps.
    counter: Option<u32>,
    /// Kind `calls`'s list, shared by every HTTP context: a context costs no copy of it (an
    /// allocation per request would be counted in each call's price).
    calls: Rc<[Call]>,
}

impl Context for ProbeRoot {}

fn increment(key: &str) {
    // CAS loop: retry on a concurrent update.
    for _ in 0..10 {
        let (value, cas) = hostcalls::get_shared_data(key).unwrap_or((None, None));
        let n = value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        match hostcalls::set_shared_data(key, Some((n + 1).to_string().as_bytes()), cas) {
            Err(Status::CasMismatch) => continue,
            _ => return,
        }
    }
}

impl RootContext for ProbeRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!("probe: vm started");
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
        match serde_json::from_slice::<Config>(&raw) {
            Ok(c) => {
                if c.tick_ms > 0 {
                    self.set_tick_period(Duration::from_millis(c.tick_ms));
                }
                self.queue = hostcalls::register_shared_queue("paths").ok();
                self.calls = c.calls.as_slice().into();
                if c.calls.contains(&Call::Metric) {
                    self.counter =
                        hostcalls::define_metric(MetricType::Counter, "probe_calls_total").ok();
                }
                self.config = c;
                true
            }
            Err(e) => {
                log::error!("probe: bad configuration: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        increment("ticks");
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = hostcalls::dequeue_shared_queue(queue_id) {
            let _ = hostcalls::set_shared_data("last_path", Some(&item), None);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        if self.config.kind == "pass-through" {
            return Some(Box::new(PassThrough));
        }
        if self.config.kind == "calls" {
            return Some(Box::new(Calls {
                calls: Rc::clone(&self.calls),
                counter: self.counter,
            }));
        }
        Some(Box::new(ProbeHttp {
            probe: String::new(),
        }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(ProbeStream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.config.kind == "stream" {
            ContextType::StreamContext
        } else {
            ContextType::HttpContext
        })
    }
}

struct ProbeHttp {
    probe: String,
}

/// Every callback the SDK's default: `Continue`, no host call.
struct PassThrough;

impl Context for PassThrough {}

impl HttpContext for PassThrough {}

/// Kind `calls`: the listed host calls on the request headers, nothing else.
struct Calls {
    calls: Rc<[Call]>,
    counter: Option<u32>,
}

impl Context for Calls {}

impl HttpContext for Calls {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for call in self.calls.iter() {
            match call {
                Call::HeaderPairs => {
                    let map = portico_glue::HeaderMap::request();
                    std::hint::black_box(map.pairs());
                }
                Call::HeaderValue => {
                    std::hint::black_box(portico_glue::header_value(
                        MapType::HttpRequestHeaders,
                        ":path",
                    ));
                }
                Call::SetHeader => {
                    portico_glue::edit_request_headers(&[(
                        "x-probe-call".into(),
                        Some("1".into()),
                    )]);
                }
                Call::FilterState => {
                    let _ = portico_glue::set_filter_state(
                        portico_core::config::STEER_STATE,
                        portico_core::config::CLUSTER_STEER,
                    );
                }
                Call::ClearRouteCache => portico_glue::clear_route_cache(),
                Call::Metric => {
                    if let Some(id) = self.counter {
                        let _ = hostcalls::increment_metric(id, 1);
                    }
                }
            }
        }
        Action::Continue
    }
}

impl Context for ProbeHttp {
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        log::info!("callout: body status {}", buffer_status(4));
        log::info!("callout: headers size {}", map_size(6));
        self.set_http_request_header("x-callout-status", Some(&status));
        self.set_http_request_header("x-callout-body", Some(&String::from_utf8_lossy(&body)));
        self.resume_http_request();
    }

    fn on_grpc_call_response(&mut self, _token_id: u32, status_code: u32, response_size: usize) {
        let message = self
            .get_grpc_call_response_body(0, response_size)
            .unwrap_or_default();
        self.set_http_request_header("x-grpc-status", Some(&status_code.to_string()));
        self.set_http_request_header("x-grpc-message-size", Some(&message.len().to_string()));
        self.resume_http_request();
    }
}

impl HttpContext for ProbeHttp {
    fn on_http_request_headers(&mut self, num_headers: usize, _end_of_stream: bool) -> Action {
        self.probe = self.get_http_request_header("x-probe").unwrap_or_default();
        match self.probe.as_str() {
            "headers" => {
                self.add_http_request_header("x-added", "1");
                self.set_http_request_header("x-replaced", Some("new"));
                self.set_http_request_header("x-removed", None);
                let pairs = self.get_http_request_headers();
                self.set_http_request_header(
                    "x-pairs",
                    Some(&format!("{num_headers}/{}", pairs.len())),
                );
                Action::Continue
            }
            "sizes" => {
                log::info!("sizes: request headers {}", map_size(0));
                log::info!("sizes: request trailers {}", map_size(1));
                log::info!("sizes: callout headers {}", map_size(6));
                log::info!("sizes: map 42 {}", map_size(42));
                log::info!("sizes: callout body {}", buffer_status(4));
                log::info!("sizes: buffer 42 {}", buffer_status(42));
                Action::Continue
            }
            "callout" => {
                let path = self.get_http_request_header(":path").unwrap_or_default();
                match self.dispatch_http_call(
                    "auth",
                    vec![
                        (":method", "GET"),
                        (":path", &path),
                        (":authority", "auth.internal"),
                    ],
                    Some(b"check"),
                    vec![],
                    Duration::from_millis(500),
                ) {
                    Ok(_) => Action::Pause,
                    Err(_) => {
                        self.send_http_response(500, vec![], Some(b"callout refused"));
                        Action::Pause
                    }
                }
            }
            "grpc" => match self.dispatch_grpc_call(
                "grpc-svc",
                "probe.Check",
                "Run",
                vec![("k", b"v")],
                Some(b"hello"),
                Duration::from_secs(1),
            ) {
                Ok(_) => Action::Pause,
                Err(_) => Action::Continue,
            },
            "shared" => {
                increment("hits");
                if let Ok(Some(q)) = hostcalls::resolve_shared_queue("probe", "paths") {
                    let path = self.get_http_request_header(":path").unwrap_or_default();
                    let _ = hostcalls::enqueue_shared_queue(q, Some(path.as_bytes()));
                }
                Action::Continue
            }
            "metrics" => {
                let c = hostcalls::define_metric(MetricType::Counter, "probe_requests_total");
                let g = hostcalls::define_metric(MetricType::Gauge, "probe_inflight");
                let h = hostcalls::define_metric(MetricType::Histogram, "probe_size_bytes");
                if let (Ok(c), Ok(g), Ok(h)) = (c, g, h) {
                    let _ = hostcalls::increment_metric(c, 1);
                    let _ = hostcalls::record_metric(g, 7);
                    let _ = hostcalls::record_metric(h, 1234);
                }
                Action::Continue
            }
            "reply" => {
                self.send_http_response(418, vec![("x-reply", "probe")], Some(b"short and stout"));
                Action::Pause
            }
            "panic" => panic!("probe asked to panic"),
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        log::debug!("probe: request body {body_size} bytes, end {end_of_stream}");
        if self.probe == "sizes" {
            log::info!("sizes: request body {body_size} {}", buffer_status(0));
            let past_end = self.get_http_request_body(body_size, 10);
            log::info!("sizes: bytes past the end {past_end:?}");
            return if end_of_stream {
                Action::Continue
            } else {
                Action::Pause
            };
        }
        if self.probe != "body" {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        self.set_http_request_body(0, body_size, &body.to_ascii_uppercase());
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.probe == "sizes" {
            log::info!("sizes: response headers {}", map_size(2));
        }
        self.set_http_response_header("x-probe-seen", Some(&self.probe));
        if self.probe == "property" {
            let get = |path: Vec<&str>| {
                self.get_property(path)
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_default()
            };
            let source = get(vec!["source", "address"]);
            let path = get(vec!["request", "path"]);
            self.set_http_response_header("x-source", Some(&source));
            self.set_http_response_header("x-request-path", Some(&path));
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.probe == "body" && end_of_stream {
            self.set_http_response_body(body_size, 0, b"+probe");
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        log::debug!("probe: done with {:?}", self.probe);
    }
}

struct ProbeStream;

impl Context for ProbeStream {}

impl StreamContext for ProbeStream {
    fn on_new_connection(&mut self) -> Action {
        let source = self
            .get_property(vec!["source", "address"])
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        log::info!("probe: new connection from {source:?}");
        Action::Continue
    }

    fn on_downstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
        let data = self.get_downstream_data(0, data_size).unwrap_or_default();
        if data.starts_with(b"close") {
            self.close_downstream();
            return Action::Pause;
        }
        // SetEnvoyFilterStateArguments { path: 1, value: 2 }.
        let (path, value) = (b"envoy.tcp_proxy.cluster", &data[..data.len().min(32)]);
        let mut args = vec![0x0a, path.len() as u8];
        args.extend_from_slice(path);
        args.push(0x12);
        args.push(value.len() as u8);
        args.extend_from_slice(value);
        let _ = hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args));
        Action::Continue
    }

    fn on_upstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
        self.set_upstream_data(0, data_size, b"rewritten");
        Action::Continue
    }

    fn on_downstream_close(&mut self, _peer_type: proxy_wasm::types::PeerType) {
        increment("closed");
    }
}
