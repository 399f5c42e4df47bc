//! Runtime, compiled modules and VMs, and every export driven in Envoy's order.
//!
//! Longer than most files on purpose: it is the one place that calls the module's exports, each
//! a few lines around the same call helper and context bookkeeping; split up, the order Envoy
//! drives them in would no longer read top to bottom.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::{Engine, Instance, Linker, Store, TypedFunc};

use crate::abi::{AbiVersion, Action, LogLevel, PeerType};
use crate::state::{lock, Clock, Headers, HostState, PropertyPath, Root, SharedHost, Stream};

/// Why a module or a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The bytes are not a valid wasm module.
    #[error("cannot compile module: {0}")]
    Compile(String),
    /// The module does not declare a proxy-wasm ABI version this host speaks.
    #[error("module declares no supported proxy-wasm ABI (exports proxy_abi_version_0_2_1 or _0_2_0); found: {0}")]
    Abi(String),
    /// A required export is missing.
    #[error("module does not export {0}, which proxy-wasm requires")]
    MissingExport(&'static str),
    /// An import the host does not provide.
    #[error("cannot instantiate module: {0}")]
    Instantiate(String),
    /// A callback trapped (a panic in the module); the VM is now poisoned.
    #[error("{callback} trapped: {message}")]
    Trap {
        /// Export that trapped.
        callback: &'static str,
        /// wasmtime's message.
        message: String,
    },
    /// A previous trap poisoned this VM: every plugin sharing it fails, as in Envoy.
    #[error("VM {vm_id} is poisoned by an earlier trap: {reason}")]
    Poisoned {
        /// VM id.
        vm_id: String,
        /// The original trap.
        reason: String,
    },
    /// `on_vm_start` or `on_configure` returned false.
    #[error("{callback} returned false for root id {root_id:?}")]
    Rejected {
        /// `proxy_on_vm_start` or `proxy_on_configure`.
        callback: &'static str,
        /// Root id.
        root_id: String,
    },
    /// The context id does not exist.
    #[error("no context {0}")]
    NoContext(u32),
}

/// The engine and everything its VMs share (metrics, shared data, queues): one "Envoy process".
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    shared: Arc<SharedHost>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// A compiled module and the ABI version it declares.
#[derive(Debug, Clone)]
pub struct Module {
    module: wasmtime::Module,
    /// ABI version.
    pub abi: AbiVersion,
}

