use super::*;
use crate::config::{
    Backend, HeaderMatch, QueryMatch, Route, StringMatch, VirtualHost, WildcardMode,
};

fn backend(name: &str) -> Backend {
    Backend {
        cluster: format!("outbound|80||{name}"),
        endpoints: vec!["127.0.0.1:1".into()],
        lb: Default::default(),
        original_destination: false,
    }
}

fn vhost(hosts: &[&str], routes: &[(PathMatch, &str)], default: Option<&str>) -> VirtualHost {
    VirtualHost {
        name: format!("vh {hosts:?}"),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        wildcard: WildcardMode::SingleLabel,
        order: RouteOrder::LongestPath,
        routes: routes
            .iter()
            .enumerate()
            .map(|(i, (path, b))| Route::new(format!("r{i}"), path.clone(), RouteAction::to(*b)))
            .collect(),
        default_backend: default.map(str::to_owned),
    }
}

fn config() -> RoutingConfig {
    let mut c = RoutingConfig::empty("t");
    for b in ["a", "b", "c", "d", "e", "dflt", "vdflt"] {
        c.backends.insert(b.into(), backend(b));
    }
    c.virtual_hosts = vec![
        vhost(
            &["foo.bar.com"],
            &[
                (PathMatch::Prefix("/".into()), "a"),
                (PathMatch::Exact("/x".into()), "b"),
            ],
            None,
        ),
        vhost(
            &["*.bar.com"],
            &[(PathMatch::Prefix("/w".into()), "c")],
            Some("vdflt"),
        ),
        vhost(&["*"], &[(PathMatch::Prefix("/any".into()), "d")], None),
        // Shadowed by the first virtual host for foo.bar.com.
        vhost(
            &["foo.bar.com", "e.test"],
            &[(PathMatch::Prefix("/".into()), "e")],
            None,
        ),
    ];
    c.default_backend = Some("dflt".into());
    c
}

fn decide(router: &Router, host: &str, path: &str) -> String {
    let d = router.decide_path(host, path);
    match router.single_backend(&d) {
        Some(b) => router.backend(b).key.clone(),
        None if d == Decision::NoRoute => "404".into(),
        // A redirect, a direct response or a split is neither: the test names what it was.
        None => format!("not one backend: {}", router.describe(&d)),
    }
}

#[test]
fn decisions() {
    let router = Router::try_from(config()).unwrap();
    for (host, path, want) in [
        ("foo.bar.com", "/", "a"),
        ("foo.bar.com", "/x", "b"),
        ("foo.bar.com", "/x?q=1", "b"),
        ("foo.bar.com", "/x/", "a"),
        ("FOO.bar.com:8080", "/x", "b"),
        ("foo.bar.com.", "/x", "b"),
        ("baz.bar.com", "/w/1", "c"),
        ("baz.bar.com", "/v", "vdflt"),
        ("a.baz.bar.com", "/any/1", "d"),
        ("bar.com", "/any", "d"),
        ("bar.com", "/none", "dflt"),
        ("e.test", "/", "e"),
        ("", "/any", "d"),
    ] {
        assert_eq!(decide(&router, host, path), want, "{host}{path}");
    }
}

#[test]
fn no_default_is_404() {
    let mut c = config();
    c.default_backend = None;
    let router = Router::try_from(c).unwrap();
    assert_eq!(decide(&router, "bar.com", "/none"), "404");
    assert_eq!(decide(&router, "baz.bar.com", "/v"), "vdflt");
}

#[test]
fn host_defaults_only_keeps_hosts_off_the_global_default() {
    let mut c = config();
    c.host_defaults_only = true;
    let router = Router::try_from(c).unwrap();
    // A host's unmatched path: its own default, else 404 (the "*" host included).
    assert_eq!(decide(&router, "baz.bar.com", "/v"), "vdflt");
    assert_eq!(decide(&router, "bar.com", "/none"), "404");
    // The global default still takes a host no virtual host takes.
    c = config();
    c.host_defaults_only = true;
    c.virtual_hosts.retain(|v| v.hosts != ["*"]);
    let router = Router::try_from(c).unwrap();
    assert_eq!(decide(&router, "bar.com", "/none"), "dflt");
}

