//! `just bench` (Envoy part): requests/s and Envoy CPU per request with and without the routing
//! filter, on the demo config, in one run.
//!
//! Three Envoys serve the same request (`GET shop.example.com/cart/items`) to the same echo
//! backend: a baseline with a native Envoy route straight to the Service's cluster and no wasm;
//! the routing filter steering to that cluster (`cluster` mode); and the routing filter choosing
//! the pod endpoint itself (`endpoint` mode, ORIGINAL_DST). Each runs with one worker; rounds
//! alternate between them and the medians are reported, so outside load hits all three alike.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use portico_controller::envoy::{render_static, RenderOptions};
use portico_controller::translate::{translate, Options};
use portico_core::config::ForwardMode;
use serde_json::{json, Value};

use crate::proxy::{free_port, free_ports, routing_wasm, Envoy};

/// Result of one load run.
#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    /// Successful responses.
    pub ok: u64,
    /// Failed ones.
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Envoy CPU time (user + system) during the run.
    pub envoy_cpu: Duration,
}

impl LoadResult {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Envoy CPU microseconds per request.
    pub fn cpu_us_per_request(&self) -> f64 {
        self.envoy_cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }
}

/// CPU time (user + system) of a process, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Sends keep-alive requests on `connections` connections for `duration` (bounded), counting
/// successes.
pub async fn load(
    target: SocketAddr,
    request: &Target,
    connections: usize,
    duration: Duration,
    envoy_pid: u32,
) -> LoadResult {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_time(envoy_pid);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(stream) = tokio::net::TcpStream::connect(target).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let Ok((mut sender, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
                else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) {
                    let mut builder = hyper::Request::get(request.path.as_str())
                        .header("host", request.host.as_str());
                    for (k, v) in &request.headers {
                        builder = builder.header(k.as_str(), v.as_str());
                    }
                    let Ok(req) = builder.body(Empty::<Bytes>::new()) else {
                        return;
                    };
                    match sender.send_request(req).await {
                        Ok(resp) => {
                            let good = resp.status() == 200;
                            let body = resp.into_body().collect().await;
                            if good && body.is_ok() {
                                ok.fetch_add(1, Ordering::Relaxed);
                            } else {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    LoadResult {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: t0.elapsed(),
        envoy_cpu: cpu_time(envoy_pid).saturating_sub(cpu0),
    }
}

/// The baseline: the filter's static bootstrap with the wasm filter removed and a native route
/// for the benchmarked host and path straight to the Service's cluster.
fn baseline(
    static_yaml: &str,
    port: u16,
    host: &str,
    prefix: &str,
    cluster: &str,
) -> Result<String, String> {
    let mut doc: Value = serde_yaml::from_str(static_yaml).map_err(|e| e.to_string())?;
    doc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] =
        port.into();
    let hcm = doc
        .pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config")
        .ok_or("no HTTP connection manager in the rendered config")?;
    hcm["route_config"]["virtual_hosts"] = json!([{
        "name": "baseline", "domains": [host],
        "routes": [{"match": {"prefix": prefix}, "route": {"cluster": cluster, "timeout": "30s"}}],
    }]);
    hcm["http_filters"] = json!([{"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]);
    serde_yaml::to_string(&doc).map_err(|e| e.to_string())
}

/// Runs the comparison and prints a table; returns it as Markdown too.
///
/// # Errors
/// Setup failures (Envoy, ports, manifests).
pub async fn run(
    manifests: &Path,
    rounds: usize,
    seconds: u64,
    connections: usize,
) -> Result<String, String> {
    let loaded = portico_controller::source::load_dir(manifests).map_err(|e| e.to_string())?;
    let objects: Vec<_> = loaded.manifests.into_iter().map(|m| m.object).collect();
    run_objects(objects, Target::demo(), rounds, seconds, connections).await
}

/// The request a bench sends and the cluster its baseline routes it to natively.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host header.
    pub host: String,
    /// Path.
    pub path: String,
    /// Prefix of the native baseline route.
    pub prefix: String,
    /// Cluster of the native baseline route.
    pub cluster: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
}

impl Target {
    /// `GET shop.example.com/cart/items` on the demo manifests.
    pub fn demo() -> Target {
        Target {
            host: "shop.example.com".into(),
            path: "/cart/items".into(),
            prefix: "/cart".into(),
            cluster: "outbound|80||cart.default.svc.cluster.local".into(),
            headers: vec![],
        }
    }
}

/// A Gateway API configuration of `routes` HTTPRoute rules (100 hostnames × routes/100 rules, each
/// with a path prefix and a header match), and the request for a rule near the end of the table.
pub fn gateway_objects(
    routes: usize,
) -> Result<(Vec<portico_controller::objects::Object>, Target), String> {
    let (yaml, target) = gateway_manifest(routes);
    let objects = portico_controller::source::documents(&yaml)?
        .into_iter()
        .map(|v| portico_controller::objects::Object::from_value(v).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((objects, target))
}

/// The manifests of [`gateway_objects`] (a Gateway, Service `api` with one endpoint at
/// `127.0.10.1:8080`, `routes` HTTPRoute rules over at most 100 hosts) as YAML, and the request
/// that takes the last rule of the middle host.
pub fn gateway_manifest(routes: usize) -> (String, Target) {
    let hosts = 100.min(routes.max(1));
    let per_host = routes.div_ceil(hosts);
    let mut yaml = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\n\
         spec: {gatewayClassName: portico, listeners: [{name: http, port: 80, protocol: HTTP}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: default}\nspec: {ports: [{name: http, port: 80}]}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: api-1, namespace: default, labels: {kubernetes.io/service-name: api}}\n\
         addressType: IPv4\nendpoints: [{addresses: [\"127.0.10.1\"]}]\nports: [{name: http, port: 8080}]\n",
    );
    for h in 0..hosts {
        yaml.push_str(&format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{h}, namespace: default}}\n\
             spec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [host{h}.example.com]\n  rules:\n"
        ));
        for r in 0..per_host {
            yaml.push_str(&format!(
                "  - matches: [{{path: {{type: PathPrefix, value: /api/v{r}}}, headers: [{{name: x-tenant, value: t{r}}}]}}]\n    \
                 backendRefs: [{{name: api, port: 80}}]\n"
            ));
        }
    }
    let last = per_host - 1;
    let target = Target {
        host: format!("host{}.example.com", hosts / 2),
        path: format!("/api/v{last}/items"),
        prefix: format!("/api/v{last}"),
        cluster: "outbound|80||api.default.svc.cluster.local".into(),
        headers: vec![("x-tenant".into(), format!("t{last}"))],
    };
    (yaml, target)
}

/// Runs the comparison over `objects`; see [`run`].
///
/// # Errors
/// Setup failures (Envoy, ports).
pub async fn run_objects(
    objects: Vec<portico_controller::objects::Object>,
    target: Target,
    rounds: usize,
    seconds: u64,
    connections: usize,
) -> Result<String, String> {
    let (host, prefix) = (target.host.as_str(), target.prefix.as_str());
    let cluster = target.cluster.as_str();
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut configs = Vec::new();
    let mut base = None;
    for (label, forward) in [
        ("endpoint", ForwardMode::Endpoint),
        ("cluster", ForwardMode::Cluster),
    ] {
        let snapshot = translate(
            &objects,
            &Options {
                forward,
                ..Options::default()
            },
        )
        .snapshot;
        let ports = free_ports(2).map_err(|e| e.to_string())?;
        let port = ports[0];
        let options = RenderOptions {
            routing_wasm: routing_wasm(),
            xds_dir: work.path().join(label),
            listen_address: "127.0.0.1".into(),
            admin_port: 0,
            // The HTTPS listener every Ingress gets is not under load; it binds aside.
            port_map: BTreeMap::from([(80, port), (443, ports[1])]),
            sidecar_port: None,
        };
        let yaml = render_static(&snapshot, &options);
        if forward == ForwardMode::Cluster {
            let port = free_port().map_err(|e| e.to_string())?;
            base = Some((
                "no filter (native route)",
                baseline(&yaml, port, host, prefix, cluster)?,
                port,
            ));
        }
        configs.push((
            if label == "endpoint" {
                "routing filter, endpoint mode"
            } else {
                "routing filter, cluster mode"
            },
            yaml,
            port,
        ));
    }
    // The baseline goes first: every ratio is against it.
    configs.insert(0, base.ok_or("no baseline")?);
    let endpoints: Vec<SocketAddr> = objects
        .iter()
        .filter_map(|o| match o {
            portico_controller::objects::Object::EndpointSlice(s) => Some(s),
            _ => None,
        })
        .flat_map(|s| {
            let port = s.ports.iter().flatten().find_map(|p| p.port).unwrap_or(0);
            s.endpoints.iter().flat_map(move |e| {
                e.addresses
                    .iter()
                    .filter_map(move |a| format!("{a}:{port}").parse().ok())
            })
        })
        .collect();
    let _echo = crate::echo::start(endpoints).await?;
    let mut envoys = Vec::new();
    for (i, (label, yaml, port)) in configs.iter().enumerate() {
        let dir = work.path().join(format!("envoy-{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("envoy.yaml");
        std::fs::write(&path, yaml).map_err(|e| e.to_string())?;
        let listener = SocketAddr::from(([127, 0, 0, 1], *port));
        let envoy = tokio::task::block_in_place(|| Envoy::start(&path, &dir, &[listener]))?;
        envoys.push((*label, envoy, listener));
    }
    let mut results: Vec<Vec<LoadResult>> = vec![Vec::new(); envoys.len()];
    for round in 0..rounds {
        for (i, (label, envoy, listener)) in envoys.iter().enumerate() {
            // Warm-up, then the measured run.
            load(
                *listener,
                &target,
                connections,
                Duration::from_millis(500),
                envoy.pid(),
            )
            .await;
            let r = load(
                *listener,
                &target,
                connections,
                Duration::from_secs(seconds),
                envoy.pid(),
            )
            .await;
            println!(
                "round {round} {label:<32} {:>9.0} req/s  {:>6.1} µs Envoy CPU/req  ({} ok, {} errors)",
                r.rps(),
                r.cpu_us_per_request(),
                r.ok,
                r.errors
            );
            results[i].push(r);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base_rps = median(&mut results[0].iter().map(LoadResult::rps).collect());
    let base_cpu = median(
        &mut results[0]
            .iter()
            .map(LoadResult::cpu_us_per_request)
            .collect(),
    );
    let mut table = String::from("| configuration | req/s (median) | vs no filter | Envoy CPU µs/req (median) | vs no filter | errors |\n|---|---|---|---|---|---|\n");
    for (i, (label, _, _)) in envoys.iter().enumerate() {
        let rps = median(&mut results[i].iter().map(LoadResult::rps).collect());
        let cpu = median(
            &mut results[i]
                .iter()
                .map(LoadResult::cpu_us_per_request)
                .collect(),
        );
        let errors: u64 = results[i].iter().map(|r| r.errors).sum();
        table.push_str(&format!(
            "| {label} | {rps:.0} | {:.2} | {cpu:.1} | {:.2} | {errors} |\n",
            rps / base_rps,
            cpu / base_cpu
        ));
    }
    println!("\n{table}");
    Ok(table)
}