impl Runtime {
    /// A runtime with a fresh engine and empty shared state.
    ///
    /// # Errors
    /// When the engine or linker cannot be built.
    /// With `HOST_RUNNER_PERF_MAP` set, the engine writes `/tmp/perf-PID.map` (each compiled
    /// function's address range and name, from the module's name section) for `perf` or
    /// callgrind to name the module's functions.
    pub fn new() -> Result<Runtime, HostError> {
        let mut config = wasmtime::Config::new();
        if std::env::var_os("HOST_RUNNER_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| HostError::Instantiate(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(|e| HostError::Instantiate(e.to_string()))?;
        crate::imports::add_to_linker(&mut linker)
            .map_err(|e| HostError::Instantiate(e.to_string()))?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            shared: Arc::new(SharedHost::default()),
        })
    }

    /// Process-wide state: metrics, shared data, queues.
    pub fn shared(&self) -> &SharedHost {
        &self.shared
    }

    /// Compiles a module and checks it is a proxy-wasm module.
    ///
    /// # Errors
    /// [`HostError::Compile`], [`HostError::Abi`] or [`HostError::MissingExport`].
    pub fn compile(&self, bytes: &[u8]) -> Result<Module, HostError> {
        // Binary modules start with the magic; anything else is tried as the text format, so
        // bytes that are neither get a plain answer instead of the text parser's.
        if !bytes.starts_with(b"\0asm") && std::str::from_utf8(bytes).is_err() {
            return Err(HostError::Compile(
                "not a wasm module: no \\0asm magic, and not the wasm text format (not UTF-8)"
                    .into(),
            ));
        }
        // wasmtime's first line says what is wrong; the rest is a hex dump.
        let module = wasmtime::Module::new(&self.engine, bytes).map_err(|e| {
            HostError::Compile(
                format!("{e:#}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(" - expected=[")
                    .to_owned(),
            )
        })?;
        let exports: Vec<String> = module.exports().map(|e| e.name().to_owned()).collect();
        let has = |n: &str| exports.iter().any(|e| e == n);
        let abi = if has("proxy_abi_version_0_2_1") {
            AbiVersion::V0_2_1
        } else if has("proxy_abi_version_0_2_0") {
            AbiVersion::V0_2_0
        } else {
            let found: Vec<&String> = exports
                .iter()
                .filter(|e| e.starts_with("proxy_abi_version"))
                .collect();
            return Err(HostError::Abi(if found.is_empty() {
                "nothing".into()
            } else {
                format!("{found:?}")
            }));
        };
        if !has("memory") {
            return Err(HostError::MissingExport("memory"));
        }
        if !has("proxy_on_context_create") {
            return Err(HostError::MissingExport("proxy_on_context_create"));
        }
        if !has("proxy_on_memory_allocate") && !has("malloc") {
            return Err(HostError::MissingExport("proxy_on_memory_allocate"));
        }
        Ok(Module { module, abi })
    }

    /// Starts a VM: instantiates the module with WASI and runs its start function
    /// (`_initialize` or `_start`).
    ///
    /// # Errors
    /// [`HostError::Instantiate`] (an import this host lacks) or a trap in the start function.
    pub fn start_vm(
        &self,
        module: &Module,
        vm_id: &str,
        vm_config: &[u8],
    ) -> Result<Vm, HostError> {
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .inherit_stderr()
            .inherit_stdout()
            .build_p1();
        let state = HostState::new(
            wasi,
            self.shared.clone(),
            vm_id.to_owned(),
            vm_config.to_vec(),
        );
        let mut store = Store::new(&self.engine, state);
        let instance = self
            .linker
            .instantiate(&mut store, &module.module)
            .map_err(|e| HostError::Instantiate(format!("{e:#}")))?;
        let mut vm = Vm {
            store,
            instance,
            abi: module.abi,
            poisoned: None,
            next_context: 1,
            vm_started: false,
        };
        for start in ["_initialize", "_start"] {
            if let Ok(f) = vm.instance.get_typed_func::<(), ()>(&mut vm.store, start) {
                vm.guard("_start", |store| f.call(store, ()))?;
                break;
            }
        }
        Ok(vm)
    }
}

/// One VM: a module instance and its host state. Plugins (root contexts) live inside it.
pub struct Vm {
    store: Store<HostState>,
    instance: Instance,
    abi: AbiVersion,
    poisoned: Option<String>,
    next_context: u32,
    vm_started: bool,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("state", self.store.data())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Vm {
    /// The ABI version of the module.
    pub fn abi(&self) -> AbiVersion {
        self.abi
    }

    /// Host state (logs, streams, callouts…).
    pub fn state(&self) -> &HostState {
        self.store.data()
    }

    /// Host state, mutable (to set properties, the clock, the log level…).
    pub fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// A stream's state.
    pub fn stream(&self, context: u32) -> Option<&Stream> {
        self.store.data().streams.get(&context)
    }

    /// A stream's state, mutable.
    pub fn stream_mut(&mut self, context: u32) -> Option<&mut Stream> {
        self.store.data_mut().streams.get_mut(&context)
    }

    /// Whether a trap poisoned this VM.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    fn guard<T>(
        &mut self,
        callback: &'static str,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, HostError> {
        if let Some(reason) = &self.poisoned {
            return Err(HostError::Poisoned {
                vm_id: self.store.data().vm_id.clone(),
                reason: reason.clone(),
            });
        }
        match f(&mut self.store) {
            Ok(v) => Ok(v),
            Err(e) => {
                let message = format!("{e:#}");
                self.poisoned = Some(format!("{callback}: {message}"));
                Err(HostError::Trap { callback, message })
            }
        }
    }

    fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
    ) -> Option<TypedFunc<P, R>> {
        self.instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .ok()
    }

    /// Calls an export taking `P` and returning `R`, as context `active`; a missing export is
    /// `Ok(None)` (the SDKs leave out callbacks they do not use).
    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &'static str,
        active: u32,
        params: P,
    ) -> Result<Option<R>, HostError> {
        let Some(f) = self.func::<P, R>(name) else {
            return Ok(None);
        };
        self.store.data_mut().active = active;
        self.guard(name, |store| f.call(store, params)).map(Some)
    }

    /// Creates a root context for `root_id`, runs `proxy_on_vm_start` (once per VM) and
    /// `proxy_on_configure` with `configuration`. Returns the root context id.
    ///
    /// # Errors
    /// A trap, or [`HostError::Rejected`] when either callback returns false.
    pub fn start_plugin(&mut self, root_id: &str, configuration: &[u8]) -> Result<u32, HostError> {
        let id = self.next_context;
        self.next_context += 1;
        self.store.data_mut().roots.insert(
            id,
            Root {
                root_id: root_id.to_owned(),
                ..Root::default()
            },
        );
        self.call::<(i32, i32), ()>("proxy_on_context_create", id, (id as i32, 0))?;
        if !self.vm_started {
            let size = self.store.data().vm_config.len() as i32;
            if self.call::<(i32, i32), i32>("proxy_on_vm_start", id, (id as i32, size))? == Some(0)
            {
                return Err(HostError::Rejected {
                    callback: "proxy_on_vm_start",
                    root_id: root_id.to_owned(),
                });
            }
            self.vm_started = true;
        }
        self.configure(id, configuration)?;
        Ok(id)
    }

    /// Runs `proxy_on_configure` on an existing root context with a new configuration.
    ///
    /// # Errors
    /// A trap, or [`HostError::Rejected`] when it returns false.
    pub fn configure(&mut self, root: u32, configuration: &[u8]) -> Result<(), HostError> {
        let r = self
            .store
            .data_mut()
            .roots
            .get_mut(&root)
            .ok_or(HostError::NoContext(root))?;
        r.configuration = configuration.to_vec();
        let root_id = r.root_id.clone();
        let size = configuration.len() as i32;
        if self.call::<(i32, i32), i32>("proxy_on_configure", root, (root as i32, size))? == Some(0)
        {
            return Err(HostError::Rejected {
                callback: "proxy_on_configure",
                root_id,
            });
        }
        Ok(())
    }

    /// Runs `proxy_on_tick` for a root context.
    ///
    /// # Errors
    /// A trap.
    pub fn tick(&mut self, root: u32) -> Result<(), HostError> {
        self.call::<i32, ()>("proxy_on_tick", root, root as i32)
            .map(|_| ())
    }

    /// Moves a fixed clock forward by `ms` (switching a system clock to fixed at its current
    /// value first) and runs every tick that fell due, in time order. Returns the ticks run.
    ///
    /// # Errors
    /// A trap in a tick.
    pub fn advance_ms(&mut self, ms: u64) -> Result<Vec<u32>, HostError> {
        let start = self.store.data().now_ns();
        let end = start + ms * 1_000_000;
        let mut fired = Vec::new();
        loop {
            let due = self
                .store
                .data()
                .roots
                .iter()
                .filter_map(|(id, r)| r.next_tick_ns.filter(|t| *t <= end).map(|t| (t, *id)))
                .min();
            let Some((at, root)) = due else { break };
            self.store.data_mut().clock = Clock::Fixed(at);
            if let Some(r) = self.store.data_mut().roots.get_mut(&root) {
                r.next_tick_ns = Some(at + u64::from(r.tick_period_ms.max(1)) * 1_000_000);
            }
            self.tick(root)?;
            fired.push(root);
        }
        self.store.data_mut().clock = Clock::Fixed(end);
        Ok(fired)
    }

    /// Milliseconds until the next tick of any root context, if one is scheduled.
    pub fn next_tick_in_ms(&self) -> Option<u64> {
        let now = self.store.data().now_ns();
        self.store
            .data()
            .roots
            .values()
            .filter_map(|r| r.next_tick_ns)
            .min()
            .map(|t| t.saturating_sub(now).div_ceil(1_000_000))
    }

    fn new_context(
        &mut self,
        root: u32,
        properties: BTreeMap<PropertyPath, Vec<u8>>,
    ) -> Result<u32, HostError> {
        if !self.store.data().roots.contains_key(&root) {
            return Err(HostError::NoContext(root));
        }
        let id = self.next_context;
        self.next_context += 1;
        self.store.data_mut().streams.insert(
            id,
            Stream {
                root,
                properties,
                ..Stream::default()
            },
        );
        self.call::<(i32, i32), ()>("proxy_on_context_create", id, (id as i32, root as i32))?;
        Ok(id)
    }

    /// Creates an HTTP stream context under `root`.
    ///
    /// # Errors
    /// No such root, or a trap.
    pub fn create_http_context(&mut self, root: u32) -> Result<u32, HostError> {
        self.new_context(root, BTreeMap::new())
    }

    /// Creates an HTTP stream context under `root` whose stream properties (`source.address`,
    /// `request.path`, …) are readable from its first callback on, as in Envoy.
    ///
    /// # Errors
    /// No such root, or a trap.
    pub fn create_http_context_with(
        &mut self,
        root: u32,
        properties: BTreeMap<PropertyPath, Vec<u8>>,
    ) -> Result<u32, HostError> {
        self.new_context(root, properties)
    }

    /// Creates a TCP stream context under `root` and runs `proxy_on_new_connection`.
    ///
    /// # Errors
    /// No such root, or a trap.
    pub fn create_stream_context(&mut self, root: u32) -> Result<(u32, Action), HostError> {
        self.create_stream_context_with(root, BTreeMap::new())
    }

    /// [`Vm::create_stream_context`] with the connection's properties (`source.address`, …) in
    /// place before `proxy_on_new_connection` runs, as Envoy has them.
    ///
    /// # Errors
    /// No such root, or a trap.
    pub fn create_stream_context_with(
        &mut self,
        root: u32,
        properties: BTreeMap<PropertyPath, Vec<u8>>,
    ) -> Result<(u32, Action), HostError> {
        let id = self.new_context(root, properties)?;
        let action = self
            .call::<i32, i32>("proxy_on_new_connection", id, id as i32)?
            .unwrap_or(0);
        Ok((id, Action::from_i32(action)))
    }

    /// Runs a stream callback that returns an action, with `(context, size, end_of_stream)` or,
    /// for trailers, `(context, size)`; a module without the export continues.
    fn stream_action(
        &mut self,
        export: &'static str,
        context: u32,
        size: i32,
        end_of_stream: Option<bool>,
    ) -> Result<Action, HostError> {
        let a = match end_of_stream {
            Some(eos) => self.call::<(i32, i32, i32), i32>(
                export,
                context,
                (context as i32, size, eos as i32),
            )?,
            None => self.call::<(i32, i32), i32>(export, context, (context as i32, size))?,
        };
        Ok(Action::from_i32(a.unwrap_or(0)))
    }

    /// Envoy's header maps hold lower-case names whatever the client sent.
    fn lower(headers: Headers) -> Headers {
        headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    }

    fn stream_or(&mut self, context: u32) -> Result<&mut Stream, HostError> {
        self.store
            .data_mut()
            .streams
            .get_mut(&context)
            .ok_or(HostError::NoContext(context))
    }

    /// Sets the request headers and runs `proxy_on_request_headers`.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_request_headers(
        &mut self,
        context: u32,
        headers: Headers,
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let n = headers.len() as i32;
        self.stream_or(context)?.request_headers = Self::lower(headers);
        self.stream_action("proxy_on_request_headers", context, n, Some(end_of_stream))
    }

    /// Appends a request body chunk and runs `proxy_on_request_body` with the buffered size.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_request_body(
        &mut self,
        context: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let s = self.stream_or(context)?;
        s.request_body.extend_from_slice(chunk);
        let n = s.request_body.len() as i32;
        self.stream_action("proxy_on_request_body", context, n, Some(end_of_stream))
    }

    /// Sets the request trailers and runs `proxy_on_request_trailers`.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_request_trailers(
        &mut self,
        context: u32,
        trailers: Headers,
    ) -> Result<Action, HostError> {
        let n = trailers.len() as i32;
        self.stream_or(context)?.request_trailers = Self::lower(trailers);
        self.stream_action("proxy_on_request_trailers", context, n, None)
    }

    /// Sets the response headers and runs `proxy_on_response_headers`.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_response_headers(
        &mut self,
        context: u32,
        headers: Headers,
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let n = headers.len() as i32;
        self.stream_or(context)?.response_headers = Self::lower(headers);
        self.stream_action("proxy_on_response_headers", context, n, Some(end_of_stream))
    }

    /// Appends a response body chunk and runs `proxy_on_response_body`.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_response_body(
        &mut self,
        context: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let s = self.stream_or(context)?;
        s.response_body.extend_from_slice(chunk);
        let n = s.response_body.len() as i32;
        self.stream_action("proxy_on_response_body", context, n, Some(end_of_stream))
    }

    /// Sets the response trailers and runs `proxy_on_response_trailers`.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_response_trailers(
        &mut self,
        context: u32,
        trailers: Headers,
    ) -> Result<Action, HostError> {
        let n = trailers.len() as i32;
        self.stream_or(context)?.response_trailers = Self::lower(trailers);
        self.stream_action("proxy_on_response_trailers", context, n, None)
    }

    /// Appends downstream data and runs `proxy_on_downstream_data`.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_downstream_data(
        &mut self,
        context: u32,
        data: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let s = self.stream_or(context)?;
        s.downstream_data.extend_from_slice(data);
        let n = s.downstream_data.len() as i32;
        self.stream_action("proxy_on_downstream_data", context, n, Some(end_of_stream))
    }

    /// Appends upstream data and runs `proxy_on_upstream_data`.
    ///
    /// # Errors
    /// No such context, or a trap.
    pub fn on_upstream_data(
        &mut self,
        context: u32,
        data: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let s = self.stream_or(context)?;
        s.upstream_data.extend_from_slice(data);
        let n = s.upstream_data.len() as i32;
        self.stream_action("proxy_on_upstream_data", context, n, Some(end_of_stream))
    }

    /// Runs `proxy_on_downstream_connection_close`.
    ///
    /// # Errors
    /// A trap.
    pub fn on_downstream_close(&mut self, context: u32, peer: PeerType) -> Result<(), HostError> {
        self.call::<(i32, i32), ()>(
            "proxy_on_downstream_connection_close",
            context,
            (context as i32, peer as i32),
        )
        .map(|_| ())
    }

    /// Runs `proxy_on_upstream_connection_close`.
    ///
    /// # Errors
    /// A trap.
    pub fn on_upstream_close(&mut self, context: u32, peer: PeerType) -> Result<(), HostError> {
        self.call::<(i32, i32), ()>(
            "proxy_on_upstream_connection_close",
            context,
            (context as i32, peer as i32),
        )
        .map(|_| ())
    }

    /// Ends a stream as Envoy does: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`; the
    /// stream's state is dropped and returned.
    ///
    /// # Errors
    /// A trap.
    pub fn finish(&mut self, context: u32) -> Result<Option<Stream>, HostError> {
        self.call::<i32, ()>("proxy_on_log", context, context as i32)?;
        self.call::<i32, i32>("proxy_on_done", context, context as i32)?;
        self.call::<i32, ()>("proxy_on_delete", context, context as i32)?;
        Ok(self.store.data_mut().streams.remove(&context))
    }

    /// Answers an HTTP callout: runs `proxy_on_http_call_response` on the context that made it.
    ///
    /// # Errors
    /// Unknown token, or a trap.
    pub fn respond_http_call(
        &mut self,
        token: u32,
        headers: Headers,
        body: &[u8],
        trailers: Headers,
    ) -> Result<(), HostError> {
        let call = self
            .store
            .data()
            .http_calls
            .iter()
            .find(|c| c.token == token)
            .cloned()
            .ok_or(HostError::NoContext(token))?;
        let (nh, nb, nt) = (
            headers.len() as i32,
            body.len() as i32,
            trailers.len() as i32,
        );
        self.store.data_mut().callout = Some((headers, body.to_vec(), trailers));
        let r = self.call::<(i32, i32, i32, i32, i32), ()>(
            "proxy_on_http_call_response",
            call.context,
            (call.context as i32, token as i32, nh, nb, nt),
        );
        self.store.data_mut().callout = None;
        r.map(|_| ())
    }

    /// Answers a unary gRPC call (`proxy_grpc_call`) as Envoy does: a success delivers the
    /// response message with `proxy_on_grpc_receive` only; a failure closes the call with
    /// `proxy_on_grpc_close` only (its message readable with `proxy_get_status`). No metadata
    /// callbacks: Envoy's unary client has none.
    ///
    /// # Errors
    /// Unknown token, or a trap.
    pub fn respond_grpc_call(
        &mut self,
        token: u32,
        answer: Result<&[u8], (u32, &str)>,
    ) -> Result<(), HostError> {
        let call = self
            .store
            .data()
            .grpc_calls
            .iter()
            .find(|c| c.token == token)
            .cloned()
            .ok_or(HostError::NoContext(token))?;
        let ctx = call.context;
        match answer {
            Ok(message) => {
                self.store.data_mut().callout = Some((Vec::new(), message.to_vec(), Vec::new()));
                let r = self.call::<(i32, i32, i32), ()>(
                    "proxy_on_grpc_receive",
                    ctx,
                    (ctx as i32, token as i32, message.len() as i32),
                );
                self.store.data_mut().callout = None;
                r.map(|_| ())
            }
            Err((status, message)) => {
                self.store.data_mut().grpc_status = (status, message.as_bytes().to_vec());
                self.call::<(i32, i32, i32), ()>(
                    "proxy_on_grpc_close",
                    ctx,
                    (ctx as i32, token as i32, status as i32),
                )
                .map(|_| ())
            }
        }
    }

    /// Answers a gRPC call or stream: initial metadata, each message, trailing metadata, close.
    ///
    /// # Errors
    /// Unknown token, or a trap.
    pub fn respond_grpc(
        &mut self,
        token: u32,
        initial: Headers,
        messages: &[&[u8]],
        trailing: Headers,
        status: u32,
        message: &str,
    ) -> Result<(), HostError> {
        let call = self
            .store
            .data()
            .grpc_calls
            .iter()
            .find(|c| c.token == token)
            .cloned()
            .ok_or(HostError::NoContext(token))?;
        let ctx = call.context;
        let n = initial.len() as i32;
        self.store.data_mut().callout = Some((initial, Vec::new(), Vec::new()));
        let r = self.call::<(i32, i32, i32), ()>(
            "proxy_on_grpc_receive_initial_metadata",
            ctx,
            (ctx as i32, token as i32, n),
        );
        self.store.data_mut().callout = None;
        r?;
        for m in messages {
            self.store.data_mut().callout = Some((Vec::new(), m.to_vec(), Vec::new()));
            let r = self.call::<(i32, i32, i32), ()>(
                "proxy_on_grpc_receive",
                ctx,
                (ctx as i32, token as i32, m.len() as i32),
            );
            self.store.data_mut().callout = None;
            r?;
        }
        let n = trailing.len() as i32;
        self.store.data_mut().callout = Some((Vec::new(), Vec::new(), trailing));
        let r = self.call::<(i32, i32, i32), ()>(
            "proxy_on_grpc_receive_trailing_metadata",
            ctx,
            (ctx as i32, token as i32, n),
        );
        self.store.data_mut().callout = None;
        r?;
        self.store.data_mut().grpc_status = (status, message.as_bytes().to_vec());
        self.call::<(i32, i32, i32), ()>(
            "proxy_on_grpc_close",
            ctx,
            (ctx as i32, token as i32, status as i32),
        )
        .map(|_| ())
    }

    /// Delivers pending queue-ready notifications for queues this VM registered; returns how many.
    ///
    /// # Errors
    /// A trap.
    pub fn deliver_queue_ready(&mut self) -> Result<usize, HostError> {
        let vm_id = self.store.data().vm_id.clone();
        let shared = self.store.data().shared.clone();
        let mine: Vec<(String, u32, u32)> = {
            let mut pending = lock(&shared.queue_ready);
            let (mine, rest): (Vec<_>, Vec<_>) =
                pending.drain(..).partition(|(v, _, _)| *v == vm_id);
            *pending = rest;
            mine
        };
        for (_, root, queue) in &mine {
            self.call::<(i32, i32), ()>(
                "proxy_on_queue_ready",
                *root,
                (*root as i32, *queue as i32),
            )?;
        }
        Ok(mine.len())
    }

    /// Calls `proxy_on_foreign_function` on a root with `data` as the call data.
    ///
    /// # Errors
    /// A trap.
    pub fn foreign_function(
        &mut self,
        root: u32,
        function_id: u32,
        data: &[u8],
    ) -> Result<(), HostError> {
        self.store.data_mut().call_data = data.to_vec();
        self.call::<(i32, i32, i32), ()>(
            "proxy_on_foreign_function",
            root,
            (root as i32, function_id as i32, data.len() as i32),
        )
        .map(|_| ())
    }

    /// Logs at `level` or above.
    pub fn logs_at(&self, level: LogLevel) -> Vec<String> {
        self.store
            .data()
            .logs
            .iter()
            .filter(|l| l.level >= level)
            .map(|l| l.message.clone())
            .collect()
    }
}
