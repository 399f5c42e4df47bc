//! Istio (`networking.istio.io/v1`): Gateway, VirtualService and DestinationRule at the ingress
//! gateway, translated into per-listener routing configurations.
//!
//! # Semantics (from the Istio API reference)
//! - A VirtualService applies to the Gateways named in `gateways` (`name` or `namespace/name`;
//!   absent means `mesh` only, which the ingress gateway does not serve). Its virtual hosts
//!   are the intersection of its `hosts` and each server's (`host`, `*.suffix`, `*`, optionally
//!   `namespace/` first): the more specific of two hosts when one covers the other (pilot's
//!   `gateway.go`, `Names.Intersection`), so a VirtualService for `*` serves the server's hosts.
//! - HTTP routes are tried in order, first match wins; the conditions of one `match` entry all
//!   hold, any entry may. `uri` / `authority` / `headers` / `method` / `scheme` / `queryParams`
//!   match `exact`, `prefix` (a plain string prefix) or `regex` (RE2, whole value);
//!   `withoutHeaders` negates; `ignoreUriCase` makes `uri` case-insensitive; `port` picks the
//!   listener.
//! - `route` destinations are weighted (a lone destination takes everything); `subset` selects
//!   the pods of a DestinationRule subset by label. `redirect` answers 301 by default;
//!   `rewrite.uri` replaces the matched prefix (or the whole path after an exact or regex
//!   match), `uriRegexRewrite` substitutes every match in the path with `\1` captures (Envoy's
//!   `regex_rewrite`); `directResponse`; `headers` (`:authority` / `host`: a host rewrite); and
//!   `fault.abort` with a percentage.

mod routes;
mod tls;

use std::collections::{BTreeMap, HashMap};

use portico_core::config::{
    Backend, ForwardMode, PathMatch, Redirect, Route, RouteAction, RouteOrder, RoutingConfig,
    VirtualHost, WildcardMode,
};

use self::routes::{fqdn_of_short_name, load_balancer, vs_routes, Client, Ctx};
use super::common::{Index, SidecarBindings};
use super::diagnostics::{ErrorKind, TranslateError};
use super::tls::TlsOut;
use crate::model::istio::*;
use crate::model::{namespace_of, Object, Resource};

/// Whether `name` is a subset of `of` (pilot's `host.Name.SubsetOf`,
/// `pkg/config/host/name.go`): equal names, or `of` a wildcard (`*`, `*.suffix`, any number of
/// labels) covering `name`; a wildcard is a subset of an equal or wider wildcard only.
fn subset_of(name: &str, of: &str) -> bool {
    match (name.strip_prefix('*'), of.strip_prefix('*')) {
        (Some(n), Some(o)) => n.len() >= o.len() && n.ends_with(o),
        (Some(_), None) => false,
        (None, Some(o)) => name.ends_with(o),
        (None, None) => name == of,
    }
}

/// The virtual host a server host (`[ns/]host`, of a Gateway in `gw_ns`) and a VirtualService
/// host (from `vs_ns`) give: the more specific of the two when one covers the other, `None`
/// when they do not intersect or the namespace is not the VirtualService's (pilot:
/// `host.NamesForNamespace(server.Hosts, vs.Namespace).Intersection(vsHosts)` in
/// `pilot/pkg/networking/core/gateway.go`, `Names.Intersection` in `pkg/config/host/names.go`).
fn server_intersection(
    server_host: &str,
    gw_ns: &str,
    vs_ns: &str,
    vs_host: &str,
) -> Option<String> {
    let (ns, host) = match server_host.split_once('/') {
        Some((ns, host)) => (ns, host),
        None => ("*", server_host),
    };
    if !(ns == "*" || (ns == "." && vs_ns == gw_ns) || ns == vs_ns) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    if subset_of(&host, vs_host) {
        Some(host)
    } else if subset_of(vs_host, &host) {
        Some(vs_host.to_owned())
    } else {
        None
    }
}

/// Hosts in first-seen order, and their routes.
type HostRoutes = (Vec<String>, HashMap<String, Vec<Route>>);

