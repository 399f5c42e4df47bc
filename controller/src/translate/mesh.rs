//! The sidecar's outbound (mesh) routing: one configuration per Service port (Istio's outbound
//! listeners `0.0.0.0_PORT`), with the routes the Gateway API attaches to Services (GAMMA) and
//! those another family binds to them ([`SidecarBindings`]: Istio's VirtualServices bound to
//! `mesh`). It reads the model and the shared leaves only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use portico_core::config::{
    Backend, ForwardMode, PathMatch, Route, RouteAction, RouteOrder, RoutingConfig, VirtualHost,
    WildcardMode,
};

use portico_core::egress::{Mode, Protocol};

use super::common::{Index, MeshAttachment, MeshRoutes, SidecarBindings};
use super::diagnostics::TranslateError;
use crate::model::Service;
use crate::snapshot::SidecarEgress;

/// One namespace's routes for a Service name on a port.
type NamespaceRoutes = (String, Vec<Route>);

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
    objects: &[crate::model::Object],
    index: &Index<'_>,
    gamma: &MeshRoutes,
    bindings: &mut dyn SidecarBindings,
    forward: ForwardMode,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) -> (BTreeMap<u16, RoutingConfig>, SidecarEgress) {
    let mut services: Vec<(&str, &str, &Service)> = index
        .services
        .iter()
        .filter(|(_, s)| s.spec.type_.as_deref() != Some("ExternalName"))
        .map(|((ns, name), s)| (*ns, *name, *s))
        .collect();
    services.sort_by_key(|(ns, name, _)| (*ns, *name));
    let names: Vec<(&str, &str)> = services.iter().map(|(ns, name, _)| (*ns, *name)).collect();
    bindings.bind(&names);
    let mut name_uses: HashMap<&str, usize> = HashMap::new();
    for (_, name, _) in &services {
        *name_uses.entry(name).or_default() += 1;
    }
    let mut ports: BTreeMap<u16, RoutingConfig> = BTreeMap::new();
    let mut taken: HashMap<u16, HashSet<String>> = HashMap::new();
    // Each Service with the names a client uses for it, for the egress registry.
    let mut registry: Vec<super::egress::ServiceRecord<'_>> = Vec::new();
    // Per port and bare name, each namespace's Service routes: a bare name resolves in the
    // client's namespace.
    let mut short: BTreeMap<(u16, String), Vec<NamespaceRoutes>> = BTreeMap::new();
    for (i, (ns, name, svc)) in services.iter().enumerate() {
        let mut record = super::egress::ServiceRecord {
            namespace: ns,
            name,
            service: svc,
            hosts: service_hosts(ns, name, svc, &name_uses),
            ports: Vec::new(),
        };
        for sp in &svc.spec.ports {
            if sp
                .protocol
                .as_deref()
                .is_some_and(|p| !p.eq_ignore_ascii_case("TCP"))
            {
                continue;
            }
            let port = sp.port;
            let protocol = service_port_protocol(sp);
            if protocol != Protocol::Http {
                // TCP and TLS ports are the egress filter's, by ClusterIP (Istio's listener on
                // the VIP): no virtual host.
                if let Some(cluster) = bindings
                    .own_route(ns, name, port, backends)
                    .and_then(|key| backends.get(&key))
                    .map(|b| b.cluster.clone())
                {
                    record.ports.push(portico_core::egress::EntryPort {
                        number: port,
                        protocol,
                        cluster,
                    });
                }
                continue;
            }
            record.ports.push(portico_core::egress::EntryPort {
                number: port,
                protocol,
                cluster: String::new(),
            });
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
            // The bare name is served below, per client namespace.
            short
                .entry((port, (*name).to_owned()))
                .or_default()
                .push(((*ns).to_owned(), routes.clone()));
            let mut hosts = service_hosts(ns, name, svc, &name_uses);
            hosts.retain(|h| h != name);
            let seen = taken.entry(port).or_default();
            hosts.retain(|h| seen.insert(h.clone()));
            if hosts.is_empty() {
                continue;
            }
            add_host(
                &mut ports,
                forward,
                port,
                format!("Service {ns}/{name} port {port} (mesh)"),
                hosts,
                routes,
            );
        }
        registry.push(record);
    }
    // A bare name resolves in the client's namespace (Kubernetes DNS search path; pilot gives
    // `name` to the vhost of a client's own namespace only, `generateAltVirtualHostsForKubernetesService`):
    // each namespace's routes for its Pods, then those of the Service in `default` (or of the
    // only Service with that name) for every other client — the egress filter in front keeps
    // Pods of other namespaces from the latter, as Istio has no such name for them.
    for ((port, name), by_ns) in short {
        let seen = taken.entry(port).or_default();
        if !seen.insert(name.clone()) {
            continue;
        }
        let only = by_ns.len() == 1;
        let mut routes = Vec::new();
        let mut fallback = None;
        for (ns, ns_routes) in by_ns {
            if ns == "default" || only {
                fallback = Some(ns_routes);
                continue;
            }
            let pods: BTreeSet<String> = index
                .pods(Some(&ns), &BTreeMap::new())
                .into_iter()
                .collect();
            if pods.is_empty() {
                continue;
            }
            for mut r in ns_routes {
                r.sources = Some(match r.sources.take() {
                    Some(selected) => selected
                        .into_iter()
                        .filter(|ip| pods.contains(ip))
                        .collect(),
                    None => pods.iter().cloned().collect(),
                });
                routes.push(r);
            }
        }
        routes.extend(fallback.into_iter().flatten());
        if routes.is_empty() {
            continue;
        }
        add_host(
            &mut ports,
            forward,
            port,
            format!("bare name {name} port {port} (mesh, by client namespace)"),
            vec![name],
            routes,
        );
    }
    // Hosts that are no Service: port 80 only (Istio keeps them off other ports).
    for (host, routes) in bindings.other_hosts(backends) {
        let seen = taken.entry(80).or_default();
        if routes.is_empty() || !seen.insert(host.clone()) {
            continue;
        }
        add_host(
            &mut ports,
            forward,
            80,
            format!("Istio host {host} (mesh)"),
            vec![host],
            routes,
        );
    }
    let entries = super::egress::valid_service_entries(objects, errors);
    service_entries(&entries, forward, &mut ports, &mut taken, backends);
    // The outbound policy. The egress filter in front of routing decides every request and
    // connection; routing carries ALLOW_ANY's passthrough out, and answers an unknown host
    // with `block_all`'s 502 under REGISTRY_ONLY should a request reach it.
    let (mode, verify, policy_name) = outbound_policy(objects, errors);
    for config in ports.values_mut() {
        config.passthrough = mode == Mode::AllowAny;
        config.unknown_host_status = (mode == Mode::RegistryOnly).then_some(502);
    }
    let egress = super::egress::translate(
        objects,
        index,
        registry,
        &entries,
        mode,
        &policy_name,
        verify,
        backends,
        errors,
    );
    bindings.finish(errors);
    (ports, egress)
}

