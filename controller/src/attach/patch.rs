//! How istiod merges EnvoyFilter patches into the configuration it generates for one proxy,
//! for the operations Portico's EnvoyFilters use and a few neighbours — enough to check, on an
//! Envoy configuration shaped like istiod's, that what [`super::envoy_filters`] writes lands
//! where it must. Everything else is refused with [`PatchError`], never skipped.
//!
//! Follows `pilot/pkg/networking/core/envoyfilter/{listener_patch,cluster_patch,rc_patch}.go`:
//!
//! - **Which filters**: those in the root namespace or the proxy's, whose `workloadSelector`
//!   labels the proxy has (none: every proxy); ordered by `priority`, then root namespace first,
//!   then `creationTimestamp`, then name; patches in list order.
//! - **Context**: a gateway's listeners, routes and clusters are `GATEWAY`; a sidecar's are
//!   `SIDECAR_INBOUND` (listener `virtualInbound` or `traffic_direction: INBOUND`, clusters and
//!   route configurations named `inbound|…`) or `SIDECAR_OUTBOUND`; `ANY` matches all.
//! - **Listener match**: `name`; `portNumber` (the listener's socket port — on `virtualInbound`
//!   / `virtualOutbound` it is a filter chain's `destination_port` instead); `filterChain`
//!   `name`, `sni`, `transportProtocol`, `applicationProtocols`, `destinationPort`, `filter.name`,
//!   `filter.subFilter.name`. The default filter chain is patched like the others.
//! - **`NETWORK_FILTER` / `HTTP_FILTER`**: `ADD` (append), `INSERT_FIRST`, `INSERT_BEFORE` /
//!   `INSERT_AFTER` (before / after the matched filter; without a filter match, first / last),
//!   `REMOVE`, `REPLACE`; `MERGE` for network filters (protobuf merge of the typed config).
//!   HTTP filters are patched in every HTTP connection manager the match reaches.
//! - **`HTTP_ROUTE`**: `ADD`, `INSERT_FIRST`, `INSERT_BEFORE`, `INSERT_AFTER`, `REMOVE`, per
//!   virtual host of each matching route configuration (`name`, `vhost.name`,
//!   `vhost.domainName`, `vhost.route.name`; `portNumber` outside gateways).
//! - **`CLUSTER`**: `ADD`, `REMOVE` (`name`, `service`, `portNumber`, `subset` from istiod's
//!   `direction|port|subset|host` names).
//!
//! Refused: `MERGE` except on network filters, `MERGE_AND_REPLACE_LIST`, `LISTENER`, `FILTER_CHAIN`,
//! `ROUTE_CONFIGURATION`, `VIRTUAL_HOST`, `EXTENSION_CONFIG`, `LISTENER_FILTER`, `BOOTSTRAP`,
//! `targetRefs`, `proxy` matches, and any match field not listed.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a set of EnvoyFilters cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// A patch uses an operation this merge does not implement for its `applyTo`.
    #[error(
        "EnvoyFilter {filter}: configPatches[{index}]: {apply_to} {operation} is not supported"
    )]
    Unsupported {
        /// `namespace/name`.
        filter: String,
        /// Index in `configPatches`.
        index: usize,
        /// `applyTo`.
        apply_to: String,
        /// `patch.operation`.
        operation: String,
    },
    /// A field this merge does not implement.
    #[error("EnvoyFilter {filter}: {field} is not supported")]
    UnsupportedField {
        /// `namespace/name`.
        filter: String,
        /// The field's path.
        field: String,
    },
    /// A WasmPlugin field or value the model of istiod's insertion does not implement.
    #[error("WasmPlugin {plugin}: {message}")]
    WasmPlugin {
        /// `namespace/name`.
        plugin: String,
        /// What is not supported.
        message: String,
    },
    /// The object is not a well-formed EnvoyFilter.
    #[error("EnvoyFilter {filter}: {message}")]
    Invalid {
        /// `namespace/name`.
        filter: String,
        /// What is wrong.
        message: String,
    },
}

/// Which kind of proxy istiod generated the configuration for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// An ingress (or egress) gateway: every patch context is `GATEWAY`.
    Gateway,
    /// A sidecar: `SIDECAR_INBOUND` or `SIDECAR_OUTBOUND` by direction.
    Sidecar,
}

