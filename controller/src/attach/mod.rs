//! Portico in an Istio mesh: the `networking.istio.io/v1alpha3` EnvoyFilter objects that insert
//! Portico's modules, each with its configuration, into the proxies istiod configures — the
//! ingress gateway (`context: GATEWAY`) and the sidecars (`context: SIDECAR_OUTBOUND`) — and
//! the routes and clusters Portico's steering needs there.
//!
//! What each EnvoyFilter patches, in istiod's names (see [`patch`] for how istiod merges them):
//!
//! | patch | match | what |
//! | --- | --- | --- |
//! | `HTTP_FILTER` `INSERT_BEFORE` | `GATEWAY` listener on the port's gateway port (`0.0.0.0_8080` for port 80), HCM, sub-filter `envoy.filters.http.router` | `portico-routing-PORT` (routing filter, inline config) |
//! | `HTTP_FILTER` `INSERT_BEFORE` | `SIDECAR_OUTBOUND` listener on a destination port (`0.0.0.0_PORT`), router | `portico-egress-http` then `portico-routing-sidecar-PORT` |
//! | `NETWORK_FILTER` `INSERT_BEFORE` | `SIDECAR_OUTBOUND` `envoy.filters.network.tcp_proxy` on TLS / TCP registry ports, and on `virtualOutbound`'s `virtualOutbound-catchall-tcp` chain | `portico-egress-tls` / `portico-egress-tcp` |
//! | `NETWORK_FILTER` `MERGE` | the same `tcp_proxy` on TLS registry ports | `upstream_connect_mode: ON_DOWNSTREAM_DATA`: connect once the ClientHello has picked the upstream |
//! | `HTTP_ROUTE` `INSERT_FIRST` | every route configuration of the context | the two steering routes (to the cluster the filter names — istiod's `outbound\|PORT\|SUBSET\|FQDN`, which Portico uses too — or the endpoint it chose), taken only by requests the filter steered |
//! | `CLUSTER` `ADD` | the context | `portico\|original-dst` and `portico\|passthrough` (`ORIGINAL_DST`) |
//!
//! Filter configuration travels inline (`typed_config`), so istiod pushes a change as a listener
//! update, which Envoy applies without dropping a connection (old connections drain on the old
//! listener). Portico's TLS modules are not attached: in a mesh, istiod terminates TLS per its
//! Gateway servers.
//!
//! With [`AttachOptions::wasm_plugin_url`] the gateway's routing filters are WasmPlugin objects
//! instead ([`wasmplugin`]), and the gateway's EnvoyFilter keeps only the route and cluster
//! patches.

pub mod envoy_gateway;
pub mod patch;
pub mod wasmplugin;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::envoy::{
    egress_config, original_dst_clusters, routing_config, routing_filter_name, sidecar_filter_name,
    steering_routes, RenderOptions, EGRESS_HTTP_FILTER, EGRESS_TCP_FILTER, EGRESS_TLS_FILTER,
};
use crate::snapshot::Snapshot;

/// The HTTP connection manager's filter name.
pub const HCM: &str = "envoy.filters.network.http_connection_manager";
/// Envoy's router: Portico's HTTP filters go just before it.
pub const ROUTER: &str = "envoy.filters.http.router";
/// Envoy's TCP proxy: the egress network filters go just before it.
pub const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
/// istiod's sidecar capture listener and its catch-all TCP chain.
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
/// The chain of [`VIRTUAL_OUTBOUND`] that takes TCP to unknown destinations.
pub const CATCHALL_TCP: &str = "virtualOutbound-catchall-tcp";

