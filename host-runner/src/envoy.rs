//! What Envoy does around the filters, emulated: the HTTP filter chain (decode in order, encode in
//! reverse, local replies through every encoder, `Pause`), failure policies after a trap, VM
//! sharing by `vm_id`, the path normalization Portico's listeners ask for, and the router behind
//! the chain (`x-envoy-original-dst-host` → that endpoint, `x-portico-cluster` → that cluster,
//! else the listener's 404).
//!
//! # Fidelity
//! Matches Envoy 1.40 as measured on this machine (see `ENVOY-NOTES.md`): a trap poisons every
//! plugin of its VM; `FAIL_CLOSED` answers 503 from then on; `FAIL_OPEN` answers 503 to the
//! trapping request and skips the filter afterwards; `FAIL_RELOAD` answers 503 and rebuilds the VM
//! (Envoy waits a backoff of about a second first; here the next request gets the new VM).
//! Path normalization covers merged slashes and dot segments, not percent-encoding.

use std::collections::BTreeMap;

use crate::abi::Action;
use crate::state::Headers;
use crate::vm::{HostError, Module, Runtime, Vm};

/// Envoy's `failure_policy` for a wasm filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// 503 for every request once the VM has trapped.
    #[default]
    FailClosed,
    /// 503 for the trapping request, then the filter is skipped.
    FailOpen,
    /// 503 for the trapping request, then a new VM.
    FailReload,
}

/// One HTTP filter of the chain.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// Filter name (for traces).
    pub name: String,
    /// Compiled module.
    pub module: Module,
    /// Module identity: filters with the same `vm_id` and code share one VM.
    pub code_id: String,
    /// VM id.
    pub vm_id: String,
    /// Root id.
    pub root_id: String,
    /// Plugin configuration.
    pub configuration: Vec<u8>,
    /// Failure policy.
    pub failure_policy: FailurePolicy,
}

struct Slot {
    vm_id: String,
    code_id: String,
    module: Module,
    vm: Vm,
}

struct Filter {
    spec: FilterSpec,
    slot: usize,
    root: u32,
    skipped: bool,
    /// A network (L4) filter rather than an HTTP one.
    network: bool,
}

/// What the network filters did with a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connected {
    /// Every network filter let the connection through; the filter state they set (e.g.
    /// `envoy.tcp_proxy.cluster`) and their stream contexts (for [`Worker::disconnect`]).
    Open {
        /// `(key, value)` pairs set with `set_envoy_filter_state`, in order.
        filter_state: Vec<(String, Vec<u8>)>,
        /// Per network filter, its context.
        contexts: Vec<Option<u32>>,
    },
    /// A filter closed the connection.
    Closed(String),
    /// A filter paused and did not resume.
    Paused(String),
}

/// A response, as the client sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
}

/// What happened to a request in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Every filter continued: these are the request headers the router sees.
    Forward(Headers),
    /// A filter (or a failure policy) answered.
    Reply {
        /// Which filter (`None`: the host, e.g. a failure policy).
        filter: Option<String>,
        /// The answer before encoder filters ran.
        response: Response,
    },
    /// A filter paused and neither answered nor resumed.
    Paused(String),
    /// A filter reset the stream (`proxy_close_stream` on the request): no response; on
    /// HTTP/1.1 Envoy closes the connection.
    Reset(String),
}

/// A filter that would not start, with what its module logged (its reason, usually).
#[derive(Debug, thiserror::Error)]
#[error("filter {filter}: {error}{}", logs.iter().map(|l| format!("; {}", l.message)).collect::<String>())]
pub struct StartError {
    /// Filter name.
    pub filter: String,
    /// What failed.
    pub error: HostError,
    /// The module's logs up to the failure.
    pub logs: Vec<crate::state::LogRecord>,
}

/// A trace line per step, for failure reports.
pub type Trace = Vec<String>;

/// How the host answers the modules' callouts, by cluster (see [`Worker::answers`]). A cluster
/// with no answer leaves its callouts pending, for the caller ([`Worker::take_http_calls`]).
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// HTTP callouts (`proxy_http_call`): the cluster's response. Status 0 stands for a failed
    /// callout (reset, timeout): Envoy then calls back with no headers and no body.
    pub http: BTreeMap<String, Response>,
    /// Unary gRPC calls (`proxy_grpc_call`): the status and the response message. As in Envoy,
    /// status 0 without a message is a failure, INTERNAL (13): a unary call that succeeds
    /// carries exactly one message.
    pub grpc: BTreeMap<String, (u32, Option<Vec<u8>>)>,
}

