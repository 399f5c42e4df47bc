//! `host-runner serve`: a real local HTTP/1.1 proxy that runs Portico's filters on each request
//! and forwards to the endpoint they chose — Envoy's job, on a laptop, with the same `.wasm`.
//! It follows a manifests directory: every change is translated and swapped in; a bad edit keeps
//! the last good configuration (as `portico-controller run` does).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use portico_controller::envoy::RenderOptions;
use portico_controller::reconcile::Reporter;
use portico_controller::translate::{Options, Snapshot};
use portico_controller::DirController;

use portico_core::config::CLUSTER_HEADER;
use portico_host_runner::envoy::{
    connect_failure, normalize_path, Decoded, Response, Routed, Upstreams, Worker,
};
use portico_host_runner::state::lock;

use crate::framing::{Verdicts, Watched};
use portico_host_runner::{Module, Runtime};

/// Largest request or response body the proxy buffers.
const MAX_BODY: usize = 8 << 20;

/// One configuration generation: the chain and the router over it.
struct Generation {
    worker: Mutex<Worker>,
    upstreams: Mutex<Upstreams>,
}

type Current = Arc<Mutex<Arc<Generation>>>;

/// The chain for the listener on `port` (an empty configuration when the snapshot has none).
fn generation(
    runtime: &Runtime,
    module: &Module,
    snapshot: &Snapshot,
    port: u16,
) -> Result<Generation, String> {
    let empty = portico_core::config::RoutingConfig::for_listener(port, Default::default());
    let spec = crate::scenario::routing_filter(module, snapshot.routing(port).unwrap_or(&empty));
    let worker = Worker::new(runtime.clone(), vec![spec]).map_err(|e| e.to_string())?;
    let clusters = snapshot
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c.endpoints.clone()))
        .collect();
    Ok(Generation {
        worker: Mutex::new(worker),
        upstreams: Mutex::new(
            Upstreams::new(clusters, BTreeSet::new()).with_cluster_header(CLUSTER_HEADER),
        ),
    })
}

fn to_hyper(r: Response) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder().status(r.status);
    for (k, v) in &r.headers {
        if !k.starts_with(':') && k != "content-length" && k != "transfer-encoding" {
            b = b.header(k.as_str(), v.as_str());
        }
    }
    b.header("server", "host-runner")
        .body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| {
            hyper::Response::new(Full::new(Bytes::from_static(b"bad response from filter\n")))
        })
}

async fn forward(endpoint: &str, headers: &[(String, String)], body: Vec<u8>) -> Response {
    let Ok(addr) = endpoint.parse::<SocketAddr>() else {
        return connect_failure();
    };
    let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await
    else {
        return connect_failure();
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return connect_failure();
    };
    tokio::spawn(conn);
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let mut b = hyper::Request::builder()
        .method(get(":method"))
        .uri(get(":path"))
        .header("host", get(":authority"));
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.starts_with(':') && k != "host")
    {
        b = b.header(k.as_str(), v.as_str());
    }
    let Ok(req) = b.body(Full::new(Bytes::from(body))) else {
        return connect_failure();
    };
    let Ok(Ok(resp)) =
        tokio::time::timeout(Duration::from_secs(30), sender.send_request(req)).await
    else {
        return Response {
            status: 504,
            headers: vec![],
            body: b"upstream request timeout".to_vec(),
        };
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    Response {
        status,
        headers,
        body,
    }
}

/// What Envoy's HTTP/1 connection manager answers itself, before any filter, with the settings
/// Portico renders (measured, `tests/edge_requests.rs`): HTTP/1.0 → 426 (`accept_http_10` off);
/// HTTP/1.1 without Host → 400; `CONNECT` → 404 (no route takes it). (`Content-Length` with
/// `Transfer-Encoding` → 400 is found in the raw head: hyper drops one of them.)
fn envoy_refuses(req: &hyper::Request<Incoming>) -> Option<u16> {
    if req.version() < hyper::Version::HTTP_11 {
        return Some(426);
    }
    let h = req.headers();
    if req.uri().authority().is_none() && !h.contains_key(hyper::header::HOST) {
        return Some(400);
    }
    if req.method() == hyper::Method::CONNECT {
        return Some(404);
    }
    None
}

