//! Ingress (`networking.k8s.io/v1`) as ingress-nginx reads it, with its annotations
//! ([`super::nginx`]).
//!
//! # Semantics
//! Ingress objects are read as ingress-nginx reads them: rules of every selected Ingress are
//! merged per host; for the same host and path the oldest Ingress wins (creation time, then
//! `namespace/name` in descending order, as `store.go` `sortIngressSlice`); `ImplementationSpecific`
//! is `Prefix`; a host-less rule serves every host no rule names; the first Ingress that names a
//! host gives its unmatched paths its `defaultBackend` (none: 404), and only the oldest Ingress
//! without rules serves other hosts with its `defaultBackend` (controller.go `createServers`,
//! ingress-nginx issue 8823). A backend Service that does not exist or has no ready endpoints
//! answers 503, unless the Ingress's `default-backend` annotation names a Service with endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use portico_core::config::{
    Backend, ClientRanges, ForwardMode, HeaderMatch, LoadBalancer, PathMatch, PathRewrite,
    Redirect, Rewrite, Route, RouteAction, RouteOrder, RoutingConfig, StringMatch, VirtualHost,
    WeightedBackend, WildcardMode,
};

use super::common::{backend_key, cluster_name, Index};
use super::diagnostics::{ErrorKind, TranslateError};
use super::nginx;
use super::options::Options;
use super::tls::{Certificates, TlsPorts};
use crate::model::{namespace_of, Ingress, IngressBackend, Object, Resource};

mod canary;
pub(crate) mod tls;

/// What the Ingresses make: the routing of port 80 and (when any Ingress is served) of port 443,
/// and the backends they use.
pub(crate) struct IngressRouting {
    /// Port 80 (`None`: the objects are only other families').
    pub(crate) http: Option<RoutingConfig>,
    /// Port 443: the same servers, reached over TLS (no redirect to HTTPS).
    pub(crate) https: Option<RoutingConfig>,
    /// Backends by key.
    pub(crate) backends: BTreeMap<String, Backend>,
}

/// The Ingresses' routing and the backends they use: every selected Ingress, oldest first, then
/// the canaries; and their certificates on port 443 ([`tls`]).
pub(crate) fn translate(
    objects: &[Object],
    index: &Index<'_>,
    options: &Options,
    certs: &mut Certificates<'_>,
    tls_ports: &mut TlsPorts,
    errors: &mut Vec<TranslateError>,
) -> IngressRouting {
    let Served {
        ingresses,
        mains,
        canaries,
        regex_hosts,
    } = served(objects, options, errors);
    // ingress-nginx listens on 80 and 443 whether or not an Ingress exists (its default server
    // answers 404 with the default certificate); so does Portico, unless the objects are only
    // another family's (Istio or Gateway API Gateways, which open their own ports).
    let gateways = objects
        .iter()
        .any(|o| matches!(o, Object::Gateway(_) | Object::IstioGateway(_)));
    let serves = !ingresses.is_empty() || !gateways;
    // Port 443's certificates first: which hosts have one decides port 80's redirects.
    let (tls_hosts, client_certificates) = if serves {
        let t = tls::certificates(objects, index, &mains, certs, tls_ports, errors);
        (t.redirects, t.client_certificates)
    } else {
        (BTreeSet::new(), BTreeMap::new())
    };
    // The same servers on both ports; the HTTPS one's diagnostics would repeat port 80's.
    let build = |https: bool, errors: &mut Vec<TranslateError>| {
        let mut builder = Builder::new(index, regex_hosts.clone(), https, tls_hosts.clone());
        for ingress in &mains {
            match builder.add_ingress(ingress) {
                Ok(mut warnings) => errors.append(&mut warnings),
                Err(e) => errors.push(e),
            }
        }
        for ingress in &canaries {
            match builder.add_canary(ingress) {
                Ok(mut warnings) => errors.append(&mut warnings),
                Err(e) => errors.push(e),
            }
        }
        let backends = std::mem::take(&mut builder.backends);
        let mut config = builder.finish(options.forward, if https { 443 } else { 80 });
        // auth-tls: every location of the host carries its server's client certificate rules.
        for vhost in &mut config.virtual_hosts {
            let rules = vhost
                .hosts
                .first()
                .and_then(|h| client_certificates.get(&h.to_ascii_lowercase()));
            if let Some(rules) = rules {
                for route in &mut vhost.routes {
                    route.client_certificate = Some(rules.clone());
                }
            }
        }
        (config, backends)
    };
    let (http, backends) = build(false, errors);
    let https = serves.then(|| build(true, &mut Vec::new()).0);
    IngressRouting {
        http: serves.then_some(http),
        https,
        backends,
    }
}

