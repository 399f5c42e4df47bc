//! `convert`: Ingresses, as ingress-nginx serves them, into Gateway API objects (a Gateway, its
//! HTTPRoutes, the ReferenceGrants its certificates and canaries need) with the same behaviour
//! where the Gateway API has one, and every difference named.
//!
//! # What becomes what
//! - The served Ingresses (the class selection of [`crate::translate::Options`]) become one
//!   Gateway: listener `http` (port 80) and one HTTPS listener (port 443) per host whose
//!   certificate a Secret gives (`https-HOST`), plus a catch-all `https` listener when a
//!   PorticoConfig `defaultCertificate` serves the other hosts. Routes from every namespace may
//!   attach (`allowedRoutes: All`).
//! - Each Ingress rule host becomes two HTTPRoutes in the Ingress's namespace, `NAME-HOST-http`
//!   on `http` and `NAME-HOST-https` on the HTTPS listeners covering the host (`all-hosts` for a
//!   rule without host): the same rules, except that the first redirects to HTTPS where
//!   ingress-nginx would (`ssl-redirect`, `force-ssl-redirect`) and the second sets
//!   `Strict-Transport-Security` as ingress-nginx does on HTTPS.
//! - Paths: `Exact` → `Exact`, `Prefix` and `ImplementationSpecific` → `PathPrefix`; every path of
//!   a host in regex mode (`use-regex` or `rewrite-target` on any of its Ingresses) →
//!   `RegularExpression` `(?i)PATH.*`. A host and path an older Ingress already defines is left
//!   out (ingress-nginx keeps the oldest). The `defaultBackend` of the Ingress that first names a
//!   host answers the host's unmatched paths (`PathPrefix /`, unless an Ingress defines `/`); the
//!   oldest Ingress without rules answers unknown hosts (a route without hostnames).
//! - Annotations with an equivalent: `rewrite-target` without captures (`URLRewrite`
//!   `ReplaceFullPath`), `upstream-vhost` (`URLRewrite` hostname), `x-forwarded-prefix`
//!   (`RequestHeaderModifier`), `permanent-redirect` / `temporal-redirect` / `app-root`
//!   (`RequestRedirect`), `ssl-redirect` / `force-ssl-redirect` (`RequestRedirect` https 308),
//!   `server-alias` (more hostnames), `from-to-www-redirect` (a redirecting route), canaries (header
//!   and cookie matches before the main rule, `canary-weight` as backend weights), `enable-cors`
//!   (the `CORS` filter), `ssl-passthrough` (a `Passthrough` TLS listener for the host and a
//!   TLSRoute to its `/` path's Service). Everything else, and each way an equivalent still differs, is a
//!   [`Difference`].

mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{json, Value};

use crate::model::{namespace_of, Ingress, Object, ObjectRef, Resource};
use crate::translate::common::Index;
use crate::translate::diagnostics::TranslateError;
use crate::translate::ingress;
use crate::translate::Options;

/// The Gateway API group.
pub(crate) const GROUP: &str = "gateway.networking.k8s.io";

/// Where the converted objects go and what they are called.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The Gateway's name.
    pub gateway: String,
    /// The Gateway's namespace.
    pub namespace: String,
    /// The Gateway's `gatewayClassName`.
    pub class: String,
    /// Also write the GatewayClass, claimed by Portico's controller
    /// (`portico.dev/gateway-controller`).
    pub gateway_class_object: bool,
    /// Which Ingresses are served (the IngressClass selection).
    pub translate: Options,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            gateway: "portico".into(),
            namespace: "default".into(),
            class: "portico".into(),
            gateway_class_object: false,
            translate: Options::default(),
        }
    }
}

/// What [`convert`] makes.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// The Gateway, then HTTPRoutes, then ReferenceGrants, as Kubernetes objects.
    pub objects: Vec<Value>,
    /// Where the converted objects behave differently from the Ingresses.
    pub differences: Vec<Difference>,
    /// Ingresses left out: ingress-nginx does not serve them either (the error says why).
    pub left_out: Vec<TranslateError>,
    /// The Secret (`namespace/name`) of the catch-all `https` listener: the PorticoConfig's
    /// `defaultCertificate`.
    pub default_certificate: Option<String>,
}

