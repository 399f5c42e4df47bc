//! Scenario files on host-runner: the scenario driver's [`Host`] with the filters on wasmtime and
//! the host's Envoy emulation standing in for Envoy and the echo backends.

use std::collections::BTreeMap;
use std::path::Path;

use portico_controller::envoy::{EGRESS_HTTP_FILTER, EGRESS_TCP_FILTER, EGRESS_TLS_FILTER};
use portico_core::config::{CLUSTER_HEADER, PASSTHROUGH_CLUSTER};
use portico_core::tls::select::{ChainAction, TlsTable, TlsVersion};
use portico_host_runner::envoy::{
    normalize_path, Connected, Decoded, FailurePolicy, FilterSpec, Response, Routed, Trace,
    Upstreams, Worker,
};
use portico_host_runner::{Module, Runtime};
use portico_scenario::format::{Echo, Observed, Request, Scenario, Via};
use portico_scenario::prepare::{request_addresses, Plan, Prepared};
use portico_scenario::{Host, RunOptions, ECHO_HEADER};

/// The modules scenarios run, compiled once.
#[derive(Debug, Clone)]
pub struct Modules {
    /// The routing filter.
    pub routing: Module,
    /// The tls network filter (`portico_filter_tls.wasm` beside the routing filter), for
    /// passthrough connections; `None` when it is not built.
    pub tls: Option<Module>,
    /// The egress filter (`portico_filter_egress.wasm` beside the routing filter), for the
    /// sidecar; `None` when it is not built.
    pub egress: Option<Module>,
}

impl Modules {
    /// Compiles the suite's filters from `wasm_dir`.
    ///
    /// # Errors
    /// A missing or invalid module.
    pub fn load(runtime: &Runtime, routing: &Path) -> Result<Modules, String> {
        let bytes = std::fs::read(routing)
            .map_err(|e| format!("{}: {e} (run `just build`)", routing.display()))?;
        let beside = |file: &str| -> Result<Option<Module>, String> {
            let path = routing.with_file_name(file);
            match std::fs::read(&path) {
                Ok(bytes) => runtime
                    .compile(&bytes)
                    .map(Some)
                    .map_err(|e| format!("{}: {e}", path.display())),
                Err(_) => Ok(None),
            }
        };
        let tls = beside("portico_filter_tls.wasm")?;
        let egress = beside("portico_filter_egress.wasm")?;
        let routing = runtime
            .compile(&bytes)
            .map_err(|e| format!("{}: {e}", routing.display()))?;
        Ok(Modules {
            routing,
            tls,
            egress,
        })
    }
}

/// Request headers Envoy's router reads and removes before the request goes upstream.
const ROUTER_HEADERS: &[&str] = &[
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-max-retries",
    "x-envoy-retry-on",
    "x-envoy-retriable-status-codes",
];

fn request_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// One request as the client sends it.
struct Outgoing<'a> {
    /// Client address (`ip`); the port is made up.
    source: &'a str,
    /// The destination the client addressed (the listener, or for a sidecar request where it
    /// was going).
    destination: std::net::SocketAddr,
    method: &'a str,
    authority: &'a str,
    path: &'a str,
    headers: &'a BTreeMap<String, String>,
    /// Over TLS: what Envoy knows of the session.
    tls: Option<TlsSession>,
}

/// What Envoy knows of a connection before any filter runs: the client's address (its port made
/// up from `n`) and where it was going.
fn connection_properties(
    source: &str,
    destination: std::net::SocketAddr,
    n: usize,
) -> BTreeMap<Vec<String>, Vec<u8>> {
    let prop = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
    let port = 40000 + n % 20000;
    BTreeMap::from([
        (
            prop("source", "address"),
            format!("{source}:{port}").into_bytes(),
        ),
        (prop("source", "port"), (port as i64).to_le_bytes().to_vec()),
        (
            prop("destination", "address"),
            destination.to_string().into_bytes(),
        ),
        (
            prop("destination", "port"),
            i64::from(destination.port()).to_le_bytes().to_vec(),
        ),
    ])
}