/// The Ingresses ingress-nginx would hold in its store, as `translate` reads them.
pub(crate) struct Served<'a> {
    /// Every one, oldest first.
    pub(crate) ingresses: Vec<&'a Ingress>,
    /// The non-canary ones, oldest first.
    pub(crate) mains: Vec<&'a Ingress>,
    /// The canaries, oldest first.
    pub(crate) canaries: Vec<&'a Ingress>,
    /// Hosts whose paths are all nginx regexes (`*` for host-less rules).
    pub(crate) regex_hosts: BTreeSet<String>,
}

/// The selected Ingresses, oldest first, without those whose annotations ingress-nginx refuses
/// (reported in `errors`), split into mains and canaries, with the hosts in regex mode.
pub(crate) fn served<'a>(
    objects: &'a [Object],
    options: &Options,
    errors: &mut Vec<TranslateError>,
) -> Served<'a> {
    let mut ingresses: Vec<&Ingress> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Ingress(i) if ingress_selected(i, objects, options) => Some(i),
            _ => None,
        })
        .collect();
    // Oldest first: conflicts go to the oldest Ingress, as in ingress-nginx; on equal creation
    // timestamps the greater `namespace/name` first (store.go sortIngressSlice: `in > jn`).
    ingresses.sort_by(|a, b| {
        let time = |i: &Ingress| i.metadata.creation_timestamp.clone().unwrap_or_default();
        let name = |i: &Ingress| format!("{}/{}", namespace_of(&i.metadata), i.metadata.name);
        time(a).cmp(&time(b)).then_with(|| name(b).cmp(&name(a)))
    });

    // An Ingress whose annotations ingress-nginx refuses (a value its parser's validator refuses,
    // a Critical-risk annotation) never enters its store (`store.go` `syncIngress` returns when
    // `Extract` fails): no paths, certificates, regex hosts or canaries from it.
    ingresses.retain(|i| {
        let object = i.object_ref();
        let err = |field: String, kind: ErrorKind| TranslateError {
            object: object.clone(),
            field,
            kind,
        };
        match annotations(i, &err) {
            Ok(_) => true,
            Err(e) => {
                errors.push(e);
                false
            }
        }
    });
    // ingress-nginx: a host where any Ingress uses regex paths has only regex paths.
    let mut regex_hosts = BTreeSet::new();
    for i in &ingresses {
        if nginx::parse(&i.metadata.annotations).0.wants_regex() {
            for r in &i.spec.rules {
                regex_hosts.insert(
                    r.host
                        .clone()
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| "*".into())
                        .to_ascii_lowercase(),
                );
            }
        }
    }
    let (canaries, mains): (Vec<&Ingress>, Vec<&Ingress>) = ingresses
        .iter()
        .partition(|i| nginx::parse(&i.metadata.annotations).0.canary.is_some());
    Served {
        ingresses,
        mains,
        canaries,
        regex_hosts,
    }
}

/// The Ingresses this controller serves: those of an IngressClass whose controller is one of
/// [`Options::controllers`], of a class name it claims, or (without a class) of the default
/// class — as ingress-nginx picks the Ingresses whose status it publishes.
pub fn served_ingresses(objects: &[Object], options: &Options) -> Vec<crate::model::ObjectRef> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::Ingress(i) if ingress_selected(i, objects, options) => Some(o.object_ref()),
            _ => None,
        })
        .collect()
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

/// An Ingress backend's Service port: by number or by name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PortRef<'a> {
    Number(u16),
    Name(&'a str),
}

impl<'a> PortRef<'a> {
    /// The port an Ingress backend names: exactly one of its number and (non-empty) name.
    pub(crate) fn of(port: &'a crate::model::ServiceBackendPort) -> Option<Self> {
        match (port.number, port.name.as_deref()) {
            (Some(n), None) => Some(PortRef::Number(n)),
            (None, Some(p)) if !p.is_empty() => Some(PortRef::Name(p)),
            _ => None,
        }
    }

