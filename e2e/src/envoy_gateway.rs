//! Portico attached to an Envoy configured the way Envoy Gateway (EG) configures the Envoy of a
//! Gateway: for a scenario's Gateways, the listeners, route configurations and clusters EG
//! would generate — in EG's names and HTTP connection manager settings, with none of Portico —
//! then Portico's EnvoyExtensionPolicies inserted as EG inserts them and its EnvoyPatchPolicies
//! applied as EG applies them ([`portico_controller::attach::envoy_gateway`] makes both). The
//! scenario host runs that Envoy.
//!
//! The EG shapes modelled (from EG's `internal/xds/translator` and its golden `egctl x
//! translate` output):
//! - per Gateway port with HTTP listeners, the xDS listener `NS/GATEWAY/LISTENER` (the port's
//!   first listener), its `default_filter_chain` of that name, its HTTP connection manager
//!   (`stat_prefix` `http-PORT`, `use_remote_address`, `normalize_path`, `merge_slashes`,
//!   `UNESCAPE_AND_REDIRECT` for escaped slashes, `REJECT_REQUEST` for header names with
//!   underscores, `PASS_THROUGH` server header, the router with `suppress_envoy_headers`) and
//!   its route configuration of that name (`ignore_port_in_host_matching`), delivered by RDS:
//!   here inlined once the patches have run;
//! - one virtual host per hostname the listener's routes serve (`NS/GATEWAY/LISTENER/host_name`,
//!   `*` for none), with a route per Portico route carrying its path match (EG's routes carry the
//!   header, query and method matches too: the model leaves them out, so its routes take at
//!   least the requests EG's would), each to a per-rule cluster `httproute/…/rule/N` that has
//!   **no endpoints**: a request EG's own route action served would fail with 503, so a passing
//!   scenario shows that Portico decided and steered every request;
//! - the EnvoyExtensionPolicy's wasm filter in the connection manager before the router,
//!   `disabled`, enabled by a `FilterConfig` in `typed_per_filter_config` on every route of the
//!   targeted listeners, its code `remote` from `wasm_cluster` with the module's sha256 (EG
//!   serves it from its own HTTPS server with mTLS; here a plain loopback HTTP server serves the
//!   file), `vm_id` the policy's IR name;
//! - the EnvoyPatchPolicy's JSON patches on the resources by type and name (RFC 6902 `add`,
//!   `remove`, `replace`; `path: ""` with `add` adds a resource; `jsonPath` (RFC 9535) expands to
//!   one pointer per match and `path` is appended; missing parents of an `add` are created, as
//!   EG's `EnsurePathExistsOnAdd`). Unlike EG, which marks the policy `Programmed=False` and goes
//!   on, a patch that fails fails the scenario.
//!
//! Gateway TLS is EG's own (per listener): ports that terminate or pass TLS through are not
//! modelled, and requests to them are skipped, as are requests through a sidecar (EG has none)
//! and to ports no Gateway API listener serves (EG reads no Ingress or Istio object).

use std::collections::BTreeMap;

use portico_controller::attach::envoy_gateway::{attach, Attachment, WasmCode};
use portico_controller::objects::Object;
use portico_controller::snapshot::Snapshot;
use portico_core::config::PathMatch;
use serde_json::{json, Value};

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
/// The cluster EG's Envoys fetch wasm modules from.
pub const WASM_CLUSTER: &str = "wasm_cluster";

/// Why a request to gateway `port` cannot be served by the modelled EG shapes (`None`: it can).
pub fn unsupported(snapshot: &Snapshot, attachment: &Attachment, port: u16) -> Option<String> {
    if snapshot
        .listeners
        .iter()
        .any(|l| l.port == port && l.tls.is_some())
    {
        return Some(
            "a gateway port serving TLS: Envoy Gateway terminates TLS by its own listeners (not modelled)"
                .to_owned(),
        );
    }
    if let Some(owners) = attachment.shared.get(&port) {
        return Some(format!(
            "a port several Gateways listen on ({}): Envoy Gateway runs an Envoy for each, at its own address, and a scenario has one",
            owners.join(", ")
        ));
    }
    if !attachment.ports.iter().any(|a| a.port == port) {
        return Some(
            "a port no Gateway API listener serves: Envoy Gateway reads no Ingress or Istio object"
                .to_owned(),
        );
    }
    None
}

