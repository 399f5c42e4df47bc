//! Leaf helpers every translation family shares: backend keys and cluster names, the [`Index`]
//! of Services, EndpointSlices and Pods, durations, and the routes the Gateway API attaches to
//! Services for the mesh (GAMMA), which the sidecar's routing takes in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use portico_core::config::{Backend, Route};

use crate::model::{namespace_of, EndpointSlice, Object, Pod, Service};
use crate::translate::diagnostics::{ErrorKind, TranslateError};

/// The backend key and cluster name of a Service port.
pub fn backend_key(namespace: &str, service: &str, port: u16) -> String {
    format!("{service}.{namespace}.svc.cluster.local:{port}")
}

pub(crate) fn cluster_name(namespace: &str, service: &str, port: u16) -> String {
    format!("outbound|{port}||{service}.{namespace}.svc.cluster.local")
}

/// The Services, EndpointSlices and Pods of a translation, looked up by namespace and name.
pub(crate) struct Index<'a> {
    pub(crate) services: HashMap<(&'a str, &'a str), &'a Service>,
    pub(crate) slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    /// Pods, in the order given.
    pub(crate) pods: Vec<&'a Pod>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(objects: &'a [Object]) -> Self {
        let mut services = HashMap::new();
        let mut slices: HashMap<_, Vec<_>> = HashMap::new();
        let mut pods = Vec::new();
        for object in objects {
            match object {
                Object::Service(s) => {
                    services.insert((namespace_of(&s.metadata), s.metadata.name.as_str()), s);
                }
                Object::EndpointSlice(e) => {
                    if let Some(svc) = e.metadata.labels.get("kubernetes.io/service-name") {
                        slices
                            .entry((namespace_of(&e.metadata), svc.as_str()))
                            .or_default()
                            .push(e);
                    }
                }
                Object::Pod(p) => pods.push(p),
                _ => {}
            }
        }
        Index {
            services,
            slices,
            pods,
        }
    }

    /// Ready `ip:port` endpoints of a Service port, sorted.
    pub(crate) fn endpoints(&self, namespace: &str, service: &str, port_name: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        for slice in self.slices.get(&(namespace, service)).into_iter().flatten() {
            if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
                continue;
            }
            let Some(port) = slice
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                .and_then(|p| p.port)
            else {
                continue;
            };
            for ep in &slice.endpoints {
                if ep.conditions.ready == Some(false) {
                    continue;
                }
                for addr in &ep.addresses {
                    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
                        continue;
                    };
                    out.insert(std::net::SocketAddr::new(ip, port).to_string());
                }
            }
        }
        out.into_iter().collect()
    }

    /// The IPs of the Pods (in `ns`, or any namespace) that carry every label of `labels`.
    pub(crate) fn pods(&self, ns: Option<&str>, labels: &BTreeMap<String, String>) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.pods {
            if ns.is_none_or(|ns| namespace_of(&p.metadata) == ns)
                && labels
                    .iter()
                    .all(|(k, v)| p.metadata.labels.get(k) == Some(v))
            {
                out.extend(p.status.pod_ip.clone());
                out.extend(p.status.pod_ips.iter().map(|i| i.ip.clone()));
            }
        }
        out
    }
}

/// A text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration like 5s, 100ms or 1m30s")]
pub(crate) struct BadDuration {
    pub(crate) text: String,
}

impl From<BadDuration> for ErrorKind {
    fn from(e: BadDuration) -> Self {
        ErrorKind::Invalid(e.to_string())
    }
}

/// A duration as Istio and the Gateway API write it: Go (`1h2m3.5s`, `100ms`) or protobuf JSON
/// (`0.5s`), in milliseconds.
pub(crate) fn duration_ms(text: &str) -> Result<u64, BadDuration> {
    let bad = || BadDuration {
        text: text.to_owned(),
    };
    let mut total = 0.0_f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(split);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    Ok(total.round() as u64)
}

/// Sort key of one match, in the spec's precedence order (smaller first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Precedence {
    pub(crate) path_kind: u8,
    pub(crate) path_len: std::cmp::Reverse<usize>,
    pub(crate) no_method: bool,
    pub(crate) headers: std::cmp::Reverse<usize>,
    pub(crate) query: std::cmp::Reverse<usize>,
    pub(crate) created: String,
    pub(crate) route: String,
    pub(crate) rule: usize,
    pub(crate) matched: usize,
}

