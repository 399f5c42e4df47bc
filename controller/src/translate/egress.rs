//! The sidecar's egress registry and policy (the egress filter's [`EgressConfig`]): Kubernetes
//! Services and ServiceEntries, each visible where its `exportTo` says, imported per client by
//! its Sidecar's `egress.hosts`, under the mesh's or the Sidecar's `outboundTrafficPolicy`.
//!
//! Sources: Istio's `service_entry.proto`, `sidecar.proto`, pilot's `serviceentry/conversion.go`
//! (a ServiceEntry host is a service of its own), `model/sidecar.go`
//! (`convertIstioListenerToWrapper`, `selectServices`: `namespace/dnsName` imports, `.` the
//! Sidecar's namespace, `*` any; default `*/*`), `push_context.go` (`IsServiceVisible`:
//! `exportTo` `*`, `.` or namespace names; a Service's `networking.istio.io/exportTo`
//! annotation), `SidecarScope` selection (a Sidecar selecting the Pod, else its namespace's
//! Sidecar without selector, else the root namespace's).

use std::collections::{BTreeMap, BTreeSet};

use portico_core::config::{Backend, PASSTHROUGH_CLUSTER};
use portico_core::egress::{
    EgressConfig, Entry, EntryPort, Mode, Protocol, Scope, EGRESS_API_VERSION,
};

use super::common::Index;
use super::diagnostics::{ErrorKind, TranslateError};
use crate::model::istio::{ServiceEntry, Sidecar};
use crate::model::{namespace_of, Object, Resource};
use crate::snapshot::SidecarEgress;

/// Istio's root namespace: its Sidecar without selector is the mesh default.
pub(crate) const ROOT_NAMESPACE: &str = "istio-system";

/// One registry entry with where it lives and who may see it.
struct Registered {
    namespace: String,
    /// `exportTo` (empty: everywhere).
    export_to: Vec<String>,
    /// A Kubernetes Service's bare name: a host for clients in its namespace only.
    short_name: Option<String>,
    entry: Entry,
}

impl Registered {
    /// `IsServiceVisible`: exported everywhere, to the client's namespace, or (`.`) kept to its
    /// own. A client in no namespace sees only what is exported everywhere.
    fn visible_to(&self, client_ns: Option<&str>) -> bool {
        if self.export_to.is_empty() || self.export_to.iter().any(|e| e == "*") {
            return true;
        }
        let Some(ns) = client_ns else { return false };
        self.export_to
            .iter()
            .any(|e| (e == "." && self.namespace == ns) || e == ns)
    }
}

/// The protocol Istio gives a ServiceEntry port (`protocol.Parse`, case-insensitive): HTTP
/// family, TLS (`TLS`, `HTTPS`), or opaque TCP. Unset is sniffed in Istio; Portico routes it
/// as HTTP.
pub(crate) fn port_protocol(protocol: Option<&str>) -> Option<Protocol> {
    match protocol.unwrap_or("").to_ascii_uppercase().as_str() {
        "" | "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" | "HTTP_PROXY" => Some(Protocol::Http),
        "TLS" | "HTTPS" => Some(Protocol::Tls),
        "TCP" | "MONGO" | "MYSQL" | "REDIS" => Some(Protocol::Tcp),
        _ => None,
    }
}

/// The ServiceEntries Istio's validation accepts, oldest first; each refusal is an error on
/// the object.
pub(crate) fn valid_service_entries<'a>(
    objects: &'a [Object],
    errors: &mut Vec<TranslateError>,
) -> Vec<&'a ServiceEntry> {
    let mut entries: Vec<&ServiceEntry> = objects
        .iter()
        .filter_map(|o| match o {
            Object::ServiceEntry(se) => Some(se),
            _ => None,
        })
        .collect();
    entries.sort_by_key(|se| crate::model::oldest_first(&se.metadata));
    entries.retain(|se| match check_service_entry(se) {
        Ok(warnings) => {
            errors.extend(warnings);
            true
        }
        Err(e) => {
            errors.push(*e);
            false
        }
    });
    entries
}

