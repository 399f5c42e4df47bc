//! The explainer: Kubernetes objects and one request in; what the proxy does with it, step by
//! step, out — the certificate the SNI picks, the sidecar's egress verdict, each route tried and
//! why it did not match, the backend and its endpoints, and the translate diagnostics on the
//! objects. It runs the code the filters and the controller run (translate, the TLS table's
//! selection, the egress policy, the router), so it cannot disagree with them; `host-runner
//! explain` prints it and the browser playground shows it. No I/O and no clock: the caller gives
//! the objects and the time.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use portico_controller::model::Object;
use portico_controller::translate::{self, Options};
use portico_core::egress::{Egress, Hello, Outcome, Start, Verdict};
use portico_core::tls::select::TlsVersion;
use portico_core::{Decision, Router};

use crate::format::Url;
use crate::prepare::{self, ClientTls};

/// One request to explain.
#[derive(Debug, Clone, Default)]
pub struct Question {
    /// `METHOD URL`, e.g. `GET https://shop.example.com/cart` (`http`, `https` or, through the
    /// sidecar, `tcp`); the URL's port picks the gateway listener or the sidecar's destination
    /// port.
    pub request: String,
    /// Request headers (`host` overrides the URL's authority).
    pub headers: Vec<(String, String)>,
    /// Through the sidecar (the mesh's outbound routing and egress policy) instead of the gateway.
    pub sidecar: bool,
    /// The client's address.
    pub source: Option<IpAddr>,
    /// The SNI an `https` client sends: `None` for the URL's host, `Some("")` for none.
    pub sni: Option<String>,
    /// For the sidecar: the address the client connected to, whose port picks the sidecar's
    /// routes (default: the URL's host when it is an address, else an address no Service has,
    /// and the URL's port).
    pub destination: Option<SocketAddr>,
}

/// What happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The outcome in one line.
    pub verdict: String,
    /// How it came to that, one line per step (`tls: …`, `egress: …`, the router's trace,
    /// `endpoints: …`).
    pub steps: Vec<String>,
    /// What translate said about the objects (errors and warnings, each naming the object and
    /// field).
    pub diagnostics: Vec<String>,
}

/// The objects of a YAML stream (`---`-separated documents, `kind: List` flattened), read as
/// strictly as the controller reads a manifest directory; each document that is not a usable
/// object is a message naming it (`name: document: why`).
pub fn read_objects(name: &str, yaml: &str) -> (Vec<Object>, Vec<String>) {
    let file = std::path::Path::new(name);
    match portico_controller::source::documents(yaml) {
        Ok(values) => {
            let mut loaded = portico_controller::source::Loaded::default();
            portico_controller::source::parse_values(file, values, &mut loaded);
            (
                loaded.manifests.into_iter().map(|m| m.object).collect(),
                loaded.errors.iter().map(ToString::to_string).collect(),
            )
        }
        Err(e) => (Vec::new(), vec![format!("{name}: {e}")]),
    }
}

/// Explains `question` against `objects`, translated with `options` (its `mesh` is set from the
/// question).
///
/// # Errors
/// A request that cannot be read (`METHOD URL`, the URL itself).
pub fn explain(
    objects: &[Object],
    options: &Options,
    question: &Question,
) -> Result<Explanation, String> {
    let (method, url) = question
        .request
        .trim()
        .split_once(' ')
        .ok_or("request: expected `METHOD URL`, e.g. `GET http://a.example.com/`")?;
    let url = Url::parse(url.trim()).map_err(|e| format!("request: {e}"))?;
    let options = Options {
        mesh: question.sidecar,
        ..options.clone()
    };
    let translation = translate::translate(objects, &options);
    let diagnostics = translation.errors.iter().map(ToString::to_string).collect();
    let (verdict, steps) = trace(&translation.snapshot, method, &url, question);
    Ok(Explanation {
        verdict,
        steps,
        diagnostics,
    })
}

/// The verdict and the steps to it, on a translated configuration, for a request whose method
/// and URL are given parsed (`question.request` is not read). A test host adds this to a failed
/// check's report.
pub fn trace(
    snapshot: &portico_controller::snapshot::Snapshot,
    method: &str,
    url: &Url,
    question: &Question,
) -> (String, Vec<String>) {
    let mut steps = Vec::new();
    let verdict = decide(snapshot, method, url, question, &mut steps);
    (verdict, steps)
}

