//! `DirController`: what a sync writes, and how bad edits keep the last good configuration.

use std::collections::BTreeMap;
use std::path::Path;

use portico_controller::envoy::{ecds_routing, RenderOptions};
use portico_controller::translate::Options;
use portico_controller::DirController;
use portico_core::{Decision, Router};

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: [{addresses: ["127.0.1.1"]}]
ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
endpoints: [{addresses: ["127.0.2.1"]}]
ports: [{name: http, port: 8080}]
"#;

fn ingress(service: &str, path_type: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: shop}}\nspec:\n  rules:\n  - host: shop.test\n    http:\n      paths:\n      - {{path: /, pathType: {path_type}, backend: {{service: {{name: {service}, port: {{number: 80}}}}}}}}\n"
    )
}

fn controller(manifests: &Path, xds: &Path) -> DirController {
    let render = RenderOptions {
        routing_wasm: "/nonexistent/routing.wasm".into(),
        xds_dir: xds.to_owned(),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::from([(80, 18080)]),
        sidecar_port: None,
    };
    DirController::new(manifests.to_owned(), Options::default(), render)
}

fn served(c: &mut DirController) -> (String, Vec<String>) {
    let r = c.sync().unwrap();
    let router = Router::try_from(r.snapshot.unwrap().routing(80).unwrap().clone()).unwrap();
    let d = router.decide_path("shop.test", "/");
    let backend = match router.single_backend(&d) {
        Some(backend) => router.backend(backend).key.clone(),
        None if d == Decision::NoRoute => "404".into(),
        None => format!("not one backend: {}", router.describe(&d)),
    };
    (backend, r.written)
}

#[test]
fn writes_only_what_changed() {
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(m.path().join("shop.yaml"), ingress("a", "Prefix")).unwrap();
    let mut c = controller(m.path(), x.path());
    let (backend, written) = served(&mut c);
    assert_eq!(backend, "a.default.svc.cluster.local:80");
    // Every Ingress host is also served on 443, with the fake certificate here.
    assert_eq!(
        written,
        [
            "envoy.yaml",
            "cds.yaml",
            "sds/portico-fake-certificate.yaml",
            "ecds/routing-80.pb",
            "ecds/routing-443.pb",
            "lds.yaml"
        ]
    );
    assert!(
        served(&mut c).1.is_empty(),
        "an unchanged directory writes nothing"
    );
    std::fs::write(m.path().join("shop.yaml"), ingress("b", "Prefix")).unwrap();
    let (backend, written) = served(&mut c);
    assert_eq!(backend, "b.default.svc.cluster.local:80");
    // The backend set changed, so the clusters did; the listener did not (no drain).
    assert_eq!(
        written,
        ["cds.yaml".to_owned(), ecds_routing(80), ecds_routing(443)]
    );
    // Every file went through `.tmp` and was renamed into place: nothing is left behind.
    let left: Vec<_> = std::fs::read_dir(x.path().join(".tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "temporary files are renamed away: {left:?}"
    );
}

#[test]
fn a_file_that_stops_parsing_keeps_its_last_objects() {
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(m.path().join("shop.yaml"), ingress("b", "Prefix")).unwrap();
    let mut c = controller(m.path(), x.path());
    assert_eq!(served(&mut c).0, "b.default.svc.cluster.local:80");
    std::fs::write(
        m.path().join("shop.yaml"),
        "kind: Ingress\n  spec: [unclosed\n",
    )
    .unwrap();
    let r = c.sync().unwrap();
    assert_eq!(r.load_errors.len(), 1);
    let msg = r.load_errors[0].to_string();
    assert!(
        msg.contains("shop.yaml") && msg.contains("not valid YAML"),
        "{msg}"
    );
    assert!(
        r.written.is_empty(),
        "the last good configuration stays: {:?}",
        r.written
    );
    assert_eq!(served(&mut c).0, "b.default.svc.cluster.local:80");
}

#[test]
fn an_object_that_turns_bad_keeps_its_last_good_version() {
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(m.path().join("shop.yaml"), ingress("b", "Prefix")).unwrap();
    let mut c = controller(m.path(), x.path());
    assert_eq!(served(&mut c).0, "b.default.svc.cluster.local:80");
    // An edit that also switches the backend, with an invalid pathType: nothing of it applies.
    std::fs::write(m.path().join("shop.yaml"), ingress("a", "Sometimes")).unwrap();
    let r = c.sync().unwrap();
    assert!(r.written.is_empty());
    assert_eq!(r.kept_last_good.len(), 1);
    assert_eq!(r.kept_last_good[0].to_string(), "Ingress default/shop");
    let (file, err) = &r.translate_errors[0];
    assert!(file.as_ref().unwrap().ends_with("shop.yaml"));
    assert!(
        err.to_string()
            .contains("spec.rules[0].http.paths[0].pathType"),
        "{err}"
    );
    assert_eq!(served(&mut c).0, "b.default.svc.cluster.local:80");
    // Fixed: the new version applies.
    std::fs::write(m.path().join("shop.yaml"), ingress("a", "Exact")).unwrap();
    assert_eq!(served(&mut c).0, "a.default.svc.cluster.local:80");
}

#[test]
fn unknown_kinds_and_unknown_fields_name_file_and_object() {
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(
        m.path().join("other.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: tools}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: typo}\nspec: {rulez: []}\n",
    )
    .unwrap();
    let r = controller(m.path(), x.path()).sync().unwrap();
    let msgs: Vec<String> = r.load_errors.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 2);
    assert!(
        msgs[0].ends_with("other.yaml: ConfigMap tools/cm: v1 ConfigMap is not supported"),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].contains("other.yaml: Ingress default/typo: spec.rulez: unknown field `rulez`"),
        "{}",
        msgs[1]
    );
    assert!(r.load_errors[0].unsupported_kind && !r.load_errors[1].unsupported_kind);
    // The same, typed: the object with its API group, and the field.
    let typo = &r.load_errors[1];
    assert_eq!(
        typo.object_ref,
        Some(portico_controller::model::ObjectRef::new(
            "networking.k8s.io",
            "Ingress",
            "default",
            "typo"
        ))
    );
    assert!(matches!(
        &typo.error,
        Some(portico_controller::model::ObjectError::Field { field, .. }) if field == "spec.rulez"
    ));
    assert_eq!(r.load_errors[0].object_ref.as_ref().unwrap().group, "");
}

