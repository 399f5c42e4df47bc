//! `convert` over the objects of every Ingress scenario: the Gateway API objects it writes are
//! ones Portico (and so the API's validation as Portico reads it) accepts whole — no converted
//! object left out or partly unusable — and the CLI prints them with their differences. That
//! they answer as the Ingresses did is `just test`'s `--converted` scenario runs.

use std::path::Path;

use portico_controller::convert::{convert, to_yaml, ConvertOptions};
use portico_controller::model::Object;
use portico_controller::translate::{translate, ErrorKind, Options};

fn scenario_objects(path: &Path) -> Vec<Object> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc["objects"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let json: serde_json::Value = serde_json::to_value(v).ok()?;
            Object::from_value(json).ok()
        })
        .collect()
}

#[test]
fn converted_objects_are_accepted_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/scenarios");
    let mut converted = 0;
    for dir in ["ingress", "ingress-nginx", "tls"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let objects = scenario_objects(&file);
            if !objects.iter().any(|o| matches!(o, Object::Ingress(_))) {
                continue;
            }
            let conversion = convert(&objects, &ConvertOptions::default());
            let mut out: Vec<Object> = objects
                .iter()
                .filter(|o| !matches!(o, Object::Ingress(_)))
                .cloned()
                .collect();
            out.push(
                Object::from_value(serde_json::json!({
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "GatewayClass",
                    "metadata": {"name": "portico"},
                    "spec": {"controllerName": "portico.dev/gateway-controller"},
                }))
                .unwrap(),
            );
            for v in &conversion.objects {
                out.push(
                    Object::from_value(v.clone())
                        .unwrap_or_else(|e| panic!("{}: {e}: {v}", file.display())),
                );
            }
            let t = translate(&out, &Options::default());
            let ours = |kind: &str| {
                matches!(
                    kind,
                    "Gateway" | "HTTPRoute" | "ReferenceGrant" | "GatewayClass"
                )
            };
            let bad: Vec<String> = t
                .errors
                .iter()
                .filter(|e| ours(&e.object.kind))
                // A backendRef to a Service (port) the Ingress names but that does not exist is
                // the Ingress's own problem, which convert declares.
                .filter(|e| !matches!(e.kind, ErrorKind::MissingReference(_)))
                .map(ToString::to_string)
                .collect();
            assert!(bad.is_empty(), "{}: {bad:#?}", file.display());
            assert!(to_yaml(&conversion).contains("kind: Gateway\n"));
            converted += 1;
        }
    }
    assert!(converted >= 35, "{converted} scenario files converted");
}