/// The proxy the configuration is for.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// Gateway or sidecar.
    pub kind: ProxyKind,
    /// Its pod's labels.
    pub labels: BTreeMap<String, String>,
    /// Its pod's namespace.
    pub namespace: String,
    /// istiod's root namespace (`istio-system`).
    pub root_namespace: String,
}

/// How many patches changed something, by `applyTo`.
pub type Applied = BTreeMap<String, usize>;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn port_of(listener: &Value) -> u64 {
    listener
        .pointer("/address/socket_address/port_value")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

struct Patch<'a> {
    apply_to: &'a str,
    operation: &'a str,
    context: &'a str,
    m: &'a Value,
    value: &'a Value,
}

const MATCH_FIELDS: &[&str] = &["context", "listener", "routeConfiguration", "cluster"];
const LISTENER_FIELDS: &[&str] = &["name", "portNumber", "filterChain"];
const CHAIN_FIELDS: &[&str] = &[
    "name",
    "sni",
    "transportProtocol",
    "applicationProtocols",
    "destinationPort",
    "filter",
];
const ROUTE_CONFIG_FIELDS: &[&str] = &["name", "portNumber", "vhost"];
const CLUSTER_FIELDS: &[&str] = &["name", "portNumber", "service", "subset"];

fn check_fields(filter: &str, path: &str, v: &Value, allowed: &[&str]) -> Result<(), PatchError> {
    if let Some(o) = v.as_object() {
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(PatchError::UnsupportedField {
                    filter: filter.to_owned(),
                    field: format!("{path}.{k}"),
                });
            }
        }
    }
    Ok(())
}

/// The EnvoyFilters of `filters` that apply to `proxy`, in istiod's order.
/// Whether istiod applies `object` (an EnvoyFilter, a WasmPlugin) to `proxy`: it is in the root
/// namespace or the proxy's, and the proxy carries every label at `labels` (a pointer into the
/// object; none there: every proxy).
pub(super) fn selects(object: &Value, labels: &str, proxy: &Proxy) -> bool {
    let ns = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    if ns != proxy.root_namespace && ns != proxy.namespace {
        return false;
    }
    object
        .pointer(labels)
        .and_then(Value::as_object)
        .is_none_or(|labels| {
            labels
                .iter()
                .all(|(k, v)| proxy.labels.get(k).map(String::as_str) == v.as_str())
        })
}

fn selected<'a>(filters: &'a [Value], proxy: &Proxy) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = filters
        .iter()
        .filter(|f| selects(f, "/spec/workloadSelector/labels", proxy))
        .collect();
    out.sort_by_key(|f| {
        let ns = f
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        (
            f.pointer("/spec/priority")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            ns != proxy.root_namespace,
            f.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            format!("{}.{ns}", s(&f["metadata"], "name")),
        )
    });
    out
}