/// An editor that truncates a file and then writes it can be read in between. A settling
/// controller applies a change only once two reads agree, so the empty moment never serves.
#[test]
fn a_settling_controller_waits_for_two_reads_to_agree() {
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(m.path().join("shop.yaml"), ingress("a", "Prefix")).unwrap();
    let mut c = controller(m.path(), x.path()).settling();
    assert_eq!(
        served(&mut c).0,
        "a.default.svc.cluster.local:80",
        "the first sync applies at once"
    );
    // Caught mid-write: the file is empty for one read, then complete with the edit.
    std::fs::write(m.path().join("shop.yaml"), "").unwrap();
    let r = c.sync().unwrap();
    assert!(r.waiting && r.written.is_empty() && r.snapshot.is_none());
    std::fs::write(m.path().join("shop.yaml"), ingress("b", "Prefix")).unwrap();
    assert!(c.sync().unwrap().waiting, "a new state waits one more read");
    assert_eq!(served(&mut c).0, "b.default.svc.cluster.local:80");
    // A real removal applies on the second read.
    std::fs::remove_file(m.path().join("shop.yaml")).unwrap();
    assert!(c.sync().unwrap().waiting);
    assert_eq!(served(&mut c).0, "404");
}

/// An Istio Gateway and a Gateway API Gateway may share a namespace and a name: the API group
/// keeps them apart, in the last-good versions and in which file an error is reported against.
#[test]
fn gateways_of_two_api_groups_with_one_name_are_kept_apart() {
    use portico_controller::model::{Object, ObjectRef};
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(
        m.path().join("a-gateway-api.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: web}\nspec:\n  gatewayClassName: portico\n  listeners: [{name: http, port: 8080, protocol: HTTP}]\n",
    )
    .unwrap();
    std::fs::write(
        m.path().join("b-istio.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: web}\nspec:\n  servers: [{port: {number: 8443, name: https, protocol: HTTPS}, hosts: [\"*\"]}]\n",
    )
    .unwrap();
    let mut c = controller(m.path(), x.path());
    let r = c.sync().unwrap();
    let istio = ObjectRef::new("networking.istio.io", "Gateway", "default", "web");
    let gateway_api = ObjectRef::new("gateway.networking.k8s.io", "Gateway", "default", "web");
    assert_ne!(istio, gateway_api);
    assert_eq!(
        istio.to_string(),
        gateway_api.to_string(),
        "both print as Gateway default/web"
    );
    assert!(matches!(c.last_good(&istio), Some(Object::IstioGateway(_))));
    assert!(matches!(
        c.last_good(&gateway_api),
        Some(Object::Gateway(_))
    ));
    // The Istio Gateway's HTTPS server (without TLS settings) is reported against the file the
    // Istio Gateway is in.
    let (file, err) = r
        .translate_errors
        .iter()
        .find(|(_, e)| e.field == "spec.servers[0].tls")
        .expect("the HTTPS server is reported");
    assert_eq!(err.object, istio);
    assert!(file.as_ref().unwrap().ends_with("b-istio.yaml"), "{file:?}");
}

/// The CLI prints `SyncReport::messages`: an object left out is an error, a kept one with a
/// problem a warning, never `error:`.
#[test]
fn messages_carry_their_severity() {
    use portico_controller::translate::Severity;
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    // A backend Service that does not exist: the Ingress is kept (503): a warning.
    std::fs::write(m.path().join("shop.yaml"), ingress("gone", "Prefix")).unwrap();
    // An invalid pathType: the Ingress is left out: an error.
    std::fs::write(
        m.path().join("worse.yaml"),
        ingress("a", "Sometimes").replace("name: shop", "name: worse"),
    )
    .unwrap();
    let r = controller(m.path(), x.path()).sync().unwrap();
    let messages = r.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    // Ingresses are translated in ingress-nginx's order: equal creation times, so default/worse
    // (the greater name) first.
    let (severity, line) = &messages[1];
    assert_eq!(*severity, Severity::Warning);
    assert!(
        line.ends_with("shop.yaml: Ingress default/shop: spec.rules[0].http.paths[0].backend.service.name: Service default/gone not found"),
        "{line}"
    );
    let (severity, line) = &messages[0];
    assert_eq!(*severity, Severity::Error);
    assert!(
        line.contains(
            "worse.yaml: Ingress default/worse: spec.rules[0].http.paths[0].pathType: invalid"
        ),
        "{line}"
    );
    assert!(r.translate_errors[0].1.object_dropped() && !r.translate_errors[1].1.object_dropped());
}

/// Two manifests of one object (same group, kind, namespace, name): the first read is used, the
/// second is reported, naming where the first is; nothing is merged.
#[test]
fn a_duplicate_object_is_reported_and_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    let ingress = |path: &str, svc: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: shop, namespace: default}}\nspec:\n  ingressClassName: portico\n  rules:\n  - host: shop.test\n    http:\n      paths:\n      - {{path: {path}, pathType: Prefix, backend: {{service: {{name: {svc}, port: {{number: 80}}}}}}}}\n"
        )
    };
    std::fs::write(manifests.join("a.yaml"), ingress("/", "first")).unwrap();
    std::fs::write(manifests.join("b.yaml"), ingress("/b", "second")).unwrap();
    let loaded = portico_controller::source::load_dir(&manifests).unwrap();
    assert_eq!(loaded.manifests.len(), 1);
    assert!(loaded.manifests[0].file.ends_with("a.yaml"));
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let e = loaded.errors[0].to_string();
    assert!(
        e.contains("b.yaml") && e.contains("a second Ingress default/shop"),
        "{e}"
    );
    assert!(e.contains("a.yaml is used"), "{e}");
}

