//! Update latency on Kubernetes: how long from an object applied to the API server to the
//! change served by Envoy, with the controller following the cluster as `run --kube` does.
//!
//! A test API server holds a Gateway API configuration of N HTTPRoute rules (the bench's
//! [`gateway_manifest`](crate::bench::gateway_manifest)) plus a probe HTTPRoute; each update
//! applies the probe with its backend switched between two Services, and the time is taken
//! from the start of the apply to the first answer from the new backend (polled every 1 ms).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portico_controller::envoy::{RenderOptions, BOOTSTRAP};
use portico_controller::translate::Options;
use serde_json::{json, Value};

use crate::client::{send, Outgoing};
use crate::kube::{apply_now, apply_objects, install_crds, Following, TestApiServer};
use crate::proxy::{free_ports, routing_wasm, Envoy};

const A: &str = "127.0.10.1:8080";
const B: &str = "127.0.10.2:8080";

/// The probe HTTPRoute to `service`; `update` goes into a request header it sets, so that every
/// update is a configuration Envoy has not seen: Envoy checks a new filter configuration in a
/// throwaway VM first (its canary), but only once per configuration — updates alternating
/// between two configurations would skip that step after the first two.
fn probe(service: &str, update: usize) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "probe", "namespace": "default"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["probe.example.com"],
                 "rules": [{"backendRefs": [{"name": service, "port": 80}],
                            "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier":
                                {"set": [{"name": "x-bench-update", "value": update.to_string()}]}}]}]},
    })
}

fn api2() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api2", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "port": 80}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "api2-1", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "api2"}},
               "addressType": "IPv4", "endpoints": [{"addresses": ["127.0.10.2"]}],
               "ports": [{"name": "http", "port": 8080}]}),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Measures `updates` updates with `routes` HTTPRoute rules in the cluster; returns the report
