//! `translate`: Kubernetes objects in, a [`Snapshot`] out. Pure: no I/O, no clock.
//!
//! # Guarantees
//! - The same objects (in any order) give the same snapshot, byte for byte.
//! - An object that cannot be used is left out and reported as a [`TranslateError`] naming it and
//!   the field at fault; everything else still translates.
//!
//! # Ingress semantics
//! Ingress objects are read as ingress-nginx reads them: rules of every selected Ingress are
//! merged per host; for the same host and path the oldest Ingress wins (creation time, then
//! `namespace/name`); `ImplementationSpecific` is `Prefix`; a host-less rule serves every host no
//! rule names; an Ingress's `defaultBackend` serves the unmatched paths of its hosts, and the
//! oldest rule-less Ingress with a `defaultBackend` (else the oldest with any) serves everything
//! else. A backend Service that does not exist or has no ready endpoints answers 503.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use portico_core::config::{
    Backend, ForwardMode, HeaderMods, PathMatch, Route, RouteAction, RouteOrder, RoutingConfig,
    VirtualHost, WildcardMode, ROUTING_API_VERSION,
};

use crate::objects::{
    namespace_of, EndpointSlice, Ingress, IngressBackend, Object, ObjectRef, Service,
};

/// The controller name Portico claims in IngressClass objects.
pub const CONTROLLER_NAME: &str = "portico.dev/ingress-controller";

/// How `translate` selects and forwards.
#[derive(Debug, Clone)]
pub struct Options {
    /// IngressClass `spec.controller` values served (Portico's own, and ingress-nginx's so a
    /// cluster can switch without editing its IngressClasses).
    pub controllers: Vec<String>,
    /// Class names served when no IngressClass object of that name exists.
    pub class_names: Vec<String>,
    /// Serve Ingresses that name no class when no default IngressClass exists.
    pub watch_without_class: bool,
    /// How the filter hands requests to Envoy.
    pub forward: ForwardMode,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            controllers: vec![
                CONTROLLER_NAME.to_owned(),
                "k8s.io/ingress-nginx".to_owned(),
            ],
            class_names: vec!["portico".to_owned(), "nginx".to_owned()],
            watch_without_class: true,
            forward: ForwardMode::Endpoint,
        }
    }
}

/// A listener the snapshot needs, with its routing filter's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Port clients address (80 for Ingress HTTP).
    pub port: u16,
    /// The routing filter's configuration on this listener.
    pub routing: RoutingConfig,
}

/// An Envoy cluster for one backend (used by the `cluster` forward mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `outbound|PORT||FQDN`.
    pub name: String,
    /// Ready endpoints, `ip:port`.
    pub endpoints: Vec<String>,
}

/// Everything Envoy needs, derived from the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Listeners by port, each with its routing configuration.
    pub listeners: Vec<Listener>,
    /// Backend clusters.
    pub clusters: Vec<Cluster>,
    /// A hash of everything above.
    pub generation: String,
}

impl Snapshot {
    /// The routing configuration of the listener on `port`.
    pub fn routing(&self, port: u16) -> Option<&RoutingConfig> {
        self.listeners
            .iter()
            .find(|l| l.port == port)
            .map(|l| &l.routing)
    }
}

/// What is wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A field value the API would refuse, or one Portico cannot honour; the object is left out.
    Invalid(String),
    /// A field Portico does not implement; the object is left out.
    Unsupported(String),
    /// A reference to an object that does not exist; the object is kept and the reference answers
    /// 503.
    MissingReference(String),
    /// A kind `translate` does not read; the object is left out.
    UnsupportedKind,
}

/// One object `translate` could not use (fully).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// The object.
    pub object: ObjectRef,
    /// Field path within it (empty for the whole object).
    pub field: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl TranslateError {
    /// Whether the object was left out of the snapshot.
    pub fn object_dropped(&self) -> bool {
        !matches!(self.kind, ErrorKind::MissingReference(_))
    }

    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self.kind {
            ErrorKind::Invalid(_) => "invalid",
            ErrorKind::Unsupported(_) => "unsupported",
            ErrorKind::MissingReference(_) => "missing_reference",
            ErrorKind::UnsupportedKind => "unsupported_kind",
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        match &self.kind {
            ErrorKind::Invalid(m) => write!(f, ": invalid: {m}"),
            ErrorKind::Unsupported(m) => write!(f, ": not supported: {m}"),
            ErrorKind::MissingReference(m) => write!(f, ": {m}"),
            ErrorKind::UnsupportedKind => write!(f, ": this kind is not supported"),
        }
    }
}