/// A directory polled every second is not parsed and translated every second: an unchanged
/// directory is not read at all, a touched file is read but not parsed again, and an edit is
/// never missed, even one that keeps the file's size and (coarse) modification time.
#[test]
fn an_unchanged_directory_is_not_read_again() {
    use std::time::{Duration, SystemTime};
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str, modified: SystemTime| {
        let path = m.path().join(name);
        std::fs::write(&path, text).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(modified).unwrap();
    };
    let long_ago = SystemTime::now() - Duration::from_secs(60);
    write("services.yaml", SERVICES, long_ago);
    write("shop.yaml", &ingress("a", "Prefix"), long_ago);
    let mut c = controller(m.path(), x.path());
    assert_eq!(served(&mut c).0, "a.default.svc.cluster.local:80");
    let r = c.sync().unwrap();
    assert!(r.unchanged, "nothing changed: nothing read");
    assert!(r.snapshot.is_none() && r.written.is_empty() && r.messages().is_empty());

    // Touched: read again (the metadata changed), same contents, nothing written.
    let path = m.path().join("shop.yaml");
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(long_ago + Duration::from_secs(1))
        .unwrap();
    let r = c.sync().unwrap();
    assert!(!r.unchanged && r.written.is_empty());
    assert!(c.sync().unwrap().unchanged);

    // Two edits of the same size in one timestamp tick: a file modified within the last second
    // is always read again, so the second edit is seen.
    let now = SystemTime::now();
    write("shop.yaml", &ingress("b", "Prefix"), now);
    assert_eq!(served(&mut c).0, "b.default.svc.cluster.local:80");
    write("shop.yaml", &ingress("a", "Prefix"), now);
    assert_eq!(served(&mut c).0, "a.default.svc.cluster.local:80");

    // A file removed, or added, is seen.
    write("shop.yaml", &ingress("a", "Prefix"), long_ago);
    served(&mut c);
    assert!(c.sync().unwrap().unchanged);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(served(&mut c).0, "404");
    write("other.yaml", &ingress("b", "Prefix"), long_ago);
    assert_eq!(served(&mut c).0, "b.default.svc.cluster.local:80");
}

