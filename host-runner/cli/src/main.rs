//! `host-runner`: run proxy-wasm modules without Envoy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portico_core::config::ForwardMode;
use portico_host_runner::envoy::{
    normalize_path, Answers, Connected, Decoded, FailurePolicy, FilterSpec, Response, Worker,
};
use portico_host_runner::Runtime;
use portico_scenario::format::Url;
use portico_scenario::{run_paths, RunOptions};

mod framing;
mod scenario;
mod serve;

use scenario::{Modules, WasmHost};

/// Run proxy-wasm modules (ABI 0.2.1 / 0.2.0) on wasmtime, without Envoy.
#[derive(Debug, Parser)]
#[command(name = "host-runner", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files (or folders of them) through Portico's filters, as the Envoy harness does.
    ///
    /// Each file's objects are translated as the controller does; each request goes through the
    /// routing filter and an emulation of Envoy's router and the echo backends. Failures print
    /// expected vs got and the decision trace; the run ends with `N passed, M failed` and exits
    /// non-zero on any failure.
    Scenario {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The routing filter module (default: $PORTICO_ROUTING_WASM, else the one `just build` makes).
        #[arg(long)]
        routing_wasm: Option<PathBuf>,
        /// Send to the Service's cluster instead of straight to a pod endpoint.
        #[arg(long)]
        cluster_mode: bool,
        /// Replace the served Ingresses by what `portico-controller convert` makes of them
        /// (Gateway API) and check the same requests; failures where the conversion declared a
        /// difference are reported as such.
        #[arg(long)]
        converted: bool,
        /// Print translate notes and each request's trace.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Explain how Portico routes one request over a directory of manifests: the virtual host,
    /// every route tried and why it failed, the one that matched, and what it does.
    Explain {
        /// Directory of Kubernetes manifests.
        #[arg(long)]
        manifests: PathBuf,
        /// The request: `METHOD URL`, e.g. `GET http://shop.example.com/cart?x=1`.
        #[arg(long)]
        request: String,
        /// A request header `name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The request as a sidecar sends it (mesh routing by the URL's port) rather than at the
        /// gateway listener.
        #[arg(long)]
        sidecar: bool,
        /// The client's address (for routes that match on it).
        #[arg(long)]
        source: Option<std::net::IpAddr>,
        /// The SNI of an `https://` request (default: the URL's host; `""`: none).
        #[arg(long)]
        sni: Option<String>,
        /// With `--sidecar`: the address the client connected to, `IP:PORT` (default: the
        /// URL's host when it is an address, and its port).
        #[arg(long)]
        destination: Option<std::net::SocketAddr>,
    },
    /// A local HTTP proxy: runs the filters on each request and forwards to the endpoint they
    /// chose; follows the manifests directory and reloads on change ("run host-runner locally").
    Serve {
        /// Address to listen on (loopback).
        #[arg(long, default_value = "127.0.0.1:18000")]
        listen: std::net::SocketAddr,
        /// Directory of Kubernetes manifests.
        #[arg(long)]
        manifests: PathBuf,
        /// The listener port whose routes to serve (80: Ingress; a Gateway listener's port).
        #[arg(long, default_value_t = 80)]
        port: u16,
        /// The routing filter module (default: $PORTICO_ROUTING_WASM, else the one `just build` makes).
        #[arg(long)]
        routing_wasm: Option<PathBuf>,
        /// How often to look for manifest changes, in milliseconds.
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
    /// Run one request (or one TCP connection) through one module and print every action it took.
    ///
    /// The module runs as Envoy runs an HTTP filter: the request goes through its request
    /// callbacks; if it continues, the upstream answers with --response-status,
    /// --response-header and --response-body; the response goes through its response callbacks.
    /// Envoy's connection manager adds `x-forwarded-proto` and `x-request-id` first, as Envoy does.
    ///
    /// Callouts: `--callout 'CLUSTER=STATUS[;NAME: VALUE]...[;body=TEXT]'` answers every HTTP
    /// callout to CLUSTER with that response (`body=` takes the rest of the argument, `;`
    /// included; `body=@FILE` reads a file; `content-length` is added). `CLUSTER=reset` makes
    /// the callout fail, as a reset or timeout does in Envoy (a callback with no headers and no
    /// body). `--grpc-callout 'CLUSTER=CODE[;MESSAGE]'` answers every unary gRPC call to CLUSTER:
    /// with status 0 and MESSAGE (the serialized response, possibly empty) it succeeds; any other
    /// code closes it with that status (0 without a message is INTERNAL (13), as in Envoy).
    /// A callout to a cluster with no answer stays pending and is listed.
    ///
    /// Example: host-runner call --module authz.wasm --request 'GET http://a.example.com/x' \
    ///   --callout 'ext-authz=200;x-user: ann;body={"allow": true}' --response-body 'hello'
    #[command(verbatim_doc_comment)]
    Call(Box<CallArgs>),
}

/// Parses `name: value`.
fn header_arg(flag: &str, h: &str) -> Result<(String, String), String> {
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| format!("{flag} {h:?}: expected `name: value`"))?;
    Ok((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
}

/// Parses a `--callout` answer: `CLUSTER=STATUS[;NAME: VALUE]...[;body=TEXT]` or `CLUSTER=reset`.
fn callout_arg(arg: &str) -> Result<(String, Response), String> {
    let bad = |why: &str| {
        format!("--callout {arg:?}: {why}; expected `CLUSTER=STATUS[;NAME: VALUE]...[;body=TEXT]` or `CLUSTER=reset`")
    };
    let (cluster, answer) = arg.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let cluster = cluster.trim();
    if cluster.is_empty() {
        return Err(bad("no cluster"));
    }
    if answer.trim() == "reset" {
        return Ok((cluster.to_owned(), Response::default()));
    }
    let (head, body) = match answer.find(";body=") {
        Some(i) => (&answer[..i], Some(&answer[i + 6..])),
        None => (answer, None),
    };
    let mut parts = head.split(';');
    let status: u16 = parts
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| bad("the status is not a number from 100 to 999"))?;
    let mut headers = Vec::new();
    for p in parts.filter(|p| !p.trim().is_empty()) {
        headers.push(
            header_arg("--callout", p).map_err(|_| bad(&format!("{p:?} is not `name: value`")))?,
        );
    }
    let body = match body {
        Some(b) if b.starts_with('@') => {
            std::fs::read(&b[1..]).map_err(|e| format!("--callout {arg:?}: {}: {e}", &b[1..]))?
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    Ok((
        cluster.to_owned(),
        Response {
            status,
            headers,
            body,
        },
    ))
}

/// Envoy's `x-request-id`: a random UUID (v4 layout).
fn request_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The `call` command's arguments.
#[derive(Debug, clap::Args)]
struct CallArgs {
    /// The module.
    #[arg(long)]
    module: PathBuf,
    /// Plugin configuration file (its bytes are the configuration).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Root id.
    #[arg(long, default_value = "")]
    root_id: String,
    /// The request: `METHOD URL`, e.g. `GET http://shop.example.com/cart?x=1`. Without it (and
    /// without --tcp) only the plugin starts (and --advance-ms runs its ticks).
    #[arg(long)]
    request: Option<String>,
    /// A request header `name: value` (repeatable, kept in order).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request body.
    #[arg(long)]
    body: Option<String>,
    /// Status of the response the upstream answers with (when the module forwards).
    #[arg(long, default_value_t = 200)]
    response_status: u16,
    /// A header of the upstream's response `name: value` (repeatable); `content-length` is
    /// added.
    #[arg(long = "response-header")]
    response_headers: Vec<String>,
    /// The upstream's response body.
    #[arg(long)]
    response_body: Option<String>,
    /// Answer HTTP callouts to a cluster: `CLUSTER=STATUS[;NAME: VALUE]...[;body=TEXT]` or
    /// `CLUSTER=reset` (repeatable; see above).
    #[arg(long = "callout", value_name = "CLUSTER=ANSWER")]
    callouts: Vec<String>,
    /// Answer unary gRPC calls to a cluster: `CLUSTER=CODE[;MESSAGE]` (repeatable).
    #[arg(long = "grpc-callout", value_name = "CLUSTER=CODE")]
    grpc_callouts: Vec<String>,
    /// A property the module can read, `PATH=VALUE`, the path's segments separated by `/`
    /// (e.g. `source/address=10.0.0.7:5000`, `metadata/filter_metadata/envoy.filters.http.lua/k=v`;
    /// repeatable). `source/address` defaults to 127.0.0.1:40000 and `destination/address` to
    /// 127.0.0.1 and the URL's port.
    #[arg(long = "property", value_name = "PATH=VALUE")]
    properties: Vec<String>,
    /// Move the VM's (virtual) clock this many milliseconds after the plugin starts, running
    /// the ticks that fall due, before the request.
    #[arg(long, default_value_t = 0)]
    advance_ms: u64,
    /// Run the module as a network (TCP) filter instead: one connection whose first bytes
    /// are this text; prints the filter state it set and whether it closed or paused.
    #[arg(long, value_name = "DATA", conflicts_with = "request")]
    tcp: Option<String>,
    /// Send the request this many times on the same worker (the module's VM and configuration
    /// reused, as on an Envoy worker); only the last one is printed. For counting instructions
    /// per request under `valgrind --tool=callgrind` (two runs, subtract).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    repeat: u32,
}

fn print_headers(headers: &[(String, String)]) {
    for (k, v) in headers {
        println!("  {k}: {v}");
    }
}

fn call(a: CallArgs) -> Result<bool, String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let module = &a.module;
    let bytes = std::fs::read(module).map_err(|e| format!("--module {}: {e}", module.display()))?;
    let compiled = runtime
        .compile(&bytes)
        .map_err(|e| format!("--module {}: {e}", module.display()))?;
    let configuration = match &a.config {
        Some(p) => std::fs::read(p).map_err(|e| format!("--config {}: {e}", p.display()))?,
        None => Vec::new(),
    };
    let request = match &a.request {
        Some(r) => {
            let (method, url) = r
                .split_once(' ')
                .ok_or("--request: expected `METHOD URL`, e.g. `GET http://a.example.com/`")?;
            let url = Url::parse(url.trim()).map_err(|e| format!("--request: {e}"))?;
            Some((method.to_owned(), url))
        }
        None => None,
    };
    let extra = a
        .headers
        .iter()
        .map(|h| header_arg("-H", h))
        .collect::<Result<Vec<_>, _>>()?;
    let response_headers = a
        .response_headers
        .iter()
        .map(|h| header_arg("--response-header", h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut answers = Answers::default();
    for c in &a.callouts {
        let (cluster, response) = callout_arg(c)?;
        answers.http.insert(cluster, response);
    }
    for c in &a.grpc_callouts {
        let bad = || format!("--grpc-callout {c:?}: expected `CLUSTER=CODE[;MESSAGE]`");
        let (cluster, answer) = c.split_once('=').ok_or_else(bad)?;
        let (code, message) = match answer.split_once(';') {
            Some((code, m)) => (code, Some(m.as_bytes().to_vec())),
            None => (answer, None),
        };
        let code: u32 = code.trim().parse().map_err(|_| bad())?;
        answers
            .grpc
            .insert(cluster.trim().to_owned(), (code, message));
    }
    let port = request.as_ref().map_or(80, |(_, u)| u.port);
    let mut properties: BTreeMap<Vec<String>, Vec<u8>> = BTreeMap::new();
    properties.insert(
        vec!["source".into(), "address".into()],
        b"127.0.0.1:40000".to_vec(),
    );
    properties.insert(
        vec!["destination".into(), "address".into()],
        format!("127.0.0.1:{port}").into_bytes(),
    );
    for p in &a.properties {
        let (path, value) = p
            .split_once('=')
            .ok_or_else(|| format!("--property {p:?}: expected `PATH=VALUE`"))?;
        properties.insert(
            path.split('/').map(str::to_owned).collect(),
            value.as_bytes().to_vec(),
        );
    }
    println!(
        "module {} (ABI {:?}), root id {:?}, {} bytes of configuration",
        module.display(),
        compiled.abi,
        a.root_id,
        configuration.len()
    );
    let spec = FilterSpec {
        name: module
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        module: compiled,
        code_id: "call".into(),
        vm_id: "call".into(),
        root_id: a.root_id.clone(),
        configuration,
        failure_policy: FailurePolicy::FailClosed,
    };
    let (network, http) = if a.tcp.is_some() {
        (vec![spec], vec![])
    } else {
        (vec![], vec![spec])
    };
    let mut worker = match Worker::with_chain(runtime.clone(), network, http) {
        Ok(w) => w,
        Err(e) => {
            println!("plugin start failed: {}", e.error);
            for l in &e.logs {
                println!("  [{}] {}", l.level, l.message);
            }
            return Ok(false);
        }
    };
    worker.connection = properties;
    worker.answers = answers;
    let mut trace = Vec::new();
    if a.advance_ms > 0 {
        let ticks = worker
            .advance_ms(0, a.advance_ms)
            .map_err(|e| format!("--advance-ms: {e}"))?;
        trace.push(format!("{} ms passed: {ticks} ticks", a.advance_ms));
    }
    let mut ok = true;
    if let Some(data) = &a.tcp {
        match worker.connect(data.as_bytes(), &mut trace) {
            Connected::Open {
                filter_state,
                contexts,
            } => {
                println!("connection: open");
                for (k, v) in &filter_state {
                    println!("  filter state {k} = {}", String::from_utf8_lossy(v));
                }
                worker.disconnect(&contexts);
            }
            Connected::Closed(f) => println!("connection: closed by {f}"),
            Connected::Paused(f) => println!("connection: paused by {f}"),
        }
    } else if let Some((method, url)) = &request {
        let host = extra
            .iter()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| url.authority());
        let mut request_headers = vec![
            (":authority".to_owned(), host),
            (":path".to_owned(), normalize_path(&url.path)),
            (":method".to_owned(), method.clone()),
            (":scheme".to_owned(), url.scheme.clone()),
        ];
        request_headers.extend(extra.iter().filter(|(k, _)| k != "host").cloned());
        // What Envoy's connection manager adds before the filters run.
        if !request_headers
            .iter()
            .any(|(k, _)| k == "x-forwarded-proto")
        {
            request_headers.push(("x-forwarded-proto".into(), url.scheme.clone()));
        }
        if !request_headers.iter().any(|(k, _)| k == "x-request-id") {
            request_headers.push(("x-request-id".into(), request_id()));
        }
        println!("request headers:");
        print_headers(&request_headers);
        let body = a.body.clone().unwrap_or_default().into_bytes();
        for _ in 1..a.repeat {
            let mut quiet = Vec::new();
            let (decoded, contexts) = worker.decode(request_headers.clone(), &body, &mut quiet);
            if matches!(decoded, Decoded::Forward(_)) {
                let response = Response {
                    status: a.response_status,
                    headers: vec![("content-length".into(), "0".into())],
                    body: Vec::new(),
                };
                worker.encode(response, &contexts, &mut quiet);
            }
        }
        let (decoded, contexts) = worker.decode(request_headers, &body, &mut trace);
        let response = match &decoded {
            Decoded::Forward(h) => {
                println!("decision: continue; request headers the router sees:");
                print_headers(h);
                if !worker.forwarded_body.is_empty() {
                    println!(
                        "request body the router sees: {:?}",
                        String::from_utf8_lossy(&worker.forwarded_body)
                    );
                }
                let body = a.response_body.clone().unwrap_or_default().into_bytes();
                let mut headers = response_headers.clone();
                if !headers.iter().any(|(k, _)| k == "content-length") {
                    headers.insert(0, ("content-length".into(), body.len().to_string()));
                }
                Response {
                    status: a.response_status,
                    headers,
                    body,
                }
            }
            Decoded::Reply { filter, response } => {
                println!(
                    "decision: local reply {} from {}",
                    response.status,
                    filter.as_deref().unwrap_or("the host")
                );
                response.clone()
            }
            Decoded::Reset(f) => {
                println!("decision: {f} reset the stream (the client sees its connection closed)");
                ok = false;
                Response::default()
            }
            Decoded::Paused(f) => {
                println!(
                    "decision: paused by {f} (a callout to answer? see --callout / --grpc-callout)"
                );
                ok = false;
                Response::default()
            }
        };
        let response = worker.encode(response, &contexts, &mut trace);
        println!("response: {}", response.status);
        print_headers(&response.headers);
        println!(
            "response body: {:?}",
            String::from_utf8_lossy(&response.body)
        );
    }
    println!("actions:");
    for t in &trace {
        println!("  {t}");
    }
    let state = worker.vm(0).state();
    println!(
        "foreign calls: {}",
        state
            .foreign_calls
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("pending http callouts: {}", state.http_calls.len());
    for c in &state.http_calls {
        println!(
            "  {} to {}: {} (no --callout for {})",
            c.token,
            c.upstream,
            c.headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            c.upstream
        );
    }
    println!(
        "pending grpc calls: {}",
        state
            .grpc_calls
            .iter()
            .filter(|c| !c.cancelled && !c.closed)
            .count()
    );
    println!("metrics:");
    for m in worker.runtime().shared().metrics() {
        println!("  {} ({:?}) = {}", m.name, m.kind, m.value);
    }
    println!("logs:");
    for l in &state.logs {
        println!("  [{}] {}", l.level, l.message);
    }
    Ok(ok)
}

fn explain(
    manifests: PathBuf,
    request: String,
    headers: Vec<String>,
    sidecar: bool,
    source: Option<std::net::IpAddr>,
    sni: Option<String>,
    destination: Option<std::net::SocketAddr>,
) -> Result<bool, String> {
    let loaded = portico_controller::source::load_dir(&manifests)
        .map_err(|e| format!("--manifests {}: {e}", manifests.display()))?;
    for e in &loaded.errors {
        println!("note: {e}");
    }
    let objects: Vec<_> = loaded.manifests.into_iter().map(|m| m.object).collect();
    let mut parsed = Vec::new();
    for h in &headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("-H {h:?}: expected `name: value`"))?;
        parsed.push((k.to_owned(), v.to_owned()));
    }
    let options = portico_controller::translate::Options {
        now: portico_controller::translate::options::now(),
        ..Default::default()
    };
    let question = portico_scenario::explain::Question {
        request,
        headers: parsed,
        sidecar,
        source,
        sni,
        destination,
    };
    let answer = portico_scenario::explain::explain(&objects, &options, &question)
        .map_err(|e| format!("--{e}"))?;
    for d in &answer.diagnostics {
        println!("note: {d}");
    }
    for step in &answer.steps {
        println!("{step}");
    }
    println!("verdict: {}", answer.verdict);
    Ok(true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenario {
            paths,
            routing_wasm,
            cluster_mode,
            converted,
            verbose,
        } => (|| {
            let runtime = Runtime::new().map_err(|e| e.to_string())?;
            let wasm = routing_wasm.unwrap_or_else(portico_scenario::routing_wasm);
            let modules = Modules::load(&runtime, &wasm)?;
            let forward = if cluster_mode {
                ForwardMode::Cluster
            } else {
                ForwardMode::Endpoint
            };
            let mut host = WasmHost::new(runtime, modules);
            let summary = run_paths(
                &mut host,
                &paths,
                &RunOptions {
                    verbose,
                    forward,
                    converted,
                },
            )?;
            Ok(summary.failed() == 0)
        })(),
        Command::Call(args) => call(*args),
        Command::Explain {
            manifests,
            request,
            headers,
            sidecar,
            source,
            sni,
            destination,
        } => explain(
            manifests,
            request,
            headers,
            sidecar,
            source,
            sni,
            destination,
        ),
        Command::Serve {
            listen,
            manifests,
            port,
            routing_wasm,
            interval_ms,
        } => {
            let wasm = routing_wasm.unwrap_or_else(portico_scenario::routing_wasm);
            let interval = std::time::Duration::from_millis(interval_ms.max(10));
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(serve::serve(listen, port, manifests, wasm, interval)))
                .map(|()| true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
