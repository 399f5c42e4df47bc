//! The Istio attachment: the committed example (`deploy/istio/`) is what `portico-controller
//! istio` writes for the demo manifests, and it carries every module where istiod's names put it.

use portico_controller::attach::patch::{apply, Proxy, ProxyKind};
use portico_controller::attach::{envoy_filters, envoy_filters_yaml, AttachOptions};
use portico_controller::source::load_dir;
use portico_controller::translate::{translate, Options};
use serde_json::json;

fn demo() -> portico_controller::snapshot::Snapshot {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let loaded = load_dir(&root.join("testdata/demo")).unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let objects: Vec<_> = loaded.manifests.into_iter().map(|m| m.object).collect();
    let options = Options {
        forward: portico_core::config::ForwardMode::Cluster,
        mesh: true,
        ..Options::default()
    };
    translate(&objects, &options).snapshot
}

#[test]
fn the_committed_example_is_what_the_command_writes() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/istio/envoyfilters.yaml");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == envoy_filters_yaml(&demo(), &AttachOptions::default()),
        "{} differs: run `portico-controller istio --manifests testdata/demo --out deploy/istio`",
        path.display()
    );
}

#[test]
fn the_gateway_filter_lands_before_the_router_of_the_listener_istiod_names() {
    let filters = envoy_filters(&demo(), &AttachOptions::default());
    let hcm = |port: u16| {
        json!({
            "name": format!("0.0.0.0_{port}"),
            "address": {"socket_address": {"address": "0.0.0.0", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                "typed_config": {"route_config": {"name": format!("http.{port}"), "virtual_hosts": [
                    {"name": "blackhole:80", "domains": ["*"], "routes": [{"name": "default"}]}]},
                    "http_filters": [{"name": "envoy.filters.http.router"}]}}]}],
        })
    };
    let mut config =
        json!({"static_resources": {"listeners": [hcm(8080), hcm(9090)], "clusters": []}});
    let proxy = Proxy {
        kind: ProxyKind::Gateway,
        labels: [("istio".to_owned(), "ingressgateway".to_owned())].into(),
        namespace: "istio-system".into(),
        root_namespace: "istio-system".into(),
    };
    apply(&mut config, &filters, &proxy).unwrap();
    let l = &config["static_resources"]["listeners"];
    let names = |i: usize, ptr: &str| -> Vec<String> {
        l[i]["filter_chains"][0]["filters"][0]["typed_config"]
            .pointer(ptr)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(0, "/http_filters"),
        ["portico-routing-80", "envoy.filters.http.router"]
    );
    assert_eq!(
        names(1, "/http_filters"),
        ["envoy.filters.http.router"],
        "port 9090 is no gateway port of the demo"
    );
    assert_eq!(
        names(0, "/route_config/virtual_hosts/0/routes"),
        ["portico-cluster", "portico-endpoint", "default"]
    );
    let clusters: Vec<&str> = config["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["portico|original-dst", "portico|passthrough"]);
}
