//! Manifests and rendered configurations the Envoy tests share.

use std::collections::BTreeMap;
use std::path::Path;

use portico_controller::envoy::{render_static, RenderOptions};
use portico_controller::objects::Object;
use portico_controller::source::documents;
use portico_controller::translate::{translate, Options};

use crate::proxy::{free_ports, routing_wasm};

/// An Ingress routing `shop.example.com` to Service `web` (port 80 → 8080) with one ready
/// endpoint at `ip`, all in `default`.
pub fn shop(ip: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: shop, namespace: default}}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{ports: [{{name: http, port: 80, targetPort: 8080}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
endpoints: [{{addresses: ["{ip}"], conditions: {{ready: true}}}}]
ports: [{{name: http, port: 8080}}]
"#
    )
}

/// Manifests parsed as a user wrote them (strictly).
///
/// # Panics
/// A document that is no object Portico reads.
pub fn objects(yaml: &str) -> Vec<Object> {
    documents(yaml)
        .expect("the manifests parse")
        .into_iter()
        .map(|v| Object::from_value(v).expect("a known kind"))
        .collect()
}

/// The self-contained Envoy bootstrap (`render_static`) for `yaml`, its port-80 listener on
/// `port` (443 bound aside, unused), as a value a test can edit before writing it.
///
/// # Panics
/// Manifests that do not parse, or no free port.
pub fn static_bootstrap(yaml: &str, work: &Path, port: u16) -> serde_json::Value {
    let t = translate(&objects(yaml), &Options::default());
    let render = RenderOptions {
        routing_wasm: routing_wasm(),
        xds_dir: work.join("xds"),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::from([(80, port), (443, free_ports(1).expect("a free port")[0])]),
        sidecar_port: None,
    };
    serde_yaml::from_str(&render_static(&t.snapshot, &render)).expect("the render is YAML")
}

/// Writes a bootstrap value (from [`static_bootstrap`], edited) as the YAML file Envoy reads.
///
/// # Panics
/// The file cannot be written.
pub fn write_bootstrap(bootstrap: &serde_json::Value, path: &Path) {
    let yaml = serde_yaml::to_string(bootstrap).expect("a JSON value is YAML");
    std::fs::write(path, yaml).expect("the bootstrap is written");
}
