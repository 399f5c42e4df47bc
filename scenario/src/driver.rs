//! The one driver every host shares: read each file, prepare it, let the host start what it
//! needs, send each request through the host, check what it observed, and report. A host only
//! implements [`Host`]: how to stand up a scenario's configuration and how to send a request.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use portico_core::config::ForwardMode;

use crate::check::check;
use crate::format::{expand, load, Observed, Request, Scenario};
use crate::prepare::{plan, prepare, Plan, Prepared};

/// How a run is set up.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print translate notes and each request's trace.
    pub verbose: bool,
    /// How the filter hands requests to Envoy.
    pub forward: ForwardMode,
    /// Run on the objects `portico-controller convert` makes of the served Ingresses: a request
    /// whose checks fail where the conversion declared a difference for its host counts as a
    /// declared difference, not a failure.
    pub converted: bool,
}

/// A test host: something that can run a scenario's configuration and send it requests.
pub trait Host {
    /// What the host keeps while one scenario runs (processes, filter instances, …); dropping
    /// it stops everything the scenario started.
    type Session;

    /// Stands up the configuration of `prepared` (the scenario's objects, translated).
    ///
    /// # Errors
    /// Why no request of the scenario can run.
    fn start(
        &mut self,
        file: &str,
        scenario: &Scenario,
        prepared: &Prepared,
        options: &RunOptions,
    ) -> Result<Self::Session, String>;

    /// Sends one request (`repeat` times when it says so) and returns what each attempt got.
    /// `trace` collects the host's account of the last attempt, printed when a check fails.
    fn send(
        &mut self,
        session: &mut Self::Session,
        request: &Request,
        plan: &Plan,
        trace: &mut Vec<String>,
    ) -> Vec<Observed>;

    /// Why this host cannot run a scenario at all (`None`: it can). A skipped file is reported
    /// with its reason and counts neither as passed nor as failed.
    fn skip(&self, _prepared: &Prepared) -> Option<String> {
        None
    }

    /// Why this host cannot send one request of a scenario it runs (`None`: it can).
    fn skip_request(
        &self,
        _prepared: &Prepared,
        _request: &Request,
        _plan: &Plan,
    ) -> Option<String> {
        None
    }

    /// Why the request went where it did, step by step, added to a failed check's report: the
    /// explainer's trace ([`crate::explain::trace`]) on the scenario's configuration.
    fn explain(&self, prepared: &Prepared, request: &Request, plan: &Plan) -> Vec<String> {
        let question = crate::explain::Question {
            request: String::new(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sidecar: plan.via == crate::format::Via::Sidecar,
            source: Some(
                plan.source
                    .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
            ),
            sni: plan.tls.as_ref().map(|t| t.sni.clone().unwrap_or_default()),
            destination: Some(plan.destination),
        };
        let (verdict, mut steps) = crate::explain::trace(
            &prepared.translation.snapshot,
            &plan.method,
            &plan.url,
            &question,
        );
        steps.push(format!("verdict: {verdict}"));
        steps
    }
}

/// The outcome of one request.
#[derive(Debug, Clone)]
pub struct RequestResult {
    /// Scenario file.
    pub file: String,
    /// Scenario name.
    pub scenario: String,
    /// Request name.
    pub request: String,
    /// Unmet expectations (empty: passed, unless skipped).
    pub failures: Vec<String>,
    /// Why the host did not send it (counts neither as passed nor as failed).
    pub skipped: Option<String>,
    /// In a `converted` run, the declared differences that explain its failures (counts
    /// neither as passed nor as failed).
    pub declared: Vec<String>,
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
            .filter(|r| r.failures.is_empty() && r.skipped.is_none())
            .count()
    }

    /// Requests that failed (without a declared difference).
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !r.failures.is_empty() && r.declared.is_empty())
            .count()
    }

    /// Requests answered differently where the conversion declared it (`converted` runs).
    pub fn declared(&self) -> usize {
        self.results
            .iter()
            .filter(|r| !r.failures.is_empty() && !r.declared.is_empty())
            .count()
    }

    /// Requests the host did not send.
    pub fn skipped(&self) -> usize {
        self.results.iter().filter(|r| r.skipped.is_some()).count()
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
            skipped: None,
            declared: Vec::new(),
        })
        .collect()
}

/// One failed pseudo-request for a whole file.
fn file_failure(file: &str, scenario: &str, reason: String) -> Vec<RequestResult> {
    vec![RequestResult {
        file: file.to_owned(),
        scenario: scenario.to_owned(),
        request: "(file)".into(),
        failures: vec![reason],
        skipped: None,
        declared: Vec::new(),
    }]
}

