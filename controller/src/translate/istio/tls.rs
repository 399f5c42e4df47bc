//! Istio Gateway servers that terminate TLS: a filter chain per server, chosen by SNI.
//!
//! From pilot (`pilot/pkg/model/gateway.go`, `pilot/pkg/networking/core/listener.go` and
//! `gateway.go`, `pilot/pkg/credentials/kube/secrets.go`):
//! - A server's hosts lose their `namespace/` part and become the chain's SNI names (`*.x` any
//!   depth); a `*` host makes the chain a catch-all. There is no default chain: a connection
//!   without SNI, or with an SNI no server names, is closed unless a `*` server exists.
//! - A server whose hosts repeat an earlier server's on the same port is dropped whole (the
//!   oldest Gateway wins: creation time, name, namespace). Portico compares hosts after
//!   removing the namespace, so two `*` servers never reach Envoy (Istio's own check compares
//!   `ns/` too and lets Envoy reject the listener).
//! - `SIMPLE`, `MUTUAL`, `OPTIONAL_MUTUAL` terminate; `credentialName` is a Secret in the
//!   Gateway's namespace, read as `cert`/`key`, else `tls.crt`/`tls.key`, its type unchecked;
//!   the client CA of the mutual modes is the Secret `<credentialName>-cacert`, else the
//!   credential itself, key `cacert`, else `ca.crt`. A missing or unreadable credential leaves
//!   the chain in place with its handshakes failing: other servers keep serving.
//! - Versions default to TLS 1.2–1.3 (`TLS_AUTO`: Envoy's defaults); `cipherSuites` as given.
//! - HTTP and HTTPS servers cannot share a port.

use std::collections::{BTreeMap, BTreeSet};

use portico_core::tls::select::{
    Chain, ChainAction, ClientValidation, Family, HostCheck, SniPattern, Terminate, TlsVersion,
};

use super::super::diagnostics::{ErrorKind, TranslateError};
use super::super::tls::{Certificates, SecretProblem, TlsPorts};
use crate::model::istio::{IstioGateway, ServerTls};
use crate::model::{namespace_of, Resource};
use crate::snapshot::SdsSecret;

const FAMILY: Family = Family::Istio;

/// Which servers Portico serves, and which of them terminate TLS.
#[derive(Debug, Default)]
pub(crate) struct Serving {
    /// `(namespace, name, server index)` of HTTP servers.
    http: BTreeSet<(String, String, usize)>,
    /// … and of servers that terminate TLS.
    tls: BTreeSet<(String, String, usize)>,
    /// PASSTHROUGH servers, oldest Gateway first: (namespace, name, server index, port, hosts).
    pub(crate) passthrough: Vec<(String, String, usize, u16, Vec<String>)>,
}

impl Serving {
    fn key(gw: &IstioGateway, si: usize) -> (String, String, usize) {
        (
            namespace_of(&gw.metadata).to_owned(),
            gw.metadata.name.clone(),
            si,
        )
    }

    /// Whether the server routes HTTP (plain, or after its TLS handshake).
    pub(crate) fn serves(&self, gw: &IstioGateway, si: usize) -> bool {
        let k = Self::key(gw, si);
        self.http.contains(&k) || self.tls.contains(&k)
    }

    /// Whether the server terminates TLS.
    pub(crate) fn is_tls(&self, gw: &IstioGateway, si: usize) -> bool {
        self.tls.contains(&Self::key(gw, si))
    }
}

/// A server's host without its `namespace/` part, lower-cased (`*/*` and `ns/*` are `*`).
fn sni_host(host: &str) -> String {
    host.split_once('/')
        .map_or(host, |(_, h)| h)
        .to_ascii_lowercase()
}

/// What the mode of a server's `tls` makes of it.
enum Mode {
    Terminate { mutual: Option<bool> },
    Unsupported(String),
}

fn mode(tls: Option<&ServerTls>) -> Mode {
    let mode = tls
        .and_then(|t| t.mode.clone())
        .unwrap_or_else(|| "PASSTHROUGH".into())
        .to_ascii_uppercase();
    match mode.as_str() {
        "SIMPLE" => Mode::Terminate { mutual: None },
        "MUTUAL" => Mode::Terminate { mutual: Some(true) },
        "OPTIONAL_MUTUAL" => Mode::Terminate {
            mutual: Some(false),
        },
        other => Mode::Unsupported(other.to_owned()),
    }
}

/// Reads a key pair the way Istio does: `cert`/`key` first, then `tls.crt`/`tls.key`.
fn istio_key_pair(
    certs: &mut Certificates<'_>,
    ns: &str,
    name: &str,
) -> Result<
    (
        portico_core::tls::select::Certificate,
        std::rc::Rc<super::super::tls::KeyPair>,
    ),
    SecretProblem,
