//! Portico attached to an Envoy configured the way istiod configures its proxies: for a
//! scenario's services, the listeners, route configurations and clusters istiod would generate
//! for an ingress gateway and for a sidecar — with istiod's names and default filters, and none
//! of Portico — then Portico's EnvoyFilters ([`portico_controller::attach`]) merged in as istiod
//! merges them ([`portico_controller::attach::patch`]). The scenario host runs that Envoy.
//!
//! The istiod shapes modelled:
//! - gateway: a listener `0.0.0.0_<listener port>` per gateway port, its HTTP connection
//!   manager with route configuration `http.<listener port>` holding the catch-all virtual host
//!   `blackhole:<port>` (404) that istiod writes for a server no VirtualService binds, and
//!   istiod's HTTP filters (CORS, fault, router);
//! - sidecar: `virtualOutbound` (`use_original_dst`, chains `virtualOutbound-blackhole` and
//!   `virtualOutbound-catchall-tcp` → `PassthroughCluster`), a `0.0.0.0_<port>` listener per
//!   mesh HTTP port (not bound, reached by hand-off; route configuration `<port>` with the
//!   `allow_any` virtual host) and per TLS / TCP registry port (`tcp_proxy`);
//! - clusters: `outbound|PORT|SUBSET|FQDN` with the endpoints, `BlackHoleCluster`,
//!   `PassthroughCluster`.
//!
//! Gateway TLS is istiod's own (per Gateway server): gateway ports that terminate or pass TLS
//! through are not modelled, and requests to them are skipped.

use std::collections::BTreeMap;

use portico_controller::attach::patch::{apply, Proxy, ProxyKind};
use portico_controller::attach::{envoy_filters, wasmplugin, AttachOptions};
use portico_controller::snapshot::Snapshot;
use serde_json::{json, Value};

/// The gateway's Envoy listens on this plus the port clients address (istiod's listener
/// naming follows the former: `0.0.0.0_10080` for port 80), so no two gateway ports collide.
pub const GATEWAY_PORT_OFFSET: u16 = 10000;

fn hcm(stat: &str, route_config: Value) -> Value {
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat,
            "normalize_path": true,
            "merge_slashes": true,
            "route_config": route_config,
            "http_filters": [
                {"name": "envoy.filters.http.cors", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
                {"name": "envoy.filters.http.fault", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                {"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
            ],
        },
    })
}

