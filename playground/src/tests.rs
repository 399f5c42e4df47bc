use super::*;

fn ask(sample: usize, request: &str, headers: &str) -> Answer {
    let s = &SAMPLES[sample];
    let answer = answer(&Ask {
        objects: s.objects.into(),
        request: request.into(),
        headers: headers.into(),
        via: s.via.into(),
        now_ms: Some(1_800_000_000_000.0),
        ..Ask::default()
    });
    assert_eq!(answer.error, None, "{answer:?}");
    answer
}

#[test]
fn every_sample_reads_cleanly() {
    for (i, s) in SAMPLES.iter().enumerate() {
        let a = ask(i, s.request, s.headers);
        assert!(a.diagnostics.is_empty(), "{}: {:?}", s.name, a.diagnostics);
        assert!(!a.verdict.is_empty() && !a.steps.is_empty(), "{a:?}");
    }
}

#[test]
fn ingress_nginx_sample() {
    // The Secret has no key: its certificate still serves its host (keys are withheld).
    let a = ask(0, "GET https://shop.example.com/cart/items", "");
    assert!(
        a.steps[0].starts_with("tls (ingress-nginx, SNI shop.example.com): SNI rule"),
        "{a:?}"
    );
    assert!(
        a.verdict.contains("cart.default.svc.cluster.local:80"),
        "{a:?}"
    );
    assert!(
        a.steps.iter().any(|s| s.contains("10.1.0.11:8080")),
        "{a:?}"
    );
    let a = ask(0, "GET https://shop.example.com/cart", "x-canary: always");
    assert!(a.verdict.contains("cart-next"), "{a:?}");
    // Another SNI gets the fake certificate, and its host ingress-nginx's 404; a path of the
    // host that no rule has goes to the Ingress's default backend.
    let a = ask(0, "GET https://other.example.com/", "");
    assert!(a.steps[0].contains("fake certificate"), "{a:?}");
    assert!(a.verdict.contains("404"), "{a:?}");
    let a = ask(0, "GET https://shop.example.com/nothing", "");
    assert!(a.verdict.contains("frontend"), "{a:?}");
}

#[test]
fn gateway_api_sample() {
    let a = ask(1, "GET http://store.example.com/api/orders", "version: two");
    assert!(
        a.verdict.contains("store-v2") && !a.verdict.contains("store-v1"),
        "{a:?}"
    );
    let a = ask(1, "GET http://store.example.com/api/orders", "");
    assert!(a.verdict.contains("weight 90"), "{a:?}");
    let a = ask(1, "GET http://store.example.com/web", "");
    assert!(a.verdict.contains("404"), "{a:?}");
}

#[test]
fn istio_egress_sample() {
    let a = ask(2, "GET http://unknown.example.org/", "");
    assert!(a.verdict.starts_with("blocked: 502"), "{a:?}");
    let a = ask(2, "GET http://httpbin.example.com/get", "");
    assert!(a.verdict.contains("httpbin.example.com:80"), "{a:?}");
    assert!(
        a.steps.iter().any(|s| s.contains("192.0.2.10:8080")),
        "{a:?}"
    );
}

#[test]
fn bad_questions_are_named() {
    let a: serde_json::Value = serde_json::from_str(&explain("{\"objects\": 1}")).unwrap();
    assert!(
        a["error"].as_str().unwrap().starts_with("the question:"),
        "{a}"
    );
    let a = answer(&Ask {
        objects: "kind: Ingress\nmetadata: {name: x}\nspec: {rules: 3}\n".into(),
        request: "GET http://a.example.com/".into(),
        ..Ask::default()
    });
    assert!(a.diagnostics[0].starts_with("objects: "), "{a:?}");
    for (field, ask) in [
        (
            "header",
            Ask {
                headers: "nocolon".into(),
                ..Ask::default()
            },
        ),
        (
            "via",
            Ask {
                via: "mesh".into(),
                ..Ask::default()
            },
        ),
        (
            "source",
            Ask {
                source: "x".into(),
                ..Ask::default()
            },
        ),
        (
            "destination",
            Ask {
                destination: "1.2.3.4".into(),
                ..Ask::default()
            },
        ),
        (
            "request",
            Ask {
                request: "GET nowhere".into(),
                ..Ask::default()
            },
        ),
    ] {
        let a = answer(&ask);
        assert!(a.error.as_deref().unwrap_or("").starts_with(field), "{a:?}");
    }
}
