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
    /// Speak TLS first: what the client offers, and how to name the served certificate.
    pub tls: Option<ClientTls>,
}

/// A TLS client's offer.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// SNI (`None`: send none).
    pub sni: Option<String>,
    /// Highest version offered.
    pub max_version: portico_core::tls::select::TlsVersion,
    /// Leaf DER → the names scenarios use for it.
    pub names: std::sync::Arc<std::collections::BTreeMap<Vec<u8>, Vec<String>>>,
    /// A raw TLS request (`protocol: tls`): stop after the handshake, unless a passthrough
    /// backend answered it (then the request inside tells which backend it was).
    pub handshake_only: bool,
    /// The certificate to present when asked.
    pub client: Option<portico_scenario::prepare::ClientIdentity>,
}

/// Accepts any server certificate: the harness names what was served instead of trusting it.
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Handshakes over `stream` as `tls` says; returns the TLS stream and the served certificate's
/// names, or how the connection ended (`closed`).
async fn handshake(
    stream: tokio::net::TcpStream,
    tls: &ClientTls,
    http2: bool,
) -> Result<
    (
        tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        Vec<String>,
    ),
    Observed,
> {
    use portico_core::tls::select::TlsVersion;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.max_version {
        TlsVersion::V1_3 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_2 => &[&rustls::version::TLS12],
        // rustls offers nothing older: a TLS 1.0/1.1 client is a hand-made ClientHello.
        TlsVersion::V1_0 | TlsVersion::V1_1 => return Err(old_hello(stream, tls).await),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| Observed::ended("closed", format!("client config: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)));
    let mut config = match &tls.client {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            use rustls::pki_types::pem::PemObject;
            let chain =
                rustls::pki_types::CertificateDer::pem_slice_iter(identity.chain_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Observed::ended("closed", format!("client certificate: {e}")))?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
                .map_err(|e| Observed::ended("closed", format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Observed::ended("closed", format!("client certificate: {e}")))?
        }
    };
    config.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let name = match &tls.sni {
        Some(sni) => match rustls::pki_types::ServerName::try_from(sni.clone()) {
            Ok(n) => n,
            Err(e) => return Err(Observed::ended("closed", format!("SNI {sni:?}: {e}"))),
        },
        None => {
            config.enable_sni = false;
            rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
        }
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let stream = connector
        .connect(name, stream)
        .await
        .map_err(|e| Observed::ended("closed", format!("TLS handshake: {e}")))?;
    let names = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|leaf| {
            tls.names
                .get(leaf.as_ref())
                .cloned()
                .unwrap_or_else(|| vec![format!("unknown certificate ({} bytes)", leaf.len())])
        })
        .unwrap_or_default();
    Ok((stream, names))
}

/// A TLS 1.0/1.1-only ClientHello (no `supported_versions`), written by hand since rustls
/// offers nothing older than 1.2: a proxy that requires 1.2 answers with an alert or closes.
async fn old_hello(mut stream: tokio::net::TcpStream, tls: &ClientTls) -> Observed {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let record = portico_scenario::tls::old_client_hello(&portico_scenario::prepare::ClientTls {
        sni: tls.sni.clone(),
        max_version: tls.max_version,
        client: None,
    });
    if let Err(e) = stream.write_all(&record).await {
        return Observed::ended("closed", format!("sending a TLS 1.x ClientHello: {e}"));
    }
    let mut reply = [0u8; 5];
    match stream.read_exact(&mut reply).await {
        Ok(_) if reply[0] == 22 => Observed {
            error: Some(
                "the proxy answered a TLS 1.0/1.1-only ClientHello with a ServerHello".into(),
            ),
            ..Observed::default()
        },
        Ok(_) => Observed::ended(
            "closed",
            format!("TLS alert {:?} to a TLS ≤ 1.1 ClientHello", reply),
        ),
        Err(e) => Observed::ended("closed", format!("closed on a TLS ≤ 1.1 ClientHello: {e}")),
    }
}

/// How far an exchange got: named in the error when it runs out of time.
#[derive(Debug, Default)]
struct Progress(std::sync::atomic::AtomicU8);

impl Progress {
    const STAGES: [&'static str; 5] = [
        "connecting",
        "writing the PROXY header",
        "in the TLS handshake",
        "sending the request or waiting for the response head",
        "reading the response body",
    ];

    fn at(&self, stage: usize) {
        self.0
            .store(stage as u8, std::sync::atomic::Ordering::Relaxed);
    }

    fn name(&self) -> &'static str {
        Self::STAGES[usize::from(self.0.load(std::sync::atomic::Ordering::Relaxed))]
    }
}

/// The prefix of [`Observed::error`] when an exchange ran out of time.
pub const TIMED_OUT: &str = "no response within";

/// Sends one request and reports what came back; never fails, errors are in [`Observed::error`].
pub async fn send(out: &Outgoing) -> Observed {
    let progress = Progress::default();
    match tokio::time::timeout(out.timeout, exchange(out, &progress)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Observed {
            error: Some(e),
            ..Observed::default()
        },
        Err(_) => Observed {
            error: Some(format!(
                "{TIMED_OUT} {:?} (stalled {})",
                out.timeout,
                progress.name()
            )),
            ..Observed::default()
        },
    }
}

async fn exchange(out: &Outgoing, progress: &Progress) -> Result<Observed, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(ip) = out.source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let mut stream = match socket.connect(out.target).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Ok(Observed::ended(
                "refused",
                format!("connect {}: {e}", out.target),
            ))
        }
        Err(e) => return Err(format!("connect {}: {e}", out.target)),
    };
    if let Some(dst) = out.proxy_destination {
        use tokio::io::AsyncWriteExt;
        progress.at(1);
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
    let Some(tls) = &out.tls else {
        return respond(out, TokioIo::new(stream), request, None, progress).await;
    };
    progress.at(2);
    match handshake(stream, tls, out.http2).await {
        Err(ended) => Ok(ended),
        Ok((_, names))
            if tls.handshake_only
                && !names
                    .iter()
                    .any(|n| n == portico_scenario::tls::BACKEND_CERTIFICATE) =>
        {
            Ok(Observed {
                certificate: Some(names),
                ..Observed::default()
            })
        }
        Ok((stream, names)) => {
            respond(out, TokioIo::new(stream), request, Some(names), progress).await
        }
    }
}

