//! HTTP/1 edge requests, sent as raw bytes to a real Envoy (the rendered listener) and to
//! `host-runner serve` over the same manifests: both answer each the same way — what reaches a
//! backend, and the status otherwise.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::Duration;

use portico_e2e::fixture::{static_bootstrap, write_bootstrap};
use portico_e2e::proxy::{free_ports, routing_wasm, wait_listening, Envoy};

const MANIFESTS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: edge, namespace: default}
spec:
  rules:
  - host: a.edge.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
  - host: b.edge.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: default, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: [{addresses: ["127.0.46.1"], conditions: {ready: true}}]
ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, namespace: default, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
endpoints: [{addresses: ["127.0.46.2"], conditions: {ready: true}}]
ports: [{name: http, port: 8080}]
"#;

/// The edge cases: a name, the raw requests (sent at once on one connection) and how many
/// there are.
const CASES: &[(&str, &str, usize)] = &[
    (
        "absolute-form target: the URI's authority, not Host",
        "GET http://a.edge.test/x HTTP/1.1\r\nHost: b.edge.test\r\n\r\n",
        1,
    ),
    (
        "CONNECT",
        "CONNECT a.edge.test:443 HTTP/1.1\r\nHost: a.edge.test:443\r\n\r\n",
        1,
    ),
    ("HTTP/1.1 without Host", "GET /x HTTP/1.1\r\n\r\n", 1),
    ("HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", 1),
    (
        "HTTP/1.0 with Host",
        "GET /x HTTP/1.0\r\nHost: a.edge.test\r\n\r\n",
        1,
    ),
    (
        "two Host headers",
        "GET /x HTTP/1.1\r\nHost: a.edge.test\r\nHost: b.edge.test\r\n\r\n",
        1,
    ),
    (
        "Content-Length with Transfer-Encoding",
        "POST /x HTTP/1.1\r\nHost: a.edge.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        1,
    ),
    (
        "Transfer-Encoding, then Content-Length",
        "POST /x HTTP/1.1\r\nHost: a.edge.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        1,
    ),
    (
        "both lengths on the second request of a kept-alive connection",
        "GET /x HTTP/1.1\r\nHost: a.edge.test\r\n\r\nPOST /x HTTP/1.1\r\nHost: a.edge.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        2,
    ),
    (
        "a kept-alive connection whose first body looks like a request with both lengths",
        "POST /x HTTP/1.1\r\nHost: a.edge.test\r\nContent-Length: 66\r\n\r\nGET /y HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nGET /z HTTP/1.1\r\nHost: b.edge.test\r\n\r\n",
        2,
    ),
];

/// What the last of `count` raw requests sent on one connection got: `endpoint E` when a
/// backend answered, else `status N`, or `closed` when it got no answer.
fn outcome(target: SocketAddr, raw: &str, count: usize) -> String {
    let Ok(mut s) = TcpStream::connect(target) else {
        return "refused".into();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if s.write_all(raw.as_bytes()).is_err() {
        return "closed".into();
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // The responses read so far, each whole: headers and a body of the announced length.
    let mut responses: Vec<String> = Vec::new();
    let mut at = 0;
    while responses.len() < count {
        let text = String::from_utf8_lossy(&buf[at..]).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if text.len() >= end + 4 + len {
                responses.push(text[..end + 4 + len].to_owned());
                at += end + 4 + len;
                continue;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if responses.len() < count {
        return "closed".into();
    }
    let text = &responses[count - 1];
    let Some(status) = text.split_whitespace().nth(1) else {
        return "closed".into();
    };
    match text.find("\"endpoint\":\"") {
        Some(i) => {
            let rest = &text[i + 12..];
            format!("endpoint {}", &rest[..rest.find('"').unwrap_or(0)])
        }
        None => format!("status {status}"),
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_and_serve_answer_edge_requests_alike() {
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("edge.yaml"), MANIFESTS).unwrap();
    let _echo = portico_e2e::echo::start(
        ["127.0.46.1:8080", "127.0.46.2:8080"].map(|a| a.parse().unwrap()),
    )
    .await
    .unwrap();
    let ports = free_ports(2).unwrap();
    let (envoy_port, serve_port) = (ports[0], ports[1]);

    let bootstrap = work.path().join("envoy.yaml");
    write_bootstrap(
        &static_bootstrap(MANIFESTS, work.path(), envoy_port),
        &bootstrap,
    );
    let envoy_addr = SocketAddr::from(([127, 0, 0, 1], envoy_port));
    let _envoy = Envoy::start(&bootstrap, work.path(), &[envoy_addr]).unwrap();

    let serve_addr = SocketAddr::from(([127, 0, 0, 1], serve_port));
    let _serve = Killed(
        Command::new(env!("CARGO_BIN_EXE_host-runner"))
            .args(["serve", "--listen", &serve_addr.to_string(), "--manifests"])
            .arg(&manifests)
            .arg("--routing-wasm")
            .arg(routing_wasm())
            .stdout(std::fs::File::create(work.path().join("serve.log")).unwrap())
            .stderr(std::fs::File::create(work.path().join("serve.err")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_listening(serve_addr, Duration::from_secs(30)),
        "serve did not start"
    );

    let mut differ = Vec::new();
    for (name, raw, count) in CASES {
        let (envoy, serve) = (
            outcome(envoy_addr, raw, *count),
            outcome(serve_addr, raw, *count),
        );
        println!("{name}: envoy {envoy}, serve {serve}");
        if envoy != serve {
            differ.push(format!("{name}: envoy {envoy}, serve {serve}"));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}
