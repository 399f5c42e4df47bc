//! The controller on Kubernetes: watchers keep a [`KubeStore`] of every kind Portico reads, and
//! [`follow`] syncs a [`Reconciler`] over it after each burst of changes.
//!
//! - [`kinds`]: what is watched, at which API versions;
//! - [`source`]: the store, the watch tasks and [`KubeSource`] (the reconciler's view);
//! - [`crd`]: Portico's own CustomResourceDefinition, derived from its types.

pub mod crd;
pub mod kinds;
pub mod source;

use std::time::{Duration, Instant};

pub use source::{spawn_watchers, KubeSource, KubeStore, Watchers};

use crate::reconcile::{Reconciler, SyncReport};
use crate::sink::Sink;

/// How changes are gathered into one push: a sync starts once no change has come for `quiet`,
/// or `max` after the first change of a burst, whichever is first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    /// Quiet time that ends a burst.
    pub quiet: Duration,
    /// Longest a change waits.
    pub max: Duration,
}

impl Default for Debounce {
    /// 10 ms of quiet, at most 100 ms: `kubectl apply -f dir/` becomes one push, a single
    /// change waits 10 ms.
    fn default() -> Self {
        Debounce {
            quiet: Duration::from_millis(10),
            max: Duration::from_millis(100),
        }
    }
}

/// Waits until the store has been listed whole, then syncs `reconciler` after every burst of
/// changes, handing each report (or I/O error) to `on_sync`, until `on_sync` returns `false`.
pub async fn follow<K: Sink>(
    reconciler: &mut Reconciler<KubeSource, K>,
    debounce: Debounce,
    mut on_sync: impl FnMut(std::io::Result<SyncReport>, Duration) -> bool,
) {
    let store = reconciler.source().store().clone();
    let mut synced_at = None;
    loop {
        store.wait_changed().await;
        // A change that came while the last burst was gathered has been synced already.
        if !store.synced() || synced_at == Some(store.changes()) {
            continue;
        }
        let first = Instant::now();
        loop {
            let seen = store.changes();
            tokio::time::sleep(debounce.quiet).await;
            if store.changes() == seen || first.elapsed() >= debounce.max {
                break;
            }
        }
        synced_at = Some(store.changes());
        let result = reconciler.sync();
        if !on_sync(result, first.elapsed()) {
            return;
        }
    }
}

/// A client for the cluster in `kubeconfig`, else the one `$KUBECONFIG` or `~/.kube/config`
/// names, else the in-cluster service account.
///
/// # Errors
/// The kubeconfig cannot be read or names no usable cluster.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    use anyhow::Context as _;
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a cluster")?,
    };
    kube::Client::try_from(config).context("connecting to the cluster")
}
