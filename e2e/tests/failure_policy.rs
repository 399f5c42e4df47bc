//! A filter that traps, on a real Envoy: with `FAIL_RELOAD` (what Portico renders for its own
//! filters) the failing filter answers 503 while its VM is rebuilt, then works again; the
//! routing filter, in a VM of its own (`vm_id` per filter), keeps routing on a listener that
//! shares it. The trapping filter is host-runner's probe module (a test build that panics on
//! request), put in front of routing on one of two listeners.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portico_e2e::client::{send, Outgoing};
use portico_e2e::fixture::{shop, static_bootstrap, write_bootstrap};
use portico_e2e::proxy::{free_ports, routing_wasm, Envoy};
use serde_json::json;

fn request(port: u16, probe: &str) -> Outgoing {
    Outgoing {
        target: SocketAddr::from(([127, 0, 0, 1], port)),
        source: None,
        method: "GET".into(),
        authority: "shop.example.com".into(),
        path: "/".into(),
        headers: BTreeMap::from([("x-probe".to_owned(), probe.to_owned())]),
        http2: false,
        timeout: Duration::from_secs(5),
        proxy_destination: None,
        tls: None,
    }
}

/// The rendered bootstrap with a second plain listener on `shared` (the same routing filter,
/// so the same routing VM) and the probe in front of routing on `probed`.
fn bootstrap(work: &std::path::Path, probed: u16, shared: u16) -> std::path::PathBuf {
    let mut b = static_bootstrap(&shop("127.0.45.1"), work, probed);
    let listeners = b["static_resources"]["listeners"].as_array_mut().unwrap();
    let http = listeners
        .iter()
        .position(|l| l["name"] == "portico-http-80")
        .unwrap();
    let mut copy = listeners[http].clone();
    copy["name"] = "shared-routing".into();
    copy["address"]["socket_address"]["port_value"] = shared.into();
    listeners.push(copy);
    let probe_wasm = routing_wasm().with_file_name("portico_host_runner_probe.wasm");
    let probe = json!({"name": "probe", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "probe", "root_id": "probe",
            "vm_config": {"vm_id": "probe", "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": probe_wasm}}},
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": "{\"kind\": \"http\"}"},
            "failure_policy": "FAIL_RELOAD"}}});
    let filters = listeners[http]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_array_mut()
        .unwrap();
    filters.insert(0, probe);
    let path = work.join("envoy-probe.yaml");
    write_bootstrap(&b, &path);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_filter_reloads_and_routing_is_unaffected() {
    let work = tempfile::tempdir().unwrap();
    let ports = free_ports(2).unwrap();
    let (probed, shared) = (ports[0], ports[1]);
    let _echo = portico_e2e::echo::start(["127.0.45.1:8080".parse().unwrap()])
        .await
        .unwrap();
    let path = bootstrap(work.path(), probed, shared);
    let envoy = Envoy::start(
        &path,
        work.path(),
        &[probed, shared].map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
    )
    .unwrap();
    let ok = |o: &portico_scenario::format::Observed| {
        o.status == Some(200)
            && o.echo
                .as_ref()
                .is_some_and(|e| e.endpoint == "127.0.45.1:8080")
    };
    assert!(ok(&send(&request(probed, "none")).await));
    assert!(ok(&send(&request(shared, "none")).await));

    let trapped = send(&request(probed, "panic")).await;
    assert_eq!(trapped.status, Some(503), "{}", trapped.summary());
    // While the probe's VM is rebuilt, routing (another VM) serves the listener it shares.
    let t0 = Instant::now();
    let mut failed_meanwhile = 0;
    loop {
        let shared_o = send(&request(shared, "none")).await;
        assert!(
            ok(&shared_o),
            "routing was hit by the probe's trap: {}",
            shared_o.summary()
        );
        let probed_o = send(&request(probed, "none")).await;
        if ok(&probed_o) {
            break;
        }
        failed_meanwhile += 1;
        assert_eq!(probed_o.status, Some(503), "{}", probed_o.summary());
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the probe's VM was not rebuilt within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "failure policy: recovered after {:?} ({failed_meanwhile} requests answered 503 meanwhile)",
        t0.elapsed()
    );
    assert!(envoy.stat("wasmcustom.portico_routing_forwarded_total") >= 4);
}