impl std::error::Error for TranslateError {}

/// The result of [`translate`].
#[derive(Debug, Clone)]
pub struct Translation {
    /// The snapshot from every usable object.
    pub snapshot: Snapshot,
    /// Objects that could not be used (fully).
    pub errors: Vec<TranslateError>,
}

/// The backend key and cluster name of a Service port.
pub fn backend_key(namespace: &str, service: &str, port: u16) -> String {
    format!("{service}.{namespace}.svc.cluster.local:{port}")
}

pub(crate) fn cluster_name(namespace: &str, service: &str, port: u16) -> String {
    format!("outbound|{port}||{service}.{namespace}.svc.cluster.local")
}

pub(crate) struct Index<'a> {
    pub(crate) services: HashMap<(&'a str, &'a str), &'a Service>,
    pub(crate) slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
}

impl<'a> Index<'a> {
    pub(crate) fn new(objects: &'a [Object]) -> Self {
        let mut services = HashMap::new();
        let mut slices: HashMap<_, Vec<_>> = HashMap::new();
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
                _ => {}
            }
        }
        Index { services, slices }
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
}

/// Translates objects into a snapshot and the errors of the objects it could not use.
pub fn translate(objects: &[Object], options: &Options) -> Translation {
    let index = Index::new(objects);
    let mut errors = Vec::new();
    let mut ingresses: Vec<&Ingress> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Ingress(i) if ingress_selected(i, objects, options) => Some(i),
            _ => None,
        })
        .collect();
    // Oldest first: conflicts go to the oldest Ingress, as in ingress-nginx.
    ingresses.sort_by(|a, b| {
        let key = |i: &Ingress| {
            (
                i.metadata.creation_timestamp.clone().unwrap_or_default(),
                namespace_of(&i.metadata).to_owned(),
                i.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });

    let mut builder = Builder::new(&index);
    for ingress in ingresses {
        match builder.add_ingress(ingress) {
            Ok(mut warnings) => errors.append(&mut warnings),
            Err(e) => errors.push(e),
        }
    }
    let mut backends = std::mem::take(&mut builder.backends);
    let mut ports: BTreeMap<u16, RoutingConfig> = BTreeMap::new();
    ports.insert(80, builder.finish(options.forward, 80));
    crate::gateway::translate_gateways(
        objects,
        &index,
        options.forward,
        &mut ports,
        &mut backends,
        &mut errors,
    );
    // Every listener knows every backend, so its clusters stay put when routes move.
    let mut listeners = Vec::with_capacity(ports.len());
    for (port, mut routing) in ports {
        routing.backends = backends.clone();
        routing.generation = generation(&routing);
        listeners.push(Listener { port, routing });
    }
    let clusters = backends
        .values()
        .map(|b| Cluster {
            name: b.cluster.clone(),
            endpoints: b.endpoints.clone(),
        })
        .collect();
    let all: Vec<&str> = listeners
        .iter()
        .map(|l| l.routing.generation.as_str())
        .collect();
    let generation = content_hash(&all.join(","));
    Translation {
        snapshot: Snapshot {
            listeners,
            clusters,
            generation,
        },
        errors,
    }
}

/// A stable content hash of the configuration, as its generation.
fn generation(config: &RoutingConfig) -> String {
    content_hash(&config.to_json())
}

/// A stable 64-bit FNV-1a hash, in hex: the version of rendered contents.
pub fn content_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn ingress_selected(ingress: &Ingress, objects: &[Object], options: &Options) -> bool {
    let class = ingress.spec.ingress_class_name.as_deref().or_else(|| {
        ingress
            .metadata
            .annotations
            .get("kubernetes.io/ingress.class")
            .map(String::as_str)
    });
    let classes = objects.iter().filter_map(|o| match o {
        Object::IngressClass(c) => Some(c),
        _ => None,
    });
    let ours = |controller: &str| options.controllers.iter().any(|c| c == controller);
    match class {
        Some(name) => match classes.clone().find(|c| c.metadata.name == name) {
            Some(c) => ours(&c.spec.controller),
            None => options.class_names.iter().any(|n| n == name),
        },
        None => {
            let default = classes.clone().find(|c| {
                c.metadata
                    .annotations
                    .get("ingressclass.kubernetes.io/is-default-class")
                    .map(String::as_str)
                    == Some("true")
            });
            match default {
                Some(c) => ours(&c.spec.controller),
                None => options.watch_without_class,
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum PortRef<'a> {
    Number(u16),
    Name(&'a str),
}

impl fmt::Display for PortRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => write!(f, "{n}"),
        }
    }
}

/// Accumulates virtual hosts and backends over Ingresses, oldest first.
struct Builder<'a> {
    index: &'a Index<'a>,
    /// Host pattern (`*` for host-less rules) → virtual host.
    vhosts: BTreeMap<String, VirtualHost>,
    /// Order in which hosts were first seen (output order).
    order: Vec<String>,
    backends: BTreeMap<String, Backend>,
    default_no_rules: Option<String>,
    default_any: Option<String>,
}

// The error is the typed TranslateError the caller reports; it is built once per bad object.
#[allow(clippy::result_large_err)]
impl<'a> Builder<'a> {
    fn new(index: &'a Index<'a>) -> Self {
        Builder {
            index,
            vhosts: BTreeMap::new(),
            order: Vec::new(),
            backends: BTreeMap::new(),
            default_no_rules: None,
            default_any: None,
        }
    }

    /// Adds one Ingress, all or nothing. Returns the warnings (missing references).
    fn add_ingress(&mut self, ingress: &Ingress) -> Result<Vec<TranslateError>, TranslateError> {
        let ns = namespace_of(&ingress.metadata);
        let object = ObjectRef {
            kind: "Ingress".into(),
            namespace: ns.to_owned(),
            name: ingress.metadata.name.clone(),
        };
        let err = |field: String, kind: ErrorKind| TranslateError {
            object: object.clone(),
            field,
            kind,
        };
        let mut warnings = Vec::new();
        let mut backends = Vec::new();
        let spec = &ingress.spec;
        if spec.rules.is_empty() && spec.default_backend.is_none() {
            return Err(err(
                "spec".into(),
                ErrorKind::Invalid("either defaultBackend or rules must be specified".into()),
            ));
        }
        let default_backend = match &spec.default_backend {
            Some(b) => Some(self.backend(
                ns,
                b,
                "spec.defaultBackend",
                &err,
                &mut warnings,
                &mut backends,
            )?),
            None => None,
        };
        // host pattern → routes, validated before anything is merged.
        let mut per_host: Vec<(String, Vec<Route>)> = Vec::new();
        for (ri, rule) in spec.rules.iter().enumerate() {
            let host = match rule.host.as_deref() {
                None | Some("") => "*".to_owned(),
                Some(h) => {
                    validate_ingress_host(h).map_err(|m| {
                        err(format!("spec.rules[{ri}].host"), ErrorKind::Invalid(m))
                    })?;
                    h.to_ascii_lowercase()
                }
            };
            let mut routes = Vec::new();
            for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                let path = p.path.clone().unwrap_or_else(|| "/".to_owned());
                let path_match = match p.path_type.as_str() {
                    "Exact" => PathMatch::Exact(path.clone()),
                    "Prefix" | "ImplementationSpecific" => PathMatch::Prefix(path.clone()),
                    other => {
                        return Err(err(
                            format!("{field}.pathType"),
                            ErrorKind::Invalid(format!(
                                "{other:?}: must be Exact, Prefix or ImplementationSpecific"
                            )),
                        ))
                    }
                };
                validate_ingress_path(&path, &p.path_type)
                    .map_err(|m| err(format!("{field}.path"), ErrorKind::Invalid(m)))?;
                let backend = self.backend(
                    ns,
                    &p.backend,
                    &format!("{field}.backend"),
                    &err,
                    &mut warnings,
                    &mut backends,
                )?;
                routes.push(Route {
                    name: format!("{object} {field}"),
                    path: path_match,
                    headers: vec![],
                    query: vec![],
                    method: None,
                    action: RouteAction::to(backend),
                    request_headers: HeaderMods::default(),
                    response_headers: HeaderMods::default(),
                });
            }
            per_host.push((host, routes));
        }
        for (key, backend) in backends {
            self.backends.entry(key).or_insert(backend);
        }
        for (host, routes) in per_host {
            let vhost = self.vhosts.entry(host.clone()).or_insert_with(|| {
                self.order.push(host.clone());
                VirtualHost {
                    name: if host == "*" {
                        "Ingress rules without host".into()
                    } else {
                        format!("host {host}")
                    },
                    hosts: vec![host.clone()],
                    wildcard: WildcardMode::SingleLabel,
                    order: RouteOrder::LongestPath,
                    routes: Vec::new(),
                    // The Ingress that first names a host gives its unmatched paths a backend.
                    default_backend: default_backend.clone(),
                }
            });
            vhost.routes.extend(routes);
        }
        if let Some(b) = default_backend {
            if spec.rules.is_empty() && self.default_no_rules.is_none() {
                self.default_no_rules = Some(b.clone());
            }
            self.default_any.get_or_insert(b);
        }
        Ok(warnings)
    }

    /// Resolves an Ingress backend to a backend key, registering it.
    fn backend(
        &self,
        ns: &str,
        backend: &IngressBackend,
        field: &str,
        err: &dyn Fn(String, ErrorKind) -> TranslateError,
        warnings: &mut Vec<TranslateError>,
        out: &mut Vec<(String, Backend)>,
    ) -> Result<String, TranslateError> {
        if backend.resource.is_some() {
            return Err(err(
                format!("{field}.resource"),
                ErrorKind::Unsupported("resource backends; use a Service backend".into()),
            ));
        }
        let Some(svc) = &backend.service else {
            return Err(err(
                format!("{field}.service"),
                ErrorKind::Invalid("required".into()),
            ));
        };
        let name = svc.name.as_str();
        let wanted = match (svc.port.number, svc.port.name.as_deref()) {
            (Some(n), None) => PortRef::Number(n),
            (None, Some(p)) if !p.is_empty() => PortRef::Name(p),
            _ => {
                return Err(err(
                    format!("{field}.service.port"),
                    ErrorKind::Invalid("exactly one of name and number is required".into()),
                ))
            }
        };
        let service = self.index.services.get(&(ns, name)).copied();
        let port = service.and_then(|s| {
            s.spec.ports.iter().find(|p| match wanted {
                PortRef::Number(n) => p.port == n,
                PortRef::Name(want) => p.name.as_deref() == Some(want),
            })
        });
        match (service, port) {
            (None, _) => warnings.push(err(
                format!("{field}.service.name"),
                ErrorKind::MissingReference(format!("Service {ns}/{name} not found")),
            )),
            (Some(_), None) => warnings.push(err(
                format!("{field}.service.port"),
                ErrorKind::MissingReference(format!("Service {ns}/{name} has no port {wanted}")),
            )),
            _ => {}
        }
        // Without the Service port the backend still exists and answers 503.
        let number = port.map(|p| p.port).or(svc.port.number);
        let (key, cluster) = match number {
            Some(n) => (backend_key(ns, name, n), cluster_name(ns, name, n)),
            None => (
                format!("{name}.{ns}.svc.cluster.local:{wanted}"),
                format!("outbound|{wanted}||{name}.{ns}.svc.cluster.local"),
            ),
        };
        let endpoints = port
            .map(|p| {
                self.index
                    .endpoints(ns, name, p.name.as_deref().unwrap_or(""))
            })
            .unwrap_or_default();
        out.push((key.clone(), Backend { cluster, endpoints }));
        Ok(key)
    }

    /// The Ingresses' configuration for `port` (the caller fills in the backends).
    fn finish(mut self, forward: ForwardMode, port: u16) -> RoutingConfig {
        let default_backend = self.default_no_rules.take().or(self.default_any.take());
        let virtual_hosts = self
            .order
            .iter()
            .filter_map(|h| self.vhosts.remove(h))
            .collect();
        RoutingConfig {
            api_version: ROUTING_API_VERSION.to_owned(),
            generation: String::new(),
            forward,
            port,
            virtual_hosts,
            default_backend,
            backends: BTreeMap::new(),
        }
    }
}

/// The Ingress API's host rules: a DNS name, optionally with one leading `*.` label; no IPs.
fn validate_ingress_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || !name.split('.').all(label_ok) {
        return Err(format!(
            "{host:?} must be a lower-case DNS name, optionally prefixed by '*.'"
        ));
    }
    if name.parse::<std::net::IpAddr>().is_ok()
        || name
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{host:?} must be a DNS name, not an IP address"));
    }
    Ok(())
}

/// The Ingress API's path rules for `Exact` and `Prefix`: absolute, no `//`, `/./`, `/../`.
fn validate_ingress_path(path: &str, path_type: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must be an absolute path"));
    }
    if path_type != "ImplementationSpecific" {
        let bad = ["//", "/./", "/../", "%2f", "%2F"];
        if bad.iter().any(|b| path.contains(b)) || path.ends_with("/..") || path.ends_with("/.") {
            return Err(format!(
                "{path:?} must not contain '//', '/./', '/../' or '%2f'"
            ));
        }
    }
    Ok(())
}
