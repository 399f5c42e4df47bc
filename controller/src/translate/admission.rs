//! What a cluster refuses before an object exists — the API server's schema validation of the
//! Gateway API CRDs, Istio's validating webhook — checked before translation. Such an object is
//! left out with an error naming the field, as it could never be served from a cluster; without
//! this it would reach the routing filter, which refuses the whole configuration of a port over
//! one bad host or regex (the port keeps serving its last good configuration, every other
//! object's change held back with it).
//!
//! - Gateway API `Hostname` (Gateway `listeners[].hostname`, HTTPRoute and TLSRoute
//!   `hostnames[]`): `apis/v1/shared_types.go`, `MaxLength=253`,
//!   `Pattern=^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`.
//! - Pod `status.podIP(s)` and EndpointSlice (`IPv4`, `IPv6`) addresses: IP addresses.
//! - Istio VirtualService, ServiceEntry and Gateway server `hosts[]`: a name the router serves
//!   ([`portico_core::routing::router::validate_host_pattern`]; Istio's own rule,
//!   `pkg/config/validation` `validateVirtualService`, refuses at least those);
//!   `http[].rewrite.uriRegexRewrite`: both fields set, the regex compiling
//!   (`validateURIRegexRewrite`).

use std::borrow::Cow;

use super::diagnostics::{ErrorKind, TranslateError};
use crate::model::Object;

/// The objects a cluster would hold; each refused one is an error in `errors`.
pub(crate) fn admit<'a>(
    objects: &'a [Object],
    errors: &mut Vec<TranslateError>,
) -> Cow<'a, [Object]> {
    let mut refused = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if let Err((field, message)) = check(o) {
            errors.push(TranslateError {
                object: o.object_ref(),
                field,
                kind: ErrorKind::Invalid(message),
            });
            refused.push(i);
        }
    }
    if refused.is_empty() {
        return Cow::Borrowed(objects);
    }
    Cow::Owned(
        objects
            .iter()
            .enumerate()
            .filter(|(i, _)| !refused.contains(i))
            .map(|(_, o)| o.clone())
            .collect(),
    )
}

