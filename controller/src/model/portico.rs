//! `portico.dev/v1alpha1`: Portico's own PorticoConfig, one per gateway or mesh scope. The spec
//! type is also the source of the CustomResourceDefinition (`portico-controller crdgen`), so the
//! schema the API server validates with and the struct the controller reads cannot drift.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;

/// `portico.dev/v1alpha1` PorticoConfig, as the controller reads it.
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
// The printer columns repeat `type_`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, CustomResource)]
#[kube(
    group = "portico.dev",
    version = "v1alpha1",
    kind = "PorticoConfig",
    root = "PorticoConfigResource",
    category = "portico",
    namespaced,
    status = "PorticoConfigStatus",
    shortname = "pcfg",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.configVersion"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PorticoConfigSpec {
    /// The certificate served when no other applies (ingress-nginx's
    /// `--default-ssl-certificate`): a `kubernetes.io/tls` Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_certificate: Option<SecretReference>,
    /// Serve a generated self-signed certificate when nothing else applies, as ingress-nginx
    /// does (default: true; it only ever applies to Ingress hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fake_certificate: Option<bool>,
    /// The sidecar's policy for hosts outside the registry: `ALLOW_ANY` or `REGISTRY_ONLY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ALLOW_ANY", "REGISTRY_ONLY"]))]
    pub outbound_traffic_policy: Option<String>,
    /// The sidecar's check on names it trusts: with `true`, a request or TLS connection picked
    /// by Host or SNI for a ServiceEntry resolved `NONE` must be going to one of that entry's
    /// addresses or endpoints (Istio trusts the name: `false`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_egress_destination: Option<bool>,
    /// What Envoy does when a filter fails: `FAIL_RELOAD`, `FAIL_CLOSED` or `FAIL_OPEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["FAIL_RELOAD", "FAIL_CLOSED", "FAIL_OPEN"]))]
    pub failure_policy: Option<String>,
}

/// A Secret by namespace and name.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Namespace (the PorticoConfig's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the controller reports on a PorticoConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PorticoConfigStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the configuration is pushed) and `Degraded` (objects were left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The version of the configuration pushed to Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
}

/// A status condition, as `metav1.Condition`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(extend("enum" = ["True", "False", "Unknown"]))]
    pub status: String,
    /// A CamelCase reason.
    pub reason: String,
    /// What happened, for people.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    /// The `metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
