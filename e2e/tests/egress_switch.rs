//! The sidecar's egress policy changing live through a real Envoy: switching between ALLOW_ANY
//! and REGISTRY_ONLY, and adding a ServiceEntry, take effect within a second each while allowed
//! requests keep flowing, none of them failing; every verdict shows in Envoy's counters; an
//! egress configuration Envoy rejects leaves REGISTRY_ONLY closed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use portico_controller::envoy::{
    RenderOptions, BOOTSTRAP, EGRESS_HTTP_FILTER, EGRESS_TCP_FILTER, EGRESS_TLS_FILTER,
};
use portico_controller::translate::Options;
use portico_controller::DirController;
use portico_e2e::client::{send, Outgoing};
use portico_e2e::live::Live;
use portico_e2e::proxy::{free_ports, routing_wasm, Envoy};

/// The entry every allowed request uses, and the address clients dial.
const ENTRY: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.NET.1, ports: {http: 8080}}]
"#;
/// Addresses of the test on network `127.0.NET.0/24` (each test its own, so they run in
/// parallel): the entry's endpoint, the address HTTP clients dial, the one TCP clients dial.
fn addresses(net: u8) -> (String, String, String) {
    (
        format!("127.0.{net}.1:8080"),
        format!("127.0.{net}.9:80"),
        format!("127.0.{net}.9:9000"),
    )
}

fn policy(mode: &str) -> String {
    format!(
        "apiVersion: portico.dev/v1alpha1\nkind: PorticoConfig\nmetadata: {{name: mesh, namespace: istio-system}}\nspec: {{outboundTrafficPolicy: {mode}}}\n"
    )
}

fn new_entry(host: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: added, namespace: default}}\nspec:\n  hosts: [{host}]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: NONE\n"
    )
}

fn request(sidecar: SocketAddr, host: &str, dialled: &str) -> Outgoing {
    Outgoing {
        target: sidecar,
        source: None,
        method: "GET".into(),
        authority: host.into(),
        path: "/".into(),
        headers: BTreeMap::new(),
        http2: false,
        timeout: Duration::from_secs(5),
        proxy_destination: Some(dialled.parse().unwrap()),
        tls: None,
    }
}

/// What a probe saw: the status and the endpoint that answered, or closed (`None`, `None`).
async fn probe(out: &Outgoing) -> (Option<u16>, Option<String>) {
    let o = send(out).await;
    (o.status, o.echo.map(|e| e.endpoint))
}

