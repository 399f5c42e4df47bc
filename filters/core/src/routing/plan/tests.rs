use std::cell::Cell;

use super::*;
use crate::config::{
    Abort, Backend, BackendFilters, ClientRanges, Cors, Mirror, PathMatch, PathRewrite, Redirect,
    Rewrite, Route, RouteAction, RouteOrder, RoutingConfig, StringMatch, VirtualHost,
    WeightedBackend, WildcardMode,
};

fn backend(endpoints: &[&str]) -> Backend {
    Backend {
        cluster: "outbound|80||svc".into(),
        endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
        lb: LoadBalancer::RoundRobin,
        original_destination: false,
    }
}

/// One listed host `shop.example.com` with `routes`, backends `a` (two endpoints), `b`
/// (one) and `empty` (none).
fn planner(routes: Vec<Route>, tweak: impl FnOnce(&mut RoutingConfig)) -> Planner {
    let mut c = RoutingConfig::empty("t");
    c.backends
        .insert("a".into(), backend(&["127.0.0.1:1", "127.0.0.2:1"]));
    c.backends.insert("b".into(), backend(&["127.0.0.3:1"]));
    c.backends.insert("empty".into(), backend(&[]));
    c.virtual_hosts.push(VirtualHost {
        name: "shop".into(),
        hosts: vec!["shop.example.com".into()],
        wildcard: WildcardMode::SingleLabel,
        order: RouteOrder::Listed,
        routes,
        default_backend: None,
    });
    tweak(&mut c);
    Planner::new(Router::try_from(c).unwrap(), 7)
}

fn req(method: &str, url_path: &str, extra: &[(&str, &str)]) -> RequestHeaders<'static> {
    let mut h: RequestHeaders<'static> = vec![
        (":method".into(), method.to_owned().into()),
        (":scheme".into(), "http".into()),
        (":authority".into(), "shop.example.com".into()),
        (":path".into(), url_path.to_owned().into()),
    ];
    h.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned().into(), (*v).to_owned().into())),
    );
    h
}

