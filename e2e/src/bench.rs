//! `just bench` (Envoy part): requests/s, latency and Envoy CPU per request of the routing filter
//! against its floors, in one run.
//!
//! Four Envoys serve the same request to the same echo backend:
//! - **native RDS**: no wasm, Envoy's own route table equivalent to the benchmarked configuration
//!   (every virtual host and route of the translated listener, with its path, header, query and
//!   method matches, to the Service's cluster) — what Envoy Gateway or Istio would generate;
//! - **pass-through wasm**: the same table with a proxy-wasm filter that does nothing (the probe
//!   module's `pass-through` kind: no host call per request) — the ABI's own cost, the floor of any
//!   proxy-wasm filter;
//! - the **routing filter** steering to the Service's cluster (`cluster` mode) and choosing the
//!   pod endpoint itself (`endpoint` mode, ORIGINAL_DST);
//! - **every filter**: cluster mode with the tls and egress modules loaded too (a Passthrough
//!   listener, the sidecar), for Envoy's memory with all three.
//!
//! [`instructions`] counts the instructions one request costs in host-runner under callgrind:
//! the figure that does not move with the machine's load.
//!
//! Rounds alternate between them, so outside load hits all alike; min / median / max over the
//! rounds are reported, ratios of medians against native RDS.

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
use portico_core::config::{ForwardMode, RouteAction, RoutingConfig, StringMatch};
use serde_json::{json, Value};

use crate::proxy::{free_ports, routing_wasm, Envoy};

/// Result of one load run.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Successful responses.
    pub ok: u64,
    /// Failed ones.
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Envoy CPU time (user + system) during the run.
    pub envoy_cpu: Duration,
    /// Latency of each successful request, microseconds, sorted.
    pub latencies_us: Vec<u32>,
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

    /// The latency at quantile `q` (0–1), microseconds.
    pub fn latency_us(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[i])
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