/// An Istio Gateway with an HTTPS server it cannot serve (no credentialName) is still served for
/// its other servers — a warning, not an error: the reconciler must not put the Gateway's last
/// good version back in its place.
#[test]
fn a_gateway_with_an_unservable_server_is_served_as_it_is() {
    let m = tempfile::tempdir().unwrap();
    let x = tempfile::tempdir().unwrap();
    let gateway = |host: &str, https: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: igw, namespace: default}}\nspec:\n  servers:\n  - {{port: {{number: 8080, name: http, protocol: HTTP}}, hosts: [\"{host}\"]}}\n{https}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: default}}\nspec: {{hosts: [\"*\"], gateways: [igw], http: [{{route: [{{destination: {{host: a}}}}]}}]}}\n"
        )
    };
    std::fs::write(m.path().join("services.yaml"), SERVICES).unwrap();
    std::fs::write(m.path().join("gw.yaml"), gateway("one.test", "")).unwrap();
    let mut c = controller(m.path(), x.path());
    // The hosts port 8080 serves after a sync.
    let hosts_of = |r: portico_controller::SyncReport| -> Vec<String> {
        r.snapshot
            .unwrap()
            .routing(8080)
            .unwrap()
            .virtual_hosts
            .iter()
            .flat_map(|v| v.hosts.clone())
            .collect()
    };
    let hosts = |c: &mut DirController| hosts_of(c.sync().unwrap());
    assert_eq!(hosts(&mut c), ["one.test"]);
    std::fs::write(
        m.path().join("gw.yaml"),
        gateway(
            "two.test",
            "  - {port: {number: 8443, name: https, protocol: HTTPS}, hosts: [\"two.test\"], tls: {mode: SIMPLE}}\n",
        ),
    )
    .unwrap();
    let r = c.sync().unwrap();
    assert!(r.kept_last_good.is_empty(), "{:?}", r.kept_last_good);
    let msgs: Vec<String> = r
        .translate_errors
        .iter()
        .map(|(_, e)| e.to_string())
        .collect();
    assert!(
        msgs.contains(&"Gateway default/igw: spec.servers[1].tls.credentialName: invalid: required; the server's handshakes fail".to_owned()),
        "{msgs:?}"
    );
    assert_eq!(hosts_of(r), ["two.test"], "the Gateway as it is now");
}
