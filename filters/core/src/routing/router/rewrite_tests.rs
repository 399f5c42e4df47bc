use super::*;
use crate::config::{Backend, Route, VirtualHost, WildcardMode};

fn one_route(path: PathMatch, action: RouteAction) -> Router {
    let mut c = RoutingConfig::empty("t");
    c.backends.insert(
        "a".into(),
        Backend {
            cluster: "c".into(),
            endpoints: vec![],
            lb: Default::default(),
            original_destination: false,
        },
    );
    c.virtual_hosts = vec![VirtualHost {
        name: "v".into(),
        hosts: vec!["*".into()],
        wildcard: WildcardMode::SingleLabel,
        order: RouteOrder::Listed,
        routes: vec![Route::new("r", path, action)],
        default_backend: None,
    }];
    Router::try_from(c).unwrap()
}

#[test]
fn regex_rewrites_expand_captures_and_keep_the_query() {
    let rw = PathRewrite::Regex {
        regex: "(?i)^/something(/|$)(.*)".into(),
        substitution: "/$2".into(),
        global: false,
    };
    let router = one_route(
        PathMatch::Regex("(?i)/something(/|$)(.*)".into()),
        RouteAction::Forward {
            backends: vec![],
            rewrite: Some(Rewrite {
                host: None,
                path: Some(rw.clone()),
            }),
        },
    );
    let r = router.route(0, 0);
    for (input, want) in [
        ("/something", "/"),
        ("/something/", "/"),
        ("/something/new", "/new"),
        ("/SOMETHING/new?x=1", "/new?x=1"),
        ("/other", "/other"),
    ] {
        assert_eq!(r.rewrite_path(&rw, input), want, "{input}");
    }
}

/// Envoy's `regex_rewrite` (`RegexMatchAndSubstitute`): every match substituted, the rest of the
/// path and the query kept; the examples of `RouteAction.regex_rewrite` in
/// envoy/config/route/v3/route_components.proto.
#[test]
fn global_regex_rewrites_substitute_every_match() {
    for (regex, substitution, input, want) in [
        (
            "^/service/([^/]+)(/.*)$",
            "${2}/instance/${1}",
            "/service/foo/v1/api?x=1",
            "/v1/api/instance/foo?x=1",
        ),
        ("one", "two", "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz"),
        ("one", "two", "/xxx/one?q=one", "/xxx/two?q=one"),
        (
            "^(.*?)one(.*)$",
            "${1}two${2}",
            "/xxx/one/yyy/one/zzz",
            "/xxx/two/yyy/one/zzz",
        ),
        ("(?i)/xxx/", "/yyy/", "/aaa/XxX/bbb", "/aaa/yyy/bbb"),
        (
            "^/api/v1",
            "/v2",
            "/api/v1/users/7?page=2",
            "/v2/users/7?page=2",
        ),
        ("^/api/v1", "/v2", "/other", "/other"),
    ] {
        let rw = PathRewrite::Regex {
            regex: regex.into(),
            substitution: substitution.into(),
            global: true,
        };
        let router = one_route(
            PathMatch::Prefix("/".into()),
            RouteAction::Forward {
                backends: vec![],
                rewrite: Some(Rewrite {
                    host: None,
                    path: Some(rw.clone()),
                }),
            },
        );
        let r = router.route(0, 0);
        assert_eq!(r.rewrite_path(&rw, input), want, "{regex} on {input}");
    }
}

/// `global` is optional in the configuration: older configurations parse, and a whole-path
/// rewrite serializes as before.
#[test]
fn the_global_flag_is_optional() {
    let old: PathRewrite =
        serde_json::from_str(r#"{"type":"regex","value":{"regex":"^/a","substitution":"/b"}}"#)
            .unwrap();
    assert_eq!(
        old,
        PathRewrite::Regex {
            regex: "^/a".into(),
            substitution: "/b".into(),
            global: false,
        }
    );
    assert_eq!(
        serde_json::to_string(&old).unwrap(),
        r#"{"type":"regex","value":{"regex":"^/a","substitution":"/b"}}"#
    );
    let global: PathRewrite = serde_json::from_str(
        r#"{"type":"regex","value":{"regex":"one","substitution":"two","global":true}}"#,
    )
    .unwrap();
    assert!(matches!(global, PathRewrite::Regex { global: true, .. }));
}

#[test]
fn redirect_locations() {
    let router = one_route(
        PathMatch::Prefix("/old".into()),
        RouteAction::Respond {
            status: 200,
            body: String::new(),
        },
    );
    let r = router.route(0, 0);
    let loc = |red: Redirect, scheme: &str, port: u16| {
        r.redirect_location(&red, scheme, "Shop.Example.com:8080", "/old/x?q=1", port)
    };
    assert_eq!(
        loc(Redirect::default(), "http", 80),
        "http://shop.example.com/old/x?q=1"
    );
    assert_eq!(
        loc(Redirect::default(), "http", 8080),
        "http://shop.example.com:8080/old/x?q=1"
    );
    assert_eq!(
        loc(
            Redirect {
                scheme: Some("https".into()),
                ..Redirect::default()
            },
            "http",
            8080
        ),
        "https://shop.example.com/old/x?q=1"
    );
    assert_eq!(
        loc(
            Redirect {
                port: Some(8443),
                scheme: Some("https".into()),
                ..Redirect::default()
            },
            "http",
            80
        ),
        "https://shop.example.com:8443/old/x?q=1"
    );
    assert_eq!(
        loc(
            Redirect {
                host: Some("new.test".into()),
                path: Some(PathRewrite::Prefix("/new".into())),
                ..Redirect::default()
            },
            "http",
            80
        ),
        "http://new.test/new/x?q=1"
    );
    assert_eq!(
        loc(
            Redirect {
                path: Some(PathRewrite::Full("/f".into())),
                ..Redirect::default()
            },
            "http",
            80
        ),
        "http://shop.example.com/f?q=1"
    );
    assert_eq!(
        loc(
            Redirect {
                url: Some("https://x.test/y".into()),
                ..Redirect::default()
            },
            "http",
            80
        ),
        "https://x.test/y"
    );
    // ingress-nginx's from-to-www redirect: the port always, one trailing `/` of path and
    // query dropped.
    let www = Redirect {
        host: Some("www.shop.test".into()),
        strip_trailing_slash: true,
        explicit_port: true,
        ..Redirect::default()
    };
    assert_eq!(
        r.redirect_location(&www, "http", "shop.test", "/a/", 80),
        "http://www.shop.test:80/a"
    );
    assert_eq!(
        r.redirect_location(&www, "http", "shop.test", "/", 80),
        "http://www.shop.test:80"
    );
    assert_eq!(
        r.redirect_location(&www, "http", "shop.test", "/a/?b=/", 80),
        "http://www.shop.test:80/a/?b="
    );
}
