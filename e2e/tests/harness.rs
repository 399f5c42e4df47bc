//! The harness itself: it fails what it should, and `envoy --mode validate` accepts every config
//! the controller renders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use portico_controller::envoy::{render, render_static, RenderOptions, BOOTSTRAP};
use portico_controller::objects::Object;
use portico_controller::source::load_dir;
use portico_controller::translate::{translate, Options, Snapshot};
use portico_e2e::proxy::{envoy_binary, routing_wasm, workspace_root};
use portico_e2e::runner::EnvoyHost;
use portico_scenario::driver::run_file;
use portico_scenario::format::expand;
use portico_scenario::RunOptions;

const OBJECTS: &str = r#"
objects:
  - apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: shop}
    spec: {rules: [{host: shop.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]}
  - apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec: {ports: [{name: http, port: 80}]}
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
    addressType: IPv4
    endpoints: [{addresses: ["127.0.31.1"]}]
    ports: [{name: http, port: 8080}]
"#;

fn run_yaml(yaml: &str) -> Vec<(String, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut host = EnvoyHost::new().unwrap();
    run_file(&mut host, &path, &RunOptions::default())
        .into_iter()
        .map(|r| (r.request, r.failures))
        .collect()
}

#[test]
fn wrong_expectations_fail_with_expected_and_got() {
    let results = run_yaml(&format!(
        "name: wrong\n{OBJECTS}requests:\n\
         - {{name: right, url: http://shop.example.com/a, expect: {{backend: web.default.svc.cluster.local:80, endpoint: \"127.0.31.1:8080\", upstream: {{path: /a, host: shop.example.com}}}}}}\n\
         - {{name: wrong backend, url: http://shop.example.com/, expect: {{backend: api.default.svc.cluster.local:80}}}}\n\
         - {{name: wrong status, url: http://nobody.example.com/, expect: {{status: 200}}}}\n\
         - {{name: wrong path, url: http://shop.example.com/a, expect: {{upstream: {{path: /b}}}}}}\n\
         - {{name: wrong body, url: http://nobody.example.com/, expect: {{status: 404, body: nope}}}}\n"
    ));
    assert_eq!(results[0], ("right".into(), vec![]));
    // Each failure is its expected-and-got line, then the explainer's trace of the request on the
    // scenario's configuration, ending with the verdict.
    let checks = |i: usize| -> Vec<&str> {
        let lines = &results[i].1;
        let (checks, trace): (Vec<_>, Vec<_>) =
            lines.iter().partition(|l| !l.starts_with("explain: "));
        assert!(
            trace
                .last()
                .is_some_and(|l| l.starts_with("explain: verdict: ")),
            "{lines:?}"
        );
        checks.into_iter().map(String::as_str).collect()
    };
    assert_eq!(checks(1), ["backend: expected api.default.svc.cluster.local:80, got web.default.svc.cluster.local:80"]);
    assert!(results[1]
        .1
        .iter()
        .any(|l| l.contains("→ forward to web.default.svc.cluster.local:80")));
    assert_eq!(
        checks(2),
        ["status: expected 200, got 404 \"404 page not found\\n\""]
    );
    assert!(
        results[2]
            .1
            .contains(&"explain: verdict: no route → 404".to_owned()),
        "{:?}",
        results[2].1
    );
    assert_eq!(checks(3), ["upstream path: expected \"/b\", got \"/a\""]);
    assert_eq!(
        checks(4),
        ["body: expected \"nope\", got \"404 page not found\\n\""]
    );
}

#[test]
fn what_cannot_run_fails_with_a_reason() {
    let results = run_yaml(&format!(
        "name: unsupported\n{OBJECTS}requests:\n\
         - {{name: tcp, url: \"tcp://shop.example.com:443\", protocol: tcp, expect: {{connection: closed}}}}\n\
         - {{name: no listener, url: http://shop.example.com:8443/, expect: {{status: 200}}}}\n"
    ));
    assert!(
        results[0].1[0]
            .starts_with("not supported by this harness yet: raw TCP to a gateway listener"),
        "{:?}",
        results[0]
    );
    assert_eq!(
        results[1].1,
        ["no listener for port 8443 in this configuration"]
    );

    let with_route = OBJECTS.replace(
        "objects:\n",
        "objects:\n  - {apiVersion: networking.istio.io/v1, kind: WorkloadEntry, metadata: {name: r}, spec: {}}\n",
    );
    let results = run_yaml(&format!("name: kinds\n{with_route}requests:\n- {{name: r, url: http://shop.example.com/, expect: {{status: 200}}}}\n"));
    assert_eq!(
        results[0].1,
        ["translate does not support: objects[0] WorkloadEntry default/r: networking.istio.io/v1 WorkloadEntry is not supported"]
    );

    let remote = OBJECTS.replace("127.0.31.1", "10.0.0.1");
    let results = run_yaml(&format!("name: remote\n{remote}requests:\n- {{name: r, url: http://shop.example.com/, expect: {{status: 200}}}}\n"));
    assert_eq!(
        results[0].1,
        ["scenario rejected: endpoint address \"10.0.0.1\" is not loopback (127.0.0.0/8)"]
    );

    let results = run_yaml(
        "name: typo\nrequests:\n- {name: r, url: http://a/, expect: {status: 200}, header: {}}\n",
    );
    assert!(
        results[0].1[0].contains("requests[0].header: unknown field `header`"),
        "{:?}",
        results[0]
    );
}

fn options(dir: &Path) -> RenderOptions {
    RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: dir.to_owned(),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::from([(80, 18081), (443, 18444)]),
        // The sidecar listener too, so validation covers it.
        sidecar_port: Some(18082),
    }
}