/// Resident memory of a process in KiB, from `/proc/PID/status` (`VmRSS`; 0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
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
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let cpu0 = cpu_time(envoy_pid);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
        let latencies = latencies.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
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
                    // The connection takes the next request only once the last exchange is
                    // finished on its side too (else hyper refuses it: "connection was not ready").
                    if sender.ready().await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    let Ok(req) = request.request() else {
                        return;
                    };
                    let sent = Instant::now();
                    match sender.send_request(req).await {
                        Ok(resp) => {
                            let good = resp.status() == 200;
                            let body = resp.into_body().collect().await;
                            if good && body.is_ok() {
                                ok.fetch_add(1, Ordering::Relaxed);
                                mine.push(
                                    u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX),
                                );
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
            if let Ok(mut all) = latencies.lock() {
                all.extend(mine);
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let envoy_cpu = cpu_time(envoy_pid).saturating_sub(cpu0);
    let elapsed = t0.elapsed();
    let mut latencies_us = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies_us.sort_unstable();
    LoadResult {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        envoy_cpu,
        latencies_us,
    }
}

/// Envoy's string matcher for a Portico one (`None`: present, any value).
fn string_match(m: &StringMatch) -> Option<Value> {
    match m {
        StringMatch::Exact(v) => Some(json!({"exact": v})),
        StringMatch::Prefix(v) => Some(json!({"prefix": v})),
        StringMatch::Regex(r) => Some(json!({"safe_regex": {"regex": r}})),
        StringMatch::Present => None,
    }
}

/// Envoy's native route table equivalent to a listener's routing: a virtual host per Portico
/// virtual host (its first for a name two share), a route per route with its path, header, query
/// and method matches, to its first backend's cluster (weighted clusters for several); redirects
/// and fixed answers as Envoy's own. What Envoy Gateway or Istio would generate for the same
/// rules, for the benchmark.
pub fn native_routes(routing: &RoutingConfig) -> Value {
    let mut seen = std::collections::BTreeSet::new();
    let mut hosts = Vec::new();
    for vh in &routing.virtual_hosts {
        let domains: Vec<&String> = vh
            .hosts
            .iter()
            .filter(|h| seen.insert((*h).clone()))
            .collect();
        if domains.is_empty() {
            continue;
        }
        let routes: Vec<Value> = vh
            .routes
            .iter()
            .map(|r| {
                let mut m = crate::envoy_gateway::path_match(&r.path);
                let mut headers: Vec<Value> = r
                    .headers
                    .iter()
                    .map(|h| {
                        let mut v = match string_match(&h.value) {
                            Some(sm) => json!({"name": h.name, "string_match": sm}),
                            None => json!({"name": h.name, "present_match": true}),
                        };
                        v["invert_match"] = json!(h.invert);
                        v
                    })
                    .collect();
                if let Some(method) = &r.method {
                    headers.push(json!({"name": ":method", "string_match": {"exact": method}}));
                }
                m["headers"] = json!(headers);
                m["query_parameters"] = json!(r
                    .query
                    .iter()
                    .map(|q| match string_match(&q.value) {
                        Some(sm) => json!({"name": q.name, "string_match": sm}),
                        None => json!({"name": q.name, "present_match": true}),
                    })
                    .collect::<Vec<_>>());
                let cluster = |key: &Option<String>| {
                    key.as_ref()
                        .and_then(|k| routing.backends.get(k))
                        .map_or_else(String::new, |b| b.cluster.clone())
                };
                match &r.action {
                    RouteAction::Forward { backends, .. } if backends.len() == 1 => json!({
                        "match": m,
                        "route": {"cluster": cluster(&backends[0].backend), "timeout": "30s"}}),
                    RouteAction::Forward { backends, .. } => json!({
                        "match": m,
                        "route": {"weighted_clusters": {"clusters": backends.iter()
                            .map(|b| json!({"name": cluster(&b.backend), "weight": b.weight.max(1)}))
                            .collect::<Vec<_>>()}, "timeout": "30s"}}),
                    RouteAction::Redirect(_) => json!({"match": m, "redirect": {"https_redirect": true}}),
                    RouteAction::Respond { status, .. } => {
                        json!({"match": m, "direct_response": {"status": status}})
                    }
                }
            })
            .collect();
        hosts.push(json!({"name": vh.name, "domains": domains, "routes": routes}));
    }
    json!(hosts)
}

/// The native-RDS configuration: the filter's static bootstrap (cluster mode) on `port` with
/// the wasm filter removed and [`native_routes`] as its route table; with `probe`, the probe
/// module before the router with that configuration (`{"kind": "pass-through"}`: the
/// do-nothing filter).
fn native(
    static_yaml: &str,
    port: u16,
    routing: &RoutingConfig,
    probe: Option<&str>,
) -> Result<String, String> {
    let mut doc: Value = serde_yaml::from_str(static_yaml).map_err(|e| e.to_string())?;
    doc["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] =
        port.into();
    let hcm = doc
        .pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config")
        .ok_or("no HTTP connection manager in the rendered config")?;
    hcm["route_config"]["virtual_hosts"] = native_routes(routing);
    let mut filters = Vec::new();
    if let Some(configuration) = probe {
        let module = routing_wasm().with_file_name("portico_host_runner_probe.wasm");
        filters.push(json!({"name": "pass-through", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {"name": "pass-through", "vm_config": {
                "vm_id": "pass-through", "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": module}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": configuration}}}}));
    }
    filters.push(
        json!({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}),
    );
    hcm["http_filters"] = json!(filters);
    serde_yaml::to_string(&doc).map_err(|e| e.to_string())
}

/// How long and how hard a comparison runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Alternating rounds over the configurations.
    pub rounds: usize,
    /// Seconds per measured run.
    pub seconds: u64,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Envoy worker threads (`--concurrency`).
    pub workers: usize,
}

/// One configuration's runs.
#[derive(Debug, Clone)]
pub struct Measured {
    /// What it is.
    pub label: &'static str,
    /// Each round's result.
    pub rounds: Vec<LoadResult>,
    /// Envoy's resident memory after the last round, KiB.
    pub rss_kib: u64,
}

impl Measured {
    /// Failed requests over every round.
    pub fn errors(&self) -> u64 {
        self.rounds.iter().map(|r| r.errors).sum()
    }

    /// Successful requests over every round.
    pub fn ok(&self) -> u64 {
        self.rounds.iter().map(|r| r.ok).sum()
    }

    /// (min, median, max) of `f` over the rounds.
    fn spread(&self, f: impl Fn(&LoadResult) -> f64) -> (f64, f64, f64) {
        let mut v: Vec<f64> = self.rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2], v[v.len() - 1])
    }
}

/// Runs the comparison on a manifests directory (the demo's request); see [`run_objects`].
///
/// # Errors
/// Setup failures (Envoy, ports, manifests).
pub async fn run(manifests: &Path, settings: Settings) -> Result<Vec<Measured>, String> {
    let loaded = portico_controller::source::load_dir(manifests).map_err(|e| e.to_string())?;
    let objects: Vec<_> = loaded.manifests.into_iter().map(|m| m.object).collect();
    run_objects(objects, Target::demo(), settings).await
}

/// The request a bench sends.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host header.
    pub host: String,
    /// Path.
    pub path: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
}

impl Target {
    /// The request to send, as HTTP/1.1 on a keep-alive connection.
    ///
    /// # Errors
    /// A host, path or header the `http` crate refuses.
    pub fn request(&self) -> Result<hyper::Request<Empty<Bytes>>, hyper::http::Error> {
        let mut builder =
            hyper::Request::get(self.path.as_str()).header("host", self.host.as_str());
        for (k, v) in &self.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder.body(Empty::<Bytes>::new())
    }

    /// `GET shop.example.com/cart/items` on the demo manifests.
    pub fn demo() -> Target {
        Target {
            host: "shop.example.com".into(),
            path: "/cart/items".into(),
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
    Ok((objects_of(&yaml)?, target))
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
        headers: vec![("x-tenant".into(), format!("t{last}"))],
    };
    (yaml, target)
}

/// What [`run_objects`] adds to a configuration so that Envoy loads every filter: a Gateway with a
/// Passthrough TLS listener and a TLSRoute (the tls filter), and a ServiceEntry with a TLS port
/// (with the mesh on, the sidecar's egress filter on its HTTP and TLS chains).
fn every_filter_objects() -> Result<Vec<portico_controller::objects::Object>, String> {
    let yaml = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw-tls, namespace: default}\n\
        spec: {gatewayClassName: portico, listeners: [{name: tls, port: 443, protocol: TLS, tls: {mode: Passthrough}}]}\n---\n\
        apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TLSRoute\nmetadata: {name: tls, namespace: default}\n\
        spec: {parentRefs: [{name: gw-tls}], hostnames: [secure.example.com], rules: [{backendRefs: [{name: api, port: 80}]}]}\n---\n\
        apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: external, namespace: default}\n\
        spec: {hosts: [api.external.example], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}\n";
    objects_of(yaml)
}

/// The objects of a YAML stream the bench generated.
fn objects_of(yaml: &str) -> Result<Vec<portico_controller::objects::Object>, String> {
    portico_controller::source::documents(yaml)?
        .into_iter()
        .map(|v| portico_controller::objects::Object::from_value(v).map_err(|e| e.to_string()))
        .collect()
}

/// The configurations compared, in order: native RDS, the pass-through filter, the routing filter
/// in cluster and endpoint mode, every filter — each as (label, Envoy YAML, the port under load).
/// The probe module's host calls `bench-envoy-instructions --abi-calls` prices one by one, each
/// made alone by a filter that otherwise does nothing, in front of native RDS: the call, and
/// its configuration's label.
pub const ABI_CALLS: [(&str, &str); 6] = [
    ("header-pairs", "pass-through + every request header read"),
    ("header-value", "pass-through + one request header read"),
    ("set-header", "pass-through + one request header set"),
    ("filter-state", "pass-through + set_envoy_filter_state"),
    ("clear-route-cache", "pass-through + clear_route_cache"),
    ("metric", "pass-through + one counter bumped"),
];

/// The configurations of the comparison: native RDS, the pass-through filter, then (after
/// `abi_calls`, each a configuration of the probe making that one call) the routing filter in
/// cluster and endpoint mode, and every filter.
fn configurations(
    objects: &[portico_controller::objects::Object],
    work: &Path,
    abi_calls: &[(&'static str, &'static str)],
) -> Result<Vec<(&'static str, String, u16)>, String> {
    let mut configs: Vec<(&'static str, String, u16)> = Vec::new();
    for forward in [ForwardMode::Cluster, ForwardMode::Endpoint] {
        let snapshot = translate(
            objects,
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
            xds_dir: work.join(format!("{forward:?}")),
            listen_address: "127.0.0.1".into(),
            admin_port: 0,
            // The HTTPS listener every Ingress gets is not under load; it binds aside.
            port_map: BTreeMap::from([(80, port), (443, ports[1])]),
            sidecar_port: None,
        };
        let yaml = render_static(&snapshot, &options);
        if forward == ForwardMode::Cluster {
            let routing = &snapshot
                .listeners
                .iter()
                .find(|l| l.port == 80)
                .ok_or("no listener on port 80")?
                .routing;
            let ports = free_ports(2).map_err(|e| e.to_string())?;
            configs.push((
                "native RDS (equivalent routes)",
                native(&yaml, ports[0], routing, None)?,
                ports[0],
            ));
            configs.push((
                "pass-through wasm filter + native RDS",
                native(
                    &yaml,
                    ports[1],
                    routing,
                    Some(r#"{"kind": "pass-through"}"#),
                )?,
                ports[1],
            ));
            for (call, label) in abi_calls {
                let port = free_ports(1).map_err(|e| e.to_string())?[0];
                let probe = format!(r#"{{"kind": "calls", "calls": ["{call}"]}}"#);
                configs.push((label, native(&yaml, port, routing, Some(&probe))?, port));
            }
            configs.push(("routing filter, cluster mode", yaml, port));
        } else {
            configs.push(("routing filter, endpoint mode", yaml, port));
        }
    }
    // Every filter loaded: the same gateway routes, a Passthrough TLS listener (the tls filter)
    // and the sidecar (the egress filter in front of mesh routing, and on a TLS chain), with
    // the load on the same port-80 listener — what Envoy holds with all three modules.
    let mut every = objects.to_vec();
    every.extend(every_filter_objects()?);
    let snapshot = translate(
        &every,
        &Options {
            forward: ForwardMode::Cluster,
            mesh: true,
            ..Options::default()
        },
    )
    .snapshot;
    let ports = free_ports(3).map_err(|e| e.to_string())?;
    let options = RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: work.join("every"),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::from([(80, ports[0]), (443, ports[1])]),
        sidecar_port: Some(ports[2]),
    };
    let yaml = render_static(&snapshot, &options);
    for module in ["portico_filter_tls.wasm", "portico_filter_egress.wasm"] {
        if !yaml.contains(module) {
            return Err(format!(
                "the every-filter configuration does not load {module}"
            ));
        }
    }
    configs.push((
        "every filter (routing, tls, egress), cluster mode",
        yaml,
        ports[0],
    ));
    Ok(configs)
}

/// Writes configuration `i` into its own directory under `work`: the directory, the file, and
/// the listener under load.
fn write_config(
    work: &Path,
    i: usize,
    yaml: &str,
    port: u16,
) -> Result<(std::path::PathBuf, std::path::PathBuf, SocketAddr), String> {
    let dir = work.join(format!("envoy-{i}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, yaml).map_err(|e| e.to_string())?;
    Ok((dir, path, SocketAddr::from(([127, 0, 0, 1], port))))
}

/// The endpoints the objects' EndpointSlices name (the echo backends to start).
fn endpoints_of(objects: &[portico_controller::objects::Object]) -> Vec<SocketAddr> {
    objects
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
        .collect()
}

/// Runs the comparison over `objects`: native RDS, the pass-through wasm filter, the routing
/// filter in both forward modes, and every filter loaded; prints each round and a Markdown table,
/// and returns the runs.
///
/// # Errors
/// Setup failures (Envoy, ports).
pub async fn run_objects(
    objects: Vec<portico_controller::objects::Object>,
    target: Target,
    settings: Settings,
) -> Result<Vec<Measured>, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let configs = configurations(&objects, work.path(), &[])?;
    let _echo = crate::echo::start(endpoints_of(&objects)).await?;
    let mut envoys = Vec::new();
    for (i, (label, yaml, port)) in configs.iter().enumerate() {
        let (dir, path, listener) = write_config(work.path(), i, yaml, *port)?;
        let envoy = tokio::task::block_in_place(|| {
            Envoy::start_with_workers(&path, &dir, &[listener], settings.workers)
        })?;
        envoys.push((*label, envoy, listener));
    }
    let mut measured: Vec<Measured> = envoys
        .iter()
        .map(|(label, _, _)| Measured {
            label,
            rounds: Vec::new(),
            rss_kib: 0,
        })
        .collect();
    for round in 0..settings.rounds {
        for (i, (label, envoy, listener)) in envoys.iter().enumerate() {
            // Warm-up, then the measured run.
            load(
                *listener,
                &target,
                settings.connections,
                Duration::from_millis(500),
                envoy.pid(),
            )
            .await;
            let r = load(
                *listener,
                &target,
                settings.connections,
                Duration::from_secs(settings.seconds),
                envoy.pid(),
            )
            .await;
            println!(
                "round {round} {label:<38} {:>9.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  {:>6.1} µs Envoy CPU/req  ({} ok, {} errors)",
                r.rps(),
                r.latency_us(0.5),
                r.latency_us(0.99),
                r.cpu_us_per_request(),
                r.ok,
                r.errors
            );
            measured[i].rounds.push(r);
        }
    }
    for (m, (_, envoy, _)) in measured.iter_mut().zip(&envoys) {
        m.rss_kib = rss_kib(envoy.pid());
    }
    println!("\n{}", table(&measured, settings.workers));
    Ok(measured)
}

/// The comparison as Markdown: per configuration min / median / max over the rounds, ratios of
/// medians against native RDS (the first), and the Envoy CPU each adds over native RDS, also as a
/// multiple of what the pass-through filter (the second) adds.
pub fn table(measured: &[Measured], workers: usize) -> String {
    let mut out = format!(
        "Envoy --concurrency {workers}\n\n| configuration | req/s min / median / max | req/s ÷ native | p50 / p99 µs (median) | Envoy CPU µs/req min / median / max | added CPU µs/req over native | added ÷ pass-through's | Envoy RSS MiB | errors |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    let Some(native) = measured.first() else {
        return out;
    };
    let (_, native_rps, _) = native.spread(LoadResult::rps);
    let (_, native_cpu, _) = native.spread(LoadResult::cpu_us_per_request);
    let pass_added = measured
        .get(1)
        .map(|m| m.spread(LoadResult::cpu_us_per_request).1 - native_cpu);
    for m in measured {
        let (r0, r1, r2) = m.spread(LoadResult::rps);
        let (c0, c1, c2) = m.spread(LoadResult::cpu_us_per_request);
        let (_, p50, _) = m.spread(|r| r.latency_us(0.5));
        let (_, p99, _) = m.spread(|r| r.latency_us(0.99));
        let added = c1 - native_cpu;
        let vs_pass = match pass_added {
            Some(p) if p > 0.0 => format!("{:.2}", added / p),
            _ => "—".into(),
        };
        out.push_str(&format!(
            "| {} | {r0:.0} / {r1:.0} / {r2:.0} | {:.2} | {p50:.0} / {p99:.0} | {c0:.1} / {c1:.1} / {c2:.1} | {added:.1} | {vs_pass} | {:.1} | {} |\n",
            m.label,
            r1 / native_rps,
            m.rss_kib as f64 / 1024.0,
            m.errors()
        ));
    }
    out
}

/// Instructions per request of the routing filter in host-runner (host and module, wasmtime's
/// compiled code), counted by `valgrind --tool=callgrind`: host-runner's `call` on the routing
/// configuration of `routes` Gateway API rules ([`gateway_objects`]), once with one request and
/// once with `1 + extra` on the same worker; the difference over `extra` is one request's cost,
/// start-up and compilation cancelled out. `host_runner` is the host-runner binary.
///
/// # Errors
/// valgrind missing or failing, or a run that does not route.
pub fn instructions(host_runner: &Path, routes: usize, extra: u32) -> Result<String, String> {
    let (objects, target) = gateway_objects(routes)?;
    let snapshot = translate(
        &objects,
        &Options {
            forward: ForwardMode::Cluster,
            ..Options::default()
        },
    )
    .snapshot;
    let config = snapshot
        .routing(80)
        .ok_or("no listener on port 80")?
        .to_json();
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config_file = work.path().join("routing.json");
    std::fs::write(&config_file, config).map_err(|e| e.to_string())?;
    let count = |repeat: u32| -> Result<u64, String> {
        let mut cmd = std::process::Command::new("valgrind");
        cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(host_runner)
            .arg("call")
            .arg("--module")
            .arg(routing_wasm())
            .arg("--config")
            .arg(&config_file)
            .args(["--root-id", "portico-routing", "--request"])
            .arg(format!("GET http://{}{}", target.host, target.path));
        for (k, v) in &target.headers {
            cmd.arg("-H").arg(format!("{k}: {v}"));
        }
        cmd.arg("--repeat").arg(repeat.to_string());
        let out = cmd
            .output()
            .map_err(|e| format!("valgrind: {e} (install it: apt-get install valgrind)"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !stdout.contains("decision: continue") {
            return Err(format!(
                "host-runner call under callgrind did not route:\n{stdout}\n{stderr}"
            ));
        }
        stderr
            .lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("no `Collected :` line from callgrind:\n{stderr}"))
    };
    let one = count(1)?;
    let many = count(1 + extra)?;
    let per = many.saturating_sub(one) as f64 / f64::from(extra.max(1));
    Ok(format!(
        "routing filter in host-runner, {routes} routes: {per:.0} instructions per request (callgrind: {one} for 1 request, {many} for {})",
        1 + extra
    ))
}

/// Sends `count` requests for `target`, one after another on one keep-alive connection (a new
/// one if it is closed, at most 3 times, said on stderr); the number answered 200.
async fn sequential(listener: SocketAddr, target: &Target, count: u32) -> Result<u32, String> {
    async fn connect(
        listener: SocketAddr,
    ) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(listener)
            .await
            .map_err(|e| format!("connect {listener}: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(sender)
    }
    let mut sender = connect(listener).await?;
    let (mut ok, mut sent, mut reconnects) = (0, 0, 0);
    while sent < count {
        let req = target.request().map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(Duration::from_secs(60), async {
            // Only once the last exchange is finished on the connection's side too.
            sender.ready().await?;
            sender.send_request(req).await
        })
        .await
        .map_err(|_| "no answer within 60 s".to_owned())?;
        match answer {
            Ok(resp) => {
                let good = resp.status() == 200;
                if resp.into_body().collect().await.is_ok() && good {
                    ok += 1;
                }
                sent += 1;
            }
            Err(e) if reconnects < 3 => {
                reconnects += 1;
                eprintln!("connection closed after {sent} requests ({e}); connecting again");
                sender = connect(listener).await?;
            }
            Err(e) => return Err(format!("after {sent} requests: {e}")),
        }
    }
    Ok(ok)
}

/// Runs `callgrind_control ARGS PID`.
fn callgrind_control(args: &[&str], pid: u32) -> Result<(), String> {
    let out = std::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("callgrind_control: {e} (install valgrind)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Envoy's own instructions per request, for each configuration of the comparison but the last
/// (every filter: the load goes to the same listener as cluster mode's): each Envoy runs under
/// valgrind's callgrind with instrumentation off (start-up, the modules' compile and a warm-up of
/// 50 requests are not counted), then `requests` requests one after another on one keep-alive
/// connection are counted alone. Envoy's user-space instructions only (the kernel's are not
/// counted, nor the load generator's or the backend's): the figure does not move with the
/// machine's load, unlike the CPU time `run_objects` measures. With `dumps`, each
/// configuration's callgrind dump is copied there as `N-label.callgrind`.
///
/// # Errors
/// Setup failures, valgrind missing, a request not answered 200.
pub async fn envoy_instructions(
    objects: Vec<portico_controller::objects::Object>,
    target: Target,
    requests: u32,
    dumps: Option<&Path>,
    abi_calls: bool,
) -> Result<String, String> {
    if let Some(dir) = dumps {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut configs = configurations(
        &objects,
        work.path(),
        if abi_calls { &ABI_CALLS } else { &[] },
    )?;
    // Every filter: its load goes to the same listener as cluster mode's.
    configs.pop();
    let _echo = crate::echo::start(endpoints_of(&objects)).await?;
    let requests = requests.max(1);
    let mut rows: Vec<(&'static str, f64)> = Vec::new();
    for (i, (label, yaml, port)) in configs.iter().enumerate() {
        let (dir, path, listener) = write_config(work.path(), i, yaml, *port)?;
        let dump = dir.join("callgrind.out");
        let wrapper = [
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            "--instr-atstart=no".to_owned(),
            // V8 writes and rewrites its generated code.
            "--smc-check=all-non-file".to_owned(),
            format!("--callgrind-out-file={}", dump.display()),
        ];
        let envoy = tokio::task::block_in_place(|| {
            Envoy::start_wrapped(
                &path,
                &dir,
                &[listener],
                1,
                &wrapper,
                Duration::from_secs(600),
            )
        })?;
        let pid = envoy.pid();
        // Under valgrind a worker may still be building its VM when the listener accepts (the
        // connection is then closed): the first request is tried until it is answered.
        let deadline = Instant::now() + Duration::from_secs(600);
        while sequential(listener, &target, 1).await.ok() != Some(1) {
            if Instant::now() > deadline {
                return Err(format!(
                    "{label}: not serving within 600 s\n{}",
                    envoy.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let warm = sequential(listener, &target, 50)
            .await
            .map_err(|e| format!("{label}: warm-up: {e}\n{}", envoy.log_tail()))?;
        if warm != 50 {
            return Err(format!(
                "{label}: {warm} of 50 warm-up requests answered 200"
            ));
        }
        callgrind_control(&["--zero"], pid)?;
        callgrind_control(&["--instr=on"], pid)?;
        let ok = sequential(listener, &target, requests)
            .await
            .map_err(|e| format!("{label}: {e}\n{}", envoy.log_tail()))?;
        callgrind_control(&["--instr=off"], pid)?;
        callgrind_control(&["--dump"], pid)?;
        if ok != requests {
            return Err(format!("{label}: {ok} of {requests} requests answered 200"));
        }
        // The dump is written as `callgrind.out.N` next to the output file's name.
        let deadline = Instant::now() + Duration::from_secs(30);
        let total = loop {
            let found = std::fs::read_dir(&dir)
                .map_err(|e| e.to_string())?
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("callgrind.out.")
                })
                .find_map(|e| {
                    let total = std::fs::read_to_string(e.path())
                        .ok()?
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("totals:")
                                .or_else(|| l.strip_prefix("summary:"))
                                .and_then(|n| n.trim().parse::<u64>().ok())
                                .filter(|n| *n > 0)
                        })?;
                    Some((total, e.path()))
                });
            match found {
                Some((n, file)) => {
                    if let Some(to) = dumps {
                        let name: String = label
                            .chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                            .collect();
                        let to = to.join(format!("{i}-{name}.callgrind"));
                        std::fs::copy(&file, &to).map_err(|e| format!("{}: {e}", to.display()))?;
                    }
                    break n;
                }
                None if Instant::now() > deadline => {
                    return Err(format!("{label}: no callgrind dump in {}", dir.display()))
                }
                None => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let per = total as f64 / f64::from(requests);
        println!("{label:<38} {per:>9.0} Envoy instructions per request ({total} for {requests})");
        rows.push((label, per));
        drop(envoy);
    }
    let native = rows.first().map_or(0.0, |r| r.1);
    let pass_through = rows.get(1).map_or(0.0, |r| r.1 - native);
    let mut table = String::from(
        "| configuration | Envoy instructions per request | added over native RDS | added over pass-through | added ÷ pass-through's |\n|---|---|---|---|---|\n",
    );
    for (i, (label, per)) in rows.iter().enumerate() {
        let added = per - native;
        let (over, ratio) = if i >= 1 && pass_through > 0.0 {
            (
                format!("{:.0}", added - pass_through),
                format!("{:.2}", added / pass_through),
            )
        } else {
            ("—".to_owned(), "—".to_owned())
        };
        table.push_str(&format!(
            "| {label} | {per:.0} | {added:.0} | {over} | {ratio} |\n"
        ));
    }
    Ok(table)
}