/// `ValidateServiceEntry`'s refusals (pkg/config/validation), and warnings for what Portico
/// leaves out.
fn check_service_entry(se: &ServiceEntry) -> Result<Vec<TranslateError>, Box<TranslateError>> {
    let spec = &se.spec;
    let fail = |field: &str, msg: String| {
        Box::new(TranslateError {
            object: se.object_ref(),
            field: field.into(),
            kind: ErrorKind::Invalid(msg),
        })
    };
    let resolution = spec.resolution.as_deref().unwrap_or("NONE");
    if !matches!(resolution, "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN") {
        return Err(fail(
            "spec.resolution",
            format!("{resolution:?} is not NONE, STATIC, DNS or DNS_ROUND_ROBIN"),
        ));
    }
    if spec.hosts.is_empty() {
        return Err(fail("spec.hosts", "at least one host is needed".into()));
    }
    if let Some(h) = spec.hosts.iter().find(|h| h.as_str() == "*") {
        return Err(fail(
            "spec.hosts",
            format!("{h:?}: a host must be a name or a `*.` wildcard"),
        ));
    }
    let dns = resolution == "DNS" || resolution == "DNS_ROUND_ROBIN";
    if dns && spec.endpoints.is_empty() && spec.hosts.iter().any(|h| h.starts_with('*')) {
        return Err(fail(
            "spec.resolution",
            "DNS resolution needs FQDN hosts (a wildcard host needs endpoints)".into(),
        ));
    }
    if resolution == "NONE" && !spec.endpoints.is_empty() {
        return Err(fail(
            "spec.endpoints",
            "endpoints need STATIC or DNS resolution".into(),
        ));
    }
    for (i, a) in spec.addresses.iter().enumerate() {
        let Ok(cidr) = a.parse::<portico_core::matching::cidr::Cidr>() else {
            return Err(fail(
                &format!("spec.addresses[{i}]"),
                format!("{a:?} is not an IP address or CIDR range"),
            ));
        };
        if !cidr.is_single() && dns {
            return Err(fail(
                &format!("spec.addresses[{i}]"),
                format!("{a:?}: CIDR addresses need NONE or STATIC resolution"),
            ));
        }
    }
    let mut names = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    let mut warnings = Vec::new();
    for (i, p) in spec.ports.iter().enumerate() {
        if !numbers.insert(p.number) {
            return Err(fail(
                &format!("spec.ports[{i}].number"),
                format!("port {} is listed twice", p.number),
            ));
        }
        if let Some(n) = &p.name {
            if !names.insert(n.clone()) {
                return Err(fail(
                    &format!("spec.ports[{i}].name"),
                    format!("port name {n:?} is used twice"),
                ));
            }
        }
        match port_protocol(p.protocol.as_deref()) {
            Some(Protocol::Tcp) if spec.hosts.len() > 1 && resolution != "NONE" => {
                return Err(fail(
                    &format!("spec.ports[{i}].protocol"),
                    "multiple hosts with a non-HTTP, non-TLS port need resolution NONE".into(),
                ));
            }
            Some(_) => {}
            None => warnings.push(TranslateError {
                object: se.object_ref(),
                field: format!("spec.ports[{i}].protocol"),
                kind: ErrorKind::Ignored(format!(
                    "{:?} is not a protocol Portico tells apart (HTTP, HTTP2, GRPC, HTTPS, TLS, TCP); the port is left out",
                    p.protocol.as_deref().unwrap_or("")
                )),
            }),
        }
    }
    for (i, ep) in spec.endpoints.iter().enumerate() {
        if ep.address.parse::<std::net::IpAddr>().is_err() {
            warnings.push(TranslateError {
                object: se.object_ref(),
                field: format!("spec.endpoints[{i}].address"),
                kind: ErrorKind::Ignored(format!(
                    "{:?} is not an IP address; Portico resolves no DNS names, so this endpoint is not used",
                    ep.address
                )),
            });
        }
        for name in ep.ports.keys() {
            if !names.contains(name) {
                return Err(fail(
                    &format!("spec.endpoints[{i}].ports"),
                    format!("endpoint port {name:?} is not defined by the service entry"),
                ));
            }
        }
    }
    Ok(warnings)
}

