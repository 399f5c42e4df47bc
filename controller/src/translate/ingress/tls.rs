//! The certificates of port 443 as ingress-nginx picks them.
//!
//! ingress-nginx (`certificate.lua`, `controller.go` `createServers` / `extractTLSSecretName`):
//! every Ingress rule host is served on 443. A host's certificate is set by the first Ingress
//! (oldest first) that names the host in a rule and has a `tls` section: the Secret of the `tls`
//! entry naming the host, else of the first entry whose certificate covers it by SAN; a Secret
//! that is missing, unreadable, or does not cover the host sets the default certificate, and that
//! pins the host. An SNI is looked up exactly, then with its first label replaced by `*` (one
//! level only), among those hosts; anything else, and a connection without SNI, gets the default
//! certificate (`--default-ssl-certificate`: PorticoConfig `defaultCertificate`), else the
//! generated fake one. Expired certificates are served.

use std::collections::{BTreeMap, BTreeSet};

use portico_core::config::ClientCertificate;
use portico_core::tls::select::{
    Chain, ChainAction, ClientValidation, Family, PeerHeader, SniPattern, Terminate, TlsVersion,
};

use super::super::diagnostics::{ErrorKind, TranslateError};
use super::super::tls::{Certificates, SecretProblem, TlsPorts};
use crate::model::portico::PorticoConfig;
use crate::model::{namespace_of, Ingress, Object, Resource};
use crate::snapshot::SdsSecret;

/// The HTTPS port.
pub(crate) const PORT: u16 = 443;
const FAMILY: Family = Family::IngressNginx;

/// ingress-nginx's default `ssl-ciphers` (config.go), without its two `DHE-RSA-*` suites, which
/// Envoy's BoringSSL does not implement. TLS 1.3 suites are not configurable, as in nginx.
const NGINX_CIPHERS: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

/// ingress-nginx's defaults: `ssl-protocols: TLSv1.2 TLSv1.3` and its `ssl-ciphers`.
fn terminate(certificate: portico_core::tls::select::Certificate) -> ChainAction {
    ChainAction::Terminate(Terminate {
        certificate,
        min_version: TlsVersion::V1_2,
        max_version: TlsVersion::V1_3,
        cipher_suites: NGINX_CIPHERS.iter().map(|c| (*c).to_owned()).collect(),
        client: None,
        request_headers: Vec::new(),
    })
}

/// How a Secret problem is reported: a missing Secret is a missing reference, anything else an
/// invalid setting; both keep the Ingress.
pub(crate) fn problem_kind(problem: &SecretProblem, fallback: &str) -> ErrorKind {
    match problem {
        SecretProblem::Missing(_) => ErrorKind::MissingReference(format!("{problem}; {fallback}")),
        _ => ErrorKind::InvalidSetting(format!("{problem}; {fallback}")),
    }
}

/// The PorticoConfig that applies: the first by `namespace/name`; the others are reported.
fn portico_config<'a>(
    objects: &'a [Object],
    errors: &mut Vec<TranslateError>,
) -> Option<&'a PorticoConfig> {
    let configs = crate::translate::common::portico_configs(objects);
    let first = configs.first().copied()?;
    for other in configs.iter().skip(1) {
        errors.push(TranslateError {
            object: other.object_ref(),
            field: String::new(),
            kind: ErrorKind::Ignored(format!(
                "only one PorticoConfig applies; {} is used",
                first.object_ref()
            )),
        });
    }
    Some(first)
}

/// A server host's certificate entry (ingress-nginx's `certificate_servers`).
enum Entry {
    /// The Secret's certificate: its chain, and the Secret (`namespace`, `name`).
    Secret(usize, (String, String)),
    /// The default certificate, set explicitly: it pins the host (a later Ingress cannot set
    /// another), and makes plain HTTP to it redirect.
    Default,
}

