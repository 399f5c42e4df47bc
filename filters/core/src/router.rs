//! The compiled routing table and the per-request decision.

use std::collections::HashMap;

use crate::config::{ForwardMode, PathMatch, RoutingConfig, ROUTING_API_VERSION};
use crate::host::{normalize_host, HostTable};
use crate::path::{path_only, PathKind, PathTable};
use crate::ConfigError;

/// Index of a backend in [`Router::backends`].
pub type BackendId = usize;

/// A backend ready for requests.
#[derive(Debug, Clone)]
pub struct CompiledBackend {
    /// Key (`name.namespace.svc.cluster.local:port`).
    pub key: String,
    /// Envoy cluster name.
    pub cluster: String,
    /// Ready endpoints, `ip:port`.
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone)]
struct CompiledRoute {
    name: String,
    backend: BackendId,
}

#[derive(Debug, Clone)]
struct CompiledVhost {
    name: String,
    paths: PathTable<usize>,
    routes: Vec<CompiledRoute>,
    default_backend: Option<BackendId>,
}

/// A [`RoutingConfig`] compiled for lookups: host table, path tables, backends by index.
#[derive(Debug, Clone)]
pub struct Router {
    generation: String,
    forward: ForwardMode,
    hosts: HostTable<usize>,
    vhosts: Vec<CompiledVhost>,
    default_backend: Option<BackendId>,
    backends: Vec<CompiledBackend>,
}

/// What took a forwarded request. Cheap to produce; [`Router::describe`] turns it into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A route of a virtual host.
    Route {
        /// Virtual host index.
        vhost: usize,
        /// Route index within it.
        route: usize,
        /// Exact or Prefix.
        kind: PathKind,
    },
    /// A virtual host's default backend.
    VhostDefault(usize),
    /// The global default backend.
    Default,
}

/// What the router decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send to this backend.
    Forward {
        /// The backend.
        backend: BackendId,
        /// What took the request; [`Router::describe`] names it.
        via: Via,
    },
    /// Nothing takes the request: 404.
    NoRoute,
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
                let backend = resolve(at(&format!(".routes[{ri}].backend")), &route.backend)?;
                let inserted = match &route.path {
                    PathMatch::Exact(p) => paths.insert_exact(p, routes.len()),
                    PathMatch::Prefix(p) => paths.insert_prefix(p, routes.len()),
                }
                .map_err(|e| ConfigError::Invalid {
                    field: at(&format!(".routes[{ri}].path")),
                    message: e.to_string(),
                })?;
                // A later route with the same path is shadowed; keep it out of the table.
                if inserted {
                    routes.push(CompiledRoute {
                        name: route.name,
                        backend,
                    });
                }
            }
            let default_backend = match &vhost.default_backend {
                Some(key) => Some(resolve(at(".defaultBackend"), key)?),
                None => None,
            };
            vhosts.push(CompiledVhost {
                name: vhost.name,
                paths,
                routes,
                default_backend,
            });
        }
        Ok(Router {
            generation: config.generation,
            forward: config.forward,
            hosts,
            vhosts,
            default_backend,
            backends,
        })
    }
}

