//! The sidecar's outbound (mesh) routing: one configuration per Service port (Istio's outbound
//! listeners `0.0.0.0_PORT`), with the routes the Gateway API attaches to Services (GAMMA) and
//! those another family binds to them ([`SidecarBindings`]: Istio's VirtualServices bound to
//! `mesh`). It reads the model and the shared leaves only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use portico_core::config::{
    Backend, ForwardMode, PathMatch, Route, RouteAction, RouteOrder, RoutingConfig, VirtualHost,
    WildcardMode,
};

use portico_core::tls::select::{
    Chain, ChainAction, Family, PassthroughBackend, SniPattern, TlsTable,
};

use super::common::{Index, MeshAttachment, MeshRoutes, SidecarBindings};
use super::diagnostics::TranslateError;
use super::tls::TlsPorts;
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
    objects: &[crate::model::Object],
    index: &Index<'_>,
    gamma: &MeshRoutes,
    bindings: &mut dyn SidecarBindings,
    forward: ForwardMode,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) -> (BTreeMap<u16, RoutingConfig>, BTreeMap<u16, TlsTable>) {
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
    let mut tls_tables = TlsPorts::default();
    service_entries(
        objects,
        forward,
        &mut ports,
        &mut taken,
        &mut tls_tables,
        backends,
        errors,
    );
    // The outbound policy. ALLOW_ANY (Istio's default): unknown hosts, and ports no Service
    // has (the catch-all configuration, port 0), go where the client was going. REGISTRY_ONLY:
    // an unknown host on a port with HTTP services gets Istio's `block_all` 502; a port none
    // has is closed (BlackHoleCluster).
    let registry_only = outbound_policy(objects, errors);
    for config in ports.values_mut() {
        config.passthrough = !registry_only;
        config.unknown_host_status = registry_only.then_some(502);
    }
    let mut any = RoutingConfig::for_listener(0, forward);
    any.passthrough = !registry_only;
    ports.insert(0, any);
    // TLS to a ServiceEntry port: an SNI no entry names goes where the client was going
    // (ALLOW_ANY) or is closed (REGISTRY_ONLY: the PassthroughFilterChain blackholes).
    if !registry_only {
        let tls_ports: Vec<u16> = tls_tables.tables.keys().copied().collect();
        for port in tls_ports {
            let chain = tls_tables.chain(
                port,
                Family::Istio,
                Chain {
                    name: "allow-any".into(),
                    origin: "ALLOW_ANY: where the client was going".into(),
                    action: ChainAction::Passthrough {
                        backends: vec![PassthroughBackend {
                            backend: "PassthroughCluster".into(),
                            cluster: portico_core::config::PASSTHROUGH_CLUSTER.into(),
                            weight: 1,
                        }],
                    },
                    hosts: Vec::new(),
                    host_check: None,
                },
            );
            tls_tables.default_chain(port, Family::Istio, chain);
        }
    }
    bindings.finish(errors);
    (ports, tls_tables.finish())
}

/// Whether the mesh's outbound policy is `REGISTRY_ONLY` (PorticoConfig
/// `outboundTrafficPolicy`, Istio's `meshConfig.outboundTrafficPolicy.mode`; `ALLOW_ANY` by
/// default). With several PorticoConfigs, the first by `namespace/name`.
fn outbound_policy(objects: &[crate::model::Object], errors: &mut Vec<TranslateError>) -> bool {
    use crate::model::{Object, Resource};
    let mut configs: Vec<_> = objects
        .iter()
        .filter_map(|o| match o {
            Object::PorticoConfig(c) => Some(c),
            _ => None,
        })
        .collect();
    configs.sort_by_key(|c| {
        (
            crate::model::namespace_of(&c.metadata).to_owned(),
            c.metadata.name.clone(),
        )
    });
    let Some(config) = configs.first() else {
        return false;
    };
    match config.spec.outbound_traffic_policy.as_deref() {
        None | Some("ALLOW_ANY") => false,
        Some("REGISTRY_ONLY") => true,
        Some(other) => {
            errors.push(TranslateError {
                object: config.object_ref(),
                field: "spec.outboundTrafficPolicy".into(),
                kind: super::diagnostics::ErrorKind::InvalidSetting(format!(
                    "{other:?} is not ALLOW_ANY or REGISTRY_ONLY; ALLOW_ANY is used"
                )),
            });
            false
        }
    }
}

