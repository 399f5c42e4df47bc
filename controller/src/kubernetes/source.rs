//! The Kubernetes source: one watcher per [kind](super::kinds::WATCHED) keeps a [`KubeStore`] of
//! the cluster's objects; [`KubeSource`] reads the store as the reconciler reads a directory.
//!
//! A watcher that restarts (a 410 Gone, a dropped connection, an API server restart) lists
//! again and replaces its kind's objects at once, so a deletion missed while it was away is
//! seen. A kind the cluster does not serve (its CRD is not installed) counts as empty and is
//! looked for again every [`RESCAN`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use kube::Client;
use serde_json::Value;
use tokio::sync::Notify;

use super::kinds::{Kind, WATCHED};
use crate::source::{parse_values, Loaded, Source};

/// How often a kind the cluster does not serve is looked for again.
pub const RESCAN: Duration = Duration::from_secs(30);

/// Where a kind's watch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindState {
    /// Not looked for yet, or its first list has not finished.
    Starting,
    /// The cluster does not serve the kind (no CRD): it counts as empty.
    Absent,
    /// Watched at this version; the first list is complete.
    Watching(String),
}

#[derive(Debug, Default)]
struct KindObjects {
    /// `namespace/name` → the object as the API server returned it.
    objects: BTreeMap<String, Value>,
    /// Objects of a list in progress (between `Init` and `InitDone`).
    listing: Option<BTreeMap<String, Value>>,
    state: Option<KindState>,
}

#[derive(Debug, Default)]
struct Inner {
    kinds: HashMap<(&'static str, &'static str), KindObjects>,
    /// Bumped by every change.
    changes: u64,
}

/// The objects every watcher has seen, by kind; shared by the watch tasks and the reconciler.
#[derive(Debug, Default)]
pub struct KubeStore {
    inner: Mutex<Inner>,
    changed: Notify,
}