> {
    match certs.certificate_with_keys(ns, name, "cert", "key") {
        Err(SecretProblem::MissingKey { .. }) => certs.certificate(ns, name, false),
        other => other,
    }
}

/// The client CA of a mutual server: Secret `<credential>-cacert`, else the credential; key
/// `cacert`, else `ca.crt`.
fn client_ca(
    certs: &mut Certificates<'_>,
    ns: &str,
    tls: &ServerTls,
    credential: &str,
) -> Result<String, String> {
    let named = tls
        .ca_cert_credential_name
        .clone()
        .unwrap_or_else(|| format!("{credential}-cacert"));
    for secret in [named.as_str(), credential] {
        for key in ["cacert", "ca.crt"] {
            if let Ok(pem) = certs.value_of(ns, secret, key) {
                let sds = format!("ca-{ns}-{secret}");
                certs.sds.insert(sds.clone(), SdsSecret::TrustedCa(pem));
                return Ok(sds);
            }
        }
    }
    Err(format!(
        "no client CA: neither Secret {ns}/{named} nor {ns}/{credential} has a cacert or ca.crt"
    ))
}

/// Builds the TLS chains of every Gateway's servers (oldest Gateway first) and reports the
/// servers Portico does not serve.
pub(crate) fn servers(
    gateways: &[&IstioGateway],
    certs: &mut Certificates<'_>,
    tls_ports: &mut TlsPorts,
    errors: &mut Vec<TranslateError>,
) -> Serving {
    let mut ordered: Vec<&IstioGateway> = gateways.to_vec();
    ordered.sort_by_key(|g| {
        (
            g.metadata.creation_timestamp.clone().unwrap_or_default(),
            g.metadata.name.clone(),
            namespace_of(&g.metadata).to_owned(),
        )
    });
    let mut serving = Serving::default();
    // port → (plain HTTP?, SNI hosts taken so far)
    let mut ports: BTreeMap<u16, (bool, BTreeSet<String>)> = BTreeMap::new();
    for gw in ordered {
        let gw_ns = namespace_of(&gw.metadata);
        for (si, server) in gw.spec.servers.iter().enumerate() {
            let at = |field: &str| format!("spec.servers[{si}]{field}");
            let mut report = |field: &str, kind| {
                errors.push(TranslateError {
                    object: gw.object_ref(),
                    field: at(field),
                    kind,
                })
            };
            let protocol = server.port.protocol.to_ascii_uppercase();
            let plain = matches!(protocol.as_str(), "HTTP" | "HTTP2");
            let entry = ports
                .entry(server.port.number)
                .or_insert((plain, BTreeSet::new()));
            if (plain || protocol == "HTTPS") && entry.0 != plain {
                report(
                    ".port",
                    ErrorKind::InvalidSetting(format!(
                        "port {} already has {} servers: HTTP and HTTPS cannot share a port; this server is not served",
                        server.port.number,
                        if entry.0 { "HTTP" } else { "HTTPS" }
                    )),
                );
                continue;
            }
            if plain {
                serving.http.insert(Serving::key(gw, si));
                continue;
            }
            let passthrough = server
                .tls
                .as_ref()
                .and_then(|t| t.mode.as_deref())
                .is_none_or(|m| m.eq_ignore_ascii_case("PASSTHROUGH"));
            if (protocol == "TLS" || protocol == "HTTPS") && server.tls.is_some() && passthrough {
                // Chains come from the VirtualServices' `tls` routes (`passthrough_chains`).
                serving.passthrough.push((
                    gw_ns.to_owned(),
                    gw.metadata.name.clone(),
                    si,
                    server.port.number,
                    server.hosts.clone(),
                ));
                continue;
            }
            if protocol != "HTTPS" {
                report(
                    ".port.protocol",
                    ErrorKind::Ignored(format!(
                        "{} servers are not supported yet (HTTP, HTTPS, and TLS PASSTHROUGH); this server is not served",
                        server.port.protocol
                    )),
                );
                continue;
            }
            let Some(tls) = server.tls.as_ref() else {
                report(
                    ".tls",
                    ErrorKind::InvalidSetting(
                        "an HTTPS server must have TLS settings; this server is not served".into(),
                    ),
                );
                continue;
            };
            let mutual = match mode(Some(tls)) {
                Mode::Terminate { mutual } => mutual,
                Mode::Unsupported(m) => {
                    report(
                        ".tls.mode",
                        ErrorKind::Ignored(format!(
                            "{m} is not supported yet on HTTPS servers (SIMPLE, MUTUAL, OPTIONAL_MUTUAL); this server is not served"
                        )),
                    );
                    continue;
                }
            };
            let hosts: Vec<String> = server.hosts.iter().map(|h| sni_host(h)).collect();
            if let Some(dup) = hosts.iter().find(|h| entry.1.contains(*h)) {
                report(
                    ".hosts",
                    ErrorKind::InvalidSetting(format!(
                        "host {dup} is already served by another server on port {}; this server is dropped (the oldest Gateway wins)",
                        server.port.number
                    )),
                );
                continue;
            }
            entry.1.extend(hosts.iter().cloned());
            let action = terminate(tls, mutual, gw_ns, certs, &mut report);
            let chain = tls_ports.chain(
                server.port.number,
                FAMILY,
                Chain {
                    name: format!("istio-{gw_ns}-{}-{si}", gw.metadata.name),
                    origin: format!("{} {}", gw.object_ref(), at("")),
                    action,
                    hosts: hosts.clone(),
                    host_check: Some(HostCheck::Server),
                },
            );
            for h in &hosts {
                match SniPattern::parse(h, false) {
                    Some(pattern) => {
                        tls_ports.rule(server.port.number, FAMILY, pattern, chain);
                    }
                    None => {
                        tls_ports.default_chain(server.port.number, FAMILY, chain);
                    }
                }
            }
            // The port exists even when no rule or default names a chain.
            tls_ports.table(server.port.number, FAMILY);
            serving.tls.insert(Serving::key(gw, si));
        }
    }
    serving
}

