//! Two controller replicas on a real API server (the test server of
//! `../shared/tools/kube-apiserver`): one leads on a `coordination.k8s.io/v1` Lease and writes
//! PorticoConfig status and Events; when it stops, the other takes over within the lease
//! duration and the update made meanwhile is not lost. Metrics, `/healthz` and `/readyz` too.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject, ListParams};
use portico_controller::translate::Options;
use portico_e2e::kube::{
    apply_now, apply_objects, install_crds, spawn_replica, test_replica, wait_for, TestApiServer,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const LEASE: Duration = Duration::from_secs(3);

/// Starts a replica writing into `dir` (publishing an address); returns its task and its ops
/// address.
async fn start(
    client: &kube::Client,
    identity: &str,
    dir: &std::path::Path,
) -> (tokio::task::JoinHandle<()>, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut replica = test_replica(identity, "default");
    replica.lease_duration = LEASE;
    replica.publish_addresses = vec!["192.0.2.10".into()];
    let task = spawn_replica(client, dir, Options::default(), replica, Some(listener));
    (task, address)
}

async fn holder(client: &kube::Client) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "default");
    api.get_opt("portico-controller")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(address).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn porticoconfig(fake: bool) -> Value {
    json!({"apiVersion": "portico.dev/v1alpha1", "kind": "PorticoConfig",
           "metadata": {"name": "edge", "namespace": "default"},
           "spec": {"fakeCertificate": fake}})
}

async fn status(client: &kube::Client) -> Option<Value> {
    let ar = portico_controller::kubernetes::kinds::find("portico.dev", "PorticoConfig")
        .unwrap()
        .api_resource("v1alpha1");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let o = api.get("edge").await.ok()?;
    Some(json!({"generation": o.metadata.generation, "status": o.data["status"]}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_and_no_update_is_lost() {
    let server = tokio::task::spawn_blocking(|| TestApiServer::start("replicas"))
        .await
        .unwrap()
        .unwrap();
    let client = server.client().await.unwrap();
    install_crds(&client).await.unwrap();
    let objects = vec![
        porticoconfig(true),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "shop", "namespace": "default"},
               "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "no-slash",
                 "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
    ];
    let mut objects = objects;
    objects.push(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "theirs", "namespace": "default"},
        "spec": {"ingressClassName": "traefik", "rules": [{"host": "t.example.com"}]}}),
    );
    let report = apply_objects(&client, &objects).await.unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);

    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, a_ops) = start(&client, "replica-a", a_dir.path()).await;
    wait_for(Duration::from_secs(10), "replica-a leads", async || {
        (holder(&client).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let (b, b_ops) = start(&client, "replica-b", b_dir.path()).await;

    // The leader writes the status of generation 1 and an Event on the bad Ingress.
    let s = wait_for(
        Duration::from_secs(10),
        "status of generation 1",
        async || {
            status(&client)
                .await
                .filter(|s| s["status"]["observedGeneration"] == 1)
        },
    )
    .await;
    let conditions = s["status"]["conditions"].as_array().unwrap();
    let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "True", "{s}");
    let degraded = conditions.iter().find(|c| c["type"] == "Degraded").unwrap();
    assert_eq!(degraded["status"], "True", "the Ingress is left out: {s}");
    assert_eq!(degraded["reason"], "ObjectsLeftOut");
    let events: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::discovery::ApiResource {
            group: "events.k8s.io".into(),
            version: "v1".into(),
            api_version: "events.k8s.io/v1".into(),
            kind: "Event".into(),
            plural: "events".into(),
        },
    );
    let event = wait_for(
        Duration::from_secs(10),
        "an Event on the Ingress",
        async || {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|e| e.data["regarding"]["name"] == "shop")
        },
    )
    .await;
    assert_eq!(event.data["type"], "Warning");
    assert_eq!(event.data["reportingInstance"], "replica-a");
    assert!(
        event.data["note"]
            .as_str()
            .unwrap()
            .contains("must be an absolute path"),
        "{:?}",
        event.data
    );

    // The served Ingress gets the published address; another class's does not.
    let ingresses: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &portico_controller::kubernetes::kinds::find("networking.k8s.io", "Ingress")
            .unwrap()
            .api_resource("v1"),
    );
    wait_for(
        Duration::from_secs(10),
        "the Ingress's status.loadBalancer",
        async || {
            let o = ingresses.get("shop").await.ok()?;
            (o.data["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.10").then_some(())
        },
    )
    .await;
    let theirs = ingresses.get("theirs").await.unwrap();
    assert!(
        theirs.data["status"]["loadBalancer"]["ingress"].is_null(),
        "{:?}",
        theirs.data["status"]
    );

    // Both replicas configure their Envoy; only the leader says so in its metrics.
    for dir in [a_dir.path(), b_dir.path()] {
        wait_for(
            Duration::from_secs(10),
            "both replicas write their Envoy's files",
            async || dir.join("envoy.yaml").is_file().then_some(()),
        )
        .await;
    }
    let (code, metrics) = get(a_ops, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("portico_controller_leader 1"), "{metrics}");
    assert!(
        metrics.contains("portico_controller_objects{kind=\"Ingress.networking.k8s.io\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portico_controller_translate_errors{kind=\"Ingress\"} 1"),
        "{metrics}"
    );
    assert!(get(b_ops, "/metrics")
        .await
        .1
        .contains("portico_controller_leader 0"));
    wait_for(Duration::from_secs(10), "replica-b ready", async || {
        (get(b_ops, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(get(b_ops, "/healthz").await.0, 200);

    // The leader stops (its Lease is not released); an update comes right away.
    a.abort();
    let t0 = Instant::now();
    let r = apply_now(&client, &[porticoconfig(false)]).await.unwrap();
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    wait_for(LEASE * 3, "replica-b leads", async || {
        (holder(&client).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    let took_over = t0.elapsed();
    wait_for(
        Duration::from_secs(5),
        "status of generation 2",
        async || {
            status(&client)
                .await
                .filter(|s| s["generation"] == 2 && s["status"]["observedGeneration"] == 2)
        },
    )
    .await;
    let written = t0.elapsed();
    println!(
        "failover: replica-b leads {took_over:?} after replica-a stopped (lease {LEASE:?}); generation 2's status written after {written:?}"
    );
    assert!(
        took_over < LEASE + LEASE / 3 + Duration::from_secs(1),
        "{took_over:?}"
    );
    assert!(get(b_ops, "/metrics")
        .await
        .1
        .contains("portico_controller_leader 1"));
    b.abort();
}