/// ingress-nginx's `extractTLSSecretName`: the `tls` entry whose `hosts` name `host`
/// (case-insensitively, even with an empty `secretName`), else the first entry whose Secret's
/// certificate covers `host` by a DNS SAN; `None` when neither.
fn tls_secret_name(
    host: &str,
    ingress: &Ingress,
    certs: &mut Certificates<'_>,
) -> Option<(usize, String)> {
    for (ti, t) in ingress.spec.tls.iter().enumerate() {
        if t.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Some((ti, t.secret_name.clone().unwrap_or_default()));
        }
    }
    let ns = namespace_of(&ingress.metadata);
    for (ti, t) in ingress.spec.tls.iter().enumerate() {
        let Some(secret) = t.secret_name.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        if certs
            .key_pair(ns, secret)
            .is_ok_and(|p| p.covers_by_san(host))
        {
            return Some((ti, secret.to_owned()));
        }
    }
    None
}

/// Fills port 443's table from the Ingresses (oldest first, canaries excluded) and the
/// PorticoConfig; returns the hosts that have a certificate entry (plain HTTP to them redirects
/// to HTTPS).
pub(crate) fn certificates(
    objects: &[Object],
    index: &super::super::common::Index<'_>,
    ingresses: &[&Ingress],
    certs: &mut Certificates<'_>,
    tls: &mut TlsPorts,
    errors: &mut Vec<TranslateError>,
) -> NginxTls {
    passthrough(ingresses, index, tls, errors);
    // controller.go createServers: the first Ingress (oldest first) with a `tls` section sets a
    // host's certificate; a Secret that cannot serve the host sets the default.
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for ingress in ingresses {
        if ingress.spec.tls.is_empty() {
            continue;
        }
        let ns = namespace_of(&ingress.metadata);
        for rule in &ingress.spec.rules {
            let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) else {
                // The catch-all server `_` always has the default certificate.
                continue;
            };
            let host = host.to_ascii_lowercase();
            if entries.contains_key(&host) {
                continue;
            }
            order.push(host.clone());
            let warn = |errors: &mut Vec<TranslateError>, field: String, kind| {
                errors.push(TranslateError {
                    object: ingress.object_ref(),
                    field,
                    kind,
                })
            };
            let entry = match tls_secret_name(&host, ingress, certs) {
                None => Entry::Default,
                Some((_, secret)) if secret.is_empty() => Entry::Default,
                Some((ti, secret)) => {
                    let field = format!("spec.tls[{ti}].secretName");
                    match certs.certificate(ns, &secret, false) {
                        Err(p) => {
                            warn(
                                errors,
                                field,
                                problem_kind(
                                    &p,
                                    &format!("{host} is served with the default certificate"),
                                ),
                            );
                            Entry::Default
                        }
                        Ok((_, pair)) if !pair.covers(&host) => {
                            warn(
                                errors,
                                field,
                                ErrorKind::InvalidSetting(format!(
                                    "the certificate of Secret {ns}/{secret} is not valid for {host} (names: {}); {host} is served with the default certificate",
                                    pair.names().join(", ")
                                )),
                            );
                            Entry::Default
                        }
                        Ok((certificate, pair)) => {
                            if let Some(kind) = certs.expiry(&pair, &format!("{ns}/{secret}")) {
                                warn(errors, field.clone(), kind);
                            }
                            let chain = tls.chain(
                                PORT,
                                FAMILY,
                                Chain {
                                    name: format!("cert-{}", certificate.sds),
                                    origin: format!("{} spec.tls[{ti}]", ingress.object_ref()),
                                    action: terminate(certificate),
                                    hosts: Vec::new(),
                                    host_check: None,
                                },
                            );
                            Entry::Secret(chain, (ns.to_owned(), secret.clone()))
                        }
                    }
                }
            };
            entries.insert(host, entry);
        }
    }
    // The default: PorticoConfig's defaultCertificate, else the fake certificate.
    let config = portico_config(objects, errors);
    let mut default = None;
    let mut default_secret = None;
    if let Some((c, r)) = config.and_then(|c| c.spec.default_certificate.as_ref().map(|r| (c, r))) {
        let ns = r.namespace.as_deref().unwrap_or(namespace_of(&c.metadata));
        match certs.certificate(ns, &r.name, true) {
            Ok((certificate, _)) => {
                default = Some(certificate);
                default_secret = Some((ns.to_owned(), r.name.clone()));
            }
            Err(p) => errors.push(TranslateError {
                object: c.object_ref(),
                field: "spec.defaultCertificate".into(),
                kind: problem_kind(&p, "the fake certificate is the default"),
            }),
        }
    }
    let fake_allowed = config.and_then(|c| c.spec.fake_certificate) != Some(false);
    let default = match default {
        Some(c) => Some(c),
        None if fake_allowed => certs.fake(),
        None => None,
    };
    // lua_ingress.lua header(): every HTTPS response from an Ingress location gets HSTS
    // (`hsts: true`, max-age 31536000, includeSubDomains), replacing the upstream's.
    tls.table(PORT, FAMILY).response_headers = vec![(
        "strict-transport-security".into(),
        "max-age=31536000; includeSubDomains".into(),
    )];
    let default_chain = default.map(|certificate| {
        let chain = tls.chain(
            PORT,
            FAMILY,
            Chain {
                name: format!("default-{}", certificate.sds),
                origin: "the default certificate".into(),
                action: terminate(certificate),
                hosts: Vec::new(),
                host_check: None,
            },
        );
        tls.default_chain(PORT, FAMILY, chain);
        chain
    });
    let chain_of = |host: &str| match entries.get(host) {
        Some(Entry::Secret(chain, _)) => Some(*chain),
        Some(Entry::Default) => default_chain,
        None => None,
    };
    // Client certificates: the server for the SNI asks for one (nginx's `ssl_verify_client` is
    // per server): the chain its host would get, with the host's CA.
    let auth = client_auth(ingresses, certs, errors);
    let mut client_chains: BTreeMap<String, usize> = BTreeMap::new();
    for (host, (rules, validation, pass_certificate)) in &auth {
        let Some(validation) = validation else {
            continue;
        };
        let wildcard = host.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        let base = chain_of(host)
            .or_else(|| wildcard.as_deref().and_then(chain_of))
            .or(default_chain);
        let Some(base) = base.and_then(|i| tls.table(PORT, FAMILY).chains.get(i).cloned()) else {
            continue;
        };
        let ChainAction::Terminate(mut t) = base.action else {
            continue;
        };
        t.client = Some(validation.clone());
        // nginx.tmpl: `proxy_set_header ssl-client-issuer-dn $ssl_client_i_dn` (and
        // `ssl-client-cert $ssl_client_escaped_cert` with pass-certificate-to-upstream).
        if rules.headers {
            t.request_headers
                .push(("ssl-client-issuer-dn".into(), PeerHeader::Issuer));
            if *pass_certificate {
                t.request_headers
                    .push(("ssl-client-cert".into(), PeerHeader::Certificate));
            }
        }
        let chain = tls.chain(
            PORT,
            FAMILY,
            Chain {
                name: format!(
                    "{}-client-{}{}{}",
                    base.name,
                    validation.ca_sds,
                    if validation.accept_untrusted {
                        "-untrusted"
                    } else {
                        ""
                    },
                    if *pass_certificate { "-pass" } else { "" }
                ),
                origin: format!("{} with auth-tls for {host}", base.origin),
                action: ChainAction::Terminate(t),
                hosts: Vec::new(),
                host_check: None,
            },
        );
        client_chains.insert(host.clone(), chain);
    }
    // certificate.lua: the SNI exactly, then with its first label replaced by `*`.
    for host in order.iter().chain(client_chains.keys()) {
        let chain = client_chains.get(host).copied().or_else(|| chain_of(host));
        if let (Some(chain), Some(pattern)) = (chain, SniPattern::parse(host, true)) {
            tls.rule(PORT, FAMILY, pattern, chain);
        }
    }
    // A host pinned to the default with no default to serve gets no rule: refused, as nginx
    // without a certificate would fail the handshake.
    NginxTls {
        secrets: entries
            .iter()
            .map(|(host, e)| match e {
                Entry::Secret(_, secret) => (host.clone(), Some(secret.clone())),
                Entry::Default => (host.clone(), None),
            })
            .collect(),
        default_secret,
        redirects: entries.into_keys().collect(),
        client_certificates: auth.into_iter().map(|(h, (c, _, _))| (h, c)).collect(),
    }
}

