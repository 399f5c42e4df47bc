//! Gateway API HTTPS listeners: a filter chain per listener, chosen by SNI.
//!
//! From the specification (`apis/v1/gateway_types.go`) and its conformance tests: the listener
//! with the most specific hostname takes an SNI (exact, then the wildcard with the most labels,
//! `*.example.com` covering any depth but not `example.com`, then a listener without hostname);
//! with no such listener the connection is closed. `tls.mode` of an HTTPS listener is
//! `Terminate`; `certificateRefs` name Secrets (group `""`, kind `Secret`, the Gateway's namespace
//! by default; another namespace needs a ReferenceGrant from the Gateway's). A listener whose
//! reference is not permitted (`RefNotPermitted`) or not usable (`InvalidCertificateRef`:
//! missing, another kind, malformed) is not programmed: it takes no SNI and no route.

use portico_core::tls::select::{
    Certificate, Chain, ChainAction, Family, HostCheck, SniPattern, Terminate, TlsVersion,
};

use super::super::diagnostics::{ErrorKind, TranslateError};
use super::super::tls::{Certificates, TlsPorts};
use super::rules::granted;

use crate::model::gateway::{Gateway, GatewayListener};
use crate::model::{namespace_of, Object, Resource};

const FAMILY: Family = Family::GatewayApi;

/// Why an HTTPS listener is not programmed: the listener condition that says so (`Accepted`
/// or `ResolvedRefs`, both False), the spec's reason, and the diagnostic.
#[derive(Debug, Clone)]
pub(crate) struct CertificateProblem {
    pub(crate) condition: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) error: TranslateError,
}

/// The certificate of an HTTPS listener, or the problem that leaves it unprogrammed.
// The problem is built once per bad listener; its size does not matter.
#[allow(clippy::result_large_err)]
pub(super) fn certificate(
    objects: &[Object],
    certs: &mut Certificates<'_>,
    g: &Gateway,
    li: usize,
    l: &GatewayListener,
) -> Result<(Certificate, Option<TranslateError>), CertificateProblem> {
    let gw_ns = namespace_of(&g.metadata);
    let object = g.object_ref();
    let fail_on = |condition, reason| {
        let object = object.clone();
        move |field: String, kind| CertificateProblem {
            condition,
            reason,
            error: TranslateError {
                object: object.clone(),
                field,
                kind,
            },
        }
    };
    let invalid_ref = fail_on("ResolvedRefs", "InvalidCertificateRef");
    let tls = l.tls.clone().unwrap_or_default();
    let mode = tls.mode.as_deref().unwrap_or("Terminate");
    if mode != "Terminate" {
        return Err(fail_on("Accepted", "UnsupportedValue")(
            format!("spec.listeners[{li}].tls.mode"),
            ErrorKind::InvalidSetting(format!(
                "{mode}: an HTTPS listener terminates TLS; this listener is not served"
            )),
        ));
    }
    let Some(r) = tls.certificate_refs.first() else {
        return Err(invalid_ref(
            format!("spec.listeners[{li}].tls.certificateRefs"),
            ErrorKind::InvalidSetting("an HTTPS listener needs a certificate (InvalidCertificateRef); this listener is not served".into()),
        ));
    };
    let field = format!("spec.listeners[{li}].tls.certificateRefs[0]");
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err(invalid_ref(
            field,
            ErrorKind::InvalidSetting(format!(
                "{kind} of group {group:?} is not a Secret (InvalidCertificateRef); this listener is not served"
            )),
        ));
    }
    let ns = r.namespace.as_deref().unwrap_or(gw_ns);
    if ns != gw_ns && !granted(objects, ("Gateway", gw_ns), (ns, "Secret", &r.name)) {
        return Err(fail_on("ResolvedRefs", "RefNotPermitted")(
            field,
            ErrorKind::InvalidSetting(format!(
                "no ReferenceGrant in {ns} lets Gateways of {gw_ns} refer to Secret {} (RefNotPermitted); this listener is not served",
                r.name
            )),
        ));
    }
    certs
        .certificate(ns, &r.name, false)
        .map(|(c, pair)| {
            // Served anyway; reported on the listener.
            let expired = certs
                .expiry(&pair, &format!("{ns}/{}", r.name))
                .map(|kind| TranslateError {
                    object: object.clone(),
                    field: field.clone(),
                    kind,
                });
            (c, expired)
        })
        .map_err(|p| {
            invalid_ref(
                field,
                ErrorKind::InvalidSetting(format!(
                    "{p} (InvalidCertificateRef); this listener is not served"
                )),
            )
        })
}

