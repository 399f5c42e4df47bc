//! The test client: one request on a fresh connection to a loopback listener, with the Host
//! header (or `:authority`) of the scenario's URL, from an optional source address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpSocket;

use crate::echo::ECHO_HEADER;
use portico_scenario::format::{Echo, Observed};

/// One request to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Where to connect.
    pub target: SocketAddr,
    /// Bind the client here first.
    pub source: Option<IpAddr>,
    /// Method.
    pub method: String,
    /// Host header / `:authority`.
    pub authority: String,
    /// Path and query.
    pub path: String,
    /// Extra headers (a `host` entry is skipped: `authority` carries it).
    pub headers: BTreeMap<String, String>,
    /// Speak HTTP/2 (prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
    /// Give up after this long.
    pub timeout: Duration,
    /// Open with a PROXY protocol (v1) header naming this destination: how a sidecar learns
    /// where the client was going, in place of the iptables redirect.
    pub proxy_destination: Option<SocketAddr>,
}

/// Sends one request and reports what came back; never fails, errors are in [`Observed::error`].
pub async fn send(out: &Outgoing) -> Observed {
    match tokio::time::timeout(out.timeout, exchange(out)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Observed {
            error: Some(e),
            ..Observed::default()
        },
        Err(_) => Observed {
            error: Some(format!("no response within {:?}", out.timeout)),
            ..Observed::default()
        },
    }
}

async fn exchange(out: &Outgoing) -> Result<Observed, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(ip) = out.source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let mut stream = socket
        .connect(out.target)
        .await
        .map_err(|e| format!("connect {}: {e}", out.target))?;
    if let Some(dst) = out.proxy_destination {
        use tokio::io::AsyncWriteExt;
        let src = stream.local_addr().map_err(|e| e.to_string())?;
        let header = format!(
            "PROXY TCP4 {} {} {} {}\r\n",
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port()
        );
        stream
            .write_all(header.as_bytes())
            .await
            .map_err(|e| format!("PROXY header: {e}"))?;
    }
    let authority = out.authority.clone();
    let uri = if out.http2 {
        format!("http://{authority}{}", out.path)
    } else {
        out.path.clone()
    };
    let mut builder = hyper::Request::builder()
        .method(out.method.as_str())
        .uri(uri);
    if !out.http2 {
        builder = builder.header(hyper::header::HOST, authority.as_str());
    }
    for (k, v) in &out.headers {
        if !k.eq_ignore_ascii_case("host") {
            builder = builder.header(k.as_str(), v.as_str());
        }
    }
    let request = builder
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad request: {e}"))?;
    let io = TokioIo::new(stream);
    let response = if out.http2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(conn);
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(conn);
        sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?
    };
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let from_echo = response.headers().contains_key(ECHO_HEADER);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes()
        .to_vec();
    let echo = if from_echo {
        serde_json::from_slice::<Echo>(&body).ok()
    } else {
        None
    };
    Ok(Observed {
        status: Some(status),
        headers,
        body,
        echo,
        error: None,
        mirrored: Vec::new(),
    })
}
