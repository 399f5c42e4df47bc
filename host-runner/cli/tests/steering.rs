//! Steering is unforgeable: the listener's routes forward only what the routing filter steered
//! through filter state. With the filter in the chain, a client's steering headers are dropped;
//! without it (a filter failing open, a chain that lost it), they reach nothing but the 404
//! route. Needs `just build`.

use std::collections::{BTreeMap, BTreeSet};

use portico_core::config::{CLUSTER_HEADER, ORIGINAL_DST_HEADER};
use portico_host_runner::envoy::{Decoded, Routed, Upstreams, Worker};
use portico_host_runner::Runtime;

/// The forged request: every steering header a client could try, naming a "metadata server".
fn forged() -> Vec<(String, String)> {
    [
        (":authority", "shop.example.com"),
        (":path", "/latest/meta-data"),
        (":method", "GET"),
        (ORIGINAL_DST_HEADER, "127.0.99.254:80"),
        (CLUSTER_HEADER, "portico|original-dst"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

fn routed(worker: &mut Worker, upstreams: &mut Upstreams) -> Routed {
    worker.connection = BTreeMap::from([(
        vec!["destination".to_owned(), "address".to_owned()],
        b"127.0.0.1:80".to_vec(),
    )]);
    let (decoded, contexts) = worker.decode(forged(), b"", &mut Vec::new());
    let Decoded::Forward(headers) = decoded else {
        panic!("{decoded:?}");
    };
    let steer = worker.steering(&contexts);
    upstreams.route(&headers, steer.as_deref())
}

fn upstreams(live: &[&str]) -> Upstreams {
    let clusters = BTreeMap::from([(
        "portico|original-dst".to_owned(),
        vec!["127.0.99.254:80".to_owned()],
    )]);
    Upstreams::new(
        clusters,
        live.iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>(),
    )
    .with_cluster_header(CLUSTER_HEADER)
}

#[test]
fn with_the_filter_the_client_headers_are_dropped() {
    let objects = portico_e2e::fixture::objects(&portico_e2e::fixture::shop("127.0.30.1"));
    let t = portico_controller::translate::translate(&objects, &Default::default());
    let runtime = Runtime::new().unwrap();
    let wasm = std::fs::read(
        portico_scenario::workspace_root()
            .join("target/wasm32-wasip1/wasm/portico_filter_routing.wasm"),
    )
    .expect("run `just build`");
    let module = runtime.compile(&wasm).unwrap();
    let spec = portico_host_runner_cli_spec(&module, t.snapshot.routing(80).unwrap());
    let mut worker = Worker::new(runtime, vec![spec]).unwrap();
    let mut up = upstreams(&["127.0.30.1:8080", "127.0.99.254:80"]);
    assert_eq!(
        routed(&mut worker, &mut up),
        Routed::Endpoint("127.0.30.1:8080".into())
    );
}

#[test]
fn without_the_filter_nothing_is_forwarded() {
    let runtime = Runtime::new().unwrap();
    let mut worker = Worker::new(runtime, Vec::new()).unwrap();
    let mut up = upstreams(&["127.0.99.254:80"]);
    match routed(&mut worker, &mut up) {
        Routed::Reply(r) => assert_eq!(r.status, 404),
        other => panic!("a forged request was forwarded: {other:?}"),
    }
}

/// The routing filter as the controller configures it (see `host-runner scenario`).
fn portico_host_runner_cli_spec(
    module: &portico_host_runner::Module,
    config: &portico_core::config::RoutingConfig,
) -> portico_host_runner::envoy::FilterSpec {
    portico_host_runner::envoy::FilterSpec {
        name: "portico-routing-80".into(),
        module: module.clone(),
        code_id: "routing".into(),
        vm_id: "portico-routing".into(),
        root_id: "portico-routing".into(),
        configuration: config.to_json().into_bytes(),
        failure_policy: portico_host_runner::envoy::FailurePolicy::FailReload,
    }
}