/// Translates Istio Gateways and VirtualServices into the per-port configurations.
pub(crate) fn translate(
    objects: &[Object],
    index: &Index<'_>,
    forward: ForwardMode,
    ports: &mut BTreeMap<u16, RoutingConfig>,
    backends: &mut BTreeMap<String, Backend>,
    tls_out: TlsOut<'_, '_>,
    errors: &mut Vec<TranslateError>,
) {
    let gateways: Vec<&IstioGateway> = objects
        .iter()
        .filter_map(|o| {
            if let Object::IstioGateway(g) = o {
                Some(g)
            } else {
                None
            }
        })
        .collect();
    let mut services: Vec<&VirtualService> = objects
        .iter()
        .filter_map(|o| {
            if let Object::VirtualService(v) = o {
                Some(v)
            } else {
                None
            }
        })
        .collect();
    for o in objects {
        if let Object::DestinationRule(dr) = o {
            let object = dr.object_ref();
            let policies = std::iter::once((
                "spec.trafficPolicy".to_owned(),
                dr.spec.traffic_policy.as_ref(),
            ))
            .chain(dr.spec.subsets.iter().enumerate().map(|(i, s)| {
                (
                    format!("spec.subsets[{i}].trafficPolicy"),
                    s.traffic_policy.as_ref(),
                )
            }));
            for (field, policy) in policies {
                let Some(policy) = policy else { continue };
                if let Err(e) = load_balancer(policy) {
                    errors.push(TranslateError {
                        object: object.clone(),
                        field: format!("{field}.loadBalancer"),
                        kind: ErrorKind::Ignored(format!("{e}; round robin is used")),
                    });
                }
                for key in policy
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    if key != "loadBalancer" {
                        errors.push(TranslateError {
                            object: object.clone(),
                            field: format!("{field}.{key}"),
                            kind: ErrorKind::Ignored("not implemented".into()),
                        });
                    }
                }
            }
        }
    }
    let serving = tls::servers(&gateways, tls_out.certs, tls_out.ports, errors);
    if gateways.is_empty() {
        return;
    }
    services.sort_by_key(|v| crate::model::oldest_first(&v.metadata));
    let ctx = Ctx::new(objects, index);
    let vs_ref = |v: &VirtualService| v.object_ref();
    // port → host → routes, in VirtualService order.
    let mut per_port: BTreeMap<u16, HostRoutes> = BTreeMap::new();
    for vs in services.iter().copied() {
        let vs_ns = namespace_of(&vs.metadata);
        if vs.spec.tcp.is_some() {
            errors.push(TranslateError {
                object: vs_ref(vs),
                field: "spec.tcp".into(),
                kind: ErrorKind::Ignored("TCP routes are not implemented".into()),
            });
        }
        let mut produced: Vec<(u16, String, Vec<Route>)> = Vec::new();
        let mut failed = None;
        'gateways: for gw_name in &vs.spec.gateways {
            let (gns, gname) = gw_name.split_once('/').unwrap_or((vs_ns, gw_name));
            let Some(gw) = gateways
                .iter()
                .find(|g| g.metadata.name == gname && namespace_of(&g.metadata) == gns)
            else {
                continue;
            };
            let gw_ns = namespace_of(&gw.metadata);
            let gateway_name = format!("{gns}/{gname}");
            for (si, server) in gw.spec.servers.iter().enumerate() {
                if !serving.serves(gw, si) {
                    continue;
                }
                // The virtual hosts are the intersection of the server's hosts and the
                // VirtualService's: a VirtualService for `*` serves only what the server exposes.
                let vs_hosts: Vec<String> = vs
                    .spec
                    .hosts
                    .iter()
                    .map(|h| fqdn_of_short_name(&h.to_ascii_lowercase(), vs_ns))
                    .collect();
                let mut hosts: Vec<String> = Vec::new();
                for sh in &server.hosts {
                    for vh in &vs_hosts {
                        if let Some(h) = server_intersection(sh, gw_ns, vs_ns, vh) {
                            if !hosts.contains(&h) {
                                hosts.push(h);
                            }
                        }
                    }
                }
                if hosts.is_empty() {
                    continue;
                }
                let client = Client::Gateway {
                    name: &gateway_name,
                    labels: &gw.spec.selector,
                    namespace: gw_ns,
                };
                let mut routes = match vs_routes(&ctx, vs, server.port.number, client, backends) {
                    Ok(routes) => routes,
                    Err(e) => {
                        failed = Some(e);
                        break 'gateways;
                    }
                };
                if server.tls.as_ref().and_then(|t| t.https_redirect) == Some(true)
                    && !serving.is_tls(gw, si)
                {
                    // `tls.httpsRedirect` on an HTTP server: "the load balancer will send a 301
                    // redirect for all http connections, asking the clients to use HTTPS".
                    routes = vec![Route::new(
                        format!(
                            "Gateway {gw_ns}/{} server port {} tls.httpsRedirect",
                            gw.metadata.name, server.port.number
                        ),
                        PathMatch::Prefix("/".into()),
                        RouteAction::Redirect(Redirect {
                            scheme: Some("https".into()),
                            status: Some(301),
                            ..Redirect::default()
                        }),
                    )];
                }
                for h in hosts {
                    produced.push((server.port.number, h, routes.clone()));
                }
            }
        }
        if let Some((field, kind)) = failed {
            errors.push(TranslateError {
                object: vs_ref(vs),
                field,
                kind,
            });
            continue;
        }
        for (port, host, routes) in produced {
            let (order, map) = per_port.entry(port).or_default();
            if !map.contains_key(&host) {
                order.push(host.clone());
            }
            map.entry(host).or_default().extend(routes);
        }
    }
    tls::passthrough_chains(&ctx, &serving, &services, tls_out.ports, backends, errors);
    ctx.report(errors);
    // An HTTP server opens its port even when no VirtualService binds it (pilot's `blackhole`
    // virtual host: 404), and `tls.httpsRedirect` redirects its hosts all the same
    // (`buildGatewayHTTPRouteConfig`: a redirect-only virtual host per server host).
    for gw in &gateways {
        for (si, server) in gw.spec.servers.iter().enumerate() {
            if !serving.serves(gw, si) || serving.is_tls(gw, si) {
                continue;
            }
            let (order, map) = per_port.entry(server.port.number).or_default();
            if server.tls.as_ref().and_then(|t| t.https_redirect) != Some(true) {
                continue;
            }
            for h in &server.hosts {
                let host = h
                    .split_once('/')
                    .map_or(h.as_str(), |(_, h)| h)
                    .to_ascii_lowercase();
                if map.contains_key(&host) {
                    continue;
                }
                order.push(host.clone());
                map.insert(
                    host,
                    vec![Route::new(
                        format!(
                            "Gateway {}/{} server port {} tls.httpsRedirect",
                            namespace_of(&gw.metadata),
                            gw.metadata.name,
                            server.port.number
                        ),
                        PathMatch::Prefix("/".into()),
                        RouteAction::Redirect(Redirect {
                            scheme: Some("https".into()),
                            status: Some(301),
                            ..Redirect::default()
                        }),
                    )],
                );
            }
        }
    }
    for (port, (order, mut map)) in per_port {
        let config = ports
            .entry(port)
            .or_insert_with(|| RoutingConfig::for_listener(port, forward));
        for host in order {
            let routes = map.remove(&host).unwrap_or_default();
            config.virtual_hosts.push(VirtualHost {
                name: format!("Istio host {host} (port {port})"),
                hosts: vec![host],
                wildcard: WildcardMode::MultiLabel,
                order: RouteOrder::Listed,
                routes,
                default_backend: None,
            });
        }
    }
}

