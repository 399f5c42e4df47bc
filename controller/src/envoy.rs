//! Envoy resources for a [`Snapshot`]: the bootstrap, and the dynamic resources it reads from
//! files (LDS, CDS, and ECDS for the routing filter's configuration).
//!
//! The listener's route table is fixed: the routing filter decides and steers Envoy through
//! filter state (`envoy.network.transport_socket.original_dst_address` → the `ORIGINAL_DST`
//! cluster; with `x-portico-cluster` → `cluster_header`), which both forwarding routes require. Routing changes therefore touch only the ECDS resource, which Envoy
//! applies in milliseconds with no listener drain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use portico_core::config::{
    CLUSTER_HEADER, ORIGINAL_DST_CLUSTER, PASSTHROUGH_CLUSTER, STEER_STATE,
};
use portico_core::tls::select::{ChainAction, Terminate, TlsTable};
use serde_json::{json, Value};

use crate::snapshot::{content_hash, Listener, SdsSecret, Snapshot};

/// Name of the routing filter's ECDS resource (and of the filter in the chain).
pub const ROUTING_FILTER: &str = "portico-routing";

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const NETWORK_WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";

/// Name of the egress filter's HTTP instance (and of its ECDS resource).
pub const EGRESS_HTTP_FILTER: &str = "portico-egress-http";
/// Name of the egress filter's instance on TLS chains (and of its ECDS resource); also its
/// root id.
pub const EGRESS_TLS_FILTER: &str = "portico-egress-tls";
/// Name of the egress filter's instance on TCP chains (and of its ECDS resource); also its
/// root id. It decides on the connection's addresses alone, never waiting for client bytes.
pub const EGRESS_TCP_FILTER: &str = "portico-egress-tcp";

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
    /// Port the sidecar's outbound listener binds (`None`: no sidecar listener). A client reaches
    /// it with a PROXY protocol header naming the destination it addressed: the stand-in for the
    /// iptables redirect a pod's sidecar gets.
    pub sidecar_port: Option<u16>,
}

impl RenderOptions {
    /// The `tls` network filter module: `portico_filter_tls.wasm` beside the routing filter's
    /// (`just build` makes both).
    pub fn tls_wasm(&self) -> PathBuf {
        self.routing_wasm.with_file_name("portico_filter_tls.wasm")
    }

    /// The egress filter module: `portico_filter_egress.wasm` beside the routing filter's.
    pub fn egress_wasm(&self) -> PathBuf {
        self.routing_wasm
            .with_file_name("portico_filter_egress.wasm")
    }
}

pub mod ecds;

/// The rendered files, by name relative to the xDS directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `(relative path, contents)`, bootstrap first: YAML text, and the filter configurations
    /// as binary protobuf ([`ecds`]).
    pub files: Vec<(String, Vec<u8>)>,
}

/// Relative path of the bootstrap.
pub const BOOTSTRAP: &str = "envoy.yaml";
/// Relative path of the LDS file.
pub const LDS: &str = "lds.yaml";
/// Relative path of the CDS file.
pub const CDS: &str = "cds.yaml";
/// Relative path of the ECDS file of the filter `name`. ECDS files are binary protobuf ([`ecds`];
/// Envoy picks the parser by the extension): a filter configuration is one large string, which
/// Envoy reads in ~2 ms as protobuf, ~20 ms as JSON and slower still as YAML at 1 000 rules.
pub fn ecds_file(name: &str) -> String {
    format!("ecds/{name}.pb")
}

/// Relative path of the routing filter's ECDS file for the listener on `port`.
pub fn ecds_routing(port: u16) -> String {
    ecds_file(&format!("routing-{port}"))
}

/// Name of the routing filter (and of its ECDS resource) on the listener on `port`.
pub fn routing_filter_name(port: u16) -> String {
    format!("{ROUTING_FILTER}-{port}")
}

