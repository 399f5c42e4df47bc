//! Compiling a [`RoutingConfig`] into a [`Router`]: backends resolved, paths and regexes
//! compiled, virtual hosts indexed. Every refusal names the field at fault.

use super::*;
use crate::matching::re2;

/// A percentage as the weights `[share, rest]` out of 10 000, for the weighted round robin that
/// samples faults and mirrors deterministically.
fn shares(percent: f64) -> [u32; 2] {
    let share = (percent.clamp(0.0, 100.0) * 100.0).round() as u32;
    [share, 10_000 - share]
}

impl TryFrom<RoutingConfig> for Router {
    type Error = ConfigError;

    fn try_from(config: RoutingConfig) -> Result<Self, Self::Error> {
        if config.api_version != ROUTING_API_VERSION {
            return Err(ConfigError::ApiVersion {
                got: config.api_version,
                want: ROUTING_API_VERSION,
            });
        }
        if let Some(t) = &config.tls {
            t.validate().map_err(|e| match e {
                ConfigError::Invalid { field, message } => ConfigError::Invalid {
                    field: format!("tls.{field}"),
                    message,
                },
                other => other,
            })?;
        }
        let mut needs_source = false;
        let mut backend_ids = HashMap::new();
        let mut backends = Vec::with_capacity(config.backends.len());
        for (key, backend) in config.backends {
            for (i, ep) in backend.endpoints.iter().enumerate() {
                if ep.parse::<std::net::SocketAddr>().is_err() {
                    return Err(ConfigError::Invalid {
                        field: format!("backends[{key:?}].endpoints[{i}]"),
                        message: format!("{ep:?} is not an ip:port"),
                    });
                }
            }
            backend_ids.insert(key.clone(), backends.len());
            backends.push(CompiledBackend {
                key,
                cluster: backend.cluster,
                endpoints: backend.endpoints,
                lb: backend.lb,
                original_destination: backend.original_destination,
            });
        }
        let resolve = |field: String, key: &str| -> Result<BackendId, ConfigError> {
            backend_ids
                .get(key)
                .copied()
                .ok_or_else(|| ConfigError::Invalid {
                    field,
                    message: format!("backend {key:?} is not in backends"),
                })
        };
        let default_backend = match &config.default_backend {
            Some(key) => Some(resolve("defaultBackend".into(), key)?),
            None => None,
        };
        let mut hosts = HostTable::default();
        let mut vhosts = Vec::with_capacity(config.virtual_hosts.len());
        for (vi, vhost) in config.virtual_hosts.into_iter().enumerate() {
            let at = |rest: &str| format!("virtualHosts[{vi}]{rest}");
            let idx = vhosts.len();
            for (hi, host) in vhost.hosts.iter().enumerate() {
                validate_host_pattern(host).map_err(|message| ConfigError::Invalid {
                    field: at(&format!(".hosts[{hi}]")),
                    message,
                })?;
                // A host claimed by an earlier virtual host stays with it.
                hosts.insert(host, vhost.wildcard, idx);
            }
            let mut paths = PathTable::default();
            let mut routes = Vec::with_capacity(vhost.routes.len());
            for (ri, route) in vhost.routes.into_iter().enumerate() {
                let field = |rest: &str| at(&format!(".routes[{ri}]{rest}"));
                let path = match &route.path {
                    PathMatch::Exact(p) => CompiledPath::Exact(p.clone()),
                    PathMatch::Prefix(p) => CompiledPath::Prefix(prefix_key(p).to_owned()),
                    PathMatch::Regex(r) => CompiledPath::Regex(compile_regex(field(".path"), r)?),
                };
                if let PathMatch::Exact(p) | PathMatch::Prefix(p) = &route.path {
                    if !p.starts_with('/') {
                        return Err(ConfigError::Invalid {
                            field: field(".path"),
                            message: format!("path {p:?} must start with '/'"),
                        });
                    }
                }
                let action = match route.action {
                    RouteAction::Forward {
                        backends: bs,
                        rewrite,
                    } => {
                        let mut out = Vec::with_capacity(bs.len());
                        let mut filters = Vec::with_capacity(bs.len());
                        for (bi, b) in bs.into_iter().enumerate() {
                            let at = |rest: &str| field(&format!(".action.backends[{bi}]{rest}"));
                            let id = match &b.backend {
                                Some(key) => Some(resolve(at(".backend"), key)?),
                                None => None,
                            };
                            out.push((id, b.weight));
                            if b.filters.is_empty() {
                                filters.push(None);
                                continue;
                            }
                            let f = b.filters;
                            let regex_path = |p: &Option<PathRewrite>| {
                                matches!(p, Some(PathRewrite::Regex { .. }))
                            };
                            if f.rewrite.as_ref().is_some_and(|r| regex_path(&r.path))
                                || f.redirect.as_ref().is_some_and(|r| regex_path(&r.path))
                            {
                                return Err(ConfigError::Invalid {
                                    field: at(".filters"),
                                    message: "a backend's rewrite or redirect replaces the full \
                                              path or the prefix, not by regex"
                                        .into(),
                                });
                            }
                            let mut mirrors = Vec::with_capacity(f.mirrors.len());
                            for (mi, m) in f.mirrors.iter().enumerate() {
                                let id = resolve(
                                    at(&format!(".filters.mirrors[{mi}].backend")),
                                    &m.backend,
                                )?;
                                mirrors.push((id, shares(m.percent)));
                            }
                            filters.push(Some(Box::new(BackendFilter {
                                request_headers: f.request_headers,
                                response_headers: f.response_headers,
                                rewrite: f.rewrite,
                                host: f.host,
                                redirect: f.redirect,
                                mirrors,
                            })));
                        }
                        Action::Forward {
                            backends: out,
                            rewrite,
                            filters,
                        }
                    }
                    RouteAction::Redirect(r) => Action::Redirect(r),
                    RouteAction::Respond { status, body } => Action::Respond { status, body },
                };
                let mut mirrors = Vec::with_capacity(route.mirrors.len());
                for (mi, m) in route.mirrors.iter().enumerate() {
                    let id = resolve(field(&format!(".mirrors[{mi}].backend")), &m.backend)?;
                    mirrors.push((id, shares(m.percent)));
                }
                let sources = match &route.sources {
                    None => None,
                    Some(list) => {
                        let mut ips = Vec::with_capacity(list.len());
                        for (si, ip) in list.iter().enumerate() {
                            ips.push(ip.parse::<std::net::IpAddr>().map_err(|_| {
                                ConfigError::Invalid {
                                    field: field(&format!(".sources[{si}]")),
                                    message: format!("{ip:?} is not an IP address"),
                                }
                            })?);
                        }
                        needs_source = true;
                        Some(ips)
                    }
                };
                let client_ranges = match &route.client_ranges {
                    None => None,
                    Some(r) => {
                        let parse = |list: &[String], what: &str| {
                            list.iter()
                                .enumerate()
                                .map(|(i, c)| {
                                    c.parse::<Cidr>().map_err(|message| ConfigError::Invalid {
                                        field: field(&format!(".clientRanges.{what}[{i}]")),
                                        message,
                                    })
                                })
                                .collect::<Result<Vec<_>, _>>()
                        };
                        needs_source = true;
                        Some((parse(&r.allow, "allow")?, parse(&r.deny, "deny")?))
                    }
                };
                let cors = match route.cors {
                    None => None,
                    Some(policy) => {
                        let mut origins = Vec::with_capacity(policy.allow_origins.len());
                        for (oi, o) in policy.allow_origins.iter().enumerate() {
                            origins.push(Matcher::compile(
                                field(&format!(".cors.allowOrigins[{oi}]")),
                                o,
                            )?);
                        }
                        Some(CompiledCors { origins, policy })
                    }
                };
                let mut headers = Vec::with_capacity(route.headers.len());
                for (hi, h) in route.headers.iter().enumerate() {
                    headers.push((
                        h.name.to_ascii_lowercase(),
                        Matcher::compile(field(&format!(".headers[{hi}]")), &h.value)?,
                        h.invert,
                    ));
                }
                let mut query = Vec::with_capacity(route.query.len());
                for (qi, q) in route.query.iter().enumerate() {
                    query.push((
                        q.name.clone(),
                        Matcher::compile(field(&format!(".query[{qi}]")), &q.value)?,
                    ));
                }
                let rewrite_source = match &action {
                    Action::Forward {
                        rewrite:
                            Some(Rewrite {
                                path: Some(PathRewrite::Regex { regex, .. }),
                                ..
                            }),
                        ..
                    } => Some(regex),
                    Action::Redirect(Redirect {
                        path: Some(PathRewrite::Regex { regex, .. }),
                        ..
                    }) => Some(regex),
                    _ => None,
                };
                let rewrite_regex = match rewrite_source {
                    Some(re) => Some(re2::compile(re).map_err(|e| ConfigError::Invalid {
                        field: field(".action"),
                        message: format!("rewrite regex {re:?} does not compile: {e}"),
                    })?),
                    None => None,
                };
                let client_certificate = match route.client_certificate {
                    None => None,
                    Some(c) => {
                        let re = match &c.match_subject {
                            None => None,
                            Some(re) => {
                                Some(re2::compile(re).map_err(|e| ConfigError::Invalid {
                                    field: field(".clientCertificate.matchSubject"),
                                    message: format!("{re:?} does not compile: {e}"),
                                })?)
                            }
                        };
                        Some((c, re))
                    }
                };
                let compiled = CompiledRoute {
                    name: route.name,
                    path,
                    rewrite_regex,
                    headers,
                    query,
                    method: route.method,
                    sources,
                    client_ranges,
                    upstream_headers: route.upstream.headers(),
                    cors,
                    action,
                    request_headers: route.request_headers,
                    response_headers: route.response_headers,
                    abort: route.abort.map(|a| (a.status, shares(a.percent))),
                    delay: route.delay.map(|d| (d.millis, shares(d.percent))),
                    mirrors,
                    client_certificate,
                };
                if vhost.order == RouteOrder::LongestPath {
                    if !compiled.headers.is_empty()
                        || !compiled.query.is_empty()
                        || compiled.method.is_some()
                        || compiled.sources.is_some()
                    {
                        return Err(ConfigError::Invalid {
                            field: field(""),
                            message: "a longestPath virtual host matches on the path only".into(),
                        });
                    }
                    let inserted = match &route.path {
                        PathMatch::Exact(p) => paths.insert_exact(p, routes.len()),
                        PathMatch::Prefix(p) => paths.insert_prefix(p, routes.len()),
                        PathMatch::Regex(_) => {
                            return Err(ConfigError::Invalid {
                                field: field(".path"),
                                message: "regex paths need a listed virtual host".into(),
                            })
                        }
                    }
                    .map_err(|e| ConfigError::Invalid {
                        field: field(".path"),
                        message: e.to_string(),
                    })?;
                    // A later route with the same path is shadowed; keep it out of the table.
                    if !inserted {
                        continue;
                    }
                }
                routes.push(compiled);
            }
            let default_backend = match &vhost.default_backend {
                Some(key) => Some(resolve(at(".defaultBackend"), key)?),
                None => None,
            };
            let listed = (vhost.order == RouteOrder::Listed).then(|| {
                ListedIndex::new(routes.iter().map(|r| match &r.path {
                    CompiledPath::Exact(p) => PathSpec::Exact(p),
                    CompiledPath::Prefix(p) => PathSpec::Prefix(p),
                    CompiledPath::Regex(re) => PathSpec::Regex(re.as_str()),
                }))
            });
            vhosts.push(CompiledVhost {
                name: vhost.name,
                order: vhost.order,
                paths,
                listed,
                routes,
                default_backend,
            });
        }
        Ok(Router {
            generation: config.generation,
            forward: config.forward,
            port: config.port,
            hosts,
            vhosts,
            default_backend,
            backends,
            needs_source,
            passthrough: config.passthrough,
            host_defaults_only: config.host_defaults_only,
            tls: config.tls,
            unknown_host_status: config.unknown_host_status,
        })
    }
}

/// Whether `host` is a name the router serves: `*`, a name, or `*.` and a name (letters,
/// digits, `-` and `.`). Translators check their objects' hosts with it, so that no object can
/// make the router refuse a whole configuration.
///
/// # Errors
/// Why it is not.
pub fn validate_host_pattern(host: &str) -> Result<(), String> {
    if host == "*" {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty()
        || name.contains('*')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(format!("{host:?} is not a host name or *.wildcard"));
    }
    Ok(())
}