/// The xDS resources of one modelled EG Envoy, by type.
#[derive(Debug, Default)]
struct Resources {
    listeners: Vec<Value>,
    route_configs: Vec<Value>,
    clusters: Vec<Value>,
}

impl Resources {
    fn by_type(&mut self, type_url: &str) -> Result<&mut Vec<Value>, String> {
        match type_url.rsplit('/').next().unwrap_or_default() {
            "envoy.config.listener.v3.Listener" => Ok(&mut self.listeners),
            "envoy.config.route.v3.RouteConfiguration" => Ok(&mut self.route_configs),
            "envoy.config.cluster.v3.Cluster" => Ok(&mut self.clusters),
            other => Err(format!("patch type {other}: not modelled")),
        }
    }
}

fn socket(address: &str, port: u16) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

/// EG's connection manager of an HTTP listener (`rds` → `route_config` named `rds`).
fn hcm(stat_prefix: &str, rds: &str) -> Value {
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": HCM_TYPE,
            "stat_prefix": stat_prefix,
            "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
            "http2_protocol_options": {"initial_connection_window_size": 1048576,
                                       "initial_stream_window_size": 65536,
                                       "max_concurrent_streams": 100},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                "suppress_envoy_headers": true}}],
            "merge_slashes": true,
            "normalize_path": true,
            "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
            "rds": {"config_source": {"ads": {}, "resource_api_version": "V3"},
                    "route_config_name": rds},
            "server_header_transformation": "PASS_THROUGH",
            "use_remote_address": true,
        },
    })
}

/// Envoy's route match for a Portico path match, as Envoy Gateway writes it (`PathPrefix` as
/// `path_separated_prefix`, `/` as `prefix`).
pub(crate) fn path_match(path: &PathMatch) -> Value {
    match path {
        PathMatch::Exact(p) => json!({"path": p}),
        PathMatch::Prefix(p) => {
            let p = p.trim_end_matches('/');
            if p.is_empty() {
                json!({"prefix": "/"})
            } else {
                json!({"path_separated_prefix": p})
            }
        }
        PathMatch::Regex(r) => json!({"safe_regex": {"regex": r}}),
    }
}

/// The resources EG would generate for the attached (plain HTTP) ports of `snapshot`.
fn generate(snapshot: &Snapshot, attachment: &Attachment) -> Resources {
    let mut out = Resources::default();
    let mut rule = 0;
    for a in &attachment.ports {
        let Some(served) = snapshot
            .listeners
            .iter()
            .find(|l| l.port == a.port && l.tls.is_none())
        else {
            continue;
        };
        let name = a.xds_name();
        // EG's Envoy listens on the service port + 10000 below 1024 (rebound later).
        let container_port = if a.port < 1024 {
            a.port + 10000
        } else {
            a.port
        };
        out.listeners.push(json!({
            "name": name,
            "address": socket("0.0.0.0", container_port),
            "per_connection_buffer_limit_bytes": 32768,
            "default_filter_chain": {
                "name": name,
                "filters": [hcm(&format!("http-{container_port}"), &name)],
            },
        }));
        let mut virtual_hosts: Vec<Value> = Vec::new();
        let mut domains_seen = std::collections::BTreeSet::new();
        for vh in &served.routing.virtual_hosts {
            let domains: Vec<&String> = vh
                .hosts
                .iter()
                .filter(|h| domains_seen.insert((*h).clone()))
                .collect();
            if domains.is_empty() {
                continue;
            }
            let mut routes = Vec::new();
            for r in &vh.routes {
                let cluster = format!("httproute/{}/rule/{rule}", a.namespace);
                rule += 1;
                out.clusters.push(json!({
                    "name": cluster, "type": "STATIC", "connect_timeout": "10s",
                    "load_assignment": {"cluster_name": cluster, "endpoints": []},
                }));
                let mut m = path_match(&r.path);
                m["case_sensitive"] = json!(true);
                routes.push(json!({
                    "name": format!("{} ({})", cluster, r.name),
                    "match": m,
                    "route": {"cluster": cluster, "upgrade_configs": [{"upgrade_type": "websocket"}]},
                }));
            }
            let host = domains[0].replace('.', "_");
            virtual_hosts.push(json!({
                "name": format!("{name}/{host}"),
                "domains": domains,
                "routes": routes,
            }));
        }
        out.route_configs.push(json!({
            "name": name,
            "ignore_port_in_host_matching": true,
            "virtual_hosts": virtual_hosts,
        }));
    }
    out
}

