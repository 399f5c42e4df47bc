//! The HTTPRoutes of [`super::convert`]: each Ingress rule host's paths, canaries, default
//! backends, aliases and `www` redirects, as two routes (port 80 and port 443).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{annotation, ingress_name, reference_grant, ConvertOptions, Difference, GROUP};
use crate::model::{Ingress, IngressBackend, ObjectRef, Resource};
use crate::translate::common::Index;
use crate::translate::ingress::tls::{has_entry, NginxTls};
use crate::translate::ingress::PortRef;
use crate::translate::nginx::{self, HeaderPattern};

/// ingress-nginx's HSTS header on HTTPS answers (`hsts: true`, its defaults).
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The `Passthrough` TLS listener of an `ssl-passthrough` host.
pub(crate) fn passthrough_listener(host: &str) -> String {
    format!("tls-passthrough-{}", host.replace('*', "wildcard"))
}

/// The listener of a host whose certificate a Secret gives.
pub(crate) fn https_listener(host: &str) -> String {
    format!("https-{}", host.replace('*', "wildcard"))
}

/// What a rule does.
#[derive(Debug, Clone)]
enum Action {
    /// Forward to weighted backendRefs, with filters.
    Forward {
        backends: Vec<Value>,
        filters: Vec<Value>,
    },
    /// A `RequestRedirect` filter's settings.
    Redirect(Value),
}

/// One HTTPRoute rule: one match.
#[derive(Debug, Clone)]
struct Rule {
    /// The path match.
    path: Value,
    /// Header matches (canaries).
    headers: Vec<Value>,
    action: Action,
    /// On port 80, redirect to HTTPS instead of forwarding.
    to_https: bool,
    /// Which path of which Ingress (for canaries): the claim key.
    key: (String, String),
    /// The path as the Ingress wrote it.
    literal: String,
}

impl Action {
    /// Forward to one backendRef.
    fn to(backend: Value) -> Action {
        Action::Forward {
            backends: vec![backend],
            filters: Vec::new(),
        }
    }
}

impl Rule {
    /// `PathPrefix /` doing `action` (a default backend, a whole-host redirect).
    fn root(action: Action) -> Rule {
        Rule {
            path: json!({"type": "PathPrefix", "value": "/"}),
            headers: Vec::new(),
            action,
            to_https: false,
            key: ("PathPrefix".into(), String::new()),
            literal: "/".into(),
        }
    }
}

/// The routes of one Ingress for one rule host (`*`: the rules without host).
#[derive(Debug, Clone)]
struct HostRoutes {
    ingress: ObjectRef,
    namespace: String,
    name: String,
    host: String,
    hostnames: Vec<String>,
    rules: Vec<Rule>,
}

/// Builds the routes over the Ingresses, oldest first, then the canaries.
pub(crate) struct Converter<'a> {
    options: &'a ConvertOptions,
    index: &'a Index<'a>,
    regex_hosts: BTreeSet<String>,
    tls: &'a NginxTls,
    routes: Vec<HostRoutes>,
    /// (host, path key) already defined: the oldest Ingress keeps it.
    claimed: BTreeSet<(String, (String, String))>,
    /// Host → the default backend of the Ingress that first named it (`None`: 404).
    fallbacks: BTreeMap<String, Option<(usize, Value)>>,
    /// The oldest rule-less Ingress's default backend: unknown hosts'.
    catch_all: Option<(ObjectRef, String, Value)>,
    /// `server-alias`: (host, alias), in Ingress order.
    aliases: Vec<(String, String)>,
    /// `from-to-www-redirect` hosts, with their Ingress.
    www: Vec<(String, ObjectRef, String)>,
    /// Cross-namespace canary backends: (Service namespace, route namespace) → Services.
    grants: BTreeMap<(String, String), BTreeSet<String>>,
    /// `ssl-passthrough` hosts → the Ingress, its namespace and the `/` path's backendRef.
    passthrough: BTreeMap<String, (ObjectRef, String, Value)>,
    differences: Vec<Difference>,
}

