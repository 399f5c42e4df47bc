//! Portico at Envoy Gateway: the `gateway.envoyproxy.io/v1alpha1` objects that put Portico's
//! routing module, with its configuration, into the Envoy that Envoy Gateway runs for a Gateway,
//! and the routes and cluster Portico's steering needs there.
//!
//! Envoy Gateway (EG) serves the Gateway and its HTTPRoutes itself; Portico translates the same
//! objects (its translation does not look at the GatewayClass) and decides each request in the
//! filter, then steers it to the endpoint it chose. Per Gateway:
//!
//! - **EnvoyExtensionPolicy** `portico-routing-GATEWAY-PORT`, one per port with HTTP or HTTPS
//!   listeners, `targetRefs` the Gateway with each such listener as `sectionName`: one `wasm`
//!   entry, `rootID: portico-routing`, `config` that port's routing configuration, `code` the
//!   module (`Image`: an `oci://` image `portico-controller package` wrote, `sha256` its
//!   manifest digest; or `HTTP`: a URL and the `.wasm`'s sha256). EG puts the filter into the
//!   port's HTTP connection manager as `envoy.filters.http.wasm/envoyextensionpolicy/NS/NAME/wasm/0`,
//!   **disabled**, and enables it per route of the targeted listeners
//!   (`internal/xds/translator/wasm.go`).
//! - **EnvoyPatchPolicy** `portico-steering-GATEWAY` (`type: JSONPatch`, `targetRef` the
//!   Gateway; EG applies it only with `extensionApis.enableEnvoyPatchPolicy: true` in its own
//!   configuration), in EG's xDS names (`NS/GATEWAY/LISTENER` for the listener, its filter chain
//!   and its route configuration, named after the port's first listener):
//!   - `Cluster` `op: add, path: ""`: `portico|original-dst` (`ORIGINAL_DST`), where the steering
//!     route sends what the filter decided;
//!   - `RouteConfiguration` `op: add, jsonPath: $.virtual_hosts[*], path: /routes/0`: the
//!     steering route first in every virtual host, taken only by requests the filter steered
//!     (filter state, not a header a client could send);
//!   - `Listener` `op: remove, jsonPath: $..http_filters[?(@.name=='…')], path: /disabled`: the
//!     filter runs for every request of the listener, not only those one of EG's routes takes, so
//!     Portico decides the answer to a path no EG route has too (a redirect, a default backend,
//!     its own 404);
//!   - `Listener` `op: add` of `failure_policy: FAIL_RELOAD` on the same filter: a trap answers
//!     503 while the VM is rebuilt (EG sets only `fail_open`).
//!
//! Portico forwards by endpoint (`ForwardMode::Endpoint`): EG's clusters are one per HTTPRoute
//! rule (`httproute/NS/NAME/rule/N`), not per Service, so Portico's `outbound|…` names would not
//! resolve. Portico's TLS and egress modules are not attached: EG terminates TLS by its own
//! listeners and has no sidecars, and an EnvoyExtensionPolicy inserts HTTP filters only.
//!
//! Caveats the output states as warnings: a virtual host must exist for a request to reach the
//! steering route, so a host no HTTPRoute of the listener names is EG's 404 (Portico's answer
//! for it is a 404 too unless the configuration has a default backend); a port several Gateways
//! listen on is attached to the first one's Envoy only (EG runs an Envoy per Gateway, while
//! Portico's configuration for a port covers every Gateway listening on it).

use std::collections::BTreeMap;

use portico_core::config::RouteAction;
use serde_json::{json, Value};

use crate::envoy::{
    original_dst_clusters, routing_filter_name, service_cluster, steering_routes, ROUTING_FILTER,
};
use crate::model::{namespace_of, Object};
use crate::snapshot::Snapshot;