    /// The Service port it resolves to: controller.go `serviceEndpoints`, the first port whose
    /// number, name or `targetPort` is the backend's port.
    pub(crate) fn resolve(
        self,
        service: &crate::model::Service,
    ) -> Option<&crate::model::ServicePort> {
        service.spec.ports.iter().find(|p| {
            let target = p.target_port_text();
            match self {
                PortRef::Number(n) => {
                    p.port == n || target.as_deref() == Some(n.to_string().as_str())
                }
                PortRef::Name(want) => {
                    p.name.as_deref() == Some(want) || target.as_deref() == Some(want)
                }
            }
        })
    }
}

impl fmt::Display for PortRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => write!(f, "{n}"),
        }
    }
}

/// The ingress-nginx annotations of an Ingress: ignored ones come back as warnings, the first bad
/// value is the error.
#[allow(clippy::result_large_err)] // the typed error the caller reports, built once per bad object
fn annotations(
    ingress: &Ingress,
    err: &dyn Fn(String, ErrorKind) -> TranslateError,
) -> Result<(nginx::Annotations, Vec<TranslateError>), TranslateError> {
    let (nginx, problems) = nginx::parse(&ingress.metadata.annotations);
    let mut warnings = Vec::new();
    for (field, kind) in problems {
        if matches!(kind, ErrorKind::Ignored(_) | ErrorKind::InvalidSetting(_)) {
            warnings.push(err(field, kind));
        } else {
            return Err(err(field, kind));
        }
    }
    Ok((nginx, warnings))
}

/// A route with its sort key: path length (longest first) and exact-first rank.
type Keyed = ((usize, u8), Route);

/// Accumulates virtual hosts and backends over Ingresses, oldest first.
struct Builder<'a> {
    index: &'a Index<'a>,
    /// Host pattern (`*` for host-less rules) → virtual host.
    vhosts: BTreeMap<String, VirtualHost>,
    /// Order in which hosts were first seen (output order).
    order: Vec<String>,
    backends: BTreeMap<String, Backend>,
    /// The catch-all's backend: the first rule-less Ingress's `defaultBackend`.
    default_no_rules: Option<String>,
    /// Hosts whose paths are all nginx regexes.
    regex_hosts: BTreeSet<String>,
    /// Per host, each route's sort key: path length (longest first) and exact-first rank.
    keys: BTreeMap<String, Vec<(usize, u8)>>,
    /// Hosts that need a listed order (regex paths, canaries, app-root).
    listed: BTreeSet<String>,
    /// `server-alias` names: (host, alias), in Ingress order.
    aliases: Vec<(String, String)>,
    /// Hosts with `from-to-www-redirect`.
    www: Vec<String>,
    /// Building the HTTPS port's routing: no redirect to HTTPS.
    https: bool,
    /// Hosts with a certificate entry ([`tls::certificates`]).
    tls_hosts: BTreeSet<String>,
}

// The error is the typed TranslateError the caller reports; it is built once per bad object.
#[allow(clippy::result_large_err)]
impl<'a> Builder<'a> {
    fn new(
        index: &'a Index<'a>,
        regex_hosts: BTreeSet<String>,
        https: bool,
        tls_hosts: BTreeSet<String>,
    ) -> Self {
        Builder {
            index,
            vhosts: BTreeMap::new(),
            order: Vec::new(),
            backends: BTreeMap::new(),
            default_no_rules: None,
            regex_hosts,
            keys: BTreeMap::new(),
            listed: BTreeSet::new(),
            aliases: Vec::new(),
            www: Vec::new(),
            https,
            tls_hosts,
        }
    }

    /// The host key of a rule (`*` for a rule without host), validated.
    fn rule_host(
        rule: &crate::model::IngressRule,
        ri: usize,
    ) -> Result<String, (String, ErrorKind)> {
        match rule.host.as_deref() {
            None | Some("") => Ok("*".to_owned()),
            Some(h) => {
                validate_ingress_host(h)
                    .map_err(|m| (format!("spec.rules[{ri}].host"), ErrorKind::Invalid(m)))?;
                Ok(h.to_ascii_lowercase())
            }
        }
    }