/// An Envoy worker with one HTTP filter chain.
pub struct Worker {
    runtime: Runtime,
    slots: Vec<Slot>,
    filters: Vec<Filter>,
    /// Connection-level properties (`source.address`, `destination.address`, …) every stream
    /// sees, on top of the `request.*` ones derived from its headers.
    pub connection: BTreeMap<Vec<String>, Vec<u8>>,
    /// The request body as the last filter of the last [`Worker::decode`] left it (what the
    /// router sends upstream).
    pub forwarded_body: Vec<u8>,
    /// Callout answers: after each filter callback, the callouts it made to these clusters are
    /// answered at once (and those their handlers make, up to [`CALLOUT_ROUNDS`] deep).
    pub answers: Answers,
}

/// How deep callouts made from callout handlers are answered before the host gives up.
pub const CALLOUT_ROUNDS: usize = 16;

/// The `request.*` properties Envoy derives from the request headers.
pub fn request_properties(headers: &Headers) -> Vec<(Vec<String>, Vec<u8>)> {
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut out = Vec::new();
    let mut put = |name: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push((vec!["request".to_owned(), name.to_owned()], v.into_bytes()));
        }
    };
    let path = get(":path");
    put(
        "url_path",
        path.as_deref()
            .map(|p| p.split('?').next().unwrap_or("").to_owned()),
    );
    put(
        "query",
        path.as_deref()
            .map(|p| p.split_once('?').map_or("", |(_, q)| q).to_owned()),
    );
    put("path", path);
    put("host", get(":authority"));
    put("method", get(":method"));
    put("scheme", get(":scheme"));
    put("id", get("x-request-id"));
    put("protocol", Some("HTTP/1.1".to_owned()));
    put("referer", get("referer"));
    put("useragent", get("user-agent"));
    out
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("filters", &self.filters.len())
            .finish_non_exhaustive()
    }
}