/// Where the EnvoyFilters go and what they select.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Namespace of the EnvoyFilters: istiod's root namespace (`istio-system`) applies them to
    /// every proxy the selector picks.
    pub namespace: String,
    /// Labels of the ingress gateway's pods (`istio: ingressgateway`).
    pub gateway_labels: BTreeMap<String, String>,
    /// Gateway port a client addresses → the port the gateway's Envoy listens on (istiod names
    /// the listener by the latter: `0.0.0.0_8080` for port 80 of the default gateway Service).
    pub gateway_ports: BTreeMap<u16, u16>,
    /// Directory holding the `.wasm` modules inside the proxy container.
    pub wasm_dir: PathBuf,
    /// Also patch the sidecars (mesh routing and egress).
    pub sidecar: bool,
    /// Attach the gateway's routing module with WasmPlugin objects loading the module from this
    /// URL (`file://…`, `oci://…`) instead of inserting it with the EnvoyFilter
    /// ([`wasmplugin`]); the EnvoyFilter keeps the route and cluster patches.
    pub wasm_plugin_url: Option<String>,
    /// The WasmPlugins' `sha256`: for an `oci://` URL the image's manifest digest (what
    /// `portico-controller package` prints), which istio-agent checks before loading.
    pub wasm_plugin_sha256: Option<String>,
}

impl Default for AttachOptions {
    /// `istio-system`, `istio: ingressgateway`, the default gateway Service's ports (80 → 8080,
    /// 443 → 8443), modules in `/var/local/lib/wasm`, sidecars patched.
    fn default() -> Self {
        AttachOptions {
            namespace: "istio-system".into(),
            gateway_labels: BTreeMap::from([("istio".into(), "ingressgateway".into())]),
            gateway_ports: BTreeMap::from([(80, 8080), (443, 8443)]),
            wasm_dir: PathBuf::from("/var/local/lib/wasm"),
            sidecar: true,
            wasm_plugin_url: None,
            wasm_plugin_sha256: None,
        }
    }
}

/// Name of the gateway's EnvoyFilter.
pub const GATEWAY_FILTER: &str = "portico-gateway";
/// Name of the sidecars' EnvoyFilter.
pub const SIDECAR_FILTER: &str = "portico-sidecar";

fn patch(apply_to: &str, r#match: Value, operation: &str, value: Value) -> Value {
    json!({"applyTo": apply_to, "match": r#match, "patch": {"operation": operation, "value": value}})
}

/// A cluster or route as a patch value: the message itself, without the `@type` of an `Any`.
fn message(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("@type");
    }
    v
}

/// The steering routes first in every route configuration of `context`, and the clusters
/// they and the egress filter use.
fn steering(context: &str) -> Vec<Value> {
    let mut out = Vec::new();
    // INSERT_FIRST puts each at the top: insert the last one first.
    for route in steering_routes().into_iter().rev() {
        out.push(patch(
            "HTTP_ROUTE",
            json!({"context": context, "routeConfiguration": {}}),
            "INSERT_FIRST",
            route,
        ));
    }
    for cluster in original_dst_clusters() {
        out.push(patch(
            "CLUSTER",
            json!({"context": context}),
            "ADD",
            message(cluster),
        ));
    }
    out
}

fn before_router(context: &str, port: u16, filter: Value) -> Value {
    patch(
        "HTTP_FILTER",
        json!({"context": context, "listener": {"portNumber": port, "filterChain": {
            "filter": {"name": HCM, "subFilter": {"name": ROUTER}}}}}),
        "INSERT_BEFORE",
        filter,
    )
}

fn before_tcp_proxy(listener: Value, filter: Value) -> Value {
    patch("NETWORK_FILTER", listener, "INSERT_BEFORE", filter)
}

fn envoy_filter(
    name: &str,
    options: &AttachOptions,
    selector: Option<Value>,
    patches: Vec<Value>,
) -> Value {
    let mut spec = json!({"configPatches": patches});
    if let Some(labels) = selector {
        spec["workloadSelector"] = json!({"labels": labels});
    }
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": {"app.kubernetes.io/managed-by": "portico"},
        },
        "spec": spec,
    })
}