/// Puts an EnvoyExtensionPolicy's wasm filter into `resources` as EG does: into the
/// connection managers of the listeners it targets, disabled, and enabled on their routes.
fn insert_extension(
    resources: &mut Resources,
    policy: &Value,
    wasm_url: &str,
    wasm_sha256: &str,
) -> Result<(), String> {
    let namespace = policy["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = policy["metadata"]["name"].as_str().unwrap_or_default();
    let ir_name = format!("envoyextensionpolicy/{namespace}/{name}/wasm/0");
    let filter_name = format!("envoy.filters.http.wasm/{ir_name}");
    let wasm = &policy["spec"]["wasm"][0];
    let targets: Vec<String> = policy["spec"]["targetRefs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            format!(
                "{namespace}/{}/{}",
                t["name"].as_str().unwrap_or_default(),
                t["sectionName"].as_str().unwrap_or_default()
            )
        })
        .collect();
    // `config` is handed to the module as the JSON text of a StringValue.
    let configuration = serde_json::to_string(&wasm["config"]).map_err(|e| e.to_string())?;
    let filter = json!({
        "name": filter_name,
        "disabled": true,
        "typed_config": {"@type": WASM_TYPE, "config": {
            "name": wasm["name"].as_str().unwrap_or(&ir_name),
            "root_id": wasm["rootID"],
            "vm_config": {
                "vm_id": ir_name,
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"remote": {
                    "http_uri": {"uri": wasm_url, "cluster": WASM_CLUSTER, "timeout": "10s"},
                    "sha256": wasm_sha256,
                    "retry_policy": {"num_retries": 10}}},
            },
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": configuration},
        }},
    });
    let rc_has_routes: Vec<(Value, bool)> = resources
        .route_configs
        .iter()
        .map(|rc| {
            let has = rc["virtual_hosts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|vh| vh["routes"].as_array().is_some_and(|r| !r.is_empty()));
            (rc["name"].clone(), has)
        })
        .collect();
    let mut route_configs = Vec::new();
    let mut found = false;
    for l in &mut resources.listeners {
        let lname = l["name"].as_str().unwrap_or_default().to_owned();
        if !targets.contains(&lname) {
            continue;
        }
        found = true;
        let chain = &mut l["default_filter_chain"]["filters"][0]["typed_config"];
        let rds = chain["rds"]["route_config_name"].clone();
        // EG puts the filter into a connection manager only when one of its routes carries it.
        let has_routes = rc_has_routes.iter().any(|(n, has)| *n == rds && *has);
        route_configs.push(rds.as_str().unwrap_or_default().to_owned());
        if !has_routes {
            continue;
        }
        let Some(filters) = chain["http_filters"].as_array_mut() else {
            return Err(format!("listener {lname}: no HTTP filters"));
        };
        let router = filters
            .iter()
            .position(|f| f["name"] == "envoy.filters.http.router")
            .unwrap_or(filters.len());
        filters.insert(router, filter.clone());
    }
    if !found {
        return Err(format!(
            "EnvoyExtensionPolicy {namespace}/{name}: no listener {targets:?}"
        ));
    }
    for rc in &mut resources.route_configs {
        if !route_configs.iter().any(|n| rc["name"] == json!(n)) {
            continue;
        }
        for vh in rc["virtual_hosts"].as_array_mut().into_iter().flatten() {
            for r in vh["routes"].as_array_mut().into_iter().flatten() {
                r["typed_per_filter_config"][&filter_name] = json!({
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                    "config": {}});
            }
        }
    }
    Ok(())
}

