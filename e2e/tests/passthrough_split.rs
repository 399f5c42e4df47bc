//! The tls network filter in a real Envoy when the ClientHello arrives in pieces: the filter
//! waits for the rest (tcp_proxy connects on downstream data), then sends the connection to the
//! backend its SNI names; bytes that are not TLS are closed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use portico_controller::envoy::{render, RenderOptions, BOOTSTRAP};
use portico_controller::sink::FileSink;
use portico_controller::source::documents;
use portico_controller::translate::{translate, Options};
use portico_core::tls::select::TlsVersion;
use portico_e2e::proxy::{free_ports, routing_wasm, Envoy};
use portico_scenario::prepare::ClientTls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OBJECTS: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: pt, namespace: default}
spec:
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*.example.com"]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pt, namespace: default}
spec:
  hosts: ["*.example.com"]
  gateways: [pt]
  tls:
  - match: [{sniHosts: [split.example.com]}]
    route: [{destination: {host: backend, port: {number: 443}}}]
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec: {ports: [{name: https, port: 443}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: backend-1, namespace: default, labels: {kubernetes.io/service-name: backend}}
addressType: IPv4
endpoints: [{addresses: ["127.0.46.1"]}]
ports: [{name: https, port: 8443}]
"#;

/// Sends `parts` with a pause between them, then reads what comes back (or how it ended).
async fn exchange(listener: SocketAddr, parts: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut s = tokio::net::TcpStream::connect(listener)
        .await
        .map_err(|e| e.to_string())?;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        s.write_all(p).await.map_err(|e| e.to_string())?;
    }
    let mut buf = vec![0u8; 5];
    match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Ok(buf),
        Ok(Err(e)) => Err(format!("closed: {e}")),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_in_pieces_reaches_its_backend() {
    let objects: Vec<_> = documents(OBJECTS)
        .unwrap()
        .into_iter()
        .map(|v| portico_controller::objects::Object::from_value(v).unwrap())
        .collect();
    let snapshot = translate(&objects, &Options::default()).snapshot;
    let work = tempfile::tempdir().unwrap();
    let port = free_ports(1).unwrap()[0];
    let options = RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: work.path().join("xds"),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::from([(443, port)]),
        sidecar_port: None,
    };
    FileSink::new(options.xds_dir.clone())
        .write(&render(&snapshot, &options))
        .unwrap();
    let _echo = portico_e2e::echo::start(["127.0.46.1:8443".parse().unwrap()])
        .await
        .unwrap();
    let listener = SocketAddr::from(([127, 0, 0, 1], port));
    let envoy = Envoy::start(&options.xds_dir.join(BOOTSTRAP), work.path(), &[listener]).unwrap();

    let hello = portico_scenario::tls::client_hello(
        &ClientTls {
            sni: Some("split.example.com".into()),
            max_version: TlsVersion::V1_3,
            client: None,
        },
        false,
    )
    .unwrap();
    // Whole, in two pieces (inside the record header and the body), and byte by byte for the
    // first ten bytes: the backend (an echo server terminating TLS) answers with its handshake.
    let (a, b) = hello.split_at(3);
    let (c, d) = hello.split_at(hello.len() / 2);
    let mut pieces: Vec<&[u8]> = hello[..10].chunks(1).collect();
    pieces.push(&hello[10..]);
    for parts in [vec![hello.as_slice()], vec![a, b], vec![c, d], pieces] {
        let answer = exchange(listener, &parts).await;
        assert_eq!(
            answer.as_ref().map(|h| h[0]),
            Ok(22),
            "{} pieces: {answer:?}\n{}",
            parts.len(),
            envoy.log_tail()
        );
    }
    // Not TLS: closed by the filter.
    let answer = exchange(
        listener,
        &[b"GET / HTTP/1.1\r\nHost: split.example.com\r\n\r\n"],
    )
    .await;
    assert!(answer.is_err(), "{answer:?}");
    assert!(envoy.stat("wasmcustom.portico_tls_forwarded_total") >= 4);
}