/// What port 443 gives the Ingresses' routing.
pub(crate) struct NginxTls {
    /// Hosts with a certificate entry: plain HTTP to them redirects ([`has_entry`]).
    pub(crate) redirects: BTreeSet<String>,
    /// Each host with a certificate entry → the Secret (`namespace`, `name`) that serves it, or
    /// `None` for the default certificate.
    pub(crate) secrets: BTreeMap<String, Option<(String, String)>>,
    /// The PorticoConfig's `defaultCertificate` Secret, when it serves (else the fake
    /// certificate, or none, is the default).
    pub(crate) default_secret: Option<(String, String)>,
    /// Each host's client certificate rules (`auth-tls-*`).
    pub(crate) client_certificates: BTreeMap<String, ClientCertificate>,
}

/// The `auth-tls-*` rules of each host, from the first Ingress (oldest first) naming the host
/// with an `auth-tls-secret` (controller.go: the first with a CA wins): the HTTP rules, and the
/// client validation its TLS chain asks for (none: no CA, or `verify-client: off`). A secret that
/// is not `namespace/name`, in another namespace, or missing makes every request to the host 403
/// (`AuthTLSError`); a Secret without `ca.crt` turns client certificates off, silently.
fn client_auth(
    ingresses: &[&Ingress],
    certs: &mut Certificates<'_>,
    errors: &mut Vec<TranslateError>,
) -> BTreeMap<String, (ClientCertificate, Option<ClientValidation>, bool)> {
    let mut out = BTreeMap::new();
    for ingress in ingresses {
        let Some(a) = super::nginx::parse(&ingress.metadata.annotations)
            .0
            .auth_tls
        else {
            continue;
        };
        let ns = namespace_of(&ingress.metadata);
        let field = "metadata.annotations[nginx.ingress.kubernetes.io/auth-tls-secret]".to_owned();
        let mut report = |kind| {
            errors.push(TranslateError {
                object: ingress.object_ref(),
                field: field.clone(),
                kind,
            })
        };
        let mut rules = ClientCertificate {
            denied: false,
            required: a.verify == "on",
            error_page: a.error_page.clone(),
            match_subject: a.match_cn.clone(),
            headers: false,
        };
        let mut validation = None;
        match a.secret.split_once('/') {
            Some((sns, name)) if !sns.is_empty() && !name.is_empty() && !name.contains('/') => {
                if sns != ns {
                    report(ErrorKind::InvalidSetting(format!(
                        "Secret {sns}/{name} is in another namespace than the Ingress; its hosts answer 403"
                    )));
                    rules.denied = true;
                } else {
                    match certs.value_of(sns, name, "ca.crt") {
                        Ok(ca) => {
                            let ca_sds = format!("ca-{sns}-{name}");
                            certs.sds.insert(ca_sds.clone(), SdsSecret::TrustedCa(ca));
                            rules.headers = true;
                            validation = (a.verify != "off").then(|| ClientValidation {
                                ca_sds,
                                // nginx answers 400 over HTTP; the handshake only asks.
                                required: false,
                                subject_alt_names: Vec::new(),
                                accept_untrusted: a.verify == "optional_no_ca",
                                max_depth: Some(a.depth),
                            });
                        }
                        Err(SecretProblem::MissingKey { .. }) => {
                            // controller.go: no CA file, no client certificates.
                            rules.required = false;
                        }
                        Err(p) => {
                            report(problem_kind(&p, "its hosts answer 403"));
                            rules.denied = true;
                        }
                    }
                }
            }
            _ => {
                report(ErrorKind::InvalidSetting(format!(
                    "{:?} is not namespace/name; its hosts answer 403",
                    a.secret
                )));
                rules.denied = true;
            }
        }
        for rule in &ingress.spec.rules {
            let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) else {
                continue;
            };
            out.entry(host.to_ascii_lowercase())
                .or_insert_with(|| (rules.clone(), validation.clone(), a.pass_certificate));
        }
    }
    out
}

