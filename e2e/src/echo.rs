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

/// The key pair an echo backend serves when a client speaks TLS to it (a TLS passthrough
/// backend terminates TLS itself): generated once per process.
pub fn backend_certificate() -> Option<&'static (Vec<u8>, Arc<rustls::ServerConfig>)> {
    static CERT: std::sync::OnceLock<Option<(Vec<u8>, Arc<rustls::ServerConfig>)>> =
        std::sync::OnceLock::new();
    CERT.get_or_init(|| {
        let generated =
            rcgen::generate_simple_self_signed(vec!["backend.portico.test".into()]).ok()?;
        let der = generated.cert.der().to_vec();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_no_client_auth()
            .with_single_cert(vec![der.clone().into()], key)
            .ok()?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some((der, Arc::new(config)))
    })
    .as_ref()
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
                    // A client that starts with a TLS record gets TLS (a passthrough backend).
                    let mut first = [0u8; 1];
                    let tls = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 22);
                    match (tls, backend_certificate()) {
                        (true, Some((_, config))) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(tls), service)
                                    .await;
                            }
                        }
                        _ => {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        }));
    }
    Ok(EchoServers { tasks, hits })
}
