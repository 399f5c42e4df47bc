//! The echo backend: answers every request with a JSON [`Echo`] of what it received, so a test
//! can tell which endpoint served a request and what reached it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

use portico_scenario::format::Echo;

pub use portico_scenario::ECHO_HEADER;

/// Echo servers, one per address; stopped on drop.
#[derive(Debug)]
pub struct EchoServers {
    tasks: Vec<JoinHandle<()>>,
    /// Every request received, in arrival order.
    pub hits: Arc<Mutex<Vec<Echo>>>,
}

impl Drop for EchoServers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn answer(endpoint: SocketAddr, req: &hyper::Request<Incoming>) -> Echo {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    Echo {
        endpoint: endpoint.to_string(),
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        host,
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    }
}

/// Starts an echo server on each address.
///
/// # Errors
/// An address that cannot be bound (named in the message).
pub async fn start(addrs: impl IntoIterator<Item = SocketAddr>) -> Result<EchoServers, String> {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for addr in addrs {
        let socket = TcpSocket::new_v4().map_err(|e| format!("echo {addr}: {e}"))?;
        socket
            .set_reuseaddr(true)
            .map_err(|e| format!("echo {addr}: {e}"))?;
        socket
            .bind(addr)
            .map_err(|e| format!("echo server: cannot bind {addr}: {e}"))?;
        let listener = socket
            .listen(256)
            .map_err(|e| format!("echo {addr}: {e}"))?;
        let hits = hits.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let hits = hits.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let echo = answer(addr, &req);
                        if let Ok(mut h) = hits.lock() {
                            h.push(echo.clone());
                        }
                        async move {
                            let body = serde_json::to_vec(&echo).unwrap_or_default();
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/json")
                                .header(ECHO_HEADER, addr.to_string())
                                .body(Full::new(Bytes::from(body)))
                                .unwrap_or_default();
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }
    Ok(EchoServers { tasks, hits })
}
