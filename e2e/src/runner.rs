//! Runs scenario files through a real Envoy: translate the objects, render, start Envoy and an
//! echo server on every endpoint, send each request, check every expectation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use portico_controller::envoy::{render, RenderOptions, BOOTSTRAP};
use portico_controller::sink::FileSink;
use portico_core::config::ForwardMode;

use crate::client::{send, Outgoing};
use crate::proxy::{free_port, routing_wasm, Envoy};
use crate::scenario::{self, check, Scenario};

/// The outcome of one request.
#[derive(Debug, Clone)]
pub struct RequestResult {
    /// Scenario file.
    pub file: String,
    /// Scenario name.
    pub scenario: String,
    /// Request name.
    pub request: String,
    /// Unmet expectations (empty: passed).
    pub failures: Vec<String>,
}

/// Totals over many scenarios.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Every request's result.
    pub results: Vec<RequestResult>,
}

impl Summary {
    /// Requests that passed.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.failures.is_empty())
            .count()
    }

    /// Requests that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// The closing line every harness prints.
    pub fn closing_line(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

/// Every request of a scenario failed for one reason.
pub fn fail_all(file: &str, scenario: &Scenario, reason: &str) -> Vec<RequestResult> {
    scenario
        .requests
        .iter()
        .map(|r| RequestResult {
            file: file.to_owned(),
            scenario: scenario.name.clone(),
            request: r.name.clone(),
            failures: vec![reason.to_owned()],
        })
        .collect()
}

/// How a harness run is set up.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print translate notes and Envoy's log tail.
    pub verbose: bool,
    /// How the filter hands requests to Envoy.
    pub forward: ForwardMode,
}

/// Runs one scenario file. A file that cannot be read counts as one failed request.
pub async fn run_file(path: &Path, run: &RunOptions) -> Vec<RequestResult> {
    let file = path.display().to_string();
    let scenario = match scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            return vec![RequestResult {
                file: file.clone(),
                scenario: file,
                request: "(file)".into(),
                failures: vec![e],
            }]
        }
    };
    match run_scenario(&file, &scenario, run).await {
        Ok(results) => results,
        Err(e) => fail_all(&file, &scenario, &e),
    }
}