/// An RFC 6901 pointer's tokens.
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer {pointer:?} does not start with /"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(token: &str, len: usize, insert: bool) -> Result<usize, String> {
    if insert && token == "-" {
        return Ok(len);
    }
    let i: usize = token
        .parse()
        .map_err(|_| format!("{token:?} is not an array index"))?;
    if i > len || (!insert && i == len) {
        return Err(format!("index {i} out of bounds ({len})"));
    }
    Ok(i)
}

/// Applies one RFC 6902 operation at `pointer` (a missing parent of an `add` is created).
fn apply_op(doc: &mut Value, op: &str, pointer: &str, value: Option<&Value>) -> Result<(), String> {
    let tokens = tokens(pointer)?;
    let Some((last, parents)) = tokens.split_last() else {
        return match (op, value) {
            ("add" | "replace", Some(v)) => {
                *doc = v.clone();
                Ok(())
            }
            _ => Err(format!("{op} at the document root")),
        };
    };
    let mut target = doc;
    for t in parents {
        target = match target {
            Value::Object(o) => {
                if op == "add" && !o.contains_key(t) {
                    o.insert(t.clone(), json!({}));
                }
                o.get_mut(t)
                    .ok_or_else(|| format!("{pointer}: no member {t:?}"))?
            }
            Value::Array(a) => {
                let i = index(t, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("{pointer}: {t:?} is inside a scalar")),
        };
    }
    match (op, target) {
        ("add", Value::Object(o)) => {
            o.insert(last.clone(), value.cloned().unwrap_or(Value::Null));
        }
        ("add", Value::Array(a)) => {
            let i = index(last, a.len(), true)?;
            a.insert(i, value.cloned().unwrap_or(Value::Null));
        }
        ("remove", Value::Object(o)) => {
            o.remove(last)
                .ok_or_else(|| format!("{pointer}: nothing to remove"))?;
        }
        ("remove", Value::Array(a)) => {
            let i = index(last, a.len(), false)?;
            a.remove(i);
        }
        ("replace", Value::Object(o)) => {
            let slot = o
                .get_mut(last)
                .ok_or_else(|| format!("{pointer}: nothing to replace"))?;
            *slot = value.cloned().unwrap_or(Value::Null);
        }
        ("replace", Value::Array(a)) => {
            let i = index(last, a.len(), false)?;
            a[i] = value.cloned().unwrap_or(Value::Null);
        }
        (op @ ("add" | "remove" | "replace"), _) => {
            return Err(format!("{op} {pointer}: the parent is a scalar"))
        }
        (op, _) => return Err(format!("JSON patch op {op:?}: not modelled")),
    }
    Ok(())
}

/// Applies an EnvoyPatchPolicy's JSON patches to `resources`, as EG does. A `jsonPath` that
/// matches nothing skips its patch, as in EG (which then reports the policy not programmed): the
/// notes say which.
fn apply_patch_policy(resources: &mut Resources, policy: &Value) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let policy_name = policy["metadata"]["name"].as_str().unwrap_or_default();
    for (i, p) in policy["spec"]["jsonPatches"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let context = |e: String| format!("EnvoyPatchPolicy {policy_name} jsonPatches[{i}]: {e}");
        let type_url = p["type"].as_str().unwrap_or_default();
        let name = p["name"].as_str().unwrap_or_default();
        let operation = &p["operation"];
        let op = operation["op"].as_str().unwrap_or_default();
        let path = operation["path"].as_str();
        let json_path = operation["jsonPath"].as_str();
        let value = operation.get("value");
        let list = resources.by_type(type_url).map_err(context)?;
        if op == "add" && path == Some("") && json_path.is_none() {
            let v = value.ok_or_else(|| context("add without a value".into()))?;
            // The model runs every Gateway in one Envoy where EG runs one each: a resource two
            // Gateways' policies add is added once.
            if !list.contains(v) {
                list.push(v.clone());
            }
            continue;
        }
        let resource = list
            .iter_mut()
            .find(|r| r["name"] == json!(name))
            .ok_or_else(|| context(format!("no {type_url} named {name:?}")))?;
        let pointers: Vec<String> = match json_path {
            Some(jp) => {
                let query = serde_json_path::JsonPath::parse(jp)
                    .map_err(|e| context(format!("jsonPath {jp:?}: {e}")))?;
                let found: Vec<String> = query
                    .query_located(resource)
                    .locations()
                    .map(|l| l.to_json_pointer())
                    .collect();
                if found.is_empty() {
                    notes.push(context(format!("no jsonPointers were found for {jp:?}")));
                    continue;
                }
                found
                    .into_iter()
                    .map(|base| format!("{base}{}", path.unwrap_or("")))
                    .collect()
            }
            None => vec![path
                .ok_or_else(|| context("neither path nor jsonPath".into()))?
                .to_owned()],
        };
        for pointer in pointers {
            apply_op(resource, op, &pointer, value).map_err(context)?;
        }
    }
    Ok(notes)
}

