use super::*;
use crate::config::*;
use crate::tls::select::*;

#[test]
fn reads_json() {
    let v = parse(br#" {"a": [1, -2.5e3, true, false, null], "b\"\u00e9\ud83d\ude00": "x\n\/"} "#)
        .unwrap();
    assert_eq!(
        v,
        Value::Object(vec![
            (
                "a".into(),
                Value::Array(vec![
                    Value::Number("1"),
                    Value::Number("-2.5e3"),
                    Value::Bool(true),
                    Value::Bool(false),
                    Value::Null,
                ])
            ),
            ("b\"é😀".into(), Value::String("x\n/".into())),
        ])
    );
    assert_eq!(parse(b"[]").unwrap(), Value::Array(vec![]));
    assert_eq!(
        parse("\"é\"".as_bytes()).unwrap(),
        Value::String("é".into())
    );
}

#[test]
fn refuses_what_is_not_json_saying_where() {
    for (doc, message) in [
        (&b""[..], "EOF while parsing a value at line 1 column 0"),
        (b"{\"a\":1,}", "key must be a string at line 1 column 7"),
        (b"{\"a\" 1}", "expected `:` at line 1 column 5"),
        (b"[1 2]", "expected `,` or `]` at line 1 column 3"),
        (b"{\n\"a\":01}", "invalid number at line 2 column 5"),
        (b"1.", "invalid number at line 1 column 2"),
        (b"-", "invalid number at line 1 column 1"),
        (
            b"\"a\x01\"",
            "control character in a string at line 1 column 2",
        ),
        (b"\"\\x\"", "invalid escape at line 1 column 3"),
        (
            b"\"\\ud800\"",
            "lone leading surrogate in hex escape at line 1 column 7",
        ),
        (b"\"abc", "EOF while parsing a string at line 1 column 4"),
        (b"{} x", "trailing characters at line 1 column 3"),
        (b"nul", "expected value at line 1 column 0"),
        (b"\xff", "not UTF-8 at byte 0"),
    ] {
        let e = parse(doc).unwrap_err();
        assert_eq!(e.message(), message, "{}", String::from_utf8_lossy(doc));
        assert_eq!(e.path(), ".");
    }
    // Nesting past 128 is refused, not a stack overflow.
    let deep = "[".repeat(100_000);
    assert!(parse(deep.as_bytes())
        .unwrap_err()
        .message()
        .starts_with("recursion limit exceeded"));
    let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
    assert!(parse(ok.as_bytes()).is_ok());
}

/// A configuration with every field and every variant set.
fn everything() -> RoutingConfig {
    let mods = HeaderMods {
        set: vec![("x-a".into(), "1".into())],
        add: vec![("x-b".into(), "2".into())],
        remove: vec!["x-c".into()],
    };
    let redirect = Redirect {
        url: Some("https://u".into()),
        scheme: Some("https".into()),
        host: Some("h".into()),
        port: Some(8443),
        path: Some(PathRewrite::Regex {
            regex: "^/a(.*)".into(),
            substitution: "/b\\1".into(),
            global: true,
        }),
        status: Some(308),
        strip_trailing_slash: true,
        explicit_port: true,
        drop_query: true,
    };
    let filters = BackendFilters {
        request_headers: mods.clone(),
        response_headers: mods.clone(),
        rewrite: Some(Rewrite {
            host: Some("rh".into()),
            path: Some(PathRewrite::Prefix("/p".into())),
        }),
        host: Some("fh".into()),
        redirect: Some(redirect.clone()),
        mirrors: vec![Mirror {
            backend: "m".into(),
            percent: 12.5,
        }],
    };
    let route = |name: &str, path: PathMatch, action: RouteAction| Route {
        headers: vec![
            HeaderMatch {
                name: "h1".into(),
                value: StringMatch::Exact("e".into()),
                invert: true,
            },
            HeaderMatch {
                name: "h2".into(),
                value: StringMatch::Present,
                invert: false,
            },
        ],
        query: vec![
            QueryMatch {
                name: "q1".into(),
                value: StringMatch::Prefix("p".into()),
            },
            QueryMatch {
                name: "q2".into(),
                value: StringMatch::Regex("r+".into()),
            },
        ],
        method: Some("GET".into()),
        sources: Some(vec!["gw".into()]),
        client_ranges: Some(ClientRanges {
            allow: vec!["10.0.0.0/8".into()],
            deny: vec!["10.1.0.0/16".into()],
        }),
        upstream: UpstreamPolicy {
            timeout_ms: Some(1500),
            per_try_timeout_ms: Some(500),
            retries: Some(3),
            retry_on: Some("5xx".into()),
            retriable_status_codes: vec![503, 504],
        },
        cors: Some(Cors {
            allow_origins: vec![StringMatch::Exact("https://o".into())],
            allow_methods: vec!["GET".into()],
            allow_headers: vec!["x".into()],
            expose_headers: vec!["y".into()],
            max_age: Some(-1),
            allow_credentials: true,
            nginx: true,
            ignore_unmatched_preflights: true,
        }),
        request_headers: mods.clone(),
        response_headers: mods.clone(),
        abort: Some(Abort {
            status: 503,
            percent: 0.5,
        }),
        delay: Some(Delay {
            millis: 20,
            percent: 100.0,
        }),
        mirrors: vec![Mirror {
            backend: "m".into(),
            percent: 1e-3,
        }],
        client_certificate: Some(ClientCertificate {
            denied: true,
            required: true,
            error_page: Some("https://e".into()),
            match_subject: Some("CN=a".into()),
            headers: true,
        }),
        ..Route::new(name, path, action)
    };
    let backend = |lb: LoadBalancer| Backend {
        cluster: "c".into(),
        endpoints: vec!["127.0.0.1:80".into()],
        lb,
        original_destination: true,
    };
    let certificate = |source| Certificate {
        sds: "s".into(),
        source,
    };
    RoutingConfig {
        forward: ForwardMode::Cluster,
        port: 8443,
        virtual_hosts: vec![VirtualHost {
            name: "v".into(),
            hosts: vec!["a.example".into(), "*.b.example".into()],
            wildcard: WildcardMode::MultiLabel,
            order: RouteOrder::Listed,
            routes: vec![
                route(
                    "forward",
                    PathMatch::Exact("/e".into()),
                    RouteAction::Forward {
                        backends: vec![
                            WeightedBackend {
                                backend: Some("b".into()),
                                weight: 3,
                                filters,
                            },
                            WeightedBackend {
                                backend: None,
                                weight: 0,
                                filters: BackendFilters::default(),
                            },
                        ],
                        rewrite: Some(Rewrite {
                            host: None,
                            path: Some(PathRewrite::Full("/f".into())),
                        }),
                    },
                ),
                route(
                    "redirect",
                    PathMatch::Prefix("/p".into()),
                    RouteAction::Redirect(redirect),
                ),
                route(
                    "respond",
                    PathMatch::Regex("/r.*".into()),
                    RouteAction::Respond {
                        status: 418,
                        body: "tea\n\"é\"".into(),
                    },
                ),
            ],
            default_backend: Some("d".into()),
        }],
        default_backend: Some("dd".into()),
        backends: [
            ("rr".to_owned(), backend(LoadBalancer::RoundRobin)),
            ("random".to_owned(), backend(LoadBalancer::Random)),
            ("least".to_owned(), backend(LoadBalancer::LeastRequest)),
            (
                "h1".to_owned(),
                backend(LoadBalancer::ConsistentHash {
                    key: HashKey::Header("x".into()),
                }),
            ),
            (
                "h2".to_owned(),
                backend(LoadBalancer::ConsistentHash {
                    key: HashKey::Cookie("c".into()),
                }),
            ),
            (
                "h3".to_owned(),
                backend(LoadBalancer::ConsistentHash {
                    key: HashKey::SourceIp,
                }),
            ),
            (
                "h4".to_owned(),
                backend(LoadBalancer::ConsistentHash {
                    key: HashKey::QueryParameter("q".into()),
                }),
            ),
            (
                "h5".to_owned(),
                backend(LoadBalancer::ConsistentHash { key: HashKey::Path }),
            ),
            (
                "h6".to_owned(),
                backend(LoadBalancer::ConsistentHash {
                    key: HashKey::Nginx("$host".into()),
                }),
            ),
        ]
        .into_iter()
        .collect(),
        passthrough: true,
        host_defaults_only: true,
        tls: Some(TlsTable {
            family: Family::Istio,
            chains: vec![
                Chain {
                    name: "t".into(),
                    origin: "o".into(),
                    action: ChainAction::Terminate(Terminate {
                        certificate: certificate(CertificateSource::Secret("ns/s".into())),
                        min_version: TlsVersion::V1_2,
                        max_version: TlsVersion::V1_3,
                        cipher_suites: vec!["ECDHE-RSA-AES128-GCM-SHA256".into()],
                        client: Some(ClientValidation {
                            ca_sds: "ca".into(),
                            required: true,
                            subject_alt_names: vec!["san".into()],
                            accept_untrusted: true,
                            max_depth: Some(2),
                        }),
                        request_headers: vec![
                            ("x-issuer".into(), PeerHeader::Issuer),
                            ("x-cert".into(), PeerHeader::Certificate),
                        ],
                    }),
                    hosts: vec!["a.example".into()],
                    host_check: Some(HostCheck::Server),
                },
                Chain {
                    name: "d".into(),
                    origin: "o".into(),
                    action: ChainAction::Terminate(Terminate {
                        certificate: certificate(CertificateSource::Default("d".into())),
                        min_version: TlsVersion::V1_0,
                        max_version: TlsVersion::V1_1,
                        cipher_suites: vec![],
                        client: None,
                        request_headers: vec![],
                    }),
                    hosts: vec![],
                    host_check: Some(HostCheck::Listener),
                },
                Chain {
                    name: "f".into(),
                    origin: "o".into(),
                    action: ChainAction::Terminate(Terminate {
                        certificate: certificate(CertificateSource::Fake),
                        min_version: TlsVersion::V1_2,
                        max_version: TlsVersion::V1_2,
                        cipher_suites: vec![],
                        client: None,
                        request_headers: vec![],
                    }),
                    hosts: vec![],
                    host_check: None,
                },
                Chain {
                    name: "p".into(),
                    origin: "o".into(),
                    action: ChainAction::Passthrough {
                        backends: vec![PassthroughBackend {
                            backend: "b".into(),
                            cluster: "c".into(),
                            weight: 1,
                        }],
                    },
                    hosts: vec![],
                    host_check: None,
                },
                Chain {
                    name: "r".into(),
                    origin: "o".into(),
                    action: ChainAction::Refuse {
                        reason: "no".into(),
                    },
                    hosts: vec![],
                    host_check: None,
                },
            ],
            rules: vec![
                SniRule {
                    pattern: SniPattern::Exact("a.example".into()),
                    chain: 0,
                },
                SniRule {
                    pattern: SniPattern::OneLabel("b.example".into()),
                    chain: 1,
                },
                SniRule {
                    pattern: SniPattern::AnyLabels("c.example".into()),
                    chain: 2,
                },
            ],
            default_chain: Some(4),
            response_headers: vec![("strict-transport-security".into(), "max-age=1".into())],
        }),
        unknown_host_status: Some(421),
        ..RoutingConfig::empty("g1")
    }
}

fn ours(json: &str) -> Result<RoutingConfig, (String, String)> {
    from_slice::<RoutingConfig>(json.as_bytes()).map_err(|e| (e.path(), e.message().to_owned()))
}

/// serde's reading of the same text, with serde_path_to_error's path.
fn serde(json: &str) -> Result<RoutingConfig, (String, String)> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize::<_, RoutingConfig>(de)
        .map_err(|e| (e.path().to_string(), e.inner().to_string()))
}

