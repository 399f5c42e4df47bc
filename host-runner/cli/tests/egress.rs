//! The egress filter (`portico_filter_egress.wasm`) on host-runner: every verdict counted by
//! outcome and entry, every block logged with what decided it, and a rejected configuration
//! never opening what REGISTRY_ONLY closes. Needs `just build`.

use std::collections::BTreeMap;

use portico_core::egress::{
    EgressConfig, Entry, EntryPort, Mode, Protocol, Scope, EGRESS_API_VERSION,
};
use portico_host_runner::abi::LogLevel;
use portico_host_runner::envoy::{Connected, Decoded, FailurePolicy, FilterSpec, Worker};
use portico_host_runner::Runtime;

fn module(runtime: &Runtime) -> portico_host_runner::Module {
    let path = portico_scenario::workspace_root()
        .join("target/wasm32-wasip1/wasm/portico_filter_egress.wasm");
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `just build`)", path.display()));
    runtime.compile(&bytes).unwrap()
}

fn config(mode: Mode) -> EgressConfig {
    let entry = |name: &str, hosts: &[&str], addresses: &[&str], ports: Vec<EntryPort>| Entry {
        name: format!("ServiceEntry default/{name}"),
        id: format!("serviceentry.default.{name}"),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        endpoints: Vec::new(),
        original_destination: false,
        ports,
    };
    EgressConfig {
        api_version: EGRESS_API_VERSION.into(),
        generation: "g1".into(),
        verify_destination: false,
        scopes: vec![Scope {
            name: "mesh".into(),
            sources: None,
            mode,
            entries: vec![
                entry(
                    "httpbin",
                    &["httpbin.example.com"],
                    &[],
                    vec![EntryPort {
                        number: 80,
                        protocol: Protocol::Http,
                        cluster: String::new(),
                    }],
                ),
                entry(
                    "db",
                    &["db.example.com"],
                    &["127.0.90.1"],
                    vec![EntryPort {
                        number: 5432,
                        protocol: Protocol::Tcp,
                        cluster: "outbound|5432||db.example.com".into(),
                    }],
                ),
            ],
        }],
    }
}

fn spec(runtime: &Runtime, root: &str, config: &EgressConfig) -> FilterSpec {
    FilterSpec {
        name: root.to_owned(),
        module: module(runtime),
        code_id: "egress".into(),
        vm_id: "portico-egress".into(),
        root_id: root.to_owned(),
        configuration: config.to_json().into_bytes(),
        failure_policy: FailurePolicy::FailReload,
    }
}

/// The egress filter as the sidecar's HTTP chains run it.
fn http_worker(runtime: &Runtime, config: &EgressConfig) -> Worker {
    Worker::new(
        runtime.clone(),
        vec![spec(runtime, "portico-egress-http", config)],
    )
    .unwrap()
}

/// The egress filter as the sidecar's TCP chains run it.
fn tcp_worker(runtime: &Runtime, config: &EgressConfig) -> Worker {
    let specs = vec![spec(runtime, "portico-egress-tcp", config)];
    Worker::with_chain(runtime.clone(), specs, Vec::new()).unwrap()
}

fn properties(destination: &str) -> BTreeMap<Vec<String>, Vec<u8>> {
    let prop = |a: &str, b: &str| vec![a.to_owned(), b.to_owned()];
    BTreeMap::from([
        (prop("source", "address"), b"127.0.0.9:40001".to_vec()),
        (
            prop("destination", "address"),
            destination.as_bytes().to_vec(),
        ),
    ])
}

/// An HTTP request through the egress filter: its status when it answered, 0 when it let the
/// request through, -1 when it reset the stream.
fn http(worker: &mut Worker, authority: &str, destination: &str) -> i32 {
    worker.connection = properties(destination);
    let headers = vec![
        (":authority".to_owned(), authority.to_owned()),
        (":path".to_owned(), "/".to_owned()),
        (":method".to_owned(), "GET".to_owned()),
    ];
    let (decoded, contexts) = worker.decode(headers, b"", &mut Vec::new());
    let status = match &decoded {
        Decoded::Forward(_) => 0,
        Decoded::Reply { response, .. } => {
            assert!(response.body.is_empty(), "block_all has no body");
            i32::from(response.status)
        }
        Decoded::Reset(_) => -1,
        Decoded::Paused(f) => panic!("paused by {f}"),
    };
    let _ = worker.encode(Default::default(), &contexts, &mut Vec::new());
    status
}

fn connect(worker: &mut Worker, destination: &str) -> Option<String> {
    worker.connection = properties(destination);
    match worker.connect(b"\x16", &mut Vec::new()) {
        Connected::Open {
            filter_state,
            contexts,
        } => {
            worker.disconnect(&contexts);
            filter_state
                .into_iter()
                .find(|(k, _)| k == "envoy.tcp_proxy.cluster")
                .map(|(_, v)| String::from_utf8(v).unwrap())
        }
        Connected::Closed(_) | Connected::Paused(_) => None,
    }
}

fn counter(runtime: &Runtime, name: &str) -> i64 {
    runtime.shared().metric(name).map_or(0, |m| m.value)
}