/// Relative path of the routing filter's ECDS file for the sidecar's requests to `port`.
pub fn ecds_sidecar_routing(port: u16) -> String {
    ecds_file(&format!("routing-sidecar-{port}"))
}

/// Name of the routing filter (and of its ECDS resource) for the sidecar's requests to `port`.
pub fn sidecar_filter_name(port: u16) -> String {
    format!("{ROUTING_FILTER}-sidecar-{port}")
}

/// Name of the sidecar's outbound listener.
pub const SIDECAR_LISTENER: &str = "portico-sidecar";

/// Relative path of the SDS file of the secret `name`.
pub fn sds_file(name: &str) -> String {
    format!("sds/{name}.yaml")
}

const SECRET_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// A secret as Envoy's `Secret` message (without `@type`).
fn secret_message(name: &str, secret: &SdsSecret) -> Value {
    match secret {
        SdsSecret::KeyPair {
            certificate_chain,
            private_key,
        } => json!({"name": name, "tls_certificate": {
            "certificate_chain": {"inline_string": certificate_chain},
            "private_key": {"inline_string": private_key}}}),
        SdsSecret::TrustedCa(ca) => json!({"name": name, "validation_context": {
            "trusted_ca": {"inline_string": ca}}}),
    }
}

fn path_source(dir: &Path, rel: &str) -> Value {
    json!({"resource_api_version": "V3", "path_config_source": {"path": dir.join(rel)}})
}

fn to_yaml(value: &Value) -> String {
    // A serde_json::Value always serializes.
    serde_yaml::to_string(value).unwrap_or_default()
}

/// One wasm filter instance: its name, ECDS file, configuration version and `Wasm` config
/// (an HTTP filter's, or with `network` a network filter's).
struct RoutingFilter {
    name: String,
    ecds: String,
    version: String,
    config: Value,
    network: bool,
}

struct Resources {
    bootstrap: Value,
    listeners: Vec<Value>,
    clusters: Vec<Value>,
    /// Every routing filter of every listener.
    routing: Vec<RoutingFilter>,
}