/// The registry entries of one ServiceEntry: one per host (pilot makes each host a service).
fn service_entry_entries(
    se: &ServiceEntry,
    backends: &mut BTreeMap<String, Backend>,
) -> Vec<Registered> {
    let ns = namespace_of(&se.metadata);
    let none = se.spec.resolution.as_deref().unwrap_or("NONE") == "NONE";
    let endpoints: Vec<String> = se
        .spec
        .endpoints
        .iter()
        .filter(|e| e.address.parse::<std::net::IpAddr>().is_ok())
        .map(|e| e.address.clone())
        .collect();
    let mut out = Vec::new();
    for host in &se.spec.hosts {
        let host = host.to_ascii_lowercase();
        let mut ports = Vec::new();
        for p in &se.spec.ports {
            let Some(protocol) = port_protocol(p.protocol.as_deref()) else {
                continue;
            };
            let Some((key, backend)) = super::common::service_entry_backend(se, &host, p.number)
            else {
                continue;
            };
            let cluster = if backend.original_destination {
                PASSTHROUGH_CLUSTER.to_owned()
            } else {
                backend.cluster.clone()
            };
            backends.entry(key).or_insert(backend);
            ports.push(EntryPort {
                number: p.number,
                protocol,
                cluster: if protocol == Protocol::Http {
                    String::new()
                } else {
                    cluster
                },
            });
        }
        out.push(Registered {
            namespace: ns.to_owned(),
            export_to: se.spec.export_to.clone(),
            short_name: None,
            entry: Entry {
                name: format!("ServiceEntry {ns}/{} host {host}", se.metadata.name),
                id: format!("serviceentry.{ns}.{}", se.metadata.name),
                hosts: vec![host],
                addresses: se.spec.addresses.clone(),
                endpoints: endpoints.clone(),
                original_destination: none,
                ports,
            },
        });
    }
    out
}

/// A Kubernetes Service as the mesh routing sees it: the names a client uses for it and its
/// ports (HTTP ones routed, TCP and TLS ones with their cluster).
pub(crate) struct ServiceRecord<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
    pub(crate) service: &'a crate::model::Service,
    pub(crate) hosts: Vec<String>,
    pub(crate) ports: Vec<EntryPort>,
}

/// The registry entry of a Kubernetes Service, visible where its
/// `networking.istio.io/exportTo` annotation says. Its bare name is only for clients in its
/// namespace (`generateAltVirtualHostsForKubernetesService`).
fn service_entry_of(record: ServiceRecord<'_>) -> Registered {
    let ServiceRecord {
        namespace: ns,
        name,
        service: svc,
        hosts,
        ports,
    } = record;
    let cluster_ip = svc
        .spec
        .cluster_ip
        .as_deref()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    let export_to = svc
        .metadata
        .annotations
        .get("networking.istio.io/exportTo")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut hosts = hosts;
    if !hosts.iter().any(|h| h == name) {
        hosts.push(name.to_owned());
    }
    Registered {
        namespace: ns.to_owned(),
        export_to,
        short_name: Some(name.to_owned()),
        entry: Entry {
            name: format!("Service {ns}/{name}"),
            id: format!("service.{ns}.{name}"),
            hosts,
            addresses: cluster_ip.map(|ip| vec![ip.to_owned()]).unwrap_or_default(),
            endpoints: Vec::new(),
            original_destination: false,
            ports,
        },
    }
}

/// A Sidecar by namespace and name.
type SidecarKey = (String, String);

/// One `namespace/dnsName` import of a Sidecar, or with a leading `~` an exclusion
/// (`~ns/host`; a bare `~` is any namespace, so `~/*` trims everything).
struct Import {
    /// Subtracts what it takes from what the other imports take.
    exclude: bool,
    /// `None`: any namespace; `Some(".")`: the workload's own.
    namespace: Option<String>,
    /// `*`, `*.suffix` or a name.
    host: String,
}

impl Import {
    fn parse(text: &str) -> Option<Import> {
        let (ns, host) = text.split_once('/')?;
        if host.contains('/') || host.is_empty() {
            return None;
        }
        let (exclude, ns) = match ns.strip_prefix('~') {
            Some(rest) => (true, if rest.is_empty() { "*" } else { rest }),
            None => (false, ns),
        };
        let namespace = match ns {
            "*" => None,
            other => Some(other.to_owned()),
        };
        Some(Import {
            exclude,
            namespace,
            host: host.to_ascii_lowercase(),
        })
    }