fn run_request(
    worker: &mut Worker,
    upstreams: &mut Upstreams,
    req: &Outgoing<'_>,
    n: usize,
    trace: &mut Trace,
) -> Observed {
    let Outgoing {
        method,
        authority,
        path,
        headers: extra,
        ..
    } = *req;
    let path = normalize_path(path);
    let scheme = if req.tls.is_some() { "https" } else { "http" };
    let mut headers = vec![
        (":authority".to_owned(), authority.to_owned()),
        (":path".to_owned(), path),
        (":method".to_owned(), method.to_owned()),
        (":scheme".to_owned(), scheme.to_owned()),
    ];
    for (k, v) in extra {
        if !k.eq_ignore_ascii_case("host") {
            headers.push((k.to_ascii_lowercase(), v.clone()));
        }
    }
    // What Envoy's connection manager adds before the filters run.
    if !headers.iter().any(|(k, _)| k == "x-forwarded-proto") {
        headers.push(("x-forwarded-proto".into(), scheme.into()));
    }
    headers.push(("x-request-id".into(), request_id(n)));
    let prop = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
    worker.connection = connection_properties(req.source, req.destination, n);
    if let Some(session) = &req.tls {
        // Envoy fills these from the handshake (the SNI only with `tls_inspector`, which every
        // Portico TLS listener has).
        worker.connection.insert(
            prop("connection", "requested_server_name"),
            session.sni.clone().unwrap_or_default().into_bytes(),
        );
        worker.connection.insert(
            prop("connection", "tls_version"),
            session.version.as_bytes().to_vec(),
        );
        if let Some(subject) = &session.client_subject {
            worker.connection.insert(
                prop("connection", "subject_peer_certificate"),
                subject.clone().into_bytes(),
            );
        }
    }
    let (decoded, contexts) = worker.decode(headers, b"", trace);
    let mirrored = deliver_callouts(worker, upstreams, trace);
    let (response, echo) = match decoded {
        Decoded::Reset(filter) => {
            return Observed::ended("closed", format!("{filter} reset the stream"));
        }
        Decoded::Paused(filter) => {
            return Observed {
                error: Some(format!("no response: filter {filter} paused the request")),
                ..Observed::default()
            };
        }
        Decoded::Reply { response, .. } => (response, None),
        Decoded::Forward(mut headers) => {
            // The router adds the TLS chain's headers (from the client certificate).
            for (name, value) in req.tls.iter().flat_map(|t| &t.router_headers) {
                headers.retain(|(k, _)| k != name);
                headers.push((name.clone(), value.clone()));
            }
            match upstreams.route(&headers, worker.steering(&contexts).as_deref()) {
                Routed::Reply(r) => {
                    trace.push(format!(
                        "router: {} (no filter steering, or no upstream)",
                        r.status
                    ));
                    (r, None)
                }
                Routed::Endpoint(endpoint) => {
                    trace.push(format!("router: endpoint {endpoint}"));
                    // Envoy's router consumes its policy headers and tells the upstream the
                    // timeout it expects (per try when that is shorter; none when disabled).
                    let get = |name: &str| -> Option<u64> {
                        headers
                            .iter()
                            .find(|(k, _)| k == name)
                            .and_then(|(_, v)| v.parse().ok())
                    };
                    let global = get("x-envoy-upstream-rq-timeout-ms").unwrap_or(30_000);
                    let expected = match get("x-envoy-upstream-rq-per-try-timeout-ms") {
                        Some(p) if p > 0 && (global == 0 || p < global) => p,
                        _ => global,
                    };
                    let consumed: Vec<(String, String)> = headers
                        .iter()
                        .filter(|(k, _)| !ROUTER_HEADERS.contains(&k.as_str()))
                        .cloned()
                        .collect();
                    let (mut echo, mut response) = echo_reply(&endpoint, &consumed);
                    if expected > 0 {
                        echo.headers.push((
                            "x-envoy-expected-rq-timeout-ms".into(),
                            expected.to_string(),
                        ));
                    }
                    response.body = serde_json::to_vec(&echo).unwrap_or_default();
                    if let Some(len) = response
                        .headers
                        .iter_mut()
                        .find(|(k, _)| k == "content-length")
                    {
                        len.1 = response.body.len().to_string();
                    }
                    (response, Some(echo))
                }
            }
        }
    };
    let response = worker.encode(response, &contexts, trace);
    let mut headers = response.headers;
    if !headers.iter().any(|(k, _)| k == "content-length") {
        headers.push(("content-length".into(), response.body.len().to_string()));
    }
    headers.push(("server".into(), "envoy".into()));
    // The client knows an echo answer by its header, as the Envoy harness does: a filter that
    // removed it leaves a plain response.
    let echo = echo.filter(|_| {
        headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(ECHO_HEADER))
    });
    Observed {
        status: Some(response.status),
        headers,
        body: response.body,
        echo,
        error: None,
        mirrored,
        certificate: None,
        connection: None,
    }
}

