//! What every host does before it sends a scenario's requests: check the addresses, parse and
//! translate the objects, and work out what each request sends where.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::format::{check_addresses, endpoint_backends, Request, Scenario, Url, Via};

/// A scenario's objects, translated, with what the harnesses need around them.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The translation of the objects.
    pub translation: portico_controller::translate::Translation,
    /// Every EndpointSlice `ip:port` → the backends it serves (also: where echo servers run).
    pub backends: HashMap<String, BTreeSet<String>>,
    /// Every certificate a TLS chain serves: leaf DER → its names (`ns/name`, `default`,
    /// `fake`).
    pub certificates: std::collections::BTreeMap<Vec<u8>, Vec<String>>,
    /// The key pairs of the scenario's `kubernetes.io/tls` Secrets, by `namespace/name`: what
    /// a request's `client_certificate` names.
    pub key_pairs: BTreeMap<String, ClientIdentity>,
}

/// A client certificate and its key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// `namespace/name` of the Secret.
    pub name: String,
    /// Certificate chain.
    pub chain_pem: String,
    /// Private key.
    pub key_pem: String,
}

/// The `address` of every sidecar request: where passthrough traffic goes, so the harnesses
/// serve an echo backend there too.
pub fn request_addresses(scenario: &Scenario) -> BTreeSet<String> {
    scenario
        .requests
        .iter()
        .filter(|r| r.via == Via::Sidecar)
        .filter_map(|r| r.address.clone())
        .filter(|a| a.parse::<std::net::SocketAddr>().is_ok())
        .collect()
}

/// How every host translates a scenario's objects: a gateway and a sidecar, `forward` as the
/// run says, certificates judged against the current time.
pub fn translate_options(
    forward: portico_core::config::ForwardMode,
) -> portico_controller::translate::Options {
    portico_controller::translate::Options {
        now: portico_controller::translate::options::now(),
        forward,
        mesh: true,
        ..portico_controller::translate::Options::default()
    }
}

/// Checks a scenario's addresses, parses its objects and translates them. Objects that do not
/// parse are left out with a note; a kind `translate` does not read fails the whole scenario.
///
/// # Errors
/// A message saying why no request of the scenario can run.
pub fn prepare(
    scenario: &Scenario,
    forward: portico_core::config::ForwardMode,
    notes: &mut Vec<String>,
) -> Result<Prepared, String> {
    use portico_controller::objects::{describe_value, Object};
    use portico_controller::translate::translate;
    let problems = check_addresses(scenario);
    if !problems.is_empty() {
        return Err(format!("scenario rejected: {}", problems.join("; ")));
    }
    let mut objects = Vec::new();
    let mut unsupported = Vec::new();
    for (i, value) in scenario.objects.iter().enumerate() {
        let label = describe_value(value);
        match Object::from_value(value.clone()) {
            Ok(o) => objects.push(o),
            Err(e) if e.is_unsupported_kind() => {
                unsupported.push(format!("objects[{i}] {label}: {e}"))
            }
            Err(e) => notes.push(format!("objects[{i}] {label}: {e} (left out)")),
        }
    }
    if !unsupported.is_empty() {
        return Err(format!(
            "translate does not support: {}",
            unsupported.join("; ")
        ));
    }
    let translation = translate(&objects, &translate_options(forward));
    notes.extend(translation.errors.iter().map(ToString::to_string));
    let certificates =
        portico_controller::translate::tls::served_certificates(&translation.snapshot);
    let key_pairs = objects
        .iter()
        .filter_map(|o| match o {
            Object::Secret(s) => {
                let pair = portico_controller::translate::tls::read_key_pair(s).ok()?;
                let name = format!(
                    "{}/{}",
                    portico_controller::model::namespace_of(&s.metadata),
                    s.metadata.name
                );
                Some((
                    name.clone(),
                    ClientIdentity {
                        name,
                        chain_pem: pair.chain_pem,
                        key_pem: pair.key_pem,
                    },
                ))
            }
            _ => None,
        })
        .collect();
    Ok(Prepared {
        translation,
        backends: endpoint_backends(&scenario.objects),
        certificates,
        key_pairs,
    })
}

/// The Host header / `:authority` a request carries: a `host` entry of its headers, else the
/// URL's.
pub fn authority(url: &Url, headers: &BTreeMap<String, String>) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| url.authority())
}

/// A request a host can run: what it sends, worked out the same way by every host.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The URL (its port picks the gateway listener).
    pub url: Url,
    /// Method (GET by default).
    pub method: String,
    /// Host header / `:authority`.
    pub authority: String,
    /// Client source address.
    pub source: Option<std::net::IpAddr>,
    /// Where the request enters.
    pub via: Via,
    /// The destination the client addressed: for a sidecar request its `address`, else the
    /// URL's port on loopback (a gateway request's listener).
    pub destination: std::net::SocketAddr,
    /// Whether a listener takes the connection (else it is refused).
    pub listening: bool,
    /// TLS: what the client offers (`None`: plain HTTP).
    pub tls: Option<ClientTls>,
}