/// One way the converted objects answer differently from ingress-nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The Ingress.
    pub object: ObjectRef,
    /// Its field or annotation (`metadata.annotations[nginx.ingress.kubernetes.io/…]`).
    pub field: String,
    /// The hosts whose answers may differ (`*`: any host; `*.example.com`: its subdomains).
    pub hosts: Vec<String>,
    /// Hosts [`Self::hosts`] covers whose answers do not differ.
    pub except: Vec<String>,
    /// Only requests over HTTPS differ.
    pub https_only: bool,
    /// Only requests over plain HTTP differ.
    pub http_only: bool,
    /// What differs.
    pub why: String,
}

impl Difference {
    /// Whether a request for `host` (over HTTPS when `https`) may be answered differently.
    pub fn covers(&self, host: &str, https: bool) -> bool {
        if (self.https_only && !https) || (self.http_only && https) {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.except.contains(&host) {
            return false;
        }
        self.hosts.iter().any(|h| {
            h == "*"
                || *h == host
                || h.strip_prefix("*.")
                    .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
        })
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.object, self.field, self.why)
    }
}

/// The annotation field of `name` (`metadata.annotations[nginx.ingress.kubernetes.io/NAME]`).
pub(crate) fn annotation(name: &str) -> String {
    format!("metadata.annotations[nginx.ingress.kubernetes.io/{name}]")
}

/// Converts the served Ingresses of `objects`; the other objects are left as they are (the
/// Services, Secrets and EndpointSlices the routes refer to stay where they are).
pub fn convert(objects: &[Object], options: &ConvertOptions) -> Conversion {
    let mut ignored = Vec::new();
    let served = ingress::served(objects, &options.translate, &mut ignored);
    // What translate leaves out whole (a refused annotation, an invalid rule) ingress-nginx does
    // not serve: not converted.
    let translation = crate::translate::translate(objects, &options.translate);
    let mut left_out: Vec<TranslateError> = Vec::new();
    for e in translation.errors.iter().filter(|e| e.object_dropped()) {
        if e.object.kind == "Ingress" && !left_out.iter().any(|l| l.object == e.object) {
            left_out.push(e.clone());
        }
    }
    let dropped: BTreeSet<&ObjectRef> = left_out.iter().map(|e| &e.object).collect();
    let index = Index::new(objects);
    // Port 443's certificates as translate picks them (every non-canary Ingress counts there).
    let mut certs = crate::translate::tls::Certificates::new(objects, None);
    let mut ports = crate::translate::tls::TlsPorts::default();
    let tls = ingress::tls::certificates(
        objects,
        &index,
        &served.mains,
        &mut certs,
        &mut ports,
        &mut Vec::new(),
    );
    let keep = |i: &&Ingress| !dropped.contains(&i.object_ref());
    let mains: Vec<&Ingress> = served.mains.iter().copied().filter(keep).collect();
    let canaries: Vec<&Ingress> = served.canaries.iter().copied().filter(keep).collect();
    let mut converter = routes::Converter::new(options, &index, served.regex_hosts, &tls);
    for i in &mains {
        converter.add_ingress(i);
    }
    for i in &canaries {
        converter.add_canary(i);
    }
    let passthrough = converter.passthrough_hosts();
    let (routes, grants, mut differences) = converter.finish();

    // The Gateway: port 80, an HTTPS listener per host a Secret serves, the default certificate's
    // catch-all.
    let mut listeners = vec![listener("http", 80, "HTTP", None, None)];
    let mut secret_grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut certificate = |secret: &(String, String)| {
        let mut r = json!({"kind": "Secret", "name": secret.1});
        if secret.0 != options.namespace {
            r["namespace"] = json!(secret.0);
            secret_grants
                .entry(secret.0.clone())
                .or_default()
                .insert(secret.1.clone());
        }
        r
    };
    for (host, secret) in &tls.secrets {
        if let Some(secret) = secret {
            let r = certificate(secret);
            listeners.push(listener(
                &routes::https_listener(host),
                443,
                "HTTPS",
                Some(host),
                Some(r),
            ));
        }
    }
    for host in &passthrough {
        let mut l = listener(
            &routes::passthrough_listener(host),
            443,
            "TLS",
            Some(host),
            None,
        );
        l["tls"] = json!({"mode": "Passthrough"});
        listeners.push(l);
    }
    if let Some(secret) = &tls.default_secret {
        let r = certificate(secret);
        listeners.push(listener("https", 443, "HTTPS", None, Some(r)));
    } else {
        // The fake certificate (or none): hosts without a Secret of their own are not served
        // over HTTPS.
        if let Some(first) = mains.first() {
            differences.push(Difference {
                object: first.object_ref(),
                field: "spec.tls".into(),
                hosts: vec!["*".into()],
                except: tls
                    .secrets
                    .iter()
                    .filter(|(_, s)| s.is_some())
                    .map(|(h, _)| h.clone())
                    .collect(),
                https_only: true,
                http_only: false,
                why: "ingress-nginx answers HTTPS for a host without a certificate of its own with its default (fake) certificate; the Gateway has no HTTPS listener for such hosts (a PorticoConfig defaultCertificate becomes a catch-all `https` listener)".into(),
            });
        }
    }
    let mut out = Vec::new();
    if options.gateway_class_object {
        out.push(json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "GatewayClass",
            "metadata": {"name": options.class},
            "spec": {"controllerName": crate::translate::gateway_api::status::GATEWAY_CONTROLLER},
        }));
    }
    out.push(json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": "Gateway",
        "metadata": {"name": options.gateway, "namespace": options.namespace},
        "spec": {"gatewayClassName": options.class, "listeners": listeners},
    }));
    out.extend(routes);
    for (ns, names) in secret_grants {
        out.push(reference_grant(
            &ns,
            &format!("{}-certificates", options.gateway),
            "Gateway",
            &options.namespace,
            "Secret",
            &names,
        ));
    }
    out.extend(grants);
    Conversion {
        objects: out,
        differences,
        left_out,
        default_certificate: tls
            .default_secret
            .as_ref()
            .map(|(ns, n)| format!("{ns}/{n}")),
    }
}