/// The chain action of a terminating server: its certificate and client validation, or a
/// refusal naming what is missing.
fn terminate(
    tls: &ServerTls,
    mutual: Option<bool>,
    gw_ns: &str,
    certs: &mut Certificates<'_>,
    report: &mut dyn FnMut(&str, ErrorKind),
) -> ChainAction {
    let refuse = |reason: String| ChainAction::Refuse { reason };
    let credential = tls
        .credential_name
        .clone()
        .or_else(|| tls.credential_names.first().cloned());
    // The Gateway is kept (its other servers serve), so these are warnings: an error would make
    // the reconciler serve the Gateway's last good version instead.
    let Some(credential) = credential else {
        if tls.server_certificate.is_some() {
            let reason =
                "serverCertificate/privateKey files are not supported (use credentialName)";
            report(
                ".tls.serverCertificate",
                ErrorKind::Ignored(format!("{reason}; the server's handshakes fail")),
            );
            return refuse(reason.into());
        }
        report(
            ".tls.credentialName",
            ErrorKind::InvalidSetting("required; the server's handshakes fail".into()),
        );
        return refuse("no credentialName".into());
    };
    // `kubernetes://name` and `kubernetes://ns/name` name the Secret too.
    let plain = credential
        .strip_prefix("kubernetes://")
        .unwrap_or(&credential);
    let (ns, name) = plain.split_once('/').unwrap_or((gw_ns, plain));
    if ns != gw_ns {
        let reason = format!("Secret {ns}/{name} is not in the Gateway's namespace {gw_ns}");
        report(
            ".tls.credentialName",
            ErrorKind::InvalidSetting(format!("{reason}; the server's handshakes fail")),
        );
        return refuse(reason);
    }
    let certificate = match istio_key_pair(certs, ns, name) {
        Ok((c, pair)) => {
            if let Some(kind) = certs.expiry(&pair, &format!("{ns}/{name}")) {
                report(".tls.credentialName", kind);
            }
            c
        }
        Err(p) => {
            let kind = match p {
                SecretProblem::Missing(_) => {
                    ErrorKind::MissingReference(format!("{p}; the server's handshakes fail"))
                }
                _ => ErrorKind::InvalidSetting(format!("{p}; the server's handshakes fail")),
            };
            report(".tls.credentialName", kind);
            return refuse(p.to_string());
        }
    };
    let version =
        |v: &Option<String>, default| v.as_deref().and_then(TlsVersion::parse).unwrap_or(default);
    let client = match mutual {
        None => None,
        Some(required) => match client_ca(certs, ns, tls, name) {
            Ok(ca_sds) => Some(ClientValidation {
                ca_sds,
                required,
                subject_alt_names: tls.subject_alt_names.clone(),
                accept_untrusted: false,
                max_depth: None,
            }),
            Err(reason) => {
                report(
                    ".tls.credentialName",
                    ErrorKind::MissingReference(format!("{reason}; the server's handshakes fail")),
                );
                return refuse(reason);
            }
        },
    };
    ChainAction::Terminate(Terminate {
        certificate,
        min_version: version(&tls.min_protocol_version, TlsVersion::V1_2),
        max_version: version(&tls.max_protocol_version, TlsVersion::V1_3),
        cipher_suites: tls.cipher_suites.clone(),
        client,
        request_headers: Vec::new(),
    })
}

