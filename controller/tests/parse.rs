//! Strict and tolerant parsing: the source decides how unknown fields are taken.

use portico_controller::model::{Object, ObjectError, ParseMode};
use portico_controller::source::documents;

/// An Ingress as a live API server returns it: `status`, `metadata.managedFields` and other
/// server-set metadata, and a spec field from a newer API version.
const LIVE_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: web
  uid: 0b1e6d2c-7c1b-4b7e-9d55-3f0c8a6f1a11
  resourceVersion: "4711"
  generation: 2
  managedFields:
  - manager: kubectl
    operation: Apply
    apiVersion: networking.k8s.io/v1
    fieldsType: FieldsV1
    fieldsV1: {f:spec: {f:rules: {}}}
spec:
  rules:
  - host: shop.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: a, port: {number: 80}}}
        futureField: {enabled: true}
status:
  loadBalancer:
    ingress: [{ip: 192.0.2.10}]
"#;

fn value(yaml: &str) -> serde_json::Value {
    documents(yaml).unwrap().remove(0)
}

#[test]
fn tolerant_parsing_ignores_status_managed_fields_and_newer_fields() {
    let object = Object::parse(value(LIVE_INGRESS), ParseMode::Tolerant).unwrap();
    let Object::Ingress(ingress) = object else {
        panic!("an Ingress");
    };
    assert_eq!(ingress.metadata.name, "shop");
    let path = &ingress.spec.rules[0].http.as_ref().unwrap().paths[0];
    assert_eq!(path.backend.service.as_ref().unwrap().name, "a");
}

#[test]
fn strict_parsing_names_the_unknown_spec_field() {
    let err = Object::parse(value(LIVE_INGRESS), ParseMode::Strict).unwrap_err();
    assert_eq!(
        err,
        ObjectError::Field {
            field: "spec.rules[0].http.paths[0].futureField".into(),
            message: "unknown field `futureField`".into(),
        }
    );
    // `from_value` is the strict default.
    assert_eq!(Object::from_value(value(LIVE_INGRESS)).unwrap_err(), err);
    // Without the unknown spec field, `status` and server metadata are accepted in strict mode
    // too: they are not part of what a user's manifest is held to.
    let without = LIVE_INGRESS.replace("        futureField: {enabled: true}\n", "");
    assert!(Object::parse(value(&without), ParseMode::Strict).is_ok());
}

#[test]
fn strict_parsing_names_unknown_fields_in_every_routing_family() {
    let cases = [
        (
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules: [{backendRefs: [{name: a, port: 80, wieght: 2}]}]\n",
            "spec.rules[0].backendRefs[0].wieght: unknown field `wieght`",
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http: [{match: [{uri: {prefix: /}, headers: {x: {exact: y, glob: z}}}], route: [{destination: {host: a}}]}]\n",
            "spec.http[0].match[0].headers.x.glob: unknown field `glob`",
        ),
        (
            "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: c}\nspec: {controller: x, scope: Cluster}\n",
            "spec.scope: unknown field `scope`",
        ),
    ];
    for (yaml, want) in cases {
        let err = Object::parse(value(yaml), ParseMode::Strict)
            .unwrap_err()
            .to_string();
        assert_eq!(err, want);
        assert!(
            Object::parse(value(yaml), ParseMode::Tolerant).is_ok(),
            "{want}"
        );
    }
}

#[test]
fn kinds_read_only_in_part_accept_unknown_fields_in_strict_mode() {
    // A Service's selector, session affinity etc. do not change routing: never an error.
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  selector: {app: a}\n  sessionAffinity: None\n  ports: [{name: http, port: 80, targetPort: 8080}]\n";
    let Object::Service(s) = Object::parse(value(yaml), ParseMode::Strict).unwrap() else {
        panic!("a Service");
    };
    assert_eq!(s.spec.ports[0].port, 80);
}
