//! Host state: everything a VM's host calls read and write. One [`HostState`] lives in each
//! wasmtime `Store`; what Envoy keeps process-wide (metrics, shared data, queues) lives in a
//! [`SharedHost`] that the VMs of one [`crate::Runtime`] share. No globals: runtimes are
//! independent, so tests run in parallel.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{LogLevel, MetricType, StreamType};

/// A header map: ordered `(name, value)` pairs, names as given (HTTP/2 style lower-case by
/// convention).
pub type Headers = Vec<(String, String)>;

/// A property path (`["request", "path"]`).
pub type PropertyPath = Vec<String>;

/// One log line a module wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Level.
    pub level: LogLevel,
    /// Context whose callback logged.
    pub context: u32,
    /// Message.
    pub message: String,
}

/// A local reply a filter sent (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    /// Status code.
    pub status: u32,
    /// Response code details.
    pub details: String,
    /// Body.
    pub body: Vec<u8>,
    /// Headers.
    pub headers: Headers,
    /// gRPC status (-1: none).
    pub grpc_status: i32,
}

/// One change a filter made to a header map, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// `proxy_add_header_map_value`.
    Add(String, String),
    /// `proxy_replace_header_map_value`.
    Replace(String, String),
    /// `proxy_remove_header_map_value`.
    Remove(String),
    /// `proxy_set_header_map_pairs`.
    SetAll(usize),
}

/// An HTTP callout (`proxy_http_call`), waiting for the test to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// Token returned to the module.
    pub token: u32,
    /// Context that dispatched it (receives the response).
    pub context: u32,
    /// Upstream cluster.
    pub upstream: String,
    /// Headers (with `:method`, `:path`, `:authority`).
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// Trailers.
    pub trailers: Headers,
    /// Timeout, milliseconds.
    pub timeout_ms: u32,
}

/// A gRPC call or stream (`proxy_grpc_call` / `proxy_grpc_stream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// Token.
    pub token: u32,
    /// Context that dispatched it.
    pub context: u32,
    /// Upstream cluster.
    pub upstream: String,
    /// Service name.
    pub service: String,
    /// Method name.
    pub method: String,
    /// Initial metadata.
    pub metadata: Headers,
    /// Messages sent (the call's single message, or each stream message with its end flag).
    pub messages: Vec<(Vec<u8>, bool)>,
    /// A stream rather than a unary call.
    pub streaming: bool,
    /// Timeout, milliseconds (unary calls).
    pub timeout_ms: u32,
    /// `proxy_grpc_cancel` was called.
    pub cancelled: bool,
    /// `proxy_grpc_close` was called.
    pub closed: bool,
}

/// A foreign function call (`proxy_call_foreign_function`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignCall {
    /// Context.
    pub context: u32,
    /// Function name.
    pub name: String,
    /// Raw arguments.
    pub args: Vec<u8>,
}

/// Per-stream (HTTP or TCP) state: what the host presents to the module and what it did.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Root context this stream belongs to.
    pub root: u32,
    /// Request headers.
    pub request_headers: Headers,
    /// Request trailers.
    pub request_trailers: Headers,
    /// Response headers.
    pub response_headers: Headers,
    /// Response trailers.
    pub response_trailers: Headers,
    /// Request body (the part buffered so far).
    pub request_body: Vec<u8>,
    /// Response body.
    pub response_body: Vec<u8>,
    /// Downstream data (TCP).
    pub downstream_data: Vec<u8>,
    /// Upstream data (TCP).
    pub upstream_data: Vec<u8>,
    /// Properties readable with `proxy_get_property` (stream-level, over the VM's).
    pub properties: BTreeMap<PropertyPath, Vec<u8>>,
    /// Properties the module read, in order (for traces).
    pub properties_read: Vec<PropertyPath>,
    /// Local reply, if the module sent one.
    pub local_response: Option<LocalResponse>,
    /// `proxy_continue_stream` calls.
    pub continued: Vec<StreamType>,
    /// `proxy_close_stream` calls.
    pub closed: Vec<StreamType>,
    /// Filter state set with `set_envoy_filter_state`: `(path, value, life span)`.
    pub filter_state: Vec<(String, Vec<u8>, u32)>,
    /// `clear_route_cache` calls.
    pub route_cache_cleared: u32,
    /// Request header edits, in order.
    pub request_edits: Vec<HeaderEdit>,
    /// Response header edits, in order.
    pub response_edits: Vec<HeaderEdit>,
}

/// A metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Name as defined.
    pub name: String,
    /// Type.
    pub kind: MetricType,
    /// Counter / gauge value (last recorded value for histograms).
    pub value: i64,
    /// Every recorded histogram value.
    pub samples: Vec<u64>,
}

/// A shared queue.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    /// VM that registered it.
    pub vm_id: String,
    /// Name.
    pub name: String,
    /// Root context that registered it (notified on enqueue).
    pub root: u32,
    /// Items.
    pub items: VecDeque<Vec<u8>>,
}

/// What every VM of one runtime shares, as Envoy shares it across its workers.
#[derive(Debug, Default)]
pub struct SharedHost {
    pub(crate) metrics: Mutex<Vec<Metric>>,
    pub(crate) shared_data: Mutex<HashMap<String, (Vec<u8>, u32)>>,
    pub(crate) queues: Mutex<Vec<Queue>>,
    /// Queue-ready notifications not yet delivered: `(vm_id, root context, queue id)`.
    pub(crate) queue_ready: Mutex<Vec<(String, u32, u32)>>,
}