fn key_of(value: &Value) -> String {
    let meta = value.get("metadata");
    let field = |f: &str| {
        meta.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    format!("{}/{}", field("namespace"), field("name"))
}

impl KubeStore {
    /// An empty store.
    pub fn new() -> Arc<KubeStore> {
        Arc::new(KubeStore::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking watcher task cannot leave the maps half-updated: every update is one
        // insert or one swap.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self, inner: &mut Inner) {
        inner.changes += 1;
        self.changed.notify_one();
    }

    /// Records one watch event of `kind` (watched at `version`).
    pub fn apply(&self, kind: &'static Kind, version: &str, event: Event<DynamicObject>) {
        let value = |o: DynamicObject| {
            let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
            // List items carry no type fields: every object gets its kind's.
            if let Value::Object(map) = &mut v {
                map.insert(
                    "apiVersion".into(),
                    kind.api_resource(version).api_version.into(),
                );
                map.insert("kind".into(), kind.kind.into());
            }
            v
        };
        let mut inner = self.lock();
        let slot = inner.kinds.entry((kind.group, kind.kind)).or_default();
        let changed = match event {
            Event::Init => {
                slot.listing = Some(BTreeMap::new());
                false
            }
            Event::InitApply(o) => {
                let v = value(o);
                slot.listing
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key_of(&v), v);
                false
            }
            Event::InitDone => {
                slot.objects = slot.listing.take().unwrap_or_default();
                slot.state = Some(KindState::Watching(version.to_owned()));
                true
            }
            Event::Apply(o) => {
                let v = value(o);
                slot.objects.insert(key_of(&v), v);
                true
            }
            Event::Delete(o) => {
                let v = value(o);
                slot.objects.remove(&key_of(&v));
                true
            }
        };
        if changed {
            self.changed(&mut inner);
        }
    }

    /// Records that the cluster does not serve `kind`: it holds no objects.
    pub fn absent(&self, kind: &'static Kind) {
        let mut inner = self.lock();
        let slot = inner.kinds.entry((kind.group, kind.kind)).or_default();
        if slot.state != Some(KindState::Absent) || !slot.objects.is_empty() {
            slot.objects.clear();
            slot.state = Some(KindState::Absent);
            self.changed(&mut inner);
        }
    }

    /// Where each watched kind stands.
    pub fn states(&self) -> Vec<(&'static Kind, KindState)> {
        let inner = self.lock();
        WATCHED
            .iter()
            .map(|k| {
                let state = inner
                    .kinds
                    .get(&(k.group, k.kind))
                    .and_then(|s| s.state.clone())
                    .unwrap_or(KindState::Starting);
                (k, state)
            })
            .collect()
    }

    /// Every kind has been listed once (or found not served): the store is a whole picture.
    pub fn synced(&self) -> bool {
        self.states().iter().all(|(_, s)| *s != KindState::Starting)
    }

    /// How many objects each kind holds (by [`Kind::label`]).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let inner = self.lock();
        WATCHED
            .iter()
            .map(|k| {
                let n = inner
                    .kinds
                    .get(&(k.group, k.kind))
                    .map_or(0, |s| s.objects.len());
                (k.label(), n)
            })
            .collect()
    }

    /// How many changes the store has seen.
    pub fn changes(&self) -> u64 {
        self.lock().changes
    }

    /// Waits for the next change (returns at once if one came since the last wait).
    pub async fn wait_changed(&self) {
        self.changed.notified().await;
    }

    /// Every object now held, kinds in [`WATCHED`] order, objects by namespace and name; and a
    /// hash of their identities and resource versions.
    pub fn objects(&self) -> (Vec<Value>, u64) {
        let mut out = Vec::new();
        let fingerprint = self.visit(|_, _, v| out.push(v.clone()));
        (out, fingerprint)
    }

    /// Calls `f` with every object now held — its kind, its resource version (empty when it
    /// has none) and the object — in [`KubeStore::objects`]' order, under the store's lock, and
    /// returns the hash [`KubeStore::objects`] returns.
    pub fn visit(&self, mut f: impl FnMut(&'static Kind, &str, &Value)) -> u64 {
        let inner = self.lock();
        let mut fingerprint = 0u64;
        for k in WATCHED {
            if let Some(slot) = inner.kinds.get(&(k.group, k.kind)) {
                for (key, v) in &slot.objects {
                    let rv = v
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    fingerprint = portico_core::lb::hash(&[
                        &fingerprint.to_le_bytes(),
                        k.kind.as_bytes(),
                        key.as_bytes(),
                        rv.as_bytes(),
                    ]);
                    f(k, rv, v);
                }
            }
        }
        fingerprint
    }
}

/// The reconciler's view of a [`KubeStore`]: every object it holds, parsed as a manifest a user
/// wrote (an unknown field in a routing `spec` is an error naming it, as for a directory).
/// Each object's [`crate::source::Manifest::file`] is `kube:KIND/NAMESPACE/NAME`.
#[derive(Debug, Clone)]
pub struct KubeSource {
    store: Arc<KubeStore>,
    /// What each object parsed to, by group, kind, namespace and name (Istio's and the Gateway
    /// API's `Gateway` share a kind name), with the resource version it was parsed at: an
    /// object the watch has not changed is not parsed again (at 1 000 HTTPRoute rules, parsing
    /// every object was a quarter of a sync).
    parsed: HashMap<(&'static str, &'static str, String), (String, Loaded)>,
}

impl KubeSource {
    /// A source reading `store`.
    pub fn new(store: Arc<KubeStore>) -> KubeSource {
        KubeSource {
            store,
            parsed: HashMap::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<KubeStore> {
        &self.store
    }
}

impl Source for KubeSource {
    fn read(&mut self) -> std::io::Result<Loaded> {
        let mut loaded = Loaded::default();
        let mut previous = std::mem::take(&mut self.parsed);
        let parsed = &mut self.parsed;
        loaded.fingerprint = self.store.visit(|kind, rv, value| {
            let key = key_of(value);
            let origin = PathBuf::from(format!("kube:{}/{key}", kind.kind));
            let id = (kind.group, kind.kind, key);
            let one = match previous.remove(&id) {
                Some((was, one)) if !rv.is_empty() && was == rv => one,
                _ => {
                    let mut one = Loaded::default();
                    parse_values(&origin, vec![value.clone()], &mut one);
                    one
                }
            };
            loaded.manifests.extend(one.manifests.iter().cloned());
            loaded.errors.extend(one.errors.iter().cloned());
            parsed.insert(id, (rv.to_owned(), one));
        });
        Ok(loaded)
    }
}

/// The version of `kind` the cluster serves, preferred first; `None` when it serves none.
///
/// # Errors
/// Discovery failed (not: the group is missing).
pub async fn served_version(
    client: &Client,
    kind: &'static Kind,
) -> Result<Option<&'static str>, kube::Error> {
    let group = match kube::discovery::group(client, kind.group).await {
        Ok(g) => g,
        Err(kube::Error::Discovery(_)) => return Ok(None),
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    for version in kind.versions {
        if group
            .versioned_resources(version)
            .iter()
            .any(|(ar, _)| ar.kind == kind.kind)
        {
            return Ok(Some(version));
        }
    }
    Ok(None)
}

/// Watches `kind` into `store` until the task is dropped: finds the version the cluster serves
/// (marking the kind absent and looking again every [`RESCAN`] while there is none), then
/// follows it with a watcher that relists after every break, backing off on errors.
pub async fn watch_kind(client: Client, kind: &'static Kind, store: Arc<KubeStore>) {
    let version = loop {
        match served_version(&client, kind).await {
            Ok(Some(v)) => break v,
            Ok(None) => {
                tracing::debug!(kind = %kind.label(), "not served by the cluster");
                store.absent(kind);
                tokio::time::sleep(RESCAN).await;
            }
            Err(e) => {
                tracing::warn!(kind = %kind.label(), error = %e, "discovery failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tracing::debug!(kind = %kind.label(), version, "watching");
    let api: Api<DynamicObject> = Api::all_with(client, &kind.api_resource(version));
    let mut events =
        std::pin::pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(e) => store.apply(kind, version, e),
            Err(e) => tracing::warn!(kind = %kind.label(), error = %e, "watch failed; retrying"),
        }
    }
}

/// Starts a [`watch_kind`] task for every watched kind; dropping (aborting) the handles stops
/// them.
pub fn spawn_watchers(client: &Client, store: &Arc<KubeStore>) -> Watchers {
    Watchers(
        WATCHED
            .iter()
            .map(|k| tokio::spawn(watch_kind(client.clone(), k, store.clone())))
            .collect(),
    )
}

/// The running watch tasks; dropping this stops them.
#[derive(Debug)]
pub struct Watchers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Watchers {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