/// The API group and version of EG's extension objects.
pub const EG_API_VERSION: &str = "gateway.envoyproxy.io/v1alpha1";
/// The Gateway API group (policy `targetRef`s).
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Where the module comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmCode {
    /// An OCI image (`oci://` is added when missing); `sha256`: its manifest digest, as
    /// `portico-controller package` prints it.
    Image {
        /// Image reference.
        url: String,
        /// Manifest sha256 (hex), checked by EG's fetcher.
        sha256: Option<String>,
    },
    /// A module EG downloads over HTTP(S); `sha256`: the `.wasm` file's.
    Http {
        /// URL of the `.wasm`.
        url: String,
        /// The module's sha256 (hex).
        sha256: Option<String>,
    },
}

impl WasmCode {
    fn to_json(&self) -> Value {
        match self {
            WasmCode::Image { url, sha256 } => {
                let url = if url.starts_with("oci://") {
                    url.clone()
                } else {
                    format!("oci://{url}")
                };
                let mut image = json!({"url": url});
                if let Some(s) = sha256 {
                    image["sha256"] = json!(s);
                }
                json!({"type": "Image", "image": image})
            }
            WasmCode::Http { url, sha256 } => {
                let mut http = json!({"url": url});
                if let Some(s) = sha256 {
                    http["sha256"] = json!(s);
                }
                json!({"type": "HTTP", "http": http})
            }
        }
    }
}

/// One Gateway port Portico's routing module is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedPort {
    /// Gateway namespace.
    pub namespace: String,
    /// Gateway name.
    pub gateway: String,
    /// The port.
    pub port: u16,
    /// The port's HTTP and HTTPS listeners, in the Gateway's order.
    pub listeners: Vec<String>,
    /// The EnvoyExtensionPolicy's name.
    pub policy: String,
}

impl AttachedPort {
    /// EG's name of the xDS listener, its first filter chain and route configuration: the
    /// port's first listener (`NS/GATEWAY/LISTENER`).
    pub fn xds_name(&self) -> String {
        self.xds_name_of(&self.listeners[0])
    }

    /// EG's name of a listener's IR listener, filter chain and (HTTPS) route configuration.
    pub fn xds_name_of(&self, listener: &str) -> String {
        format!("{}/{}/{}", self.namespace, self.gateway, listener)
    }

    /// The name EG gives the module's HTTP filter.
    pub fn filter_name(&self) -> String {
        format!(
            "envoy.filters.http.wasm/envoyextensionpolicy/{}/{}/wasm/0",
            self.namespace, self.policy
        )
    }
}

/// What [`attach`] makes.
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    /// EnvoyExtensionPolicies, then EnvoyPatchPolicies.
    pub objects: Vec<Value>,
    /// The ports attached.
    pub ports: Vec<AttachedPort>,
    /// Ports several Gateways listen on → those Gateways (`namespace/name`); only the first is
    /// attached there.
    pub shared: BTreeMap<u16, Vec<String>>,
    /// What the user should know (see the module documentation).
    pub warnings: Vec<String>,
}

/// Name of a Gateway's EnvoyPatchPolicy.
pub fn patch_policy_name(gateway: &str) -> String {
    format!("portico-steering-{gateway}")
}

