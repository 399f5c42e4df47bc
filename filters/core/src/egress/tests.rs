use super::*;
use crate::tls::test_hello;

fn port(number: u16, protocol: Protocol, cluster: &str) -> EntryPort {
    EntryPort {
        number,
        protocol,
        cluster: cluster.into(),
    }
}

fn entry(name: &str, hosts: &[&str], addresses: &[&str], ports: Vec<EntryPort>) -> Entry {
    Entry {
        name: format!("ServiceEntry default/{name}"),
        id: format!("serviceentry.default.{name}"),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        addresses: addresses.iter().map(|h| (*h).to_owned()).collect(),
        endpoints: Vec::new(),
        original_destination: true,
        ports,
    }
}

fn registry() -> Vec<Entry> {
    vec![
        entry(
            "httpbin",
            &["httpbin.example.com", "*.api.example.com"],
            &[],
            vec![port(80, Protocol::Http, "")],
        ),
        entry(
            "wiki",
            &["*.wiki.example.org", "exact.wiki.example.org"],
            &[],
            vec![port(443, Protocol::Tls, "outbound|443||*.wiki.example.org")],
        ),
        entry(
            "vip",
            &["vip.example.com"],
            &["127.0.60.1"],
            vec![port(443, Protocol::Tls, "outbound|443||vip.example.com")],
        ),
        entry(
            "db-wide",
            &["db.example.com"],
            &["127.0.61.0/24"],
            vec![port(5432, Protocol::Tcp, "outbound|5432||db.example.com")],
        ),
        entry(
            "db-narrow",
            &["db2.example.com"],
            &["127.0.61.128/25"],
            vec![port(5432, Protocol::Tcp, "outbound|5432||db2.example.com")],
        ),
        entry(
            "redis",
            &["redis.example.com"],
            &[],
            vec![port(6379, Protocol::Tcp, "portico|passthrough")],
        ),
    ]
}

fn config(mode: Mode) -> EgressConfig {
    EgressConfig {
        api_version: EGRESS_API_VERSION.into(),
        generation: "g1".into(),
        verify_destination: false,
        scopes: vec![Scope {
            name: "mesh".into(),
            sources: None,
            mode,
            entries: registry(),
        }],
    }
}

fn egress(c: &EgressConfig) -> Egress {
    Egress::from_json(c.to_json().as_bytes()).unwrap()
}

