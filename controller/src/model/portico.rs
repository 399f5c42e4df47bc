//! `portico.dev/v1alpha1`: Portico's own PorticoConfig, one per gateway or mesh scope.

use serde::Deserialize;

use super::meta::ObjectMeta;

/// `portico.dev/v1alpha1` PorticoConfig.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PorticoConfig {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: PorticoConfigSpec,
}

/// What a PorticoConfig sets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PorticoConfigSpec {
    /// The certificate served when no other applies (ingress-nginx's
    /// `--default-ssl-certificate`): a `kubernetes.io/tls` Secret.
    #[serde(default)]
    pub default_certificate: Option<SecretReference>,
    /// Serve a generated self-signed certificate when nothing else applies, as ingress-nginx
    /// does (default: true; it only ever applies to Ingress hosts).
    #[serde(default)]
    pub fake_certificate: Option<bool>,
    /// The sidecar's policy for hosts outside the registry: `ALLOW_ANY` or `REGISTRY_ONLY`.
    #[serde(default)]
    pub outbound_traffic_policy: Option<String>,
    /// The sidecar's check on names it trusts: with `true`, a request or TLS connection picked
    /// by Host or SNI for a ServiceEntry resolved `NONE` must be going to one of that entry's
    /// addresses or endpoints (Istio trusts the name: `false`, the default).
    #[serde(default)]
    pub verify_egress_destination: Option<bool>,
    /// What Envoy does when a filter fails: `FAIL_RELOAD`, `FAIL_CLOSED` or `FAIL_OPEN`.
    #[serde(default)]
    pub failure_policy: Option<String>,
}

/// A Secret by namespace and name.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Namespace (the PorticoConfig's when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}