fn edit(plan: &Plan, name: &str) -> Option<Option<String>> {
    plan.edits
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn to_a(name: &str, path: &str) -> Route {
    Route::new(name, PathMatch::Prefix(path.into()), RouteAction::to("a"))
}

/// A peer that counts how often it is asked.
#[derive(Default)]
struct Counting {
    asked: Cell<u32>,
    source: Option<String>,
}

impl Peer for Counting {
    fn source(&self) -> Option<String> {
        self.asked.set(self.asked.get() + 1);
        self.source.clone()
    }
    fn destination(&self) -> Option<String> {
        self.asked.set(self.asked.get() + 1);
        Some("127.0.9.9:8080".into())
    }
}

#[test]
fn unknown_host_is_404_and_client_steering_headers_are_dropped() {
    let p = planner(vec![to_a("r", "/")], |_| {});
    let mut h = req("GET", "/", &[(ORIGINAL_DST_HEADER, "10.0.0.1:80")]);
    h[2].1 = "other.example.com".into();
    let peer = Counting::default();
    let plan = p.request(h, &peer);
    assert_eq!(plan.reply.as_ref().map(|r| r.status), Some(404));
    assert_eq!(plan.counts.to_vec(), vec![Outcome::NoRoute]);
    assert_eq!(edit(&plan, ORIGINAL_DST_HEADER), Some(None));
    assert_eq!(plan.steer, None, "nothing is forwarded");
    assert_eq!(
        peer.asked.get(),
        0,
        "no address is read when no route needs one"
    );
}

#[test]
fn forwards_round_robin_to_endpoints_or_to_the_cluster() {
    let p = planner(vec![to_a("r", "/")], |_| {});
    let peer = FixedPeer::default();
    let picks: Vec<_> = (0..4)
        .map(|_| {
            let plan = p.request(req("GET", "/x", &[]), &peer);
            assert!(plan.reply.is_none());
            assert_eq!(plan.counts.to_vec(), vec![Outcome::Forwarded]);
            plan.steer.clone().unwrap()
        })
        .collect();
    assert_eq!(
        picks,
        ["127.0.0.1:1", "127.0.0.2:1", "127.0.0.1:1", "127.0.0.2:1"]
    );

    let p = planner(vec![to_a("r", "/")], |c| c.forward = ForwardMode::Cluster);
    let plan = p.request(req("GET", "/x", &[]), &peer);
    assert_eq!(
        edit(&plan, CLUSTER_HEADER).flatten().as_deref(),
        Some("outbound|80||svc")
    );
    assert_eq!(plan.steer.as_deref(), Some(crate::config::CLUSTER_STEER));
    assert_eq!(edit(&plan, ORIGINAL_DST_HEADER), None);
}

#[test]
fn no_ready_endpoint_is_503_and_no_usable_backend_is_500() {
    let empty = Route::new("e", PathMatch::Exact("/e".into()), RouteAction::to("empty"));
    let zero = Route::new(
        "z",
        PathMatch::Exact("/z".into()),
        RouteAction::Forward {
            backends: vec![WeightedBackend {
                backend: Some("a".into()),
                weight: 0,
                filters: BackendFilters::default(),
            }],
            rewrite: None,
        },
    );
    let p = planner(vec![empty, zero], |_| {});
    let plan = p.request(req("GET", "/e", &[]), &FixedPeer::default());
    assert_eq!(plan.reply.map(|r| r.status), Some(503));
    assert_eq!(plan.counts.to_vec(), vec![Outcome::NoEndpoints]);
    let plan = p.request(req("GET", "/z", &[]), &FixedPeer::default());
    assert_eq!(plan.reply.map(|r| r.status), Some(500));
    assert_eq!(plan.counts.to_vec(), vec![Outcome::NoBackend]);
}

#[test]
fn header_changes_route_then_backend_then_upstream_then_rewrite() {
    let mut r = Route::new(
        "r",
        PathMatch::Prefix("/api".into()),
        RouteAction::Forward {
            backends: vec![WeightedBackend {
                backend: Some("b".into()),
                weight: 1,
                filters: BackendFilters {
                    request_headers: HeaderMods {
                        add: vec![("x-tag".into(), "backend".into())],
                        ..HeaderMods::default()
                    },
                    response_headers: HeaderMods {
                        set: vec![("x-served-by".into(), "b".into())],
                        ..HeaderMods::default()
                    },
                    ..BackendFilters::default()
                },
            }],
            rewrite: Some(Rewrite {
                host: Some("internal".into()),
                path: Some(PathRewrite::Prefix("/v2".into())),
            }),
        },
    );
    r.request_headers = HeaderMods {
        set: vec![("x-tag".into(), "route".into())],
        add: vec![("x-list".into(), "two".into())],
        remove: vec!["x-secret".into()],
    };
    r.response_headers.add = vec![("x-trace".into(), "portico".into())];
    r.upstream.timeout_ms = Some(500);
    let p = planner(vec![r], |_| {});
    let h = req(
        "GET",
        "/api/items?q=1",
        &[("x-list", "one"), ("x-secret", "s"), ("x-tag", "client")],
    );
    let plan = p.request(h, &FixedPeer::default());
    assert_eq!(edit(&plan, "x-secret"), Some(None));
    assert_eq!(
        edit(&plan, "x-tag").flatten().as_deref(),
        Some("route,backend")
    );
    assert_eq!(edit(&plan, "x-list").flatten().as_deref(), Some("one,two"));
    assert_eq!(
        edit(&plan, "x-envoy-upstream-rq-timeout-ms")
            .flatten()
            .as_deref(),
        Some("500")
    );
    assert_eq!(
        edit(&plan, ":authority").flatten().as_deref(),
        Some("internal")
    );
    assert_eq!(
        edit(&plan, ":path").flatten().as_deref(),
        Some("/v2/items?q=1")
    );
    let response = p.response(&plan.memo, &|n| (n == "x-trace").then(|| "origin".into()));
    assert_eq!(
        response,
        vec![
            ("x-trace".to_owned(), Some("origin,portico".to_owned())),
            ("x-served-by".to_owned(), Some("b".to_owned())),
        ]
    );
}

#[test]
fn a_backend_host_applies_when_the_rewrite_sets_no_host() {
    let route = |name: &str, rewrite: Option<Rewrite>| {
        Route::new(
            name,
            PathMatch::Prefix(format!("/{name}")),
            RouteAction::Forward {
                backends: vec![WeightedBackend {
                    backend: Some("b".into()),
                    weight: 1,
                    filters: BackendFilters {
                        host: Some("backend.internal".into()),
                        ..BackendFilters::default()
                    },
                }],
                rewrite,
            },
        )
    };
    let p = planner(
        vec![
            route("none", None),
            route(
                "path",
                Some(Rewrite {
                    host: None,
                    path: Some(PathRewrite::Prefix("/v2".into())),
                }),
            ),
            route(
                "host",
                Some(Rewrite {
                    host: Some("route.internal".into()),
                    path: None,
                }),
            ),
        ],
        |_| {},
    );
    for (path, host, new_path) in [
        ("/none/x", "backend.internal", None),
        ("/path/x", "backend.internal", Some("/v2/x")),
        ("/host/x", "route.internal", None),
    ] {
        let plan = p.request(req("GET", path, &[]), &FixedPeer::default());
        assert_eq!(
            edit(&plan, ":authority").flatten().as_deref(),
            Some(host),
            "{path}"
        );
        assert_eq!(
            edit(&plan, ":path").flatten().as_deref(),
            new_path,
            "{path}"
        );
    }
}

#[test]
fn redirects_use_the_request_and_the_listener_port() {
    let r = Route::new(
        "r",
        PathMatch::Prefix("/".into()),
        RouteAction::Redirect(Redirect {
            scheme: Some("https".into()),
            status: Some(301),
            ..Redirect::default()
        }),
    );
    let p = planner(vec![r], |c| c.port = 8080);
    let plan = p.request(req("GET", "/a?b=1", &[]), &FixedPeer::default());
    let reply = plan.reply.unwrap();
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.headers,
        vec![(
            "location".to_owned(),
            "https://shop.example.com/a?b=1".to_owned()
        )]
    );
    assert_eq!(plan.counts.to_vec(), vec![Outcome::Redirected]);
}

