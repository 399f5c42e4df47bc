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
    use portico_controller::translate::{translate, Options};
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
    let translation = translate(
        &objects,
        &Options {
            forward,
            mesh: true,
            ..Options::default()
        },
    );
    notes.extend(translation.errors.iter().map(ToString::to_string));
    Ok(Prepared {
        translation,
        backends: endpoint_backends(&scenario.objects),
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
}

/// Plans a request against the ports a configuration has: its gateway listeners, and the
/// destination ports its sidecar routes.
///
/// # Errors
/// Why the request cannot run: a feature no host has yet, a bad URL, address or source, no
/// listener.
pub fn plan(request: &Request, gateway: &[u16], sidecar: &[u16]) -> Result<Plan, String> {
    if let Some(reason) = unsupported(request) {
        return Err(reason);
    }
    let url = Url::parse(&request.url)?;
    let destination: std::net::SocketAddr = match &request.address {
        Some(a) => a
            .parse()
            .map_err(|_| format!("address {a:?} is not ip:port"))?,
        None => std::net::SocketAddr::from(([127, 0, 0, 1], url.port)),
    };
    match request.via {
        Via::Gateway if !gateway.contains(&url.port) => {
            return Err(format!(
                "no listener for port {} in this configuration",
                url.port
            ))
        }
        // Port 0 is the sidecar's catch-all (passthrough) configuration.
        Via::Sidecar if !sidecar.contains(&destination.port()) && !sidecar.contains(&0) => {
            return Err(format!(
                "the sidecar routes no Service port {} in this configuration",
                destination.port()
            ))
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
    let authority = authority(&url, &request.headers);
    let method = request.method.clone().unwrap_or_else(|| "GET".into());
    Ok(Plan {
        url,
        method,
        authority,
        source,
        via: request.via,
        destination,
    })
}

/// What a harness cannot do yet for this request; `None` when it can run it.
pub fn unsupported(request: &Request) -> Option<String> {
    let e = &request.expect;
    let mut missing = Vec::new();
    if request.protocol.is_some() {
        missing.push("protocol (raw TLS/TCP)");
    }
    if request.url.starts_with("https://") || request.url.starts_with("tcp://") {
        missing.push("https/tcp urls");
    }
    if request.sni.is_some()
        || request.client_certificate.is_some()
        || request.tls_max_version.is_some()
    {
        missing.push("TLS client options");
    }
    if request.address.is_some() && request.via == Via::Gateway {
        missing.push("address (raw TLS/TCP)");
    }
    if e.certificate.is_some() || e.connection.is_some() {
        missing.push("certificate/connection expectations");
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