impl<'a> Converter<'a> {
    pub(crate) fn new(
        options: &'a ConvertOptions,
        index: &'a Index<'a>,
        regex_hosts: BTreeSet<String>,
        tls: &'a NginxTls,
    ) -> Self {
        Converter {
            options,
            index,
            regex_hosts,
            tls,
            routes: Vec::new(),
            claimed: BTreeSet::new(),
            fallbacks: BTreeMap::new(),
            catch_all: None,
            aliases: Vec::new(),
            www: Vec::new(),
            grants: BTreeMap::new(),
            passthrough: BTreeMap::new(),
            differences: Vec::new(),
        }
    }

    fn differ(&mut self, ingress: &Ingress, field: String, hosts: &[String], why: &str) {
        self.differences.push(Difference {
            object: ingress.object_ref(),
            field,
            hosts: hosts.to_vec(),
            except: Vec::new(),
            https_only: false,
            http_only: false,
            why: why.to_owned(),
        });
    }

    /// The Ingress's rule hosts (`*` for a rule without host, or for an Ingress without rules).
    fn hosts(ingress: &Ingress) -> Vec<String> {
        let mut hosts: Vec<String> = ingress
            .spec
            .rules
            .iter()
            .map(|r| rule_host(r.host.as_deref()))
            .collect();
        if hosts.is_empty() {
            hosts.push("*".into());
        }
        hosts.dedup();
        hosts
    }

    /// Names every annotation of `ingress` whose behaviour the Gateway API cannot express.
    fn annotation_differences(
        &mut self,
        ingress: &Ingress,
        nginx: &nginx::Annotations,
        problems: Vec<(String, crate::translate::ErrorKind)>,
    ) {
        let hosts = Self::hosts(ingress);
        for (field, kind) in problems {
            if matches!(kind, crate::translate::ErrorKind::Ignored(_)) {
                self.differ(
                    ingress,
                    field,
                    &hosts,
                    "not read by Portico, so not converted either",
                );
            }
        }
        if !nginx.allow_ranges.is_empty() || !nginx.deny_ranges.is_empty() {
            self.differ(ingress, annotation("allowlist-source-range"), &hosts,
                "client address ranges have no Gateway API equivalent: NOT enforced by the converted routes (restrict access by other means)");
        }
        if let Some(why) = &nginx.denied {
            self.differ(ingress, annotation("allowlist-source-range"), &hosts, &format!(
                "ingress-nginx answers 503 on every path of the Ingress ({why}); the converted routes leave them out (404)"));
        }
        if nginx.upstream_hash_by.is_some() {
            self.differ(ingress, annotation("upstream-hash-by"), &hosts,
                "consistent hashing over an nginx variable has no Gateway API equivalent: requests are balanced without it");
        }
        if nginx.auth_tls.is_some() {
            self.differ(ingress, annotation("auth-tls-secret"), &hosts,
                "client certificate authentication (auth-tls-*) is not converted: the Gateway asks for no client certificate");
        }
        if nginx.default_backend.is_some() {
            self.differ(ingress, annotation("default-backend"), &hosts,
                "a Service without ready endpoints answers 503; ingress-nginx sends the request to the default-backend Service instead");
        }
        if nginx.cors.is_some() {
            self.differ(ingress, annotation("enable-cors"), &hosts,
                "converted to the CORS filter, which answers preflights as the Gateway API says; ingress-nginx answers any OPTIONS from an allowed origin with 204, sends every allow header on each answer, and allows any origin when none is set");
        }
        if nginx
            .rewrite_target
            .as_deref()
            .is_some_and(|t| t.contains('$'))
        {
            self.differ(ingress, annotation("rewrite-target"), &hosts,
                "a rewrite with regex captures ($n) has no Gateway API equivalent: the path is forwarded unchanged");
        }
        if nginx.redirect.is_some() {
            self.differ(ingress, annotation("permanent-redirect"), &hosts,
                "the redirect keeps the request's query (and a Location without a path gets `/`); ingress-nginx's `return` sends the URL exactly as written");
        }
        if nginx.app_root.is_some() {
            self.differ(
                ingress,
                annotation("app-root"),
                &hosts,
                "the redirect from `/` keeps the request's query; ingress-nginx's drops it",
            );
        }
        if nginx.from_to_www {
            self.differ(ingress, annotation("from-to-www-redirect"), &hosts
                .iter()
                .map(|h| h.strip_prefix("www.").map_or_else(|| format!("www.{h}"), str::to_owned))
                .collect::<Vec<_>>(),
                "the redirect's Location has no port and keeps a trailing `/`; ingress-nginx writes the port and drops one trailing `/`");
        }
    }