/// What a TLS client offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// SNI (`None`: the client sends none).
    pub sni: Option<String>,
    /// The highest version offered (TLS 1.3 unless `tls_max_version`).
    pub max_version: portico_core::tls::select::TlsVersion,
    /// The client certificate offered when the server asks (`client_certificate`).
    pub client: Option<ClientIdentity>,
}

/// Plans a request against the ports a configuration has: its gateway listeners, and the
/// destination ports its sidecar routes.
///
/// # Errors
/// Why the request cannot run: a feature no host has yet, a bad URL, address or source, no
/// listener.
pub fn plan(
    request: &Request,
    gateway: &[u16],
    sidecar: bool,
    key_pairs: &BTreeMap<String, ClientIdentity>,
) -> Result<Plan, String> {
    if let Some(reason) = unsupported(request) {
        return Err(reason);
    }
    let mut url = Url::parse(&request.url)?;
    let destination: std::net::SocketAddr = match &request.address {
        Some(a) => a
            .parse()
            .map_err(|_| format!("address {a:?} is not ip:port"))?,
        None => std::net::SocketAddr::from(([127, 0, 0, 1], url.port)),
    };
    // The Host header / SNI come from the URL as written; a gateway request's `address` names
    // the listener it connects to (its port), the URL's host staying the name it asks for.
    let authority = authority(&url, &request.headers);
    if request.via == Via::Gateway && request.address.is_some() {
        url.port = destination.port();
    }
    let mut listening = true;
    match request.via {
        // A refused connection is what the request expects: nothing to send.
        Via::Gateway
            if !gateway.contains(&url.port)
                && request.expect.connection.as_deref() == Some("refused") =>
        {
            listening = false;
        }
        Via::Gateway if !gateway.contains(&url.port) => {
            return Err(format!(
                "no listener for port {} in this configuration",
                url.port
            ))
        }
        // The sidecar takes every port (its egress filter decides what passes).
        Via::Sidecar if !sidecar => {
            return Err("this configuration has no sidecar (mesh off)".into())
        }
        _ => {}
    }
    let source = match request.source.as_deref() {
        Some(s) => Some(
            s.parse()
                .map_err(|_| format!("source {s:?} is not an IP address"))?,
        ),
        None => None,
    };
    let method = request.method.clone().unwrap_or_else(|| "GET".into());
    let tls = if url.scheme == "https" || request.protocol.as_deref() == Some("tls") {
        let max_version = match request.tls_max_version.as_deref() {
            None => portico_core::tls::select::TlsVersion::V1_3,
            Some(v) => portico_core::tls::select::TlsVersion::parse(v)
                .ok_or_else(|| format!("tls_max_version {v:?} is not 1.0, 1.1, 1.2 or 1.3"))?,
        };
        let sni = match &request.sni {
            Some(explicit) => explicit.clone(),
            // A client sends no SNI for an IP address (RFC 6066).
            None if url.host.parse::<std::net::IpAddr>().is_ok() || url.host.starts_with('[') => {
                None
            }
            None => Some(url.host.clone()),
        };
        // `client_certificate`: a Secret, `namespace/name` or a name in `default`.
        let client = match request.client_certificate.as_deref() {
            None => None,
            Some(name) => {
                let full = if name.contains('/') {
                    name.to_owned()
                } else {
                    format!("default/{name}")
                };
                Some(key_pairs.get(&full).cloned().ok_or_else(|| {
                    format!("client_certificate {name:?}: no readable kubernetes.io/tls Secret {full} in the scenario")
                })?)
            }
        };
        Some(ClientTls {
            sni,
            max_version,
            client,
        })
    } else {
        None
    };
    Ok(Plan {
        url,
        method,
        authority,
        source,
        via: request.via,
        destination,
        listening,
        tls,
    })
}

/// What a harness cannot do yet for this request; `None` when it can run it.
pub fn unsupported(request: &Request) -> Option<String> {
    let mut missing = Vec::new();
    let raw_tcp = request.protocol.as_deref() == Some("tcp") || request.url.starts_with("tcp://");
    match request.protocol.as_deref() {
        None | Some("tls") | Some("tcp") => {}
        Some(_) => missing.push("protocols other than tls and tcp"),
    }
    if raw_tcp && request.via != Via::Sidecar {
        missing.push("raw TCP to a gateway listener");
    }
    if missing.is_empty() {
        None
    } else {
        Some(format!(
            "not supported by this harness yet: {}",
            missing.join(", ")
        ))
    }
}
