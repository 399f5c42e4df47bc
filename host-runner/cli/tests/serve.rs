//! `host-runner serve`: a real proxy on loopback, forwarding where the filter says, following
//! manifest edits and keeping the last good configuration on a bad one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use portico_e2e::client::{send, Outgoing};

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: [{addresses: ["127.0.50.1"]}]
ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
endpoints: [{addresses: ["127.0.50.2"]}]
ports: [{name: http, port: 8080}]
"#;

fn ingress(service: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: s}}\nspec:\n  rules:\n  - host: serve.test\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}\n")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(listen: SocketAddr, host: &str, path: &str) -> Outgoing {
    Outgoing {
        target: listen,
        source: None,
        method: "GET".into(),
        authority: host.into(),
        path: path.into(),
        headers: BTreeMap::new(),
        http2: false,
        timeout: Duration::from_secs(5),
        proxy_destination: None,
        tls: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_and_follows_edits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(dir.path().join("ingress.yaml"), ingress("a")).unwrap();
    let _echo = portico_e2e::echo::start([
        "127.0.50.1:8080".parse().unwrap(),
        "127.0.50.2:8080".parse().unwrap(),
    ])
    .await
    .unwrap();
    let port = portico_e2e::proxy::free_port().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let _child = Killed(
        Command::new(env!("CARGO_BIN_EXE_host-runner"))
            .args([
                "serve",
                "--listen",
                &listen.to_string(),
                "--interval-ms",
                "50",
                "--manifests",
            ])
            .arg(dir.path())
            .arg("--routing-wasm")
            .arg(portico_e2e::proxy::routing_wasm())
            .stdout(std::fs::File::create(dir.path().join("out.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        portico_e2e::proxy::wait_listening(listen, Duration::from_secs(30)),
        "host-runner serve did not start"
    );
    let o = send(&get(listen, "serve.test", "/x?y=1")).await;
    let echo = o.echo.expect("forwarded to the echo backend");
    assert_eq!(
        (
            echo.endpoint.as_str(),
            echo.path.as_str(),
            echo.host.as_str()
        ),
        ("127.0.50.1:8080", "/x?y=1", "serve.test")
    );
    // Steered through filter state: no header names the endpoint.
    assert_eq!(echo.header("x-envoy-original-dst-host"), None);
    assert_eq!(
        send(&get(listen, "other.test", "/")).await.status,
        Some(404)
    );

    std::fs::write(dir.path().join("ingress.yaml"), ingress("b")).unwrap();
    let endpoint = |o: portico_scenario::format::Observed| o.echo.map(|e| e.endpoint);
    let t0 = Instant::now();
    while endpoint(send(&get(listen, "serve.test", "/")).await).as_deref()
        != Some("127.0.50.2:8080")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the edit was not followed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::write(dir.path().join("ingress.yaml"), "kind: [broken").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        endpoint(send(&get(listen, "serve.test", "/")).await).as_deref(),
        Some("127.0.50.2:8080")
    );
    // The bad edit is reported (the file named), and so is its fix.
    let log = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let errors = log("err.log");
    assert!(
        errors.contains("error: ") && errors.contains("ingress.yaml: not valid YAML"),
        "{errors}"
    );
    std::fs::write(dir.path().join("ingress.yaml"), ingress("a")).unwrap();
    let t0 = Instant::now();
    while !log("out.log").contains("recovered: ") {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the fix was not reported: {}",
            log("out.log")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
