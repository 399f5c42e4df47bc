//! `run --kube --istio` on a real API server (the test server of
//! `../shared/tools/kube-apiserver`): the leader applies the EnvoyFilter that attaches the
//! routing module to istiod's gateway, owned by the PorticoConfig of its namespace, follows a
//! route change into it, and deletes the sidecars' EnvoyFilter once the sidecars are no longer
//! attached. (That the
//! EnvoyFilters themselves work — merged as istiod merges them, in a real Envoy — is what
//! `just e2e --istio` shows over the scenario corpus.)

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use portico_controller::attach::AttachOptions;
use portico_controller::kubernetes::istio::envoyfilter_resource;
use portico_controller::translate::Options;
use portico_core::config::ForwardMode;
use portico_e2e::kube::{
    apply_now, apply_objects, install_crds, spawn_replica, test_replica, wait_for, TestApiServer,
};
use serde_json::{json, Value};

fn route(host: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": "shop", "namespace": "istio-system"},
           "spec": {"parentRefs": [{"name": "edge"}], "hostnames": [host],
                    "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}]}})
}

/// The routing configuration carried by the gateway EnvoyFilter's first patch.
fn routing_config(filter: &DynamicObject) -> String {
    filter.data["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"]
        ["configuration"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_keeps_the_envoyfilters_applied() {
    let server = tokio::task::spawn_blocking(|| TestApiServer::start("istio-sink"))
        .await
        .unwrap()
        .unwrap();
    let client = server.client().await.unwrap();
    install_crds(&client).await.unwrap();
    let objects = vec![
        json!({"apiVersion": "portico.dev/v1alpha1", "kind": "PorticoConfig",
               "metadata": {"name": "mesh", "namespace": "istio-system"}, "spec": {}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "istio-system"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "edge", "namespace": "istio-system"},
               "spec": {"gatewayClassName": "portico", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
        route("shop.example.com"),
    ];
    let report = apply_objects(&client, &objects).await.unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    // The sidecars' EnvoyFilter, from a run that attached them.
    let filters: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "istio-system", &envoyfilter_resource());
    filters
        .patch(
            "portico-sidecar",
            &PatchParams::apply("portico-controller").force(),
            &Patch::Apply(
                json!({"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
                "metadata": {"name": "portico-sidecar", "namespace": "istio-system"},
                "spec": {"configPatches": []}}),
            ),
        )
        .await
        .unwrap();
    let config: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "istio-system",
        &portico_controller::kubernetes::kinds::find("portico.dev", "PorticoConfig")
            .unwrap()
            .api_resource("v1alpha1"),
    );
    let uid = config.get("mesh").await.unwrap().metadata.uid.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut replica = test_replica("istio", "istio-system");
    // The gateway only (`--no-sidecar`).
    replica.istio = Some(AttachOptions {
        sidecar: false,
        ..AttachOptions::default()
    });
    // As `run --kube --istio --no-sidecar` translates: istiod's clusters, no mesh.
    let options = Options {
        forward: ForwardMode::Cluster,
        mesh: false,
        ..Options::default()
    };
    let task = spawn_replica(&client, dir.path(), options, replica, None);

    let gateway = wait_for(
        Duration::from_secs(10),
        "the gateway EnvoyFilter",
        async || filters.get("portico-gateway").await.ok(),
    )
    .await;
    let owners = gateway
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(
        (
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].uid.as_str()
        ),
        ("PorticoConfig", "mesh", uid.as_str())
    );
    assert_eq!(owners[0].controller, Some(true));
    assert_eq!(
        gateway.data["spec"]["workloadSelector"]["labels"],
        json!({"istio": "ingressgateway"})
    );
    let patch = &gateway.data["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "HTTP_FILTER");
    assert_eq!(patch["match"]["listener"]["portNumber"], 8080);
    assert!(
        routing_config(&gateway).contains("shop.example.com"),
        "{}",
        routing_config(&gateway)
    );
    // The sidecars are not attached any more: their EnvoyFilter is gone.
    wait_for(
        Duration::from_secs(10),
        "the sidecar EnvoyFilter deleted",
        async || {
            filters
                .get_opt("portico-sidecar")
                .await
                .ok()
                .and_then(|f| f.is_none().then_some(()))
        },
    )
    .await;

    // A route change reaches the EnvoyFilter.
    let r = apply_now(&client, &[route("cart.example.com")])
        .await
        .unwrap();
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    wait_for(
        Duration::from_secs(10),
        "the new hostname in the EnvoyFilter",
        async || {
            let f = filters.get("portico-gateway").await.ok()?;
            routing_config(&f)
                .contains("cart.example.com")
                .then_some(())
        },
    )
    .await;

    task.abort();
}
