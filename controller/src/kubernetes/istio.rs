//! The Istio sink of `run --kube --istio`: the leader keeps the EnvoyFilters of
//! [`crate::attach`] applied to the cluster, so istiod pushes Portico's modules, with the
//! configuration of the latest sync, to its gateway and sidecars.
//!
//! - Writes are server-side applies with the controller's field manager; an EnvoyFilter equal to
//!   the one this leader last applied is not written again (a new leader applies once).
//! - An EnvoyFilter the configuration no longer needs (`portico-sidecar` once nothing routes or
//!   polices the mesh) is deleted.
//! - Ownership: each EnvoyFilter names the oldest PorticoConfig of its own namespace as its
//!   controlling owner, so deleting that PorticoConfig garbage-collects them. Kubernetes has no
//!   cross-namespace owners (an owner in another namespace counts as absent, and the garbage
//!   collector would delete the EnvoyFilters at once), so with no PorticoConfig in the
//!   EnvoyFilters' namespace (istiod's root namespace, `istio-system`, by default) they carry no
//!   owner.

use std::collections::BTreeMap;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::Client;
use serde_json::{json, Value};

use super::source::KubeStore;
use super::status::MANAGER;
use crate::attach::{envoy_filters, AttachOptions, GATEWAY_FILTER, SIDECAR_FILTER};
use crate::snapshot::Snapshot;

/// `networking.istio.io/v1alpha3` EnvoyFilter.
pub fn envoyfilter_resource() -> ApiResource {
    ApiResource {
        group: "networking.istio.io".into(),
        version: "v1alpha3".into(),
        api_version: "networking.istio.io/v1alpha3".into(),
        kind: "EnvoyFilter".into(),
        plural: "envoyfilters".into(),
    }
}

/// What one [`EnvoyFilterWriter::write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attached {
    /// EnvoyFilters applied.
    pub applied: usize,
    /// EnvoyFilters deleted.
    pub deleted: usize,
}

/// Keeps the EnvoyFilters of the latest snapshot applied (call only while leading).
pub struct EnvoyFilterWriter {
    client: Client,
    options: AttachOptions,
    /// Name → the object last applied (`None`: known absent).
    known: BTreeMap<String, Option<Value>>,
    /// The snapshot generation and owner of the last complete write: the same again needs no
    /// EnvoyFilter rendered (the leader calls [`EnvoyFilterWriter::write`] every second).
    done: Option<(String, Option<Value>)>,
}

impl std::fmt::Debug for EnvoyFilterWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvoyFilterWriter")
            .field("namespace", &self.options.namespace)
            .field("known", &self.known.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl EnvoyFilterWriter {
    /// A writer attaching with `options`.
    pub fn new(client: Client, options: AttachOptions) -> Self {
        EnvoyFilterWriter {
            client,
            options,
            known: BTreeMap::new(),
            done: None,
        }
    }

    /// Forgets what was applied: the next [`write`](Self::write) applies everything again (a
    /// replica that regains leadership cannot know what its successor did meanwhile).
    pub fn forget(&mut self) {
        self.known.clear();
        self.done = None;
    }

    /// The controlling owner reference for the EnvoyFilters: the oldest PorticoConfig in their
    /// namespace, if any.
    fn owner(&self, store: &KubeStore) -> Option<Value> {
        let (objects, _) = store.objects();
        objects
            .iter()
            .filter(|o| {
                o["kind"] == "PorticoConfig"
                    && o.pointer("/metadata/namespace").and_then(Value::as_str)
                        == Some(self.options.namespace.as_str())
            })
            .filter_map(|o| {
                let m = &o["metadata"];
                Some((
                    m["creationTimestamp"].as_str().unwrap_or("").to_owned(),
                    m["name"].as_str()?.to_owned(),
                    m["uid"].as_str()?.to_owned(),
                    o["apiVersion"].as_str()?.to_owned(),
                ))
            })
            .min()
            .map(|(_, name, uid, api_version)| {
                json!({"apiVersion": api_version, "kind": "PorticoConfig", "name": name,
                       "uid": uid, "controller": true})
            })
    }

    /// Applies the EnvoyFilters `snapshot` needs and deletes the ones it no longer needs.
    ///
    /// # Errors
    /// The first request the API server refused; the rest are tried on the next call.
    pub async fn write(
        &mut self,
        store: &KubeStore,
        snapshot: &Snapshot,
    ) -> Result<Attached, kube::Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &self.options.namespace,
            &envoyfilter_resource(),
        );
        let owner = self.owner(store);
        let this = (snapshot.generation.clone(), owner);
        if self.done.as_ref() == Some(&this) {
            return Ok(Attached::default());
        }
        let owner = &this.1;
        let mut done = Attached::default();
        let mut wanted = Vec::new();
        for mut f in envoy_filters(snapshot, &self.options) {
            if let Some(owner) = owner {
                f["metadata"]["ownerReferences"] = json!([owner]);
            }
            let name = f["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            wanted.push(name.clone());
            if self.known.get(&name) == Some(&Some(f.clone())) {
                continue;
            }
            let params = PatchParams::apply(MANAGER).force();
            api.patch(&name, &params, &Patch::Apply(&f)).await?;
            self.known.insert(name, Some(f));
            done.applied += 1;
        }
        for name in [GATEWAY_FILTER, SIDECAR_FILTER] {
            if wanted.iter().any(|w| w == name) || self.known.get(name) == Some(&None) {
                continue;
            }
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => done.deleted += 1,
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => return Err(e),
            }
            self.known.insert(name.to_owned(), None);
        }
        self.done = Some(this);
        Ok(done)
    }
}