/// The echo backend's answer to a request that reached `endpoint`.
fn echo_reply(endpoint: &str, headers: &[(String, String)]) -> (Echo, Response) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut upstream: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !k.starts_with(':'))
        .cloned()
        .collect();
    upstream.insert(0, ("host".into(), get(":authority")));
    let echo = Echo {
        endpoint: endpoint.to_owned(),
        method: get(":method"),
        path: get(":path"),
        host: get(":authority"),
        headers: upstream,
    };
    let body = serde_json::to_vec(&echo).unwrap_or_default();
    let response = Response {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            (ECHO_HEADER.into(), endpoint.to_owned()),
            ("content-length".into(), body.len().to_string()),
        ],
        body,
    };
    (echo, response)
}

/// Sends the HTTP callouts the filters made (mirror copies) through Envoy's cluster manager:
/// each reaches one endpoint of its cluster (round robin), whose answer goes back to the filter.
/// Returns what the backends received.
fn deliver_callouts(
    worker: &mut Worker,
    upstreams: &mut Upstreams,
    trace: &mut Trace,
) -> Vec<Echo> {
    let mut received = Vec::new();
    for (vm, call) in worker.take_http_calls() {
        let response = match upstreams.route_to_cluster(&call.upstream) {
            Routed::Endpoint(endpoint) => {
                trace.push(format!("callout to {}: endpoint {endpoint}", call.upstream));
                let (echo, response) = echo_reply(&endpoint, &call.headers);
                received.push(echo);
                response
            }
            Routed::Reply(r) => {
                trace.push(format!("callout to {}: {}", call.upstream, r.status));
                r
            }
        };
        if let Err(e) = worker.respond_http_call(vm, &call, &response) {
            trace.push(format!("callout response: {e}"));
        }
    }
    received
}

/// Portico's filters on wasmtime, with [`Worker`] and [`Upstreams`] standing in for Envoy and
/// the echo backends: a scenario [`Host`].
#[derive(Debug)]
pub struct WasmHost {
    runtime: Runtime,
    modules: Modules,
    /// Requests sent so far (their ids and client ports).
    sent: usize,
}

impl WasmHost {
    /// A host running `modules` on `runtime`.
    pub fn new(runtime: Runtime, modules: Modules) -> WasmHost {
        WasmHost {
            runtime,
            modules,
            sent: 0,
        }
    }
}

/// One scenario on [`WasmHost`]: a filter chain per listener and sidecar port, and the router.
#[derive(Debug)]
pub struct Session {
    workers: BTreeMap<(Via, u16), Worker>,
    upstreams: Upstreams,
    /// The TLS table of each TLS listener, by port.
    tls: BTreeMap<u16, TlsTable>,
    /// The tls network filter of each port with passthrough chains.
    passthrough: BTreeMap<u16, Worker>,
    /// Trusted CA bundles (PEM) by SDS name, for client certificates.
    trusted: BTreeMap<String, String>,
    /// The sidecar's egress network filters in front of its TCP proxies: on TLS chains (every
    /// port), and on TCP chains (TCP ports and every port no other chain has).
    egress_tls: Option<Worker>,
    egress_tcp: Option<Worker>,
}

impl WasmHost {
    /// The tls network filter for one port's table, configured as the controller renders it
    /// for Envoy.
    fn tls_worker(&self, name: &str, port: u16, table: &TlsTable) -> Result<Worker, String> {
        let Some(module) = self.modules.tls.clone() else {
            return Err("the tls filter is not built (run `just build`)".into());
        };
        let spec = FilterSpec {
            name: name.to_owned(),
            module,
            code_id: "tls".into(),
            vm_id: "portico-tls".into(),
            root_id: "portico-tls".into(),
            configuration: portico_controller::envoy::tls_filter_config(port, table)
                .to_json()
                .into_bytes(),
            failure_policy: FailurePolicy::FailReload,
        };
        Worker::with_chain(self.runtime.clone(), vec![spec], Vec::new())
            .map_err(|e| format!("starting {name}: {e}"))
    }
}