    /// The path match and sort key of an Ingress path on `host`.
    fn path_match(
        &self,
        host: &str,
        path: &str,
        path_type: &str,
        field: &str,
    ) -> Result<(PathMatch, (usize, u8)), (String, ErrorKind)> {
        if self.regex_hosts.contains(host) {
            portico_core::matching::re2::compile(&nginx::regex_path(path)).map_err(|e| {
                (
                    format!("{field}.path"),
                    ErrorKind::Invalid(format!("regex does not compile: {e}")),
                )
            })?;
            return Ok((PathMatch::Regex(nginx::regex_path(path)), (path.len(), 1)));
        }
        match path_type {
            "Exact" => Ok((PathMatch::Exact(path.to_owned()), (path.len(), 0))),
            "Prefix" | "ImplementationSpecific" => Ok((
                PathMatch::Prefix(path.to_owned()),
                (path.trim_end_matches('/').len(), 1),
            )),
            other => Err((
                format!("{field}.pathType"),
                ErrorKind::Invalid(format!(
                    "{other:?}: must be Exact, Prefix or ImplementationSpecific"
                )),
            )),
        }
    }

    fn vhost(&mut self, host: &str, default_backend: Option<String>) -> &mut VirtualHost {
        let order = &mut self.order;
        self.vhosts.entry(host.to_owned()).or_insert_with(|| {
            order.push(host.to_owned());
            VirtualHost {
                name: if host == "*" {
                    "Ingress rules without host".into()
                } else {
                    format!("host {host}")
                },
                hosts: vec![host.to_owned()],
                wildcard: WildcardMode::SingleLabel,
                order: RouteOrder::LongestPath,
                routes: Vec::new(),
                // The Ingress that first names a host gives its unmatched paths a backend.
                default_backend,
            }
        })
    }

