//! Portico's routing module at istiod's ingress gateway as `extensions.istio.io/v1alpha1`
//! WasmPlugin objects — the way Istio prefers extensions to be attached — and how istiod puts a
//! WasmPlugin into the configuration of a proxy, to check the objects on an istiod-shaped
//! Envoy.
//!
//! One WasmPlugin per gateway port (`portico-routing-PORT`): `selector` the gateway's labels,
//! `url` the module (`file://…` inside the proxy, or `oci://…`, which istio-agent fetches),
//! `pluginName` the module's root id, `pluginConfig` that port's routing configuration,
//! `failStrategy: FAIL_RELOAD`, `match` `mode: CLIENT` (a gateway's listeners are `CLIENT`
//! traffic to istiod) on the Gateway server's port, and the default phase. The routes and
//! clusters Portico's steering needs stay in the gateway's EnvoyFilter ([`super::envoy_filters`]
//! leaves the filter insertions out when WasmPlugins carry them).
//!
//! The sidecars keep their EnvoyFilter: a WasmPlugin cannot single out a sidecar's outbound
//! listeners (its `mode: CLIENT` also selects every gateway's listeners on the same ports, and
//! `selector` has no "not a gateway"), and the egress network filters go before the TCP proxy of
//! TCP-only chains, where istiod puts no WasmPlugin.
//!
//! How istiod applies them ([`apply`], after `pilot/pkg/model/extensions.go` and
//! `pilot/pkg/networking/core/listener_builder.go`): a WasmPlugin in the root namespace or the
//! proxy's, whose `selector.matchLabels` the proxy's labels carry (none: every workload), whose
//! `match` entries admit the listener (`mode` `CLIENT_AND_SERVER` or unset, or the listener's
//! class: gateway and sidecar outbound `CLIENT`, sidecar inbound `SERVER`; `ports` empty or
//! holding the server port), becomes an HTTP filter in each HTTP connection manager of the
//! listener — the default phase after istiod's authentication, authorization and stats filters,
//! before `grpc_stats`, `alpn`, `fault`, `cors` and the router — ordered by `priority`
//! (highest first), then namespace and name. istiod sends the filter's configuration by ECDS;
//! [`apply`] writes the same `PluginConfig` inline. Refused with an error: other phases, `type:
//! NETWORK`, `targetRef(s)`, URLs other than `file://` (an `oci://` module is what istio-agent
//! downloads, which a test has no agent for).

use serde_json::{json, Value};

use super::patch::{chains_mut, listener_context, selects, PatchError, Proxy};
use super::{AttachOptions, HCM};
use crate::envoy::{routing_filter_name, ROUTING_FILTER};
use crate::snapshot::Snapshot;

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// The WasmPlugins that attach `snapshot`'s gateway routing to istiod's ingress gateway, with
/// the module at `options.wasm_plugin_url` (none: no WasmPlugins, the EnvoyFilter carries the
/// filters).
pub fn wasm_plugins(snapshot: &Snapshot, options: &AttachOptions) -> Vec<Value> {
    let Some(url) = &options.wasm_plugin_url else {
        return Vec::new();
    };
    snapshot
        .listeners
        .iter()
        .map(|l| {
            let config: Value = serde_json::from_str(&l.routing.to_json()).unwrap_or_default();
            let mut plugin = json!({
                "apiVersion": "extensions.istio.io/v1alpha1",
                "kind": "WasmPlugin",
                "metadata": {
                    "name": routing_filter_name(l.port),
                    "namespace": options.namespace,
                    "labels": {"app.kubernetes.io/managed-by": "portico"},
                },
                "spec": {
                    "selector": {"matchLabels": options.gateway_labels},
                    "url": url,
                    "pluginName": ROUTING_FILTER,
                    "pluginConfig": config,
                    "failStrategy": "FAIL_RELOAD",
                    "match": [{"mode": "CLIENT", "ports": [{"number": l.port}]}],
                },
            });
            if let Some(sha) = &options.wasm_plugin_sha256 {
                plugin["spec"]["sha256"] = json!(sha);
            }
            plugin
        })
        .collect()
}

fn refuse(plugin: &Value, message: String) -> PatchError {
    PatchError::WasmPlugin {
        plugin: format!(
            "{}/{}",
            plugin["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default"),
            plugin["metadata"]["name"].as_str().unwrap_or_default()
        ),
        message,
    }
}

/// istiod's HTTP filters that come after the default phase's WasmPlugins.
const AFTER_DEFAULT_PHASE: &[&str] = &[
    "envoy.filters.http.grpc_stats",
    "istio.alpn",
    "envoy.filters.http.fault",
    "envoy.filters.http.cors",
    "envoy.filters.http.router",
];

