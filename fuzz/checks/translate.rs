// Kubernetes objects through the controller: a YAML stream is split into documents
// (`source::documents`, with its nesting limit), each document parsed as the directory source
// parses it (strictly; a document that does not parse is left out, as the controller leaves it
// out), and the objects translated — in both forward modes, with and without the mesh. Fails on:
// - a panic anywhere in parsing or translation;
// - a configuration translate produced that the filter it is for refuses (the routing filter's
//   `Router::from_json`, the tls filter's `Passthrough::from_json`, the egress filter's
//   `Egress::from_json`): the controller must never push what a proxy rejects;
// - a translation that is not deterministic (the same objects twice, another generation);
// - a diagnostic without an object or a message.
//
// Included by the fuzz target and by `controller/tests/fuzz_seeds.rs`, which replays the
// committed seeds in `cargo test`.
use portico_controller::envoy::tls_filter_config;
use portico_controller::model::{Object, ParseMode};
use portico_controller::source::documents;
use portico_controller::translate::{translate, Options};
use portico_core::config::ForwardMode;
use portico_core::egress::Egress;
use portico_core::tls::passthrough::Passthrough;
use portico_core::Router;

/// Runs one input; panics on a broken promise.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(values) = documents(text) else {
        return;
    };
    let objects: Vec<Object> = values
        .into_iter()
        .filter_map(|v| Object::parse(v, ParseMode::Strict).ok())
        .collect();
    for forward in [ForwardMode::Endpoint, ForwardMode::Cluster] {
        for mesh in [false, true] {
            let options = Options {
                forward,
                mesh,
                // A fixed clock: certificate expiry must not make two runs differ.
                now: Some(1_800_000_000),
                ..Options::default()
            };
            let t = translate(&objects, &options);
            let again = translate(&objects, &options);
            assert_eq!(
                t.snapshot.generation, again.snapshot.generation,
                "translate is not deterministic"
            );
            for l in t.snapshot.listeners.iter().chain(&t.snapshot.sidecar) {
                let json = l.routing.to_json();
                if let Err(e) = Router::from_json(json.as_bytes()) {
                    panic!("port {}: the routing filter refuses translate's config: {e}\n{json}", l.port);
                }
                if let Some(table) = &l.tls {
                    let json = tls_filter_config(l.port, table).to_json();
                    if let Err(e) = Passthrough::from_json(json.as_bytes()) {
                        panic!("port {}: the tls filter refuses translate's config: {e}\n{json}", l.port);
                    }
                }
            }
            if let Some(egress) = &t.snapshot.egress {
                let json = egress.config.to_json();
                if let Err(e) = Egress::from_json(json.as_bytes()) {
                    panic!("the egress filter refuses translate's config: {e}\n{json}");
                }
            }
            for e in &t.errors {
                assert!(!e.object.kind.is_empty(), "{e}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