    /// Adds one Ingress, all or nothing. Returns the warnings (missing references, ignored
    /// annotations).
    fn add_ingress(&mut self, ingress: &Ingress) -> Result<Vec<TranslateError>, TranslateError> {
        let ns = namespace_of(&ingress.metadata);
        let object = ingress.object_ref();
        let err = |field: String, kind: ErrorKind| TranslateError {
            object: object.clone(),
            field,
            kind,
        };
        let (nginx, mut warnings) = annotations(ingress, &err)?;
        let mut backends = Vec::new();
        let spec = &ingress.spec;
        if spec.rules.is_empty() && spec.default_backend.is_none() {
            return Err(err(
                "spec".into(),
                ErrorKind::Invalid("either defaultBackend or rules must be specified".into()),
            ));
        }
        let custom_default = self.custom_default_backend(ns, &nginx, &err, &mut warnings);
        let default_backend = match &spec.default_backend {
            Some(b) => {
                let key = self.backend(
                    ns,
                    b,
                    "spec.defaultBackend",
                    &err,
                    &mut warnings,
                    &mut backends,
                )?;
                // The `/` location it makes carries the Ingress's annotations, default-backend
                // included.
                match &custom_default {
                    Some((custom, b)) if no_endpoints(&backends) => {
                        backends.push((custom.clone(), b.clone()));
                        Some(custom.clone())
                    }
                    _ => Some(key),
                }
            }
            None => None,
        };
        // host → routes with their sort keys, validated before anything is merged.
        let mut per_host: Vec<(String, Vec<Keyed>)> = Vec::new();
        for (ri, rule) in spec.rules.iter().enumerate() {
            let host = Self::rule_host(rule, ri).map_err(|(f, k)| err(f, k))?;
            // lua_ingress.lua redirect_to_https: only requests that arrived over plain HTTP, and
            // (without force-ssl-redirect) only to a host with a certificate entry.
            let ssl_redirect = !self.https
                && (nginx.force_ssl_redirect
                    || (nginx.ssl_redirect != Some(false)
                        && tls::has_entry(&self.tls_hosts, &host)));
            let mut routes = Vec::new();
            if let Some(root) = &nginx.app_root {
                // ingress-nginx: a request for `/` is sent to the application root, without
                // its query (nginx.tmpl: `if ($uri = /) { return 302
                // $scheme://$http_host<app-root>; }`).
                let redirect = Redirect {
                    path: Some(PathRewrite::Full(root.clone())),
                    status: Some(302),
                    drop_query: true,
                    ..Redirect::default()
                };
                routes.push((
                    (1, 0),
                    Route::new(
                        format!("{object} metadata.annotations[app-root]"),
                        PathMatch::Exact("/".into()),
                        RouteAction::Redirect(redirect),
                    ),
                ));
            }
            for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                let path = p.path.clone().unwrap_or_else(|| "/".to_owned());
                if !self.regex_hosts.contains(&host) {
                    validate_ingress_path(&path, &p.path_type)
                        .map_err(|m| err(format!("{field}.path"), ErrorKind::Invalid(m)))?;
                }
                let (path_match, key) = self
                    .path_match(&host, &path, &p.path_type, &field)
                    .map_err(|(f, k)| err(f, k))?;
                let mut backend = self.backend(
                    ns,
                    &p.backend,
                    &format!("{field}.backend"),
                    &err,
                    &mut warnings,
                    &mut backends,
                )?;
                // controller.go: a location whose upstream has no endpoints goes to the
                // default-backend Service (`custom-default-backend-NS-NAME`), and nginx.tmpl
                // tells it why with X-Code 503 and the original Service.
                let mut custom_headers = Vec::new();
                if let Some((custom, b)) =
                    custom_default.as_ref().filter(|_| no_endpoints(&backends))
                {
                    backends.push((custom.clone(), b.clone()));
                    backend = custom.clone();
                    let service = p.backend.service.as_ref();
                    let port =
                        service.map_or(String::new(), |s| match (&s.port.number, &s.port.name) {
                            (Some(n), _) => n.to_string(),
                            (None, Some(n)) => n.clone(),
                            (None, None) => String::new(),
                        });
                    custom_headers = vec![
                        ("x-code".to_owned(), "503".to_owned()),
                        ("x-namespace".to_owned(), ns.to_owned()),
                        ("x-ingress-name".to_owned(), ingress.metadata.name.clone()),
                        (
                            "x-service-name".to_owned(),
                            service.map_or(String::new(), |s| s.name.clone()),
                        ),
                        ("x-service-port".to_owned(), port),
                    ];
                }
                // template.go buildProxyPass: no rewrite (and no X-Forwarded-Prefix) when the
                // target is the path itself.
                let rewrite_target = nginx.rewrite_target.as_ref().filter(|t| **t != path);
                let action =
                    if nginx.denied.is_some() {
                        // nginx.tmpl: a denied location is `return 503;` and nothing else.
                        RouteAction::Respond {
                            status: 503,
                            body: "503 Service Temporarily Unavailable\n".into(),
                        }
                    } else if let Some((url, code)) = &nginx.redirect {
                        // nginx.tmpl: `return CODE URL;`, the URL as written (no query added).
                        RouteAction::Redirect(Redirect {
                            url: Some(url.clone()),
                            status: Some(*code),
                            ..Redirect::default()
                        })
                    } else if ssl_redirect {
                        // lua_ingress.lua redirect_to_https: `https://host` + `$request_uri`
                        // (query included), one trailing `/` dropped unless
                        // preserve-trailing-slash.
                        RouteAction::Redirect(Redirect {
                            scheme: Some("https".into()),
                            status: Some(308),
                            strip_trailing_slash: !nginx.preserve_trailing_slash,
                            ..Redirect::default()
                        })
                    } else {
                        let path_rewrite = rewrite_target.map(|target| PathRewrite::Regex {
                            regex: nginx::rewrite_regex(&path),
                            substitution: target.clone(),
                            global: false,
                        });
                        let rewrite = (path_rewrite.is_some() || nginx.upstream_vhost.is_some())
                            .then(|| Rewrite {
                                host: nginx.upstream_vhost.clone(),
                                path: path_rewrite,
                            });
                        RouteAction::Forward {
                            backends: vec![WeightedBackend {
                                backend: Some(backend),
                                weight: 1,
                                filters: Default::default(),
                            }],
                            rewrite,
                        }
                    };
                let mut route = Route::new(format!("{object} {field}"), path_match, action);
                if matches!(route.action, RouteAction::Forward { .. }) {
                    route.request_headers.set.append(&mut custom_headers);
                    // Proxy settings: nginx's redirects (`return`) come before them.
                    // template.go buildProxyPass: only with a rewrite, and only a non-empty value.
                    if let Some(prefix) = nginx
                        .x_forwarded_prefix
                        .as_ref()
                        .filter(|p| rewrite_target.is_some() && !p.is_empty())
                    {
                        route
                            .request_headers
                            .set
                            .push(("x-forwarded-prefix".into(), prefix.clone()));
                    }
                    route.cors = nginx.cors.clone();
                    if !nginx.allow_ranges.is_empty() || !nginx.deny_ranges.is_empty() {
                        route.client_ranges = Some(ClientRanges {
                            allow: nginx.allow_ranges.clone(),
                            deny: nginx.deny_ranges.clone(),
                        });
                    }
                }
                routes.push((key, route));
            }
            per_host.push((host, routes));
        }
        for (key, mut backend) in backends {
            if let Some(k) = &nginx.upstream_hash_by {
                backend.lb = LoadBalancer::ConsistentHash { key: k.clone() };
            }
            let entry = self.backends.entry(key).or_insert(backend.clone());
            if nginx.upstream_hash_by.is_some() && entry.lb.is_round_robin() {
                entry.lb = backend.lb;
            }
        }
        for (host, _) in &per_host {
            if host == "*" {
                continue;
            }
            for alias in &nginx.server_alias {
                match validate_ingress_host(alias) {
                    Ok(()) => self.aliases.push((host.clone(), alias.clone())),
                    Err(m) => warnings.push(err(
                        "metadata.annotations[nginx.ingress.kubernetes.io/server-alias]".into(),
                        ErrorKind::InvalidSetting(m),
                    )),
                }
            }
            if nginx.from_to_www && !host.starts_with("*.") && !self.www.contains(host) {
                self.www.push(host.clone());
            }
        }
        for (host, routes) in per_host {
            if nginx.app_root.is_some() || self.regex_hosts.contains(&host) {
                self.listed.insert(host.clone());
            }
            // A host-less rule joins the catch-all server `_`, whose `/` is the catch-all's.
            let fallback = if host == "*" {
                None
            } else {
                default_backend.clone()
            };
            let vhost = self.vhost(&host, fallback);
            let mut keys = Vec::with_capacity(routes.len());
            for (key, route) in routes {
                vhost.routes.push(route);
                keys.push(key);
            }
            self.keys.entry(host).or_default().extend(keys);
        }
        // controller.go createServers: only an Ingress without rules configures the catch-all
        // server; one with rules gives its backend to the `/` location of the hosts it names
        // first, never to other hosts (ingress-nginx issue 8823).
        if let Some(b) = default_backend {
            if spec.rules.is_empty() && self.default_no_rules.is_none() {
                self.default_no_rules = Some(b);
            }
        }
        Ok(warnings)
    }

    /// The `default-backend` annotation's Service as a backend, when it can serve: the Service
    /// exists, has a port, and has ready endpoints on its first port (controller.go: "custom
    /// backend is valid only if contains at least one endpoint"). A Service that cannot be read is
    /// reported and the annotation has no effect (defaultbackend/main.go's error is logged).
    fn custom_default_backend(
        &self,
        ns: &str,
        nginx: &nginx::Annotations,
        err: &dyn Fn(String, ErrorKind) -> TranslateError,
        warnings: &mut Vec<TranslateError>,
    ) -> Option<(String, Backend)> {
        let name = nginx.default_backend.as_deref()?;
        let field = "metadata.annotations[nginx.ingress.kubernetes.io/default-backend]";
        let Some(service) = self.index.services.get(&(ns, name)).copied() else {
            warnings.push(err(
                field.into(),
                ErrorKind::MissingReference(format!(
                    "Service {ns}/{name} not found; the annotation has no effect"
                )),
            ));
            return None;
        };
        let Some(port) = service.spec.ports.first() else {
            warnings.push(err(
                field.into(),
                ErrorKind::InvalidSetting(format!(
                    "Service {ns}/{name} has no ports; the annotation has no effect"
                )),
            ));
            return None;
        };
        let endpoints = self
            .index
            .endpoints(ns, name, port.name.as_deref().unwrap_or(""));
        if endpoints.is_empty() {
            return None;
        }
        Some((
            backend_key(ns, name, port.port),
            Backend {
                cluster: cluster_name(ns, name, port.port),
                endpoints,
                lb: Default::default(),
                original_destination: false,
            },
        ))
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
        let Some(wanted) = PortRef::of(&svc.port) else {
            return Err(err(
                format!("{field}.service.port"),
                ErrorKind::Invalid("exactly one of name and number is required".into()),
            ));
        };
        let service = self.index.services.get(&(ns, name)).copied();
        let port = service.and_then(|s| wanted.resolve(s));
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
        out.push((
            key.clone(),
            Backend {
                cluster,
                endpoints,
                lb: Default::default(),
                original_destination: false,
            },
        ));
        Ok(key)
    }

    /// The Ingresses' configuration for `port` (the caller fills in the backends).
    fn finish(mut self, forward: ForwardMode, port: u16) -> RoutingConfig {
        let default_backend = self.default_no_rules.take();
        // The host-less rules' server is the catch-all: its unmatched paths go where unknown
        // hosts go; every other host keeps to its own fallback (or 404).
        if let Some(v) = self.vhosts.get_mut("*") {
            v.default_backend = default_backend.clone();
        }
        // server-alias: more names for a host, unless some Ingress names them itself (or an
        // earlier alias took them).
        let mut taken: BTreeSet<String> = self.vhosts.keys().cloned().collect();
        for (host, alias) in std::mem::take(&mut self.aliases) {
            if taken.insert(alias.clone()) {
                if let Some(v) = self.vhosts.get_mut(&host) {
                    v.hosts.push(alias);
                }
            }
        }
        // from-to-www-redirect: the other name (with or without `www.`) redirects here, unless
        // an Ingress serves it (ingress-nginx's nginx.tmpl and ngx_srv_redirect.lua: 308 to
        // `$scheme://HOST:$server_port$request_uri`, one trailing `/` dropped).
        for to in std::mem::take(&mut self.www) {
            let from = match to.strip_prefix("www.") {
                Some(bare) => bare.to_owned(),
                None => format!("www.{to}"),
            };
            if !taken.insert(from.clone()) {
                continue;
            }
            let redirect = Redirect {
                host: Some(to.clone()),
                status: Some(308),
                strip_trailing_slash: true,
                explicit_port: true,
                ..Redirect::default()
            };
            let route = Route::new(
                format!("from-to-www-redirect {from} → {to}"),
                PathMatch::Prefix("/".into()),
                RouteAction::Redirect(redirect),
            );
            self.order.push(from.clone());
            self.vhosts.insert(
                from.clone(),
                VirtualHost {
                    name: format!("host {from} (redirects to {to})"),
                    hosts: vec![from],
                    wildcard: WildcardMode::SingleLabel,
                    order: RouteOrder::LongestPath,
                    routes: vec![route],
                    default_backend: None,
                },
            );
        }
        // Listed hosts try routes longest path first (Exact before Prefix on a tie), as nginx
        // orders its locations; the sort is stable, so canary conditions stay before their route.
        for host in &self.listed {
            let (Some(vhost), Some(keys)) = (self.vhosts.get_mut(host), self.keys.get(host)) else {
                continue;
            };
            let mut paired: Vec<((usize, u8), Route)> =
                keys.iter().copied().zip(vhost.routes.drain(..)).collect();
            paired.sort_by_key(|(k, _)| (std::cmp::Reverse(k.0), k.1));
            vhost.routes = paired.into_iter().map(|(_, r)| r).collect();
            vhost.order = RouteOrder::Listed;
        }
        let virtual_hosts = self
            .order
            .iter()
            .filter_map(|h| self.vhosts.remove(h))
            .collect();
        RoutingConfig {
            virtual_hosts,
            default_backend,
            host_defaults_only: true,
            ..RoutingConfig::for_listener(port, forward)
        }
    }
}

/// Whether the backend just resolved (the last one registered) has no ready endpoint.
fn no_endpoints(backends: &[(String, Backend)]) -> bool {
    backends.last().is_some_and(|(_, b)| b.endpoints.is_empty())
}

/// The Ingress API's host rules: a DNS name, optionally with one leading `*.` label; no IPs.
fn validate_ingress_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() || !name.split('.').all(super::admission::dns1123_label) {
        return Err(format!(
            "{host:?} must be a lower-case DNS name, optionally prefixed by '*.'"
        ));
    }
    // `validateIngressRules`: `netutils.ParseIPSloppy(host)`, an IPv4 address whose parts may
    // have leading zeros (`010.1.1.1`); `1.2.3` or `123` is a name.
    let parts: Vec<&str> = host.split('.').collect();
    let sloppy_ipv4 = parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        });
    if host.parse::<std::net::IpAddr>().is_ok() || sloppy_ipv4 {
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