fn validate_host_pattern(host: &str) -> Result<(), String> {
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

impl Router {
    /// Parses and compiles a configuration in one step.
    ///
    /// # Errors
    /// Any [`ConfigError`]: bad JSON (with the field path), wrong API version, a route naming an
    /// unknown backend, an invalid path, host or endpoint.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Router::try_from(RoutingConfig::from_json(bytes)?)
    }

    /// The configuration's generation string.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// How forwarded requests reach their backend.
    pub fn forward_mode(&self) -> ForwardMode {
        self.forward
    }

    /// A backend by id.
    pub fn backend(&self, id: BackendId) -> &CompiledBackend {
        &self.backends[id]
    }

    /// Number of backends (for sizing per-backend state such as [`crate::lb::RoundRobin`]).
    pub fn backend_count(&self) -> usize {
        self.backends.len()
    }

    /// Decides where a request goes from its `:authority` and `:path` (query allowed).
    ///
    /// Host first (exact, then wildcard, then catch-all); within the host the longest path wins
    /// and `Exact` beats `Prefix` on a tie; then the host's default backend, then the global one;
    /// else [`Decision::NoRoute`]. A host no virtual host takes goes to the global default.
    pub fn decide(&self, authority: &str, path_and_query: &str) -> Decision {
        let host = normalize_host(authority);
        let path = path_only(path_and_query);
        if let Some(&vi) = self.hosts.get(&host) {
            let vhost = &self.vhosts[vi];
            if let Some(hit) = vhost.paths.lookup(path) {
                let route = *hit.value;
                return Decision::Forward {
                    backend: vhost.routes[route].backend,
                    via: Via::Route {
                        vhost: vi,
                        route,
                        kind: hit.kind,
                    },
                };
            }
            if let Some(backend) = vhost.default_backend {
                return Decision::Forward {
                    backend,
                    via: Via::VhostDefault(vi),
                };
            }
        }
        match self.default_backend {
            Some(backend) => Decision::Forward {
                backend,
                via: Via::Default,
            },
            None => Decision::NoRoute,
        }
    }

    /// Names what took a request: `Ingress default/shop rules[0].http.paths[1] (prefix path)`.
    pub fn describe(&self, via: Via) -> String {
        match via {
            Via::Route { vhost, route, kind } => {
                let kind = match kind {
                    PathKind::Exact => "exact",
                    PathKind::Prefix => "prefix",
                };
                format!("{} ({kind} path)", self.vhosts[vhost].routes[route].name)
            }
            Via::VhostDefault(vhost) => format!("{}: default backend", self.vhosts[vhost].name),
            Via::Default => "default backend".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Backend, Route, VirtualHost, WildcardMode};

    fn backend(name: &str) -> Backend {
        Backend {
            cluster: format!("outbound|80||{name}"),
            endpoints: vec!["127.0.0.1:1".into()],
        }
    }

    fn vhost(hosts: &[&str], routes: &[(PathMatch, &str)], default: Option<&str>) -> VirtualHost {
        VirtualHost {
            name: format!("vh {hosts:?}"),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            wildcard: WildcardMode::SingleLabel,
            routes: routes
                .iter()
                .enumerate()
                .map(|(i, (path, b))| Route {
                    name: format!("r{i}"),
                    path: path.clone(),
                    backend: (*b).to_owned(),
                })
                .collect(),
            default_backend: default.map(str::to_owned),
        }
    }

    fn config() -> RoutingConfig {
        let mut c = RoutingConfig::empty("t");
        for b in ["a", "b", "c", "d", "e", "dflt", "vdflt"] {
            c.backends.insert(b.into(), backend(b));
        }
        c.virtual_hosts = vec![
            vhost(
                &["foo.bar.com"],
                &[
                    (PathMatch::Prefix("/".into()), "a"),
                    (PathMatch::Exact("/x".into()), "b"),
                ],
                None,
            ),
            vhost(
                &["*.bar.com"],
                &[(PathMatch::Prefix("/w".into()), "c")],
                Some("vdflt"),
            ),
            vhost(&["*"], &[(PathMatch::Prefix("/any".into()), "d")], None),
            // Shadowed by the first virtual host for foo.bar.com.
            vhost(
                &["foo.bar.com", "e.test"],
                &[(PathMatch::Prefix("/".into()), "e")],
                None,
            ),
        ];
        c.default_backend = Some("dflt".into());
        c
    }

    fn decide(router: &Router, host: &str, path: &str) -> String {
        match router.decide(host, path) {
            Decision::Forward { backend, .. } => router.backend(backend).key.clone(),
            Decision::NoRoute => "404".into(),
        }
    }

    #[test]
    fn decisions() {
        let router = Router::try_from(config()).unwrap();
        for (host, path, want) in [
            ("foo.bar.com", "/", "a"),
            ("foo.bar.com", "/x", "b"),
            ("foo.bar.com", "/x?q=1", "b"),
            ("foo.bar.com", "/x/", "a"),
            ("FOO.bar.com:8080", "/x", "b"),
            ("foo.bar.com.", "/x", "b"),
            ("baz.bar.com", "/w/1", "c"),
            ("baz.bar.com", "/v", "vdflt"),
            ("a.baz.bar.com", "/any/1", "d"),
            ("bar.com", "/any", "d"),
            ("bar.com", "/none", "dflt"),
            ("e.test", "/", "e"),
            ("", "/any", "d"),
        ] {
            assert_eq!(decide(&router, host, path), want, "{host}{path}");
        }
    }

    #[test]
    fn no_default_is_404() {
        let mut c = config();
        c.default_backend = None;
        let router = Router::try_from(c).unwrap();
        assert_eq!(decide(&router, "bar.com", "/none"), "404");
        assert_eq!(decide(&router, "baz.bar.com", "/v"), "vdflt");
    }

    #[test]
    fn describe_names_the_route() {
        let router = Router::try_from(config()).unwrap();
        let Decision::Forward { via, .. } = router.decide("foo.bar.com", "/x") else {
            panic!()
        };
        assert_eq!(router.describe(via), "r1 (exact path)");
        let Decision::Forward { via, .. } = router.decide("q.bar.com", "/") else {
            panic!()
        };
        assert_eq!(router.describe(via), "vh [\"*.bar.com\"]: default backend");
    }

    #[test]
    fn bad_configs_name_the_field() {
        type Mutation = Box<dyn Fn(&mut RoutingConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.api_version = "v0".into()), "apiVersion"),
            (
                Box::new(|c| c.virtual_hosts[1].routes[0].backend = "zz".into()),
                "virtualHosts[1].routes[0].backend",
            ),
            (
                Box::new(|c| c.virtual_hosts[0].routes[1].path = PathMatch::Exact("x".into())),
                "virtualHosts[0].routes[1].path",
            ),
            (
                Box::new(|c| c.virtual_hosts[2].hosts[0] = "a b".into()),
                "virtualHosts[2].hosts[0]",
            ),
            (
                Box::new(|c| c.virtual_hosts[2].hosts[0] = "*.*.b".into()),
                "virtualHosts[2].hosts[0]",
            ),
            (
                Box::new(|c| c.default_backend = Some("nope".into())),
                "defaultBackend",
            ),
            (
                Box::new(|c| c.virtual_hosts[1].default_backend = Some("nope".into())),
                "virtualHosts[1].defaultBackend",
            ),
            (
                Box::new(|c| {
                    c.backends
                        .get_mut("a")
                        .unwrap()
                        .endpoints
                        .push("h:1".into())
                }),
                "backends[\"a\"].endpoints[1]",
            ),
        ];
        for (mutate, field) in cases {
            let mut c = config();
            mutate(&mut c);
            let err = Router::try_from(c).unwrap_err();
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn json_errors_name_the_path() {
        let mut v: serde_json::Value = serde_json::from_str(&config().to_json()).unwrap();
        v["virtualHosts"][0]["routes"][1]["path"]["type"] = "Regex".into();
        let err = Router::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("virtualHosts[0].routes[1].path"),
            "{err}"
        );
        v["virtualHosts"][0]["routes"][1]["path"]["type"] = "Exact".into();
        v["virtualHosts"][0]["extra"] = true.into();
        let err = Router::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        for junk in [&b""[..], b"{", b"[]", b"null", b"\xff\xfe"] {
            assert!(Router::from_json(junk).is_err());
        }
    }
}