fn validate(bootstrap: &Path) -> Result<(), String> {
    let out = Command::new(envoy_binary())
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "error",
            "-c",
        ])
        .arg(bootstrap)
        .output()
        .map_err(|e| format!("running {}: {e}", envoy_binary().display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            bootstrap.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Validates the file-xDS bootstrap (only with `dynamic`: validate mode does not read the xDS
/// files, so it checks the bootstrap alone) and the static bootstrap, which holds every listener,
/// cluster and filter configuration inline and runs the filter's `on_configure`.
fn validate_both(snapshot: &Snapshot, label: &str, dynamic: bool) {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let files = render(snapshot, &opts);
    portico_controller::sink::FileSink::new(dir.path().to_owned())
        .write(&files)
        .unwrap();
    if dynamic {
        validate(&dir.path().join(BOOTSTRAP)).unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    let static_path = dir.path().join("static.yaml");
    std::fs::write(&static_path, render_static(snapshot, &opts)).unwrap();
    validate(&static_path).unwrap_or_else(|e| panic!("{label} (static): {e}"));
}

/// The configs the controller renders — the demo's and the scenarios' below — pass
/// `envoy --mode validate`, which also runs the routing filter's `on_configure` on the static
/// variant.
#[test]
fn envoy_validates_every_rendered_config() {
    let mesh = |objects: &[Object]| {
        let options = Options {
            mesh: true,
            ..Options::default()
        };
        translate(objects, &options).snapshot
    };
    let root = workspace_root();
    let demo = load_dir(&root.join("testdata/demo")).unwrap();
    let objects: Vec<Object> = demo.manifests.into_iter().map(|m| m.object).collect();
    validate_both(&mesh(&objects), "demo", true);
    // Every TLS and egress scenario (secrets, TLS chains, the sidecar listener, the egress
    // filters) and the first of each other folder. Each validation is an Envoy compiling the
    // modules (~3 s of CPU); every scenario's dynamic configuration is loaded by a real Envoy
    // in `just e2e` anyway, which fails the scenario if Envoy refuses any of it.
    let scenarios = root.join("testdata/scenarios");
    let mut files: Vec<PathBuf> =
        expand(&[scenarios.join("tls"), scenarios.join("egress")]).unwrap();
    for folder in ["gateway-api", "ingress", "ingress-nginx", "istio"] {
        files.push(expand(&[scenarios.join(folder)]).unwrap().remove(0));
    }
    assert!(files.len() >= 10);
    for f in files {
        let s = portico_scenario::format::load(&f).unwrap();
        let objects: Vec<Object> = s
            .objects
            .into_iter()
            .filter_map(|v| Object::from_value(v).ok())
            .collect();
        validate_both(&mesh(&objects), &f.display().to_string(), false);
    }
}

/// The check has teeth: a configuration the filter refuses fails validation.
#[test]
fn envoy_validate_runs_the_filters_on_configure() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot = translate(&[], &Options::default()).snapshot;
    snapshot.listeners[0].routing.default_backend =
        Some("missing.default.svc.cluster.local:80".into());
    let path = dir.path().join("static.yaml");
    std::fs::write(&path, render_static(&snapshot, &options(dir.path()))).unwrap();
    let err = validate(&path).unwrap_err();
    assert!(
        err.contains("rejected configuration: config field defaultBackend"),
        "{err}"
    );
    assert!(
        err.contains("Unable to create Wasm plugin portico-routing"),
        "{err}"
    );
}