/// ServiceEntries in the sidecar's registry (Istio's `service_entry.proto`, pilot
/// `serviceentry/conversion.go`): each host on each HTTP-family port (`HTTP`, `HTTP2`, `GRPC`,
/// or no protocol) is a virtual host routed to the backend `host:port` (cluster
/// `outbound|PORT||HOST`): `STATIC` / `DNS` with `endpoints` → those addresses (the port from
/// the endpoint's `ports[name]`, else `targetPort`, else the number); `NONE` → where the client
/// connected (`ORIGINAL_DST`). Invalid entries (a wildcard host with `DNS` and no endpoints,
/// `NONE` with endpoints, a bare `*` host) are left out, as Istio's validation refuses them.
fn service_entries(
    objects: &[crate::model::Object],
    forward: ForwardMode,
    ports: &mut BTreeMap<u16, RoutingConfig>,
    taken: &mut HashMap<u16, HashSet<String>>,
    tls_tables: &mut TlsPorts,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) {
    use super::diagnostics::ErrorKind;
    use crate::model::{Object, Resource};
    let mut entries: Vec<_> = objects
        .iter()
        .filter_map(|o| match o {
            Object::ServiceEntry(se) => Some(se),
            _ => None,
        })
        .collect();
    entries.sort_by_key(|se| {
        (
            se.metadata.creation_timestamp.clone().unwrap_or_default(),
            crate::model::namespace_of(&se.metadata).to_owned(),
            se.metadata.name.clone(),
        )
    });
    for se in entries {
        let spec = &se.spec;
        let resolution = spec.resolution.as_deref().unwrap_or("NONE");
        let fail = |field: &str, msg: String| TranslateError {
            object: se.object_ref(),
            field: field.into(),
            kind: ErrorKind::Invalid(msg),
        };
        if let Some(h) = spec.hosts.iter().find(|h| h.as_str() == "*") {
            errors.push(fail(
                "spec.hosts",
                format!("{h:?}: a host must be a name or a `*.` wildcard"),
            ));
            continue;
        }
        let dns = resolution == "DNS" || resolution == "DNS_ROUND_ROBIN";
        if dns && spec.endpoints.is_empty() && spec.hosts.iter().any(|h| h.starts_with('*')) {
            errors.push(fail(
                "spec.resolution",
                "DNS resolution needs FQDN hosts (a wildcard host needs endpoints)".into(),
            ));
            continue;
        }
        if resolution == "NONE" && !spec.endpoints.is_empty() {
            errors.push(fail(
                "spec.endpoints",
                "endpoints need STATIC or DNS resolution".into(),
            ));
            continue;
        }
        if !matches!(resolution, "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN") {
            errors.push(fail(
                "spec.resolution",
                format!("{resolution:?} is not NONE, STATIC, DNS or DNS_ROUND_ROBIN"),
            ));
            continue;
        }
        for (ei, ep) in spec.endpoints.iter().enumerate() {
            if ep.address.parse::<std::net::IpAddr>().is_err() {
                errors.push(TranslateError {
                    object: se.object_ref(),
                    field: format!("spec.endpoints[{ei}].address"),
                    kind: ErrorKind::Ignored(format!(
                        "{:?} is not an IP address; Portico resolves no DNS names, so this endpoint is not used",
                        ep.address
                    )),
                });
            }
        }
        for (pi, p) in spec.ports.iter().enumerate() {
            let protocol = p.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
            if matches!(protocol.as_str(), "TLS" | "HTTPS") {
                // By SNI: each host a rule to the entry's backend (Istio's `server_names`
                // chains of a VIP-less TLS port), passed through untouched.
                tls_tables.table(p.number, Family::Istio);
                ports
                    .entry(p.number)
                    .or_insert_with(|| RoutingConfig::for_listener(p.number, forward));
                for host in &spec.hosts {
                    let host = host.to_ascii_lowercase();
                    let Some((key, backend)) =
                        super::common::service_entry_backend(se, &host, p.number)
                    else {
                        continue;
                    };
                    let cluster = if backend.original_destination {
                        portico_core::config::PASSTHROUGH_CLUSTER.to_owned()
                    } else {
                        backend.cluster.clone()
                    };
                    backends.entry(key.clone()).or_insert(backend);
                    let Some(pattern) = SniPattern::parse(&host, false) else {
                        continue;
                    };
                    let table = tls_tables.table(p.number, Family::Istio);
                    if table.rules.iter().any(|r| r.pattern == pattern) {
                        continue;
                    }
                    let chain = tls_tables.chain(
                        p.number,
                        Family::Istio,
                        Chain {
                            name: format!(
                                "se-{}-{}-{host}-{}",
                                crate::model::namespace_of(&se.metadata),
                                se.metadata.name,
                                p.number
                            ),
                            origin: format!("{} {host}:{}", se.object_ref(), p.number),
                            action: ChainAction::Passthrough {
                                backends: vec![PassthroughBackend {
                                    backend: key,
                                    cluster,
                                    weight: 1,
                                }],
                            },
                            hosts: Vec::new(),
                            host_check: None,
                        },
                    );
                    tls_tables.rule(p.number, Family::Istio, pattern, chain);
                }
                continue;
            }
            if !matches!(protocol.as_str(), "" | "HTTP" | "HTTP2" | "GRPC") {
                errors.push(TranslateError {
                    object: se.object_ref(),
                    field: format!("spec.ports[{pi}].protocol"),
                    kind: ErrorKind::Ignored(format!(
                        "{protocol} ports of ServiceEntries are not routed yet (HTTP and TLS only); under REGISTRY_ONLY their connections are closed"
                    )),
                });
                continue;
            }
            for host in &spec.hosts {
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
                ports
                    .entry(p.number)
                    .or_insert_with(|| RoutingConfig::for_listener(p.number, forward))
                    .virtual_hosts
                    .push(VirtualHost {
                        name: format!(
                            "ServiceEntry {} host {host} port {} (mesh)",
                            se.object_ref(),
                            p.number
                        ),
                        hosts: vec![host.clone()],
                        wildcard: WildcardMode::MultiLabel,
                        order: RouteOrder::Listed,
                        routes: vec![Route::new(
                            format!(
                                "ServiceEntry {} {host}:{} (default route)",
                                se.object_ref(),
                                p.number
                            ),
                            PathMatch::Prefix("/".into()),
                            RouteAction::to(&key),
                        )],
                        default_backend: None,
                    });
            }
        }
    }
}
