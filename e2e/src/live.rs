//! What the live-update tests share: the controller following its manifests directory while
//! clients keep a request going, both bounded, and what the clients saw go wrong.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portico_controller::DirController;
use portico_scenario::format::Observed;

use crate::client::{send, Outgoing};

/// The controller and the load, running until [`Live::stop`].
#[derive(Debug)]
pub struct Live {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    sync: Option<std::thread::JoinHandle<Option<String>>>,
    clients: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Live {
    /// Starts `controller` polling its directory every 100 ms (as `portico-controller run`
    /// does; `None`: the test syncs it) and `clients` tasks sending `out` in a loop, at most
    /// `cap` requests in all; a request for which `ok` is false counts as failed (as does a
    /// failed sync, which stops the controller). Call from a tokio runtime.
    pub fn start(
        controller: Option<DirController>,
        out: &Outgoing,
        clients: usize,
        cap: u64,
        ok: fn(&Observed) -> bool,
    ) -> Live {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sync = controller.map(|mut controller| {
            std::thread::spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    if let Err(e) = controller.sync() {
                        return Some(format!("the controller's sync failed: {e}"));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                None
            })
        });
        let sent = Arc::new(AtomicU64::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, sent, out) = (stop.clone(), sent.clone(), out.clone());
                tokio::spawn(async move {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < cap {
                        let o = send(&out).await;
                        sent.fetch_add(1, Ordering::SeqCst);
                        if !ok(&o) {
                            failures.push(o.summary());
                        }
                    }
                    failures
                })
            })
            .collect();
        Live {
            stop,
            sent,
            sync,
            clients,
        }
    }

    /// Stops both; returns how many requests were sent and what each failed one saw.
    pub async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        for c in self.clients {
            failures.extend(
                c.await
                    .unwrap_or_else(|e| vec![format!("client task: {e}")]),
            );
        }
        match self.sync.map(std::thread::JoinHandle::join) {
            None | Some(Ok(None)) => {}
            Some(Ok(Some(e))) => failures.push(e),
            Some(Err(_)) => failures.push("the controller's sync panicked".into()),
        }
        (self.sent.load(Ordering::SeqCst), failures)
    }
}