/// The EnvoyExtensionPolicies and EnvoyPatchPolicies that attach `snapshot`'s routing to the
/// Envoys EG runs for the Gateways in `objects`. `snapshot` must be translated with
/// `ForwardMode::Endpoint`.
pub fn attach(objects: &[Object], snapshot: &Snapshot, code: &WasmCode) -> Attachment {
    let mut out = Attachment::default();
    let mut gateways: Vec<_> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Gateway(g) => Some(g),
            _ => None,
        })
        .collect();
    gateways.sort_by(|a, b| {
        (namespace_of(&a.metadata), &a.metadata.name)
            .cmp(&(namespace_of(&b.metadata), &b.metadata.name))
    });
    let mut port_owners: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for g in &gateways {
        let mut ports: Vec<u16> = g
            .spec
            .listeners
            .iter()
            .filter(|l| matches!(l.protocol.as_str(), "HTTP" | "HTTPS"))
            .map(|l| l.port)
            .collect();
        ports.dedup();
        ports.sort_unstable();
        ports.dedup();
        for p in ports {
            port_owners.entry(p).or_default().push(format!(
                "{}/{}",
                namespace_of(&g.metadata),
                g.metadata.name
            ));
        }
    }
    for g in gateways {
        let namespace = namespace_of(&g.metadata).to_owned();
        let name = g.metadata.name.clone();
        // Port → its HTTP(S) listeners, ports in first-listener order.
        let mut ports: Vec<(u16, Vec<String>)> = Vec::new();
        for l in &g.spec.listeners {
            if !matches!(l.protocol.as_str(), "HTTP" | "HTTPS") {
                continue;
            }
            match ports.iter_mut().find(|(p, _)| *p == l.port) {
                Some((_, ls)) => ls.push(l.name.clone()),
                None => ports.push((l.port, vec![l.name.clone()])),
            }
        }
        let mut attached = Vec::new();
        for (port, listeners) in ports {
            let Some(served) = snapshot.listeners.iter().find(|l| l.port == port) else {
                out.warnings.push(format!(
                    "Gateway {namespace}/{name} port {port}: Portico serves nothing on it (its listeners were not accepted); not attached"
                ));
                continue;
            };
            if port_owners
                .get(&port)
                .is_some_and(|o| o.len() > 1 && o[0] != format!("{namespace}/{name}"))
            {
                continue;
            }
            let a = AttachedPort {
                namespace: namespace.clone(),
                gateway: name.clone(),
                port,
                listeners,
                policy: format!("{ROUTING_FILTER}-{name}-{port}"),
            };
            let config: Value = serde_json::from_str(&served.routing.to_json()).unwrap_or_default();
            let target_refs: Vec<Value> = a
                .listeners
                .iter()
                .map(|l| json!({"group": GATEWAY_GROUP, "kind": "Gateway", "name": name, "sectionName": l}))
                .collect();
            out.objects.push(json!({
                "apiVersion": EG_API_VERSION,
                "kind": "EnvoyExtensionPolicy",
                "metadata": {
                    "name": a.policy,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": "portico"},
                },
                "spec": {
                    "targetRefs": target_refs,
                    "wasm": [{
                        "name": routing_filter_name(port),
                        "rootID": ROUTING_FILTER,
                        "code": code.to_json(),
                        "config": config,
                        "failOpen": false,
                    }],
                },
            }));
            attached.push(a);
        }
        if attached.is_empty() {
            continue;
        }
        out.objects
            .push(patch_policy(&namespace, &name, &attached, snapshot));
        out.ports.extend(attached);
    }
    for (port, owners) in port_owners {
        if owners.len() > 1 {
            out.warnings.push(format!(
                "port {port} is served by Gateways {}: Portico's configuration for the port covers all of them but is attached to {}'s Envoy only (Envoy Gateway runs an Envoy per Gateway, and two copies of the filter on one merged listener would each act on every request); give the Gateways distinct ports",
                owners.join(", "),
                owners[0]
            ));
            out.shared.insert(port, owners);
        }
    }
    if !out.ports.is_empty() {
        out.warnings.push(
            "a host no HTTPRoute of a listener names has no virtual host in Envoy Gateway's configuration: Envoy answers 404 before Portico's steering route can take it"
                .to_owned(),
        );
    }
    out
}

/// A JSONPatch entry of an EnvoyPatchPolicy.
fn json_patch(kind: &str, name: &str, operation: Value) -> Value {
    json!({"type": format!("type.googleapis.com/{kind}"), "name": name, "operation": operation})
}