fn patches<'a>(filters: &[&'a Value]) -> Result<Vec<Patch<'a>>, PatchError> {
    let mut out = Vec::new();
    for f in filters {
        let name = format!(
            "{}/{}",
            f.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default"),
            s(&f["metadata"], "name")
        );
        if f.pointer("/spec/targetRefs").is_some() || f.pointer("/spec/targetRef").is_some() {
            return Err(PatchError::UnsupportedField {
                filter: name,
                field: "spec.targetRefs".into(),
            });
        }
        let Some(list) = f.pointer("/spec/configPatches").and_then(Value::as_array) else {
            return Err(PatchError::Invalid {
                filter: name,
                message: "spec.configPatches is required".into(),
            });
        };
        for (index, p) in list.iter().enumerate() {
            let m = &p["match"];
            let path = format!("spec.configPatches[{index}].match");
            check_fields(&name, &path, m, MATCH_FIELDS)?;
            check_fields(
                &name,
                &format!("{path}.listener"),
                &m["listener"],
                LISTENER_FIELDS,
            )?;
            check_fields(
                &name,
                &format!("{path}.listener.filterChain"),
                &m["listener"]["filterChain"],
                CHAIN_FIELDS,
            )?;
            check_fields(
                &name,
                &format!("{path}.routeConfiguration"),
                &m["routeConfiguration"],
                ROUTE_CONFIG_FIELDS,
            )?;
            check_fields(
                &name,
                &format!("{path}.cluster"),
                &m["cluster"],
                CLUSTER_FIELDS,
            )?;
            let apply_to = s(p, "applyTo");
            let operation = s(&p["patch"], "operation");
            let supported = match apply_to {
                "NETWORK_FILTER" => matches!(
                    operation,
                    "ADD"
                        | "INSERT_FIRST"
                        | "INSERT_BEFORE"
                        | "INSERT_AFTER"
                        | "REMOVE"
                        | "REPLACE"
                        | "MERGE"
                ),
                "HTTP_FILTER" => matches!(
                    operation,
                    "ADD"
                        | "INSERT_FIRST"
                        | "INSERT_BEFORE"
                        | "INSERT_AFTER"
                        | "REMOVE"
                        | "REPLACE"
                ),
                "HTTP_ROUTE" => matches!(
                    operation,
                    "ADD" | "INSERT_FIRST" | "INSERT_BEFORE" | "INSERT_AFTER" | "REMOVE"
                ),
                "CLUSTER" => matches!(operation, "ADD" | "REMOVE"),
                _ => false,
            };
            if !supported {
                return Err(PatchError::Unsupported {
                    filter: name,
                    index,
                    apply_to: apply_to.to_owned(),
                    operation: operation.to_owned(),
                });
            }
            out.push(Patch {
                apply_to,
                operation,
                context: m.get("context").and_then(Value::as_str).unwrap_or("ANY"),
                m,
                value: &p["patch"]["value"],
            });
        }
    }
    Ok(out)
}

fn context_matches(patch: &Patch<'_>, context: &str) -> bool {
    patch.context == "ANY" || patch.context == context
}

/// The patch context of a listener of `proxy`: `GATEWAY`, `SIDECAR_INBOUND` or
/// `SIDECAR_OUTBOUND`.
pub(super) fn listener_context(proxy: &Proxy, listener: &Value) -> &'static str {
    match proxy.kind {
        ProxyKind::Gateway => "GATEWAY",
        ProxyKind::Sidecar
            if s(listener, "name") == "virtualInbound"
                || s(listener, "traffic_direction") == "INBOUND" =>
        {
            "SIDECAR_INBOUND"
        }
        ProxyKind::Sidecar => "SIDECAR_OUTBOUND",
    }
}

fn named_context(proxy: &Proxy, name: &str) -> &'static str {
    match proxy.kind {
        ProxyKind::Gateway => "GATEWAY",
        ProxyKind::Sidecar if name.starts_with("inbound|") => "SIDECAR_INBOUND",
        ProxyKind::Sidecar => "SIDECAR_OUTBOUND",
    }
}

fn is_virtual(listener: &Value) -> bool {
    matches!(s(listener, "name"), "virtualInbound" | "virtualOutbound")
}

fn listener_matches(listener: &Value, m: &Value) -> bool {
    let lm = &m["listener"];
    if lm.is_null() {
        return true;
    }
    if let Some(name) = lm.get("name").and_then(Value::as_str) {
        if name != s(listener, "name") {
            return false;
        }
    }
    if is_virtual(listener) {
        return true;
    }
    match lm.get("portNumber").and_then(Value::as_u64) {
        Some(p) if p != 0 => port_of(listener) == p,
        _ => true,
    }
}

fn chain_matches(listener: &Value, chain: &Value, m: &Value) -> bool {
    let lm = &m["listener"];
    if lm.is_null() {
        return true;
    }
    let fcm = &chain["filter_chain_match"];
    if is_virtual(listener) {
        if let Some(p) = lm
            .get("portNumber")
            .and_then(Value::as_u64)
            .filter(|p| *p > 0)
        {
            if fcm["destination_port"].as_u64() != Some(p) {
                return false;
            }
        }
    }
    let cm = &lm["filterChain"];
    if cm.is_null() {
        return true;
    }
    if let Some(name) = cm.get("name").and_then(Value::as_str) {
        if name != s(chain, "name") {
            return false;
        }
    }
    if let Some(sni) = cm.get("sni").and_then(Value::as_str) {
        let names = fcm["server_names"].as_array();
        if !names.is_some_and(|n| n.iter().any(|x| x.as_str() == Some(sni))) {
            return false;
        }
    }
    if let Some(tp) = cm.get("transportProtocol").and_then(Value::as_str) {
        if s(fcm, "transport_protocol") != tp {
            return false;
        }
    }
    if let Some(aps) = cm.get("applicationProtocols").and_then(Value::as_str) {
        let have = fcm["application_protocols"].as_array();
        for p in aps.split(',') {
            if !have.is_some_and(|h| h.iter().any(|x| x.as_str() == Some(p))) {
                return false;
            }
        }
    }
    if let Some(p) = cm
        .get("destinationPort")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
    {
        if fcm["destination_port"].as_u64() != Some(p) {
            return false;
        }
    }
    true
}