#[test]
fn client_ranges_read_the_source_and_refuse_with_403() {
    let mut r = to_a("r", "/");
    r.client_ranges = Some(ClientRanges {
        allow: vec!["127.0.0.0/24".into()],
        deny: vec!["127.0.0.66".into()],
    });
    let p = planner(vec![r], |_| {});
    for (source, status) in [("127.0.0.5:4000", None), ("127.0.0.66:4000", Some(403))] {
        let peer = Counting {
            source: Some(source.into()),
            ..Counting::default()
        };
        let plan = p.request(req("GET", "/", &[]), &peer);
        assert_eq!(plan.reply.map(|r| r.status), status, "{source}");
        assert_eq!(peer.asked.get(), 1);
    }
}

#[test]
fn cors_preflights_are_answered_and_allowed_origins_marked_on_the_response() {
    let mut envoy = to_a("envoy", "/e");
    envoy.cors = Some(Cors {
        allow_origins: vec![StringMatch::Exact("https://app.example".into())],
        allow_methods: vec!["GET".into(), "PUT".into()],
        allow_credentials: true,
        ..Cors::default()
    });
    let mut nginx = to_a("nginx", "/n");
    nginx.cors = Some(Cors {
        allow_methods: vec!["GET".into()],
        nginx: true,
        ..Cors::default()
    });
    let p = planner(vec![envoy, nginx], |_| {});
    let origin = ("origin", "https://app.example");
    let ask = ("access-control-request-method", "PUT");
    let plan = p.request(req("OPTIONS", "/e", &[origin, ask]), &FixedPeer::default());
    let reply = plan.reply.unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply
        .headers
        .contains(&("access-control-allow-methods".into(), "GET, PUT".into())));
    // Another origin's preflight goes on to the backend untouched.
    let other = ("origin", "https://evil.example");
    let plan = p.request(req("OPTIONS", "/e", &[other, ask]), &FixedPeer::default());
    assert!(plan.reply.is_none());
    assert!(p.response(&plan.memo, &|_| None).is_empty());
    // An allowed simple request: allow headers on the response.
    let plan = p.request(req("GET", "/e", &[origin]), &FixedPeer::default());
    assert_eq!(
        p.response(&plan.memo, &|_| None),
        vec![
            (
                "access-control-allow-origin".to_owned(),
                Some("https://app.example".to_owned())
            ),
            (
                "access-control-allow-credentials".to_owned(),
                Some("true".to_owned())
            ),
        ]
    );
    // ingress-nginx: any OPTIONS is answered 204, any origin allowed as `*`.
    let plan = p.request(req("OPTIONS", "/n", &[]), &FixedPeer::default());
    let reply = plan.reply.unwrap();
    assert_eq!(reply.status, 204);
    assert!(reply
        .headers
        .contains(&("access-control-allow-origin".into(), "*".into())));
}