/// The protocol Istio gives a Service port (pilot `kube.ConvertProtocol`): its `appProtocol`,
/// else its name up to the first `-` (`tcp-db`, `https`); TCP-family and TLS ports are told
/// apart by address, every other one (HTTP, gRPC, or unnamed, which Istio sniffs) is routed.
fn service_port_protocol(port: &crate::model::ServicePort) -> Protocol {
    let name = port
        .app_protocol
        .as_deref()
        .or_else(|| {
            port.name
                .as_deref()
                .map(|n| n.split('-').next().unwrap_or(n))
        })
        .unwrap_or("")
        .to_ascii_lowercase();
    match name.as_str() {
        "tcp" | "mongo" | "mysql" | "redis" => Protocol::Tcp,
        "tls" | "https" => Protocol::Tls,
        _ => Protocol::Http,
    }
}

/// Adds a virtual host to the sidecar's configuration for `port` (made on first use): hosts
/// matched with wildcards of any depth, routes in list order.
fn add_host(
    ports: &mut BTreeMap<u16, RoutingConfig>,
    forward: ForwardMode,
    port: u16,
    name: String,
    hosts: Vec<String>,
    routes: Vec<Route>,
) {
    ports
        .entry(port)
        .or_insert_with(|| RoutingConfig::for_listener(port, forward))
        .virtual_hosts
        .push(VirtualHost {
            name,
            hosts,
            wildcard: WildcardMode::MultiLabel,
            order: RouteOrder::Listed,
            routes,
            default_backend: None,
        });
}

