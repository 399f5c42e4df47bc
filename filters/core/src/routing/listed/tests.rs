use super::*;
use crate::config::{
    Backend, HeaderMatch, PathMatch, QueryMatch, Route, RouteAction, RouteOrder, RoutingConfig,
    StringMatch, VirtualHost, WildcardMode,
};
use crate::{Decision, Request, Router};

#[test]
fn regex_keys_and_tails() {
    let key = |re: &str| {
        let (k, t) = regex_key(&format!("^(?:{re})$"));
        (String::from_utf8(k).unwrap(), t)
    };
    let k = |s: &str, t| (s.to_owned(), t);
    assert_eq!(key("/api/.*"), k("/api/", Tail::AnyButLf));
    assert_eq!(key("/api/.*?"), k("/api/", Tail::AnyButLf));
    assert_eq!(key("/api/(?s:.*)"), k("/api/", Tail::Any));
    assert_eq!(key(r"/api\.v1/x\*.*"), k("/api.v1/x*", Tail::AnyButLf));
    assert_eq!(key("/api"), k("/api", Tail::Empty));
    assert_eq!(key(""), k("", Tail::Empty));
    assert_eq!(key(".*"), k("", Tail::AnyButLf));
    assert_eq!(key("/r/[0-9]+"), k("/r/", Tail::Regex));
    assert_eq!(key("/a?b"), k("/", Tail::Regex));
    assert_eq!(key("/ab+"), k("/ab", Tail::Regex));
    assert_eq!(key("/ab{0,2}"), k("/a", Tail::Regex));
    assert_eq!(key("/ab{2}"), k("/ab", Tail::Regex));
    assert_eq!(key("/a|/b"), k("", Tail::Regex));
    assert_eq!(key("(/a|/b)/x"), k("", Tail::Regex));
    assert_eq!(key("(?i)/api/.*"), k("", Tail::Regex));
    assert_eq!(key(r"/\x{E9}\[.*"), k("/é[", Tail::AnyButLf));
    assert_eq!(key("/a[]x].*"), k("/a", Tail::Regex));
    assert_eq!(key("/é/.*"), k("/é/", Tail::AnyButLf));
    assert_eq!(key(r"/a\b.*"), k("/a", Tail::Regex));
    assert_eq!(key("/a(?-s:.*)"), k("/a", Tail::AnyButLf));
    assert_eq!(key("/a.+"), k("/a", Tail::Regex));
    // The router never compiles unanchored regexes; anything unexpected is a plain regex.
    assert_eq!(regex_key("/api/.*"), (Vec::new(), Tail::Regex));
    assert_eq!(regex_key("("), (Vec::new(), Tail::Regex));
    // The `(?:` the router opens must close at the end: a pattern that closes it early and
    // alternates is not one of the shapes above.
    assert_eq!(regex_key("^(?:/a)|(?:/b)$"), (Vec::new(), Tail::Regex));
    assert_eq!(regex_key("^(?:/a)(/b)$"), (Vec::new(), Tail::Regex));
    assert_eq!(regex_key("^(?:/a[)$"), (Vec::new(), Tail::Regex));
}

/// The shortcut for plain shapes gives what the parser gives, and declines everything else.
#[test]
fn plain_regex_keys_agree_with_the_parser() {
    for re in [
        "/api/.*",
        "/api/.*?",
        r"/a\.b\*c\+\?\(\)\|\[\]\{\}\^\$\#\&\-\~\\\\.*",
        "/é/ü",
        "",
        ".*",
        "/a b#c&d-e~f",
    ] {
        let p = format!("^(?:{re})$");
        let plain = plain_regex_key(&p).unwrap_or_else(|| panic!("{re}"));
        assert_eq!(plain, regex_key_parsed(&p), "{re}");
    }
    for re in [
        "/a*",
        "/ab+",
        "/a.+",
        "/a.*.*",
        r"/a\d",
        r"/a\/",
        "(?i)/a",
        "/a|/b",
        "a)|(b",
        "/a{2}",
        "/a$",
        "[a]",
        r"/a\.*",
        "/a(?s:.*)",
    ] {
        assert_eq!(plain_regex_key(&format!("^(?:{re})$")), None, "{re}");
    }
    assert_eq!(plain_regex_key("/api/.*"), None);
}