/// Runs one scenario file on `host`. A file that cannot be read, or that has no request,
/// counts as one failed request.
pub fn run_file<H: Host>(host: &mut H, path: &Path, options: &RunOptions) -> Vec<RequestResult> {
    let file = path.display().to_string();
    let scenario = match load(path) {
        Ok(s) => s,
        Err(e) => return file_failure(&file, &file, e),
    };
    if scenario.requests.is_empty() {
        return file_failure(&file, &scenario.name, "the scenario has no requests".into());
    }
    match run_scenario(host, &file, &scenario, options) {
        Ok(results) => results,
        Err(e) => fail_all(&file, &scenario, &e),
    }
}

fn run_scenario<H: Host>(
    host: &mut H,
    file: &str,
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<Vec<RequestResult>, String> {
    let mut notes = Vec::new();
    let converted = if options.converted {
        crate::convert::converted(scenario)
    } else {
        crate::convert::Converted {
            scenario: scenario.clone(),
            differences: Vec::new(),
            default_certificate: None,
        }
    };
    let (scenario, differences) = (&converted.scenario, &converted.differences);
    let prepared = prepare(scenario, options.forward, &mut notes)?;
    if options.verbose {
        for n in &notes {
            eprintln!("  note: {file}: {n}");
        }
    }
    let snapshot = &prepared.translation.snapshot;
    let gateway: Vec<u16> = snapshot.listeners.iter().map(|l| l.port).collect();
    let sidecar = snapshot.egress.is_some();
    if let Some(why) = host.skip(&prepared) {
        println!("skip {file}: {why}");
        return Ok(Vec::new());
    }
    let mut session = host.start(file, scenario, &prepared, options)?;
    let mut results = Vec::new();
    for request in &scenario.requests {
        let mut result = RequestResult {
            file: file.to_owned(),
            scenario: scenario.name.clone(),
            request: request.name.clone(),
            failures: Vec::new(),
            skipped: None,
            declared: Vec::new(),
        };
        match plan(request, &gateway, sidecar, &prepared.key_pairs) {
            Err(e) => result.failures.push(e),
            Ok(plan) if host.skip_request(&prepared, request, &plan).is_some() => {
                result.skipped = host.skip_request(&prepared, request, &plan);
            }
            Ok(plan) => {
                let mut trace = Vec::new();
                let observed = if plan.listening {
                    host.send(&mut session, request, &plan, &mut trace)
                } else {
                    let port = plan.url.port;
                    vec![
                        Observed::ended("refused", format!("nothing listens on port {port}"));
                        request.repeat.unwrap_or(1).max(1) as usize
                    ]
                };
                let mut observed = observed;
                // The converted Gateway serves the default certificate from its Secret: still
                // `default`.
                if let Some(secret) = &converted.default_certificate {
                    for names in observed.iter_mut().filter_map(|o| o.certificate.as_mut()) {
                        if names.contains(secret) {
                            names.push("default".into());
                        }
                    }
                }
                result.failures = check(&request.expect, &observed, &prepared.backends);
                if !result.failures.is_empty() {
                    result.declared = crate::convert::declared(differences, &plan)
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                }
                if options.verbose {
                    for t in &trace {
                        eprintln!("  {}: {t}", request.name);
                    }
                }
                if !result.failures.is_empty() {
                    // The host's account of the last attempt, then the router's reasoning.
                    result
                        .failures
                        .extend(trace.iter().map(|t| format!("trace: {t}")));
                    result.failures.extend(
                        host.explain(&prepared, request, &plan)
                            .into_iter()
                            .map(|t| format!("explain: {t}")),
                    );
                }
            }
        }
        results.push(result);
    }
    drop(session);
    Ok(results)
}

/// Prints one file's results: a line for the file, then each failed request with its failures.
pub fn report_file(path: &Path, results: &[RequestResult]) {
    let failed = results
        .iter()
        .filter(|r| !r.failures.is_empty() && r.declared.is_empty())
        .count();
    let declared = results
        .iter()
        .filter(|r| !r.failures.is_empty() && !r.declared.is_empty())
        .count();
    let skipped = results.iter().filter(|r| r.skipped.is_some()).count();
    println!(
        "{} {}: {} requests, {} failed{}{}",
        if failed == 0 { "ok  " } else { "FAIL" },
        path.display(),
        results.len(),
        failed,
        if declared > 0 {
            format!(", {declared} differ as declared")
        } else {
            String::new()
        },
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        }
    );
    for r in results.iter().filter(|r| !r.failures.is_empty()) {
        if r.declared.is_empty() {
            println!("  FAIL {} / {}", r.scenario, r.request);
            for m in &r.failures {
                println!("       {m}");
            }
        } else {
            println!(
                "  DIFFERS {} / {} ({})",
                r.scenario, r.request, r.failures[0]
            );
            for d in &r.declared {
                println!("       declared: {d}");
            }
        }
    }
}

