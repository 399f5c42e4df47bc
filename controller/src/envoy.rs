//! Envoy resources for a [`Snapshot`]: the bootstrap, and the dynamic resources it reads from
//! files (LDS, CDS, and ECDS for the routing filter's configuration).
//!
//! The listener's route table is fixed: the routing filter decides and steers Envoy with
//! `x-envoy-original-dst-host` (→ the `ORIGINAL_DST` cluster) or `x-portico-cluster`
//! (→ `cluster_header`). Routing changes therefore touch only the ECDS resource, which Envoy
//! applies in milliseconds with no listener drain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portico_core::config::{CLUSTER_HEADER, ORIGINAL_DST_CLUSTER, ORIGINAL_DST_HEADER};
use serde_json::{json, Value};

use crate::translate::{content_hash, Snapshot};

/// Name of the routing filter's ECDS resource (and of the filter in the chain).
pub const ROUTING_FILTER: &str = "portico-routing";

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// Where things are and which ports to bind.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Absolute path of `portico_filter_routing.wasm`.
    pub routing_wasm: PathBuf,
    /// Absolute directory the dynamic resources are written to and read from.
    pub xds_dir: PathBuf,
    /// Address listeners and admin bind.
    pub listen_address: String,
    /// Admin port (0: any free port).
    pub admin_port: u16,
    /// Port clients address → port Envoy binds (unlisted ports bind as themselves).
    pub port_map: BTreeMap<u16, u16>,
}

/// The rendered files, by name relative to the xDS directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `(relative path, contents)`, bootstrap first.
    pub files: Vec<(String, String)>,
}

/// Relative path of the bootstrap.
pub const BOOTSTRAP: &str = "envoy.yaml";
/// Relative path of the LDS file.
pub const LDS: &str = "lds.yaml";
/// Relative path of the CDS file.
pub const CDS: &str = "cds.yaml";
/// Relative path of the routing filter's ECDS file for the listener on `port`.
pub fn ecds_routing(port: u16) -> String {
    format!("ecds/routing-{port}.yaml")
}

/// Name of the routing filter (and of its ECDS resource) on the listener on `port`.
pub fn routing_filter_name(port: u16) -> String {
    format!("{ROUTING_FILTER}-{port}")
}

fn path_source(dir: &Path, rel: &str) -> Value {
    json!({"resource_api_version": "V3", "path_config_source": {"path": dir.join(rel)}})
}

fn to_yaml(value: &Value) -> String {
    // A serde_json::Value always serializes.
    serde_yaml::to_string(value).unwrap_or_default()
}

struct Resources {
    bootstrap: Value,
    listeners: Vec<Value>,
    clusters: Vec<Value>,
    /// Each listener's port and routing filter `Wasm` typed config.
    routing: Vec<(u16, Value)>,
}

/// The routing filter's `Wasm` typed config for one listener. Every listener's plugin runs in one
/// VM (same `vm_id` and code), each with its own configuration.
fn routing_config(
    port: u16,
    config: &portico_core::config::RoutingConfig,
    options: &RenderOptions,
) -> Value {
    json!({
        "@type": WASM_TYPE,
        "config": {
            "name": routing_filter_name(port),
            "root_id": ROUTING_FILTER,
            "vm_config": {
                "vm_id": ROUTING_FILTER,
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": options.routing_wasm}},
            },
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": config.to_json(),
            },
            // A trap answers 503 while the VM is rebuilt, then routing resumes; never skip the
            // filter (requests would lose their routing).
            "failure_policy": "FAIL_RELOAD",
        },
    })
}