#[test]
fn every_verdict_is_counted_and_every_block_logged() {
    let runtime = Runtime::new().unwrap();
    let cfg = config(Mode::RegistryOnly);
    let mut web = http_worker(&runtime, &cfg);
    assert_eq!(http(&mut web, "httpbin.example.com", "127.0.9.9:80"), 0);
    assert_eq!(http(&mut web, "unknown.example.org", "127.0.9.9:80"), 502);
    // No HTTP service on that port: Istio's TCP catch-all closes the connection.
    assert_eq!(http(&mut web, "unknown.example.org", "127.0.9.9:8080"), -1);
    let mut tcp = tcp_worker(&runtime, &cfg);
    assert_eq!(
        connect(&mut tcp, "127.0.90.1:5432").as_deref(),
        Some("outbound|5432||db.example.com")
    );
    assert_eq!(connect(&mut tcp, "127.0.90.2:5432"), None);

    assert_eq!(counter(&runtime, "portico_egress_allowed_total"), 2);
    assert_eq!(counter(&runtime, "portico_egress_blocked_total"), 3);
    assert_eq!(counter(&runtime, "portico_egress_passthrough_total"), 0);
    assert_eq!(
        counter(
            &runtime,
            "portico_egress.allowed.serviceentry.default.httpbin"
        ),
        1
    );
    assert_eq!(
        counter(&runtime, "portico_egress.allowed.serviceentry.default.db"),
        1
    );
    assert_eq!(counter(&runtime, "portico_egress.blocked.unknown"), 3);

    let logs = web.vm(0).logs_at(LogLevel::Info);
    let line = logs
        .iter()
        .find(|l| l.contains("blocked http"))
        .unwrap_or_else(|| panic!("{logs:?}"));
    assert_eq!(
        line,
        "portico-egress: blocked http source=127.0.0.9 destination=127.0.9.9:80 host=unknown.example.org scope=\"mesh\" entry=unknown rule=\"REGISTRY_ONLY: no ServiceEntry or Service has host unknown.example.org on port 80\""
    );
    let logs = tcp.vm(0).logs_at(LogLevel::Info);
    assert!(
        logs.iter().any(|l| l.starts_with("portico-egress: blocked tcp source=127.0.0.9 destination=127.0.90.2:5432 sni=- scope=\"mesh\" entry=unknown rule=\"REGISTRY_ONLY: no ServiceEntry or Service takes 127.0.90.2:5432 by address\"")),
        "{logs:?}"
    );
    // Allowed verdicts are not logged at info.
    assert!(!logs.iter().any(|l| l.contains("allowed")), "{logs:?}");
}

#[test]
fn allow_any_counts_passthrough() {
    let runtime = Runtime::new().unwrap();
    let cfg = config(Mode::AllowAny);
    let mut web = http_worker(&runtime, &cfg);
    assert_eq!(http(&mut web, "unknown.example.org", "127.0.9.9:80"), 0);
    let mut tcp = tcp_worker(&runtime, &cfg);
    assert_eq!(
        connect(&mut tcp, "127.0.90.2:5432").as_deref(),
        Some(portico_core::config::PASSTHROUGH_CLUSTER)
    );
    assert_eq!(counter(&runtime, "portico_egress_passthrough_total"), 2);
    assert_eq!(counter(&runtime, "portico_egress.passthrough.unknown"), 2);
}

/// A configuration the filter refuses (as Envoy's ECDS delivers a bad update) leaves the last
/// good one in force: what REGISTRY_ONLY blocked stays blocked. A filter that never had a good
/// configuration does not start (Envoy refuses such a listener); nothing is let through.
#[test]
fn a_rejected_configuration_never_opens() {
    let runtime = Runtime::new().unwrap();
    let cfg = config(Mode::RegistryOnly);
    let mut web = http_worker(&runtime, &cfg);
    let mut tcp = tcp_worker(&runtime, &cfg);
    let mut open = config(Mode::AllowAny);
    open.scopes[0].entries[0].addresses = vec!["not-an-ip".into()];
    for bad in [
        b"{".to_vec(),
        br#"{"apiVersion":"egress.portico.dev/v1alpha1","generation":"x","scopes":[],"extra":1}"#
            .to_vec(),
        open.to_json().into_bytes(),
    ] {
        let err = web.reconfigure(0, &bad).unwrap_err();
        assert!(err.to_string().contains("proxy_on_configure"), "{err}");
        tcp.reconfigure(0, &bad).unwrap_err();
        assert_eq!(http(&mut web, "unknown.example.org", "127.0.9.9:80"), 502);
        assert_eq!(connect(&mut tcp, "127.0.90.2:5432"), None);
        assert_eq!(http(&mut web, "httpbin.example.com", "127.0.9.9:80"), 0);
    }
    let logs = web.vm(0).logs_at(LogLevel::Error);
    assert!(
        logs.iter().any(|l| l
            .contains("rejected configuration: config field scopes[0].entries[0].addresses[0]")),
        "{logs:?}"
    );
    let never = Worker::new(
        runtime.clone(),
        vec![FilterSpec {
            configuration: b"{}".to_vec(),
            ..spec(&runtime, "portico-egress-http", &cfg)
        }],
    );
    assert!(never.is_err());
}
