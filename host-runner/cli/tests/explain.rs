//! `host-runner explain`: the TLS chain an `https://` request's SNI picks, then the route.

use std::process::Command;

fn explain(args: &[&str]) -> String {
    let manifests = portico_scenario::workspace_root().join("testdata/demo");
    let out = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .arg("explain")
        .arg("--manifests")
        .arg(&manifests)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn https_requests_explain_the_certificate_first() {
    // The demo's Ingress has no `tls` section: ingress-nginx serves its hosts with the default
    // (here fake) certificate.
    let text = explain(&["--request", "GET https://shop.example.com/cart/items"]);
    let first = text
        .lines()
        .find(|l| l.starts_with("tls"))
        .unwrap_or_default();
    assert!(
        first.starts_with("tls (ingress-nginx, SNI shop.example.com): no SNI rule matched")
            && first.contains("the fake certificate"),
        "{text}"
    );
    assert!(text.contains("cart.default.svc.cluster.local:80"), "{text}");
    let text = explain(&["--request", "GET https://shop.example.com/", "--sni", ""]);
    assert!(
        text.contains("SNI none): no SNI: the default chain"),
        "{text}"
    );
    let text = explain(&["--request", "GET http://shop.example.com:443/"]);
    assert!(text.contains("plain HTTP is closed"), "{text}");
}

#[test]
fn the_verdict_closes_the_explanation() {
    let text = explain(&["--request", "GET http://shop.example.com/cart/items"]);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("verdict: ") && last.contains("cart.default.svc.cluster.local:80"),
        "{text}"
    );
    assert!(
        text.contains("endpoints of cart.default.svc.cluster.local:80"),
        "{text}"
    );
    let text = explain(&["--request", "GET http://shop.example.com:8080/"]);
    assert!(
        text.ends_with("verdict: refused: the gateway has no listener on port 8080\n"),
        "{text}"
    );
}
