//! Live updates through a real Envoy: manifest edits change routing within a second each while
//! requests keep flowing, none of them failing; a configuration the filter refuses is rejected by
//! Envoy and the last good one keeps serving.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use portico_controller::envoy::{ecds_routing, RenderOptions, BOOTSTRAP};
use portico_controller::translate::Options;
use portico_controller::DirController;
use portico_e2e::client::{send, Outgoing};
use portico_e2e::live::Live;
use portico_e2e::proxy::{free_ports, routing_wasm, Envoy};

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
endpoints: [{addresses: ["127.0.40.1"]}]
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
endpoints: [{addresses: ["127.0.40.2"]}]
ports: [{name: http, port: 8080}]
"#;

fn ingress(service: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: live}}\nspec:\n  rules:\n  - host: live.example.com\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}\n"
    )
}

struct Setup {
    _manifests: tempfile::TempDir,
    work: tempfile::TempDir,
    manifests: std::path::PathBuf,
    controller: DirController,
    listener: SocketAddr,
}

/// Each test has its own third octet, so tests in this file run in parallel.
fn setup(net: u8) -> (Setup, String, String) {
    let m = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        m.path().join("services.yaml"),
        SERVICES.replace("127.0.40.", &format!("127.0.{net}.")),
    )
    .unwrap();
    std::fs::write(m.path().join("live.yaml"), ingress("a")).unwrap();
    let ports = free_ports(2).unwrap();
    let port = ports[0];
    let render = RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: work.path().join("xds"),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        // Every Ingress host is served on 443 too; it binds aside, unused here.
        port_map: BTreeMap::from([(80, port), (443, ports[1])]),
        sidecar_port: None,
    };
    let mut controller =
        DirController::new(m.path().to_owned(), Options::default(), render).settling();
    controller.sync().unwrap();
    let setup = Setup {
        manifests: m.path().to_owned(),
        _manifests: m,
        work,
        controller,
        listener: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    (
        setup,
        format!("127.0.{net}.1:8080"),
        format!("127.0.{net}.2:8080"),
    )
}

fn request(listener: SocketAddr) -> Outgoing {
    Outgoing {
        target: listener,
        source: None,
        method: "GET".into(),
        authority: "live.example.com".into(),
        path: "/".into(),
        headers: BTreeMap::new(),
        http2: false,
        timeout: Duration::from_secs(5),
        proxy_destination: None,
        tls: None,
    }
}

async fn endpoint(out: &Outgoing) -> Option<String> {
    send(out).await.echo.map(|e| e.endpoint)
}