/// Where an `ssl-passthrough` rule passes its host's TLS: the Service of its `/` path and that
/// Service's port named by number or name (`None`: no such path, Service or port).
pub(crate) fn passthrough_backend(
    rule: &crate::model::IngressRule,
    ns: &str,
    index: &super::super::common::Index<'_>,
) -> Option<(String, u16)> {
    let svc = rule
        .http
        .as_ref()
        .and_then(|h| {
            h.paths
                .iter()
                .find(|p| p.path.as_deref().unwrap_or("/") == "/")
        })
        .and_then(|p| p.backend.service.as_ref())?;
    let service = index.services.get(&(ns, svc.name.as_str()))?;
    let port = service.spec.ports.iter().find(|sp| match svc.port.number {
        Some(n) => n == sp.port,
        None => svc.port.name.is_some() && svc.port.name == sp.name,
    })?;
    Some((svc.name.clone(), port.port))
}

/// `ssl-passthrough` (ingress-nginx with `--enable-ssl-passthrough`, `pkg/tcpproxy`,
/// `controller.go` getConfiguration): its Go proxy takes port 443 and matches the SNI exactly
/// against the passthrough hosts; a match goes untouched to the host's `/` path Service, every
/// other connection on to nginx's own TLS (the certificate rules). Exact rules come first, and
/// these are added before any certificate's, so a passthrough host never terminates.
fn passthrough(
    ingresses: &[&Ingress],
    index: &super::super::common::Index<'_>,
    tls: &mut TlsPorts,
    errors: &mut Vec<TranslateError>,
) {
    use portico_core::tls::select::PassthroughBackend;
    for ingress in ingresses {
        if !super::nginx::parse(&ingress.metadata.annotations)
            .0
            .ssl_passthrough
        {
            continue;
        }
        let ns = namespace_of(&ingress.metadata);
        for (ri, rule) in ingress.spec.rules.iter().enumerate() {
            let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) else {
                continue;
            };
            let Some((service, port)) = passthrough_backend(rule, ns, index) else {
                errors.push(TranslateError {
                    object: ingress.object_ref(),
                    field: format!("spec.rules[{ri}]"),
                    kind: ErrorKind::InvalidSetting(format!(
                        "ssl-passthrough needs a `/` path to an existing Service port; {host} is not passed through"
                    )),
                });
                continue;
            };
            let chain = tls.chain(
                PORT,
                FAMILY,
                Chain {
                    name: format!("passthrough-{ns}-{service}-{port}"),
                    origin: format!("{} ssl-passthrough", ingress.object_ref()),
                    action: ChainAction::Passthrough {
                        backends: vec![PassthroughBackend {
                            backend: super::super::common::backend_key(ns, &service, port),
                            cluster: super::super::common::cluster_name(ns, &service, port),
                            weight: 1,
                        }],
                    },
                    hosts: Vec::new(),
                    host_check: None,
                },
            );
            if let Some(pattern) = SniPattern::parse(host, true) {
                tls.rule(PORT, FAMILY, pattern, chain);
            }
        }
    }
}

/// Whether plain HTTP to `host` redirects: `certificate.configured_for_current_request` looks
/// the Host up exactly, then with its first label replaced by `*`.
pub(crate) fn has_entry(entries: &BTreeSet<String>, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    entries.contains(&host)
        || host
            .split_once('.')
            .is_some_and(|(_, rest)| entries.contains(&format!("*.{rest}")))
}
