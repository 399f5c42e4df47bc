//! Gateway API status on a real API server (the test server of
//! `../shared/tools/kube-apiserver`): the leading replica writes GatewayClass `Accepted`, the
//! Gateway's conditions, listeners (`supportedKinds`, `attachedRoutes`, conditions) and
//! addresses, and each route's `parents[]` — and keeps them current when a route goes away or
//! moves to another Gateway, without rewriting an unchanged status and without touching another
//! controller's entries.

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use portico_controller::kubernetes::kinds;
use portico_controller::translate::Options;
use portico_e2e::kube::{
    apply_objects, install_crds, spawn_replica, test_replica, wait_for, TestApiServer,
};
use serde_json::{json, Value};

fn api(client: &kube::Client, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let k = kinds::find("gateway.networking.k8s.io", kind).unwrap();
    let ar = k.api_resource(k.versions[0]);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn condition<'a>(conditions: &'a Value, type_: &str) -> &'a Value {
    conditions
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn objects() -> Vec<Value> {
    let gw = "gateway.networking.k8s.io/v1";
    vec![
        json!({"apiVersion": gw, "kind": "GatewayClass", "metadata": {"name": "portico"},
               "spec": {"controllerName": "portico.dev/gateway-controller"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}),
        json!({"apiVersion": gw, "kind": "Gateway", "metadata": {"name": "edge", "namespace": "default"},
               "spec": {"gatewayClassName": "portico", "listeners": [
                   {"name": "http", "port": 80, "protocol": "HTTP"},
                   {"name": "udp", "port": 5353, "protocol": "UDP"}]}}),
        json!({"apiVersion": gw, "kind": "HTTPRoute", "metadata": {"name": "shop", "namespace": "default"},
               "spec": {"parentRefs": [{"name": "edge", "sectionName": "http"}],
                        "hostnames": ["shop.example.com"],
                        "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}]}}),
        json!({"apiVersion": gw, "kind": "HTTPRoute", "metadata": {"name": "mesh-route", "namespace": "default"},
               "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web", "sectionName": "http"}],
                        "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}]}}),
        json!({"apiVersion": gw, "kind": "HTTPRoute", "metadata": {"name": "broken", "namespace": "default"},
               "spec": {"parentRefs": [{"name": "edge"}],
                        "rules": [{"backendRefs": [{"name": "nowhere", "port": 80}]}]}}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_writes_gateway_api_status() {
    let server = tokio::task::spawn_blocking(|| TestApiServer::start("gateway-status"))
        .await
        .unwrap()
        .unwrap();
    let client = server.client().await.unwrap();
    install_crds(&client).await.unwrap();
    let report = apply_objects(&client, &objects()).await.unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    // Another controller's entry on a route Portico also reports on stays.
    let routes = api(&client, "HTTPRoute", Some("default"));
    let foreign = json!({"parentRef": {"name": "elsewhere"}, "controllerName": "example.com/other",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
    routes
        .patch_status(
            "shop",
            &PatchParams::apply("example.com-other").force(),
            &Patch::Apply(
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "shop", "namespace": "default"},
                "status": {"parents": [foreign.clone()]}}),
            ),
        )
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut replica = test_replica("status", "default");
    replica.publish_addresses = vec!["192.0.2.10".into(), "edge.example.net".into()];
    // With the mesh, so that a route whose parent is a Service is reported on too.
    let options = Options {
        mesh: true,
        ..Options::default()
    };
    let task = spawn_replica(&client, dir.path(), options, replica, None);

    let classes = api(&client, "GatewayClass", None);
    let class = wait_for(Duration::from_secs(10), "GatewayClass status", async || {
        let c = classes.get("portico").await.ok()?;
        (!c.data["status"]["conditions"].is_null()).then_some(c)
    })
    .await;
    let accepted = condition(&class.data["status"]["conditions"], "Accepted");
    assert_eq!(accepted["status"], "True", "{accepted}");
    assert_eq!(accepted["reason"], "Accepted");

    let gateways = api(&client, "Gateway", Some("default"));
    let gateway = wait_for(Duration::from_secs(10), "Gateway status", async || {
        let g = gateways.get("edge").await.ok()?;
        (g.data["status"]["listeners"][0]["attachedRoutes"] == 2).then_some(g)
    })
    .await;
    let st = &gateway.data["status"];
    let accepted = condition(&st["conditions"], "Accepted");
    assert_eq!(
        (&accepted["status"], &accepted["reason"]),
        (&json!("True"), &json!("ListenersNotValid")),
        "{st}"
    );
    assert_eq!(accepted["observedGeneration"], 1);
    assert_eq!(condition(&st["conditions"], "Programmed")["status"], "True");
    assert_eq!(
        st["addresses"],
        json!([{"type": "IPAddress", "value": "192.0.2.10"},
               {"type": "Hostname", "value": "edge.example.net"}])
    );
    let http = &st["listeners"][0];
    assert_eq!(http["name"], "http");
    assert_eq!(
        http["supportedKinds"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}])
    );
    let udp = &st["listeners"][1];
    assert_eq!(
        condition(&udp["conditions"], "Accepted")["reason"],
        "UnsupportedProtocol",
        "{udp}"
    );
    assert_eq!(udp["supportedKinds"], json!([]));

    // The routes' statuses are written after the Gateway's.
    let parents = wait_for(Duration::from_secs(10), "the route's status", async || {
        let shop = routes.get("shop").await.ok()?;
        let parents = shop.data["status"]["parents"].as_array()?.clone();
        (parents.len() == 2).then_some(parents)
    })
    .await;
    assert!(parents.contains(&foreign), "{parents:?}");
    let ours = parents
        .iter()
        .find(|p| p["controllerName"] == "portico.dev/gateway-controller")
        .unwrap();
    assert_eq!(
        ours["parentRef"],
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge", "sectionName": "http"})
    );
    assert_eq!(condition(&ours["conditions"], "Accepted")["status"], "True");
    let broken = wait_for(
        Duration::from_secs(10),
        "the other route's status",
        async || {
            let o = routes.get("broken").await.ok()?;
            o.data["status"]["parents"].is_array().then_some(o)
        },
    )
    .await;
    let resolved = condition(
        &broken.data["status"]["parents"][0]["conditions"],
        "ResolvedRefs",
    );
    assert_eq!(
        (&resolved["status"], &resolved["reason"]),
        (&json!("False"), &json!("BackendNotFound")),
        "{resolved}"
    );

    // GAMMA: the mesh controller's entry for the Service parent.
    let mesh = wait_for(
        Duration::from_secs(10),
        "the mesh route's status",
        async || {
            let o = routes.get("mesh-route").await.ok()?;
            o.data["status"]["parents"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(mesh["controllerName"], "portico.dev/mesh-controller");
    assert_eq!(
        mesh["parentRef"],
        json!({"group": "", "kind": "Service", "name": "web", "sectionName": "http"})
    );
    assert_eq!(condition(&mesh["conditions"], "Accepted")["status"], "True");
    assert_eq!(
        condition(&mesh["conditions"], "ResolvedRefs")["status"],
        "True"
    );

    // An unchanged status is not written again.
    let version = gateway.metadata.resource_version.clone();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        gateways
            .get("edge")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version,
        "the Gateway's status was rewritten unchanged"
    );

    // A route deleted: the listener counts one.
    routes.delete("broken", &Default::default()).await.unwrap();
    wait_for(Duration::from_secs(10), "attachedRoutes 1", async || {
        let g = gateways.get("edge").await.ok()?;
        (g.data["status"]["listeners"][0]["attachedRoutes"] == 1).then_some(())
    })
    .await;

    // A route moved to a Gateway Portico does not know loses Portico's entry, not the others'.
    let mut moved = objects()
        .into_iter()
        .find(|o| o["metadata"]["name"] == "shop")
        .unwrap();
    moved["spec"]["parentRefs"] = json!([{"name": "not-here"}]);
    let r = portico_e2e::kube::apply_now(&client, &[moved])
        .await
        .unwrap();
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    wait_for(
        Duration::from_secs(10),
        "Portico's entry removed",
        async || {
            let o = routes.get("shop").await.ok()?;
            (o.data["status"]["parents"] == json!([foreign.clone()])).then_some(())
        },
    )
    .await;
    task.abort();
}