fn start_envoy(s: &Setup) -> Envoy {
    Envoy::start(
        &s.work.path().join("xds").join(BOOTSTRAP),
        s.work.path(),
        &[s.listener],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn twenty_edits_under_load_none_fails() {
    let (mut s, a, b) = setup(40);
    let (a, b) = (a.as_str(), b.as_str());
    let _echo = portico_e2e::echo::start([a.parse().unwrap(), b.parse().unwrap()])
        .await
        .unwrap();
    let envoy = start_envoy(&s);
    let out = request(s.listener);
    assert_eq!(endpoint(&out).await.as_deref(), Some(a));

    // The controller follows the directory as `portico-controller run` does, under load: 4
    // clients, at most 200 000 requests.
    let manifests = s.manifests.clone();
    let controller = std::mem::replace(
        &mut s.controller,
        DirController::new(
            manifests.clone(),
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
    let live = Live::start(Some(controller), &out, 4, 200_000, |o| {
        o.status == Some(200) && o.echo.is_some()
    });

    let mut latencies = Vec::new();
    for i in 0..20 {
        let (service, want) = if i % 2 == 0 { ("b", b) } else { ("a", a) };
        let t0 = Instant::now();
        std::fs::write(manifests.join("live.yaml"), ingress(service)).unwrap();
        loop {
            if endpoint(&out).await.as_deref() == Some(want) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(3),
                "edit {i}: routing did not change within 3 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(t0.elapsed());
    }
    let (total, failures) = live.stop().await;
    latencies.sort();
    println!(
        "live update: 20 edits, edit-to-served latency min {:?} median {:?} max {:?}; {total} requests, {} failed",
        latencies[0],
        latencies[10],
        latencies[19],
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total > 100, "the load loop ran: {total}");
    // Each change was served within the wait's own deadline (a liveness bound); how fast is
    // printed above and measured by the benchmarks (docs/benchmarks.md), not asserted here.
    assert_eq!(
        envoy.stat("extension_config_discovery.http_filter.portico-routing-80.update_rejected"),
        0
    );
}

fn rewrite_ecds(xds: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = xds.join(ecds_routing(80));
    let mut doc = portico_controller::envoy::ecds::decode(&std::fs::read(&path).unwrap()).unwrap();
    let config = doc
        .pointer_mut("/resources/0/typed_config/config/configuration/value")
        .unwrap();
    let mut routing: serde_json::Value = serde_json::from_str(config.as_str().unwrap()).unwrap();
    edit(&mut routing);
    *config = routing.to_string().into();
    doc["version_info"] = "bad".into();
    let tmp = xds.join(".tmp/ecds-edit");
    std::fs::write(&tmp, portico_controller::envoy::ecds::encode(&doc).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// a config the filter refuses (`on_configure` → false) is rejected by Envoy; the old one serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_refused_filter_config_keeps_the_last_good_one() {
    let (s, a, b) = setup(41);
    let (a, b) = (a.as_str(), b.as_str());
    let _echo = portico_e2e::echo::start([a.parse().unwrap(), b.parse().unwrap()])
        .await
        .unwrap();
    let envoy = start_envoy(&s);
    let out = request(s.listener);
    assert_eq!(endpoint(&out).await.as_deref(), Some(a));
    let xds = s.work.path().join("xds");
    let rejected = "extension_config_discovery.http_filter.portico-routing-80.update_rejected";
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: [(&str, Edit); 3] = [
        (
            "unknown field",
            Box::new(|r| r["virtualHosts"][0]["routes"][0]["weight"] = 3.into()),
        ),
        (
            "unknown backend",
            Box::new(|r| {
                r["virtualHosts"][0]["routes"][0]["action"]["backends"][0]["backend"] =
                    "nope:80".into()
            }),
        ),
        (
            "wrong api version",
            Box::new(|r| r["apiVersion"] = "routing.portico.dev/v9".into()),
        ),
    ];
    for (n, (label, edit)) in cases.into_iter().enumerate() {
        rewrite_ecds(&xds, |r| {
            edit(r);
            // Were it accepted, the route would now go to b.
            if label != "unknown backend" {
                r["virtualHosts"][0]["routes"][0]["action"]["backends"][0]["backend"] =
                    "b.default.svc.cluster.local:80".into();
            }
        });
        let t0 = Instant::now();
        while envoy.stat(rejected) < n as u64 + 1 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{label}: Envoy did not reject the config"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for _ in 0..5 {
            assert_eq!(
                endpoint(&out).await.as_deref(),
                Some(a),
                "{label}: the last good config serves"
            );
        }
    }
    assert_eq!(envoy.stat("wasmcustom.portico_routing_forwarded_total"), 16);
}

/// One sync that applies: the controller settles (a change applies once two reads agree).
fn settled(controller: &mut DirController) -> portico_controller::SyncReport {
    loop {
        let report = controller.sync().unwrap();
        if !report.waiting {
            return report;
        }
    }
}

/// An Ingress with `n` hosts, all to service `a` (`tag` makes each version differ).
fn large(n: usize, tag: usize) -> String {
    let mut out = String::from(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: large}\nspec:\n  rules:\n",
    );
    for i in 0..n {
        out.push_str(&format!(
            "  - host: h{i}-{tag}.large.example.com\n    http:\n      paths:\n      - {{path: /p{i}, pathType: Prefix, backend: {{service: {{name: a, port: {{number: 80}}}}}}}}\n"
        ));
    }
    out
}

/// 200 pushes while requests flow — valid edits, edits that do not parse, large manifests and
/// identical rewrites, in turn: no request fails, every bad push is reported and leaves the last
/// good configuration serving, an identical push rewrites nothing, each valid edit serves
/// within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_pushes_under_load_none_fails() {
    let (mut s, a, b) = setup(46);
    let (a, b) = (a.as_str(), b.as_str());
    let _echo = portico_e2e::echo::start([a.parse().unwrap(), b.parse().unwrap()])
        .await
        .unwrap();
    let envoy = start_envoy(&s);
    let out = request(s.listener);
    assert_eq!(endpoint(&out).await.as_deref(), Some(a));
    let live = Live::start(None, &out, 4, 400_000, |o| {
        o.status == Some(200) && o.echo.is_some()
    });
    let live_file = s.manifests.join("live.yaml");
    let large_file = s.manifests.join("large.yaml");
    let mut serving = a;
    let mut latencies = Vec::new();
    for i in 0..200 {
        match i % 4 {
            0 => {
                let (service, want) = if serving == a { ("b", b) } else { ("a", a) };
                std::fs::write(&live_file, ingress(service)).unwrap();
                let t0 = Instant::now();
                let report = settled(&mut s.controller);
                assert!(
                    report.load_errors.is_empty() && report.translate_errors.is_empty(),
                    "push {i}: {:?}",
                    report.messages()
                );
                while endpoint(&out).await.as_deref() != Some(want) {
                    assert!(
                        t0.elapsed() < Duration::from_secs(3),
                        "push {i}: not served within 3 s"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                latencies.push(t0.elapsed());
                serving = want;
            }
            1 => {
                std::fs::write(
                    &live_file,
                    "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: live\n",
                )
                .unwrap();
                let report = settled(&mut s.controller);
                assert!(
                    !report.load_errors.is_empty(),
                    "push {i}: the bad edit is reported"
                );
                for _ in 0..3 {
                    assert_eq!(endpoint(&out).await.as_deref(), Some(serving), "push {i}");
                }
            }
            2 => {
                std::fs::write(&large_file, large(500, i)).unwrap();
                let report = settled(&mut s.controller);
                assert!(
                    !report.written.is_empty(),
                    "push {i}: a large change is written"
                );
                assert_eq!(endpoint(&out).await.as_deref(), Some(serving), "push {i}");
            }
            _ => {
                // The same contents again: nothing to write.
                let same = std::fs::read(&large_file).unwrap();
                std::fs::write(&large_file, same).unwrap();
                let report = settled(&mut s.controller);
                assert!(report.written.is_empty(), "push {i}: {:?}", report.written);
            }
        }
    }
    let (total, failures) = live.stop().await;
    latencies.sort();
    println!(
        "config churn: 200 pushes (50 valid, 50 unparsable, 50 large, 50 identical); valid edit-to-served median {:?} max {:?}; {total} requests, {} failed",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total > 100, "the load loop ran: {total}");
    // Each change was served within the wait's own deadline (a liveness bound); how fast is
    // printed above and measured by the benchmarks (docs/benchmarks.md), not asserted here.
    assert_eq!(
        envoy.stat("extension_config_discovery.http_filter.portico-routing-80.update_rejected"),
        0,
        "the controller never pushed what Envoy refuses"
    );
}
