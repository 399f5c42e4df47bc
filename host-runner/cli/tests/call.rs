//! `host-runner call` on an SDK-built module (the probe, `host-runner/probe`): callouts answered
//! from the command line, gRPC calls, network filters, properties. Needs `just build`.

use std::path::PathBuf;

fn probe_path() -> PathBuf {
    std::env::var_os("PORTICO_PROBE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            portico_scenario::workspace_root()
                .join("target/wasm32-wasip1/wasm/portico_host_runner_probe.wasm")
        })
}

/// Runs `host-runner call` on the probe; returns whether it succeeded and what it printed.
fn call_probe(config: &str, args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.json");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .arg("call")
        .arg("--module")
        .arg(probe_path())
        .arg("--config")
        .arg(&path)
        .args(["--root-id", "probe"])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `host-runner call --callout` answers the module's HTTP callouts; without an answer the
/// callout stays pending and the request paused.
#[test]
fn call_answers_callouts_from_the_command_line() {
    let http = r#"{"kind": "http"}"#;
    let request = [
        "--request",
        "GET http://probe.test/p?q=1",
        "-H",
        "x-probe: callout",
    ];
    let with = |extra: &[&str]| call_probe(http, &[&request[..], extra].concat());
    let (ok, out) = with(&["--callout", "auth=204;x-a: b;body=fine; really"]);
    assert!(ok, "{out}");
    assert!(out.contains("decision: continue"), "{out}");
    assert!(out.contains("  x-callout-status: 204\n"), "{out}");
    assert!(out.contains("  x-callout-body: fine; really\n"), "{out}");
    assert!(
        out.contains("callout 1 to auth /p?q=1 answered 204"),
        "{out}"
    );
    assert!(out.contains("pending http callouts: 0"), "{out}");

    let (ok, out) = with(&["--callout", "auth=reset"]);
    assert!(ok, "{out}");
    assert!(out.contains("  x-callout-status: \n"), "{out}");

    let (ok, out) = with(&[]);
    assert!(!ok, "{out}");
    assert!(out.contains("decision: paused"), "{out}");
    assert!(out.contains("pending http callouts: 1"), "{out}");
    assert!(out.contains("(no --callout for auth)"), "{out}");

    let (ok, out) = with(&["--callout", "auth=fine"]);
    assert!(!ok && out.contains("the status is not a number"), "{out}");
}

/// `--grpc-callout`, `--tcp` and `--property`.
#[test]
fn call_answers_grpc_calls_and_runs_network_filters() {
    let (ok, out) = call_probe(
        r#"{"kind": "http"}"#,
        &[
            "--request",
            "GET http://probe.test/",
            "-H",
            "x-probe: grpc",
            "--grpc-callout",
            "grpc-svc=0;12345",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("  x-grpc-status: 0\n"), "{out}");
    assert!(out.contains("  x-grpc-message-size: 5\n"), "{out}");

    let (ok, out) = call_probe(
        r#"{"kind": "stream"}"#,
        &[
            "--tcp",
            "cluster-a",
            "--property",
            "source/address=10.1.2.3:9",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("filter state envoy.tcp_proxy.cluster = cluster-a"),
        "{out}"
    );
    assert!(
        out.contains(r#"probe: new connection from Some("10.1.2.3:9")"#),
        "{out}"
    );
}