impl Host for WasmHost {
    type Session = Session;

    fn start(
        &mut self,
        _file: &str,
        scenario: &Scenario,
        prepared: &Prepared,
        _options: &RunOptions,
    ) -> Result<Session, String> {
        let snapshot = &prepared.translation.snapshot;
        // One chain per listener, as Envoy has one filter chain per listener.
        let mut workers = BTreeMap::new();
        for l in &snapshot.listeners {
            let spec = routing_filter(&self.modules.routing, &l.routing);
            let worker = Worker::new(self.runtime.clone(), vec![spec])
                .map_err(|e| format!("starting the routing filter on port {}: {e}", l.port))?;
            workers.insert((Via::Gateway, l.port), worker);
        }
        // The sidecar: one chain per destination port, as its listener's filter chains, the
        // egress filter in front of routing.
        let egress_spec = |root: &str| -> Result<Option<FilterSpec>, String> {
            let Some(egress) = &snapshot.egress else {
                return Ok(None);
            };
            let Some(module) = self.modules.egress.clone() else {
                return Err("the egress filter is not built (run `just build`)".into());
            };
            Ok(Some(egress_filter(&module, root, &egress.config)))
        };
        for l in &snapshot.sidecar {
            let mut chain: Vec<FilterSpec> = egress_spec(EGRESS_HTTP_FILTER)?.into_iter().collect();
            chain.push(routing_filter(&self.modules.routing, &l.routing));
            let worker = Worker::new(self.runtime.clone(), chain).map_err(|e| {
                format!(
                    "starting the sidecar's routing filter for port {}: {e}",
                    l.port
                )
            })?;
            workers.insert((Via::Sidecar, l.port), worker);
        }
        let clusters = snapshot
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.endpoints.clone()))
            .collect();
        let mut live: std::collections::BTreeSet<String> =
            prepared.backends.keys().cloned().collect();
        live.extend(request_addresses(scenario));
        let upstreams = Upstreams::new(clusters, live).with_cluster_header(CLUSTER_HEADER);
        let tls: BTreeMap<u16, TlsTable> = snapshot
            .listeners
            .iter()
            .filter_map(|l| l.tls.clone().map(|t| (l.port, t)))
            .collect();
        // The tls network filter on every port with a passthrough chain, configured as the
        // controller renders it for Envoy.
        let mut passthrough = BTreeMap::new();
        for (port, table) in &tls {
            if !table
                .chains
                .iter()
                .any(|c| matches!(c.action, ChainAction::Passthrough { .. }))
            {
                continue;
            }
            let worker = self.tls_worker(&format!("portico-tls-{port}"), *port, table)?;
            passthrough.insert(*port, worker);
        }
        let trusted = snapshot
            .secrets
            .iter()
            .filter_map(|(name, s)| match s {
                portico_controller::translate::SdsSecret::TrustedCa(pem) => {
                    Some((name.clone(), pem.clone()))
                }
                _ => None,
            })
            .collect();
        let network = |root: &str| -> Result<Option<Worker>, String> {
            match egress_spec(root)? {
                Some(spec) => Worker::with_chain(self.runtime.clone(), vec![spec], Vec::new())
                    .map(Some)
                    .map_err(|e| format!("starting the sidecar's {root} filter: {e}")),
                None => Ok(None),
            }
        };
        let egress_tls = network(EGRESS_TLS_FILTER)?;
        let egress_tcp = network(EGRESS_TCP_FILTER)?;
        Ok(Session {
            workers,
            upstreams,
            tls,
            passthrough,
            trusted,
            egress_tls,
            egress_tcp,
        })
    }

    fn send(
        &mut self,
        session: &mut Session,
        request: &Request,
        plan: &Plan,
        trace: &mut Vec<String>,
    ) -> Vec<Observed> {
        let repeat_n = request.repeat.unwrap_or(1).max(1) as usize;
        let key = match plan.via {
            Via::Gateway => (Via::Gateway, plan.url.port),
            Via::Sidecar => (Via::Sidecar, plan.destination.port()),
        };
        if plan.via == Via::Sidecar && (plan.tls.is_some() || !session.workers.contains_key(&key)) {
            // Leaving through the sidecar on its TCP proxy (TLS on any port, anything on a port
            // with no HTTP chain): the egress filter names the cluster or closes.
            let source = plan
                .source
                .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string());
            return (0..repeat_n)
                .map(|_| {
                    self.sent += 1;
                    sidecar_connection(session, request, plan, &source, self.sent, trace)
                })
                .collect();
        }
        let Some(worker) = session.workers.get_mut(&key) else {
            return vec![Observed {
                error: Some(format!("no filter chain for {key:?}")),
                ..Observed::default()
            }];
        };
        // The handshake, as Envoy's filter chain match and TLS transport socket would do it.
        let repeat = request.repeat.unwrap_or(1).max(1) as usize;
        let table = match plan.via {
            Via::Gateway => session.tls.get(&plan.url.port),
            Via::Sidecar => None,
        };
        let (tls, certificate) = match handshake(table, &session.trusted, plan, trace) {
            Ok(Handshake::Passthrough) => {
                return (0..repeat)
                    .map(|_| passthrough(session, request, plan, trace))
                    .collect()
            }
            Ok(Handshake::Done(tls, certificate)) => (tls, certificate),
            Err(ended) => return vec![*ended; repeat],
        };
        if request.protocol.as_deref() == Some("tls") {
            // A raw TLS request: the handshake is all.
            let done = Observed {
                certificate,
                ..Observed::default()
            };
            return vec![done; repeat];
        }
        let source = plan
            .source
            .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string());
        let mut observed = Vec::new();
        for _ in 0..repeat {
            self.sent += 1;
            trace.clear();
            let req = Outgoing {
                source: &source,
                destination: match plan.via {
                    Via::Gateway => std::net::SocketAddr::from(([127, 0, 0, 1], plan.url.port)),
                    Via::Sidecar => plan.destination,
                },
                method: &plan.method,
                authority: &plan.authority,
                path: &plan.url.path,
                headers: &request.headers,
                tls: tls.clone(),
            };
            let mut o = run_request(worker, &mut session.upstreams, &req, self.sent, trace);
            o.certificate = certificate.clone();
            observed.push(o);
        }
        observed
    }
}