    /// Whether the import takes a registry host of `ns`, `.` being `own` (the workload's
    /// namespace: a root namespace Sidecar's `./*` is each workload's own namespace).
    fn takes(&self, own: &str, ns: &str, host: &str) -> bool {
        match self.namespace.as_deref() {
            Some(".") if own != ns => return false,
            Some(n) if n != "." && n != ns => return false,
            _ => {}
        }
        if self.host == "*" || self.host == host {
            return true;
        }
        match self.host.strip_prefix('*') {
            // `*.example.com` imports `a.example.com` and `*.a.example.com`.
            Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
            None => false,
        }
    }
}

fn mode_of(text: Option<&str>, default: Mode) -> Result<Mode, String> {
    match text {
        None => Ok(default),
        Some("ALLOW_ANY") => Ok(Mode::AllowAny),
        Some("REGISTRY_ONLY") => Ok(Mode::RegistryOnly),
        Some(other) => Err(format!("{other:?} is not ALLOW_ANY or REGISTRY_ONLY")),
    }
}

/// The Sidecar that applies to a Pod: one in its namespace selecting it (oldest first), else its
/// namespace's Sidecar without selector, else the root namespace's.
fn sidecar_for<'a>(
    sidecars: &[&'a Sidecar],
    ns: &str,
    labels: &BTreeMap<String, String>,
) -> Option<&'a Sidecar> {
    let in_ns = |n: &str| -> Vec<&'a Sidecar> {
        sidecars
            .iter()
            .copied()
            .filter(|s| namespace_of(&s.metadata) == n)
            .collect()
    };
    let mine = in_ns(ns);
    mine.iter()
        .copied()
        .find(|s| {
            s.spec.workload_selector.as_ref().is_some_and(|w| {
                !w.labels.is_empty() && w.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
        })
        .or_else(|| {
            mine.iter()
                .copied()
                .find(|s| s.spec.workload_selector.is_none())
        })
        .or_else(|| {
            in_ns(ROOT_NAMESPACE)
                .into_iter()
                .find(|s| s.spec.workload_selector.is_none())
        })
}

/// The sidecar's egress configuration. `services` are the Kubernetes Services with the hosts the
/// mesh routing gives them; `mesh_mode` and `verify` come from the PorticoConfig.
#[allow(clippy::too_many_arguments)]
pub(crate) fn translate(
    objects: &[Object],
    index: &Index<'_>,
    services: Vec<ServiceRecord<'_>>,
    entries: &[&ServiceEntry],
    mesh_mode: Mode,
    mesh_name: &str,
    verify: bool,
    backends: &mut BTreeMap<String, Backend>,
    errors: &mut Vec<TranslateError>,
) -> SidecarEgress {
    let mut registry: Vec<Registered> = services.into_iter().map(service_entry_of).collect();
    for se in entries {
        registry.extend(service_entry_entries(se, backends));
    }
    let mut tls_ports = BTreeSet::new();
    let mut tcp_ports = BTreeSet::new();
    for r in &registry {
        for p in &r.entry.ports {
            match p.protocol {
                Protocol::Tls => tls_ports.insert(p.number),
                Protocol::Tcp => tcp_ports.insert(p.number),
                Protocol::Http => false,
            };
        }
    }
    let mut sidecars: Vec<&Sidecar> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Sidecar(s) => Some(s),
            _ => None,
        })
        .collect();
    sidecars.sort_by_key(|s| crate::model::oldest_first(&s.metadata));
    // Each Sidecar's policy and imports, checked once.
    let mut checked: BTreeMap<SidecarKey, (Mode, Option<Vec<Import>>)> = BTreeMap::new();
    for s in &sidecars {
        let ns = namespace_of(&s.metadata);
        let mode = match mode_of(
            s.spec
                .outbound_traffic_policy
                .as_ref()
                .and_then(|p| p.mode.as_deref()),
            mesh_mode,
        ) {
            Ok(m) => m,
            Err(msg) => {
                errors.push(TranslateError {
                    object: s.object_ref(),
                    field: "spec.outboundTrafficPolicy.mode".into(),
                    kind: ErrorKind::InvalidSetting(format!("{msg}; the mesh's policy is used")),
                });
                mesh_mode
            }
        };
        let imports = if s.spec.egress.is_empty() {
            None
        } else {
            let mut list = Vec::new();
            for (li, l) in s.spec.egress.iter().enumerate() {
                for (hi, h) in l.hosts.iter().enumerate() {
                    match Import::parse(h) {
                        Some(i) => list.push(i),
                        None => errors.push(TranslateError {
                            object: s.object_ref(),
                            field: format!("spec.egress[{li}].hosts[{hi}]"),
                            kind: ErrorKind::Ignored(format!(
                                "{h:?} is not namespace/dnsName; this import is left out"
                            )),
                        }),
                    }
                }
            }
            Some(list)
        };
        checked.insert((ns.to_owned(), s.metadata.name.clone()), (mode, imports));
    }
    let scope = |name: String,
                 sources: Option<Vec<String>>,
                 client_ns: Option<&str>,
                 sidecar: Option<&Sidecar>|
     -> Scope {
        let (mode, imports) = match sidecar {
            Some(s) => {
                let (m, i) = &checked[&(
                    namespace_of(&s.metadata).to_owned(),
                    s.metadata.name.clone(),
                )];
                (*m, i.as_ref())
            }
            None => (mesh_mode, None),
        };
        let own = client_ns
            .or_else(|| sidecar.map(|s| namespace_of(&s.metadata)))
            .unwrap_or(ROOT_NAMESPACE);
        let entries = registry
            .iter()
            .filter(|r| r.visible_to(client_ns))
            .filter(|r| {
                imports.is_none_or(|list| {
                    let takes =
                        |i: &&Import| r.entry.hosts.iter().any(|h| i.takes(own, &r.namespace, h));
                    list.iter().filter(|i| !i.exclude).any(|i| takes(&i))
                        && !list.iter().filter(|i| i.exclude).any(|i| takes(&i))
                })
            })
            .map(|r| {
                let mut entry = r.entry.clone();
                if let Some(short) = &r.short_name {
                    // A client that is no Pod resolves bare names as one in `default` would.
                    if client_ns.unwrap_or("default") != r.namespace {
                        entry.hosts.retain(|h| h != short);
                    }
                }
                entry
            })
            .collect();
        Scope {
            name,
            sources,
            mode,
            entries,
        }
    };
    // Pods grouped by what they see: their namespace and their Sidecar.
    let mut groups: BTreeMap<(String, Option<SidecarKey>), Vec<String>> = BTreeMap::new();
    for p in &index.pods {
        let ns = namespace_of(&p.metadata);
        let sidecar = sidecar_for(&sidecars, ns, &p.metadata.labels).map(|s| {
            (
                namespace_of(&s.metadata).to_owned(),
                s.metadata.name.clone(),
            )
        });
        let ips = groups.entry((ns.to_owned(), sidecar)).or_default();
        ips.extend(p.status.pod_ip.clone());
        ips.extend(p.status.pod_ips.iter().map(|i| i.ip.clone()));
    }
    let find = |key: &Option<(String, String)>| {
        key.as_ref().and_then(|(ns, name)| {
            sidecars
                .iter()
                .copied()
                .find(|s| namespace_of(&s.metadata) == ns && &s.metadata.name == name)
        })
    };
    let mut scopes = Vec::new();
    for ((ns, key), mut ips) in groups {
        ips.retain(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            continue;
        }
        let name = match &key {
            Some((sns, sname)) => format!("Pods of namespace {ns} under Sidecar {sns}/{sname}"),
            None => format!("Pods of namespace {ns} ({mesh_name})"),
        };
        scopes.push(scope(name, Some(ips), Some(&ns), find(&key)));
    }
    let root = sidecars.iter().copied().find(|s| {
        namespace_of(&s.metadata) == ROOT_NAMESPACE && s.spec.workload_selector.is_none()
    });
    let default_name = match root {
        Some(s) => format!(
            "clients that are no Pod, under Sidecar {ROOT_NAMESPACE}/{}",
            s.metadata.name
        ),
        None => format!("clients that are no Pod ({mesh_name})"),
    };
    scopes.push(scope(default_name, None, None, root));
    let mut config = EgressConfig {
        api_version: EGRESS_API_VERSION.into(),
        generation: String::new(),
        verify_destination: verify,
        scopes,
    };
    config.generation = crate::snapshot::content_hash(&config.to_json());
    SidecarEgress {
        config,
        tls_ports,
        tcp_ports,
    }
}