fn resources(
    snapshot: &Snapshot,
    options: &RenderOptions,
    filter: &dyn Fn(u16, &Value) -> Value,
) -> Resources {
    let bootstrap = json!({
        "node": {"id": "portico", "cluster": "portico"},
        "admin": {"address": {"socket_address": {
            "address": options.listen_address, "port_value": options.admin_port}}},
    });
    let mut listeners = Vec::with_capacity(snapshot.listeners.len());
    let mut routing = Vec::with_capacity(snapshot.listeners.len());
    for l in &snapshot.listeners {
        let config = routing_config(l.port, &l.routing, options);
        let bind = options.port_map.get(&l.port).copied().unwrap_or(l.port);
        listeners.push(http_listener(
            l.port,
            bind,
            options,
            filter(l.port, &config),
        ));
        routing.push((l.port, config));
    }
    let mut clusters = vec![json!({
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": ORIGINAL_DST_CLUSTER,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": "2s",
        "original_dst_lb_config": {"use_http_header": true},
    })];
    for c in &snapshot.clusters {
        let endpoints: Vec<Value> = c
            .endpoints
            .iter()
            .filter_map(|e| e.parse::<std::net::SocketAddr>().ok())
            .map(|a| json!({"endpoint": {"address": {"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}}}}))
            .collect();
        clusters.push(json!({
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": c.name,
            "type": "STATIC",
            "connect_timeout": "2s",
            "load_assignment": {"cluster_name": c.name, "endpoints": [{"lb_endpoints": endpoints}]},
        }));
    }
    Resources {
        bootstrap,
        listeners,
        clusters,
        routing,
    }
}

/// Renders every file for a snapshot: a bootstrap reading LDS and CDS from files, and each
/// listener's routing filter configuration through its own ECDS file.
pub fn render(snapshot: &Snapshot, options: &RenderOptions) -> Rendered {
    let dir = &options.xds_dir;
    let ecds_filter = |port: u16, _: &Value| {
        json!({"name": routing_filter_name(port), "config_discovery": {
            "config_source": path_source(dir, &ecds_routing(port)), "type_urls": [WASM_TYPE]}})
    };
    let mut r = resources(snapshot, options, &ecds_filter);
    r.bootstrap["dynamic_resources"] =
        json!({"lds_config": path_source(dir, LDS), "cds_config": path_source(dir, CDS)});
    let mut files = vec![
        (BOOTSTRAP.to_owned(), to_yaml(&r.bootstrap)),
        (CDS.to_owned(), to_yaml(&discovery(r.clusters))),
    ];
    // Filter configurations before the listeners that name them: a new listener's ECDS file
    // must exist when Envoy reads the listener.
    for ((port, config), l) in r.routing.into_iter().zip(&snapshot.listeners) {
        let ecds = json!({
            "version_info": l.routing.generation,
            "resources": [{
                "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                "name": routing_filter_name(port),
                "typed_config": config,
            }],
        });
        files.push((ecds_routing(port), to_yaml(&ecds)));
    }
    files.push((LDS.to_owned(), to_yaml(&discovery(r.listeners))));
    Rendered { files }
}

/// Renders one self-contained static bootstrap with the same listeners, clusters and filter
/// configuration inline: what `envoy --mode validate` checks completely (it runs the filter's
/// `on_configure`), and a config for an Envoy that is not fed by the controller.
pub fn render_static(snapshot: &Snapshot, options: &RenderOptions) -> String {
    let inline = |port: u16, routing: &Value| json!({"name": routing_filter_name(port), "typed_config": routing});
    let mut r = resources(snapshot, options, &inline);
    // Static resources are the messages themselves, not `Any`s.
    for resource in r.listeners.iter_mut().chain(r.clusters.iter_mut()) {
        if let Some(map) = resource.as_object_mut() {
            map.remove("@type");
        }
    }
    r.bootstrap["static_resources"] = json!({"listeners": r.listeners, "clusters": r.clusters});
    to_yaml(&r.bootstrap)
}

/// A discovery file whose version is a hash of its resources, so an unchanged resource set is an
/// unchanged file (and no reload).
fn discovery(resources: Vec<Value>) -> Value {
    let resources = Value::Array(resources);
    json!({"version_info": content_hash(&resources.to_string()), "resources": resources})
}

fn http_listener(port: u16, bind: u16, options: &RenderOptions, routing_filter: Value) -> Value {
    let name = format!("portico-http-{port}");
    json!({
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": name,
        "address": {"socket_address": {"address": options.listen_address, "port_value": bind}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": format!("portico_http_{port}"),
                "normalize_path": true,
                "merge_slashes": true,
                "route_config": {
                    "name": name,
                    "virtual_hosts": [{
                        "name": "portico",
                        "domains": ["*"],
                        "routes": [
                            {"name": "endpoint",
                             "match": {"prefix": "/", "headers": [{"name": ORIGINAL_DST_HEADER, "present_match": true}]},
                             "route": {"cluster": ORIGINAL_DST_CLUSTER, "timeout": "30s"}},
                            {"name": "cluster",
                             "match": {"prefix": "/", "headers": [{"name": CLUSTER_HEADER, "present_match": true}]},
                             "route": {"cluster_header": CLUSTER_HEADER, "timeout": "30s"}},
                            // Reached only if the filter neither steered nor answered.
                            {"name": "unrouted", "match": {"prefix": "/"},
                             "direct_response": {"status": 404, "body": {"inline_string": "404 page not found\n"}}},
                        ],
                    }],
                },
                "http_filters": [
                    routing_filter,
                    {"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                ],
            },
        }]}],
    })
}