/// [`Observed::ended`], boxed.
fn boxed_ended(connection: &str, why: impl Into<String>) -> Box<Observed> {
    Box::new(Observed::ended(connection, why))
}

/// What Envoy knows of a TLS session, as connection properties.
#[derive(Debug, Clone)]
struct TlsSession {
    /// The SNI as sent.
    sni: Option<String>,
    /// The negotiated version (`TLSv1.3`).
    version: &'static str,
    /// The client certificate's subject (RFC 2253), when one was asked for and sent.
    client_subject: Option<String>,
    /// Headers the chain's connection manager sets from the client certificate, added by the
    /// router to forwarded requests.
    router_headers: Vec<(String, String)>,
}

/// How a connection's start went.
enum Handshake {
    /// The TLS session of a request (`None`: plain HTTP) and the served certificate's names.
    Done(Option<TlsSession>, Option<Vec<String>>),
    /// The chain passes the connection through: the tls filter decides where.
    Passthrough,
}

/// A connection to a passthrough chain: the tls filter reads the client's real ClientHello and
/// names a cluster; see [`tcp_proxy`].
fn passthrough(
    session: &mut Session,
    request: &Request,
    plan: &Plan,
    trace: &mut Vec<String>,
) -> Observed {
    let Some(worker) = session.passthrough.get_mut(&plan.url.port) else {
        return Observed::ended("closed", "no tls filter on this port");
    };
    match first_bytes(request, plan) {
        Ok(first) => tcp_proxy(worker, &mut session.upstreams, &first, request, plan, trace),
        Err(ended) => *ended,
    }
}

/// What the client sends first on a raw connection: its real ClientHello, or (plain) the
/// request's bytes.
fn first_bytes(request: &Request, plan: &Plan) -> Result<Vec<u8>, Box<Observed>> {
    match &plan.tls {
        Some(client) => portico_scenario::tls::client_hello(
            client,
            request.http_version.as_deref() == Some("2"),
        )
        .map_err(|e| boxed_ended("closed", e)),
        None => Ok(format!(
            "{} {} HTTP/1.1\r\nhost: {}\r\n\r\n",
            plan.method, plan.url.path, plan.authority
        )
        .into_bytes()),
    }
}

