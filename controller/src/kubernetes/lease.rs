//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does
//! it: the holder renews `renewTime` every [`Election::retry`]; another replica takes the Lease
//! over once it has seen the same record unchanged for the lease duration (measured on its own
//! clock, so clock skew between replicas does not matter); every write carries the
//! `resourceVersion` it read, so two candidates never both win. Only the leader writes to the
//! cluster (status, events); every replica keeps its own Envoy configured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::Client;

/// One candidate for a Lease.
#[derive(Debug)]
pub struct Election {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The holder and renew time last read, and when they were first seen.
    observed: Option<(Option<String>, Option<MicroTime>, Instant)>,
    leading: Arc<AtomicBool>,
}

impl Election {
    /// A candidate `identity` for Lease `namespace/name`, held for `duration` after each renewal.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Election {
        Election {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            observed: None,
            leading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether this candidate leads now (shared with the tasks that write).
    pub fn leading(&self) -> Arc<AtomicBool> {
        self.leading.clone()
    }

    /// How often the holder renews and a candidate tries: a third of the lease duration.
    pub fn retry(&self) -> Duration {
        self.duration / 3
    }

    fn spec(&self, now: &MicroTime, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: acquired,
            renew_time: Some(now.clone()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One round: creates the Lease, renews it, or takes it over once it has expired. Returns
    /// whether this candidate leads now.
    ///
    /// # Errors
    /// The API server could not be asked (the caller counts how long it has not renewed).
    pub async fn try_lead(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let leads = match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(&now, Some(now.clone()), 0)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => true,
                    Err(kube::Error::Api(s)) if s.code == 409 => false,
                    Err(e) => return Err(e),
                }
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let record = (spec.holder_identity.clone(), spec.renew_time.clone());
                let fresh = match &self.observed {
                    Some((h, r, _)) => (h, r) != (&record.0, &record.1),
                    None => true,
                };
                if fresh {
                    self.observed = Some((record.0.clone(), record.1.clone(), Instant::now()));
                }
                let seen_for = self
                    .observed
                    .as_ref()
                    .map_or(Duration::ZERO, |o| o.2.elapsed());
                let holder = record.0.unwrap_or_default();
                let mine = holder == self.identity;
                if !mine && !holder.is_empty() && seen_for < self.duration {
                    false
                } else {
                    let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
                    let acquired = if mine {
                        spec.acquire_time.clone()
                    } else {
                        Some(now.clone())
                    };
                    lease.spec = Some(self.spec(&now, acquired, transitions));
                    // `resourceVersion` from the read: a concurrent writer makes this a 409.
                    match self
                        .api
                        .replace(&self.name, &PostParams::default(), &lease)
                        .await
                    {
                        Ok(_) => true,
                        Err(kube::Error::Api(s)) if s.code == 409 => false,
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        Ok(leads)
    }

    /// Runs the election until the task is dropped: a round every [`Election::retry`]; a leader
    /// that could not renew for the lease duration steps down.
    pub async fn run(mut self) {
        let mut last_renewed: Option<Instant> = None;
        loop {
            match self.try_lead().await {
                Ok(true) => {
                    last_renewed = Some(Instant::now());
                    if !self.leading.swap(true, Ordering::SeqCst) {
                        tracing::info!(identity = %self.identity, lease = %self.name, "leading");
                    }
                }
                Ok(false) => {
                    if self.leading.swap(false, Ordering::SeqCst) {
                        tracing::warn!(identity = %self.identity, lease = %self.name, "lost the lease");
                    }
                }
                Err(e) => {
                    tracing::debug!(identity = %self.identity, error = %e, "lease round failed");
                    // Step down before another replica may take over (it waits the whole
                    // duration on its own clock).
                    let stale = last_renewed.is_none_or(|t| t.elapsed() >= self.duration * 2 / 3);
                    if stale && self.leading.swap(false, Ordering::SeqCst) {
                        tracing::warn!(identity = %self.identity, lease = %self.name, error = %e, "stepped down: no renewal");
                    }
                }
            }
            tokio::time::sleep(self.retry()).await;
        }
    }
}