/// line. Call from a multi-thread tokio runtime.
///
/// # Errors
/// Setup failures, or an update not served within 5 s.
pub async fn update_latency(routes: usize, updates: usize) -> Result<String, String> {
    let server = tokio::task::spawn_blocking(|| TestApiServer::start("bench"))
        .await
        .map_err(|e| e.to_string())??;
    let client = server.client().await?;
    install_crds(&client).await?;
    let (yaml, _) = crate::bench::gateway_manifest(routes);
    let mut objects = portico_controller::source::documents(&yaml)?;
    objects.extend(api2());
    objects.push(probe("api", 0));
    let applied = apply_objects(&client, &objects).await?;
    if !applied.refused.is_empty() {
        return Err(format!("refused: {:?}", applied.refused));
    }
    let _echo = crate::echo::start([
        A.parse().map_err(|e| format!("{e}"))?,
        B.parse().map_err(|e| format!("{e}"))?,
    ])
    .await?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = free_ports(1).map_err(|e| e.to_string())?[0];
    let render = RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: work.path().join("xds"),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::from([(80, port)]),
        sidecar_port: None,
    };
    let following = Following::start(&client, Options::default(), render);
    following.wait_push(1, Duration::from_secs(30)).await?;
    let listener = SocketAddr::from(([127, 0, 0, 1], port));
    let envoy = Envoy::start(
        &work.path().join("xds").join(BOOTSTRAP),
        work.path(),
        &[listener],
    )?;
    let out = Outgoing {
        target: listener,
        source: None,
        method: "GET".into(),
        authority: "probe.example.com".into(),
        path: "/".into(),
        headers: BTreeMap::new(),
        http2: false,
        timeout: Duration::from_secs(2),
        proxy_destination: None,
        tls: None,
    };
    let served = |want: &'static str| {
        let out = out.clone();
        async move {
            let t0 = Instant::now();
            loop {
                if send(&out).await.echo.is_some_and(|e| e.endpoint == want) {
                    return Ok(());
                }
                if t0.elapsed() > Duration::from_secs(5) {
                    return Err(format!("{want} not served within 5 s"));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    served(A).await?;
    let mut latencies = Vec::with_capacity(updates);
    let mut times = Vec::with_capacity(updates);
    for i in 0..updates {
        let (service, want) = if i % 2 == 0 { ("api2", B) } else { ("api", A) };
        let t0 = Instant::now();
        let r = apply_now(&client, &[probe(service, i + 1)]).await?;
        if !r.refused.is_empty() {
            return Err(format!("refused: {:?}", r.refused));
        }
        served(want).await?;
        latencies.push(t0.elapsed());
        times.push((t0, Instant::now()));
    }
    latencies.sort();
    // The controller's share: first change of a burst → files written (the rest is the API
    // server's watch delivery, Envoy's reload and the client's poll).
    let measured: Vec<crate::kube::Push> = following
        .pushes
        .lock()
        .map(|p| p.iter().skip(1).cloned().collect())
        .unwrap_or_default();
    let sorted = |f: &dyn Fn(&crate::kube::Push) -> Duration| {
        let mut v: Vec<Duration> = measured.iter().map(f).collect();
        v.sort();
        v
    };
    let pushes = sorted(&|p| p.took);
    // Around the controller: the apply's start → the burst's first change (the API server and
    // its watch), and files written → served (Envoy's reload and the poll); only when each
    // update made one push, so that pushes and updates pair up.
    let around = |f: &dyn Fn(&crate::kube::Push, (Instant, Instant)) -> Duration| {
        let mut v: Vec<Duration> = measured.iter().zip(&times).map(|(p, t)| f(p, *t)).collect();
        v.sort();
        v
    };
    let (watch, reload) = if measured.len() == updates {
        (
            around(&|p, (t0, _)| (p.at - p.took).saturating_duration_since(t0)),
            around(&|p, (_, served)| served.saturating_duration_since(p.at)),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    // The sync's own steps, at the median.
    let steps = [
        ("read", sorted(&|p| p.timings.read)),
        ("translate", sorted(&|p| p.timings.translate)),
        ("render", sorted(&|p| p.timings.render)),
        ("write", sorted(&|p| p.timings.write)),
    ]
    .iter()
    .map(|(name, v)| format!("{name} {:.2} ms", percentile(v, 0.5).as_secs_f64() * 1000.0))
    .collect::<Vec<_>>()
    .join(", ");
    // Envoy's share: the routing filter logs each compile of a configuration — Envoy runs one
    // in a throwaway VM to check it, then one per thread (the main thread and the worker) — the
    // last `3 * updates` of them.
    tokio::time::sleep(Duration::from_millis(400)).await; // Envoy flushes its log every 200 ms.
    let compiles: Vec<Duration> = envoy
        .log_text()
        .lines()
        .filter_map(|l| {
            let rest = l.split("portico-routing: configuration of ").nth(1)?;
            let us = rest.split(" compiled in ").nth(1)?.split(' ').next()?;
            us.parse::<u64>().ok().map(Duration::from_micros)
        })
        .collect();
    let mut compiles = compiles[compiles.len().saturating_sub(3 * updates)..].to_vec();
    compiles.sort();
    let compile = if compiles.is_empty() {
        "no compile logged".to_owned()
    } else {
        format!(
            "the filter's compile p50 {:.2} ms p99 {:.2} ms ({} compiles)",
            percentile(&compiles, 0.5).as_secs_f64() * 1000.0,
            percentile(&compiles, 0.99).as_secs_f64() * 1000.0,
            compiles.len()
        )
    };
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let pct = |v: &[Duration], p: f64| {
        if v.is_empty() {
            "n/a".to_owned()
        } else {
            ms(percentile(v, p))
        }
    };
    Ok(format!(
        "{routes} routes, {updates} updates: applied → served p50 {} p99 {} max {}; {} pushes, \
         apply → first change p50 {}, change → files written p50 {} p99 {} (sync p50: {steps}), \
         files written → served p50 {} p99 {} ({compile})",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies[latencies.len() - 1]),
        following.push_count(),
        pct(&watch, 0.5),
        ms(percentile(&pushes, 0.5)),
        ms(percentile(&pushes, 0.99)),
        pct(&reload, 0.5),
        pct(&reload, 0.99),
    ))
}