async fn run_scenario(
    file: &str,
    scenario: &Scenario,
    run: &RunOptions,
) -> Result<Vec<RequestResult>, String> {
    let verbose = run.verbose;
    let mut notes = Vec::new();
    let prepared = scenario::prepare(scenario, run.forward, &mut notes)?;
    if verbose {
        for n in &notes {
            eprintln!("  note: {file}: {n}");
        }
    }
    let translation = prepared.translation;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut port_map = BTreeMap::new();
    for l in &translation.snapshot.listeners {
        port_map.insert(l.port, free_port().map_err(|e| e.to_string())?);
    }
    let sidecar_port = if translation.snapshot.sidecar.is_empty() {
        None
    } else {
        Some(free_port().map_err(|e| e.to_string())?)
    };
    let options = RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: work.path().join("xds"),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: port_map.clone(),
        sidecar_port,
    };
    FileSink::new(options.xds_dir.clone())
        .write(&render(&translation.snapshot, &options))
        .map_err(|e| format!("writing config: {e}"))?;
    let mut endpoints: Vec<SocketAddr> = prepared
        .backends
        .keys()
        .filter_map(|a| a.parse().ok())
        .collect();
    for a in scenario::request_addresses(scenario) {
        if let Ok(addr) = a.parse() {
            if !endpoints.contains(&addr) {
                endpoints.push(addr);
            }
        }
    }
    let echo = crate::echo::start(endpoints).await?;
    let listeners: Vec<SocketAddr> = port_map
        .values()
        .chain(&sidecar_port)
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let sidecar_ports: Vec<u16> = translation
        .snapshot
        .sidecar
        .iter()
        .map(|l| l.port)
        .collect();
    let bootstrap = options.xds_dir.join(BOOTSTRAP);
    let envoy = tokio::task::block_in_place(|| Envoy::start(&bootstrap, work.path(), &listeners))?;
    let backends = prepared.backends;

    let mut results = Vec::new();
    for request in &scenario.requests {
        let mut result = RequestResult {
            file: file.to_owned(),
            scenario: scenario.name.clone(),
            request: request.name.clone(),
            failures: Vec::new(),
        };
        let ports: Vec<u16> = port_map.keys().copied().collect();
        let plan = match scenario::plan(request, &ports, &sidecar_ports) {
            Ok(p) => p,
            Err(e) => {
                result.failures.push(e);
                results.push(result);
                continue;
            }
        };
        let (bind, proxy_destination) = match (plan.via, sidecar_port) {
            (scenario::Via::Sidecar, Some(p)) => (p, Some(plan.destination)),
            _ => (port_map[&plan.url.port], None),
        };
        let out = Outgoing {
            target: SocketAddr::from(([127, 0, 0, 1], bind)),
            proxy_destination,
            source: plan.source,
            method: plan.method,
            authority: plan.authority,
            path: plan.url.path.clone(),
            headers: request.headers.clone(),
            http2: request.http_version.as_deref() == Some("2"),
            timeout: Duration::from_secs(10),
        };
        let seen = echo.hits.lock().map(|h| h.len()).unwrap_or(0);
        let mut observed = Vec::new();
        for _ in 0..request.repeat.unwrap_or(1).max(1) {
            observed.push(send(&out).await);
        }
        if request.expect.mirror.is_some() {
            // Mirror copies travel on their own: give them a moment to arrive.
            let copies = shadow_copies(&echo, seen, Duration::from_secs(2)).await;
            if let Some(last) = observed.last_mut() {
                last.mirrored = copies;
            }
        }
        result.failures = check(&request.expect, &observed, &backends);
        results.push(result);
    }
    if verbose {
        eprintln!(
            "  envoy pid {} log tail:\n{}",
            envoy.pid(),
            envoy.log_tail()
        );
    }
    drop(envoy);
    Ok(results)
}

/// The mirror copies (host `…-shadow`) the echo servers received after the first `seen` hits,
/// waiting up to `wait` for the first one.
async fn shadow_copies(
    echo: &crate::echo::EchoServers,
    seen: usize,
    wait: Duration,
) -> Vec<crate::scenario::Echo> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let copies: Vec<_> = echo
            .hits
            .lock()
            .map(|h| {
                h.iter()
                    .skip(seen)
                    .filter(|e| is_shadow(&e.host))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if !copies.is_empty() || tokio::time::Instant::now() >= deadline {
            return copies;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a Host header is a mirror copy's (`name-shadow` or `name-shadow:port`).
fn is_shadow(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    name.ends_with("-shadow")
}

/// Prints one file's results: a line for the file, then each failed request with its failures.
pub fn report_file(path: &Path, results: &[RequestResult]) {
    let failed = results.iter().filter(|r| !r.failures.is_empty()).count();
    println!(
        "{} {}: {} requests, {} failed",
        if failed == 0 { "ok  " } else { "FAIL" },
        path.display(),
        results.len(),
        failed
    );
    for r in results.iter().filter(|r| !r.failures.is_empty()) {
        println!("  FAIL {} / {}", r.scenario, r.request);
        for m in &r.failures {
            println!("       {m}");
        }
    }
}

/// Prints the totals: the number of files and the closing line every harness prints.
pub fn report_summary(summary: &Summary) {
    let distinct: BTreeSet<_> = summary.results.iter().map(|r| r.file.clone()).collect();
    println!("{} scenario files", distinct.len());
    println!("{}", summary.closing_line());
}

/// Runs every scenario under `paths`, printing failures as they come, and returns the totals.
pub async fn run_paths(paths: &[std::path::PathBuf], run: &RunOptions) -> Result<Summary, String> {
    let files = scenario::expand(paths)?;
    let mut summary = Summary::default();
    for f in files {
        let results = run_file(&f, run).await;
        report_file(&f, &results);
        summary.results.extend(results);
    }
    report_summary(&summary);
    Ok(summary)
}
