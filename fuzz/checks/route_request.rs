// The routing planner on arbitrary requests, against a fixed configuration with every kind of
// host and path match (exact, single- and multi-label wildcards, a catch-all; Ingress prefixes
// and exact paths; listed routes with regex paths, header and query matches; CORS; a redirect).
//
// The input is NUL-separated: method, authority, path, then header name / value pairs. Beyond
// "never panics", a plan either answers or steers, never both, and steers only to an endpoint
// of the configuration.
//
// Included by the fuzz target and by `filters/core/tests/fuzz_seeds.rs`, which replays the
// committed seeds in `cargo test`.
use portico_core::config::*;
use portico_core::routing::plan::{FixedPeer, Planner};
use portico_core::Router;

fn config() -> RoutingConfig {
    let mut c = RoutingConfig::empty("fuzz");
    for (name, eps) in [("a", vec!["127.0.0.1:1", "127.0.0.2:1"]), ("b", vec!["127.0.0.3:1"])] {
        c.backends.insert(
            name.into(),
            Backend {
                cluster: format!("outbound|80||{name}"),
                endpoints: eps.into_iter().map(str::to_owned).collect(),
                lb: LoadBalancer::RoundRobin,
                original_destination: false,
            },
        );
    }
    let to = |name: &str, path: PathMatch, backend: &str| Route::new(name, path, RouteAction::to(backend));
    c.virtual_hosts.push(VirtualHost {
        name: "ingress".into(),
        hosts: vec!["shop.example.com".into(), "*.shop.example.com".into()],
        wildcard: WildcardMode::SingleLabel,
        order: RouteOrder::LongestPath,
        routes: vec![
            to("p", PathMatch::Prefix("/cart".into()), "a"),
            to("e", PathMatch::Exact("/admin".into()), "b"),
            to("root", PathMatch::Prefix("/".into()), "a"),
        ],
        default_backend: None,
    });
    let mut listed = vec![
        to("re", PathMatch::Regex("/api/v[0-9]+/items/.*".into()), "a"),
        Route {
            headers: vec![HeaderMatch {
                name: "x-tenant".into(),
                value: StringMatch::Prefix("t".into()),
                invert: false,
            }],
            ..to("h", PathMatch::Prefix("/h".into()), "b")
        },
        Route {
            query: vec![QueryMatch {
                name: "q".into(),
                value: StringMatch::Exact("1".into()),
            }],
            ..to("q", PathMatch::Prefix("/q".into()), "a")
        },
    ];
    listed[0].cors = Some(Cors {
        allow_origins: vec![StringMatch::Regex("https://.*\\.example".into())],
        allow_methods: vec!["GET".into()],
        ignore_unmatched_preflights: true,
        ..Cors::default()
    });
    listed.push(Route::new(
        "redirect",
        PathMatch::Prefix("/old".into()),
        RouteAction::Redirect(Redirect {
            scheme: Some("https".into()),
            ..Redirect::default()
        }),
    ));
    c.virtual_hosts.push(VirtualHost {
        name: "listed".into(),
        hosts: vec!["*.api.example.com".into(), "*".into()],
        wildcard: WildcardMode::MultiLabel,
        order: RouteOrder::Listed,
        routes: listed,
        default_backend: None,
    });
    c
}

thread_local! {
    static PLANNER: Planner = Planner::new(Router::try_from(config()).expect("the fuzz config compiles"), 1);
}

/// Runs one input; panics on a broken promise.
pub fn check(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    let method = parts.next().unwrap_or_default();
    let authority = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let mut headers = vec![
        (":method".to_owned(), method),
        (":authority".to_owned(), authority),
        (":path".to_owned(), path),
        (":scheme".to_owned(), "http".to_owned()),
    ];
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        headers.push((k.to_ascii_lowercase(), v));
    }
    let peer = FixedPeer {
        source: Some("127.0.9.9:4000".into()),
        destination: Some("127.0.0.1:80".into()),
        ..FixedPeer::default()
    };
    PLANNER.with(|p| {
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let plan = p.request(headers, &peer);
        assert!(
            plan.reply.is_none() || plan.steer.is_none(),
            "a plan both answers and steers"
        );
        if let Some(steer) = &plan.steer {
            assert!(
                ["127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1", CLUSTER_STEER].contains(&steer.as_ref()),
                "steered outside the configuration: {steer}"
            );
        }
    });
}