/// Sends the request over an open connection (plain or TLS) and reads the answer. A connection
/// closed before any answer is `closed`.
async fn respond<T>(
    out: &Outgoing,
    io: TokioIo<T>,
    request: hyper::Request<Full<Bytes>>,
    certificate: Option<Vec<String>>,
    progress: &Progress,
) -> Result<Observed, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let closed = |e: &dyn std::fmt::Display| {
        let mut o = Observed::ended("closed", e.to_string());
        o.certificate = certificate.clone();
        o
    };
    progress.at(3);
    let response = if out.http2 {
        let (mut sender, conn) =
            match hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await {
                Ok(h) => h,
                Err(e) => return Ok(closed(&format!("h2 handshake: {e}"))),
            };
        tokio::spawn(conn);
        match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => return Ok(closed(&e)),
        }
    } else {
        let (mut sender, conn) = match hyper::client::conn::http1::handshake(io).await {
            Ok(h) => h,
            Err(e) => return Ok(closed(&format!("handshake: {e}"))),
        };
        tokio::spawn(conn);
        match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => return Ok(closed(&e)),
        }
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
    progress.at(4);
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
        certificate,
        connection: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(target: SocketAddr) -> Outgoing {
        Outgoing {
            target,
            source: None,
            method: "GET".into(),
            authority: "stall.example".into(),
            path: "/".into(),
            headers: BTreeMap::new(),
            http2: false,
            timeout: Duration::from_millis(300),
            proxy_destination: None,
            tls: None,
        }
    }

    #[tokio::test]
    async fn a_stall_names_how_far_the_exchange_got() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        // Accepts and reads, never answers.
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            while tokio::io::AsyncReadExt::read(&mut s, &mut buf)
                .await
                .is_ok_and(|n| n > 0)
            {}
        });
        let o = send(&outgoing(target)).await;
        let error = o.error.expect("a stalled exchange is an error");
        assert!(error.starts_with(TIMED_OUT), "{error}");
        assert!(
            error.ends_with("(stalled sending the request or waiting for the response head)"),
            "{error}"
        );
        server.abort();
    }
}