/// The names a client in the cluster uses for a Service: `name.ns.svc.cluster.local`,
/// `name.ns.svc`, `name.ns`, the bare `name` for Services in `default` or with a name no other
/// namespace uses, and its ClusterIP.
fn service_hosts(
    ns: &str,
    name: &str,
    svc: &Service,
    name_uses: &HashMap<&str, usize>,
) -> Vec<String> {
    let mut hosts = vec![
        format!("{name}.{ns}.svc.cluster.local"),
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}"),
    ];
    if ns == "default" || name_uses.get(name) == Some(&1) {
        hosts.push(name.to_owned());
    }
    if let Some(ip) = svc
        .spec
        .cluster_ip
        .as_deref()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    {
        hosts.push(ip.to_owned());
    }
    hosts
}

/// The mesh's outbound policy (PorticoConfig `outboundTrafficPolicy`, Istio's
/// `meshConfig.outboundTrafficPolicy.mode`; `ALLOW_ANY` by default), whether it verifies egress
/// destinations (`verifyEgressDestination`), and where that comes from. With several
/// PorticoConfigs, the first by `namespace/name`.
fn outbound_policy(
    objects: &[crate::model::Object],
    errors: &mut Vec<TranslateError>,
) -> (Mode, bool, String) {
    use crate::model::Resource;
    let Some(config) = super::common::portico_configs(objects).first().copied() else {
        return (Mode::AllowAny, false, "mesh default ALLOW_ANY".into());
    };
    let verify = config.spec.verify_egress_destination.unwrap_or(false);
    let mode = match config.spec.outbound_traffic_policy.as_deref() {
        None | Some("ALLOW_ANY") => Mode::AllowAny,
        Some("REGISTRY_ONLY") => Mode::RegistryOnly,
        Some(other) => {
            errors.push(TranslateError {
                object: config.object_ref(),
                field: "spec.outboundTrafficPolicy".into(),
                kind: super::diagnostics::ErrorKind::InvalidSetting(format!(
                    "{other:?} is not ALLOW_ANY or REGISTRY_ONLY; ALLOW_ANY is used"
                )),
            });
            Mode::AllowAny
        }
    };
    (
        mode,
        verify,
        format!("mesh policy of {}", config.object_ref()),
    )
}

/// ServiceEntries in the sidecar's routing (Istio's `service_entry.proto`, pilot
/// `serviceentry/conversion.go`): each host on each HTTP-family port (`HTTP`, `HTTP2`, `GRPC`,
/// or no protocol) is a virtual host routed to the backend `host:port` (cluster
/// `outbound|PORT||HOST`): `STATIC` / `DNS` with `endpoints` → those addresses (the port from
/// the endpoint's `ports[name]`, else `targetPort`, else the number); `NONE` → where the client
/// connected (`ORIGINAL_DST`). TLS and TCP ports are the egress filter's.
fn service_entries(
    entries: &[&crate::model::istio::ServiceEntry],
    forward: ForwardMode,
    ports: &mut BTreeMap<u16, RoutingConfig>,
    taken: &mut HashMap<u16, HashSet<String>>,
    backends: &mut BTreeMap<String, Backend>,
) {
    use crate::model::Resource;
    for se in entries {
        for p in &se.spec.ports {
            if super::egress::port_protocol(p.protocol.as_deref()) != Some(Protocol::Http) {
                continue;
            }
            for host in &se.spec.hosts {
                let host = host.to_ascii_lowercase();
                let Some((key, backend)) =
                    super::common::service_entry_backend(se, &host, p.number)
                else {
                    continue;
                };
                backends.entry(key.clone()).or_insert(backend);
                let seen = taken.entry(p.number).or_default();
                if !seen.insert(host.clone()) {
                    continue;
                }
                add_host(
                    ports,
                    forward,
                    p.number,
                    format!(
                        "ServiceEntry {} host {host} port {} (mesh)",
                        se.object_ref(),
                        p.number
                    ),
                    vec![host.clone()],
                    vec![Route::new(
                        format!(
                            "ServiceEntry {} {host}:{} (default route)",
                            se.object_ref(),
                            p.number
                        ),
                        PathMatch::Prefix("/".into()),
                        RouteAction::to(&key),
                    )],
                );
            }
        }
    }
}
