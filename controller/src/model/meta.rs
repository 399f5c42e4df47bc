//! Object identity and metadata shared by every API group: [`ObjectMeta`], [`ObjectRef`] (API
//! group, kind, namespace, name) and [`LabelSelector`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// Which object: API group, kind, namespace and name. It prints as `kind namespace/name`, the
/// way every error names an object; the group keeps kinds of the same name apart (an Istio
/// `Gateway` and a Gateway API `Gateway` of the same name are different objects).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `Ingress`, `Service`, …
    pub kind: String,
    /// Namespace (`default` when the manifest leaves it out; empty for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// API group (`""` for the core group, `networking.k8s.io`, `networking.istio.io`, …).
    pub group: String,
}

impl ObjectRef {
    /// An object of `group`/`kind`.
    pub fn new(group: &str, kind: &str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            group: group.to_owned(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Object metadata; the fields Portico reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Name (required).
    #[serde(default)]
    pub name: String,
    /// Namespace; empty means `default` for namespaced kinds.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 creation time; orders conflicting objects (oldest wins).
    #[serde(default)]
    pub creation_timestamp: Option<String>,
}

/// A label selector (`matchLabels`, `matchExpressions`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be equal.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One selector expression.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector (an empty selector selects everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let v = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => v.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => !v.is_some_and(|v| e.values.contains(v)),
                    "Exists" => v.is_some(),
                    "DoesNotExist" => v.is_none(),
                    _ => false,
                }
            })
    }
}

/// The namespace of a namespaced object (`default` when the manifest leaves it out).
pub fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default")
}

/// The order in which objects of one kind take precedence: oldest first (`creationTimestamp`),
/// then by namespace and name — the tie-break Istio and the Gateway API specify.
pub fn oldest_first(meta: &ObjectMeta) -> (String, String, String) {
    (
        meta.creation_timestamp.clone().unwrap_or_default(),
        namespace_of(meta).to_owned(),
        meta.name.clone(),
    )
}