fn dst(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn tls(e: &Egress, to: &str, sni: Option<&str>) -> Verdict {
    match e.decide_connection(None, dst(to)) {
        Start::Decided(v) => v,
        Start::NeedHello => match e.decide_tls(None, dst(to), &test_hello(sni)) {
            Hello::Decided(v, _) => v,
            Hello::Wait => panic!("waiting on a whole ClientHello"),
        },
    }
}

#[test]
fn http_by_host_ignoring_the_port_and_case() {
    let e = egress(&config(Mode::RegistryOnly));
    let v = e.decide_http(None, dst("127.0.9.9:80"), "HTTPBIN.example.com:8080");
    assert_eq!(v.outcome, Outcome::Allowed, "{v:?}");
    assert_eq!(v.entry, "serviceentry.default.httpbin");
    let v = e.decide_http(None, dst("127.0.9.9:80"), "v1.eu.api.example.com");
    assert_eq!(
        v.outcome,
        Outcome::Allowed,
        "wildcards take any depth: {v:?}"
    );
    // A wildcard needs a label before its suffix.
    let v = e.decide_http(None, dst("127.0.9.9:80"), "api.example.com");
    assert_eq!(v.outcome, Outcome::Blocked);
    assert_eq!(v.entry, UNKNOWN_ENTRY);
    assert!(v.rule.starts_with("REGISTRY_ONLY"), "{}", v.rule);
    // The entry's port only.
    let v = e.decide_http(None, dst("127.0.9.9:8080"), "httpbin.example.com");
    assert_eq!(v.outcome, Outcome::Blocked);
}

#[test]
fn allow_any_passes_unknown_destinations_through() {
    let e = egress(&config(Mode::AllowAny));
    let v = e.decide_http(None, dst("127.0.9.9:80"), "unknown.example.org");
    assert_eq!(v.outcome, Outcome::Passthrough);
    let v = tls(&e, "127.0.9.9:443", Some("unknown.example.org"));
    assert_eq!(v.outcome, Outcome::Passthrough);
    assert_eq!(
        v.cluster.as_deref(),
        Some(crate::config::PASSTHROUGH_CLUSTER)
    );
    match e.decide_connection(None, dst("127.0.9.9:9999")) {
        Start::Decided(v) => assert_eq!(v.outcome, Outcome::Passthrough),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls_by_sni_and_by_vip() {
    let e = egress(&config(Mode::RegistryOnly));
    let v = tls(&e, "127.0.9.9:443", Some("en.m.wiki.example.org"));
    assert_eq!(v.outcome, Outcome::Allowed, "{v:?}");
    assert_eq!(
        v.cluster.as_deref(),
        Some("outbound|443||*.wiki.example.org")
    );
    // A VIP takes any SNI, even none.
    for sni in [None, Some("whatever.test")] {
        let v = tls(&e, "127.0.60.1:443", sni);
        assert_eq!(v.entry, "serviceentry.default.vip", "{sni:?}");
        assert_eq!(v.outcome, Outcome::Allowed);
    }
    // No SNI, an SNI no entry names, and bytes that are no ClientHello are blocked.
    assert_eq!(tls(&e, "127.0.9.9:443", None).outcome, Outcome::Blocked);
    assert_eq!(
        tls(&e, "127.0.9.9:443", Some("evil.test")).outcome,
        Outcome::Blocked
    );
    let v = match e.decide_tls(None, dst("127.0.9.9:443"), b"GET / HTTP/1.1\r\n\r\n") {
        Hello::Decided(v, _) => v,
        Hello::Wait => panic!("plain text is no ClientHello"),
    };
    assert_eq!(v.outcome, Outcome::Blocked);
    let whole = test_hello(Some("a.wiki.example.org"));
    assert_eq!(
        e.decide_tls(None, dst("127.0.9.9:443"), &whole[..20]),
        Hello::Wait
    );
}

#[test]
fn tcp_by_longest_prefix_then_port_capture() {
    let e = egress(&config(Mode::RegistryOnly));
    let decided = |to: &str| match e.decide_connection(None, dst(to)) {
        Start::Decided(v) => v,
        Start::NeedHello => panic!("TCP needs no ClientHello"),
    };
    assert_eq!(
        decided("127.0.61.7:5432").entry,
        "serviceentry.default.db-wide"
    );
    assert_eq!(
        decided("127.0.61.200:5432").entry,
        "serviceentry.default.db-narrow"
    );
    assert_eq!(decided("127.0.62.1:5432").outcome, Outcome::Blocked);
    let v = decided("127.0.99.3:6379");
    assert_eq!(v.entry, "serviceentry.default.redis");
    assert_eq!(v.outcome, Outcome::Allowed);
    assert_eq!(decided("127.0.99.3:1234").outcome, Outcome::Blocked);
}

#[test]
fn plain_tcp_never_waits_for_a_client_hello() {
    let mut c = config(Mode::RegistryOnly);
    // Port 443 also has a TCP entry with an address.
    c.scopes[0].entries.push(entry(
        "tcp443",
        &["tcp443.example.com"],
        &["127.0.65.1"],
        vec![port(443, Protocol::Tcp, "outbound|443||tcp443.example.com")],
    ));
    let e = egress(&c);
    assert_eq!(
        e.decide_connection(None, dst("127.0.9.9:443")),
        Start::NeedHello
    );
    let v = e.decide_tcp(None, dst("127.0.9.9:443"));
    assert_eq!(v.outcome, Outcome::Blocked);
    assert!(v.rule.contains("picked by SNI"), "{}", v.rule);
    assert_eq!(
        e.decide_tcp(None, dst("127.0.65.1:443")).entry,
        "serviceentry.default.tcp443"
    );
}

#[test]
fn the_destination_check_refuses_spoofed_names() {
    let mut c = config(Mode::AllowAny);
    c.verify_destination = true;
    c.scopes[0].entries.push(entry(
        "ranged",
        &["ranged.example.com"],
        &["127.0.63.0/24"],
        vec![port(80, Protocol::Http, "")],
    ));
    let mut pinned = entry(
        "pinned",
        &["pinned.example.com"],
        &[],
        vec![port(80, Protocol::Http, "")],
    );
    pinned.original_destination = false;
    c.scopes[0].entries.push(pinned);
    let e = egress(&c);
    // NONE without addresses: no dialled address can be its own.
    let v = e.decide_http(None, dst("127.0.9.9:80"), "httpbin.example.com");
    assert_eq!(v.outcome, Outcome::Blocked, "{v:?}");
    assert_eq!(v.entry, "serviceentry.default.httpbin");
    assert!(v.rule.contains("verifyEgressDestination"), "{}", v.rule);
    assert_eq!(
        e.decide_http(None, dst("127.0.63.7:80"), "ranged.example.com")
            .outcome,
        Outcome::Allowed
    );
    assert_eq!(
        e.decide_http(None, dst("127.0.64.7:80"), "ranged.example.com")
            .outcome,
        Outcome::Blocked
    );
    // Not NONE: the entry's own endpoints are used whatever was dialled.
    assert_eq!(
        e.decide_http(None, dst("127.0.9.9:80"), "pinned.example.com")
            .outcome,
        Outcome::Allowed
    );
    assert_eq!(
        tls(&e, "127.0.9.9:443", Some("a.wiki.example.org")).outcome,
        Outcome::Blocked
    );
    // Off (Istio): the name is trusted.
    let e = egress(&config(Mode::AllowAny));
    assert_eq!(
        e.decide_http(None, dst("127.0.9.9:80"), "httpbin.example.com")
            .outcome,
        Outcome::Allowed
    );
}

#[test]
fn scopes_by_source() {
    let mut c = config(Mode::AllowAny);
    c.scopes.insert(
        0,
        Scope {
            name: "Sidecar shop/default".into(),
            sources: Some(vec!["127.0.70.1".into()]),
            mode: Mode::RegistryOnly,
            entries: Vec::new(),
        },
    );
    let e = egress(&c);
    let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    let v = e.decide_http(ip("127.0.70.1"), dst("127.0.9.9:80"), "httpbin.example.com");
    assert_eq!(v.outcome, Outcome::Blocked);
    assert_eq!(v.scope, "Sidecar shop/default");
    let v = e.decide_http(ip("127.0.70.2"), dst("127.0.9.9:80"), "httpbin.example.com");
    assert_eq!(v.outcome, Outcome::Allowed);
    assert_eq!(
        e.decide_http(None, dst("127.0.9.9:80"), "nobody.test")
            .outcome,
        Outcome::Passthrough
    );
}

#[test]
fn refuses_bad_configs_naming_the_field() {
    let mut c = config(Mode::RegistryOnly);
    c.scopes[0].entries[3].addresses[0] = "127.0.61.0/33".into();
    let err = Egress::from_json(c.to_json().as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .contains("scopes[0].entries[3].addresses[0]"),
        "{err}"
    );
    let mut c = config(Mode::RegistryOnly);
    c.scopes[0].sources = Some(Vec::new());
    let err = Egress::from_json(c.to_json().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("scopes"), "{err}");
    let mut c = config(Mode::RegistryOnly);
    c.scopes[0].entries[1].ports[0].cluster.clear();
    let err = Egress::from_json(c.to_json().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("entries[1].ports[0].cluster"),
        "{err}"
    );
    let err = Egress::from_json(
        br#"{"apiVersion":"egress.portico.dev/v1alpha1","generation":"g","scopes":[],"x":1}"#,
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Json { .. }), "{err}");
    let mut c = config(Mode::RegistryOnly);
    c.api_version = "routing.portico.dev/v1alpha2".into();
    assert!(matches!(
        Egress::from_json(c.to_json().as_bytes()),
        Err(ConfigError::ApiVersion { .. })
    ));
}