/// The routing filter's `Wasm` typed config for one listener. Every listener's plugin runs in one
/// VM (same `vm_id` and code), each with its own configuration.
pub(crate) fn routing_config(
    name: &str,
    config: &portico_core::config::RoutingConfig,
    options: &RenderOptions,
) -> Value {
    json!({
        "@type": WASM_TYPE,
        "config": {
            "name": name,
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

/// How a chain's transport socket names a secret: an SDS config source, or the secret inline.
type SecretRef<'a> = &'a dyn Fn(&str) -> Value;

/// Builds the resources; `filter` turns a routing filter into its entry in an HTTP filter chain,
/// `secret` a secret name into its place in a TLS context.
fn resources(
    snapshot: &Snapshot,
    options: &RenderOptions,
    filter: &dyn Fn(&RoutingFilter) -> Value,
    secret: SecretRef<'_>,
) -> Resources {
    let bootstrap = json!({
        "node": {"id": "portico", "cluster": "portico"},
        "admin": {"address": {"socket_address": {
            "address": options.listen_address, "port_value": options.admin_port}}},
    });
    let mut listeners = Vec::with_capacity(snapshot.listeners.len());
    let mut routing = Vec::with_capacity(snapshot.listeners.len());
    for l in &snapshot.listeners {
        let f = RoutingFilter {
            name: routing_filter_name(l.port),
            ecds: ecds_routing(l.port),
            version: l.routing.generation.clone(),
            config: routing_config(&routing_filter_name(l.port), &l.routing, options),
            network: false,
        };
        let bind = options.port_map.get(&l.port).copied().unwrap_or(l.port);
        let address =
            json!({"socket_address": {"address": options.listen_address, "port_value": bind}});
        let listener = match &l.tls {
            None => {
                let name = format!("portico-http-{}", l.port);
                json!({
                    "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                    "name": name,
                    "address": address,
                    "filter_chains": [{"filters": [http_connection_manager(&name, vec![filter(&f)])]}],
                })
            }
            Some(table) => tls_listener(l, table, address, &filter(&f), secret, options),
        };
        listeners.push(listener);
        routing.push(f);
    }
    if let (Some(bind), Some(egress)) = (options.sidecar_port, &snapshot.egress) {
        // One listener, a filter chain per destination port (what the PROXY header restores):
        // Istio's outbound listeners `0.0.0.0_PORT` behind its virtual outbound listener. The
        // egress filter decides first: in front of routing on HTTP ports, in front of a TCP
        // proxy for TLS (by SNI or address), TCP ports (by address) and every other port.
        let wasm = |name: &str, network: bool| RoutingFilter {
            name: name.to_owned(),
            ecds: ecds_file(name),
            version: egress.config.generation.clone(),
            config: egress_config(name, &egress.config, options, network),
            network,
        };
        let egress_http = wasm(EGRESS_HTTP_FILTER, false);
        let egress_tls = wasm(EGRESS_TLS_FILTER, true);
        let egress_tcp = wasm(EGRESS_TCP_FILTER, true);
        let mut chains = Vec::new();
        let mut ports: std::collections::BTreeSet<u16> =
            egress.tls_ports.union(&egress.tcp_ports).copied().collect();
        for l in &snapshot.sidecar {
            let name = sidecar_filter_name(l.port);
            let f = RoutingFilter {
                ecds: ecds_sidecar_routing(l.port),
                version: l.routing.generation.clone(),
                config: routing_config(&name, &l.routing, options),
                name,
                network: false,
            };
            let chain = format!("{SIDECAR_LISTENER}-{}", l.port);
            chains.push(json!({
                "name": chain,
                "filter_chain_match": {"destination_port": l.port},
                "filters": [http_connection_manager(&chain, vec![filter(&egress_http), filter(&f)])],
            }));
            ports.insert(l.port);
            routing.push(f);
        }
        for port in &ports {
            let chain = format!("{SIDECAR_LISTENER}-{port}-tls");
            chains.push(json!({
                "name": chain,
                "filter_chain_match": {"destination_port": port, "transport_protocol": "tls"},
                "filters": [filter(&egress_tls), tcp_proxy_by_filter(&chain, true)],
            }));
        }
        for port in &egress.tcp_ports {
            if snapshot.sidecar.iter().any(|l| l.port == *port) {
                continue;
            }
            let chain = format!("{SIDECAR_LISTENER}-{port}-tcp");
            chains.push(json!({
                "name": chain,
                "filter_chain_match": {"destination_port": port},
                "filters": [filter(&egress_tcp), tcp_proxy_by_filter(&chain, false)],
            }));
        }
        // Every other port: no entry has it, so the verdict is the policy's (passthrough or
        // closed), decided on the connection's addresses.
        let other = format!("{SIDECAR_LISTENER}-other");
        let default_chain = json!({
            "name": other,
            "filters": [filter(&egress_tcp), tcp_proxy_by_filter(&other, false)],
        });
        routing.extend([egress_http, egress_tls, egress_tcp]);
        listeners.push(json!({
            "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "name": SIDECAR_LISTENER,
            "address": {"socket_address": {"address": options.listen_address, "port_value": bind}},
            "listener_filters": [
                {
                    "name": "envoy.filters.listener.proxy_protocol",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"},
                },
                {
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
                },
            ],
            "filter_chains": chains,
            "default_filter_chain": default_chain,
        }));
    }
    let mut clusters = original_dst_clusters();
    clusters.extend(snapshot.clusters.iter().map(service_cluster));
    Resources {
        bootstrap,
        listeners,
        clusters,
        routing,
    }
}

/// Renders every file for a snapshot: a bootstrap reading LDS and CDS from files, each
/// listener's routing filter configuration through its own ECDS file, and each secret through
/// its own SDS file (so a rotated certificate is one file renamed into place: no listener
/// change, no drain).
pub fn render(snapshot: &Snapshot, options: &RenderOptions) -> Rendered {
    let dir = &options.xds_dir;
    let ecds_filter = |f: &RoutingFilter| {
        let type_url = if f.network {
            NETWORK_WASM_TYPE
        } else {
            WASM_TYPE
        };
        json!({"name": f.name, "config_discovery": {
            "config_source": path_source(dir, &f.ecds), "type_urls": [type_url]}})
    };
    let sds = |name: &str| json!({"name": name, "sds_config": path_source(dir, &sds_file(name))});
    let mut r = resources(snapshot, options, &ecds_filter, &sds);
    r.bootstrap["dynamic_resources"] =
        json!({"lds_config": path_source(dir, LDS), "cds_config": path_source(dir, CDS)});
    let mut files = vec![
        (BOOTSTRAP.to_owned(), to_yaml(&r.bootstrap).into_bytes()),
        (CDS.to_owned(), to_yaml(&discovery(r.clusters)).into_bytes()),
    ];
    // Secrets before the listeners that name them, like the filter configurations.
    for (name, secret) in &snapshot.secrets {
        let mut message = secret_message(name, secret);
        message["@type"] = json!(SECRET_TYPE);
        let resources = json!([message]);
        files.push((
            sds_file(name),
            to_yaml(&json!({"version_info": content_hash(&resources.to_string()), "resources": resources}))
                .into_bytes(),
        ));
    }
    // Filter configurations before the listeners that name them: a new listener's ECDS file
    // must exist when Envoy reads the listener.
    for f in r.routing {
        let ecds = json!({
            "version_info": f.version,
            "resources": [{
                "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                "name": f.name,
                "typed_config": f.config,
            }],
        });
        // Every field the renderer writes is in the encoder's schema (its tests and every
        // scenario's Envoy check that), so this cannot fail for a rendered document.
        let bytes = ecds::encode(&ecds).unwrap_or_else(|e| {
            unreachable!("the ECDS document of {} has no protobuf form: {e}", f.name)
        });
        files.push((f.ecds, bytes));
    }
    files.push((
        LDS.to_owned(),
        to_yaml(&discovery(r.listeners)).into_bytes(),
    ));
    Rendered { files }
}

/// Renders one self-contained static bootstrap with the same listeners, clusters and filter
/// configuration inline: what `envoy --mode validate` checks completely (it runs the filter's
/// `on_configure`), and a config for an Envoy that is not fed by the controller.
pub fn render_static(snapshot: &Snapshot, options: &RenderOptions) -> String {
    let inline = |f: &RoutingFilter| json!({"name": f.name, "typed_config": f.config});
    let inline_secret = |name: &str| {
        snapshot
            .secrets
            .get(name)
            .map_or(Value::Null, |s| secret_message(name, s))
    };
    let mut r = resources(snapshot, options, &inline, &inline_secret);
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

/// The route condition "the routing filter steered this request": its filter state is set.
fn steered() -> Value {
    json!({"key": STEER_STATE, "string_match": {"safe_regex": {"regex": ".+"}}})
}

/// The routes the routing filter steers: to the cluster its header names, or to the endpoint
/// its filter state holds. Only what the routing filter steered carries the filter state (a
/// client can set no filter state): with the filter failing open or missing, nothing is
/// forwarded, whatever headers a client sends.
pub(crate) fn steering_routes() -> Vec<Value> {
    vec![
        json!({"name": "portico-cluster",
         "match": {"prefix": "/",
                   "headers": [{"name": CLUSTER_HEADER, "present_match": true}],
                   "filter_state": [steered()]},
         "route": {"cluster_header": CLUSTER_HEADER, "timeout": "30s"}}),
        json!({"name": "portico-endpoint",
         "match": {"prefix": "/", "filter_state": [steered()]},
         "route": {"cluster": ORIGINAL_DST_CLUSTER, "timeout": "30s"}}),
    ]
}

/// A Service port's cluster (`outbound|PORT||FQDN`) with its ready endpoints.
pub(crate) fn service_cluster(c: &crate::snapshot::Cluster) -> Value {
    let endpoints: Vec<Value> = c
        .endpoints
        .iter()
        .filter_map(|e| e.parse::<std::net::SocketAddr>().ok())
        .map(|a| json!({"endpoint": {"address": {"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}}}}))
        .collect();
    json!({
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": c.name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": c.name, "endpoints": [{"lb_endpoints": endpoints}]},
    })
}

/// The clusters the steering routes and the egress filter's passthrough use besides the
/// Services': the endpoint in filter state, and where the client was going.
pub(crate) fn original_dst_clusters() -> Vec<Value> {
    vec![
        // The endpoint the routing filter set in filter state (never a header).
        json!({
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": ORIGINAL_DST_CLUSTER,
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": "2s",
        }),
        // Where the connection's client was going (the PROXY header's destination): no header.
        json!({
            "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": PASSTHROUGH_CLUSTER,
            "type": "ORIGINAL_DST",
            "lb_policy": "CLUSTER_PROVIDED",
            "connect_timeout": "2s",
        }),
    ]
}

/// The HTTP connection manager every Portico filter chain runs: the routing filter, then
/// Envoy's router on a fixed route table the filter steers.
fn http_connection_manager(name: &str, mut http_filters: Vec<Value>) -> Value {
    http_filters.push(
        json!({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}),
    );
    json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": name.replace('-', "_"),
            "normalize_path": true,
            "merge_slashes": true,
            "route_config": {
                "name": name,
                "virtual_hosts": [{
                    "name": "portico",
                    "domains": ["*"],
                    "routes": steering_routes().into_iter().chain([
                        // Reached only if the filter neither steered nor answered.
                        json!({"name": "unrouted", "match": {"prefix": "/"},
                         "direct_response": {"status": 404, "body": {"inline_string": "404 page not found\n"}}}),
                    ]).collect::<Vec<_>>(),
                }],
            },
            "http_filters": http_filters,
        },
    })
}

/// The `tls` network filter's configuration for a port's table.
pub fn tls_filter_config(
    port: u16,
    table: &TlsTable,
) -> portico_core::tls::passthrough::TlsFilterConfig {
    let mut config = portico_core::tls::passthrough::TlsFilterConfig {
        api_version: portico_core::tls::passthrough::TLS_API_VERSION.into(),
        generation: String::new(),
        port,
        table: table.clone(),
    };
    config.generation = content_hash(&config.to_json());
    config
}

/// The `tls` network filter of a passthrough chain, configured with the port's table. Every
/// instance runs in one VM (`vm_id` `portico-tls`), apart from the routing filter's.
fn tls_filter(port: u16, table: &TlsTable, options: &RenderOptions) -> Value {
    let config = tls_filter_config(port, table);
    json!({
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": format!("portico-tls-{port}"),
                "root_id": "portico-tls",
                "vm_config": {
                    "vm_id": "portico-tls",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": options.tls_wasm()}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config.to_json(),
                },
                // A trap closes the connection while the VM is rebuilt; never skip the filter.
                "failure_policy": "FAIL_RELOAD",
            },
        },
    })
}

/// The TCP proxy after a filter that names the cluster (`envoy.tcp_proxy.cluster`). With
/// `on_data` (after a ClientHello is read) the proxy waits for the client's first bytes;
/// otherwise it connects as soon as the filter has named the cluster, for protocols whose
/// server speaks first. A connection no filter named a cluster for goes nowhere.
fn tcp_proxy_by_filter(stat: &str, on_data: bool) -> Value {
    let mut proxy = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": stat.replace('-', "_"),
        "cluster": "portico|unrouted"});
    if on_data {
        proxy["upstream_connect_mode"] = json!("ON_DOWNSTREAM_DATA");
        proxy["max_early_data_bytes"] = json!(65536);
    }
    json!({"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy})
}

/// The egress filter's `Wasm` typed config: `name` is also its root id (HTTP or network
/// instance); both run in one VM (`vm_id` `portico-egress`).
pub(crate) fn egress_config(
    name: &str,
    config: &portico_core::egress::EgressConfig,
    options: &RenderOptions,
    network: bool,
) -> Value {
    json!({
        "@type": if network { NETWORK_WASM_TYPE } else { WASM_TYPE },
        "config": {
            "name": name,
            "root_id": name,
            "vm_config": {
                "vm_id": "portico-egress",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": options.egress_wasm()}},
            },
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": config.to_json(),
            },
            // A trap answers 503 (HTTP) or closes the connection while the VM is rebuilt:
            // never skip the filter, which would open what REGISTRY_ONLY closes.
            "failure_policy": "FAIL_RELOAD",
        },
    })
}

/// A filter chain that closes every connection.
fn refuse_chain(chain: &str) -> Value {
    json!({"name": chain, "filters": [
        reject_filter(chain),
        // Never reached (RBAC closes first); a chain must end in a terminal filter.
        {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": chain.replace('-', "_"), "cluster": "portico|refused"}},
    ]})
}

/// The network filter of a chain that refuses every connection (Envoy's RBAC, deny all): what
/// a TLS port does with an SNI it has no certificate for.
fn reject_filter(name: &str) -> Value {
    json!({
        "name": "envoy.filters.network.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC",
            "stat_prefix": name.replace('-', "_"),
            "rules": {"action": "DENY", "policies": {"refuse": {
                "permissions": [{"any": true}], "principals": [{"any": true}]}}},
        },
    })
}

/// The downstream TLS context of a terminating chain. Static renders carry the secrets inline
/// (`tls_certificates` / `validation_context`), file renders name SDS resources.
fn downstream_tls(t: &Terminate, secret: SecretRef<'_>) -> Value {
    let mut params = json!({
        "tls_minimum_protocol_version": t.min_version.envoy_name(),
        "tls_maximum_protocol_version": t.max_version.envoy_name(),
    });
    if !t.cipher_suites.is_empty() {
        params["cipher_suites"] = json!(t.cipher_suites);
    }
    let cert = secret(&t.certificate.sds);
    let mut common = json!({"tls_params": params, "alpn_protocols": ["h2", "http/1.1"]});
    if cert.get("tls_certificate").is_some() {
        common["tls_certificates"] = json!([cert["tls_certificate"]]);
    } else {
        common["tls_certificate_sds_secret_configs"] = json!([cert]);
    }
    let mut context = json!({
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": common,
    });
    if let Some(client) = &t.client {
        let ca = secret(&client.ca_sds);
        let mut validation = if ca.get("validation_context").is_some() {
            ca["validation_context"].clone()
        } else {
            Value::Null
        };
        if !client.subject_alt_names.is_empty() {
            // Istio: any SAN (DNS or URI) equal to any entry.
            let sans: Vec<Value> = client
                .subject_alt_names
                .iter()
                .flat_map(|s| {
                    ["DNS", "URI"].map(|t| json!({"san_type": t, "matcher": {"exact": s}}))
                })
                .collect();
            if validation.is_null() {
                validation = json!({});
            }
            validation["match_typed_subject_alt_names"] = json!(sans);
        }
        if client.accept_untrusted || client.max_depth.is_some() {
            if validation.is_null() {
                validation = json!({});
            }
            if client.accept_untrusted {
                validation["trust_chain_verification"] = json!("ACCEPT_UNTRUSTED");
            }
            if let Some(depth) = client.max_depth {
                validation["max_verify_depth"] = json!(depth);
            }
        }
        if validation.is_null() {
            context["common_tls_context"]["validation_context_sds_secret_config"] = ca;
        } else if ca.get("validation_context").is_some() {
            context["common_tls_context"]["validation_context"] = validation;
        } else {
            context["common_tls_context"]["combined_validation_context"] = json!({
                "default_validation_context": validation,
                "validation_context_sds_secret_config": ca,
            });
        }
        context["require_client_certificate"] = json!(client.required);
    }
    json!({"name": "envoy.transport_sockets.tls", "typed_config": context})
}

/// A TLS listener: `tls_inspector`, a filter chain per chain of the table, and a
/// `filter_chain_matcher` evaluating the table's SNI rules in order (each a case-insensitive RE2
/// regex, [`portico_core::tls::select::SniPattern::regex`]), its default as `on_no_match`; no
/// default (and no match) closes the connection.
fn tls_listener(
    l: &Listener,
    table: &TlsTable,
    address: Value,
    routing_filter: &Value,
    secret: SecretRef<'_>,
    options: &RenderOptions,
) -> Value {
    let name = format!("portico-tls-{}", l.port);
    let reject = format!("{name}-refuse");
    let refuse = refuse_chain;
    let chains: Vec<Value> = table
        .chains
        .iter()
        .map(|c| match &c.action {
            ChainAction::Refuse { .. } => refuse(&c.name),
            ChainAction::Terminate(t) => {
                let mut hcm =
                    http_connection_manager(&format!("{name}-{}", c.name), vec![routing_filter.clone()]);
                if !t.request_headers.is_empty() {
                    // Set by the router after the filters, from the client certificate; an
                    // empty value (no certificate) adds nothing.
                    let add: Vec<Value> = t
                        .request_headers
                        .iter()
                        .map(|(k, v)| json!({"header": {"key": k, "value": v.envoy_formatter()},
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD", "keep_empty_value": false}))
                        .collect();
                    hcm["typed_config"]["route_config"]["virtual_hosts"][0]["request_headers_to_add"] =
                        json!(add);
                }
                json!({
                    "name": c.name,
                    "transport_socket": downstream_tls(t, secret),
                    "filters": [hcm],
                })
            }
            ChainAction::Passthrough { .. } => json!({
                "name": c.name,
                "filters": [
                    tls_filter(l.port, table, options),
                    tcp_proxy_by_filter(&format!("{name}-{}", c.name), true),
                ],
            }),
        })
        .chain(std::iter::once(refuse(&reject)))
        .collect();
    let action = |chain: &str| {
        json!({"action": {"name": chain, "typed_config": {
            "@type": "type.googleapis.com/google.protobuf.StringValue", "value": chain}}})
    };
    let default = table
        .default_chain
        .and_then(|i| table.chains.get(i))
        .map_or(reject.as_str(), |c| c.name.as_str());
    let matchers: Vec<Value> = table
        .rules
        .iter()
        .filter_map(|r| table.chains.get(r.chain).map(|c| (r, c)))
        .map(|(r, c)| {
            json!({
                "predicate": {"single_predicate": {
                    "input": {"name": "sni", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.ServerNameInput"}},
                    "value_match": {"safe_regex": {"google_re2": {}, "regex": r.pattern.regex()}},
                }},
                "on_match": action(&c.name),
            })
        })
        .collect();
    let mut listener = json!({
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": name,
        "address": address,
        "listener_filters": [{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
        }],
        "filter_chains": chains,
    });
    listener["filter_chain_matcher"] = if matchers.is_empty() {
        // A matcher list needs one matcher: a tree on the SNI with no entries sends everything
        // to `on_no_match`.
        json!({"matcher_tree": {
            "input": {"name": "sni", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.ServerNameInput"}},
            "exact_match_map": {"map": {"portico.invalid": action(default)}}},
            "on_no_match": action(default)})
    } else {
        json!({"matcher_list": {"matchers": matchers}, "on_no_match": action(default)})
    };
    listener
}