/// A runnable Envoy bootstrap: EG's shapes for `snapshot`'s Gateways, Portico's
/// EnvoyExtensionPolicies and EnvoyPatchPolicies applied as EG would (the module fetched from
/// `wasm_url`, whose sha256 is `wasm_sha256`, through [`WASM_CLUSTER`] at `wasm_server`), then
/// every listener moved to the loopback port the harness picked (`gateway_bind`: client port →
/// bind). Also returns the attachment (its objects, its ports) and the patches EG would have
/// skipped.
///
/// # Errors
/// An extension or patch EG's model refuses.
pub fn bootstrap(
    objects: &[Object],
    snapshot: &Snapshot,
    wasm_server: std::net::SocketAddr,
    wasm_sha256: &str,
    gateway_bind: &BTreeMap<u16, u16>,
    admin_port: u16,
) -> Result<(Value, Attachment, Vec<String>), String> {
    let wasm_url = format!("http://{wasm_server}/portico_filter_routing.wasm");
    let attachment = attach(
        objects,
        snapshot,
        &WasmCode::Http {
            url: wasm_url.clone(),
            sha256: Some(wasm_sha256.to_owned()),
        },
    );
    let mut resources = generate(snapshot, &attachment);
    resources.clusters.push(json!({
        "name": WASM_CLUSTER, "type": "STATIC", "connect_timeout": "10s",
        "load_assignment": {"cluster_name": WASM_CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": socket(&wasm_server.ip().to_string(), wasm_server.port())}}]}]},
    }));
    let served: Vec<u16> = snapshot
        .listeners
        .iter()
        .filter(|l| l.tls.is_none())
        .map(|l| l.port)
        .collect();
    let mut notes = Vec::new();
    for o in &attachment.objects {
        let policy_port = |o: &Value| {
            attachment
                .ports
                .iter()
                .find(|a| o["metadata"]["name"] == json!(a.policy))
                .map(|a| a.port)
        };
        match o["kind"].as_str() {
            // EEPs of ports the model serves (not TLS ones).
            Some("EnvoyExtensionPolicy") if policy_port(o).is_some_and(|p| served.contains(&p)) => {
                insert_extension(&mut resources, o, &wasm_url, wasm_sha256)?;
            }
            Some("EnvoyPatchPolicy") => {
                // The patches of TLS ports target resources the model does not generate.
                let mut o = o.clone();
                let keep: Vec<String> = attachment
                    .ports
                    .iter()
                    .filter(|a| served.contains(&a.port))
                    .flat_map(|a| {
                        let mut names = vec![a.xds_name()];
                        names.extend(a.listeners.iter().map(|l| a.xds_name_of(l)));
                        names
                    })
                    .collect();
                if let Some(ps) = o["spec"]["jsonPatches"].as_array_mut() {
                    ps.retain(|p| {
                        p["type"].as_str().is_some_and(|t| t.ends_with("Cluster"))
                            || keep.iter().any(|k| p["name"] == json!(k))
                    });
                }
                notes.extend(apply_patch_policy(&mut resources, &o)?);
            }
            _ => {}
        }
    }
    // RDS → inline, and each listener on the loopback port the harness picked.
    let mut listeners = Vec::new();
    for mut l in resources.listeners {
        let name = l["name"].as_str().unwrap_or_default().to_owned();
        let Some(a) = attachment.ports.iter().find(|a| a.xds_name() == name) else {
            continue;
        };
        let Some(bind) = gateway_bind.get(&a.port) else {
            continue;
        };
        l["address"] = socket("127.0.0.1", *bind);
        let hcm = &mut l["default_filter_chain"]["filters"][0]["typed_config"];
        let rds = hcm["rds"]["route_config_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let rc = resources
            .route_configs
            .iter()
            .find(|r| r["name"] == json!(rds))
            .cloned()
            .ok_or_else(|| format!("listener {name}: no route configuration {rds}"))?;
        if let Some(o) = hcm.as_object_mut() {
            o.remove("rds");
            o.insert("route_config".into(), rc);
        }
        listeners.push(l);
    }
    let bootstrap = json!({
        "node": {"id": "envoy-gateway-shaped", "cluster": "envoy-gateway-shaped"},
        "admin": {"address": socket("127.0.0.1", admin_port)},
        "static_resources": {"listeners": listeners, "clusters": resources.clusters},
    });
    Ok((bootstrap, attachment, notes))
}

/// Serves the file at `path` to every GET on a loopback port (EG's wasm HTTP server); returns
/// its address. The task ends with the runtime.
///
/// # Errors
/// The file cannot be read or no port bound.
pub async fn serve_file(path: &std::path::Path) -> Result<std::net::SocketAddr, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = std::sync::Arc::new(
        std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                // One request per connection: read the head, answer, close.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_patch_ops_follow_rfc_6902() {
        let mut doc = json!({"a": [1, 2], "b": {"c": 1}});
        apply_op(&mut doc, "add", "/a/0", Some(&json!(0))).unwrap();
        apply_op(&mut doc, "add", "/a/-", Some(&json!(3))).unwrap();
        apply_op(&mut doc, "remove", "/b/c", None).unwrap();
        apply_op(&mut doc, "add", "/x/y/z", Some(&json!(true))).unwrap();
        apply_op(&mut doc, "replace", "/a/1", Some(&json!(9))).unwrap();
        assert_eq!(
            doc,
            json!({"a": [0, 9, 2, 3], "b": {}, "x": {"y": {"z": true}}})
        );
        assert!(apply_op(&mut doc, "remove", "/b/missing", None).is_err());
        assert!(apply_op(&mut doc, "add", "/a/9", Some(&json!(1))).is_err());
        assert!(apply_op(&mut doc, "move", "/a/0", None).is_err());
        assert!(apply_op(&mut doc, "add", "a", None).is_err());
    }

    #[test]
    fn json_path_patches_apply_to_each_match_and_fail_on_none() {
        let mut r = Resources {
            route_configs: vec![json!({"name": "rc", "virtual_hosts": [
                {"routes": [{"name": "x"}]}, {"routes": []}]})],
            ..Resources::default()
        };
        let policy = |json_path: &str| {
            json!({"metadata": {"name": "p"}, "spec": {"jsonPatches": [{
                "type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                "name": "rc",
                "operation": {"op": "add", "jsonPath": json_path, "path": "/routes/0",
                              "value": {"name": "first"}}}]}})
        };
        assert!(apply_patch_policy(&mut r, &policy("$.virtual_hosts[*]"))
            .unwrap()
            .is_empty());
        assert_eq!(
            r.route_configs[0]["virtual_hosts"][0]["routes"][0]["name"],
            "first"
        );
        assert_eq!(
            r.route_configs[0]["virtual_hosts"][1]["routes"][0]["name"],
            "first"
        );
        let notes = apply_patch_policy(&mut r, &policy("$.nothing[*]")).unwrap();
        assert!(notes[0].contains("no jsonPointers were found"), "{notes:?}");
        let mut missing = policy("$.virtual_hosts[*]");
        missing["spec"]["jsonPatches"][0]["name"] = json!("other");
        let err = apply_patch_policy(&mut r, &missing).unwrap_err();
        assert!(err.contains("named \"other\""), "{err}");
    }
}