fn filter_match_name(m: &Value) -> Option<&str> {
    m.pointer("/listener/filterChain/filter/name")
        .and_then(Value::as_str)
}

fn sub_filter_name(m: &Value) -> Option<&str> {
    m.pointer("/listener/filterChain/filter/subFilter/name")
        .and_then(Value::as_str)
}

/// Applies ADD / INSERT_* / REMOVE / REPLACE to `list`; `target` names the filter the patch
/// matches (`None`: no filter match). Returns whether anything changed.
fn patch_list(list: &mut Vec<Value>, operation: &str, target: Option<&str>, value: &Value) -> bool {
    let at = |list: &Vec<Value>| target.and_then(|t| list.iter().position(|f| s(f, "name") == t));
    match (operation, target) {
        ("ADD", _) | ("INSERT_AFTER", None) => {
            list.push(value.clone());
            true
        }
        ("INSERT_FIRST", _) | ("INSERT_BEFORE", None) => {
            list.insert(0, value.clone());
            true
        }
        ("INSERT_BEFORE", Some(_)) => match at(list) {
            Some(i) => {
                list.insert(i, value.clone());
                true
            }
            None => false,
        },
        ("INSERT_AFTER", Some(_)) => match at(list) {
            Some(i) => {
                list.insert(i + 1, value.clone());
                true
            }
            None => false,
        },
        ("REPLACE", Some(_)) => match at(list) {
            Some(i) => {
                list[i] = value.clone();
                true
            }
            None => false,
        },
        ("REMOVE", Some(t)) => {
            let before = list.len();
            list.retain(|f| s(f, "name") != t);
            list.len() != before
        }
        _ => false,
    }
}

/// Protobuf merge on JSON: messages merge field by field, scalars are replaced, repeated
/// fields are appended.
fn proto_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) => proto_merge(slot, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => a.extend(b.iter().cloned()),
        (slot, v) => *slot = v.clone(),
    }
}

/// `NETWORK_FILTER` `MERGE` (istiod's `patchNetworkFilter`): the matched filters' typed configs
/// merged with the value's (a filter without one is skipped), their name replaced when the value
/// has one.
fn merge_filters(filters: &mut [Value], target: Option<&str>, value: &Value) -> bool {
    let mut changed = false;
    for f in filters
        .iter_mut()
        .filter(|f| target.is_none_or(|t| s(f, "name") == t))
    {
        if f.get("typed_config").is_none() {
            continue;
        }
        if let Some(config) = value.get("typed_config") {
            if f["typed_config"]["@type"] == config["@type"] {
                proto_merge(&mut f["typed_config"], config);
            }
        }
        if let Some(name) = value
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            f["name"] = name.into();
        }
        changed = true;
    }
    changed
}

/// Every filter chain of a listener, its default chain last.
pub(super) fn chains_mut(listener: &mut Value) -> Vec<&mut Value> {
    let mut out: Vec<&mut Value> = Vec::new();
    let Some(o) = listener.as_object_mut() else {
        return out;
    };
    let (chains, default) = {
        let mut chains = None;
        let mut default = None;
        for (k, v) in o.iter_mut() {
            match k.as_str() {
                "filter_chains" => chains = Some(v),
                "default_filter_chain" => default = Some(v),
                _ => {}
            }
        }
        (chains, default)
    };
    if let Some(Value::Array(cs)) = chains {
        out.extend(cs.iter_mut());
    }
    if let Some(d) = default {
        out.push(d);
    }
    out
}

