//! The Envoy Gateway attachment: the committed example (`deploy/envoy-gateway/`) is what
//! `portico-controller envoy-gateway` writes for the demo once `convert` has turned its Ingresses
//! into Gateway API objects of Envoy Gateway's class, and its policies name what Envoy Gateway
//! names. (`portico-e2e run --envoy-gateway` runs them on an Envoy Gateway-shaped Envoy.)

use portico_controller::attach::envoy_gateway::{attach, attachment_yaml, Attachment, WasmCode};
use portico_controller::convert::{convert, ConvertOptions};
use portico_controller::model::Object;
use portico_controller::source::load_dir;
use portico_controller::translate::{translate, Options};
use portico_core::config::ForwardMode;
use serde_json::json;

const IMAGE: &str = "oci://localhost:5000/portico-routing:0.1.0";

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The demo's objects with its Ingresses converted to Gateway API objects of class `eg`.
fn converted_demo() -> Vec<Object> {
    let loaded = load_dir(&root().join("testdata/demo")).unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let objects: Vec<Object> = loaded.manifests.into_iter().map(|m| m.object).collect();
    let conversion = convert(
        &objects,
        &ConvertOptions {
            class: "eg".into(),
            ..ConvertOptions::default()
        },
    );
    let mut out: Vec<Object> = objects
        .into_iter()
        .filter(|o| !matches!(o, Object::Ingress(_) | Object::IngressClass(_)))
        .collect();
    out.extend(
        conversion
            .objects
            .into_iter()
            .map(|v| Object::from_value(v).unwrap()),
    );
    out
}

fn attachment(objects: &[Object]) -> Attachment {
    let snapshot = translate(
        objects,
        &Options {
            forward: ForwardMode::Endpoint,
            ..Options::default()
        },
    )
    .snapshot;
    attach(
        objects,
        &snapshot,
        &WasmCode::Image {
            url: IMAGE.into(),
            sha256: None,
        },
    )
}

#[test]
fn the_committed_example_is_what_the_command_writes() {
    let dir = root().join("deploy/envoy-gateway");
    let objects = converted_demo();
    assert!(objects.iter().any(|o| matches!(o, Object::Gateway(_))));
    let committed = std::fs::read_to_string(dir.join("policies.yaml")).unwrap();
    assert!(
        committed == attachment_yaml(&attachment(&objects)),
        "deploy/envoy-gateway/policies.yaml differs: run the commands in deploy/envoy-gateway/README.md"
    );
}

#[test]
fn each_port_gets_a_policy_naming_envoy_gateways_resources() {
    let objects: Vec<Object> = [
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "eg", "namespace": "infra"},
               "spec": {"gatewayClassName": "eg", "listeners": [
                   {"name": "http", "port": 80, "protocol": "HTTP"},
                   {"name": "http-b", "port": 80, "protocol": "HTTP", "hostname": "b.example"},
                   {"name": "alt", "port": 8080, "protocol": "HTTP"},
                   {"name": "tcp", "port": 9000, "protocol": "TCP"}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "r", "namespace": "infra"},
               "spec": {"parentRefs": [{"name": "eg"}], "rules": [{"backendRefs": [{"name": "s", "port": 80}]}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "infra"},
               "spec": {"ports": [{"port": 80}]}}),
    ]
    .into_iter()
    .map(|v| Object::from_value(v).unwrap())
    .collect();
    let a = attachment(&objects);
    let kinds: Vec<&str> = a
        .objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "EnvoyExtensionPolicy",
            "EnvoyExtensionPolicy",
            "EnvoyPatchPolicy"
        ]
    );
    let eep = &a.objects[0];
    assert_eq!(eep["metadata"]["name"], "portico-routing-eg-80");
    assert_eq!(
        eep["spec"]["targetRefs"],
        json!([
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "eg", "sectionName": "http"},
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "eg", "sectionName": "http-b"}])
    );
    let wasm = &eep["spec"]["wasm"][0];
    assert_eq!(wasm["rootID"], "portico-routing");
    assert_eq!(
        wasm["code"],
        json!({"type": "Image", "image": {"url": IMAGE}})
    );
    // The port's routing configuration, as the module reads it.
    assert_eq!(wasm["config"]["port"], 80);
    assert_eq!(wasm["config"]["forward"], "endpoint");
    let epp = &a.objects[2];
    assert_eq!(epp["metadata"]["name"], "portico-steering-eg");
    assert_eq!(epp["spec"]["targetRef"]["name"], "eg");
    let patches = epp["spec"]["jsonPatches"].as_array().unwrap();
    let names: Vec<(&str, &str)> = patches
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap().rsplit('.').next().unwrap(),
                p["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("Cluster", "portico|original-dst"),
            ("RouteConfiguration", "infra/eg/http"),
            ("Listener", "infra/eg/http"),
            ("Listener", "infra/eg/http"),
            ("RouteConfiguration", "infra/eg/alt"),
            ("Listener", "infra/eg/alt"),
            ("Listener", "infra/eg/alt"),
        ]
    );
    assert_eq!(
        patches[2]["operation"]["jsonPath"],
        "$..http_filters[?(@.name=='envoy.filters.http.wasm/envoyextensionpolicy/infra/portico-routing-eg-80/wasm/0')]"
    );
    assert_eq!(patches[2]["operation"]["op"], "remove");
    assert_eq!(patches[2]["operation"]["path"], "/disabled");
    assert_eq!(patches[0]["operation"]["path"], "");
}