/// The first field of `o` a cluster refuses.
fn check(o: &Object) -> Result<(), (String, String)> {
    // apimachinery `ValidateObjectMeta`: a namespace is a DNS-1123 label, a name a DNS-1123
    // subdomain (`NameIsDNSSubdomain`), a Service's a DNS-1035 label (`ValidateServiceName`).
    let meta = o.meta();
    if let Some(ns) = meta.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        if !dns1123_label(ns) {
            return Err((
                "metadata.namespace".into(),
                format!("{ns:?} is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)"),
            ));
        }
    }
    let name = &meta.name;
    let name_ok = match o {
        Object::Service(_) => dns1035_label(name),
        _ => name.len() <= 253 && name.split('.').all(dns1123_label),
    };
    if !name_ok {
        return Err((
            "metadata.name".into(),
            format!("{name:?} is not a valid {} name", o.kind()),
        ));
    }
    match o {
        Object::Gateway(g) => {
            for (i, l) in g.spec.listeners.iter().enumerate() {
                if let Some(h) = &l.hostname {
                    gateway_hostname(h)
                        .map_err(|m| (format!("spec.listeners[{i}].hostname"), m))?;
                }
            }
        }
        Object::HttpRoute(r) => hostnames(&r.spec.hostnames)?,
        Object::TlsRoute(r) => hostnames(&r.spec.hostnames)?,
        // Pod status and EndpointSlice addresses: IP addresses (`ValidatePodStatusUpdate`,
        // `ValidateEndpointSlice` for the IPv4 and IPv6 address types).
        Object::Pod(p) => {
            if let Some(ip) = p.status.pod_ip.as_deref().filter(|ip| !ip.is_empty()) {
                ip_address(ip).map_err(|m| ("status.podIP".to_owned(), m))?;
            }
            for (i, ip) in p.status.pod_ips.iter().enumerate() {
                ip_address(&ip.ip).map_err(|m| (format!("status.podIPs[{i}].ip"), m))?;
            }
        }
        Object::EndpointSlice(e) if matches!(e.address_type.as_str(), "IPv4" | "IPv6") => {
            for (i, ep) in e.endpoints.iter().enumerate() {
                for (j, a) in ep.addresses.iter().enumerate() {
                    ip_address(a).map_err(|m| (format!("endpoints[{i}].addresses[{j}]"), m))?;
                }
            }
        }
        Object::ServiceEntry(se) => {
            for (i, h) in se.spec.hosts.iter().enumerate() {
                router_host(h).map_err(|m| (format!("spec.hosts[{i}]"), m))?;
            }
        }
        Object::IstioGateway(g) => {
            for (si, server) in g.spec.servers.iter().enumerate() {
                for (hi, h) in server.hosts.iter().enumerate() {
                    // `[namespace/]host`.
                    let host = h.rsplit_once('/').map_or(h.as_str(), |(_, host)| host);
                    router_host(host)
                        .map_err(|m| (format!("spec.servers[{si}].hosts[{hi}]"), m))?;
                }
            }
        }
        Object::VirtualService(vs) => {
            for (i, h) in vs.spec.hosts.iter().enumerate() {
                router_host(h).map_err(|m| (format!("spec.hosts[{i}]"), m))?;
            }
            for (i, route) in vs.spec.http.iter().enumerate() {
                let Some(rr) = route
                    .rewrite
                    .as_ref()
                    .and_then(|r| r.uri_regex_rewrite.as_ref())
                else {
                    continue;
                };
                let field = format!("spec.http[{i}].rewrite.uriRegexRewrite");
                if rr.regex.is_empty() || rr.rewrite.is_empty() {
                    return Err((field, "both match and rewrite are required".into()));
                }
                portico_core::matching::re2::compile(&rr.regex).map_err(|e| {
                    (
                        format!("{field}.match"),
                        format!("{:?} does not compile: {e}", rr.regex),
                    )
                })?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A DNS-1123 label: lower-case letters, digits and `-`, starting and ending with a letter or
/// digit, at most 63 characters.
pub(crate) fn dns1123_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn ip_address(a: &str) -> Result<(), String> {
    a.parse::<std::net::IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("{a:?} is not an IP address"))
}

/// An Istio host as the router serves it (one trailing dot ignored).
fn router_host(h: &str) -> Result<(), String> {
    let h = h.strip_suffix('.').unwrap_or(h);
    portico_core::routing::router::validate_host_pattern(h)?;
    if h != "*" && h.split('.').any(str::is_empty) {
        return Err(format!("{h:?} has an empty label"));
    }
    Ok(())
}

/// A DNS-1035 label: a DNS-1123 label starting with a letter.
pub(crate) fn dns1035_label(l: &str) -> bool {
    dns1123_label(l) && l.starts_with(|c: char| c.is_ascii_lowercase())
}

fn hostnames(names: &[String]) -> Result<(), (String, String)> {
    for (i, h) in names.iter().enumerate() {
        gateway_hostname(h).map_err(|m| (format!("spec.hostnames[{i}]"), m))?;
    }
    Ok(())
}

/// The Gateway API `Hostname` type: at most 253 characters, lower-case DNS labels, optionally
/// `*.` first.
fn gateway_hostname(h: &str) -> Result<(), String> {
    let name = h.strip_prefix("*.").unwrap_or(h);
    if h.is_empty() || h.len() > 253 || !name.split('.').all(dns1123_label) {
        return Err(format!(
            "{h:?} is not a hostname (lower-case DNS labels, optionally *. first; at most 253 \
             characters)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::gateway_hostname;

    #[test]
    fn gateway_hostnames_as_the_crd_pattern() {
        for ok in ["a", "foo.example.com", "*.example.com", "a-b.c1", "1.2.3"] {
            assert!(gateway_hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "*",
            "Foo.com",
            "a..b",
            "-a.com",
            "a-.com",
            "*.*.a",
            "a.*.b",
            "foo_bar.com",
            "a.com.",
            "*a.com",
        ] {
            assert!(gateway_hostname(bad).is_err(), "{bad}");
        }
        assert!(gateway_hostname(&"a".repeat(254)).is_err());
    }
}