    /// Adds a non-canary Ingress (oldest first).
    pub(crate) fn add_ingress(&mut self, ingress: &Ingress) {
        let (nginx, problems) = nginx::parse(&ingress.metadata.annotations);
        self.annotation_differences(ingress, &nginx, problems);
        let (ns, name) = ingress_name(ingress);
        let object = ingress.object_ref();
        let default_backend = ingress
            .spec
            .default_backend
            .as_ref()
            .map(|b| self.backend_ref(ingress, &ns, b, "spec.defaultBackend"));
        if ingress.spec.rules.is_empty() {
            if let (None, Some(b)) = (&self.catch_all, default_backend) {
                self.catch_all = Some((object.clone(), name.clone(), b));
            }
            return;
        }
        if nginx.ssl_passthrough {
            self.add_passthrough(ingress, &ns);
        }
        for (ri, rule) in ingress.spec.rules.iter().enumerate() {
            let host = rule_host(rule.host.as_deref());
            if host.starts_with("*.") {
                self.differ(ingress, format!("spec.rules[{ri}].host"), std::slice::from_ref(&host),
                    "an Ingress wildcard host covers one DNS label; an HTTPRoute's covers one or more");
            }
            let to_https = nginx.force_ssl_redirect
                || (nginx.ssl_redirect != Some(false) && has_entry(&self.tls.redirects, &host));
            if to_https && !nginx.preserve_trailing_slash {
                self.differ(ingress, annotation("ssl-redirect"), std::slice::from_ref(&host),
                    "the redirect to HTTPS keeps a trailing `/`; ingress-nginx drops one (unless preserve-trailing-slash)");
                if let Some(d) = self.differences.last_mut() {
                    d.http_only = true;
                }
            }
            let index = self.routes.len();
            if host != "*" && !self.fallbacks.contains_key(&host) {
                self.fallbacks
                    .insert(host.clone(), default_backend.clone().map(|b| (index, b)));
            }
            let mut rules = Vec::new();
            if let Some(root) = &nginx.app_root {
                let key = ("Exact".to_owned(), "/".to_owned());
                if self.claimed.insert((host.clone(), key.clone())) {
                    rules.push(Rule {
                        path: json!({"type": "Exact", "value": "/"}),
                        headers: Vec::new(),
                        action: Action::Redirect(json!({
                            "path": {"type": "ReplaceFullPath", "replaceFullPath": root},
                            "statusCode": 302,
                        })),
                        to_https: false,
                        key,
                        literal: "/".into(),
                    });
                }
            }
            for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                let path = p.path.clone().unwrap_or_else(|| "/".to_owned());
                let (path_match, key) = self.path_match(&host, &path, &p.path_type);
                // ingress-nginx keeps the oldest Ingress's location for a host and path; of two
                // Prefix paths that differ by a trailing `/` (they match the same requests) the
                // longer one, whichever came first.
                if !self.claimed.insert((host.clone(), key.clone())) {
                    let longer = key.0 == "PathPrefix"
                        && path.ends_with('/')
                        && self.remove_shorter(&host, &key, &path, &mut rules);
                    if !longer {
                        continue;
                    }
                }
                if nginx.denied.is_some() {
                    continue;
                }
                let backend =
                    self.backend_ref(ingress, &ns, &p.backend, &format!("{field}.backend"));
                let action = if let Some((url, code)) = &nginx.redirect {
                    Action::Redirect(self.redirect(ingress, &host, url, *code))
                } else {
                    let rewrite_target = nginx.rewrite_target.as_ref().filter(|t| **t != path);
                    let mut filters = Vec::new();
                    let mut rewrite = serde_json::Map::new();
                    if let Some(h) = &nginx.upstream_vhost {
                        rewrite.insert("hostname".into(), json!(h));
                    }
                    if let Some(t) = rewrite_target.filter(|t| !t.contains('$')) {
                        rewrite.insert(
                            "path".into(),
                            json!({"type": "ReplaceFullPath", "replaceFullPath": t}),
                        );
                    }
                    if !rewrite.is_empty() {
                        filters.push(json!({"type": "URLRewrite", "urlRewrite": rewrite}));
                    }
                    if let Some(prefix) = nginx
                        .x_forwarded_prefix
                        .as_ref()
                        .filter(|p| rewrite_target.is_some() && !p.is_empty())
                    {
                        filters.push(json!({"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "X-Forwarded-Prefix", "value": prefix}]}}));
                    }
                    if let Some(cors) = &nginx.cors {
                        filters.push(cors_filter(cors, ingress));
                    }
                    Action::Forward {
                        backends: vec![backend],
                        filters,
                    }
                };
                rules.push(Rule {
                    path: path_match,
                    headers: Vec::new(),
                    action,
                    to_https: to_https && nginx.redirect.is_none(),
                    key,
                    literal: path,
                });
            }
            for alias in &nginx.server_alias {
                if host != "*" {
                    self.aliases
                        .push((host.clone(), alias.to_ascii_lowercase()));
                }
            }
            if nginx.from_to_www && host != "*" && !host.starts_with("*.") {
                self.www.push((host.clone(), object.clone(), ns.clone()));
            }
            self.routes.push(HostRoutes {
                ingress: object.clone(),
                namespace: ns.clone(),
                name: name.clone(),
                host: host.clone(),
                hostnames: if host == "*" { Vec::new() } else { vec![host] },
                rules,
            });
        }
    }

    /// Adds a canary Ingress: for each of its host and path pairs a non-canary Ingress defines,
    /// header and cookie rules before the main rule, and its weight as backend weights.
    pub(crate) fn add_canary(&mut self, ingress: &Ingress) {
        let (nginx, problems) = nginx::parse(&ingress.metadata.annotations);
        self.annotation_differences(ingress, &nginx, problems);
        let Some(canary) = nginx.canary.clone() else {
            return;
        };
        let (ns, _) = ingress_name(ingress);
        for (ri, rule) in ingress.spec.rules.iter().enumerate() {
            let host = rule_host(rule.host.as_deref());
            for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                let path = p.path.clone().unwrap_or_else(|| "/".to_owned());
                let (_, key) = self.path_match(&host, &path, &p.path_type);
                // The main rule: the oldest non-canary route of the host with this path.
                let found = self.routes.iter().enumerate().find_map(|(r, hr)| {
                    (hr.host == host).then(|| {
                        hr.rules
                            .iter()
                            .position(|x| x.key == key && x.headers.is_empty())
                            .map(|i| (r, i))
                    })?
                });
                let Some((r, i)) = found else {
                    continue;
                };
                let route_ns = self.routes[r].namespace.clone();
                let field = format!("spec.rules[{ri}].http.paths[{pi}].backend");
                let mut canary_ref = self.backend_ref(ingress, &ns, &p.backend, &field);
                if ns != route_ns {
                    canary_ref["namespace"] = json!(ns);
                    if let Some(name) = canary_ref["name"].as_str() {
                        self.grants
                            .entry((ns.clone(), route_ns.clone()))
                            .or_default()
                            .insert(name.to_owned());
                    }
                }
                let main = self.routes[r].rules[i].clone();
                let Action::Forward { backends, filters } = &main.action else {
                    continue;
                };
                let Some(main_ref) = backends.first().cloned() else {
                    continue;
                };
                let to = |b: &Value| Action::Forward {
                    backends: vec![b.clone()],
                    filters: filters.clone(),
                };
                let conditional = |name: &str, value: Value, action: Action| Rule {
                    headers: vec![{
                        let mut m = value;
                        m["name"] = json!(name);
                        m
                    }],
                    action,
                    ..main.clone()
                };
                let exact = |v: &str| json!({"type": "Exact", "value": v});
                let regex = |v: String| json!({"type": "RegularExpression", "value": v});
                let mut extra = Vec::new();
                if let Some(h) = &canary.header {
                    if let Some(v) = &canary.header_value {
                        extra.push(conditional(h, exact(v), to(&canary_ref)));
                    } else if let Some(pattern) = &canary.header_pattern {
                        match pattern {
                            HeaderPattern::Regex(p) => extra.push(conditional(
                                h,
                                regex(format!(".*(?:{p}).*")),
                                to(&canary_ref),
                            )),
                            HeaderPattern::Broken => {
                                extra.push(conditional(h, regex(".*".into()), to(&main_ref)))
                            }
                        }
                    } else {
                        extra.push(conditional(h, exact("always"), to(&canary_ref)));
                        extra.push(conditional(h, exact("never"), to(&main_ref)));
                    }
                }
                if let Some(c) = &canary.cookie {
                    extra.push(conditional(
                        "Cookie",
                        regex(nginx::cookie_regex(c, "always")),
                        to(&canary_ref),
                    ));
                    extra.push(conditional(
                        "Cookie",
                        regex(nginx::cookie_regex(c, "never")),
                        to(&main_ref),
                    ));
                }
                if let Some(w) = canary.weight {
                    let weighted = |mut b: Value, weight: u32| {
                        b["weight"] = json!(weight);
                        b
                    };
                    self.routes[r].rules[i].action = Action::Forward {
                        backends: vec![
                            weighted(main_ref.clone(), canary.weight_total - w),
                            weighted(canary_ref.clone(), w),
                        ],
                        filters: filters.clone(),
                    };
                }
                self.routes[r].rules.splice(i..i, extra);
            }
        }
    }

    /// An Ingress path on `host` as an HTTPRoute path match, and its claim key: the match type
    /// and the path (a Prefix path without its trailing `/`, which matches the same requests).
    fn path_match(&self, host: &str, path: &str, path_type: &str) -> (Value, (String, String)) {
        if self.regex_hosts.contains(host) {
            (
                json!({"type": "RegularExpression", "value": nginx::regex_path(path)}),
                ("RegularExpression".to_owned(), path.to_owned()),
            )
        } else if path_type == "Exact" {
            (
                json!({"type": "Exact", "value": path}),
                ("Exact".to_owned(), path.to_owned()),
            )
        } else {
            (
                json!({"type": "PathPrefix", "value": path}),
                (
                    "PathPrefix".to_owned(),
                    path.trim_end_matches('/').to_owned(),
                ),
            )
        }
    }

    /// `ssl-passthrough`: each rule host's TLS goes untouched to the Service of its `/` path
    /// (ingress-nginx's `pkg/tcpproxy`, as `translate` reads it). Its proxy matches the SNI
    /// exactly, so a wildcard host passes nothing through; neither does the converted Gateway.
    fn add_passthrough(&mut self, ingress: &Ingress, ns: &str) {
        for rule in &ingress.spec.rules {
            let host = rule_host(rule.host.as_deref());
            if host == "*" || host.starts_with("*.") || self.passthrough.contains_key(&host) {
                continue;
            }
            // Without a `/` path to a Service port ingress-nginx passes nothing through (translate
            // reports it); the converted objects neither.
            if let Some((name, port)) =
                crate::translate::ingress::tls::passthrough_backend(rule, ns, self.index)
            {
                self.passthrough.insert(
                    host,
                    (
                        ingress.object_ref(),
                        ns.to_owned(),
                        json!({"name": name, "port": port}),
                    ),
                );
            }
        }
    }

    /// Removes the rule of `host` with `key` whose path is `path` without its trailing `/` (from
    /// the rules being built, or an older Ingress's route); whether there was one.
    fn remove_shorter(
        &mut self,
        host: &str,
        key: &(String, String),
        path: &str,
        building: &mut Vec<Rule>,
    ) -> bool {
        let shorter = |r: &Rule| {
            r.key == *key
                && r.headers.is_empty()
                && !r.literal.ends_with('/')
                && path.starts_with(r.literal.as_str())
        };
        if let Some(i) = building.iter().position(shorter) {
            building.remove(i);
            return true;
        }
        for hr in self.routes.iter_mut().filter(|hr| hr.host == host) {
            if let Some(i) = hr.rules.iter().position(shorter) {
                hr.rules.remove(i);
                return true;
            }
        }
        false
    }

    /// A backendRef for an Ingress backend: the Service port its number, name or targetPort
    /// names (controller.go `serviceEndpoints`).
    fn backend_ref(
        &mut self,
        ingress: &Ingress,
        ns: &str,
        backend: &IngressBackend,
        field: &str,
    ) -> Value {
        let Some(svc) = &backend.service else {
            return json!({"name": ""});
        };
        let service = self.index.services.get(&(ns, svc.name.as_str())).copied();
        let port = service
            .zip(PortRef::of(&svc.port))
            .and_then(|(s, wanted)| wanted.resolve(s));
        match port {
            Some(p) => json!({"name": svc.name, "port": p.port}),
            None => {
                let hosts = Self::hosts(ingress);
                self.differ(ingress, format!("{field}.service"), &hosts, &format!(
                    "Service {ns}/{} or its port does not exist: ingress-nginx answers 503, a Gateway 500", svc.name));
                match svc.port.number {
                    Some(n) => json!({"name": svc.name, "port": n}),
                    None => json!({"name": svc.name}),
                }
            }
        }
    }

    /// `permanent-redirect` / `temporal-redirect`: the URL's parts as a `RequestRedirect`.
    fn redirect(&mut self, ingress: &Ingress, host: &str, url: &str, code: u16) -> Value {
        let mut r = serde_json::Map::new();
        let status = if matches!(code, 301 | 302 | 303 | 307 | 308) {
            code
        } else {
            self.differ(ingress, annotation("permanent-redirect-code"), &[host.to_owned()], &format!(
                "status {code} is not one a RequestRedirect can send (301, 302, 303, 307, 308): 302 is sent"));
            302
        };
        r.insert("statusCode".into(), json!(status));
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) if s == "http" || s == "https" => (Some(s), rest),
            _ => (None, url),
        };
        let Some(scheme) = scheme else {
            self.differ(ingress, annotation("permanent-redirect"), &[host.to_owned()],
                "the redirect URL has no http or https scheme: the converted redirect keeps the request's URL");
            return json!(r);
        };
        r.insert("scheme".into(), json!(scheme));
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (hostname, port) = match authority.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
            _ => (authority, None),
        };
        r.insert("hostname".into(), json!(hostname));
        if let Some(p) = port {
            r.insert("port".into(), json!(p));
        }
        let path = tail.split(['?', '#']).next().unwrap_or("");
        r.insert(
            "path".into(),
            json!({"type": "ReplaceFullPath", "replaceFullPath": if path.is_empty() { "/" } else { path }}),
        );
        json!(r)
    }

    /// The `ssl-passthrough` hosts.
    pub(crate) fn passthrough_hosts(&self) -> Vec<String> {
        self.passthrough.keys().cloned().collect()
    }

    /// The routes, ReferenceGrants and differences.
    pub(crate) fn finish(mut self) -> (Vec<Value>, Vec<Value>, Vec<Difference>) {
        // Each host's unmatched paths: the default backend of the Ingress that first named it,
        // unless an Ingress defines `/` there.
        let fallbacks = std::mem::take(&mut self.fallbacks);
        for (host, fallback) in fallbacks {
            let Some((index, backend)) = fallback else {
                continue;
            };
            let rule = Rule::root(Action::to(backend));
            if !self.claimed.contains(&(host, rule.key.clone())) {
                self.routes[index].rules.push(rule);
            }
        }
        // Unknown hosts (and the host-less rules' unmatched paths): the oldest rule-less
        // Ingress's default backend.
        if let Some((object, name, backend)) = self.catch_all.take() {
            let rule = Rule::root(Action::to(backend));
            if !self.claimed.contains(&("*".to_owned(), rule.key.clone())) {
                self.routes.push(HostRoutes {
                    namespace: object.namespace.clone(),
                    ingress: object,
                    name,
                    host: "*".into(),
                    hostnames: Vec::new(),
                    rules: vec![rule],
                });
            }
        }
        // server-alias: more names for a host, unless an Ingress names them (or an earlier alias
        // took them).
        let mut taken: BTreeSet<String> = self.routes.iter().map(|r| r.host.clone()).collect();
        for (host, alias) in std::mem::take(&mut self.aliases) {
            if taken.insert(alias.clone()) {
                for r in self.routes.iter_mut().filter(|r| r.host == host) {
                    r.hostnames.push(alias.clone());
                }
            }
        }
        // from-to-www-redirect: the other name redirects (308) to the host.
        for (to, object, ns) in std::mem::take(&mut self.www) {
            let from = match to.strip_prefix("www.") {
                Some(bare) => bare.to_owned(),
                None => format!("www.{to}"),
            };
            if !taken.insert(from.clone()) {
                continue;
            }
            self.routes.push(HostRoutes {
                name: format!("{}-www-redirect", object.name),
                ingress: object,
                namespace: ns,
                host: from.clone(),
                hostnames: vec![from],
                rules: vec![Rule::root(Action::Redirect(
                    json!({"hostname": to, "statusCode": 308}),
                ))],
            });
        }
        let mut out = Vec::new();
        for hr in &self.routes {
            if hr.rules.is_empty() {
                continue;
            }
            out.push(self.http_route(hr, false));
            if let Some(r) = Some(self.http_route(hr, true)).filter(|r| {
                r["spec"]["parentRefs"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            }) {
                out.push(r);
            }
        }
        for (host, (object, ns, backend)) in &self.passthrough {
            let mut parent = json!({"group": GROUP, "kind": "Gateway", "name": self.options.gateway, "sectionName": passthrough_listener(host)});
            if *ns != self.options.namespace {
                parent["namespace"] = json!(self.options.namespace);
            }
            out.push(json!({
                "apiVersion": format!("{GROUP}/v1alpha2"),
                "kind": "TLSRoute",
                "metadata": {
                    "name": format!("{}-{}-passthrough", object.name, host.replace('*', "wildcard")),
                    "namespace": ns,
                    "annotations": {"portico.dev/converted-from": object.to_string()},
                },
                "spec": {"parentRefs": [parent], "hostnames": [host], "rules": [{"backendRefs": [backend]}]},
            }));
        }
        let grants = self
            .grants
            .iter()
            .map(|((svc_ns, route_ns), names)| {
                reference_grant(
                    svc_ns,
                    &format!("{}-canaries-from-{route_ns}", self.options.gateway),
                    "HTTPRoute",
                    route_ns,
                    "Service",
                    names,
                )
            })
            .collect();
        (out, grants, self.differences)
    }

    /// One HTTPRoute of `hr`: port 80's (`https` false) or port 443's.
    fn http_route(&self, hr: &HostRoutes, https: bool) -> Value {
        let gateway = |section: &str| {
            let mut p = json!({"group": GROUP, "kind": "Gateway", "name": self.options.gateway, "sectionName": section});
            if hr.namespace != self.options.namespace {
                p["namespace"] = json!(self.options.namespace);
            }
            p
        };
        let parents: Vec<Value> = if https {
            let mut sections: Vec<String> = self
                .tls
                .secrets
                .iter()
                .filter(|(_, s)| s.is_some())
                .map(|(h, _)| h.clone())
                .filter(|listener| covers(listener, &hr.host))
                .map(|h| https_listener(&h))
                .collect();
            if self.tls.default_secret.is_some() {
                sections.push("https".into());
            }
            sections.iter().map(|s| gateway(s)).collect()
        } else {
            vec![gateway("http")]
        };
        let rules: Vec<Value> = hr
            .rules
            .iter()
            .map(|rule| {
                let mut m = json!({"path": rule.path});
                if !rule.headers.is_empty() {
                    m["headers"] = json!(rule.headers);
                }
                let mut out = json!({"matches": [m]});
                match (&rule.action, !https && rule.to_https) {
                    (_, true) => {
                        out["filters"] = json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 308}}]);
                    }
                    (Action::Redirect(r), false) => {
                        out["filters"] =
                            json!([{"type": "RequestRedirect", "requestRedirect": r}]);
                    }
                    (Action::Forward { backends, filters }, false) => {
                        let mut filters = filters.clone();
                        if https {
                            filters.push(json!({"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [{"name": "Strict-Transport-Security", "value": HSTS}]}}));
                        }
                        if !filters.is_empty() {
                            out["filters"] = json!(filters);
                        }
                        out["backendRefs"] = json!(backends);
                    }
                }
                out
            })
            .collect();
        let slug = if hr.host == "*" {
            "all-hosts".to_owned()
        } else {
            hr.host.replace('*', "wildcard")
        };
        let mut spec = json!({"parentRefs": parents, "rules": rules});
        if !hr.hostnames.is_empty() {
            spec["hostnames"] = json!(hr.hostnames);
        }
        json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "HTTPRoute",
            "metadata": {
                "name": format!("{}-{slug}-{}", hr.name, if https { "https" } else { "http" }),
                "namespace": hr.namespace,
                "annotations": {"portico.dev/converted-from": hr.ingress.to_string()},
            },
            "spec": spec,
        })
    }
}