/// Prints the totals: the number of files and the closing line every harness prints.
pub fn report_summary(summary: &Summary) {
    let distinct: BTreeSet<_> = summary.results.iter().map(|r| r.file.clone()).collect();
    println!("{} scenario files", distinct.len());
    let skipped: BTreeSet<_> = summary
        .results
        .iter()
        .filter_map(|r| r.skipped.as_deref())
        .collect();
    for why in skipped {
        println!("skipped: {why}");
    }
    if summary.skipped() > 0 {
        println!("{} requests skipped", summary.skipped());
    }
    if summary.declared() > 0 {
        println!(
            "{} requests answered differently where the conversion declared a difference",
            summary.declared()
        );
    }
    println!("{}", summary.closing_line());
}

/// Runs every scenario under `paths` on `host`, printing each file's result as it comes, and
/// returns the totals.
///
/// # Errors
/// A path that does not exist, or paths that hold no scenario file.
pub fn run_paths<H: Host>(
    host: &mut H,
    paths: &[PathBuf],
    options: &RunOptions,
) -> Result<Summary, String> {
    let files = expand(paths)?;
    if files.is_empty() {
        return Err("no scenario file under the given paths".into());
    }
    let mut summary = Summary::default();
    let mut skipped = 0;
    for f in files {
        let results = run_file(host, &f, options);
        if results.is_empty() {
            // Skipped: `run_scenario` said why.
            skipped += 1;
            continue;
        }
        report_file(&f, &results);
        summary.results.extend(results);
    }
    if skipped > 0 {
        println!("{skipped} scenario files skipped");
    }
    report_summary(&summary);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host that answers every request 404 and counts what it was asked.
    #[derive(Default)]
    struct Fixed {
        started: usize,
        sent: Vec<String>,
    }

    impl Host for Fixed {
        type Session = ();

        fn start(
            &mut self,
            _: &str,
            _: &Scenario,
            _: &Prepared,
            _: &RunOptions,
        ) -> Result<(), String> {
            self.started += 1;
            Ok(())
        }

        fn send(
            &mut self,
            _: &mut (),
            request: &Request,
            plan: &Plan,
            trace: &mut Vec<String>,
        ) -> Vec<Observed> {
            self.sent
                .push(format!("{} {}", plan.method, plan.authority));
            trace.push("fixed answer".into());
            let once = Observed {
                status: Some(404),
                ..Observed::default()
            };
            vec![once; request.repeat.unwrap_or(1).max(1) as usize]
        }
    }

    const INGRESS: &str = "objects:\n- {apiVersion: networking.k8s.io/v1, kind: Ingress, metadata: {name: i, namespace: default}, spec: {rules: [{host: a.example.com}]}}\n";

    fn run(yaml: &str) -> (Fixed, Vec<RequestResult>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, yaml).unwrap();
        let mut host = Fixed::default();
        let results = run_file(&mut host, &path, &RunOptions::default());
        (host, results)
    }

    #[test]
    fn checks_what_the_host_observed_and_adds_its_trace_to_failures() {
        let (host, results) = run(&format!(
            "name: s\n{INGRESS}requests:\n\
             - {{name: ok, url: http://a.example.com/, method: PUT, expect: {{status: 404}}}}\n\
             - {{name: bad, url: http://a.example.com/, repeat: 3, expect: {{status: 200}}}}\n\
             - {{name: no listener, url: http://a.example.com:9/, expect: {{status: 404}}}}\n"
        ));
        assert_eq!(host.started, 1);
        assert_eq!(host.sent, ["PUT a.example.com", "GET a.example.com"]);
        assert!(results[0].failures.is_empty(), "{:?}", results[0]);
        assert_eq!(
            results[1].failures[0],
            "[0] status: expected 200, got 404 \"\""
        );
        assert!(results[1]
            .failures
            .contains(&"trace: fixed answer".to_owned()));
        assert_eq!(
            results[2].failures,
            ["no listener for port 9 in this configuration"]
        );
    }

    #[test]
    fn a_file_that_cannot_run_fails_and_is_never_started() {
        for (yaml, want) in [
            ("name: empty\n", "the scenario has no requests"),
            ("- name: a list\n", "invalid type"),
            ("name: s\nrequests: []\n", "the scenario has no requests"),
        ] {
            let (host, results) = run(yaml);
            assert_eq!(host.started, 0, "{yaml}");
            assert_eq!(results.len(), 1, "{yaml}");
            assert!(
                results[0].failures[0].contains(want),
                "{yaml}: {:?}",
                results[0]
            );
        }
    }

    #[test]
    fn paths_without_scenarios_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_paths(
            &mut Fixed::default(),
            &[dir.path().to_path_buf()],
            &RunOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err, "no scenario file under the given paths");
        assert!(run_paths(
            &mut Fixed::default(),
            &[dir.path().join("missing")],
            &RunOptions::default()
        )
        .is_err());
    }
}
