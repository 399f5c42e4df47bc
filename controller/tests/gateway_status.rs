//! Gateway API status from `translate`: the conditions, reasons, `supportedKinds` and
//! `attachedRoutes` the Gateway API conformance tests expect (`gateway-with-attached-routes`,
//! `gateway-invalid-listeners-unsupported-protocol`, `gateway-invalid-route-kind`,
//! `httproute-invalid-*`, `gateway-invalid-tls-configuration`).

use portico_controller::objects::Object;
use portico_controller::source::documents;
use portico_controller::translate::gateway_api::status::{
    self, Condition, GatewayApiStatus, GatewayStatus, ListenerStatus, RouteStatus,
};
use portico_controller::translate::{translate, Options};

fn status(yaml: &str) -> GatewayApiStatus {
    let objects: Vec<Object> = documents(yaml)
        .unwrap()
        .into_iter()
        .map(|v| Object::from_value(v).unwrap())
        .collect();
    status::status(
        &objects,
        &translate(&objects, &Options::default()).errors,
        false,
    )
}

fn gateway<'a>(s: &'a GatewayApiStatus, name: &str) -> &'a GatewayStatus {
    s.gateways
        .iter()
        .find(|g| g.object.name == name)
        .unwrap_or_else(|| panic!("no status for Gateway {name}: {s:#?}"))
}

fn listener<'a>(g: &'a GatewayStatus, name: &str) -> &'a ListenerStatus {
    g.listeners.iter().find(|l| l.name == name).unwrap()
}

fn route<'a>(s: &'a GatewayApiStatus, name: &str) -> &'a RouteStatus {
    s.routes
        .iter()
        .find(|r| r.object.name == name)
        .unwrap_or_else(|| panic!("no status for route {name}: {s:#?}"))
}

/// `(status, reason)` of the condition `type_`.
fn cond(conditions: &[Condition], type_: &str) -> (bool, &'static str) {
    let c = conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} in {conditions:#?}"));
    (c.status, c.reason)
}

const CLASS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: portico}
spec: {controllerName: portico.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/gateway-controller}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: infra}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: infra}
"#;

#[test]
fn classes_of_portico_are_accepted_and_others_untouched() {
    let yaml = format!(
        "{CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: theirs, namespace: infra}}
spec:
  gatewayClassName: other
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
"
    );
    let s = status(&yaml);
    assert_eq!(s.classes.len(), 1, "{s:#?}");
    assert_eq!(s.classes[0].name, "portico");
    assert_eq!(
        cond(&s.classes[0].conditions, "Accepted"),
        (true, "Accepted")
    );
    assert!(
        s.gateways.is_empty(),
        "another controller's Gateway: {s:#?}"
    );
}