/// A rule's host key: lower case, `*` for none.
fn rule_host(host: Option<&str>) -> String {
    match host {
        None | Some("") => "*".into(),
        Some(h) => h.to_ascii_lowercase(),
    }
}

/// Whether a listener hostname serves requests for `host` (a wildcard covers one or more labels).
fn covers(listener: &str, host: &str) -> bool {
    listener == host
        || listener
            .strip_prefix("*.")
            .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
}

/// ingress-nginx's CORS settings as the Gateway API's `CORS` filter: the origins of
/// `cors-allow-origin` the parser kept (none: any).
fn cors_filter(cors: &portico_core::config::Cors, ingress: &Ingress) -> Value {
    use portico_core::config::StringMatch;
    let written = ingress
        .metadata
        .annotations
        .get("nginx.ingress.kubernetes.io/cors-allow-origin")
        .map(String::as_str)
        .unwrap_or("");
    let origins: Vec<String> = written
        .split(',')
        .map(str::trim)
        .filter(|o| {
            cors.allow_origins
                .contains(&StringMatch::Regex(nginx::origin_regex(o)))
        })
        .map(str::to_owned)
        .collect();
    let split = |list: &[String]| -> Vec<String> {
        list.iter()
            .flat_map(|l| l.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut c = json!({
        "allowOrigins": if origins.is_empty() { vec!["*".to_owned()] } else { origins },
        "allowMethods": split(&cors.allow_methods),
        "allowHeaders": split(&cors.allow_headers),
    });
    if !cors.expose_headers.is_empty() {
        c["exposeHeaders"] = json!(split(&cors.expose_headers));
    }
    if cors.allow_credentials {
        c["allowCredentials"] = json!(true);
    }
    if let Some(age) = cors.max_age.filter(|a| *a > 0) {
        c["maxAge"] = json!(age);
    }
    json!({"type": "CORS", "cors": c})
}
