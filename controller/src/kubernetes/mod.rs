//! The controller on Kubernetes: watchers keep a [`KubeStore`] of every kind Portico reads, and
//! [`follow`] syncs a [`Reconciler`] over it after each burst of changes.
//!
//! - [`kinds`]: what is watched, at which API versions;
//! - [`source`]: the store, the watch tasks and [`KubeSource`] (the reconciler's view);
//! - [`crd`]: Portico's own CustomResourceDefinition, derived from its types;
//! - [`lease`]: leader election; [`status`]: what the leader writes back (PorticoConfig,
//!   Ingress and Gateway API status, Events); [`istio`]: the EnvoyFilters the leader keeps
//!   applied with `--istio`; [`ops`]: metrics, `/healthz`, `/readyz`;
//! - [`run_replica`]: all of it together, as `portico-controller run --kube` runs.

pub mod crd;
pub mod istio;
pub mod kinds;
pub mod lease;
pub mod ops;
pub mod source;
pub mod status;

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

/// How one controller replica runs on a cluster.
#[derive(Debug, Clone)]
pub struct Replica {
    /// This replica's name in the Lease and the Events (the pod's name).
    pub identity: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// How changes are gathered into pushes.
    pub debounce: Debounce,
    /// Addresses (IPs or hostnames) to publish in the served Ingresses' `status.loadBalancer`
    /// (empty: leave Ingress status alone).
    pub publish_addresses: Vec<String>,
    /// Also keep the EnvoyFilters that attach Portico to Istio applied ([`istio`]).
    pub istio: Option<crate::attach::AttachOptions>,
}

/// Aborts its tasks when dropped.
#[derive(Debug, Default)]
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Runs one replica until the future is dropped: the watchers, the debounced sync loop into
/// `sink` (every replica configures its own Envoy), leader election, the leader's status and
/// Event writes (after every sync, and within a second of becoming leader), and — given a
/// listener — metrics, `/healthz` and `/readyz`. `on_sync` sees every sync.
pub async fn run_replica<K: Sink>(
    client: kube::Client,
    sink: K,
    options: crate::translate::Options,
    render: crate::envoy::RenderOptions,
    replica: Replica,
    ops_listener: Option<tokio::net::TcpListener>,
    mut on_sync: impl FnMut(&std::io::Result<SyncReport>, Duration),
) {
    use std::sync::atomic::Ordering;
    let store = KubeStore::new();
    let _watchers = spawn_watchers(&client, &store);
    let election = lease::Election::new(
        client.clone(),
        &replica.lease_namespace,
        &replica.lease_name,
        &replica.identity,
        replica.lease_duration,
    );
    let leading = election.leading();
    let metrics = ops::Metrics::new(leading.clone());
    let (tx, mut rx) = tokio::sync::watch::channel::<Option<SyncReport>>(None);
    let mut tasks = Tasks::default();
    tasks.0.push(tokio::spawn(election.run()));
    if let Some(l) = ops_listener {
        tasks.0.push(tokio::spawn(ops::serve(l, metrics.clone())));
    }
    let (status_store, status_leading) = (store.clone(), leading.clone());
    let mut writer = status::StatusWriter::new(client.clone(), &replica.identity)
        .publishing(&replica.publish_addresses, options.clone());
    let mut attach = replica
        .istio
        .clone()
        .map(|o| istio::EnvoyFilterWriter::new(client.clone(), o));
    tasks.0.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if !status_leading.load(Ordering::SeqCst) {
                if let Some(a) = attach.as_mut() {
                    a.forget();
                }
                continue;
            }
            let report = rx.borrow().clone();
            if let (Some(a), Some(snapshot)) = (
                attach.as_mut(),
                report.as_ref().and_then(|r| r.snapshot.as_ref()),
            ) {
                match a.write(&status_store, snapshot).await {
                    Ok(done) if done != istio::Attached::default() => tracing::info!(
                        applied = done.applied,
                        deleted = done.deleted,
                        generation = %snapshot.generation,
                        "attached to Istio (EnvoyFilters)"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "applying the EnvoyFilters failed; retrying")
                    }
                }
            }
            if let Some(report) = report {
                let result = writer.write(&status_store, &report).await;
                if let Ok(w) = &result {
                    if *w != status::Written::default() {
                        tracing::info!(
                            statuses = w.statuses,
                            ingresses = w.ingresses,
                            events = w.events,
                            gateway_api = w.gateway_api,
                            "wrote status"
                        );
                    }
                }
                if let Err(e) = result {
                    tracing::warn!(error = %e, "writing status failed; retrying");
                }
            }
        }
    }));
    let mut reconciler = Reconciler::with(KubeSource::new(store.clone()), sink, options, render)
        .reporting_gateway_status();
    follow(&mut reconciler, replica.debounce, |r, took| {
        on_sync(&r, took);
        match r {
            Ok(report) => {
                metrics.record(store.counts(), &report, took);
                tx.send_replace(Some(report));
            }
            Err(e) => tracing::error!(error = %e, "writing the configuration failed"),
        }
        true
    })
    .await;
}
