//! Operating the controller: Prometheus metrics, `/healthz` and `/readyz` on one HTTP port.
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `portico_controller_objects{kind}` | gauge | objects the watchers hold, by kind |
//! | `portico_controller_translate_errors{kind}` | gauge | problems of the last sync, by the kind of the object they name |
//! | `portico_controller_syncs_total` | counter | syncs (translate + render) |
//! | `portico_controller_pushes_total` | counter | syncs that changed what Envoy reads |
//! | `portico_controller_push_latency_seconds` | histogram | first change of a burst → files written |
//! | `portico_controller_leader` | gauge | 1 while this replica holds the Lease |
//!
//! `/healthz` answers 200 while the process serves; `/readyz` 200 once every kind has been
//! listed and a configuration written, else 503.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::reconcile::SyncReport;

/// Upper bounds of the push latency histogram, in seconds.
const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
struct Inner {
    objects: BTreeMap<String, usize>,
    errors: BTreeMap<String, usize>,
    syncs: u64,
    pushes: u64,
    buckets: [u64; BUCKETS.len()],
    latency_sum: f64,
    ready: bool,
}

/// The controller's metrics, shared by the sync loop and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// 1 while this replica leads.
    pub leading: Arc<AtomicBool>,
}

impl Metrics {
    /// Metrics whose leader gauge follows `leading`.
    pub fn new(leading: Arc<AtomicBool>) -> Arc<Metrics> {
        Arc::new(Metrics {
            inner: Mutex::default(),
            leading,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one sync: the objects held by kind, its problems by kind, and — when it wrote —
    /// a push `took` after the first change of its burst.
    pub fn record(&self, objects: BTreeMap<String, usize>, report: &SyncReport, took: Duration) {
        let mut errors: BTreeMap<String, usize> = BTreeMap::new();
        for e in &report.load_errors {
            let kind = e.object_ref.as_ref().map_or("(file)", |r| r.kind.as_str());
            *errors.entry(kind.to_owned()).or_default() += 1;
        }
        for (_, e) in &report.translate_errors {
            *errors.entry(e.object.kind.clone()).or_default() += 1;
        }
        let mut m = self.lock();
        m.objects = objects;
        m.errors = errors;
        m.syncs += 1;
        m.ready = true;
        if !report.written.is_empty() {
            m.pushes += 1;
            let secs = took.as_secs_f64();
            m.latency_sum += secs;
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    m.buckets[i] += 1;
                }
            }
        }
    }

    /// Whether a configuration has been written from a whole picture of the cluster.
    pub fn ready(&self) -> bool {
        self.lock().ready
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP portico_controller_objects Objects the watchers hold, by kind."
        );
        let _ = writeln!(out, "# TYPE portico_controller_objects gauge");
        for (k, n) in &m.objects {
            let _ = writeln!(out, "portico_controller_objects{{kind=\"{k}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP portico_controller_translate_errors Problems of the last sync, by the kind of the object they name.");
        let _ = writeln!(out, "# TYPE portico_controller_translate_errors gauge");
        for (k, n) in &m.errors {
            let _ = writeln!(
                out,
                "portico_controller_translate_errors{{kind=\"{k}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP portico_controller_syncs_total Syncs (translate and render)."
        );
        let _ = writeln!(out, "# TYPE portico_controller_syncs_total counter");
        let _ = writeln!(out, "portico_controller_syncs_total {}", m.syncs);
        let _ = writeln!(
            out,
            "# HELP portico_controller_pushes_total Syncs that changed what Envoy reads."
        );
        let _ = writeln!(out, "# TYPE portico_controller_pushes_total counter");
        let _ = writeln!(out, "portico_controller_pushes_total {}", m.pushes);
        let _ = writeln!(out, "# HELP portico_controller_push_latency_seconds First change of a burst to the files written.");
        let _ = writeln!(
            out,
            "# TYPE portico_controller_push_latency_seconds histogram"
        );
        for (le, n) in BUCKETS.iter().zip(m.buckets) {
            let _ = writeln!(
                out,
                "portico_controller_push_latency_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "portico_controller_push_latency_seconds_bucket{{le=\"+Inf\"}} {}",
            m.pushes
        );
        let _ = writeln!(
            out,
            "portico_controller_push_latency_seconds_sum {}",
            m.latency_sum
        );
        let _ = writeln!(
            out,
            "portico_controller_push_latency_seconds_count {}",
            m.pushes
        );
        let _ = writeln!(
            out,
            "# HELP portico_controller_leader 1 while this replica holds the Lease."
        );
        let _ = writeln!(out, "# TYPE portico_controller_leader gauge");
        let _ = writeln!(
            out,
            "portico_controller_leader {}",
            u8::from(self.leading.load(Ordering::SeqCst))
        );
        out
    }
}

fn answer(metrics: &Metrics, path: &str) -> hyper::Response<Full<Bytes>> {
    let (status, body, content_type) = match path {
        "/metrics" => (200, metrics.render(), "text/plain; version=0.0.4"),
        "/healthz" => (200, "ok\n".to_owned(), "text/plain"),
        "/readyz" if metrics.ready() => (200, "ok\n".to_owned(), "text/plain"),
        "/readyz" => (
            503,
            "not ready: the cluster is not listed yet\n".to_owned(),
            "text/plain",
        ),
        _ => (404, "not found\n".to_owned(), "text/plain"),
    };
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let r = answer(&metrics, req.uri().path());
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds `address` for [`serve`].
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await
}