/// A connection through a chain of network filters in front of Envoy's TCP proxy: they read
/// what the client sends `first` and name a cluster (`envoy.tcp_proxy.cluster`) or close; the
/// proxy connects to where the client was going (the passthrough cluster) or to one of the
/// cluster's endpoints, whose backend answers the request inside.
fn tcp_proxy(
    worker: &mut Worker,
    upstreams: &mut Upstreams,
    first: &[u8],
    request: &Request,
    plan: &Plan,
    trace: &mut Vec<String>,
) -> Observed {
    let state = match worker.connect(first, trace) {
        Connected::Open {
            filter_state,
            contexts,
        } => {
            worker.disconnect(&contexts);
            filter_state
        }
        Connected::Closed(f) => {
            return Observed::ended("closed", format!("{f} closed the connection"))
        }
        Connected::Paused(f) => {
            return Observed::ended(
                "closed",
                format!("{f} held the connection (no cluster named)"),
            )
        }
    };
    let Some(cluster) = state
        .iter()
        .rev()
        .find(|(k, _)| k == "envoy.tcp_proxy.cluster")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    else {
        return Observed::ended("closed", "no filter named a cluster");
    };
    trace.push(format!("tcp proxy: cluster {cluster}"));
    let endpoint = if cluster == PASSTHROUGH_CLUSTER {
        // ORIGINAL_DST: where the client was going.
        plan.destination.to_string()
    } else {
        match upstreams.route_to_cluster(&cluster) {
            Routed::Endpoint(e) => e,
            Routed::Reply(r) => {
                return Observed::ended(
                    "closed",
                    format!("cluster {cluster}: no endpoint ({})", r.status),
                )
            }
        }
    };
    raw_backend(&endpoint, request, plan)
}

/// A backend's answer to a connection passed through untouched: it terminates TLS itself (when
/// the client speaks TLS) and answers the request as the client sent it.
fn raw_backend(endpoint: &str, request: &Request, plan: &Plan) -> Observed {
    // The backend terminates TLS and answers the request as the client sent it.
    let mut headers = vec![
        (":authority".to_owned(), plan.authority.clone()),
        (":path".to_owned(), plan.url.path.clone()),
        (":method".to_owned(), plan.method.clone()),
    ];
    headers.extend(
        request
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    );
    let (echo, response) = echo_reply(endpoint, &headers);
    Observed {
        status: Some(response.status),
        headers: response.headers,
        body: response.body,
        echo: Some(echo),
        certificate: plan
            .tls
            .as_ref()
            .map(|_| vec![portico_scenario::tls::BACKEND_CERTIFICATE.to_owned()]),
        ..Observed::default()
    }
}

/// A connection through the sidecar's TCP proxy: the egress filter of its chain (TLS, or TCP
/// for anything else) decides (see [`tcp_proxy`]).
fn sidecar_connection(
    session: &mut Session,
    request: &Request,
    plan: &Plan,
    source: &str,
    n: usize,
    trace: &mut Vec<String>,
) -> Observed {
    let worker = if plan.tls.is_some() {
        session.egress_tls.as_mut()
    } else {
        session.egress_tcp.as_mut()
    };
    let Some(worker) = worker else {
        return Observed::ended("closed", "no sidecar egress filter");
    };
    let first = match first_bytes(request, plan) {
        Ok(first) => first,
        Err(ended) => return *ended,
    };
    worker.connection = connection_properties(source, plan.destination, n);
    tcp_proxy(worker, &mut session.upstreams, &first, request, plan, trace)
}