fn route_configs_mut(listener: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    for chain in chains_mut(listener) {
        if let Some(Value::Array(filters)) = chain.get_mut("filters") {
            for f in filters.iter_mut() {
                if s(f, "name") == super::HCM {
                    if let Some(rc) = f.pointer_mut("/typed_config/route_config") {
                        out.push(rc);
                    }
                }
            }
        }
    }
    out
}

/// Parses istiod's cluster name `direction|port|subset|host`.
fn subset_key(name: &str) -> Option<(u64, &str, &str)> {
    let mut parts = name.split('|');
    let _direction = parts.next()?;
    let port = parts.next()?.parse().ok()?;
    let subset = parts.next()?;
    let host = parts.next()?;
    Some((port, subset, host))
}

fn cluster_matches(cluster: &Value, m: &Value) -> bool {
    let cm = &m["cluster"];
    if cm.is_null() {
        return true;
    }
    let name = s(cluster, "name");
    if let Some(n) = cm.get("name").and_then(Value::as_str) {
        if n != name {
            return false;
        }
    }
    let key = subset_key(name);
    if let Some(p) = cm
        .get("portNumber")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
    {
        if key.map(|k| k.0) != Some(p) {
            return false;
        }
    }
    if let Some(svc) = cm.get("service").and_then(Value::as_str) {
        if key.map(|k| k.2) != Some(svc) {
            return false;
        }
    }
    if let Some(sub) = cm.get("subset").and_then(Value::as_str) {
        if key.map(|k| k.1) != Some(sub) {
            return false;
        }
    }
    true
}

fn route_config_matches(proxy: &Proxy, rc: &Value, m: &Value) -> bool {
    let rm = &m["routeConfiguration"];
    if rm.is_null() {
        return true;
    }
    if let Some(n) = rm.get("name").and_then(Value::as_str) {
        if n != s(rc, "name") {
            return false;
        }
    }
    if proxy.kind == ProxyKind::Sidecar {
        if let Some(p) = rm
            .get("portNumber")
            .and_then(Value::as_u64)
            .filter(|p| *p > 0)
        {
            if s(rc, "name").parse::<u64>().ok() != Some(p) {
                return false;
            }
        }
    } else if rm.get("portNumber").is_some() {
        // A gateway's route names carry the listener port; matching a Service port through
        // istiod's gateway port map is not modelled.
        return false;
    }
    true
}

fn vhost_matches(vhost: &Value, m: &Value) -> bool {
    let vm = &m["routeConfiguration"]["vhost"];
    if vm.is_null() {
        return true;
    }
    if let Some(n) = vm.get("name").and_then(Value::as_str) {
        if n != s(vhost, "name") {
            return false;
        }
    }
    if let Some(d) = vm.get("domainName").and_then(Value::as_str) {
        let domains = vhost["domains"].as_array();
        if !domains.is_some_and(|ds| ds.iter().any(|x| x.as_str() == Some(d))) {
            return false;
        }
    }
    true
}