#[test]
fn chains_link_each_key_to_its_longest_prefix() {
    let index = ListedIndex::new([
        PathSpec::Prefix("/a/b"),
        PathSpec::Prefix(""),
        PathSpec::Exact("/a"),
        PathSpec::Prefix("/b"),
        PathSpec::Regex("^(?:/a/.*)$"),
        PathSpec::Prefix("/a"),
    ]);
    let keys: Vec<(&[u8], Option<&[u8]>)> = (0..index.entries.len() as u32)
        .map(|i| {
            let parent = index.entries[i as usize].parent;
            (index.key(i), (parent != NONE).then(|| index.key(parent)))
        })
        .collect();
    let s = |v: &'static str| v.as_bytes();
    assert_eq!(
        keys,
        [
            (s(""), None),
            (s("/a"), Some(s(""))),
            (s("/a/"), Some(s("/a"))),
            (s("/a/b"), Some(s("/a/"))),
            (s("/b"), Some(s(""))),
        ]
    );
    // Candidates, lowest first (everything holds).
    let all = |path: &str| {
        let mut seen = Vec::new();
        index.first(path, |i, _| {
            seen.push(i);
            false
        });
        seen.sort_unstable();
        seen
    };
    assert_eq!(all("/a/b/c"), [0, 1, 4, 5]);
    assert_eq!(all("/a"), [1, 2, 5]);
    assert_eq!(all("/a/"), [1, 4, 5]);
    assert_eq!(all("/ab"), [1]);
    assert_eq!(all("/b/a"), [1, 3]);
    assert_eq!(all(""), [1]);
    assert_eq!(all("*"), Vec::<usize>::new());
    assert_eq!(ListedIndex::new([]).first("/", |_, _| true), None);
}

/// The index of a 10 000-route host stays small next to the routes themselves (the filter
/// runs in every Envoy worker).
#[test]
fn memory_per_route() {
    let paths: Vec<(String, u8)> = (0..10_000)
        .map(|i| {
            let s = i / 10;
            match i % 4 {
                0 => (format!("/svc{s}/health{i}"), 0),
                1 => (format!("/svc{s}/api/v{i}"), 1),
                2 => (format!("^(?:/svc{s}/api/v{i}/.*)$"), 2),
                _ => (format!("^(?:/svc{s}/users/[0-9]+/{i})$"), 2),
            }
        })
        .collect();
    let index = ListedIndex::new(paths.iter().map(|(p, kind)| match kind {
        0 => PathSpec::Exact(p),
        1 => PathSpec::Prefix(p),
        _ => PathSpec::Regex(p),
    }));
    let per_route = index.heap_bytes() / paths.len();
    assert!(per_route <= 64, "{per_route} bytes per route");
    assert_eq!(std::mem::size_of::<Entry>(), 32);
}

fn router(routes: Vec<Route>) -> Router {
    let mut c = RoutingConfig::empty("t");
    c.backends.insert(
        "b".into(),
        Backend {
            cluster: "b".into(),
            endpoints: vec![],
            lb: Default::default(),
            original_destination: false,
        },
    );
    c.virtual_hosts = vec![VirtualHost {
        name: "v".into(),
        hosts: vec!["*".into()],
        wildcard: WildcardMode::MultiLabel,
        order: RouteOrder::Listed,
        routes,
        default_backend: None,
    }];
    Router::try_from(c).unwrap()
}

fn route(name: &str, path: PathMatch) -> Route {
    Route::new(name, path, RouteAction::to("b"))
}

fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.into())
}

fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

fn regex(p: &str) -> PathMatch {
    PathMatch::Regex(p.into())
}

/// The route the index picks (asserting the scan picks the same one), by name.
fn pick(router: &Router, path: &str, method: &str, headers: &[(&str, &str)]) -> Option<String> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let req = Request {
        authority: "h",
        path,
        method,
        headers: &headers,
        source: None,
    };
    let d = router.decide(&req);
    assert_eq!(
        d,
        router.decide_linear(&req),
        "{path:?} {method} {headers:?}"
    );
    let (explained, trace) = router.explain(&req);
    assert_eq!(explained, d);
    match d {
        Decision::Route { vhost, route } => {
            let name = router.route(vhost, route).name.clone();
            assert!(
                trace
                    .iter()
                    .any(|l| *l == format!("route {route} {name}: matches")),
                "{trace:?}"
            );
            Some(name)
        }
        _ => None,
    }
}

