// The egress policy's verdicts on arbitrary names, addresses and ClientHello bytes, against a
// fixed registry (exact and wildcard hosts, one-IP and CIDR addresses, HTTP, TLS and TCP ports,
// a Sidecar-like scope). Beyond "never panics": a blocked verdict names no cluster, an allowed
// connection always does, and a TLS verdict never changes once the ClientHello is complete.
//
// Included by the fuzz target and by `filters/core/tests/fuzz_seeds.rs`, which replays the
// committed seeds in `cargo test`.
use portico_core::egress::*;

fn entry(name: &str, hosts: &[&str], addresses: &[&str], ports: Vec<EntryPort>) -> Entry {
    Entry {
        name: name.into(),
        id: format!("serviceentry.default.{name}"),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        endpoints: vec!["127.0.0.9".into()],
        original_destination: true,
        ports,
    }
}

fn port(number: u16, protocol: Protocol, cluster: &str) -> EntryPort {
    EntryPort {
        number,
        protocol,
        cluster: cluster.into(),
    }
}

fn egress() -> Egress {
    let entries = vec![
        entry("web", &["web.example.com", "*.api.example.com"], &[], vec![port(80, Protocol::Http, "")]),
        entry("tls", &["*.wiki.example.org"], &["127.0.3.0/24"], vec![port(443, Protocol::Tls, "c-tls")]),
        entry("vip", &["vip.example.com"], &["127.0.4.1"], vec![port(443, Protocol::Tls, "c-vip")]),
        entry("db", &["db.example.com"], &["127.0.5.0/24", "127.0.5.128/25"], vec![port(5432, Protocol::Tcp, "c-db")]),
        entry("any", &["any.example.com"], &[], vec![port(6379, Protocol::Tcp, "c-any")]),
    ];
    let config = EgressConfig {
        api_version: EGRESS_API_VERSION.into(),
        generation: "fuzz".into(),
        verify_destination: true,
        scopes: vec![
            Scope {
                name: "narrow".into(),
                sources: Some(vec!["127.0.0.2".into()]),
                mode: Mode::AllowAny,
                entries: entries[..2].to_vec(),
            },
            Scope {
                name: "mesh".into(),
                sources: None,
                mode: Mode::RegistryOnly,
                entries,
            },
        ],
    };
    Egress::compile(&config).expect("the fuzz config compiles")
}

thread_local! {
    static EGRESS: Egress = egress();
}

/// Runs one input; panics on a broken promise.
pub fn check(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let source = std::net::IpAddr::from([127, 0, 0, data[0] % 4]);
    let dst = std::net::SocketAddr::from((
        [127, 0, data[1] % 8, data[2]],
        [80, 443, 5432, 6379, u16::from_be_bytes([data[3], data[4]])][usize::from(data[5] % 5)],
    ));
    let rest = &data[6..];
    EGRESS.with(|e| {
        let v = e.decide_http(Some(source), dst, &String::from_utf8_lossy(rest));
        if v.outcome == Outcome::Blocked {
            assert!(v.cluster.is_none());
        }
        let check = |v: &Verdict| match v.outcome {
            Outcome::Blocked => assert!(v.cluster.is_none(), "{v:?}"),
            Outcome::Allowed | Outcome::Passthrough => assert!(v.cluster.is_some(), "{v:?}"),
        };
        check(&e.decide_tcp(Some(source), dst));
        if let Start::Decided(v) = e.decide_connection(Some(source), dst) {
            check(&v);
        }
        let mut settled: Option<Verdict> = None;
        for end in 0..=rest.len() {
            match e.decide_tls(Some(source), dst, &rest[..end]) {
                Hello::Wait => assert!(settled.is_none(), "waits again after deciding"),
                Hello::Decided(v, _) => {
                    check(&v);
                    if let Some(s) = &settled {
                        assert_eq!(s, &v, "prefix {end} changed the verdict");
                    }
                    settled = Some(v);
                }
            }
        }
    });
}
