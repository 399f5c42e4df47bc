//! The explainer in the browser: `explain` takes pasted Kubernetes objects and one request and
//! answers with the decision and its trace ([`portico_scenario::explain`]: the controller's
//! translate, the TLS table's selection, the egress policy and the router — the code the filters
//! run in Envoy). `just playground` builds it for `wasm32-unknown-unknown`, runs `wasm-bindgen
//! --target web` on it and serves `www/` with it on loopback.
//!
//! The functions take and return JSON text so that the page's JavaScript stays a few lines; the
//! same functions run natively in this crate's tests.

use portico_controller::translate::Options;
use portico_scenario::explain::{self, Question};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::wasm_bindgen;

/// What the page sends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ask {
    /// The pasted objects (a YAML stream).
    pub objects: String,
    /// `METHOD URL`.
    pub request: String,
    /// `name: value` lines.
    #[serde(default)]
    pub headers: String,
    /// `gateway` (default) or `sidecar`.
    #[serde(default)]
    pub via: String,
    /// The client's address (empty: none).
    #[serde(default)]
    pub source: String,
    /// The SNI (absent: the URL's host; empty: none).
    #[serde(default)]
    pub sni: Option<String>,
    /// For the sidecar: the address the client connected to, `IP:PORT` (empty: from the URL).
    #[serde(default)]
    pub destination: String,
    /// The time, in milliseconds since the epoch (the page's `Date.now()`): expired certificates
    /// are reported against it.
    #[serde(default)]
    pub now_ms: Option<f64>,
}

/// What the page shows.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Answer {
    /// The outcome in one line (empty when the question could not be read).
    pub verdict: String,
    /// The steps to it.
    pub steps: Vec<String>,
    /// What is wrong with the objects: documents that are not usable objects, then translate's
    /// errors and warnings, each naming the object and field.
    pub diagnostics: Vec<String>,
    /// Why the question could not be answered (a bad request line, header, address).
    pub error: Option<String>,
}

/// Answers an [`Ask`] given as JSON with an [`Answer`] as JSON.
#[wasm_bindgen]
pub fn explain(ask: &str) -> String {
    let answer = match serde_json::from_str::<Ask>(ask) {
        Ok(ask) => answer(&ask),
        Err(e) => Answer {
            error: Some(format!("the question: {e}")),
            ..Answer::default()
        },
    };
    serde_json::to_string(&answer).unwrap_or_default()
}

/// [`explain`] on a parsed question.
pub fn answer(ask: &Ask) -> Answer {
    let (objects, mut diagnostics) = explain::read_objects("objects", &ask.objects);
    let question = match question(ask) {
        Ok(q) => q,
        Err(e) => {
            return Answer {
                diagnostics,
                error: Some(e),
                ..Answer::default()
            }
        }
    };
    let options = Options {
        now: ask.now_ms.map(|ms| (ms / 1000.0) as i64),
        keys_withheld: true,
        ..Options::default()
    };
    match explain::explain(&objects, &options, &question) {
        Ok(e) => {
            diagnostics.extend(e.diagnostics);
            Answer {
                verdict: e.verdict,
                steps: e.steps,
                diagnostics,
                error: None,
            }
        }
        Err(e) => Answer {
            diagnostics,
            error: Some(e),
            ..Answer::default()
        },
    }
}

fn question(ask: &Ask) -> Result<Question, String> {
    let mut headers = Vec::new();
    for line in ask.headers.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("header {line:?}: expected `name: value`"))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let sidecar = match ask.via.as_str() {
        "" | "gateway" => false,
        "sidecar" => true,
        other => return Err(format!("via {other:?}: expected gateway or sidecar")),
    };
    let source = match ask.source.trim() {
        "" => None,
        s => Some(
            s.parse()
                .map_err(|_| format!("source {s:?}: not an IP address"))?,
        ),
    };
    let destination = match ask.destination.trim() {
        "" => None,
        d => Some(
            d.parse()
                .map_err(|_| format!("destination {d:?}: expected IP:PORT"))?,
        ),
    };
    Ok(Question {
        request: ask.request.clone(),
        headers,
        sidecar,
        source,
        sni: ask.sni.clone(),
        destination,
    })
}

/// A sample the page offers: objects and a request to start from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Its name in the page's list.
    pub name: &'static str,
    /// The objects.
    pub objects: &'static str,
    /// The request.
    pub request: &'static str,
    /// Its headers.
    pub headers: &'static str,
    /// `gateway` or `sidecar`.
    pub via: &'static str,
}

/// The samples.
pub const SAMPLES: &[Sample] = &[
    Sample {
        name: "Ingress (ingress-nginx): certificate, canary, default backend",
        objects: include_str!("../samples/ingress-nginx.yaml"),
        request: "GET https://shop.example.com/cart/items",
        headers: "",
        via: "gateway",
    },
    Sample {
        name: "Gateway API: header match and weighted backends",
        objects: include_str!("../samples/gateway-api.yaml"),
        request: "GET http://store.example.com/api/orders",
        headers: "version: two",
        via: "gateway",
    },
    Sample {
        name: "Istio sidecar: VirtualService subsets, REGISTRY_ONLY egress, a ServiceEntry",
        objects: include_str!("../samples/istio-egress.yaml"),
        request: "GET http://unknown.example.org/",
        headers: "",
        via: "sidecar",
    },
];

/// [`SAMPLES`] as JSON, for the page's list.
#[wasm_bindgen]
pub fn samples() -> String {
    serde_json::to_string(SAMPLES).unwrap_or_default()
}

#[cfg(test)]
mod tests;