#[test]
fn every_field_and_variant_reads_as_serde_writes_it() {
    let config = everything();
    let json = config.to_json();
    assert_eq!(ours(&json), Ok(config.clone()));
    assert_eq!(serde(&json), Ok(config));
    // With the defaults left out.
    let empty = RoutingConfig::empty("g");
    assert_eq!(ours(&empty.to_json()), Ok(empty));
    let minimal = r#"{"apiVersion":"v","generation":"g"}"#;
    assert_eq!(ours(minimal), serde(minimal));
    assert_eq!(ours(minimal).unwrap().port, 80);
}

/// Documents serde accepts, with forms `to_json` does not write (nulls, unit variants with
/// content, members in another order), read alike.
#[test]
fn other_accepted_forms_read_as_serde_reads_them() {
    let json = everything().to_json();
    for (from, to) in [
        (r#""defaultBackend":"dd""#, r#""defaultBackend":null"#),
        (
            r#"{"type":"present"}"#,
            r#"{"type":"present","value":null}"#,
        ),
        (
            r#"{"type":"sourceIp"}"#,
            r#"{"type":"sourceIp","name":null}"#,
        ),
        (r#"{"type":"path"}"#, r#"{"name":null,"type":"path"}"#),
        (r#"{"type":"random"}"#, r#"{"type":"random","extra":1}"#),
        (r#""fake""#, r#"{"fake":null}"#),
        (
            r#"{"refuse":{"reason":"no"}}"#,
            r#"{"refuse":{"reason":"no","extra":1}}"#,
        ),
        (r#""percent":12.5"#, r#""percent":125e-1"#),
        (r#""percent":100.0"#, r#""percent":100"#),
        (r#""weight":3"#, r#""weight" : 3 "#),
    ] {
        assert!(json.contains(from), "{from}");
        let doc = json.replacen(from, to, 1);
        let serde = serde(&doc);
        assert!(serde.is_ok(), "{to}: {serde:?}");
        assert_eq!(ours(&doc), serde, "{to}");
    }
}

/// Every kind of error: both refuse, and ours names the same path as a path-tracking serde
/// deserializer.
#[test]
fn errors_name_the_paths_serde_names() {
    let json = everything().to_json();
    let mut cases: Vec<String> = [
        (r#""apiVersion":"#, r#""bogus":1,"apiVersion":"#),
        (r#""name":"forward""#, r#""name":"forward","x":1"#),
        (r#""weight":3"#, r#""weight":-3"#),
        (r#""weight":3"#, r#""weight":"3""#),
        (r#""weight":3"#, r#""weight":3,"weight":4"#),
        (r#""port":8443"#, r#""port":70000"#),
        (r#""hosts":["a.example","*.b.example"]"#, r#""hosts":"a""#),
        (
            r#"{"type":"exact","value":"/e"}"#,
            r#"{"type":"nope","value":"/e"}"#,
        ),
        (r#"{"type":"exact","value":"/e"}"#, r#"{"type":"exact"}"#),
        (
            r#"{"type":"exact","value":"/e"}"#,
            r#"{"type":"exact","value":"/e","x":1}"#,
        ),
        (r#"{"type":"respond","#, r#"{"type":"teleport","#),
        (r#""status":418"#, r#""status":418,"backends":[]"#),
        (r#""stripTrailingSlash":true"#, r#""stripTrailingSlash":1"#),
        (r#""forward":"cluster""#, r#""forward":"sideways""#),
        (r#""percent":12.5"#, r#""percent":"x""#),
        (r#""global":true"#, r#""global":true,"x":1"#),
        (r#""global":true"#, r#""global":"yes""#),
        (r#"{"type":"sourceIp"}"#, r#"{"type":"sourceIp","name":{}}"#),
        (r#""set":[["x-a","1"]]"#, r#""set":[["x-a"]]"#),
        (r#""set":[["x-a","1"]]"#, r#""set":[["x-a","1",2]]"#),
        (r#""minVersion":"TLSv1_2""#, r#""minVersion":"TLSv1_9""#),
        (r#"{"exact":"a.example"}"#, r#"{"exact":1}"#),
        (r#"{"exact":"a.example"}"#, r#"{"nope":"a"}"#),
        (r#""caSds":"ca","#, r#""#),
        (r#""chain":0"#, r#""chain":0.5"#),
        (r#""cluster":"c""#, r#""cluster":null"#),
        (r#""maxAge":-1"#, r#""maxAge":true"#),
        (
            r#""retriableStatusCodes":[503,504]"#,
            r#""retriableStatusCodes":[503,"x"]"#,
        ),
    ]
    .into_iter()
    .map(|(from, to)| {
        assert!(json.contains(from), "{from}");
        json.replacen(from, to, 1)
    })
    .collect();
    cases.push(r#"{"generation":"g"}"#.into());
    cases.push("[]".into());
    for case in &cases {
        let (path, _) = ours(case).expect_err(case);
        let (want, message) = serde(case).expect_err(case);
        // Inside an internally tagged variant (a route's `action`, a backend's `lb`) serde has
        // buffered the variant and reports the error at it; ours names the member.
        let buffered = (want.ends_with(".action") || want.ends_with(".lb"))
            && path.starts_with(&format!("{want}."));
        assert!(
            path == want || buffered,
            "{case}\nours {path}, serde {want}: {message}"
        );
    }
}