/// Waits until `probe` sees `want`; returns how long that took (panics past 3 s).
async fn until(out: &Outgoing, want: (Option<u16>, Option<&str>), what: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let (status, endpoint) = probe(out).await;
        if (status, endpoint.as_deref()) == want {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{what}: not in force within 3 s (last: {status:?} {endpoint:?})"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

struct Setup {
    manifests: tempfile::TempDir,
    work: tempfile::TempDir,
    controller: DirController,
    sidecar: SocketAddr,
}

fn setup(net: u8, mode: &str) -> Setup {
    let manifests = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        manifests.path().join("entry.yaml"),
        ENTRY.replace("NET", &net.to_string()),
    )
    .unwrap();
    std::fs::write(manifests.path().join("policy.yaml"), policy(mode)).unwrap();
    let port = free_ports(1).unwrap()[0];
    let render = RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: work.path().join("xds"),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::new(),
        sidecar_port: Some(port),
    };
    let options = Options {
        mesh: true,
        ..Options::default()
    };
    let mut controller =
        DirController::new(manifests.path().to_owned(), options, render).settling();
    controller.sync().unwrap();
    Setup {
        manifests,
        work,
        controller,
        sidecar: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn start_envoy(s: &Setup) -> Envoy {
    Envoy::start(
        &s.work.path().join("xds").join(BOOTSTRAP),
        s.work.path(),
        &[s.sidecar],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_switches_and_new_entries_under_load_none_fails() {
    let mut s = setup(42, "ALLOW_ANY");
    let (endpoint, dialled, dialled_tcp) = addresses(42);
    let _echo = portico_e2e::echo::start(
        [endpoint.as_str(), dialled.as_str(), dialled_tcp.as_str()].map(|a| a.parse().unwrap()),
    )
    .await
    .unwrap();
    let envoy = start_envoy(&s);
    let allowed = request(s.sidecar, "api.example.com", dialled.as_str());
    assert_eq!(
        probe(&allowed).await,
        (Some(200), Some(endpoint.as_str().into()))
    );

    // The controller follows the directory as `portico-controller run` does, under load: 4
    // clients, at most 200 000 requests.
    let controller = std::mem::replace(
        &mut s.controller,
        DirController::new(
            s.manifests.path().to_owned(),
            Options::default(),
            RenderOptions {
                routing_wasm: routing_wasm(),
                xds_dir: s.work.path().join("unused"),
                listen_address: "127.0.0.1".into(),
                admin_port: 0,
                port_map: BTreeMap::new(),
                sidecar_port: None,
            },
        ),
    );
    let live = Live::start(Some(controller), &allowed, 4, 200_000, |o| {
        o.status == Some(200)
            && o.echo
                .as_ref()
                .is_some_and(|e| e.endpoint.ends_with(".1:8080"))
    });

    let unknown = request(s.sidecar, "unknown.example.org", dialled.as_str());
    let unknown_tcp = request(s.sidecar, "unknown.example.org", dialled_tcp.as_str());
    let added = request(s.sidecar, "added.example.com", dialled.as_str());
    let policy_file = s.manifests.path().join("policy.yaml");
    let added_file = s.manifests.path().join("added.yaml");
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        std::fs::write(&policy_file, policy("REGISTRY_ONLY")).unwrap();
        until(&unknown, (Some(502), None), "REGISTRY_ONLY (HTTP)").await;
        latencies.push(t0.elapsed());
        until(&unknown_tcp, (None, None), "REGISTRY_ONLY (TCP)").await;
        latencies.push(t0.elapsed());
        assert_eq!(probe(&added).await, (Some(502), None));

        let t0 = Instant::now();
        std::fs::write(&added_file, new_entry("added.example.com")).unwrap();
        until(
            &added,
            (Some(200), Some(dialled.as_str())),
            "a new ServiceEntry",
        )
        .await;
        latencies.push(t0.elapsed());
        std::fs::remove_file(&added_file).unwrap();
        until(&added, (Some(502), None), "a removed ServiceEntry").await;

        let t0 = Instant::now();
        std::fs::write(&policy_file, policy("ALLOW_ANY")).unwrap();
        until(
            &unknown,
            (Some(200), Some(dialled.as_str())),
            "ALLOW_ANY (HTTP)",
        )
        .await;
        latencies.push(t0.elapsed());
        until(
            &unknown_tcp,
            (Some(200), Some(dialled_tcp.as_str())),
            "ALLOW_ANY (TCP)",
        )
        .await;
        latencies.push(t0.elapsed());
    }
    let (total, failures) = live.stop().await;
    latencies.sort();
    println!(
        "egress switches: {} changes, change-to-served latency min {:?} median {:?} max {:?}; {total} allowed requests, {} failed",
        latencies.len(),
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} allowed requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total > 100, "the load loop ran: {total}");
    // Each change was served within the wait's own deadline (a liveness bound); how fast is
    // printed above and measured by the benchmarks (docs/benchmarks.md), not asserted here.
    // Every allowed request was counted against its entry (plus the first probe).
    assert_eq!(
        envoy.stat("wasmcustom.portico_egress.allowed.serviceentry.default.api"),
        total + 1
    );
    assert!(envoy.stat("wasmcustom.portico_egress.blocked.unknown") >= 10);
    assert!(envoy.stat("wasmcustom.portico_egress.passthrough.unknown") >= 10);
    assert!(envoy.stat("wasmcustom.portico_egress.allowed.serviceentry.default.added") >= 5);
}

/// Rewrites the egress filter's ECDS file with a configuration it refuses.
fn break_ecds(xds: &Path, name: &str) {
    let path = xds.join(portico_controller::envoy::ecds_file(name));
    let mut doc = portico_controller::envoy::ecds::decode(&std::fs::read(&path).unwrap()).unwrap();
    let config = doc
        .pointer_mut("/resources/0/typed_config/config/configuration/value")
        .unwrap();
    let mut egress: serde_json::Value = serde_json::from_str(config.as_str().unwrap()).unwrap();
    // Were it accepted, everything would pass.
    for scope in egress["scopes"].as_array_mut().unwrap() {
        scope["mode"] = "ALLOW_ANY".into();
    }
    egress["scopes"][0]["entries"][0]["addresses"] = serde_json::json!(["not-an-ip"]);
    *config = egress.to_string().into();
    doc["version_info"] = "bad".into();
    let tmp = xds.join(".tmp/ecds-edit");
    std::fs::write(&tmp, portico_controller::envoy::ecds::encode(&doc).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// A configuration the egress filter refuses is rejected by Envoy; REGISTRY_ONLY stays closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_egress_config_never_opens() {
    let s = setup(43, "REGISTRY_ONLY");
    let (endpoint, dialled, dialled_tcp) = addresses(43);
    let _echo = portico_e2e::echo::start(
        [endpoint.as_str(), dialled.as_str(), dialled_tcp.as_str()].map(|a| a.parse().unwrap()),
    )
    .await
    .unwrap();
    let envoy = start_envoy(&s);
    let allowed = request(s.sidecar, "api.example.com", dialled.as_str());
    let unknown = request(s.sidecar, "unknown.example.org", dialled.as_str());
    let unknown_tcp = request(s.sidecar, "unknown.example.org", dialled_tcp.as_str());
    assert_eq!(probe(&unknown).await, (Some(502), None));
    let xds = s.work.path().join("xds");
    for (name, stat) in [
        (
            EGRESS_HTTP_FILTER,
            format!("extension_config_discovery.http_filter.{EGRESS_HTTP_FILTER}.update_rejected"),
        ),
        (
            EGRESS_TLS_FILTER,
            format!(
                "extension_config_discovery.network_filter.{EGRESS_TLS_FILTER}.update_rejected"
            ),
        ),
        (
            EGRESS_TCP_FILTER,
            format!(
                "extension_config_discovery.network_filter.{EGRESS_TCP_FILTER}.update_rejected"
            ),
        ),
    ] {
        break_ecds(&xds, name);
        let t0 = Instant::now();
        while envoy.stat(&stat) < 1 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{name}: Envoy did not reject the config ({stat})"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for _ in 0..5 {
            assert_eq!(probe(&unknown).await, (Some(502), None), "{name}");
            assert_eq!(probe(&unknown_tcp).await, (None, None), "{name}");
            assert_eq!(
                probe(&allowed).await,
                (Some(200), Some(endpoint.as_str().into())),
                "{name}"
            );
        }
    }
}
