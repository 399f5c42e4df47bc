//! Canary Ingresses (`nginx.ingress.kubernetes.io/canary*`): how a canary joins the routes of the
//! Ingress it shadows, as ingress-nginx's `balancer.lua` evaluates them (header, then cookie, then
//! weight).

use super::*;

#[allow(clippy::result_large_err)] // as the Builder impl in ingress.rs: the typed error the caller reports
impl<'a> Builder<'a> {
    /// Adds a canary Ingress: for each of its host and path pairs that a non-canary Ingress
    /// defines, routes by header, cookie and weight go before the main route.
    pub(super) fn add_canary(
        &mut self,
        ingress: &Ingress,
    ) -> Result<Vec<TranslateError>, TranslateError> {
        let ns = namespace_of(&ingress.metadata);
        let object = ingress.object_ref();
        let err = |field: String, kind: ErrorKind| TranslateError {
            object: object.clone(),
            field,
            kind,
        };
        let (nginx, mut warnings) = annotations(ingress, &err)?;
        let Some(canary) = nginx.canary else {
            return Ok(warnings);
        };
        let mut backends = Vec::new();
        let mut inserts: Vec<(String, PathMatch, String, usize)> = Vec::new();
        for (ri, rule) in ingress.spec.rules.iter().enumerate() {
            let host = Self::rule_host(rule, ri).map_err(|(f, k)| err(f, k))?;
            for (pi, p) in rule.http.iter().flat_map(|h| h.paths.iter()).enumerate() {
                let field = format!("spec.rules[{ri}].http.paths[{pi}]");
                let path = p.path.clone().unwrap_or_else(|| "/".to_owned());
                let (path_match, _) = self
                    .path_match(&host, &path, &p.path_type, &field)
                    .map_err(|(f, k)| err(f, k))?;
                let backend = self.backend(
                    ns,
                    &p.backend,
                    &format!("{field}.backend"),
                    &err,
                    &mut warnings,
                    &mut backends,
                )?;
                let main = self.vhosts.get(&host).and_then(|v| {
                    v.routes
                        .iter()
                        .position(|r| r.path == path_match && r.headers.is_empty())
                });
                match main {
                    Some(i) => inserts.push((host.clone(), path_match, backend, i)),
                    None => warnings.push(err(field, ErrorKind::MissingReference(format!("no non-canary Ingress serves host {host} path {path}; the canary has no effect")))),
                }
            }
        }
        for (key, backend) in backends {
            self.backends.entry(key).or_insert(backend);
        }
        for (host, path, canary_backend, i) in inserts {
            let Some(vhost) = self.vhosts.get_mut(&host) else {
                continue;
            };
            let main = vhost.routes[i].clone();
            let RouteAction::Forward {
                backends: main_backends,
                rewrite,
            } = &main.action
            else {
                continue;
            };
            let Some(main_backend) = main_backends.first().and_then(|b| b.backend.clone()) else {
                continue;
            };
            let to = |b: &str| RouteAction::Forward {
                backends: vec![WeightedBackend {
                    backend: Some(b.to_owned()),
                    weight: 1,
                    filters: Default::default(),
                }],
                rewrite: rewrite.clone(),
            };
            let conditional =
                |name: &str, header: &str, value: StringMatch, action: RouteAction| Route {
                    headers: vec![HeaderMatch {
                        name: header.to_ascii_lowercase(),
                        value,
                        invert: false,
                    }],
                    ..Route::new(format!("{object} canary {name}"), path.clone(), action)
                };
            let mut extra = Vec::new();
            if let Some(h) = &canary.header {
                if let Some(v) = &canary.header_value {
                    extra.push(conditional(
                        "by header value",
                        h,
                        StringMatch::Exact(v.clone()),
                        to(&canary_backend),
                    ));
                } else if let Some(p) = &canary.header_pattern {
                    // balancer.lua: `ngx.re.match` finds the pattern anywhere in the value; a
                    // pattern that fails to compile sends the request to the main backend.
                    extra.push(match p {
                        nginx::HeaderPattern::Regex(p) => conditional(
                            "by header pattern",
                            h,
                            StringMatch::Regex(format!(".*(?:{p}).*")),
                            to(&canary_backend),
                        ),
                        nginx::HeaderPattern::Broken => conditional(
                            "by header with a pattern that does not compile",
                            h,
                            StringMatch::Present,
                            to(&main_backend),
                        ),
                    });
                } else {
                    extra.push(conditional(
                        "by header always",
                        h,
                        StringMatch::Exact("always".into()),
                        to(&canary_backend),
                    ));
                    extra.push(conditional(
                        "by header never",
                        h,
                        StringMatch::Exact("never".into()),
                        to(&main_backend),
                    ));
                }
            }
            if let Some(c) = &canary.cookie {
                extra.push(conditional(
                    "by cookie always",
                    "cookie",
                    StringMatch::Regex(nginx::cookie_regex(c, "always")),
                    to(&canary_backend),
                ));
                extra.push(conditional(
                    "by cookie never",
                    "cookie",
                    StringMatch::Regex(nginx::cookie_regex(c, "never")),
                    to(&main_backend),
                ));
            }
            if let Some(w) = canary.weight {
                vhost.routes[i].action = RouteAction::Forward {
                    backends: vec![
                        WeightedBackend {
                            backend: Some(main_backend.clone()),
                            weight: canary.weight_total - w,
                            filters: Default::default(),
                        },
                        WeightedBackend {
                            backend: Some(canary_backend.clone()),
                            weight: w,
                            filters: Default::default(),
                        },
                    ],
                    rewrite: rewrite.clone(),
                };
            }
            let keys = self.keys.entry(host.clone()).or_default();
            let key = keys.get(i).copied().unwrap_or((0, 1));
            let n = extra.len();
            vhost.routes.splice(i..i, extra);
            keys.splice(i..i, std::iter::repeat_n(key, n));
            self.listed.insert(host);
        }
        Ok(warnings)
    }
}