fn decide(
    snapshot: &portico_controller::snapshot::Snapshot,
    method: &str,
    url: &Url,
    q: &Question,
    steps: &mut Vec<String>,
) -> String {
    let headers: BTreeMap<String, String> = q
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let authority = prepare::authority(url, &headers);
    let sni = match &q.sni {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.clone()),
        None => Some(url.host.clone()),
    };
    if q.sidecar {
        let destination = q.destination.unwrap_or_else(|| {
            let ip = url.host.trim_matches(['[', ']']).parse().ok();
            SocketAddr::new(ip.unwrap_or(IpAddr::from([240, 0, 0, 1])), url.port)
        });
        steps.push(format!("sidecar: the client connects to {destination}"));
        let egress = match &snapshot.egress {
            Some(e) => match Egress::compile(&e.config) {
                Ok(egress) => Some(egress),
                Err(e) => {
                    steps.push(format!("egress: the configuration does not compile: {e}"));
                    return "refused: the egress configuration does not compile".into();
                }
            },
            None => None,
        };
        // A TLS or TCP connection leaves through the sidecar's TCP proxy: the egress filter
        // names the cluster or closes it.
        if url.scheme != "http" {
            let Some(egress) = egress else {
                steps.push("egress: no egress policy: the sidecar has no chain for it".into());
                return "closed: no sidecar listener takes this connection".into();
            };
            let verdict = if url.scheme == "https" {
                match egress.decide_connection(q.source, destination) {
                    Start::Decided(v) => v,
                    Start::NeedHello => {
                        let hello = crate::tls::client_hello(
                            &ClientTls {
                                sni: sni.clone(),
                                max_version: TlsVersion::V1_3,
                                client: None,
                            },
                            false,
                        );
                        match hello {
                            Ok(bytes) => match egress.decide_tls(q.source, destination, &bytes) {
                                Hello::Decided(v, _) => v,
                                Hello::Wait => incomplete_hello(),
                            },
                            Err(e) => {
                                steps.push(format!("tls: no ClientHello for SNI {sni:?}: {e}"));
                                return "refused: the SNI is not a valid name".into();
                            }
                        }
                    }
                }
            } else {
                egress.decide_tcp(q.source, destination)
            };
            return egress_verdict(&verdict, steps, true);
        }
        if let Some(egress) = egress {
            let verdict = egress.decide_http(q.source, destination, &authority);
            if verdict.outcome == Outcome::Blocked {
                return egress_verdict(&verdict, steps, false);
            }
            steps.push(verdict_line(&verdict));
        }
        let port = destination.port();
        let Some(config) = snapshot.sidecar_routing(port) else {
            steps.push(format!("no sidecar route for port {port}"));
            return format!("closed: the sidecar has no HTTP route for port {port}");
        };
        return route(
            config, method, &authority, &url.path, &headers, q.source, steps,
        );
    }
    let Some(config) = snapshot.routing(url.port) else {
        steps.push(format!("no listener on port {}", url.port));
        return format!("refused: the gateway has no listener on port {}", url.port);
    };
    // The handshake first: only the SNI picks a certificate.
    let table = snapshot
        .listeners
        .iter()
        .find(|l| l.port == url.port)
        .and_then(|l| l.tls.as_ref());
    match (url.scheme.as_str(), table) {
        ("https", Some(table)) => {
            let selection = table.select(sni.as_deref());
            steps.push(format!(
                "tls ({}, SNI {}): {selection}",
                table.family,
                sni.as_deref().unwrap_or("none")
            ));
            if selection.chain.is_none() {
                return "TLS handshake refused".into();
            }
        }
        ("https", None) => {
            steps.push(format!(
                "tls: port {} is plain HTTP: the handshake fails",
                url.port
            ));
            return "TLS handshake fails: the port speaks plain HTTP".into();
        }
        (_, Some(_)) => {
            steps.push(format!(
                "tls: port {} speaks TLS: plain HTTP is closed",
                url.port
            ));
            return "plain HTTP to a TLS port: closed".into();
        }
        _ => {}
    }
    route(
        config, method, &authority, &url.path, &headers, q.source, steps,
    )
}

/// `Egress::decide_tls` waits only for a ClientHello cut short; ours is whole, so this is
/// never returned, but a wait is refused rather than taken for a verdict.
fn incomplete_hello() -> Verdict {
    Verdict {
        outcome: Outcome::Blocked,
        entry: String::new(),
        cluster: None,
        scope: String::new(),
        rule: "the ClientHello was incomplete".into(),
        close: true,
    }
}

fn verdict_line(v: &Verdict) -> String {
    format!(
        "egress ({}): {} — {}{}",
        if v.scope.is_empty() {
            "no scope"
        } else {
            &v.scope
        },
        v.outcome.label(),
        v.rule,
        v.cluster
            .as_ref()
            .map(|c| format!("; cluster {c}"))
            .unwrap_or_default()
    )
}