#[test]
fn describe_names_the_route() {
    let router = Router::try_from(config()).unwrap();
    let d = router.decide_path("foo.bar.com", "/x");
    assert_eq!(
        router.describe(&d),
        "r1 (exact path, host vh [\"foo.bar.com\"])"
    );
    let d = router.decide_path("q.bar.com", "/");
    assert_eq!(router.describe(&d), "vh [\"*.bar.com\"]: default backend");
}

#[test]
fn bad_configs_name_the_field() {
    type Mutation = Box<dyn Fn(&mut RoutingConfig)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|c| c.api_version = "v0".into()), "apiVersion"),
        (
            Box::new(|c| c.virtual_hosts[1].routes[0].action = RouteAction::to("zz")),
            "virtualHosts[1].routes[0].action.backends[0].backend",
        ),
        (
            Box::new(|c| c.virtual_hosts[0].routes[1].path = PathMatch::Exact("x".into())),
            "virtualHosts[0].routes[1].path",
        ),
        (
            Box::new(|c| c.virtual_hosts[2].hosts[0] = "a b".into()),
            "virtualHosts[2].hosts[0]",
        ),
        (
            Box::new(|c| c.virtual_hosts[2].hosts[0] = "*.*.b".into()),
            "virtualHosts[2].hosts[0]",
        ),
        (
            Box::new(|c| c.default_backend = Some("nope".into())),
            "defaultBackend",
        ),
        (
            Box::new(|c| c.virtual_hosts[1].default_backend = Some("nope".into())),
            "virtualHosts[1].defaultBackend",
        ),
        (
            Box::new(|c| {
                c.backends
                    .get_mut("a")
                    .unwrap()
                    .endpoints
                    .push("h:1".into())
            }),
            "backends[\"a\"].endpoints[1]",
        ),
    ];
    for (mutate, field) in cases {
        let mut c = config();
        mutate(&mut c);
        let err = Router::try_from(c).unwrap_err();
        assert!(err.to_string().contains(field), "{err} should name {field}");
    }
}

#[test]
fn json_errors_name_the_path() {
    let mut v: serde_json::Value = serde_json::from_str(&config().to_json()).unwrap();
    v["virtualHosts"][0]["routes"][1]["path"]["type"] = "Glob".into();
    let err = Router::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("virtualHosts[0].routes[1].path"),
        "{err}"
    );
    v["virtualHosts"][0]["routes"][1]["path"]["type"] = "exact".into();
    v["virtualHosts"][0]["extra"] = true.into();
    let err = Router::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
    for junk in [&b""[..], b"{", b"[]", b"null", b"\xff\xfe"] {
        assert!(Router::from_json(junk).is_err());
    }
}

fn listed(routes: Vec<Route>) -> Router {
    let mut c = RoutingConfig::empty("t");
    for b in ["a", "b", "c"] {
        c.backends.insert(b.into(), backend(b));
    }
    c.virtual_hosts = vec![VirtualHost {
        name: "gw".into(),
        hosts: vec!["*.example.com".into()],
        wildcard: WildcardMode::MultiLabel,
        order: RouteOrder::Listed,
        routes,
        default_backend: None,
    }];
    Router::try_from(c).unwrap()
}

