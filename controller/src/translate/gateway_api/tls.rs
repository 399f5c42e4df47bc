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

/// The certificate of an HTTPS listener, or the diagnostic that leaves it unprogrammed.
// The error is the typed TranslateError the caller reports, built once per bad listener.
#[allow(clippy::result_large_err)]
fn certificate(
    objects: &[Object],
    certs: &mut Certificates<'_>,
    g: &Gateway,
    li: usize,
    l: &GatewayListener,
) -> Result<Certificate, TranslateError> {
    let gw_ns = namespace_of(&g.metadata);
    let fail = |field: String, kind| TranslateError {
        object: g.object_ref(),
        field,
        kind,
    };
    let tls = l.tls.clone().unwrap_or_default();
    let mode = tls.mode.as_deref().unwrap_or("Terminate");
    if mode != "Terminate" {
        return Err(fail(
            format!("spec.listeners[{li}].tls.mode"),
            ErrorKind::InvalidSetting(format!(
                "{mode}: an HTTPS listener terminates TLS; this listener is not served"
            )),
        ));
    }
    let Some(r) = tls.certificate_refs.first() else {
        return Err(fail(
            format!("spec.listeners[{li}].tls.certificateRefs"),
            ErrorKind::InvalidSetting("an HTTPS listener needs a certificate (InvalidCertificateRef); this listener is not served".into()),
        ));
    };
    let field = format!("spec.listeners[{li}].tls.certificateRefs[0]");
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err(fail(
            field,
            ErrorKind::InvalidSetting(format!(
                "{kind} of group {group:?} is not a Secret (InvalidCertificateRef); this listener is not served"
            )),
        ));
    }
    let ns = r.namespace.as_deref().unwrap_or(gw_ns);
    if ns != gw_ns && !granted(objects, ("Gateway", gw_ns), (ns, "Secret", &r.name)) {
        return Err(fail(
            field,
            ErrorKind::InvalidSetting(format!(
                "no ReferenceGrant in {ns} lets Gateways of {gw_ns} refer to Secret {} (RefNotPermitted); this listener is not served",
                r.name
            )),
        ));
    }
    certs
        .certificate(ns, &r.name, false)
        .map(|(c, _)| c)
        .map_err(|p| {
            fail(
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
) -> Result<(), TranslateError> {
    let certificate = certificate(objects, certs, g, li, l)?;
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