#[test]
fn cors_ignoring_unmatched_preflights_answers_them_without_the_origin() {
    let mut r = to_a("envoy", "/e");
    r.cors = Some(Cors {
        allow_origins: vec![StringMatch::Exact("https://app.example".into())],
        allow_methods: vec!["GET".into()],
        allow_headers: vec!["*".into()],
        expose_headers: vec!["x-id".into()],
        max_age: Some(60),
        allow_credentials: true,
        ignore_unmatched_preflights: true,
        ..Cors::default()
    });
    let p = planner(vec![r], |_| {});
    let other = ("origin", "https://evil.example");
    let ask = ("access-control-request-method", "PUT");
    let asked = ("access-control-request-headers", "x-a");
    let plan = p.request(
        req("OPTIONS", "/e", &[other, ask, asked]),
        &FixedPeer::default(),
    );
    let reply = plan.reply.expect("answered, not forwarded");
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    // Envoy's CORS filter: the allow lists, max age and credentials, but no origin (and no
    // expose list, which only an allowed origin's response gets).
    assert_eq!(
        reply.headers,
        [
            ("access-control-allow-methods", "GET"),
            ("access-control-allow-headers", "x-a"),
            ("access-control-max-age", "60"),
            ("access-control-allow-credentials", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    // Not a preflight (no requested method, or no origin): on to the backend.
    let plan = p.request(req("OPTIONS", "/e", &[other]), &FixedPeer::default());
    assert!(plan.reply.is_none());
    let plan = p.request(req("OPTIONS", "/e", &[ask]), &FixedPeer::default());
    assert!(plan.reply.is_none());
}

#[test]
fn cors_an_origin_matcher_matching_star_allows_any_and_a_wildcard_echoes_what_was_asked() {
    // Envoy's cors_filter.cc: `isOriginAllowed` tries each matcher on "*" too; a whole-string "*"
    // answers with the request's value, even an empty one.
    let mut r = to_a("any", "/");
    r.cors = Some(Cors {
        allow_origins: vec![StringMatch::Exact("*".into())],
        allow_methods: vec!["*".into()],
        allow_headers: vec!["*".into()],
        ..Cors::default()
    });
    let p = planner(vec![r], |_| {});
    let origin = ("origin", "https://whoever.example");
    let ask = ("access-control-request-method", "DELETE");
    let plan = p.request(req("OPTIONS", "/", &[origin, ask]), &FixedPeer::default());
    let reply = plan.reply.unwrap();
    assert_eq!(reply.status, 200);
    for header in [
        ("access-control-allow-origin", "https://whoever.example"),
        ("access-control-allow-methods", "DELETE"),
        ("access-control-allow-headers", ""),
    ] {
        assert!(
            reply
                .headers
                .contains(&(header.0.to_owned(), header.1.to_owned())),
            "{header:?} in {:?}",
            reply.headers
        );
    }
    // No origin: no CORS request at all.
    let plan = p.request(req("OPTIONS", "/", &[ask]), &FixedPeer::default());
    assert!(plan.reply.is_none());
}

#[test]
fn faults_are_sampled_exactly_and_independently() {
    let mut r = to_a("r", "/");
    r.abort = Some(Abort {
        status: 418,
        percent: 25.0,
    });
    r.delay = Some(crate::config::Delay {
        millis: 40,
        percent: 50.0,
    });
    let p = planner(vec![r], |_| {});
    let plans: Vec<Plan> = (0..8)
        .map(|_| p.request(req("GET", "/", &[]), &FixedPeer::default()))
        .collect();
    let aborted = plans.iter().filter(|p| p.reply.is_some()).count();
    let delayed = plans.iter().filter(|p| p.delay_ms == Some(40)).count();
    assert_eq!((aborted, delayed), (2, 4));
    for plan in plans.iter().filter(|p| p.reply.is_some()) {
        assert_eq!(plan.reply.as_ref().unwrap().status, 418);
        assert!(plan.counts.contains(Outcome::Responded));
    }
}

#[test]
fn mirrors_copy_the_final_request_to_the_shadow_host() {
    let mut r = to_a("r", "/");
    r.request_headers.set = vec![("x-added".into(), "1".into())];
    r.mirrors = vec![
        Mirror {
            backend: "b".into(),
            percent: 100.0,
        },
        Mirror {
            backend: "empty".into(),
            percent: 0.0,
        },
    ];
    let p = planner(vec![r], |_| {});
    let plan = p.request(req("POST", "/m", &[]), &FixedPeer::default());
    assert_eq!(plan.mirrors.len(), 1);
    let copy = &plan.mirrors[0];
    assert_eq!(copy.cluster, "outbound|80||svc");
    assert!(copy
        .headers
        .contains(&(":authority".into(), "shop.example.com-shadow".into())));
    assert!(copy.headers.contains(&("x-added".into(), "1".into())));
    assert!(!copy.headers.iter().any(|(k, _)| k == ORIGINAL_DST_HEADER));
}

#[test]
fn passthrough_goes_to_the_original_destination() {
    let p = planner(vec![to_a("r", "/")], |c| c.passthrough = true);
    let mut h = req("GET", "/", &[]);
    h[2].1 = "api.external.example".into();
    let plan = p.request(h, &Counting::default());
    assert!(plan.reply.is_none());
    assert_eq!(plan.steer.as_deref(), Some("127.0.9.9:8080"));
}

#[test]
fn least_request_releases_its_slot_when_done_and_hashes_stick() {
    let p = planner(vec![to_a("r", "/")], |c| {
        c.backends.get_mut("a").unwrap().lb = LoadBalancer::LeastRequest;
        c.backends.get_mut("b").unwrap().lb = LoadBalancer::ConsistentHash {
            key: HashKey::Cookie("user".into()),
        };
        c.virtual_hosts[0].routes.push(Route::new(
            "h",
            PathMatch::Prefix("/h".into()),
            RouteAction::to("b"),
        ));
        c.virtual_hosts[0].routes.reverse();
    });
    let peer = FixedPeer::default();
    let mut first = p.request(req("GET", "/", &[]), &peer);
    let second = p.request(req("GET", "/", &[]), &peer);
    let dst = |plan: &Plan| plan.steer.clone().unwrap();
    assert_ne!(dst(&first), dst(&second), "the busy endpoint is avoided");
    p.done(&mut first.memo);
    p.done(&mut first.memo);
    let third = p.request(req("GET", "/", &[]), &peer);
    assert_eq!(dst(&third), dst(&first), "its slot was released once");
    let cookie = ("cookie", "theme=dark; user=42");
    let a = p.request(req("GET", "/h", &[cookie]), &peer);
    let b = p.request(req("GET", "/h", &[cookie]), &peer);
    assert_eq!(dst(&a), dst(&b));
}

#[test]
fn header_reads_and_parsers() {
    assert_eq!(shadow_host("example.com"), "example.com-shadow");
    assert_eq!(shadow_host("example.com:8080"), "example.com-shadow:8080");
    assert_eq!(shadow_host("[::1]:80"), "[::1]-shadow:80");
    assert_eq!(cookie("a=1; user=42", "user"), Some("42"));
    assert_eq!(cookie("username=1", "user"), None);
    assert_eq!(query_parameter("/p?x=1&id=7", "id"), Some("7"));
    assert_eq!(query_parameter("/p", "id"), None);
    assert_eq!(ip_of("127.0.0.1:80"), "127.0.0.1".parse().ok());
    assert_eq!(ip_of("::1"), "::1".parse().ok());
    let mut w = Working {
        headers: vec![
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("a".into(), "3".into()),
        ],
        edits: Vec::new(),
    };
    w.set("a", Some("x"));
    assert_eq!(
        w.headers,
        vec![("a".into(), "x".into()), ("b".into(), "2".into())] as RequestHeaders
    );
    w.set("b", None);
    assert_eq!(w.headers, vec![("a".into(), "x".into())] as RequestHeaders);
}

#[test]
fn a_cors_preflight_is_answered_before_client_ranges() {
    // ingress-nginx: the CORS `if ($request_method = 'OPTIONS') { return 204; }` runs in the
    // rewrite phase, before `allow` / `deny` (access phase).
    let mut r = to_a("r", "/");
    r.cors = Some(Cors {
        nginx: true,
        ..Cors::default()
    });
    r.client_ranges = Some(ClientRanges {
        allow: vec!["127.0.0.0/24".into()],
        deny: Vec::new(),
    });
    let p = planner(vec![r], |_| {});
    let outside = FixedPeer {
        source: Some("127.0.1.5:4000".into()),
        ..FixedPeer::default()
    };
    let origin = ("origin", "https://app.example");
    let plan = p.request(req("OPTIONS", "/", &[origin]), &outside);
    assert_eq!(plan.reply.map(|r| r.status), Some(204));
    let plan = p.request(req("GET", "/", &[origin]), &outside);
    assert_eq!(plan.reply.map(|r| r.status), Some(403));
}

#[test]
fn an_nginx_hash_key_reads_the_request_as_sent_and_always_has_a_value() {
    let p = planner(vec![], |c| {
        let eps: Vec<String> = (1..=8).map(|i| format!("127.0.0.{i}:1")).collect();
        c.backends.insert(
            "h".into(),
            Backend {
                cluster: "h".into(),
                endpoints: eps,
                lb: LoadBalancer::ConsistentHash {
                    key: HashKey::Nginx("$http_x_user$request_uri".into()),
                },
                original_destination: false,
            },
        );
        let mut route = Route::new(
            "h",
            PathMatch::Prefix("/".into()),
            RouteAction::Forward {
                backends: vec![WeightedBackend {
                    backend: Some("h".into()),
                    weight: 1,
                    filters: Default::default(),
                }],
                rewrite: Some(Rewrite {
                    host: None,
                    path: Some(PathRewrite::Full("/fixed".into())),
                }),
            },
        );
        route
            .request_headers
            .set
            .push(("x-user".into(), "set-by-route".into()));
        c.virtual_hosts[0].routes.push(route);
    });
    let peer = FixedPeer::default();
    let dst = |path: &str, extra: &[(&str, &str)]| {
        let plan = p.request(req("GET", path, extra), &peer);
        plan.steer.clone().unwrap().into_owned()
    };
    // No x-user header: an empty value, still one endpoint for every such request.
    let first = dst("/a", &[]);
    for _ in 0..5 {
        assert_eq!(dst("/a", &[]), first);
    }
    // The key is the request as sent: users and URIs spread over the endpoints, although the
    // route sets x-user and rewrites the path to one value.
    let spread: std::collections::BTreeSet<String> = (0..40)
        .map(|i| dst(&format!("/u{i}"), &[("x-user", "ann")]))
        .collect();
    assert!(spread.len() > 1, "{spread:?}");
}

#[test]
fn counts_are_a_set_read_in_metric_id_order() {
    for (i, o) in Outcome::ALL.iter().enumerate() {
        assert_eq!(*o as usize, i);
    }
    assert_eq!(Outcome::ALL.len(), Outcome::METRIC_NAMES.len());
    let mut c = Counts::default();
    assert!(c.to_vec().is_empty());
    c.push(Outcome::Delayed);
    c.push(Outcome::Forwarded);
    c.push(Outcome::Delayed);
    assert_eq!(c.to_vec(), [Outcome::Forwarded, Outcome::Delayed]);
    assert!(c.contains(Outcome::Forwarded) && !c.contains(Outcome::NoRoute));
}