fn listener(
    name: &str,
    port: u16,
    protocol: &str,
    hostname: Option<&str>,
    certificate: Option<Value>,
) -> Value {
    let mut l = json!({
        "name": name,
        "port": port,
        "protocol": protocol,
        "allowedRoutes": {"namespaces": {"from": "All"}},
    });
    if let Some(h) = hostname {
        l["hostname"] = json!(h);
    }
    if let Some(c) = certificate {
        l["tls"] = json!({"mode": "Terminate", "certificateRefs": [c]});
    }
    l
}

/// A ReferenceGrant in `ns` letting `from_kind` objects of `from_ns` refer to the named
/// `to_kind` objects (core group).
pub(crate) fn reference_grant(
    ns: &str,
    name: &str,
    from_kind: &str,
    from_ns: &str,
    to_kind: &str,
    names: &BTreeSet<String>,
) -> Value {
    json!({
        "apiVersion": format!("{GROUP}/v1beta1"),
        "kind": "ReferenceGrant",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "from": [{"group": GROUP, "kind": from_kind, "namespace": from_ns}],
            "to": names.iter().map(|n| json!({"group": "", "kind": to_kind, "name": n})).collect::<Vec<_>>(),
        },
    })
}

/// The conversion as YAML documents a user applies: a comment block naming every difference and
/// every Ingress left out, then the objects.
pub fn to_yaml(conversion: &Conversion) -> String {
    let mut out = String::new();
    out.push_str("# Converted by `portico-controller convert` from Ingresses served as ingress-nginx serves them.\n");
    if !conversion.left_out.is_empty() {
        out.push_str("#\n# Not converted (ingress-nginx does not serve them either):\n");
        for e in &conversion.left_out {
            out.push_str(&format!("#   {e}\n"));
        }
    }
    if !conversion.differences.is_empty() {
        out.push_str("#\n# Where these objects answer differently from ingress-nginx:\n");
        for d in &conversion.differences {
            out.push_str(&format!("#   {d}\n"));
        }
    }
    for o in &conversion.objects {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(o).unwrap_or_default());
    }
    out
}

/// The Ingress's namespace and name as one string.
pub(crate) fn ingress_name(ingress: &Ingress) -> (String, String) {
    (
        namespace_of(&ingress.metadata).to_owned(),
        ingress.metadata.name.clone(),
    )
}

#[cfg(test)]
mod tests;