#[test]
fn the_first_listed_full_match_wins_on_one_path() {
    let r = router(vec![
        Route {
            headers: vec![HeaderMatch {
                name: "x".into(),
                value: StringMatch::Exact("1".into()),
                invert: false,
            }],
            ..route("hdr", exact("/a"))
        },
        Route {
            method: Some("POST".into()),
            ..route("post", exact("/a"))
        },
        route("plain", exact("/a")),
        route("later", exact("/a")),
    ]);
    let go = |m, h| pick(&r, "/a", m, h);
    assert_eq!(go("GET", &[("x", "1")]).as_deref(), Some("hdr"));
    assert_eq!(go("POST", &[("x", "1")]).as_deref(), Some("hdr"));
    assert_eq!(go("POST", &[("x", "2")]).as_deref(), Some("post"));
    assert_eq!(go("GET", &[]).as_deref(), Some("plain"));
    assert_eq!(pick(&r, "/a/", "GET", &[]), None);
}

#[test]
fn a_later_longer_prefix_does_not_beat_an_earlier_shorter_one() {
    let r = router(vec![
        route("root", prefix("/")),
        route("a", prefix("/a")),
        route("ab", prefix("/a/b")),
    ]);
    assert_eq!(pick(&r, "/a/b/c", "GET", &[]).as_deref(), Some("root"));
    let r = router(vec![
        route("ab", prefix("/a/b")),
        route("a", prefix("/a")),
        route("root", prefix("/")),
    ]);
    let go = |p| pick(&r, p, "GET", &[]);
    assert_eq!(go("/a/b/c").as_deref(), Some("ab"));
    assert_eq!(go("/a/b").as_deref(), Some("ab"));
    assert_eq!(go("/a/bc").as_deref(), Some("a"), "segment-wise");
    assert_eq!(go("/a").as_deref(), Some("a"));
    assert_eq!(go("/ab").as_deref(), Some("root"));
    assert_eq!(go("/").as_deref(), Some("root"));
    let r = router(vec![route("a", prefix("/a")), route("ab", prefix("/a/b"))]);
    assert_eq!(pick(&r, "/a/b/c", "GET", &[]).as_deref(), Some("a"));
}

#[test]
fn regexes_keep_their_place_in_the_list() {
    let r = router(vec![
        route("num", regex("/a/[0-9]+")),
        route("one", exact("/a/1")),
        route("x", exact("/a/x")),
        route("istio-prefix", regex("/a/.*")),
        route("nocase", regex("(?i)/B")),
        route("b", exact("/b")),
    ]);
    let go = |p| pick(&r, p, "GET", &[]);
    assert_eq!(go("/a/1").as_deref(), Some("num"));
    assert_eq!(go("/a/x").as_deref(), Some("x"));
    assert_eq!(go("/a/y").as_deref(), Some("istio-prefix"));
    assert_eq!(go("/a/y\nz"), None, "`.` is not a newline");
    assert_eq!(go("/a"), None);
    assert_eq!(go("/b").as_deref(), Some("nocase"));
    assert_eq!(go("/B").as_deref(), Some("nocase"));
}

#[test]
fn trailing_slashes_and_the_empty_prefix() {
    let r = router(vec![
        route("exact-slash", exact("/foo/")),
        route("foo", prefix("/foo/")),
        route("root", prefix("/")),
    ]);
    let go = |p| pick(&r, p, "GET", &[]);
    assert_eq!(go("/foo/").as_deref(), Some("exact-slash"));
    assert_eq!(go("/foo").as_deref(), Some("foo"));
    assert_eq!(go("/foo/bar").as_deref(), Some("foo"));
    assert_eq!(go("/foo//").as_deref(), Some("foo"));
    assert_eq!(go("/foobar").as_deref(), Some("root"));
    assert_eq!(go("/FOO").as_deref(), Some("root"), "case-sensitive");
    assert_eq!(go("").as_deref(), Some("root"));
    assert_eq!(go("?q=1").as_deref(), Some("root"));
    assert_eq!(go("*"), None);
    let r = router(vec![
        route("slashes", prefix("//")),
        route("x", exact("/x")),
    ]);
    assert_eq!(pick(&r, "/x", "GET", &[]).as_deref(), Some("slashes"));
}