#[test]
fn routes_by_client_address() {
    let mut from_a = route("from-a", PathMatch::Prefix("/".into()), "a");
    from_a.sources = Some(vec!["127.0.0.5".into(), "::1".into()]);
    let mut nobody = route("nobody", PathMatch::Prefix("/".into()), "b");
    nobody.sources = Some(vec![]);
    let router = listed(vec![
        nobody,
        from_a,
        route("rest", PathMatch::Prefix("/".into()), "c"),
    ]);
    assert!(router.needs_source());
    let go = |source: Option<&str>| {
        let d = router.decide(&Request {
            authority: "x.example.com",
            path: "/",
            method: "GET",
            headers: &NoHeaders,
            source: source.map(|s| s.parse().unwrap()),
        });
        router
            .backend(router.single_backend(&d).unwrap())
            .key
            .clone()
    };
    assert_eq!(go(Some("127.0.0.5")), "a");
    assert_eq!(go(Some("::1")), "a");
    assert_eq!(go(Some("127.0.0.6")), "c");
    assert_eq!(go(None), "c");
    assert!(!listed(vec![route("r", PathMatch::Prefix("/".into()), "a")]).needs_source());

    let mut bad = route("bad", PathMatch::Prefix("/".into()), "a");
    bad.sources = Some(vec!["pod-a".into()]);
    let mut c = RoutingConfig::empty("t");
    c.backends.insert("a".into(), backend("a"));
    c.virtual_hosts = vec![VirtualHost {
        name: "gw".into(),
        hosts: vec!["*".into()],
        wildcard: WildcardMode::MultiLabel,
        order: RouteOrder::Listed,
        routes: vec![bad],
        default_backend: None,
    }];
    let err = Router::try_from(c).unwrap_err().to_string();
    assert!(
        err.contains("sources[0]") && err.contains("not an IP address"),
        "{err}"
    );
}

fn route(name: &str, path: PathMatch, backend: &str) -> Route {
    Route::new(name, path, RouteAction::to(backend))
}

#[test]
fn listed_routes_match_every_condition_first_wins() {
    let mut with_header = route("h", PathMatch::Prefix("/".into()), "a");
    with_header.headers = vec![HeaderMatch {
        name: "X-Version".into(),
        value: StringMatch::Regex("v[12]".into()),
        invert: false,
    }];
    let mut with_query = route("q", PathMatch::Prefix("/".into()), "b");
    with_query.query = vec![QueryMatch {
        name: "animal".into(),
        value: StringMatch::Exact("whale".into()),
    }];
    with_query.method = Some("POST".into());
    let regex = route("r", PathMatch::Regex("/r/[0-9]+".into()), "c");
    let router = listed(vec![with_header, with_query, regex]);
    let go = |path: &str, method: &str, headers: &Vec<(String, String)>| {
        let d = router.decide(&Request {
            authority: "a.b.example.com",
            path,
            method,
            headers,
            source: None,
        });
        router
            .single_backend(&d)
            .map(|b| router.backend(b).key.clone())
    };
    let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    assert_eq!(go("/x", "GET", &h("x-version", "v2")).as_deref(), Some("a"));
    assert_eq!(go("/x", "GET", &h("x-version", "v3")), None);
    assert_eq!(
        go("/x", "GET", &h("x-version", "v22")),
        None,
        "regexes are anchored"
    );
    assert_eq!(go("/x?animal=whale", "POST", &vec![]).as_deref(), Some("b"));
    assert_eq!(
        go("/x?a=1&animal=whale", "POST", &vec![]).as_deref(),
        Some("b")
    );
    assert_eq!(go("/x?animal=whale", "GET", &vec![]), None);
    assert_eq!(go("/x?animal=whales", "POST", &vec![]), None);
    assert_eq!(go("/r/42", "GET", &vec![]).as_deref(), Some("c"));
    assert_eq!(go("/r/42/x", "GET", &vec![]), None);
    assert_eq!(
        router.decide_path("example.com", "/r/1"),
        Decision::NoRoute,
        "a wildcard never takes the apex"
    );
}

#[test]
fn bad_regexes_and_mixed_orders_are_refused() {
    let mut c = config();
    c.virtual_hosts[0].routes[0].path = PathMatch::Regex("(".into());
    let err = Router::try_from(c).unwrap_err().to_string();
    assert!(
        err.contains("virtualHosts[0].routes[0].path") && err.contains("does not compile"),
        "{err}"
    );
    let mut c = config();
    c.virtual_hosts[0].routes[0].method = Some("GET".into());
    let err = Router::try_from(c).unwrap_err().to_string();
    assert!(err.contains("matches on the path only"), "{err}");
}

#[test]
fn prefix_replacement_follows_the_gateway_api_table() {
    for (path, prefix, repl, want) in [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
        ("/foo/bar?x=1", "/foo", "/y", "/y/bar?x=1"),
        ("/anything", "", "/pre", "/pre/anything"),
    ] {
        assert_eq!(
            replace_prefix(path, prefix, repl),
            want,
            "{path} {prefix} {repl}"
        );
    }
}
