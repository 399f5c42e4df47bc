//! The sidecar's outbound (mesh) routing: one configuration per Service port (Istio's outbound
//! listeners `0.0.0.0_PORT`), with the routes the Gateway API attaches to Services (GAMMA) and
//! those another family binds to them ([`SidecarBindings`]: Istio's VirtualServices bound to
//! `mesh`). It reads the model and the shared leaves only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use portico_core::config::{
    Backend, ForwardMode, PathMatch, Route, RouteAction, RouteOrder, RoutingConfig, VirtualHost,
    WildcardMode,
};

use super::common::{Index, MeshAttachment, MeshRoutes, SidecarBindings};
use super::diagnostics::TranslateError;
use crate::model::Service;

/// The routes of the HTTPRoutes attached to one Service port: each consumer namespace's routes
/// (for its Pods only, ending in a 404 so a consumer route replaces the producer's for them),
/// then the producer routes, each set in the spec's precedence order.
fn gamma_routes(
    index: &Index<'_>,
    attached: &[&MeshAttachment],
    ns: &str,
    name: &str,
    port: u16,
) -> Vec<Route> {
    let mut out = Vec::new();
    let consumers: BTreeSet<&str> = attached
        .iter()
        .filter_map(|a| a.consumer.as_deref())
        .collect();
    for c in consumers {
        let pods = index.pods(Some(c), &BTreeMap::new());
        let mine = attached
            .iter()
            .copied()
            .filter(|a| a.consumer.as_deref() == Some(c));
        for mut r in MeshAttachment::merged(mine) {
            r.sources = Some(pods.clone());
            out.push(r);
        }
        out.push(Route {
            sources: Some(pods),
            ..Route::new(
                format!("consumer routes of namespace {c} for Service {ns}/{name} port {port}: none matched"),
                PathMatch::Prefix("/".into()),
                RouteAction::Respond {
                    status: 404,
                    body: "404 page not found\n".into(),
                },
            )
        });
    }
    out.extend(MeshAttachment::merged(
        attached.iter().copied().filter(|a| a.consumer.is_none()),
    ));
    out
}