/// Locks, recovering from a poisoned mutex (a panicking test thread must not wedge the others).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SharedHost {
    /// A metric's value by name.
    pub fn metric(&self, name: &str) -> Option<Metric> {
        lock(&self.metrics).iter().find(|m| m.name == name).cloned()
    }

    /// Every metric.
    pub fn metrics(&self) -> Vec<Metric> {
        lock(&self.metrics).clone()
    }

    /// A shared-data value and its CAS.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.shared_data).get(key).cloned()
    }

    /// The items waiting in a queue.
    pub fn queue_items(&self, vm_id: &str, name: &str) -> Option<Vec<Vec<u8>>> {
        lock(&self.queues)
            .iter()
            .find(|q| q.vm_id == vm_id && q.name == name)
            .map(|q| q.items.iter().cloned().collect())
    }
}

/// The clock the module sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// A fixed time (nanoseconds since the epoch), moved only by the test.
    Fixed(u64),
}

/// A root context.
#[derive(Debug, Clone, Default)]
pub struct Root {
    /// Root id (`root_id` in Envoy's plugin config).
    pub root_id: String,
    /// Plugin configuration.
    pub configuration: Vec<u8>,
    /// Tick period, milliseconds (0: no ticks).
    pub tick_period_ms: u32,
    /// When the next tick is due (clock nanoseconds).
    pub next_tick_ns: Option<u64>,
    /// The module called `proxy_done`.
    pub done: bool,
}

/// The state of one VM's store.
pub struct HostState {
    pub(crate) wasi: wasmtime_wasi::p1::WasiP1Ctx,
    pub(crate) shared: Arc<SharedHost>,
    /// VM id.
    pub vm_id: String,
    /// VM configuration (`BufferType::VmConfiguration`).
    pub vm_config: Vec<u8>,
    /// Highest level the module should log at (`proxy_get_log_level`).
    pub log_level: LogLevel,
    /// Root contexts by id.
    pub roots: BTreeMap<u32, Root>,
    /// Streams by context id.
    pub streams: HashMap<u32, Stream>,
    /// Context whose callback runs (changed by `proxy_set_effective_context`).
    pub(crate) active: u32,
    /// VM-level properties (`plugin_name`, `node.*`, …), under stream properties.
    pub properties: BTreeMap<PropertyPath, Vec<u8>>,
    /// Logs, in order.
    pub logs: Vec<LogRecord>,
    /// Echo logs to stderr as they come.
    pub echo_logs: bool,
    /// HTTP callouts.
    pub http_calls: Vec<HttpCall>,
    /// gRPC calls and streams.
    pub grpc_calls: Vec<GrpcCall>,
    pub(crate) next_token: u32,
    /// The callout response being delivered: headers, body, trailers.
    pub(crate) callout: Option<(Headers, Vec<u8>, Headers)>,
    /// gRPC status being delivered: code and message.
    pub(crate) grpc_status: (u32, Vec<u8>),
    /// Foreign function calls.
    pub foreign_calls: Vec<ForeignCall>,
    /// Data for `proxy_on_foreign_function` (`BufferType::CallData`).
    pub(crate) call_data: Vec<u8>,
    /// Clock.
    pub clock: Clock,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("vm_id", &self.vm_id)
            .field("roots", &self.roots)
            .field("streams", &self.streams.len())
            .field("logs", &self.logs.len())
            .finish_non_exhaustive()
    }
}

impl HostState {
    pub(crate) fn new(
        wasi: wasmtime_wasi::p1::WasiP1Ctx,
        shared: Arc<SharedHost>,
        vm_id: String,
        vm_config: Vec<u8>,
    ) -> Self {
        HostState {
            wasi,
            shared,
            vm_id,
            vm_config,
            log_level: LogLevel::Trace,
            roots: BTreeMap::new(),
            streams: HashMap::new(),
            active: 0,
            properties: BTreeMap::new(),
            logs: Vec::new(),
            echo_logs: false,
            http_calls: Vec::new(),
            grpc_calls: Vec::new(),
            next_token: 1,
            callout: None,
            grpc_status: (0, Vec::new()),
            foreign_calls: Vec::new(),
            call_data: Vec::new(),
            clock: Clock::System,
        }
    }

    /// Current time, nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        match self.clock {
            Clock::Fixed(t) => t,
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }

    /// The root context a context belongs to (itself for a root).
    pub(crate) fn root_of(&self, context: u32) -> Option<u32> {
        if self.roots.contains_key(&context) {
            Some(context)
        } else {
            self.streams.get(&context).map(|s| s.root)
        }
    }

    /// Reads a property: the active stream's, then the VM's.
    pub(crate) fn property(&mut self, path: &[String]) -> Option<Vec<u8>> {
        let active = self.active;
        if let Some(stream) = self.streams.get_mut(&active) {
            stream.properties_read.push(path.to_vec());
            if let Some(v) = stream.properties.get(path) {
                return Some(v.clone());
            }
        }
        if let Some(v) = self.properties.get(path) {
            return Some(v.clone());
        }
        // Properties Envoy derives from the plugin.
        let root = self.root_of(active)?;
        match path
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["plugin_root_id"] => Some(self.roots.get(&root)?.root_id.clone().into_bytes()),
            ["plugin_vm_id"] => Some(self.vm_id.clone().into_bytes()),
            _ => None,
        }
    }
}
