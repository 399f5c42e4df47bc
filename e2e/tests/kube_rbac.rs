//! The RBAC rules of `deploy/rbac.yaml` name exactly what the controller does: a replica runs
//! against a real API server (the test server of `../shared/tools/kube-apiserver`) through a
//! client that records every request, long enough to list, watch, lead, renew, write the
//! statuses (PorticoConfig, Ingress, Gateway API) and an Event; the (group, resource, verb) triples it used must equal the rules'.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_controller::translate::Options;
use portico_e2e::kube::{apply_objects, install_crds, spawn_replica, test_replica, TestApiServer};
use serde_json::{json, Value};

type Triple = (String, String, String);

/// `(group, resource[/subresource], verb)` of one request; `None` for discovery.
fn triple(method: &str, uri: &http::Uri) -> Option<Triple> {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        r => r,
    };
    let (resource, name, sub) = match rest {
        [] => return None,
        [r] => (*r, None, None),
        [r, n] => (*r, Some(*n), None),
        [r, n, s, ..] => (*r, Some(*n), Some(*s)),
    };
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match (method, name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if watch => "watch",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => return None,
    };
    let resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource.to_owned(),
    };
    Some((group.to_owned(), resource, verb.to_owned()))
}

/// The rules of `deploy/rbac.yaml` and of `deploy/istio/rbac.yaml` (what `--istio` adds).
fn rules() -> BTreeSet<Triple> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let text = ["rbac.yaml", "istio/rbac.yaml"]
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .join("\n---\n");
    let mut out = BTreeSet::new();
    for doc in portico_controller::source::documents(&text).unwrap() {
        if !matches!(doc["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in doc["rules"].as_array().unwrap() {
            let list = |k: &str| -> Vec<String> {
                rule[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            for g in list("apiGroups") {
                for r in list("resources") {
                    for v in list("verbs") {
                        out.insert((g.clone(), r.clone(), v));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rbac_rules_are_exactly_what_the_controller_uses() {
    let server = tokio::task::spawn_blocking(|| TestApiServer::start("rbac"))
        .await
        .unwrap()
        .unwrap();
    let admin = server.client().await.unwrap();
    install_crds(&admin).await.unwrap();
    let objects: Vec<Value> = vec![
        json!({"apiVersion": "portico.dev/v1alpha1", "kind": "PorticoConfig",
               "metadata": {"name": "edge", "namespace": "default"}, "spec": {}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "bad", "namespace": "default"},
               "spec": {"rules": [{"host": "x.example.com", "http": {"paths": [{"path": "no-slash",
                 "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        // Gateway API objects, so that the leader writes their status.
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "portico"}, "spec": {"controllerName": "portico.dev/gateway-controller"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "edge", "namespace": "default"},
               "spec": {"gatewayClassName": "portico", "listeners": [
                   {"name": "http", "port": 80, "protocol": "HTTP"},
                   {"name": "tls", "port": 443, "protocol": "TLS", "tls": {"mode": "Passthrough"}}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
               "metadata": {"name": "web", "namespace": "default"},
               "spec": {"parentRefs": [{"name": "edge"}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
               "metadata": {"name": "db", "namespace": "default"},
               "spec": {"parentRefs": [{"name": "edge", "sectionName": "tls"}]}}),
    ];
    assert!(apply_objects(&admin, &objects)
        .await
        .unwrap()
        .refused
        .is_empty());

    // The controller's client, recording every request.
    let seen: Arc<Mutex<Vec<(String, http::Uri)>>> = Arc::default();
    let record = seen.clone();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&server.kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&tower::util::MapRequestLayer::new(
            move |r: http::Request<kube::client::Body>| {
                if let Ok(mut s) = record.lock() {
                    s.push((r.method().to_string(), r.uri().clone()));
                }
                r
            },
        ))
        .build();
    let dir = tempfile::tempdir().unwrap();
    let mut replica = test_replica("rbac", "default");
    replica.publish_addresses = vec!["192.0.2.10".into()];
    // The EnvoyFilters too (in a namespace the test server has).
    replica.istio = Some(portico_controller::attach::AttachOptions {
        namespace: "default".into(),
        ..Default::default()
    });
    let task = spawn_replica(&client, dir.path(), Options::default(), replica, None);
    // Long enough to create the Lease, renew it twice, write the status and the Event.
    tokio::time::sleep(Duration::from_secs(4)).await;
    task.abort();

    let used: BTreeSet<Triple> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(m, u)| triple(m, u))
        .collect();
    let granted = rules();
    let unused: Vec<_> = granted.difference(&used).collect();
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "deploy/rbac.yaml grants unused {unused:?}; the controller also used {missing:?}"
    );
}