/// The EnvoyFilters that attach `snapshot`'s configuration to istiod's proxies: one for the
/// gateway (when the snapshot has gateway listeners), one for the sidecars (when asked and the
/// snapshot routes or polices the mesh).
pub fn envoy_filters(snapshot: &Snapshot, options: &AttachOptions) -> Vec<Value> {
    let render = RenderOptions {
        routing_wasm: options.wasm_dir.join("portico_filter_routing.wasm"),
        xds_dir: PathBuf::new(),
        listen_address: String::new(),
        admin_port: 0,
        port_map: BTreeMap::new(),
        sidecar_port: None,
    };
    let mut out = Vec::new();
    if !snapshot.listeners.is_empty() {
        let mut patches = Vec::new();
        // With WasmPlugins, istiod inserts the filters; the EnvoyFilter keeps the rest.
        let listeners = if options.wasm_plugin_url.is_some() {
            &[][..]
        } else {
            &snapshot.listeners[..]
        };
        for l in listeners {
            let name = routing_filter_name(l.port);
            let port = options
                .gateway_ports
                .get(&l.port)
                .copied()
                .unwrap_or(l.port);
            patches.push(before_router(
                "GATEWAY",
                port,
                json!({"name": name, "typed_config": routing_config(&name, &l.routing, &render)}),
            ));
        }
        patches.extend(steering("GATEWAY"));
        let labels = serde_json::to_value(&options.gateway_labels).unwrap_or_default();
        out.push(envoy_filter(GATEWAY_FILTER, options, Some(labels), patches));
    }
    if options.sidecar && (!snapshot.sidecar.is_empty() || snapshot.egress.is_some()) {
        let ctx = "SIDECAR_OUTBOUND";
        let mut patches = Vec::new();
        let egress = |name: &str, network: bool| {
            snapshot.egress.as_ref().map(|e| {
                json!({"name": name, "typed_config": egress_config(name, &e.config, &render, network)})
            })
        };
        for l in &snapshot.sidecar {
            if let Some(f) = egress(EGRESS_HTTP_FILTER, false) {
                patches.push(before_router(ctx, l.port, f));
            }
            let name = sidecar_filter_name(l.port);
            patches.push(before_router(
                ctx,
                l.port,
                json!({"name": name, "typed_config": routing_config(&name, &l.routing, &render)}),
            ));
        }
        if let Some(e) = &snapshot.egress {
            let tcp_proxy = json!({"filter": {"name": TCP_PROXY}});
            for port in &e.tls_ports {
                if let Some(f) = egress(EGRESS_TLS_FILTER, true) {
                    let listener = json!({"context": ctx, "listener": {"portNumber": port, "filterChain": tcp_proxy}});
                    patches.push(before_tcp_proxy(listener.clone(), f));
                    // The TCP proxy connects once the ClientHello is in (and the filter has
                    // picked the upstream by it), not when the connection opens.
                    patches.push(patch(
                        "NETWORK_FILTER",
                        listener,
                        "MERGE",
                        json!({"name": TCP_PROXY, "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                            "upstream_connect_mode": "ON_DOWNSTREAM_DATA",
                            "max_early_data_bytes": 65536}}),
                    ));
                }
            }
            for port in &e.tcp_ports {
                if snapshot.sidecar.iter().any(|l| l.port == *port) || e.tls_ports.contains(port) {
                    continue;
                }
                if let Some(f) = egress(EGRESS_TCP_FILTER, true) {
                    patches.push(before_tcp_proxy(
                        json!({"context": ctx, "listener": {"portNumber": port, "filterChain": tcp_proxy}}),
                        f,
                    ));
                }
            }
            if let Some(f) = egress(EGRESS_TCP_FILTER, true) {
                patches.push(before_tcp_proxy(
                    json!({"context": ctx, "listener": {"name": VIRTUAL_OUTBOUND, "filterChain": {
                        "name": CATCHALL_TCP, "filter": {"name": TCP_PROXY}}}}),
                    f,
                ));
            }
        }
        patches.extend(steering(ctx));
        out.push(envoy_filter(SIDECAR_FILTER, options, None, patches));
    }
    out
}

/// [`envoy_filters`] and [`wasmplugin::wasm_plugins`] as one YAML stream, with a header
/// saying where it comes from.
pub fn envoy_filters_yaml(snapshot: &Snapshot, options: &AttachOptions) -> String {
    let mut out = String::from(
        "# Generated by `portico-controller istio`: Portico's modules attached to istiod's proxies.\n",
    );
    let objects = envoy_filters(snapshot, options)
        .into_iter()
        .chain(wasmplugin::wasm_plugins(snapshot, options));
    for f in objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&f).unwrap_or_default());
    }
    out
}