fn tcp_proxy(stat: &str, cluster: &str) -> Value {
    json!({"name": "envoy.filters.network.tcp_proxy", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": stat, "cluster": cluster}})
}

fn socket(address: &str, port: u16) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

/// Why a request to gateway `port` cannot be served by the modelled istiod shapes.
pub fn unsupported(snapshot: &Snapshot, port: u16) -> Option<String> {
    snapshot
        .listeners
        .iter()
        .any(|l| l.port == port && l.tls.is_some())
        .then(|| {
            "a gateway port serving TLS: istiod terminates TLS by its own Gateway servers (not modelled)"
                .to_owned()
        })
}

/// The gateway configuration istiod would generate for `snapshot`'s gateway ports.
pub fn gateway(snapshot: &Snapshot) -> Vec<Value> {
    snapshot
        .listeners
        .iter()
        .filter(|l| l.tls.is_none())
        .map(|l| {
            let port = l.port + GATEWAY_PORT_OFFSET;
            json!({
                "name": format!("0.0.0.0_{port}"),
                "address": socket("0.0.0.0", port),
                "traffic_direction": "OUTBOUND",
                "filter_chains": [{"filters": [hcm(
                    &format!("outbound_0.0.0.0_{port}"),
                    json!({"name": format!("http.{port}"), "virtual_hosts": [{
                        "name": format!("blackhole:{}", l.port), "domains": ["*"],
                        "routes": [{"name": "default", "match": {"prefix": "/"},
                                    "direct_response": {"status": 404}}]}]}),
                )]}],
            })
        })
        .collect()
}

/// The outbound listeners istiod would generate for a sidecar of `snapshot`'s mesh.
pub fn sidecar(snapshot: &Snapshot) -> Vec<Value> {
    let mut out = vec![json!({
        "name": "virtualOutbound",
        "address": socket("0.0.0.0", 15001),
        "use_original_dst": true,
        "traffic_direction": "OUTBOUND",
        // The PROXY protocol header stands in for the iptables redirect: it restores the
        // destination the client addressed, which the hand-off follows.
        "listener_filters": [
            {"name": "envoy.filters.listener.proxy_protocol", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"}},
            {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}},
        ],
        "filter_chains": [
            {"name": "virtualOutbound-blackhole", "filter_chain_match": {"destination_port": 15001},
             "filters": [tcp_proxy("BlackHoleCluster", "BlackHoleCluster")]},
            {"name": "virtualOutbound-catchall-tcp",
             "filters": [tcp_proxy("PassthroughCluster", "PassthroughCluster")]},
        ],
    })];
    let mut http_ports = std::collections::BTreeSet::new();
    for l in &snapshot.sidecar {
        http_ports.insert(l.port);
        out.push(json!({
            "name": format!("0.0.0.0_{}", l.port),
            "address": socket("0.0.0.0", l.port),
            "bind_to_port": false,
            "traffic_direction": "OUTBOUND",
            "filter_chains": [{"filters": [hcm(
                &format!("outbound_0.0.0.0_{}", l.port),
                json!({"name": l.port.to_string(), "virtual_hosts": [{
                    "name": "allow_any", "domains": ["*"],
                    "routes": [{"name": "allow_any", "match": {"prefix": "/"},
                                "route": {"cluster": "PassthroughCluster", "timeout": "0s"}}]}]}),
            )]}],
        }));
    }
    if let Some(e) = &snapshot.egress {
        for port in e.tls_ports.union(&e.tcp_ports) {
            if http_ports.contains(port) {
                continue;
            }
            out.push(json!({
                "name": format!("0.0.0.0_{port}"),
                "address": socket("0.0.0.0", *port),
                "bind_to_port": false,
                "traffic_direction": "OUTBOUND",
                "filter_chains": [{"filters": [tcp_proxy(
                    &format!("outbound_0.0.0.0_{port}"), "PassthroughCluster")]}],
            }));
        }
    }
    out
}

/// The clusters istiod would generate: one per Service port (and subset), with its endpoints,
/// and its two fixed ones.
pub fn clusters(snapshot: &Snapshot) -> Vec<Value> {
    let mut out = vec![
        json!({"name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"}),
        json!({"name": "PassthroughCluster", "type": "ORIGINAL_DST",
               "lb_policy": "CLUSTER_PROVIDED", "connect_timeout": "10s"}),
    ];
    for c in &snapshot.clusters {
        let endpoints: Vec<Value> = c
            .endpoints
            .iter()
            .filter_map(|e| e.parse::<std::net::SocketAddr>().ok())
            .map(|a| json!({"endpoint": {"address": socket(&a.ip().to_string(), a.port())}}))
            .collect();
        out.push(json!({
            "name": c.name, "type": "STATIC", "connect_timeout": "10s",
            "load_assignment": {"cluster_name": c.name, "endpoints": [{"lb_endpoints": endpoints}]},
        }));
    }
    out
}

/// A runnable Envoy bootstrap: istiod's shapes for `snapshot`, Portico's EnvoyFilters merged
/// into the gateway's and the sidecar's as istiod would (with `wasm_plugins`, the gateway's
/// routing filters come from WasmPlugin objects, inserted as istiod inserts them), then every
/// bound listener moved to the loopback port the harness picked (`gateway_bind`: client port →
/// bind; `sidecar_bind`: `virtualOutbound`'s; Envoy's admin on `admin_port`). Also returns the
/// EnvoyFilters and WasmPlugins.
///
/// # Errors
/// A patch the merge refuses.
pub fn bootstrap(
    snapshot: &Snapshot,
    wasm_dir: &std::path::Path,
    gateway_bind: &BTreeMap<u16, u16>,
    sidecar_bind: Option<u16>,
    admin_port: u16,
    wasm_plugins: bool,
) -> Result<(Value, Vec<Value>), String> {
    let options = AttachOptions {
        gateway_ports: snapshot
            .listeners
            .iter()
            .map(|l| (l.port, l.port + GATEWAY_PORT_OFFSET))
            .collect(),
        wasm_dir: wasm_dir.to_owned(),
        wasm_plugin_url: wasm_plugins.then(|| {
            format!(
                "file://{}",
                wasm_dir.join("portico_filter_routing.wasm").display()
            )
        }),
        ..AttachOptions::default()
    };
    let filters = envoy_filters(snapshot, &options);
    let plugins = wasmplugin::wasm_plugins(snapshot, &options);
    // The Gateway server port of a gateway listener (istiod names the listener by its target).
    let server_port = |l: &Value| {
        l["name"]
            .as_str()
            .and_then(|n| n.strip_prefix("0.0.0.0_"))
            .and_then(|p| p.parse::<u16>().ok())
            .and_then(|p| p.checked_sub(GATEWAY_PORT_OFFSET))
    };
    let proxy = |kind| Proxy {
        kind,
        labels: match kind {
            ProxyKind::Gateway => options.gateway_labels.clone(),
            ProxyKind::Sidecar => BTreeMap::from([("app".into(), "client".into())]),
        },
        namespace: match kind {
            ProxyKind::Gateway => "istio-system".into(),
            ProxyKind::Sidecar => "default".into(),
        },
        root_namespace: "istio-system".into(),
    };
    let istiod = |listeners: Vec<Value>| json!({"static_resources": {"listeners": listeners, "clusters": clusters(snapshot)}});
    let mut gw = istiod(gateway(snapshot));
    apply(&mut gw, &filters, &proxy(ProxyKind::Gateway)).map_err(|e| e.to_string())?;
    wasmplugin::apply(&mut gw, &plugins, &proxy(ProxyKind::Gateway), server_port)
        .map_err(|e| e.to_string())?;
    let mut listeners = gw["static_resources"]["listeners"].take();
    let mut all_clusters = gw["static_resources"]["clusters"].take();
    if sidecar_bind.is_some() {
        let mut sc = istiod(sidecar(snapshot));
        apply(&mut sc, &filters, &proxy(ProxyKind::Sidecar)).map_err(|e| e.to_string())?;
        // The gateway's WasmPlugins select the gateway only.
        let port = |l: &Value| {
            l["name"]
                .as_str()
                .and_then(|n| n.strip_prefix("0.0.0.0_"))
                .and_then(|p| p.parse::<u16>().ok())
        };
        wasmplugin::apply(&mut sc, &plugins, &proxy(ProxyKind::Sidecar), port)
            .map_err(|e| e.to_string())?;
        if let (Some(ls), Some(more)) = (
            listeners.as_array_mut(),
            sc["static_resources"]["listeners"].as_array(),
        ) {
            ls.extend(more.iter().cloned());
        }
        // One Envoy plays both proxies: each cluster once.
        if let (Some(cs), Some(more)) = (
            all_clusters.as_array_mut(),
            sc["static_resources"]["clusters"].as_array(),
        ) {
            for c in more {
                if !cs.iter().any(|x| x["name"] == c["name"]) {
                    cs.push(c.clone());
                }
            }
        }
    }
    if let Some(ls) = listeners.as_array_mut() {
        for l in ls.iter_mut() {
            let name = l["name"].as_str().unwrap_or_default().to_owned();
            let bind = if name == "virtualOutbound" {
                sidecar_bind
            } else {
                snapshot
                    .listeners
                    .iter()
                    .find(|g| format!("0.0.0.0_{}", g.port + GATEWAY_PORT_OFFSET) == name)
                    .and_then(|g| gateway_bind.get(&g.port).copied())
            };
            if let Some(port) = bind {
                l["address"] = socket("127.0.0.1", port);
            }
        }
    }
    let bootstrap = json!({
        "node": {"id": "istio-shaped", "cluster": "istio-shaped"},
        "admin": {"address": socket("127.0.0.1", admin_port)},
        "static_resources": {"listeners": listeners, "clusters": all_clusters},
    });
    let mut objects = filters;
    objects.extend(plugins);
    Ok((bootstrap, objects))
}