/// The sidecar's outbound routing, one configuration per Service port: a virtual host per
/// Service with that port, named as a client in the cluster addresses it
/// (`name.ns.svc.cluster.local`, `name.ns.svc`, `name.ns`, the bare `name` for Services in
/// `default` or with a name no other namespace uses, the ClusterIP).
///
/// Its routes are the GAMMA routes attached to the Service port if any, else those `bindings`
/// binds to it; a Service port with neither is routed to itself. A bound host that is no Service
/// is served on port 80 only, as Istio does. Hosts and ports nothing names pass through
/// (Istio's `ALLOW_ANY`).
pub(crate) fn translate(
    index: &Index<'_>,
    gamma: &MeshRoutes,
    bindings: &mut dyn SidecarBindings,
    forward: ForwardMode,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) -> BTreeMap<u16, RoutingConfig> {
    let mut services: Vec<(&str, &str, &Service)> = index
        .services
        .iter()
        .filter(|(_, s)| s.spec.type_.as_deref() != Some("ExternalName"))
        .map(|((ns, name), s)| (*ns, *name, *s))
        .collect();
    services.sort_by_key(|(ns, name, _)| (*ns, *name));
    let names: Vec<(&str, &str)> = services.iter().map(|(ns, name, _)| (*ns, *name)).collect();
    bindings.bind(&names);
    let fqdn = |ns: &str, name: &str| format!("{name}.{ns}.svc.cluster.local");
    let mut name_uses: HashMap<&str, usize> = HashMap::new();
    for (_, name, _) in &services {
        *name_uses.entry(name).or_default() += 1;
    }
    let mut ports: BTreeMap<u16, RoutingConfig> = BTreeMap::new();
    let mut taken: HashMap<u16, HashSet<String>> = HashMap::new();
    for (i, (ns, name, svc)) in services.iter().enumerate() {
        for sp in &svc.spec.ports {
            if sp
                .protocol
                .as_deref()
                .is_some_and(|p| !p.eq_ignore_ascii_case("TCP"))
            {
                continue;
            }
            let port = sp.port;
            // HTTPRoutes attached to the Service (Gateway API mesh) come before VirtualServices.
            let attached: Vec<&MeshAttachment> = gamma
                .get(&((*ns).to_owned(), (*name).to_owned()))
                .map(|v| {
                    v.iter()
                        .filter(|a| a.port.is_none_or(|p| p == port))
                        .collect()
                })
                .unwrap_or_default();
            let mut routes = if attached.is_empty() {
                bindings.service_routes(i, port, backends)
            } else {
                gamma_routes(index, &attached, ns, name, port)
            };
            let producers = attached.iter().any(|a| a.consumer.is_none());
            // Bound routes that all name their clients (Istio's `sourceLabels` /
            // `sourceNamespace`): pilot builds each client's routes from those that select it
            // (route.go `BuildHTTPRoutesForVirtualService`, `sourceMatchHTTP`) and, when none is
            // left, skips the VirtualService (`buildSidecarVirtualHostsForVirtualService`:
            // `len(routes) == 0` → nil), so `BuildSidecarVirtualHostWrapper` gives that client
            // the Service's default route. A selected client keeps only its routes (404 past
            // them); every other client gets the default route.
            let client_only = attached.is_empty()
                && !routes.is_empty()
                && routes.iter().all(|r| r.sources.is_some());
            if routes.is_empty() || (!attached.is_empty() && !producers) || client_only {
                // Nothing routes this port (for these clients): the Service itself, as Istio's
                // default route.
                let Some(key) = bindings.own_route(ns, name, port, backends) else {
                    continue;
                };
                if client_only {
                    let selected: BTreeSet<String> = routes
                        .iter()
                        .flat_map(|r| r.sources.iter().flatten().cloned())
                        .collect();
                    if !selected.is_empty() {
                        routes.push(Route {
                            sources: Some(selected.into_iter().collect()),
                            ..Route::new(
                                format!("Service {ns}/{name} port {port}: the routes of the clients they select; none matched"),
                                PathMatch::Prefix("/".into()),
                                RouteAction::Respond {
                                    status: 404,
                                    body: "404 page not found\n".into(),
                                },
                            )
                        });
                    }
                }
                routes.push(Route::new(
                    format!("Service {ns}/{name} port {port} (default route)"),
                    PathMatch::Prefix("/".into()),
                    RouteAction::to(&key),
                ));
            }
            let mut hosts = vec![
                fqdn(ns, name),
                format!("{name}.{ns}.svc"),
                format!("{name}.{ns}"),
            ];
            if *ns == "default" || name_uses.get(name) == Some(&1) {
                hosts.push((*name).to_owned());
            }
            if let Some(ip) = svc
                .spec
                .cluster_ip
                .as_deref()
                .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            {
                hosts.push(ip.to_owned());
            }
            let seen = taken.entry(port).or_default();
            hosts.retain(|h| seen.insert(h.clone()));
            if hosts.is_empty() {
                continue;
            }
            ports
                .entry(port)
                .or_insert_with(|| RoutingConfig::for_listener(port, forward))
                .virtual_hosts
                .push(VirtualHost {
                    name: format!("Service {ns}/{name} port {port} (mesh)"),
                    hosts,
                    wildcard: WildcardMode::MultiLabel,
                    order: RouteOrder::Listed,
                    routes,
                    default_backend: None,
                });
        }
    }
    // Hosts that are no Service: port 80 only (Istio keeps them off other ports).
    for (host, routes) in bindings.other_hosts(backends) {
        let seen = taken.entry(80).or_default();
        if routes.is_empty() || !seen.insert(host.clone()) {
            continue;
        }
        ports
            .entry(80)
            .or_insert_with(|| RoutingConfig::for_listener(80, forward))
            .virtual_hosts
            .push(VirtualHost {
                name: format!("Istio host {host} (mesh)"),
                hosts: vec![host],
                wildcard: WildcardMode::MultiLabel,
                order: RouteOrder::Listed,
                routes,
                default_backend: None,
            });
    }
    // ALLOW_ANY (Istio's default outbound policy): unknown hosts, and ports no Service has
    // (the catch-all configuration, port 0), go where the client was going.
    for config in ports.values_mut() {
        config.passthrough = true;
    }
    let mut any = RoutingConfig::for_listener(0, forward);
    any.passthrough = true;
    ports.insert(0, any);
    bindings.finish(errors);
    ports
}