/// Adds an HTTPS listener's chain and SNI rule; an error leaves the listener out.
#[allow(clippy::result_large_err)]
pub(super) fn https_listener(
    objects: &[Object],
    certs: &mut Certificates<'_>,
    tls_ports: &mut TlsPorts,
    g: &Gateway,
    li: usize,
    l: &GatewayListener,
    errors: &mut Vec<TranslateError>,
) -> Result<(), CertificateProblem> {
    let (certificate, expired) = certificate(objects, certs, g, li, l)?;
    errors.extend(expired);
    let host = l
        .hostname
        .clone()
        .unwrap_or_else(|| "*".into())
        .to_ascii_lowercase();
    let chain = tls_ports.chain(
        l.port,
        FAMILY,
        Chain {
            name: format!(
                "gw-{}-{}-{}",
                namespace_of(&g.metadata),
                g.metadata.name,
                l.name
            ),
            origin: format!("{} spec.listeners[{li}] ({})", g.object_ref(), l.name),
            action: ChainAction::Terminate(Terminate {
                certificate,
                min_version: TlsVersion::V1_2,
                max_version: TlsVersion::V1_3,
                cipher_suites: Vec::new(),
                client: None,
                request_headers: Vec::new(),
            }),
            hosts: vec![host.clone()],
            host_check: Some(HostCheck::Listener),
        },
    );
    match SniPattern::parse(&host, false) {
        Some(pattern) => {
            tls_ports.rule(l.port, FAMILY, pattern, chain);
        }
        None => {
            tls_ports.default_chain(l.port, FAMILY, chain);
        }
    }
    Ok(())
}

/// The TLS listeners of each port (Passthrough), with the Gateway each belongs to.
pub(super) type TlsListeners<'a> =
    std::collections::BTreeMap<u16, Vec<(&'a Gateway, &'a GatewayListener)>>;