/// Applies `filters` (EnvoyFilter objects) to `config`, an Envoy bootstrap whose
/// `static_resources` hold the listeners (route configurations inline in their HTTP connection
/// managers) and clusters istiod generated for `proxy`.
///
/// # Errors
/// A patch this merge does not implement; nothing is changed then.
pub fn apply(config: &mut Value, filters: &[Value], proxy: &Proxy) -> Result<Applied, PatchError> {
    let chosen = selected(filters, proxy);
    let patches = patches(&chosen)?;
    let mut applied = Applied::new();
    let mut count = |p: &Patch<'_>, changed: bool| {
        if changed {
            *applied.entry(p.apply_to.to_owned()).or_default() += 1;
        }
    };
    let mut empty = Vec::new();
    let listeners = match config.pointer_mut("/static_resources/listeners") {
        Some(Value::Array(ls)) => ls,
        _ => &mut empty,
    };
    for listener in listeners.iter_mut() {
        let context = listener_context(proxy, listener);
        let snapshot = listener.clone();
        for chain in chains_mut(listener) {
            let chain_view = chain.clone();
            for p in patches.iter().filter(|p| p.apply_to == "NETWORK_FILTER") {
                if !context_matches(p, context)
                    || !listener_matches(&snapshot, p.m)
                    || !chain_matches(&snapshot, &chain_view, p.m)
                {
                    continue;
                }
                if let Some(Value::Array(filters)) = chain.get_mut("filters") {
                    let changed = if p.operation == "MERGE" {
                        merge_filters(filters, filter_match_name(p.m), p.value)
                    } else {
                        patch_list(filters, p.operation, filter_match_name(p.m), p.value)
                    };
                    count(p, changed);
                }
            }
            let Some(Value::Array(filters)) = chain.get_mut("filters") else {
                continue;
            };
            for hcm in filters.iter_mut().filter(|f| s(f, "name") == super::HCM) {
                for p in patches.iter().filter(|p| p.apply_to == "HTTP_FILTER") {
                    if !context_matches(p, context)
                        || !listener_matches(&snapshot, p.m)
                        || !chain_matches(&snapshot, &chain_view, p.m)
                        || filter_match_name(p.m).is_some_and(|n| n != super::HCM)
                    {
                        continue;
                    }
                    if let Some(Value::Array(http)) = hcm.pointer_mut("/typed_config/http_filters")
                    {
                        let changed = patch_list(http, p.operation, sub_filter_name(p.m), p.value);
                        count(p, changed);
                    }
                }
            }
        }
        for rc in route_configs_mut(listener) {
            let rc_context = match proxy.kind {
                ProxyKind::Gateway => "GATEWAY",
                ProxyKind::Sidecar => named_context(proxy, s(rc, "name")),
            };
            let rc_view = rc.clone();
            let Some(Value::Array(vhosts)) = rc.get_mut("virtual_hosts") else {
                continue;
            };
            for vhost in vhosts.iter_mut() {
                for p in patches.iter().filter(|p| p.apply_to == "HTTP_ROUTE") {
                    if !context_matches(p, rc_context)
                        || !route_config_matches(proxy, &rc_view, p.m)
                        || !vhost_matches(vhost, p.m)
                    {
                        continue;
                    }
                    let route =
                        p.m.pointer("/routeConfiguration/vhost/route/name")
                            .and_then(Value::as_str);
                    if let Some(Value::Array(routes)) = vhost.get_mut("routes") {
                        let op = match (p.operation, route) {
                            // INSERT_FIRST with a route match inserts first only if it exists.
                            ("INSERT_FIRST", Some(r))
                                if !routes.iter().any(|x| s(x, "name") == r) =>
                            {
                                continue
                            }
                            ("INSERT_FIRST", _) => "INSERT_FIRST",
                            (op, _) => op,
                        };
                        let changed = patch_list(routes, op, route, p.value);
                        count(p, changed);
                    }
                }
            }
        }
    }
    let clusters = config
        .pointer_mut("/static_resources/clusters")
        .and_then(Value::as_array_mut);
    if let Some(clusters) = clusters {
        for p in patches.iter().filter(|p| p.apply_to == "CLUSTER") {
            match p.operation {
                "REMOVE" => {
                    let before = clusters.len();
                    clusters.retain(|c| {
                        !(context_matches(p, named_context(proxy, s(c, "name")))
                            && cluster_matches(c, p.m))
                    });
                    count(p, clusters.len() != before);
                }
                _ => {
                    // A sidecar's added clusters serve both directions.
                    let applies = match proxy.kind {
                        ProxyKind::Gateway => context_matches(p, "GATEWAY"),
                        ProxyKind::Sidecar => {
                            context_matches(p, "SIDECAR_OUTBOUND") || p.context == "SIDECAR_INBOUND"
                        }
                    };
                    if applies {
                        clusters.push(p.value.clone());
                        count(p, true);
                    }
                }
            }
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gateway() -> Proxy {
        Proxy {
            kind: ProxyKind::Gateway,
            labels: BTreeMap::from([("istio".into(), "ingressgateway".into())]),
            namespace: "istio-system".into(),
            root_namespace: "istio-system".into(),
        }
    }

    fn config() -> Value {
        json!({"static_resources": {
            "listeners": [{
                "name": "0.0.0.0_8080",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "route_config": {"name": "http.8080", "virtual_hosts": [
                            {"name": "blackhole:80", "domains": ["*"], "routes": [{"name": "block", "match": {"prefix": "/"}}]}]},
                        "http_filters": [{"name": "istio.stats"}, {"name": "envoy.filters.http.router"}],
                    }}]}],
            }],
            "clusters": [{"name": "outbound|80||web.default.svc.cluster.local"}],
        }})
    }

    fn filter(patches: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
               "metadata": {"name": "f", "namespace": "istio-system"},
               "spec": {"workloadSelector": {"labels": {"istio": "ingressgateway"}}, "configPatches": patches}})
    }

    fn names(v: &Value) -> Vec<&str> {
        v.as_array().unwrap().iter().map(|f| s(f, "name")).collect()
    }

    #[test]
    fn insert_before_router_and_routes_first() {
        let mut c = config();
        let f = filter(json!([
            {"applyTo": "HTTP_FILTER", "match": {"context": "GATEWAY", "listener": {"portNumber": 8080,
              "filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager",
                "subFilter": {"name": "envoy.filters.http.router"}}}}},
             "patch": {"operation": "INSERT_BEFORE", "value": {"name": "mine"}}},
            {"applyTo": "HTTP_FILTER", "match": {"context": "GATEWAY", "listener": {"portNumber": 9090}},
             "patch": {"operation": "INSERT_FIRST", "value": {"name": "other-port"}}},
            {"applyTo": "HTTP_ROUTE", "match": {"context": "GATEWAY", "routeConfiguration": {}},
             "patch": {"operation": "INSERT_FIRST", "value": {"name": "steer"}}},
            {"applyTo": "CLUSTER", "match": {"context": "GATEWAY"},
             "patch": {"operation": "ADD", "value": {"name": "extra"}}},
        ]));
        let applied = apply(&mut c, &[f], &gateway()).unwrap();
        let hcm = &c["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        assert_eq!(
            names(&hcm["http_filters"]),
            ["istio.stats", "mine", "envoy.filters.http.router"]
        );
        assert_eq!(
            names(&hcm["route_config"]["virtual_hosts"][0]["routes"]),
            ["steer", "block"]
        );
        assert_eq!(names(&c["static_resources"]["clusters"]).len(), 2);
        assert_eq!(applied.values().sum::<usize>(), 3);
    }

    #[test]
    fn other_proxies_and_contexts_are_left_alone() {
        let mut c = config();
        let mut f = filter(
            json!([{"applyTo": "CLUSTER", "match": {"context": "SIDECAR_OUTBOUND"},
             "patch": {"operation": "ADD", "value": {"name": "extra"}}}]),
        );
        apply(&mut c, &[f.clone()], &gateway()).unwrap();
        assert_eq!(names(&c["static_resources"]["clusters"]).len(), 1);
        f["spec"]["workloadSelector"]["labels"]["istio"] = "egressgateway".into();
        f["spec"]["configPatches"][0]["match"]["context"] = "ANY".into();
        apply(&mut c, &[f], &gateway()).unwrap();
        assert_eq!(names(&c["static_resources"]["clusters"]).len(), 1);
    }

    #[test]
    fn unsupported_operations_and_fields_are_refused() {
        let merge = filter(
            json!([{"applyTo": "HTTP_FILTER", "match": {"context": "GATEWAY"},
             "patch": {"operation": "MERGE", "value": {}}}]),
        );
        let e = apply(&mut config(), &[merge], &gateway()).unwrap_err();
        assert!(
            matches!(e, PatchError::Unsupported { ref operation, .. } if operation == "MERGE"),
            "{e}"
        );
        let vhost = filter(
            json!([{"applyTo": "VIRTUAL_HOST", "match": {"context": "GATEWAY"},
             "patch": {"operation": "ADD", "value": {}}}]),
        );
        assert!(apply(&mut config(), &[vhost], &gateway()).is_err());
        let proxy = filter(
            json!([{"applyTo": "CLUSTER", "match": {"context": "GATEWAY", "proxy": {"proxyVersion": "1.2"}},
             "patch": {"operation": "ADD", "value": {}}}]),
        );
        let e = apply(&mut config(), &[proxy], &gateway()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "EnvoyFilter istio-system/f: spec.configPatches[0].match.proxy is not supported"
        );
    }
}