/// The chains of PASSTHROUGH servers: for each (oldest Gateway first), the `tls` routes of the
/// VirtualServices bound to its Gateway whose hosts meet the server's, oldest first; each
/// `match` (its `port`, if any, the server's; its `gateways`, if any, naming this Gateway) makes
/// a chain for its `sniHosts` (each a subset of the VirtualService's hosts; `*` the catch-all);
/// an SNI name an earlier rule took is skipped. Destinations are weighted (a lone one takes
/// everything; weight 0 never).
pub(crate) fn passthrough_chains(
    ctx: &super::routes::Ctx<'_>,
    serving: &Serving,
    services: &[&crate::model::istio::VirtualService],
    tls_ports: &mut TlsPorts,
    backends: &mut std::collections::BTreeMap<String, portico_core::config::Backend>,
    errors: &mut Vec<TranslateError>,
) {
    use portico_core::tls::select::PassthroughBackend;
    for (gw_ns, gw_name, _si, port, server_hosts) in &serving.passthrough {
        for vs in services {
            let vs_ns = namespace_of(&vs.metadata);
            let binds = vs.spec.gateways.iter().any(|g| {
                let (ns, name) = g.split_once('/').unwrap_or((vs_ns, g));
                ns == gw_ns && name == gw_name
            });
            let vs_hosts: Vec<String> = vs
                .spec
                .hosts
                .iter()
                .map(|h| super::routes::fqdn_of_short_name(&h.to_ascii_lowercase(), vs_ns))
                .collect();
            let meets = server_hosts.iter().any(|sh| {
                vs_hosts
                    .iter()
                    .any(|vh| super::server_intersection(sh, gw_ns, vs_ns, vh).is_some())
            });
            if !binds || !meets {
                continue;
            }
            for (ti, route) in vs.spec.tls.iter().enumerate() {
                let mut report = |field: String, kind| {
                    errors.push(TranslateError {
                        object: vs.object_ref(),
                        field,
                        kind,
                    })
                };
                let mut picked = Vec::new();
                let mut failed = false;
                let lone = route.route.len() == 1;
                for (di, d) in route.route.iter().enumerate() {
                    match ctx.destination(vs_ns, &d.destination, *port, backends) {
                        Ok(key) => {
                            let cluster = backends
                                .get(&key)
                                .map(|b| b.cluster.clone())
                                .unwrap_or_default();
                            let weight = if lone { 1 } else { d.weight.unwrap_or(0) };
                            picked.push(PassthroughBackend {
                                backend: key,
                                cluster,
                                weight,
                            });
                        }
                        Err(e) => {
                            report(
                                format!("spec.tls[{ti}].route[{di}].destination"),
                                ErrorKind::MissingReference(format!(
                                    "{e}; connections for this route are closed"
                                )),
                            );
                            failed = true;
                        }
                    }
                }
                for (mi, m) in route.matches.iter().enumerate() {
                    if m.port.is_some_and(|p| p != *port) {
                        continue;
                    }
                    if !m.gateways.is_empty()
                        && !m.gateways.iter().any(|g| {
                            let (ns, name) = g.split_once('/').unwrap_or((vs_ns, g));
                            ns == gw_ns && name == gw_name
                        })
                    {
                        continue;
                    }
                    let chain = tls_ports.chain(
                        *port,
                        FAMILY,
                        Chain {
                            name: format!("istio-pt-{vs_ns}-{}-{ti}", vs.metadata.name),
                            origin: format!("{} spec.tls[{ti}]", vs.object_ref()),
                            action: if failed || picked.is_empty() {
                                ChainAction::Refuse {
                                    reason: "no usable destination".into(),
                                }
                            } else {
                                ChainAction::Passthrough {
                                    backends: picked.clone(),
                                }
                            },
                            hosts: Vec::new(),
                            host_check: None,
                        },
                    );
                    for (si, sni) in m.sni_hosts.iter().enumerate() {
                        let sni = sni.to_ascii_lowercase();
                        let subset = vs_hosts.iter().any(|vh| super::subset_of(&sni, vh));
                        if !subset {
                            report(
                                format!("spec.tls[{ti}].match[{mi}].sniHosts[{si}]"),
                                ErrorKind::InvalidSetting(format!(
                                    "SNI host {sni:?} is not a subset of the VirtualService's hosts; it is ignored"
                                )),
                            );
                            continue;
                        }
                        let added = match SniPattern::parse(&sni, false) {
                            Some(pattern) => tls_ports.rule(*port, FAMILY, pattern, chain),
                            None => tls_ports.default_chain(*port, FAMILY, chain),
                        };
                        if !added {
                            report(
                                format!("spec.tls[{ti}].match[{mi}].sniHosts[{si}]"),
                                ErrorKind::InvalidSetting(format!(
                                    "SNI host {sni} already routes on port {port}; the earlier route keeps it"
                                )),
                            );
                        }
                    }
                }
            }
        }
    }
}