/// What the client's handshake with a listener gives: the TLS session (SNI as sent, version)
/// and the served certificate's names, or how the connection ended. The chain is chosen by the
/// same [`TlsTable::select`] that Envoy's rendered `filter_chain_matcher` evaluates.
fn handshake(
    table: Option<&TlsTable>,
    trusted: &BTreeMap<String, String>,
    plan: &Plan,
    trace: &mut Vec<String>,
) -> Result<Handshake, Box<Observed>> {
    let (table, client) = match (table, &plan.tls) {
        (None, None) => return Ok(Handshake::Done(None, None)),
        (None, Some(_)) => {
            return Err(boxed_ended(
                "closed",
                "TLS handshake with a plain HTTP listener",
            ))
        }
        (Some(_), None) => {
            return Err(boxed_ended(
                "closed",
                "plain HTTP to a TLS listener: the handshake fails",
            ))
        }
        (Some(t), Some(c)) => (t, c),
    };
    let selection = table.select(client.sni.as_deref());
    trace.push(format!("tls ({}): {selection}", table.family));
    match selection.chain.map(|c| &c.action) {
        None => Err(boxed_ended("closed", selection.to_string())),
        Some(ChainAction::Refuse { .. }) => Err(boxed_ended("closed", selection.to_string())),
        Some(ChainAction::Passthrough { .. }) => Ok(Handshake::Passthrough),
        Some(ChainAction::Terminate(t)) => {
            if client.max_version < t.min_version {
                return Err(boxed_ended(
                    "closed",
                    format!(
                        "the client offers at most {}, the chain requires {}",
                        client.max_version.envoy_name(),
                        t.min_version.envoy_name()
                    ),
                ));
            }
            // Client certificates: Envoy asks when the chain validates them; a required one
            // missing, or one that does not chain to the CA or lacks the SANs, fails the handshake.
            let mut client_subject = None;
            let mut router_headers = Vec::new();
            if let Some(v) = &t.client {
                use portico_controller::translate::tls as certs;
                let leaf = client
                    .client
                    .as_ref()
                    .and_then(|c| certs::leaf_der(&c.chain_pem));
                client_subject = leaf.as_deref().and_then(certs::subject_rfc2253);
                if let Some(der) = &leaf {
                    for (name, field) in &t.request_headers {
                        let value = match field {
                            portico_core::tls::select::PeerHeader::Issuer => {
                                certs::issuer_rfc2253(der).unwrap_or_default()
                            }
                            portico_core::tls::select::PeerHeader::Certificate => {
                                certs::url_encoded_pem(der)
                            }
                        };
                        router_headers.push((name.clone(), value));
                    }
                }
                match &client.client {
                    None if v.required => {
                        return Err(boxed_ended(
                            "closed",
                            "the chain requires a client certificate",
                        ))
                    }
                    None => {}
                    Some(identity) if v.accept_untrusted => {
                        trace.push(format!(
                            "tls: client certificate {} (not checked)",
                            identity.name
                        ));
                    }
                    Some(identity) => {
                        let ca = trusted.get(&v.ca_sds).map(String::as_str).unwrap_or("");
                        if let Err(e) =
                            portico_scenario::tls::verify_client(ca, identity, &v.subject_alt_names)
                        {
                            return Err(boxed_ended("closed", e));
                        }
                        trace.push(format!(
                            "tls: client certificate {} accepted",
                            identity.name
                        ));
                    }
                }
            }
            let version = match client.max_version.min(t.max_version) {
                TlsVersion::V1_0 => "TLSv1",
                TlsVersion::V1_1 => "TLSv1.1",
                TlsVersion::V1_2 => "TLSv1.2",
                TlsVersion::V1_3 => "TLSv1.3",
            };
            Ok(Handshake::Done(
                Some(TlsSession {
                    sni: client.sni.clone(),
                    version,
                    client_subject,
                    router_headers,
                }),
                Some(t.certificate.source.names()),
            ))
        }
    }
}

/// The egress filter's `root` instance (HTTP or network), as the controller configures it for
/// Envoy.
pub fn egress_filter(
    module: &Module,
    root: &str,
    config: &portico_core::egress::EgressConfig,
) -> FilterSpec {
    FilterSpec {
        name: root.to_owned(),
        module: module.clone(),
        code_id: "egress".into(),
        vm_id: "portico-egress".into(),
        root_id: root.to_owned(),
        configuration: config.to_json().into_bytes(),
        failure_policy: FailurePolicy::FailReload,
    }
}

/// The routing filter on one listener, as the controller configures it for Envoy.
pub fn routing_filter(module: &Module, config: &portico_core::config::RoutingConfig) -> FilterSpec {
    FilterSpec {
        name: format!("portico-routing-{}", config.port),
        module: module.clone(),
        code_id: "routing".into(),
        vm_id: "portico-routing".into(),
        root_id: "portico-routing".into(),
        configuration: config.to_json().into_bytes(),
        failure_policy: FailurePolicy::FailReload,
    }
}
