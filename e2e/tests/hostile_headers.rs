//! Header bytes that are not UTF-8, on a real Envoy: HTTP/1.1 allows `obs-text` (0x80–0xFF) in
//! a field value (RFC 9110 §5.5) and Envoy passes such a value to the filters as it came. The
//! routing filter must route the request as any other — not abort its VM (the proxy-wasm SDK's
//! own header reads panic on such bytes) — and the next requests must be served as before.

use std::net::SocketAddr;
use std::time::Duration;

use portico_e2e::fixture::{shop, static_bootstrap, write_bootstrap};
use portico_e2e::proxy::{free_ports, Envoy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` as raw bytes and returns the response's status line and headers.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer within 5 s");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_values_that_are_not_utf8_are_routed_and_nothing_aborts() {
    let work = tempfile::tempdir().unwrap();
    let port = free_ports(1).unwrap()[0];
    let _echo = portico_e2e::echo::start(["127.0.46.1:8080".parse().unwrap()])
        .await
        .unwrap();
    let bootstrap = static_bootstrap(&shop("127.0.46.1"), work.path(), port);
    let path = work.path().join("envoy.yaml");
    write_bootstrap(&bootstrap, &path);
    let envoy = Envoy::start(
        &path,
        work.path(),
        &[SocketAddr::from(([127, 0, 0, 1], port))],
    )
    .unwrap();

    let plain = b"GET / HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n\r\n";
    // (Envoy itself answers 400 to a Host that is not UTF-8: only other headers reach filters.)
    let hostile = b"GET / HTTP/1.1\r\nhost: shop.example.com\r\nx-latin1: caf\xe9\r\nx-bytes: \x80\xff\xfe\r\nconnection: close\r\n\r\n";
    for round in 0..3 {
        let answer = raw(port, hostile).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: the request with non-UTF-8 header bytes was not routed:\n{answer}\n{}",
            envoy.log_text()
        );
        assert!(answer.contains("127.0.46.1:8080"), "{answer}");
        let answer = raw(port, plain).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}:\n{answer}"
        );
    }
    let log = envoy.log_text();
    assert!(!log.contains("panicked"), "a filter panicked:\n{log}");
    assert_eq!(
        envoy.stat("wasmcustom.portico_routing_forwarded_total"),
        6,
        "{log}"
    );
}