/// Inserts the WasmPlugins of `plugins` that select `proxy` into `config` (an Envoy bootstrap
/// with istiod's listeners in `static_resources`) as istiod would; `server_port` gives a
/// listener's server port (what `match.ports` name), `None` for listeners it does not know.
/// Returns how many filters were inserted.
///
/// # Errors
/// A WasmPlugin field or value this model does not implement; nothing is changed then.
pub fn apply(
    config: &mut Value,
    plugins: &[Value],
    proxy: &Proxy,
    server_port: impl Fn(&Value) -> Option<u16>,
) -> Result<usize, PatchError> {
    // (priority, namespace, name) → the filter, for the selected plugins.
    let mut chosen: Vec<(i64, String, String, &Value, Value)> = Vec::new();
    for p in plugins {
        let ns = p["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let spec = &p["spec"];
        for field in ["targetRef", "targetRefs"] {
            if !spec[field].is_null() {
                return Err(refuse(p, format!("spec.{field} is not supported")));
            }
        }
        let phase = spec["phase"].as_str().unwrap_or("UNSPECIFIED_PHASE");
        if phase != "UNSPECIFIED_PHASE" {
            return Err(refuse(p, format!("spec.phase {phase} is not supported")));
        }
        let kind = spec["type"].as_str().unwrap_or("HTTP");
        if kind != "HTTP" && kind != "UNSPECIFIED_PLUGIN_TYPE" {
            return Err(refuse(p, format!("spec.type {kind} is not supported")));
        }
        let url = spec["url"].as_str().unwrap_or_default();
        let Some(path) = url.strip_prefix("file://") else {
            return Err(refuse(
                p,
                format!("spec.url {url:?}: only file:// modules are loaded here"),
            ));
        };
        if !selects(p, "/spec/selector/matchLabels", proxy) {
            continue;
        }
        let configuration = if spec["pluginConfig"]
            .as_object()
            .is_some_and(|o| !o.is_empty())
        {
            json!({"@type": "type.googleapis.com/google.protobuf.StringValue",
                   "value": spec["pluginConfig"].to_string()})
        } else {
            json!({})
        };
        let resource = format!("{ns}.{name}");
        let failure_policy = match spec["failStrategy"].as_str().unwrap_or("FAIL_CLOSE") {
            "FAIL_OPEN" => "FAIL_OPEN",
            "FAIL_RELOAD" => "FAIL_RELOAD",
            _ => "FAIL_CLOSED",
        };
        let filter = json!({
            "name": resource,
            "typed_config": {"@type": WASM_TYPE, "config": {
                "name": resource,
                "root_id": spec["pluginName"].as_str().unwrap_or_default(),
                "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": path}}},
                "configuration": configuration,
                "failure_policy": failure_policy,
            }},
        });
        chosen.push((
            -spec["priority"].as_i64().unwrap_or(0),
            ns.to_owned(),
            name.to_owned(),
            p,
            filter,
        ));
    }
    chosen.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
    let mut inserted = 0;
    let Some(Value::Array(listeners)) = config.pointer_mut("/static_resources/listeners") else {
        return Ok(0);
    };
    for listener in listeners.iter_mut() {
        let class = match listener_context(proxy, listener) {
            "SIDECAR_INBOUND" => "SERVER",
            _ => "CLIENT",
        };
        let port = server_port(listener);
        let wanted: Vec<&Value> = chosen
            .iter()
            .filter(|(_, _, _, p, _)| admits(&p["spec"]["match"], class, port))
            .map(|c| &c.4)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        for chain in chains_mut(listener) {
            let Some(Value::Array(filters)) = chain.get_mut("filters") else {
                continue;
            };
            for hcm in filters.iter_mut().filter(|f| f["name"] == HCM) {
                let Some(Value::Array(http)) = hcm.pointer_mut("/typed_config/http_filters") else {
                    continue;
                };
                let at = http
                    .iter()
                    .position(|f| {
                        f["name"]
                            .as_str()
                            .is_some_and(|n| AFTER_DEFAULT_PHASE.contains(&n))
                    })
                    .unwrap_or(http.len());
                for (i, f) in wanted.iter().enumerate() {
                    http.insert(at + i, (*f).clone());
                    inserted += 1;
                }
            }
        }
    }
    Ok(inserted)
}

/// Whether a WasmPlugin's `match` list admits a listener of `class` on `port`.
fn admits(matches: &Value, class: &str, port: Option<u16>) -> bool {
    let Some(list) = matches.as_array().filter(|l| !l.is_empty()) else {
        return true;
    };
    list.iter().any(|m| {
        let mode = m["mode"].as_str().unwrap_or("UNDEFINED");
        let mode_ok = matches!(mode, "UNDEFINED" | "CLIENT_AND_SERVER") || mode == class;
        let ports: Vec<u64> = m["ports"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["number"].as_u64()).collect())
            .unwrap_or_default();
        let port_ok = ports.is_empty() || port.is_some_and(|p| ports.contains(&u64::from(p)));
        mode_ok && port_ok
    })
}
