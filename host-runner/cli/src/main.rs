//! `host-runner`: run proxy-wasm modules without Envoy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portico_core::config::ForwardMode;
use portico_host_runner::envoy::{
    normalize_path, Decoded, FailurePolicy, FilterSpec, Response, Worker,
};
use portico_host_runner::Runtime;
use portico_scenario::format::Url;
use portico_scenario::prepare::authority as request_authority;
use portico_scenario::{run_paths, RunOptions};

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
    /// Run one request through one module and print every action it took.
    Call {
        /// The module.
        #[arg(long)]
        module: PathBuf,
        /// Plugin configuration file (its bytes are the configuration).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Root id.
        #[arg(long, default_value = "")]
        root_id: String,
        /// The request: `METHOD URL`, e.g. `GET http://shop.example.com/cart?x=1`.
        #[arg(long)]
        request: String,
        /// A request header `name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// Status of the response the upstream answers with (when the module forwards).
        #[arg(long, default_value_t = 200)]
        response_status: u16,
    },
}

fn call(
    module: PathBuf,
    config: Option<PathBuf>,
    root_id: String,
    request: String,
    headers: Vec<String>,
    response_status: u16,
) -> Result<bool, String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let bytes =
        std::fs::read(&module).map_err(|e| format!("--module {}: {e}", module.display()))?;
    let compiled = runtime
        .compile(&bytes)
        .map_err(|e| format!("--module {}: {e}", module.display()))?;
    let configuration = match &config {
        Some(p) => std::fs::read(p).map_err(|e| format!("--config {}: {e}", p.display()))?,
        None => Vec::new(),
    };
    let (method, url) = request
        .split_once(' ')
        .ok_or("--request: expected `METHOD URL`, e.g. `GET http://a.example.com/`")?;
    let url = Url::parse(url.trim()).map_err(|e| format!("--request: {e}"))?;
    let mut extra = BTreeMap::new();
    for h in &headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("-H {h:?}: expected `name: value`"))?;
        extra.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    println!(
        "module {} (ABI {:?}), root id {root_id:?}, {} bytes of configuration",
        module.display(),
        compiled.abi,
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
        root_id,
        configuration,
        failure_policy: FailurePolicy::FailClosed,
    };
    let mut worker = match Worker::new(runtime.clone(), vec![spec]) {
        Ok(w) => w,
        Err(e) => {
            println!("plugin start failed: {}", e.error);
            for l in &e.logs {
                println!("  [{}] {}", l.level, l.message);
            }
            return Ok(false);
        }
    };
    let authority = request_authority(&url, &extra);
    let mut request_headers = vec![
        (":authority".to_owned(), authority),
        (":path".to_owned(), normalize_path(&url.path)),
        (":method".to_owned(), method.to_owned()),
        (":scheme".to_owned(), url.scheme.clone()),
    ];
    request_headers.extend(extra.into_iter().filter(|(k, _)| k != "host"));
    println!("request headers:");
    for (k, v) in &request_headers {
        println!("  {k}: {v}");
    }
    let mut trace = Vec::new();
    let (decoded, contexts) = worker.decode(request_headers, b"", &mut trace);
    let response = match &decoded {
        Decoded::Forward(h) => {
            println!("decision: continue; request headers the router sees:");
            for (k, v) in h {
                println!("  {k}: {v}");
            }
            Response {
                status: response_status,
                headers: vec![("content-length".into(), "0".into())],
                body: vec![],
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
        Decoded::Paused(f) => {
            println!("decision: paused by {f}");
            Response {
                status: 0,
                headers: vec![],
                body: vec![],
            }
        }
    };
    let response = worker.encode(response, &contexts, &mut trace);
    println!("actions:");
    for t in &trace {
        println!("  {t}");
    }
    println!(
        "response: {} {:?}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    for (k, v) in &response.headers {
        println!("  {k}: {v}");
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
    println!("http callouts: {}", state.http_calls.len());
    println!("metrics:");
    for m in worker.runtime().shared().metrics() {
        println!("  {} ({:?}) = {}", m.name, m.kind, m.value);
    }
    println!("logs:");
    for l in &state.logs {
        println!("  [{}] {}", l.level, l.message);
    }
    Ok(true)
}

fn explain(
    manifests: PathBuf,
    request: String,
    headers: Vec<String>,
    sidecar: bool,
    source: Option<std::net::IpAddr>,
) -> Result<bool, String> {
    let loaded = portico_controller::source::load_dir(&manifests)
        .map_err(|e| format!("--manifests {}: {e}", manifests.display()))?;
    for e in &loaded.errors {
        println!("note: {e}");
    }
    let objects: Vec<_> = loaded.manifests.into_iter().map(|m| m.object).collect();
    let options = portico_controller::translate::Options {
        mesh: sidecar,
        ..Default::default()
    };
    let translation = portico_controller::translate::translate(&objects, &options);
    for e in &translation.errors {
        println!("note: {e}");
    }
    let (method, url) = request
        .split_once(' ')
        .ok_or("--request: expected `METHOD URL`, e.g. `GET http://a.example.com/`")?;
    let url = Url::parse(url.trim()).map_err(|e| format!("--request: {e}"))?;
    let mut extra = BTreeMap::new();
    for h in &headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("-H {h:?}: expected `name: value`"))?;
        extra.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let config = if sidecar {
        translation.snapshot.sidecar_routing(url.port)
    } else {
        translation.snapshot.routing(url.port)
    };
    let Some(config) = config else {
        println!(
            "no {} on port {}",
            if sidecar { "sidecar route" } else { "listener" },
            url.port
        );
        return Ok(false);
    };
    let authority = request_authority(&url, &extra);
    let headers: Vec<(String, String)> = extra.into_iter().collect();
    for line in scenario::explain(config, method, &authority, &url.path, &headers, source) {
        println!("{line}");
    }
    Ok(true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scenario {
            paths,
            routing_wasm,
            cluster_mode,
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
            let summary = run_paths(&mut host, &paths, &RunOptions { verbose, forward })?;
            Ok(summary.failed() == 0)
        })(),
        Command::Call {
            module,
            config,
            root_id,
            request,
            headers,
            response_status,
        } => call(module, config, root_id, request, headers, response_status),
        Command::Explain {
            manifests,
            request,
            headers,
            sidecar,
            source,
        } => explain(manifests, request, headers, sidecar, source),
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
