//! The reconciler behind its `Source` and `Sink` traits: a source that is no directory (as a
//! Kubernetes source will be: objects as an API server returns them, read tolerantly) and a sink
//! that keeps files in memory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use portico_controller::envoy::{RenderOptions, Rendered, BOOTSTRAP};
use portico_controller::model::{Object, ParseMode};
use portico_controller::sink::Sink;
use portico_controller::source::{documents, Loaded, Manifest, Source};
use portico_controller::translate::Options;
use portico_controller::Reconciler;

/// Objects as a live API server would list them.
struct Listed(String);

impl Source for Listed {
    fn read(&mut self) -> std::io::Result<Loaded> {
        let mut loaded = Loaded::default();
        for value in documents(&self.0).unwrap() {
            loaded.manifests.push(Manifest {
                file: PathBuf::from("api-server"),
                object: Object::parse(value, ParseMode::Tolerant).unwrap(),
            });
        }
        loaded.fingerprint = self.0.len() as u64;
        Ok(loaded)
    }
}

#[derive(Default)]
struct Memory(BTreeMap<String, Vec<u8>>);

impl Sink for Memory {
    fn write(&mut self, rendered: &Rendered) -> std::io::Result<Vec<String>> {
        let mut written = Vec::new();
        for (name, contents) in &rendered.files {
            if self.0.get(name) != Some(contents) {
                self.0.insert(name.clone(), contents.clone());
                written.push(name.clone());
            }
        }
        Ok(written)
    }
}

const LISTED: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: a, namespace: default, uid: "1", resourceVersion: "7"}
spec: {ports: [{name: http, port: 80}], selector: {app: a}}
status: {loadBalancer: {}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: default
  managedFields: [{manager: kubectl, operation: Apply}]
spec:
  rules:
  - host: shop.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}, newerField: 1}
status: {loadBalancer: {ingress: [{ip: 192.0.2.1}]}}
"#;

#[test]
fn a_source_and_a_sink_that_are_no_directories() {
    let render = RenderOptions {
        routing_wasm: "/nonexistent/routing.wasm".into(),
        xds_dir: "/nonexistent/xds".into(),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::new(),
        sidecar_port: None,
    };
    let mut r = Reconciler::with(
        Listed(LISTED.into()),
        Memory::default(),
        Options::default(),
        render,
    );
    let report = r.sync().unwrap();
    assert!(report.load_errors.is_empty() && report.translate_errors.is_empty());
    assert_eq!(report.written[0], BOOTSTRAP);
    let routing = report.snapshot.unwrap().routing(80).unwrap().clone();
    assert_eq!(routing.virtual_hosts[0].hosts, ["shop.test"]);
    assert!(routing
        .backends
        .contains_key("a.default.svc.cluster.local:80"));
    assert!(r.sync().unwrap().written.is_empty(), "nothing changed");
}