#[test]
fn attached_routes_are_counted_per_listener() {
    let yaml = format!(
        "{CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: two, namespace: infra}}
spec:
  gatewayClassName: portico
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: foo.example.com
    allowedRoutes:
      kinds: [{{kind: HTTPRoute}}]
      namespaces: {{from: Selector, selector: {{matchLabels: {{kubernetes.io/metadata.name: infra}}}}}}
  - name: http-unattached
    port: 8080
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r2, namespace: infra}}
spec:
  parentRefs: [{{kind: Gateway, name: two, namespace: infra, sectionName: http}}]
  rules: [{{backendRefs: [{{name: web, port: 8080}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r3, namespace: infra}}
spec:
  # Twice to the same listener: counted once.
  parentRefs: [{{name: two, sectionName: http}}, {{name: two, port: 80}}]
  rules: [{{backendRefs: [{{name: web, port: 8080}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: not-accepted, namespace: infra}}
spec:
  hostnames: [not-accepted.test.com]
  parentRefs: [{{name: two, sectionName: http}}]
  rules: [{{backendRefs: [{{name: web, port: 8080}}]}}]
"
    );
    let s = status(&yaml);
    let g = gateway(&s, "two");
    assert_eq!(cond(&g.conditions, "Accepted"), (true, "Accepted"));
    assert_eq!(cond(&g.conditions, "Programmed"), (true, "Programmed"));
    let http = listener(g, "http");
    assert_eq!(http.attached_routes, 2);
    assert_eq!(http.supported_kinds, ["HTTPRoute"]);
    for t in ["Accepted", "ResolvedRefs", "Programmed"] {
        assert!(cond(&http.conditions, t).0, "{t}: {http:#?}");
    }
    assert_eq!(cond(&http.conditions, "Conflicted"), (false, "NoConflicts"));
    assert_eq!(listener(g, "http-unattached").attached_routes, 0);
    let na = route(&s, "not-accepted");
    assert_eq!(
        cond(&na.parents[0].conditions, "Accepted"),
        (false, "NoMatchingListenerHostname")
    );
    let r3 = route(&s, "r3");
    assert_eq!(r3.parents.len(), 2);
    assert_eq!(r3.parents[1].parent_ref.port, Some(80));
    assert_eq!(r3.parents[1].parent_ref.group, "gateway.networking.k8s.io");
    assert_eq!(r3.parents[1].parent_ref.kind, "Gateway");
    assert_eq!(r3.parents[1].parent_ref.namespace, None);
    for p in &r3.parents {
        assert_eq!(cond(&p.conditions, "Accepted"), (true, "Accepted"));
        assert_eq!(cond(&p.conditions, "ResolvedRefs"), (true, "ResolvedRefs"));
    }
}

#[test]
fn unsupported_protocols_and_route_kinds() {
    let yaml = format!(
        "{CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: only-unsupported, namespace: infra}}
spec:
  gatewayClassName: portico
  listeners: [{{name: invalid, port: 80, protocol: UDP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: mixed, namespace: infra}}
spec:
  gatewayClassName: portico
  listeners:
  - {{name: http, port: 80, protocol: HTTP}}
  - {{name: invalid, port: 81, protocol: UDP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: only-invalid-kind, namespace: infra}}
spec:
  gatewayClassName: portico
  listeners:
  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{kinds: [{{kind: InvalidRoute}}]}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: supported-and-invalid-kind, namespace: infra}}
spec:
  gatewayClassName: portico
  listeners:
  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{kinds: [{{kind: InvalidRoute}}, {{kind: HTTPRoute}}]}}}}
"
    );
    let s = status(&yaml);
    let g = gateway(&s, "only-unsupported");
    assert_eq!(
        cond(&g.conditions, "Accepted"),
        (false, "ListenersNotValid")
    );
    let l = listener(g, "invalid");
    assert_eq!(
        cond(&l.conditions, "Accepted"),
        (false, "UnsupportedProtocol")
    );
    assert!(l.supported_kinds.is_empty());
    let g = gateway(&s, "mixed");
    assert_eq!(cond(&g.conditions, "Accepted"), (true, "ListenersNotValid"));
    assert_eq!(
        cond(&listener(g, "http").conditions, "Accepted"),
        (true, "Accepted")
    );
    let l = listener(gateway(&s, "only-invalid-kind"), "http");
    assert_eq!(
        cond(&l.conditions, "ResolvedRefs"),
        (false, "InvalidRouteKinds")
    );
    assert!(l.supported_kinds.is_empty());
    assert_eq!(cond(&l.conditions, "Programmed"), (false, "Invalid"));
    let l = listener(gateway(&s, "supported-and-invalid-kind"), "http");
    assert_eq!(
        cond(&l.conditions, "ResolvedRefs"),
        (false, "InvalidRouteKinds")
    );
    assert_eq!(l.supported_kinds, ["HTTPRoute"]);
}

#[test]
fn route_parent_reasons() {
    let yaml = format!(
        "{CLASS}---
apiVersion: v1
kind: Namespace
metadata: {{name: elsewhere}}
---
apiVersion: v1
kind: Service
metadata: {{name: far, namespace: elsewhere}}
spec: {{ports: [{{port: 80}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: portico
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: wrong-section, namespace: infra}}
spec:
  parentRefs: [{{name: gw, sectionName: nope}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: wrong-port, namespace: infra}}
spec:
  parentRefs: [{{name: gw, port: 81}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: other-namespace, namespace: elsewhere}}
spec:
  parentRefs: [{{name: gw, namespace: infra}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: refs, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{name: far, namespace: elsewhere, port: 80}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: missing, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{name: nothing-here, port: 80}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: kind, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{group: example.com, kind: Bucket, name: b}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: bad-regex, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: RegularExpression, value: '(unclosed'}}}}]
    backendRefs: [{{name: web, port: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: to-another-gateway, namespace: infra}}
spec:
  parentRefs: [{{name: not-a-gateway-here}}]
"
    );
    let s = status(&yaml);
    let accepted = |name: &str| cond(&route(&s, name).parents[0].conditions, "Accepted");
    let resolved = |name: &str| cond(&route(&s, name).parents[0].conditions, "ResolvedRefs");
    assert_eq!(accepted("wrong-section"), (false, "NoMatchingParent"));
    assert_eq!(accepted("wrong-port"), (false, "NoMatchingParent"));
    assert_eq!(
        accepted("other-namespace"),
        (false, "NotAllowedByListeners")
    );
    assert_eq!(accepted("refs"), (true, "Accepted"));
    assert_eq!(resolved("refs"), (false, "RefNotPermitted"));
    assert_eq!(resolved("missing"), (false, "BackendNotFound"));
    assert_eq!(resolved("kind"), (false, "InvalidKind"));
    assert_eq!(accepted("bad-regex"), (false, "UnsupportedValue"));
    assert!(
        !s.routes
            .iter()
            .any(|r| r.object.name == "to-another-gateway"),
        "a Gateway Portico does not know gets no entry"
    );
    // Only the accepted routes count (refs, missing, kind).
    assert_eq!(listener(gateway(&s, "gw"), "http").attached_routes, 3);
}