/// TLSRoutes on Passthrough listeners (GEP-2643, conformance `tlsroute-*`): a route attaches to
/// a listener its `parentRefs` name and whose `allowedRoutes` admit it, for its hostnames
/// intersected with the listener's (none: not attached); each becomes an SNI rule, the most
/// specific first (a route's `*.com` under a listener `*.example.com` is `*.example.com`), to a
/// passthrough chain over the rule's weighted `backendRefs` (a missing Service, another
/// namespace without a ReferenceGrant, or weight 0 takes no connection; a reference that
/// cannot be used closes its share of them).
#[allow(clippy::too_many_arguments)]
pub(super) fn tls_routes(
    objects: &[Object],
    index: &super::super::common::Index<'_>,
    listeners: &TlsListeners<'_>,
    namespaces: &std::collections::HashMap<&str, &crate::model::ObjectMeta>,
    tls_ports: &mut TlsPorts,
    backends: &mut std::collections::BTreeMap<String, portico_core::config::Backend>,
    errors: &mut Vec<TranslateError>,
) {
    use portico_core::tls::select::PassthroughBackend;
    let mut routes: Vec<&crate::model::gateway::TlsRoute> = objects
        .iter()
        .filter_map(|o| match o {
            Object::TlsRoute(r) => Some(r),
            _ => None,
        })
        .collect();
    routes.sort_by_key(|r| crate::model::oldest_first(&r.metadata));
    for r in routes {
        let route_ns = namespace_of(&r.metadata);
        let mut report = |field: String, kind| {
            errors.push(TranslateError {
                object: r.object_ref(),
                field,
                kind,
            })
        };
        // The backends of the (one) rule.
        let mut picked = Vec::new();
        for (ri, rule) in r.spec.rules.iter().enumerate() {
            for (bi, b) in rule.backend_refs.iter().enumerate() {
                let field = format!("spec.rules[{ri}].backendRefs[{bi}]");
                let ns = b.namespace.as_deref().unwrap_or(route_ns);
                let weight = b.weight.unwrap_or(1);
                let problem = super::rules::backend_problem(
                    "TLSRoute",
                    route_ns,
                    &r.spec.parent_refs,
                    &super::rules::BackendRefView {
                        group: b.group.as_deref(),
                        kind: b.kind.as_deref(),
                        namespace: b.namespace.as_deref(),
                        name: &b.name,
                        port: b.port,
                    },
                    objects,
                    index,
                )
                .map(|p| p.message);
                let port = b.port.and_then(|p| {
                    index
                        .services
                        .get(&(ns, b.name.as_str()))
                        .and_then(|s| s.spec.ports.iter().find(|sp| sp.port == p))
                });
                let (key, cluster, endpoints) = match (problem, port) {
                    (None, Some(sp)) => (
                        super::super::common::backend_key(ns, &b.name, sp.port),
                        super::super::common::cluster_name(ns, &b.name, sp.port),
                        index.endpoints(ns, &b.name, sp.name.as_deref().unwrap_or("")),
                    ),
                    (problem, _) => {
                        report(
                            format!("{field}.name"),
                            ErrorKind::MissingReference(format!(
                                "{}; its share of connections is closed",
                                problem.unwrap_or_default()
                            )),
                        );
                        // An Envoy cluster without endpoints: its share is refused.
                        let port = b.port.unwrap_or(0);
                        (
                            format!("{}.{ns}.svc.cluster.local:{port}/unresolved", b.name),
                            format!(
                                "outbound|{port}|unresolved|{}.{ns}.svc.cluster.local",
                                b.name
                            ),
                            Vec::new(),
                        )
                    }
                };
                backends
                    .entry(key.clone())
                    .or_insert(portico_core::config::Backend {
                        cluster: cluster.clone(),
                        endpoints,
                        lb: Default::default(),
                        original_destination: false,
                    });
                picked.push(PassthroughBackend {
                    backend: key,
                    cluster,
                    weight,
                });
            }
        }
        for (pi, parent) in r.spec.parent_refs.iter().enumerate() {
            if parent.group.as_deref().unwrap_or(super::GROUP) != super::GROUP
                || parent.kind.as_deref().unwrap_or("Gateway") != "Gateway"
            {
                continue;
            }
            let parent_ns = parent.namespace.as_deref().unwrap_or(route_ns);
            let mut attached = false;
            for (port, port_listeners) in listeners {
                for (g, l) in port_listeners {
                    if g.metadata.name != parent.name
                        || namespace_of(&g.metadata) != parent_ns
                        || parent.section_name.as_deref().is_some_and(|s| s != l.name)
                        || parent.port.is_some_and(|p| p != l.port)
                        || !super::listener_admits(g, l, "TLSRoute", &r.metadata, namespaces)
                    {
                        continue;
                    }
                    let names = super::route_hostnames(&r.spec.hostnames, l);
                    if names.is_empty() {
                        continue;
                    }
                    attached = true;
                    let chain = tls_ports.chain(
                        *port,
                        FAMILY,
                        Chain {
                            name: format!("gw-tls-{route_ns}-{}", r.metadata.name),
                            origin: r.object_ref().to_string(),
                            action: ChainAction::Passthrough {
                                backends: picked.clone(),
                            },
                            hosts: Vec::new(),
                            host_check: None,
                        },
                    );
                    for n in names {
                        match SniPattern::parse(&n, false) {
                            Some(pattern) => {
                                tls_ports.rule(*port, FAMILY, pattern, chain);
                            }
                            None => {
                                tls_ports.default_chain(*port, FAMILY, chain);
                            }
                        }
                    }
                }
            }
            if !attached {
                report(
                    format!("spec.parentRefs[{pi}]"),
                    ErrorKind::MissingReference(format!(
                        "no Passthrough TLS listener of Gateway {parent_ns}/{} takes this route (NoMatchingListenerHostname or NoMatchingParent)",
                        parent.name
                    )),
                );
            }
        }
    }
}