fn patch_policy(
    namespace: &str,
    gateway: &str,
    ports: &[AttachedPort],
    snapshot: &Snapshot,
) -> Value {
    const LISTENER: &str = "envoy.config.listener.v3.Listener";
    const ROUTES: &str = "envoy.config.route.v3.RouteConfiguration";
    const CLUSTER: &str = "envoy.config.cluster.v3.Cluster";
    let mut patches = Vec::new();
    // Only the endpoint cluster: Portico forwards by endpoint here.
    let endpoint = original_dst_clusters()
        .into_iter()
        .next()
        .map(|mut c| {
            if let Some(o) = c.as_object_mut() {
                o.remove("@type");
            }
            c
        })
        .unwrap_or_default();
    let endpoint_name = endpoint["name"].as_str().unwrap_or_default().to_owned();
    patches.push(json_patch(
        CLUSTER,
        &endpoint_name,
        json!({"op": "add", "path": "", "value": endpoint}),
    ));
    // Mirror copies go to the Service's cluster (the module's HTTP call names it), which EG
    // does not have: one per Service port a mirror of these ports names, with its endpoints.
    let mut mirrored = std::collections::BTreeSet::new();
    for a in ports {
        let Some(l) = snapshot.listeners.iter().find(|l| l.port == a.port) else {
            continue;
        };
        let routing = &l.routing;
        for r in routing.virtual_hosts.iter().flat_map(|vh| &vh.routes) {
            let per_backend = match &r.action {
                RouteAction::Forward { backends, .. } => {
                    backends.iter().flat_map(|b| &b.filters.mirrors).collect()
                }
                _ => Vec::new(),
            };
            for m in r.mirrors.iter().chain(per_backend) {
                if let Some(b) = routing.backends.get(&m.backend) {
                    mirrored.insert(b.cluster.clone());
                }
            }
        }
    }
    for c in snapshot
        .clusters
        .iter()
        .filter(|c| mirrored.contains(&c.name))
    {
        let mut cluster = service_cluster(c);
        if let Some(o) = cluster.as_object_mut() {
            o.remove("@type");
        }
        patches.push(json_patch(
            CLUSTER,
            &c.name,
            json!({"op": "add", "path": "", "value": cluster}),
        ));
    }
    let steering = steering_routes()
        .into_iter()
        .find(|r| r["route"]["cluster"] == json!(endpoint_name))
        .unwrap_or_default();
    for a in ports {
        let https = snapshot
            .listeners
            .iter()
            .any(|l| l.port == a.port && l.tls.is_some());
        // HTTP listeners on a port share the first's route configuration; HTTPS listeners
        // each have their own.
        let route_configs: Vec<String> = if https {
            a.listeners.iter().map(|l| a.xds_name_of(l)).collect()
        } else {
            vec![a.xds_name()]
        };
        for rc in route_configs {
            patches.push(json_patch(
                ROUTES,
                &rc,
                json!({"op": "add", "jsonPath": "$.virtual_hosts[*]", "path": "/routes/0", "value": steering}),
            ));
        }
        let filter = format!("$..http_filters[?(@.name=='{}')]", a.filter_name());
        patches.push(json_patch(
            LISTENER,
            &a.xds_name(),
            json!({"op": "remove", "jsonPath": filter, "path": "/disabled"}),
        ));
        patches.push(json_patch(
            LISTENER,
            &a.xds_name(),
            json!({"op": "add", "jsonPath": filter, "path": "/typed_config/config/failure_policy", "value": "FAIL_RELOAD"}),
        ));
    }
    json!({
        "apiVersion": EG_API_VERSION,
        "kind": "EnvoyPatchPolicy",
        "metadata": {
            "name": patch_policy_name(gateway),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "portico"},
        },
        "spec": {
            "type": "JSONPatch",
            "targetRef": {"group": GATEWAY_GROUP, "kind": "Gateway", "name": gateway},
            "jsonPatches": patches,
        },
    })
}

/// [`attach`]'s objects as one YAML stream, its warnings as a comment block at the top.
pub fn attachment_yaml(attachment: &Attachment) -> String {
    let mut out = String::from(
        "# Generated by `portico-controller envoy-gateway`: Portico's routing module attached to the Envoys\n# Envoy Gateway runs (needs extensionApis.enableEnvoyPatchPolicy: true in Envoy Gateway's configuration).\n",
    );
    for w in &attachment.warnings {
        out.push_str(&format!("# warning: {w}\n"));
    }
    for o in &attachment.objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o).unwrap_or_default());
    }
    out
}
