// Every filter's configuration parser on arbitrary bytes: the routing filter's
// (`Router::from_json`), the tls filter's (`Passthrough::from_json`) and the egress filter's
// (`Egress::from_json`). A refusal is a typed error naming a field; nothing panics; a
// configuration that is accepted also decides a request.
//
// Included by the fuzz target and by `filters/core/tests/fuzz_seeds.rs`, which replays the
// committed seeds in `cargo test`.
use portico_core::egress::Egress;
use portico_core::tls::passthrough::Passthrough;
use portico_core::Router;

/// Runs one input; panics on a broken promise.
pub fn check(data: &[u8]) {
    if let Ok(router) = Router::from_json(data) {
        let _ = router.decide_path("shop.example.com", "/a/b?c=d");
    }
    match Passthrough::from_json(data) {
        Ok(p) => {
            let _ = p.decide(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(e) = Egress::from_json(data) {
        let dst = std::net::SocketAddr::from(([127, 0, 0, 1], 443));
        let _ = e.decide_http(None, dst, "a.example.com");
        let _ = e.decide_connection(None, dst);
    }
}
