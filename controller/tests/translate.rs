//! `translate` on Ingress objects: selection, merging, backends, and the errors of bad objects.

use portico_controller::objects::Object;
use portico_controller::source::documents;
use portico_controller::translate::{translate, ErrorKind, Options, Translation};
use portico_core::config::PathMatch;
use portico_core::{Decision, Router};

fn objects(yaml: &str) -> Vec<Object> {
    documents(yaml)
        .unwrap()
        .into_iter()
        .map(|v| Object::from_value(v).unwrap())
        .collect()
}

fn run(yaml: &str) -> Translation {
    translate(&objects(yaml), &Options::default())
}

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default}
spec: {ports: [{name: http, port: 80}, {name: admin, port: 9000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: default, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints:
- {addresses: ["127.0.1.1"], conditions: {ready: true}}
- {addresses: ["127.0.1.2"], conditions: {ready: false}}
- {addresses: ["127.0.1.3"]}
ports: [{name: http, port: 8080}, {name: admin, port: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, namespace: default, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
endpoints: [{addresses: ["127.0.2.1"]}]
ports: [{port: 8080}]
"#;

fn with_services(yaml: &str) -> Translation {
    run(&format!("{SERVICES}\n---\n{yaml}"))
}

fn route(t: &Translation, host: &str, path: &str) -> String {
    let router = Router::try_from(t.snapshot.routing(80).unwrap().clone()).unwrap();
    let d = router.decide_path(host, path);
    match router.single_backend(&d) {
        Some(backend) => router.backend(backend).key.clone(),
        None if d == Decision::NoRoute => "404".into(),
        // A redirect, a direct response or a split is neither: the test names what it was.
        None => format!("not one backend: {}", router.describe(&d)),
    }
}

#[test]
fn endpoints_are_ready_ones_of_the_named_port() {
    let t = with_services(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i, namespace: default}
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
      - {path: /admin, pathType: Prefix, backend: {service: {name: a, port: {name: admin}}}}
      - {path: /b, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}
"#,
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    let b = &t.snapshot.routing(80).unwrap().backends;
    assert_eq!(
        b["a.default.svc.cluster.local:80"].endpoints,
        ["127.0.1.1:8080", "127.0.1.3:8080"]
    );
    assert_eq!(
        b["a.default.svc.cluster.local:9000"].endpoints,
        ["127.0.1.1:9090", "127.0.1.3:9090"]
    );
    assert_eq!(
        b["b.default.svc.cluster.local:80"].endpoints,
        ["127.0.2.1:8080"]
    );
    assert_eq!(
        b["b.default.svc.cluster.local:80"].cluster,
        "outbound|80||b.default.svc.cluster.local"
    );
    assert_eq!(t.snapshot.clusters.len(), 3);
}

#[test]
fn merges_hosts_oldest_ingress_wins_conflicts() {
    let t = with_services(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: young, namespace: default, creationTimestamp: "2024-02-01T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /x, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}
      - {path: /y, pathType: Exact, backend: {service: {name: b, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: old, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /x/, pathType: ImplementationSpecific, backend: {service: {name: a, port: {number: 80}}}}
"#,
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert_eq!(t.snapshot.routing(80).unwrap().virtual_hosts.len(), 1);
    let vh = &t.snapshot.routing(80).unwrap().virtual_hosts[0];
    assert_eq!(vh.hosts, ["shop.example.com"]);
    assert_eq!(vh.routes[0].path, PathMatch::Prefix("/x/".into()));
    assert!(vh.routes[0].name.starts_with("Ingress default/old"));
    assert_eq!(
        route(&t, "shop.example.com", "/x/1"),
        "a.default.svc.cluster.local:80"
    );
    assert_eq!(
        route(&t, "shop.example.com", "/y"),
        "b.default.svc.cluster.local:80"
    );
    assert_eq!(route(&t, "shop.example.com", "/z"), "404");
}

#[test]
fn default_backends() {
    let t = with_services(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: hosted, namespace: default}
spec:
  defaultBackend: {service: {name: b, port: {number: 80}}}
  rules:
  - host: h.example.com
    http: {paths: [{path: /a, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: catch-all, namespace: default}
spec:
  defaultBackend: {service: {name: a, port: {name: admin}}}
"#,
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    // The host's own Ingress gives its unmatched paths a backend; a rule-less Ingress takes the rest.
    assert_eq!(
        route(&t, "h.example.com", "/zzz"),
        "b.default.svc.cluster.local:80"
    );
    assert_eq!(
        route(&t, "other.example.com", "/a"),
        "a.default.svc.cluster.local:9000"
    );
}

#[test]
fn missing_services_answer_503_and_are_reported() {
    let t = with_services(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i, namespace: shop}
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}
      - {path: /p, pathType: Prefix, backend: {service: {name: a, port: {name: nope}}}}
"#,
    );
    let msgs: Vec<String> = t.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            "Ingress shop/i: spec.rules[0].http.paths[0].backend.service.name: Service shop/a not found",
            "Ingress shop/i: spec.rules[0].http.paths[1].backend.service.name: Service shop/a not found",
        ]
    );
    assert!(t
        .errors
        .iter()
        .all(|e| matches!(e.kind, ErrorKind::MissingReference(_)) && !e.object_dropped()));
    assert!(t
        .snapshot
        .routing(80)
        .unwrap()
        .backends
        .values()
        .all(|b| b.endpoints.is_empty()));
    assert_eq!(route(&t, "x", "/"), "a.shop.svc.cluster.local:80");
}

#[test]
fn bad_ingresses_are_left_out_with_the_field_named() {
    let cases = [
        ("{rules: [{http: {paths: [{path: /a, pathType: Regex, backend: {service: {name: a, port: {number: 80}}}}]}}]}",
         "Ingress default/bad: spec.rules[0].http.paths[0].pathType: invalid: \"Regex\": must be Exact, Prefix or ImplementationSpecific"),
        ("{rules: [{http: {paths: [{path: a, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}",
         "Ingress default/bad: spec.rules[0].http.paths[0].path: invalid: \"a\" must be an absolute path"),
        ("{rules: [{http: {paths: [{path: /a//b, pathType: Exact, backend: {service: {name: a, port: {number: 80}}}}]}}]}",
         "Ingress default/bad: spec.rules[0].http.paths[0].path: invalid: \"/a//b\" must not contain '//', '/./', '/../' or '%2f'"),
        ("{rules: [{host: 10.0.0.1, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}",
         "Ingress default/bad: spec.rules[0].host: invalid: \"10.0.0.1\" must be a DNS name, not an IP address"),
        // ParseIPSloppy: leading zeros are still an address.
        ("{rules: [{host: 010.0.0.1, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}",
         "Ingress default/bad: spec.rules[0].host: invalid: \"010.0.0.1\" must be a DNS name, not an IP address"),
        ("{rules: [{host: \"a.*.com\", http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}",
         "Ingress default/bad: spec.rules[0].host: invalid: \"a.*.com\" must be a lower-case DNS name, optionally prefixed by '*.'"),
        ("{rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {resource: {kind: Bucket, name: x}}}]}}]}",
         "Ingress default/bad: spec.rules[0].http.paths[0].backend.resource: not supported: resource backends; use a Service backend"),
        ("{rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {}}}}]}}]}",
         "Ingress default/bad: spec.rules[0].http.paths[0].backend.service.port: invalid: exactly one of name and number is required"),
        ("{}", "Ingress default/bad: spec: invalid: either defaultBackend or rules must be specified"),
    ];
    for (spec, want) in cases {
        let t = with_services(&format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: bad, namespace: default}}\nspec: {spec}\n---\n\
             apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: good, namespace: default}}\n\
             spec: {{rules: [{{host: good.example.com, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: b, port: {{number: 80}}}}}}}}]}}}}]}}\n"
        ));
        let msgs: Vec<String> = t.errors.iter().map(ToString::to_string).collect();
        assert_eq!(msgs, [want], "{spec}");
        assert!(t.errors[0].object_dropped());
        // The good Ingress still routes, the bad one contributed nothing.
        assert_eq!(
            route(&t, "good.example.com", "/"),
            "b.default.svc.cluster.local:80"
        );
        assert_eq!(
            t.snapshot.routing(80).unwrap().virtual_hosts.len(),
            1,
            "{spec}"
        );
    }
}