fn local_reply(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// The most virtual time a paused stream waits for its VM's timers.
const TIMER_LIMIT_MS: u64 = 600_000;

/// Envoy keeps a paused stream open and the VM's timers running: moves the VM's clock from tick
/// to tick (virtual time, bounded) until the stream resumes or is answered.
fn run_timers(vm: &mut Vm, ctx: u32, name: &str, trace: &mut Trace) {
    let baseline = resumes(vm, ctx);
    let mut waited = 0;
    loop {
        let Some(stream) = vm.stream(ctx) else { return };
        if stream.local_response.is_some() || resumes(vm, ctx) > baseline {
            if waited > 0 {
                trace.push(format!("{name}: released after {waited} ms"));
            }
            return;
        }
        let Some(next) = vm.next_tick_in_ms() else {
            return;
        };
        let step = next.max(1);
        if waited + step > TIMER_LIMIT_MS {
            return;
        }
        if let Err(e) = vm.advance_ms(step) {
            trace.push(format!("{name}: tick failed: {e}"));
            return;
        }
        waited += step;
    }
}

/// How often the stream's request was resumed (`proxy_continue_stream(HttpRequest)`).
fn resumes(vm: &Vm, ctx: u32) -> usize {
    vm.stream(ctx).map_or(0, |s| {
        s.continued
            .iter()
            .filter(|t| **t == crate::abi::StreamType::HttpRequest)
            .count()
    })
}

/// Envoy's gRPC status for an HTTP status, for local replies to gRPC requests
/// (`Grpc::Utility::httpToGrpcStatus`).
fn http_to_grpc_status(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

/// Envoy's percent-encoding of `grpc-message`: bytes outside printable ASCII, and `%`.
fn grpc_message(text: &[u8]) -> String {
    let mut out = String::new();
    for &b in text {
        if (b' '..=b'~').contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The response a local reply (`proxy_send_local_response`) becomes, as Envoy's
/// `sendLocalReply` builds it: the filter's headers, then `content-length` and `content-type:
/// text/plain` when there is a body. To a gRPC request (`content-type: application/grpc…`) it is a
/// trailers-only gRPC answer: status 200, `grpc-status` (the filter's, else mapped from the HTTP
/// status) and the body as `grpc-message`.
pub fn local_reply_response(reply: &crate::state::LocalResponse, request: &Headers) -> Response {
    let grpc_request = request
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("application/grpc"));
    let status = reply.status as u16;
    if grpc_request {
        let code = u32::try_from(reply.grpc_status).unwrap_or_else(|_| http_to_grpc_status(status));
        let mut headers = vec![
            ("content-type".to_owned(), "application/grpc".to_owned()),
            ("grpc-status".to_owned(), code.to_string()),
        ];
        if !reply.body.is_empty() {
            headers.push(("grpc-message".to_owned(), grpc_message(&reply.body)));
        }
        headers.extend(
            reply
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
        return Response {
            status: 200,
            headers,
            body: Vec::new(),
        };
    }
    let mut headers: Headers = reply
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    if status == 204 {
        // Measured on Envoy 1.40: a 204 local reply reaches the client with neither
        // `content-type` nor `content-length` (whatever the filter set), and no body.
        headers.retain(|(k, _)| k != "content-type" && k != "content-length");
        return Response {
            status,
            headers,
            body: Vec::new(),
        };
    }
    if !reply.body.is_empty() {
        headers.retain(|(k, _)| k != "content-length");
        headers.push(("content-length".into(), reply.body.len().to_string()));
        if !headers.iter().any(|(k, _)| k == "content-type") {
            headers.push(("content-type".into(), "text/plain".into()));
        }
    }
    Response {
        status,
        headers,
        body: reply.body.clone(),
    }
}

impl Worker {
    /// Answers the pending callouts of VM `slot` whose cluster has an answer in
    /// [`Worker::answers`], then those the answers' handlers make, [`CALLOUT_ROUNDS`] deep.
    fn answer_callouts(&mut self, slot: usize, trace: &mut Trace) -> Result<(), HostError> {
        for _ in 0..CALLOUT_ROUNDS {
            let vm = &mut self.slots[slot].vm;
            let http: Vec<crate::state::HttpCall> = vm
                .state()
                .http_calls
                .iter()
                .filter(|c| self.answers.http.contains_key(&c.upstream))
                .cloned()
                .collect();
            let grpc: Vec<crate::state::GrpcCall> = vm
                .state()
                .grpc_calls
                .iter()
                .filter(|c| !c.streaming && self.answers.grpc.contains_key(&c.upstream))
                .cloned()
                .collect();
            if http.is_empty() && grpc.is_empty() {
                return Ok(());
            }
            for call in http {
                let answer = &self.answers.http[&call.upstream];
                trace.push(format!(
                    "callout {} to {} {} answered {}",
                    call.token,
                    call.upstream,
                    call.headers
                        .iter()
                        .find(|(k, _)| k == ":path")
                        .map_or("", |(_, v)| v.as_str()),
                    answer.status
                ));
                let (headers, body) = if answer.status == 0 {
                    (Vec::new(), Vec::new())
                } else {
                    let mut h = vec![(":status".to_owned(), answer.status.to_string())];
                    h.extend(answer.headers.iter().cloned());
                    if !answer.body.is_empty() && !h.iter().any(|(k, _)| k == "content-length") {
                        h.push(("content-length".into(), answer.body.len().to_string()));
                    }
                    (h, answer.body.clone())
                };
                let r = vm.respond_http_call(call.token, headers, &body, Vec::new());
                vm.state_mut().http_calls.retain(|c| c.token != call.token);
                r?;
            }
            for call in grpc {
                let (status, message) = &self.answers.grpc[&call.upstream];
                let answer = match (status, message) {
                    (0, Some(m)) => Ok(m.as_slice()),
                    (0, None) => Err((13, "no response message")),
                    (s, _) => Err((*s, "")),
                };
                trace.push(format!(
                    "gRPC call {} to {} {}/{} answered {}",
                    call.token,
                    call.upstream,
                    call.service,
                    call.method,
                    match answer {
                        Ok(m) => format!("status 0 with a {}-byte message", m.len()),
                        Err((s, _)) => format!("status {s}"),
                    }
                ));
                let r = vm.respond_grpc_call(call.token, answer);
                vm.state_mut().grpc_calls.retain(|c| c.token != call.token);
                r?;
            }
        }
        trace.push(format!(
            "callouts still made after {CALLOUT_ROUNDS} rounds of answers: left pending"
        ));
        Ok(())
    }

    /// Takes the HTTP callouts the chain's filters made so far, with the index of the VM that
    /// made each (to answer it with [`Worker::respond_http_call`]).
    pub fn take_http_calls(&mut self) -> Vec<(usize, crate::state::HttpCall)> {
        let mut out = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            out.extend(
                std::mem::take(&mut slot.vm.state_mut().http_calls)
                    .into_iter()
                    .map(|c| (i, c)),
            );
        }
        out
    }

    /// Answers a callout taken with [`Worker::take_http_calls`].
    ///
    /// # Errors
    /// Unknown token, or a trap.
    pub fn respond_http_call(
        &mut self,
        vm: usize,
        call: &crate::state::HttpCall,
        response: &Response,
    ) -> Result<(), HostError> {
        let vm = &mut self.slots[vm].vm;
        // The token must still be known to the VM to be answered.
        vm.state_mut().http_calls.push(call.clone());
        let mut headers = vec![(":status".to_owned(), response.status.to_string())];
        headers.extend(response.headers.iter().cloned());
        let r = vm.respond_http_call(call.token, headers, &response.body, Vec::new());
        vm.state_mut().http_calls.retain(|c| c.token != call.token);
        r
    }

    /// Builds the chain: one VM per distinct (`vm_id`, code), each plugin started in it.
    ///
    /// # Errors
    /// A VM that fails to start or a plugin that refuses its configuration (Envoy refuses such
    /// a config too).
    pub fn new(runtime: Runtime, specs: Vec<FilterSpec>) -> Result<Worker, StartError> {
        Worker::with_chain(runtime, Vec::new(), specs)
    }

    /// Builds a chain of network filters (run on each connection, in order) and HTTP filters
    /// (run on each request, in order), as an Envoy listener's filter chain.
    ///
    /// # Errors
    /// As [`Worker::new`].
    pub fn with_chain(
        runtime: Runtime,
        network: Vec<FilterSpec>,
        specs: Vec<FilterSpec>,
    ) -> Result<Worker, StartError> {
        let kinds = network
            .iter()
            .map(|_| true)
            .chain(specs.iter().map(|_| false))
            .collect::<Vec<_>>();
        let specs: Vec<FilterSpec> = network.into_iter().chain(specs).collect();
        let mut worker = Worker {
            runtime,
            slots: Vec::new(),
            filters: Vec::new(),
            connection: BTreeMap::new(),
            forwarded_body: Vec::new(),
            answers: Answers::default(),
        };
        for (spec, network) in specs.into_iter().zip(kinds) {
            let slot = match worker
                .slots
                .iter()
                .position(|s| s.vm_id == spec.vm_id && s.code_id == spec.code_id)
            {
                Some(i) => i,
                None => {
                    let vm = worker
                        .runtime
                        .start_vm(&spec.module, &spec.vm_id, b"")
                        .map_err(|error| StartError {
                            filter: spec.name.clone(),
                            error,
                            logs: Vec::new(),
                        })?;
                    worker.slots.push(Slot {
                        vm_id: spec.vm_id.clone(),
                        code_id: spec.code_id.clone(),
                        module: spec.module.clone(),
                        vm,
                    });
                    worker.slots.len() - 1
                }
            };
            let vm = &mut worker.slots[slot].vm;
            let root = vm
                .start_plugin(&spec.root_id, &spec.configuration)
                .map_err(|error| StartError {
                    filter: spec.name.clone(),
                    error,
                    logs: vm.state().logs.clone(),
                })?;
            worker.filters.push(Filter {
                spec,
                network,
                slot,
                root,
                skipped: false,
            });
        }
        Ok(worker)
    }

    /// The runtime (metrics, shared data).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Moves the (virtual) clock of filter `f`'s VM `ms` forward, running the ticks that fall
    /// due, as time passing in Envoy would; returns how many ran.
    ///
    /// # Errors
    /// A trap in a tick.
    pub fn advance_ms(&mut self, f: usize, ms: u64) -> Result<usize, HostError> {
        let slot = self.filters[f].slot;
        self.slots[slot].vm.advance_ms(ms).map(|t| t.len())
    }

    /// The [`ORIGINAL_DST_STATE`] filter state of a decoded request as Envoy's router sees it
    /// when it picks the route: the last value a filter set, provided a filter then made Envoy
    /// pick the route again (it cleared the route cache, or changed a request header: Envoy
    /// 1.40 clears it on every header change a wasm filter makes). `contexts` are
    /// [`Worker::decode`]'s.
    pub fn steering(&self, contexts: &[Option<u32>]) -> Option<String> {
        let mut value = None;
        let mut repicked = false;
        for (f, ctx) in contexts.iter().enumerate() {
            let Some(stream) = ctx.and_then(|c| self.vm(f).stream(c)) else {
                continue;
            };
            if let Some((_, v, _)) = stream
                .filter_state
                .iter()
                .rev()
                .find(|(k, _, _)| k == ORIGINAL_DST_STATE)
            {
                value = Some(String::from_utf8_lossy(v).into_owned());
                repicked = false;
            }
            if stream.route_cache_cleared > 0 || !stream.request_edits.is_empty() {
                repicked = true;
            }
        }
        value.filter(|_| repicked)
    }

    /// Gives filter `f` a new configuration, as an ECDS update does: `proxy_on_configure` on its
    /// root context. A rejection leaves the filter on what it had (Envoy keeps the last good
    /// configuration); the error says why.
    ///
    /// # Errors
    /// A trap, or [`HostError::Rejected`].
    pub fn reconfigure(&mut self, f: usize, configuration: &[u8]) -> Result<(), HostError> {
        let (slot, root) = (self.filters[f].slot, self.filters[f].root);
        self.slots[slot].vm.configure(root, configuration)?;
        self.filters[f].spec.configuration = configuration.to_vec();
        Ok(())
    }

    /// The VM of filter `i`.
    pub fn vm(&self, i: usize) -> &Vm {
        &self.slots[self.filters[i].slot].vm
    }

    /// Under `FAIL_RELOAD`, rebuilds filter `f`'s VM if a trap poisoned it.
    fn reload_if_poisoned(&mut self, f: usize, trace: &mut Trace) {
        let filter = &self.filters[f];
        if self.slots[filter.slot].vm.poisoned().is_none()
            || filter.spec.failure_policy != FailurePolicy::FailReload
        {
            return;
        }
        let name = filter.spec.name.clone();
        trace.push(format!("{name}: VM reloaded after a trap"));
        if let Err(e) = self.reload(self.filters[f].slot) {
            trace.push(format!("{name}: reload failed: {e}"));
        }
    }

    /// Rebuilds a poisoned VM and restarts its plugins (`FAIL_RELOAD`).
    fn reload(&mut self, slot: usize) -> Result<(), HostError> {
        let s = &self.slots[slot];
        let mut vm = self.runtime.start_vm(&s.module, &s.vm_id, b"")?;
        for f in self.filters.iter_mut().filter(|f| f.slot == slot) {
            f.root = vm.start_plugin(&f.spec.root_id, &f.spec.configuration)?;
        }
        self.slots[slot].vm = vm;
        Ok(())
    }

    /// Runs a request through the chain and the encoder side of whatever answers locally.
    /// Returns the decode outcome, the contexts (to encode the upstream's response later) and a
    /// trace.
    pub fn decode(
        &mut self,
        headers: Headers,
        body: &[u8],
        trace: &mut Trace,
    ) -> (Decoded, Vec<Option<u32>>) {
        self.forwarded_body.clear();
        // Envoy creates every filter of the chain for the stream up front.
        let mut contexts = Vec::with_capacity(self.filters.len());
        for f in 0..self.filters.len() {
            let filter = &self.filters[f];
            let slot = filter.slot;
            if filter.skipped || filter.network {
                contexts.push(None);
                continue;
            }
            self.reload_if_poisoned(f, trace);
            let root = self.filters[f].root;
            let mut properties = self.connection.clone();
            properties.extend(request_properties(&headers));
            match self.slots[slot]
                .vm
                .create_http_context_with(root, properties)
            {
                Ok(ctx) => contexts.push(Some(ctx)),
                Err(e) => return (self.failed(f, &e, trace), contexts),
            }
        }
        let mut headers = headers;
        let request = headers.clone();
        let mut body = body.to_vec();
        for f in 0..self.filters.len() {
            let Some(ctx) = contexts[f] else { continue };
            let slot = self.filters[f].slot;
            let name = self.filters[f].spec.name.clone();
            let vm = &mut self.slots[slot].vm;
            let eos = body.is_empty();
            let before = resumes(vm, ctx);
            let action = match vm.on_request_headers(ctx, headers.clone(), eos) {
                Ok(a) => a,
                Err(e) => return (self.failed(f, &e, trace), contexts),
            };
            if let Err(e) = self.answer_callouts(slot, trace) {
                return (self.failed(f, &e, trace), contexts);
            }
            let vm = &mut self.slots[slot].vm;
            if action == Action::Pause {
                run_timers(vm, ctx, &name, trace);
            }
            // proxy-wasm in Envoy turns a Pause on the headers into StopAllIterationAndWatermark:
            // the body waits, buffered, until the filter resumes the request, and then goes to
            // its body callback, whose answer decides.
            let replied = |vm: &Vm| vm.stream(ctx).is_some_and(|s| s.local_response.is_some());
            let mut going = action == Action::Continue || resumes(vm, ctx) > before;
            if !eos && going && !replied(vm) {
                let before = resumes(vm, ctx);
                let action = match vm.on_request_body(ctx, &body, true) {
                    Ok(a) => a,
                    Err(e) => return (self.failed(f, &e, trace), contexts),
                };
                if let Err(e) = self.answer_callouts(slot, trace) {
                    return (self.failed(f, &e, trace), contexts);
                }
                let vm = &mut self.slots[slot].vm;
                if action == Action::Pause {
                    run_timers(vm, ctx, &name, trace);
                }
                going = action == Action::Continue || resumes(vm, ctx) > before;
            }
            let vm = &mut self.slots[slot].vm;
            let Some(stream) = vm.stream(ctx) else {
                continue;
            };
            for edit in &stream.request_edits {
                trace.push(format!("{name}: request header {edit:?}"));
            }
            if stream.closed.contains(&crate::abi::StreamType::HttpRequest) {
                trace.push(format!("{name}: reset the stream"));
                return (Decoded::Reset(name), contexts);
            }
            if let Some(reply) = &stream.local_response {
                trace.push(format!("{name}: local reply {}", reply.status));
                let response = local_reply_response(reply, &request);
                return (
                    Decoded::Reply {
                        filter: Some(name),
                        response,
                    },
                    contexts,
                );
            }
            headers = stream.request_headers.clone();
            if !eos {
                body = stream.request_body.clone();
            }
            if !going {
                trace.push(format!("{name}: paused"));
                return (Decoded::Paused(name), contexts);
            }
        }
        self.forwarded_body = body;
        (Decoded::Forward(headers), contexts)
    }

    /// Runs the network filters on a new connection whose first bytes are `data`: each gets
    /// `proxy_on_new_connection` and `proxy_on_downstream_data` in order, until one closes or
    /// pauses. A trap closes the connection (and applies the filter's failure policy).
    pub fn connect(&mut self, data: &[u8], trace: &mut Trace) -> Connected {
        let mut contexts = vec![None; self.filters.len()];
        let mut filter_state = Vec::new();
        let network: Vec<usize> = (0..self.filters.len())
            .filter(|&f| self.filters[f].network && !self.filters[f].skipped)
            .collect();
        for f in network {
            let slot = self.filters[f].slot;
            self.reload_if_poisoned(f, trace);
            let name = self.filters[f].spec.name.clone();
            let root = self.filters[f].root;
            let vm = &mut self.slots[slot].vm;
            // The connection's properties are there from `proxy_on_new_connection` on.
            let result = vm
                .create_stream_context_with(root, self.connection.clone())
                .and_then(|(ctx, _)| vm.on_downstream_data(ctx, data, false).map(|a| (ctx, a)));
            let (ctx, action) = match result {
                Ok(x) => x,
                Err(e) => {
                    let _ = self.failed(f, &e, trace);
                    return Connected::Closed(name);
                }
            };
            contexts[f] = Some(ctx);
            let Some(stream) = vm.stream(ctx) else {
                continue;
            };
            filter_state.extend(
                stream
                    .filter_state
                    .iter()
                    .map(|(k, v, _)| (k.clone(), v.clone())),
            );
            if stream.closed.contains(&crate::abi::StreamType::Downstream) {
                trace.push(format!("{name}: closed the connection"));
                return Connected::Closed(name);
            }
            if action == Action::Pause
                && !stream
                    .continued
                    .contains(&crate::abi::StreamType::Downstream)
            {
                trace.push(format!("{name}: paused the connection"));
                return Connected::Paused(name);
            }
        }
        Connected::Open {
            filter_state,
            contexts,
        }
    }

    /// Closes a connection the network filters let through: `proxy_on_downstream_connection_close`,
    /// then the end of each stream.
    pub fn disconnect(&mut self, contexts: &[Option<u32>]) {
        for (f, ctx) in contexts.iter().enumerate() {
            if let Some(ctx) = ctx {
                let vm = &mut self.slots[self.filters[f].slot].vm;
                let _ = vm.on_downstream_close(*ctx, crate::abi::PeerType::Remote);
                let _ = vm.finish(*ctx);
            }
        }
    }

    fn failed(&mut self, f: usize, e: &HostError, trace: &mut Trace) -> Decoded {
        let filter = &mut self.filters[f];
        trace.push(format!("{}: {e}", filter.spec.name));
        if filter.spec.failure_policy == FailurePolicy::FailOpen
            && matches!(e, HostError::Trap { .. } | HostError::Poisoned { .. })
        {
            // This request fails; later ones skip the filter. Every filter of the VM is affected.
            let slot = filter.slot;
            for other in self.filters.iter_mut().filter(|o| o.slot == slot) {
                other.skipped = true;
            }
        }
        Decoded::Reply {
            filter: None,
            response: local_reply(503, ""),
        }
    }

    /// Runs the encoder side (reverse order) over a response and finishes every stream
    /// (`on_log`, `on_done`, `on_delete`). Returns the response as the client sees it.
    pub fn encode(
        &mut self,
        mut response: Response,
        contexts: &[Option<u32>],
        trace: &mut Trace,
    ) -> Response {
        for f in (0..contexts.len()).rev() {
            let Some(ctx) = contexts[f] else { continue };
            let slot = self.filters[f].slot;
            let name = self.filters[f].spec.name.clone();
            let vm = &mut self.slots[slot].vm;
            let mut headers = vec![(":status".to_owned(), response.status.to_string())];
            headers.extend(response.headers.iter().cloned());
            // Headers, then the whole body in one chunk with end of stream (an encoder's Pause
            // is not held: the response is complete).
            let eos = response.body.is_empty();
            let result = vm
                .on_response_headers(ctx, headers, eos)
                .and_then(|_| {
                    if eos {
                        Ok(Action::Continue)
                    } else {
                        vm.on_response_body(ctx, &response.body, true)
                    }
                })
                .and_then(|_| self.answer_callouts(slot, trace));
            let vm = &mut self.slots[slot].vm;
            match result {
                Ok(()) => {
                    if let Some(stream) = vm.stream(ctx) {
                        for edit in &stream.response_edits {
                            trace.push(format!("{name}: response header {edit:?}"));
                        }
                        let mut out = stream.response_headers.clone();
                        if let Some(i) = out.iter().position(|(k, _)| k == ":status") {
                            let (_, s) = out.remove(i);
                            response.status = s.parse().unwrap_or(response.status);
                        }
                        response.headers = out;
                        if !eos {
                            response.body = stream.response_body.clone();
                        }
                    }
                }
                Err(e) => {
                    trace.push(format!("{name}: {e}"));
                    response = local_reply(503, "");
                }
            }
        }
        for (f, ctx) in contexts.iter().enumerate() {
            if let Some(ctx) = ctx {
                let slot = self.filters[f].slot;
                let _ = self.slots[slot].vm.finish(*ctx);
            }
        }
        response
    }
}

mod router;
pub use router::{
    connect_failure, normalize_path, Routed, Upstreams, ORIGINAL_DST_HEADER, ORIGINAL_DST_STATE,
};