/// Whether a VirtualService applies to sidecars: it names no gateway, or names `mesh`.
fn binds_mesh(vs: &VirtualService) -> bool {
    vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh")
}

/// Istio's VirtualServices bound to `mesh` (or to no gateway), as the sidecar's routing takes
/// them: each Service's routes are those of the VirtualServices whose hosts name it (short names
/// are relative to the VirtualService's namespace; a wildcard host applies when no
/// VirtualService names the Service exactly), oldest VirtualService first.
pub(crate) struct SidecarVirtualServices<'a> {
    ctx: Ctx<'a>,
    /// Bound to the mesh, oldest first.
    virtual_services: Vec<&'a VirtualService>,
    /// Per Service (as given to `bind`): the VirtualServices naming it exactly, by a wildcard.
    exact: Vec<Vec<&'a VirtualService>>,
    wildcard: Vec<Vec<&'a VirtualService>>,
    /// Hosts that are no Service, with the VirtualService naming them.
    other_hosts: Vec<(String, &'a VirtualService)>,
    /// VirtualServices left out, and why.
    errors: Vec<TranslateError>,
}

impl<'a> SidecarVirtualServices<'a> {
    /// The VirtualServices of `objects` bound to the mesh.
    pub(crate) fn new(objects: &'a [Object], index: &'a Index<'a>) -> Self {
        let mut virtual_services: Vec<&VirtualService> = objects
            .iter()
            .filter_map(|o| match o {
                Object::VirtualService(v) if binds_mesh(v) => Some(v),
                _ => None,
            })
            .collect();
        virtual_services.sort_by_key(|v| crate::model::oldest_first(&v.metadata));
        SidecarVirtualServices {
            ctx: Ctx::new(objects, index),
            virtual_services,
            exact: Vec::new(),
            wildcard: Vec::new(),
            other_hosts: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The routes of some VirtualServices on one port; one that fails is left out (and reported).
    fn routes_for(
        &mut self,
        vss: &[&'a VirtualService],
        port: u16,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Vec<Route> {
        let mut out = Vec::new();
        for vs in vss {
            match vs_routes(&self.ctx, vs, port, Client::Mesh, backends) {
                Ok(mut routes) => out.append(&mut routes),
                Err((field, kind)) => {
                    let e = TranslateError {
                        object: vs.object_ref(),
                        field,
                        kind,
                    };
                    if !self.errors.contains(&e) {
                        self.errors.push(e);
                    }
                }
            }
        }
        out
    }
}

impl SidecarBindings for SidecarVirtualServices<'_> {
    fn bind(&mut self, services: &[(&str, &str)]) {
        let fqdn = |ns: &str, name: &str| format!("{name}.{ns}.svc.cluster.local");
        self.exact = vec![Vec::new(); services.len()];
        self.wildcard = vec![Vec::new(); services.len()];
        for vs in &self.virtual_services {
            let vs_ns = namespace_of(&vs.metadata);
            for host in &vs.spec.hosts {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                if let Some(suffix) = host.strip_prefix('*') {
                    for (i, (ns, name)) in services.iter().enumerate() {
                        if fqdn(ns, name).ends_with(suffix)
                            && !self.wildcard[i].iter().any(|w| std::ptr::eq(*w, *vs))
                        {
                            self.wildcard[i].push(vs);
                        }
                    }
                    continue;
                }
                let full = fqdn_of_short_name(&host, vs_ns);
                match services
                    .iter()
                    .position(|(ns, name)| fqdn(ns, name) == full)
                {
                    Some(i) if !self.exact[i].iter().any(|w| std::ptr::eq(*w, *vs)) => {
                        self.exact[i].push(vs)
                    }
                    Some(_) => {}
                    None => self.other_hosts.push((full, vs)),
                }
            }
        }
    }

    fn service_routes(
        &mut self,
        i: usize,
        port: u16,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Vec<Route> {
        let bound = if self.exact[i].is_empty() {
            self.wildcard[i].clone()
        } else {
            self.exact[i].clone()
        };
        self.routes_for(&bound, port, backends)
    }

    fn own_route(
        &mut self,
        ns: &str,
        name: &str,
        port: u16,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Option<String> {
        let own = Destination {
            host: format!("{name}.{ns}.svc.cluster.local"),
            subset: None,
            port: Some(PortSelector { number: port }),
        };
        self.ctx.destination(ns, &own, port, backends).ok()
    }

    fn other_hosts(
        &mut self,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Vec<(String, Vec<Route>)> {
        let mut out = Vec::new();
        for (host, vs) in std::mem::take(&mut self.other_hosts) {
            let routes = self.routes_for(&[vs], 80, backends);
            out.push((host, routes));
        }
        out
    }

    fn finish(&mut self, errors: &mut Vec<TranslateError>) {
        for e in std::mem::take(&mut self.errors) {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        self.ctx.report(errors);
    }
}
#[cfg(test)]
mod tests {
    use super::routes::to_dollar;
    use super::*;
    use crate::translate::common::duration_ms;

    #[test]
    fn regex_captures_convert() {
        assert_eq!(to_dollar(r"/v2/\1/x\12"), "/v2/${1}/x${12}");
        assert_eq!(to_dollar("/a$b"), "/a$$b");
    }

    #[test]
    fn durations() {
        for (text, ms) in [
            ("5s", 5000),
            ("100ms", 100),
            ("0.5s", 500),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1.5s", 1500),
        ] {
            assert_eq!(duration_ms(text), Ok(ms), "{text}");
        }
        for bad in ["", "5", "s", "5 s", "5d", "-1s"] {
            assert_eq!(
                duration_ms(bad).unwrap_err().to_string(),
                format!("{bad:?} is not a duration like 5s, 100ms or 1m30s")
            );
        }
    }

    #[test]
    fn authority_header_operations_are_a_host_rewrite() {
        use super::routes::{header_authority, header_mods};
        let ops = |set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]| {
            let map = |kv: &[(&str, &str)]| {
                kv.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            };
            HeaderOperations {
                set: map(set),
                add: map(add),
                remove: remove.iter().map(|k| (*k).to_owned()).collect(),
            }
        };
        let h = ops(
            &[(":authority", "a"), ("X-One", "1")],
            &[("Host", "b")],
            &[],
        );
        assert_eq!(header_authority(Some(&h)).as_deref(), Some("a"));
        let h = ops(
            &[],
            &[("Host", "b"), ("x", "1")],
            &["host", ":authority", "X-Gone"],
        );
        assert_eq!(header_authority(Some(&h)).as_deref(), Some("b"));
        let m = header_mods(Some(&h));
        assert_eq!(m.set, vec![]);
        assert_eq!(m.add, vec![("x".to_owned(), "1".to_owned())]);
        assert_eq!(m.remove, vec!["x-gone".to_owned()]);
        let h = ops(&[(":authority", "a"), ("X-One", "1")], &[], &[]);
        assert_eq!(
            header_mods(Some(&h)).set,
            vec![("x-one".to_owned(), "1".to_owned())]
        );
        assert_eq!(header_authority(Some(&ops(&[("x", "1")], &[], &[]))), None);
        assert_eq!(header_authority(None), None);
        // An empty value asks for nothing.
        let h = ops(&[(":authority", "")], &[("host", "b")], &[]);
        assert_eq!(header_authority(Some(&h)).as_deref(), Some("b"));
        assert_eq!(
            header_authority(Some(&ops(&[(":authority", "")], &[], &[]))),
            None
        );
    }

    #[test]
    fn server_hosts_intersect() {
        let i = |sh: &str, gw_ns: &str, vs_ns: &str, vh: &str| {
            server_intersection(sh, gw_ns, vs_ns, vh)
        };
        let some = |h: &str| Some(h.to_owned());
        // A VirtualService for every host serves only the server's hosts.
        assert_eq!(i("foo.bar", "ns", "ns", "*"), some("foo.bar"));
        assert_eq!(
            i("*.wild.example.com", "ns", "ns", "*"),
            some("*.wild.example.com")
        );
        // A server for every host serves the VirtualService's.
        assert_eq!(
            i("*", "istio-system", "default", "a.example.com"),
            some("a.example.com")
        );
        // The more specific wildcard of the two.
        assert_eq!(
            i("*.api.example.com", "ns", "ns", "*.example.com"),
            some("*.api.example.com")
        );
        assert_eq!(
            i("*.example.com", "ns", "ns", "*.api.example.com"),
            some("*.api.example.com")
        );
        assert_eq!(
            i("*.example.com", "ns", "ns", "a.b.example.com"),
            some("a.b.example.com")
        );
        assert_eq!(i("*.example.com", "ns", "ns", "example.com"), None);
        assert_eq!(i("b.example.com", "ns", "ns", "a.example.com"), None);
        assert_eq!(i("*.example.com", "ns", "ns", "*.example.org"), None);
        assert_eq!(i("Foo.Bar", "ns", "ns", "*"), some("foo.bar"));
        // Namespaces.
        assert_eq!(
            i(
                "default/*.example.com",
                "istio-system",
                "default",
                "a.example.com"
            ),
            some("a.example.com")
        );
        assert_eq!(
            i("other/*", "istio-system", "default", "a.example.com"),
            None
        );
        assert_eq!(i("./*", "default", "default", "x"), some("x"));
        assert_eq!(i("./*", "istio-system", "default", "x"), None);
        assert_eq!(i("./foo.bar", "default", "default", "*"), some("foo.bar"));
    }
}