#[test]
fn unknown_fields_are_errors_naming_them() {
    let v = documents(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\nspec:\n  rules:\n  - host: a.test\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}, weight: 3}\n",
    )
    .unwrap();
    let err = Object::from_value(v[0].clone()).unwrap_err().to_string();
    assert!(
        err.starts_with("spec.rules[0].http.paths[0].weight: unknown field `weight`"),
        "{err}"
    );
    let v = documents(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspec:\n  egress: [{hosts: [./*], hots: [x]}]\n",
    )
    .unwrap();
    let err = Object::from_value(v[0].clone()).unwrap_err().to_string();
    assert!(
        err.starts_with("spec.egress[0].hots: unknown field `hots`"),
        "{err}"
    );
    let v =
        documents("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: r}\n")
            .unwrap();
    let err = Object::from_value(v[0].clone()).unwrap_err();
    assert!(err.is_unsupported_kind());
    assert_eq!(
        err.to_string(),
        "networking.istio.io/v1 WorkloadEntry is not supported"
    );
}

#[test]
fn ingress_class_selection() {
    let ingress = |name: &str, class: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}}}\nspec:\n  {class}\n  rules: [{{host: {name}.test, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: a, port: {{number: 80}}}}}}}}]}}}}]\n---\n"
        )
    };
    let class = |name: &str, controller: &str, default: bool| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{name: {name}, annotations: {{ingressclass.kubernetes.io/is-default-class: \"{default}\"}}}}\nspec: {{controller: {controller}}}\n---\n"
        )
    };
    let hosts = |t: &Translation| -> Vec<String> {
        let mut h: Vec<String> = t
            .snapshot
            .routing(80)
            .unwrap()
            .virtual_hosts
            .iter()
            .flat_map(|v| v.hosts.clone())
            .collect();
        h.sort();
        h
    };
    // No IngressClass objects: named classes portico/nginx and class-less Ingresses are served.
    let t = run(&[
        ingress("p", "ingressClassName: portico"),
        ingress("n", "ingressClassName: nginx"),
        ingress("o", "ingressClassName: other"),
        ingress("none", "{}"),
    ]
    .concat()
    .replace("{}\n  rules", "rules"));
    assert_eq!(hosts(&t), ["n.test", "none.test", "p.test"]);
    // IngressClass objects decide by controller; a default class of someone else's takes class-less ones.
    let t = run(&[
        class("mine", "portico.dev/ingress-controller", false),
        class("theirs", "example.com/other", true),
        ingress("m", "ingressClassName: mine"),
        ingress("t", "ingressClassName: theirs"),
        ingress("none", "{}"),
    ]
    .concat()
    .replace("{}\n  rules", "rules"));
    assert_eq!(hosts(&t), ["m.test"]);
    let t = run(&[
        class("mine", "portico.dev/ingress-controller", true),
        ingress("none", "{}"),
        ingress("legacy", "{}").replace(
            "metadata: {name: legacy}",
            "metadata: {name: legacy, annotations: {kubernetes.io/ingress.class: other}}",
        ),
    ]
    .concat()
    .replace("{}\n  rules", "rules"));
    assert_eq!(hosts(&t), ["none.test"]);
}

#[test]
fn same_objects_any_order_same_snapshot() {
    let yaml = format!("{SERVICES}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i}}\nspec: {{rules: [{{host: a.test, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: a, port: {{number: 80}}}}}}}}]}}}}]}}\n");
    let mut objs = objects(&yaml);
    let a = translate(&objs, &Options::default());
    objs.reverse();
    let b = translate(&objs, &Options::default());
    assert_eq!(a.snapshot, b.snapshot);
    assert_eq!(
        a.snapshot.routing(80).unwrap().to_json(),
        b.snapshot.routing(80).unwrap().to_json()
    );
    assert!(a.errors.is_empty() && b.errors.is_empty());
    // The order of the objects does not leak into the generation either.
    assert_eq!(a.snapshot.generation, b.snapshot.generation);
}

/// An expired certificate is served (as ingress-nginx serves it) and, when translate knows the
/// time, reported as a warning on the Ingress naming its Secret.
#[test]
fn expired_certificates_are_served_and_reported() {
    let cert = |name: &str| {
        let path = format!("{}/../testdata/certs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    };
    let indent = |pem: String| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: old, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}---\n\
         apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i, namespace: default}}\nspec:\n  tls: [{{hosts: [old.example.com], secretName: old}}]\n  rules: [{{host: old.example.com}}]\n",
        indent(cert("expired.crt.pem")),
        indent(cert("expired.key.pem"))
    );
    let objects = objects(&yaml);
    let served = |t: &Translation| {
        let table = t
            .snapshot
            .listeners
            .iter()
            .find(|l| l.port == 443)
            .unwrap()
            .tls
            .clone()
            .unwrap();
        let chain = table
            .select(Some("old.example.com"))
            .chain
            .unwrap()
            .name
            .clone();
        chain
    };
    let quiet = translate(&objects, &Options::default());
    assert_eq!(served(&quiet), "cert-secret-default-old");
    assert!(quiet.errors.is_empty(), "{:?}", quiet.errors);
    let timed = translate(
        &objects,
        &Options {
            now: Some(4_000_000_000),
            ..Options::default()
        },
    );
    assert_eq!(served(&timed), "cert-secret-default-old");
    let e = &timed.errors[0];
    assert_eq!(e.field, "spec.tls[0].secretName");
    assert!(
        matches!(&e.kind, ErrorKind::InvalidSetting(m) if m.contains("expired") && m.contains("served anyway")),
        "{e}"
    );
}

/// Kubernetes refuses only an Ingress host that is an IP address (`validateIngressRules`,
/// `ParseIPSloppy`): a name of digits such as `1.2.3` is a host.
#[test]
fn a_host_of_digits_that_is_no_address_is_a_host() {
    let t = with_services(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: digits, namespace: default}\nspec: {rules: [{host: 1.2.3, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}\n",
    );
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert_eq!(route(&t, "1.2.3", "/"), "a.default.svc.cluster.local:80");
}