async fn handle(
    current: Current,
    peer: SocketAddr,
    local: SocketAddr,
    req: hyper::Request<Incoming>,
    both_lengths: bool,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let generation = lock(&current).clone();
    if both_lengths {
        let mut response = hyper::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        return Ok(response);
    }
    if let Some(status) = envoy_refuses(&req) {
        return Ok(to_hyper(Response {
            status,
            headers: vec![],
            body: Vec::new(),
        }));
    }
    // Envoy's `:authority`: an absolute-form target's authority, else the Host header (several
    // joined with `,`, as Envoy joins repeated headers).
    let hosts: Vec<String> = req
        .headers()
        .get_all(hyper::header::HOST)
        .iter()
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .collect();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| hosts.join(","));
    let mut headers = vec![
        (":authority".to_owned(), authority),
        (
            ":path".to_owned(),
            normalize_path(req.uri().path_and_query().map_or("/", |p| p.as_str())),
        ),
        (":method".to_owned(), req.method().to_string()),
        (":scheme".to_owned(), "http".to_owned()),
    ];
    for (k, v) in req
        .headers()
        .iter()
        .filter(|(k, _)| *k != hyper::header::HOST)
    {
        headers.push((
            k.as_str().to_owned(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    headers.push(("x-forwarded-for".into(), peer.ip().to_string()));
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            return Ok(to_hyper(Response {
                status: 413,
                headers: vec![],
                body: b"payload too large\n".to_vec(),
            }))
        }
    };
    let mut trace = Vec::new();
    let (decoded, contexts) = {
        let mut worker = lock(&generation.worker);
        let prop = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
        worker.connection = std::collections::BTreeMap::from([
            (prop("source", "address"), peer.to_string().into_bytes()),
            (
                prop("source", "port"),
                i64::from(peer.port()).to_le_bytes().to_vec(),
            ),
            (
                prop("destination", "address"),
                local.to_string().into_bytes(),
            ),
            (
                prop("destination", "port"),
                i64::from(local.port()).to_le_bytes().to_vec(),
            ),
        ]);
        worker.decode(headers, &body, &mut trace)
    };
    let response = match decoded {
        Decoded::Reply { response, .. } => response,
        // No response: hyper closes the connection, as Envoy does on HTTP/1.1.
        Decoded::Reset(f) => {
            return Err(std::io::Error::other(format!(
                "filter {f} reset the stream"
            )))
        }
        Decoded::Paused(f) => Response {
            status: 500,
            headers: vec![],
            body: format!("filter {f} paused the request\n").into_bytes(),
        },
        Decoded::Forward(headers) => {
            let steer = lock(&generation.worker).steering(&contexts);
            let routed = lock(&generation.upstreams).pick(&headers, steer.as_deref());
            match routed {
                Routed::Reply(r) => r,
                Routed::Endpoint(e) => forward(&e, &headers, body).await,
            }
        }
    };
    let response = lock(&generation.worker).encode(response, &contexts, &mut trace);
    Ok(to_hyper(response))
}

/// Serves until Ctrl-C.
///
/// # Errors
/// The listener cannot be bound, or the module cannot be loaded.
pub async fn serve(
    listen: SocketAddr,
    port: u16,
    manifests: PathBuf,
    routing_wasm: PathBuf,
    interval: Duration,
) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&routing_wasm)
        .map_err(|e| format!("{}: {e} (run `just build`)", routing_wasm.display()))?;
    let module = runtime
        .compile(&bytes)
        .map_err(|e| format!("{}: {e}", routing_wasm.display()))?;
    // The controller's directory sync, for its last-good handling; its xDS files are not used.
    // Removed however `serve` ends: Ctrl-C, SIGTERM or an error.
    let scratch_dir =
        Scratch(std::env::temp_dir().join(format!("host-runner-serve-{}", std::process::id())));
    let scratch = scratch_dir.0.clone();
    let render = RenderOptions {
        routing_wasm: routing_wasm.clone(),
        xds_dir: scratch.clone(),
        listen_address: listen.ip().to_string(),
        admin_port: 0,
        port_map: Default::default(),
        sidecar_port: None,
    };
    let mut controller =
        DirController::new(manifests.clone(), Options::default(), render).settling();
    let report = controller
        .sync()
        .map_err(|e| format!("{}: {e}", manifests.display()))?;
    // The same lines as `portico-controller run`: each change of the problems, and recovery.
    let mut reporter = Reporter::default();
    reporter.print(&report);
    let snapshot = report.snapshot.ok_or("no snapshot")?;
    let mut generation_id = snapshot.generation.clone();
    let current: Current = Arc::new(Mutex::new(Arc::new(generation(
        &runtime, &module, &snapshot, port,
    )?)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("--listen {listen}: {e}"))?;
    println!(
        "host-runner serving {} on http://{listen} (generation {generation_id}); Ctrl-C stops",
        manifests.display()
    );

    let watcher = current.clone();
    let watch = tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let report = match controller.sync() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    continue;
                }
            };
            reporter.print(&report);
            let Some(snapshot) = report.snapshot else {
                continue;
            };
            if snapshot.generation == generation_id {
                continue;
            }
            match generation(&runtime, &module, &snapshot, port) {
                Ok(g) => {
                    *lock(&watcher) = Arc::new(g);
                    generation_id = snapshot.generation.clone();
                    println!("reloaded: generation {generation_id}");
                }
                Err(e) => {
                    eprintln!("error: new configuration refused, keeping the last good one: {e}")
                }
            }
        }
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let current = current.clone();
                tokio::spawn(async move {
                    // Which requests carried both Content-Length and Transfer-Encoding: hyper
                    // drops the first and goes on; Envoy answers 400 (see framing.rs).
                    let verdicts = Verdicts::default();
                    let io = TokioIo::new(Watched::new(stream, verdicts.clone()));
                    let service = service_fn(move |req| {
                        let current = current.clone();
                        let both_lengths = lock(&verdicts).pop_front().unwrap_or(false);
                        async move { handle(current, peer, listen, req, both_lengths).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        }
    }
    watch.abort();
    drop(scratch_dir);
    Ok(())
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
