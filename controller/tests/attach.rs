//! The Istio attachment: the committed example (`deploy/istio/`) is what `portico-controller
//! istio` writes for the demo manifests, and it carries every module where istiod's names put it.

use portico_controller::attach::patch::{apply, Proxy, ProxyKind};
use portico_controller::attach::wasmplugin::{self, wasm_plugins};
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

#[test]
fn wasm_plugins_carry_the_gateway_routing_and_istiod_inserts_them_in_the_default_phase() {
    let options = AttachOptions {
        wasm_plugin_url: Some("file:///var/local/lib/wasm/portico_filter_routing.wasm".into()),
        ..AttachOptions::default()
    };
    let snapshot = demo();
    let plugins = wasm_plugins(&snapshot, &options);
    assert_eq!(plugins.len(), snapshot.listeners.len());
    let p = &plugins[0];
    assert_eq!(p["kind"], "WasmPlugin");
    assert_eq!(
        p["spec"]["selector"]["matchLabels"],
        json!({"istio": "ingressgateway"})
    );
    assert_eq!(
        p["spec"]["match"],
        json!([{"mode": "CLIENT", "ports": [{"number": 80}]}])
    );
    assert_eq!(
        p["spec"]["pluginConfig"]["port"], 80,
        "{}",
        p["spec"]["pluginConfig"]
    );
    assert!(p["spec"].get("sha256").is_none());
    // An OCI module is pinned by its manifest digest.
    let pinned = AttachOptions {
        wasm_plugin_url: Some("oci://registry.example/portico-routing:0.1.0".into()),
        wasm_plugin_sha256: Some("ab".repeat(32)),
        ..AttachOptions::default()
    };
    assert_eq!(
        wasm_plugins(&snapshot, &pinned)[0]["spec"]["sha256"],
        "ab".repeat(32)
    );
    // The EnvoyFilter no longer inserts the gateway's filter, but keeps its routes and clusters.
    let filters = envoy_filters(&snapshot, &options);
    let gateway = &filters[0]["spec"]["configPatches"];
    assert!(
        gateway
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["applyTo"] != "HTTP_FILTER"),
        "{gateway}"
    );

    let listener = |port: u16| {
        json!({"name": format!("0.0.0.0_{port}"),
               "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                   "typed_config": {"http_filters": [
                       {"name": "istio.stats"}, {"name": "envoy.filters.http.fault"},
                       {"name": "envoy.filters.http.cors"}, {"name": "envoy.filters.http.router"}]}}]}]})
    };
    let mut config = json!({"static_resources": {"listeners": [listener(8080), listener(9090)]}});
    let gateway = Proxy {
        kind: ProxyKind::Gateway,
        labels: [("istio".to_owned(), "ingressgateway".to_owned())].into(),
        namespace: "istio-system".into(),
        root_namespace: "istio-system".into(),
    };
    // Listener 0.0.0.0_8080 serves the Gateway server port 80.
    let server_port = |l: &serde_json::Value| match l["name"].as_str() {
        Some("0.0.0.0_8080") => Some(80),
        _ => Some(9090),
    };
    let inserted = wasmplugin::apply(&mut config, &plugins, &gateway, server_port).unwrap();
    assert_eq!(inserted, 1);
    let names = |i: usize| -> Vec<String> {
        config["static_resources"]["listeners"][i]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(0),
        [
            "istio.stats",
            "istio-system.portico-routing-80",
            "envoy.filters.http.fault",
            "envoy.filters.http.cors",
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(names(1).len(), 4, "port 9090 is not matched");
    let filter = &config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"][1]["typed_config"]["config"];
    assert_eq!(filter["root_id"], "portico-routing");
    assert_eq!(
        filter["vm_config"]["code"]["local"]["filename"],
        "/var/local/lib/wasm/portico_filter_routing.wasm"
    );
    assert_eq!(filter["failure_policy"], "FAIL_RELOAD");

    // A sidecar is not selected.
    let sidecar = Proxy {
        kind: ProxyKind::Sidecar,
        labels: [("app".to_owned(), "client".to_owned())].into(),
        namespace: "default".into(),
        root_namespace: "istio-system".into(),
    };
    let mut other = json!({"static_resources": {"listeners": [listener(80)]}});
    assert_eq!(
        wasmplugin::apply(&mut other, &plugins, &sidecar, |_| Some(80)).unwrap(),
        0
    );

    // What the model does not implement is refused, naming the plugin and the field.
    for (field, value) in [
        ("phase", json!("AUTHN")),
        ("type", json!("NETWORK")),
        ("url", json!("oci://ghcr.io/portico-dev/routing:0.1.0")),
        ("targetRefs", json!([{"kind": "Gateway", "name": "edge"}])),
    ] {
        let mut bad = plugins[0].clone();
        bad["spec"][field] = value;
        let err = wasmplugin::apply(&mut config.clone(), &[bad], &gateway, server_port)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("WasmPlugin istio-system/portico-routing-80: spec.")
                && err.contains(field),
            "{err}"
        );
    }
}