/// An HTTPRoute attached to a Service (the Gateway API's mesh support, GAMMA): its routes apply
/// to requests a sidecar sends to that Service.
#[derive(Debug, Clone)]
pub(crate) struct MeshAttachment {
    /// The Service port it applies to (`None`: every port).
    pub port: Option<u16>,
    /// A consumer route (in another namespace than the Service) applies only to requests from
    /// Pods of its own namespace; `None` for a producer route.
    pub consumer: Option<String>,
    /// Its routes, with their precedence.
    pub(crate) cands: Vec<(Precedence, Route)>,
}

impl MeshAttachment {
    /// Routes of several attachments merged in the spec's precedence order.
    pub fn merged<'a>(attachments: impl IntoIterator<Item = &'a MeshAttachment>) -> Vec<Route> {
        let mut all: Vec<&(Precedence, Route)> =
            attachments.into_iter().flat_map(|a| &a.cands).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter().map(|(_, r)| r.clone()).collect()
    }
}

/// Mesh attachments by Service `(namespace, name)`.
pub(crate) type MeshRoutes = BTreeMap<(String, String), Vec<MeshAttachment>>;

/// What a family binds to the sidecar's Service ports (Istio: the VirtualServices bound to
/// `mesh`). [`crate::translate::mesh`] asks, in this order: [`bind`](Self::bind) once, then
/// [`service_routes`](Self::service_routes) and maybe [`own_route`](Self::own_route) per Service
/// port, then [`other_hosts`](Self::other_hosts), then [`finish`](Self::finish).
pub(crate) trait SidecarBindings {
    /// The Services that get a sidecar virtual host, sorted by namespace and name.
    fn bind(&mut self, services: &[(&str, &str)]);
    /// The routes bound to Service `i` (of those given to `bind`) on `port`; empty when none.
    fn service_routes(
        &mut self,
        i: usize,
        port: u16,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Vec<Route>;
    /// The backend key of the default route of a Service port no route is bound to.
    fn own_route(
        &mut self,
        ns: &str,
        name: &str,
        port: u16,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Option<String>;
    /// The hosts bound that are no Service, each with its routes on port 80.
    fn other_hosts(
        &mut self,
        backends: &mut BTreeMap<String, Backend>,
    ) -> Vec<(String, Vec<Route>)>;
    /// Adds what the bindings found wrong to `errors` (each once).
    fn finish(&mut self, errors: &mut Vec<TranslateError>);
}

/// The backend of a ServiceEntry host on one of its ports: key `host:port`, cluster
/// `outbound|PORT||HOST`, the endpoints of `STATIC` / `DNS` resolution (IP addresses; the port
/// from `ports[name]`, else `targetPort`, else the number), or the original destination for
/// `NONE`. `None` when the entry has no such port.
pub(crate) fn service_entry_backend(
    se: &crate::model::istio::ServiceEntry,
    host: &str,
    port: u16,
) -> Option<(String, Backend)> {
    let p = se.spec.ports.iter().find(|p| p.number == port)?;
    let resolution = se.spec.resolution.as_deref().unwrap_or("NONE");
    let endpoints = se
        .spec
        .endpoints
        .iter()
        .filter_map(|ep| {
            let ip = ep.address.parse::<std::net::IpAddr>().ok()?;
            let port = p
                .name
                .as_ref()
                .and_then(|n| ep.ports.get(n).copied())
                .or(p.target_port)
                .unwrap_or(p.number);
            Some(std::net::SocketAddr::new(ip, port).to_string())
        })
        .collect();
    let host = host.to_ascii_lowercase();
    Some((
        format!("{host}:{port}"),
        Backend {
            cluster: format!("outbound|{port}||{host}"),
            endpoints,
            lb: Default::default(),
            original_destination: resolution == "NONE",
        },
    ))
}

/// The PorticoConfigs, by `namespace/name`: the first is the one that applies.
pub(crate) fn portico_configs(objects: &[Object]) -> Vec<&crate::model::portico::PorticoConfig> {
    let mut configs: Vec<_> = objects
        .iter()
        .filter_map(|o| match o {
            Object::PorticoConfig(c) => Some(c),
            _ => None,
        })
        .collect();
    configs.sort_by_key(|c| {
        (
            namespace_of(&c.metadata).to_owned(),
            c.metadata.name.clone(),
        )
    });
    configs
}