#[test]
fn query_only_differences() {
    let q = |v: &str| {
        vec![QueryMatch {
            name: "v".into(),
            value: StringMatch::Exact(v.into()),
        }]
    };
    let r = router(vec![
        Route {
            query: q("1"),
            ..route("one", exact("/q"))
        },
        Route {
            query: q("2"),
            ..route("two", prefix("/q"))
        },
        route("rest", exact("/q")),
    ]);
    let go = |p| pick(&r, p, "GET", &[]);
    assert_eq!(go("/q?v=1").as_deref(), Some("one"));
    assert_eq!(go("/q?v=2").as_deref(), Some("two"));
    assert_eq!(go("/q/x?v=2").as_deref(), Some("two"));
    assert_eq!(go("/q?v=3").as_deref(), Some("rest"));
    assert_eq!(go("/q/x?v=1"), None);
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// `/seg/seg…` from a small alphabet, so paths collide.
fn random_path(rng: &mut Rng) -> String {
    let mut p = String::new();
    for _ in 0..rng.below(4) {
        p.push('/');
        p.push_str(rng.pick(&["a", "b", "ab", "a.b", "A", "", "é", "segment1", "segment2"]));
    }
    if p.is_empty() || rng.chance(15) {
        p.push('/');
    }
    p
}

fn random_route(rng: &mut Rng, i: usize) -> Route {
    let p = random_path(rng);
    let e = regex::escape(&p);
    let path = match rng.below(10) {
        0..=2 => exact(&p),
        3..=6 => prefix(&p),
        _ => regex(&match rng.below(11) {
            0 | 1 => format!("{e}.*"),
            2 => e.clone(),
            3 => format!("{e}(?s:.*)"),
            4 => format!("(?i){e}.*"),
            5 => format!("{e}/[ab]+"),
            6 => rng.pick(&["/.*", ".*", "[ab]/.*", "/a|/b"]).to_owned(),
            7 => format!("{e}(/.*)?"),
            8 => format!("({e}|/b)"),
            9 => format!("{e}.*?"),
            _ => format!("{e}.+"),
        }),
    };
    let mut r = route(&format!("r{i}"), path);
    r.method = match rng.below(4) {
        0 => Some("GET".into()),
        1 => Some("POST".into()),
        _ => None,
    };
    if rng.chance(30) {
        r.headers.push(HeaderMatch {
            name: "x".into(),
            value: if rng.chance(50) {
                StringMatch::Exact("1".into())
            } else {
                StringMatch::Present
            },
            invert: rng.chance(30),
        });
    }
    if rng.chance(15) {
        r.query.push(QueryMatch {
            name: "q".into(),
            value: StringMatch::Exact(rng.pick(&["1", "2"]).into()),
        });
    }
    if rng.chance(5) {
        r.sources = Some(vec!["10.0.0.1".into()]);
    }
    r
}

/// Random `listed` hosts and random requests: the index takes exactly the route the scan takes.
#[test]
fn the_index_decides_as_the_scan_does() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut routed = 0;
    let mut total = 0;
    for _ in 0..300 {
        let n = 1 + rng.below(40);
        let routes: Vec<Route> = (0..n).map(|i| random_route(&mut rng, i)).collect();
        let router = router(routes);
        for _ in 0..200 {
            let mut path = match rng.below(20) {
                0 => String::new(),
                1 => "*".into(),
                _ => random_path(&mut rng),
            };
            if rng.chance(5) {
                path.push_str("\nx");
            }
            if rng.chance(20) {
                path.push_str(rng.pick(&["?q=1", "?q=2", "?a=1&q=1", "#q=1", "/?q=1"]));
            }
            let mut headers = Vec::new();
            if rng.chance(40) {
                headers.push(("x".to_owned(), rng.pick(&["1", "2"]).to_owned()));
            }
            let req = Request {
                authority: "h",
                path: &path,
                method: rng.pick(&["GET", "POST", "PUT"]),
                headers: &headers,
                source: rng.chance(20).then(|| "10.0.0.1".parse().unwrap()),
            };
            let d = router.decide(&req);
            assert_eq!(d, router.decide_linear(&req), "{req:?} {router:#?}");
            total += 1;
            routed += usize::from(matches!(d, Decision::Route { .. }));
        }
    }
    // The generator must exercise both outcomes.
    assert!(
        routed > total / 5 && routed < total * 4 / 5,
        "{routed} of {total}"
    );
}