/// The verdict of a connection (or request) the egress policy ends.
fn egress_verdict(v: &Verdict, steps: &mut Vec<String>, connection: bool) -> String {
    steps.push(verdict_line(v));
    match v.outcome {
        Outcome::Blocked if connection || v.close => format!("blocked: closed ({})", v.rule),
        Outcome::Blocked => format!("blocked: 502 ({})", v.rule),
        Outcome::Allowed => format!(
            "allowed: to {}",
            v.cluster.as_deref().unwrap_or("the entry's cluster")
        ),
        Outcome::Passthrough => {
            "passthrough: ALLOW_ANY lets it go where the client was going".into()
        }
    }
}

/// The router's decision, with its trace and the endpoints of the backend it picks.
fn route(
    config: &portico_core::config::RoutingConfig,
    method: &str,
    authority: &str,
    path: &str,
    headers: &BTreeMap<String, String>,
    source: Option<IpAddr>,
    steps: &mut Vec<String>,
) -> String {
    let router = match Router::try_from(config.clone()) {
        Ok(r) => r,
        Err(e) => {
            steps.push(format!("the configuration does not compile: {e}"));
            return "refused: the routing configuration does not compile".into();
        }
    };
    // Envoy's connection manager normalizes `:path` before any filter.
    let path = portico_envoy_path::normalize_path(path);
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (decision, trace) = router.explain(&portico_core::Request {
        authority,
        path: &path,
        method,
        headers: &headers,
        source,
    });
    let verdict = trace
        .last()
        .and_then(|l| l.strip_prefix("decision: "))
        .unwrap_or("no decision")
        .to_owned();
    steps.extend(trace);
    let backends: Vec<portico_core::BackendId> = match decision {
        Decision::Route { vhost, route } => match &router.route(vhost, route).action {
            portico_core::routing::router::Action::Forward { backends, .. } => {
                backends.iter().filter_map(|(b, _)| *b).collect()
            }
            _ => Vec::new(),
        },
        Decision::Default { backend, .. } => vec![backend],
        Decision::NoRoute => Vec::new(),
    };
    for id in backends {
        let b = router.backend(id);
        steps.push(if b.original_destination {
            format!(
                "endpoints of {}: where the client was going ({})",
                b.key, b.cluster
            )
        } else if b.endpoints.is_empty() {
            format!(
                "endpoints of {}: none ready (503) — cluster {}",
                b.key, b.cluster
            )
        } else {
            format!(
                "endpoints of {} ({:?}): {} — cluster {}",
                b.key,
                b.lb,
                b.endpoints.join(", "),
                b.cluster
            )
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {ports: [{port: 80, targetPort: 8080}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{port: 8080}]\nendpoints: [{addresses: [10.0.0.7]}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: shop, namespace: default}\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: shop.example.com\n    http: {paths: [{path: /cart, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}\n";

    fn ask(request: &str) -> Explanation {
        let (objects, errors) = read_objects("demo.yaml", DEMO);
        assert!(errors.is_empty(), "{errors:?}");
        let q = Question {
            request: request.into(),
            ..Question::default()
        };
        explain(&objects, &Options::default(), &q).unwrap()
    }

    #[test]
    fn a_route_names_its_backend_and_endpoints() {
        let e = ask("GET http://shop.example.com/a/../cart/items");
        assert!(
            e.verdict.contains("web.default.svc.cluster.local:80"),
            "{e:?}"
        );
        assert!(
            e.steps.iter().any(|s| s.contains("path \"/cart/items\"")),
            "the path is normalized as Envoy does: {e:?}"
        );
        assert!(e.steps.iter().any(|s| s.contains("10.0.0.7:8080")), "{e:?}");
        let e = ask("GET http://shop.example.com/cartoon");
        assert!(e.verdict.contains("404"), "{e:?}");
        let e = ask("GET https://shop.example.com/cart");
        assert!(
            e.steps[0].starts_with("tls (ingress-nginx, SNI shop.example.com)"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_input_is_named() {
        let q = Question {
            request: "https://a.example.com/".into(),
            ..Question::default()
        };
        assert!(explain(&[], &Options::default(), &q).is_err());
        let (objects, errors) = read_objects(
            "pasted",
            "kind: Ingress\nmetadata: {name: x}\nspec: {rules: 3}\n",
        );
        assert!(objects.is_empty());
        assert!(errors[0].starts_with("pasted: "), "{errors:?}");
        let (_, errors) = read_objects("pasted", "a: [");
        assert!(errors[0].starts_with("pasted: "), "{errors:?}");
        let q = Question {
            request: "GET http://a.example.com:8080/".into(),
            ..Question::default()
        };
        let e = explain(&[], &Options::default(), &q).unwrap();
        assert!(e.verdict.starts_with("refused"), "{e:?}");
    }
}