#[test]
fn listener_certificates_and_conflicts() {
    let yaml = format!(
        "{CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: tls, namespace: infra}}
spec:
  gatewayClassName: portico
  listeners:
  - name: missing-secret
    port: 443
    protocol: HTTPS
    hostname: a.example.com
    tls: {{certificateRefs: [{{name: nothing}}]}}
  - name: not-permitted
    port: 443
    protocol: HTTPS
    hostname: b.example.com
    tls: {{certificateRefs: [{{name: cert, namespace: elsewhere}}]}}
  - {{name: same-1, port: 80, protocol: HTTP, hostname: c.example.com}}
  - {{name: same-2, port: 80, protocol: HTTP, hostname: c.example.com}}
  - {{name: tcp-on-http-port, port: 80, protocol: TLS, tls: {{mode: Passthrough}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: to-missing-secret, namespace: infra}}
spec:
  parentRefs: [{{name: tls, sectionName: missing-secret}}]
"
    );
    let s = status(&yaml);
    let g = gateway(&s, "tls");
    let l = listener(g, "missing-secret");
    assert_eq!(
        cond(&l.conditions, "ResolvedRefs"),
        (false, "InvalidCertificateRef")
    );
    assert_eq!(cond(&l.conditions, "Programmed"), (false, "Invalid"));
    // Routes still attach to a listener whose references do not resolve.
    assert_eq!(l.attached_routes, 1);
    let l = listener(g, "not-permitted");
    assert_eq!(
        cond(&l.conditions, "ResolvedRefs"),
        (false, "RefNotPermitted")
    );
    for name in ["same-1", "same-2"] {
        let l = listener(g, name);
        assert_eq!(
            cond(&l.conditions, "Conflicted"),
            (true, "HostnameConflict")
        );
        assert_eq!(cond(&l.conditions, "Programmed"), (false, "Invalid"));
    }
    let l = listener(g, "tcp-on-http-port");
    assert_eq!(
        cond(&l.conditions, "Conflicted"),
        (true, "ProtocolConflict")
    );
    assert_eq!(cond(&g.conditions, "Accepted"), (true, "ListenersNotValid"));
}

/// GAMMA: an HTTPRoute whose parent is a Service gets an entry from Portico's mesh controller when
/// Portico routes the sidecars — accepted when the Service (and the named port) exists,
/// `NoMatchingParent` otherwise — and its `ResolvedRefs` as for a Gateway parent; none without the
/// mesh.
#[test]
fn service_parents_get_the_mesh_controllers_status() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: mesh}
spec: {ports: [{name: http, port: 80}, {name: admin, port: 9000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-route, namespace: mesh}
spec:
  parentRefs:
  - {group: "", kind: Service, name: echo}
  - {group: "", kind: Service, name: echo, sectionName: admin}
  - {group: "", kind: Service, name: echo, sectionName: metrics}
  - {group: "", kind: Service, name: missing}
  rules:
  - backendRefs: [{name: echo, port: 80}, {name: gone, port: 80}]
"#;
    let objects: Vec<Object> = documents(yaml)
        .unwrap()
        .into_iter()
        .map(|v| Object::from_value(v).unwrap())
        .collect();
    let options = Options {
        mesh: true,
        ..Options::default()
    };
    let errors = translate(&objects, &options).errors;
    let s = status::status(&objects, &errors, true);
    let r = route(&s, "mesh-route");
    assert_eq!(r.parents.len(), 4, "{r:#?}");
    let want = [
        (None, "echo", (true, "Accepted")),
        (Some("admin"), "echo", (true, "Accepted")),
        (Some("metrics"), "echo", (false, "NoMatchingParent")),
        (None, "missing", (false, "NoMatchingParent")),
    ];
    for (p, (section, name, accepted)) in r.parents.iter().zip(want) {
        assert_eq!(p.controller, status::MESH_CONTROLLER);
        assert_eq!(
            (p.parent_ref.group.as_str(), p.parent_ref.kind.as_str()),
            ("", "Service")
        );
        assert_eq!(
            (
                p.parent_ref.section_name.as_deref(),
                p.parent_ref.name.as_str()
            ),
            (section, name)
        );
        assert_eq!(cond(&p.conditions, "Accepted"), accepted, "{p:#?}");
        assert_eq!(
            cond(&p.conditions, "ResolvedRefs"),
            (false, "BackendNotFound")
        );
    }
    // Without the mesh, nobody routes the sidecars: no entry.
    let s = status::status(&objects, &errors, false);
    assert!(
        s.routes.iter().all(|r| r.object.name != "mesh-route"),
        "{s:#?}"
    );
}
