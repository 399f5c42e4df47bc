//! The Kubernetes source without a server: the store a watcher feeds (a relist replaces a
//! kind's objects whole, so a deletion missed while the watch was broken — a 410 Gone, a
//! dropped connection — is seen), the source's reading of it, and the committed CRD.

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use portico_controller::kubernetes::kinds::find;
use portico_controller::kubernetes::source::KindState;
use portico_controller::kubernetes::{crd, KubeSource, KubeStore};
use portico_controller::source::Source as _;
use serde_json::json;

fn service(name: &str, rv: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }))
    .unwrap()
}

fn names(source: &mut KubeSource) -> Vec<String> {
    source
        .read()
        .unwrap()
        .manifests
        .iter()
        .map(|m| m.object.object_ref().to_string())
        .collect()
}

#[test]
fn a_relist_replaces_the_kind_whole() {
    let kind = find("", "Service").unwrap();
    let store = KubeStore::new();
    let mut source = KubeSource::new(store.clone());
    assert!(!store.synced());
    store.apply(kind, "v1", Event::Init);
    store.apply(kind, "v1", Event::InitApply(service("a", "1")));
    store.apply(kind, "v1", Event::InitApply(service("b", "2")));
    // Until the list is done, the kind holds nothing.
    assert!(names(&mut source).is_empty());
    store.apply(kind, "v1", Event::InitDone);
    assert_eq!(names(&mut source).len(), 2);
    let first = source.read().unwrap().fingerprint;

    store.apply(kind, "v1", Event::Apply(service("c", "3")));
    store.apply(kind, "v1", Event::Delete(service("a", "1")));
    assert_eq!(names(&mut source).len(), 2);
    assert_ne!(source.read().unwrap().fingerprint, first);

    // The watch broke (410 Gone): the relist no longer has `b`, which was deleted meanwhile.
    store.apply(kind, "v1", Event::Init);
    store.apply(kind, "v1", Event::InitApply(service("c", "3")));
    assert_eq!(
        names(&mut source).len(),
        2,
        "the old objects serve until the relist is done"
    );
    store.apply(kind, "v1", Event::InitDone);
    let now = names(&mut source);
    assert_eq!(now.len(), 1, "{now:?}");
    assert!(now[0].contains("default/c"), "{now:?}");
    // Objects get their kind's apiVersion and kind (list items carry none) and an origin.
    let loaded = source.read().unwrap();
    assert_eq!(
        loaded.manifests[0].file.to_string_lossy(),
        "kube:Service/default/c"
    );
}

#[test]
fn synced_once_every_kind_is_listed_or_absent() {
    let store = KubeStore::new();
    for (kind, _) in store.states() {
        assert!(!store.synced());
        if kind.group.is_empty() {
            store.apply(kind, "v1", Event::Init);
            store.apply(kind, "v1", Event::InitDone);
        } else {
            store.absent(kind);
        }
    }
    assert!(store.synced());
    assert!(store
        .states()
        .iter()
        .any(|(_, s)| *s == KindState::Watching("v1".into())));
}

#[test]
fn a_bad_object_from_the_cluster_is_an_error_naming_it() {
    let kind = find("networking.k8s.io", "Ingress").unwrap();
    let store = KubeStore::new();
    let mut source = KubeSource::new(store.clone());
    let ingress: DynamicObject = serde_json::from_value(json!({
        "metadata": {"name": "shop", "namespace": "web", "resourceVersion": "5",
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"rules": [{"host": "shop.example.com", "htp": {}}]},
        "status": {"loadBalancer": {}},
    }))
    .unwrap();
    store.apply(kind, "v1", Event::Apply(ingress));
    let loaded = source.read().unwrap();
    assert!(loaded.manifests.is_empty());
    let e = &loaded.errors[0];
    assert_eq!(e.file.to_string_lossy(), "kube:Ingress/web/shop");
    assert!(e.message.contains("spec.rules[0].htp"), "{}", e.message);
}

#[test]
fn the_committed_crd_is_what_crdgen_prints() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/crds")
        .join(crd::FILE);
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == crd::yaml(),
        "{} differs from `portico-controller crdgen`: run `portico-controller crdgen --out deploy/crds`",
        path.display()
    );
}

#[test]
fn an_object_is_read_again_only_when_its_version_changes() {
    let route = find("gateway.networking.k8s.io", "HTTPRoute").unwrap();
    let store = KubeStore::new();
    let mut source = KubeSource::new(store.clone());
    let http_route = |rv: &str, spec: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {"name": "r", "namespace": "default", "resourceVersion": rv},
            "spec": spec,
        }))
        .unwrap()
    };
    store.apply(route, "v1", Event::Init);
    store.apply(
        route,
        "v1",
        Event::InitApply(http_route(
            "1",
            json!({"parentRefs": [{"name": "gw"}], "bogus": 1}),
        )),
    );
    store.apply(route, "v1", Event::InitDone);
    for _ in 0..2 {
        // Read twice: the second read reuses the first's result, error included.
        let loaded = source.read().unwrap();
        assert!(loaded.manifests.is_empty());
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        assert!(
            loaded.errors[0].message.contains("bogus"),
            "{:?}",
            loaded.errors
        );
    }
    store.apply(
        route,
        "v1",
        Event::Apply(http_route("2", json!({"parentRefs": [{"name": "gw"}]}))),
    );
    let loaded = source.read().unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.manifests.len(), 1);

    // Istio's Gateway and the Gateway API's share a kind name, not an identity.
    let gateway = |group: &str| find(group, "Gateway").unwrap();
    let gw = |rv: &str, spec: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {"name": "gw", "namespace": "default", "resourceVersion": rv},
            "spec": spec,
        }))
        .unwrap()
    };
    for (group, rv, spec) in [
        (
            "gateway.networking.k8s.io",
            "3",
            json!({"gatewayClassName": "portico", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}),
        ),
        (
            "networking.istio.io",
            "4",
            json!({"selector": {"istio": "ingressgateway"}, "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}),
        ),
    ] {
        let kind = gateway(group);
        store.apply(kind, "v1", Event::Init);
        store.apply(kind, "v1", Event::InitApply(gw(rv, spec)));
        store.apply(kind, "v1", Event::InitDone);
    }
    for _ in 0..2 {
        let loaded = source.read().unwrap();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.manifests.len(), 3, "{:?}", names(&mut source));
    }
}
