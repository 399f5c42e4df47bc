//! Cost of one routing decision (`Router::decide`), per family of configuration, at 10 and
//! 10 000 rules, with the baseline in the same run:
//!
//! - `ingress`: `longestPath` hosts of 10 paths each (10 to 1 000 hosts); baseline: a naive scan
//!   over every (host, route) pair.
//! - `gateway`: one `listed` host of N HTTPRoute rules in the Gateway API's precedence (exact
//!   paths, then longer prefixes first, then method and header matches), 10 rules per service;
//!   baseline: `Router::decide_linear`, the route-by-route scan.
//! - `istio`: one `listed` host of N VirtualService routes as the controller emits them (exact
//!   URIs as `Exact`, prefix URIs as the regex `escaped-prefix.*`, 1% real regexes), in the
//!   VirtualService's order; baseline: `Router::decide_linear`.
//! - `istio-caseless`: `istio` with another 1% of the routes `ignoreUriCase` (regexes with no
//!   literal start, which the index cannot place: candidates for every path).
//!
//! The `listed` request goes to the service in the middle of the list and needs a header, so the
//! first route of its path fails and the next one takes it.
//!
//! Then `compile`: parse + compile of each family's JSON config.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portico_core::config::{
    Backend, HeaderMatch, PathMatch, Route, RouteAction, RouteOrder, RoutingConfig, StringMatch,
    VirtualHost, WildcardMode,
};
use portico_core::{Request, Router};

const SIZES: [usize; 2] = [10, 10_000];

/// A family: its name and its configuration of N rules.
type Family = (&'static str, fn(usize) -> RoutingConfig);

fn base() -> RoutingConfig {
    let mut c = RoutingConfig::empty("bench");
    c.backends.insert(
        "b:80".into(),
        Backend {
            cluster: "outbound|80||b".into(),
            endpoints: vec!["127.0.0.1:80".into()],
            lb: Default::default(),
            original_destination: false,
        },
    );
    c
}

fn ingress(routes: usize) -> RoutingConfig {
    let mut c = base();
    for h in 0..routes.div_ceil(10) {
        c.virtual_hosts.push(VirtualHost {
            name: format!("h{h}"),
            hosts: vec![format!("host{h}.example.com")],
            wildcard: WildcardMode::SingleLabel,
            order: RouteOrder::LongestPath,
            routes: (0..10)
                .map(|p| {
                    Route::new(
                        format!("r{h}-{p}"),
                        if p % 2 == 0 {
                            PathMatch::Prefix(format!("/api/v{p}/items"))
                        } else {
                            PathMatch::Exact(format!("/page{p}"))
                        },
                        RouteAction::to("b:80"),
                    )
                })
                .collect(),
            default_backend: None,
        });
    }
    c
}

/// The naive alternative: every (host, route) pair checked in turn.
fn ingress_linear(c: &RoutingConfig, host: &str, path: &str) -> bool {
    c.virtual_hosts.iter().any(|v| {
        v.hosts.iter().any(|h| h == host)
            && v.routes.iter().any(|r| match &r.path {
                PathMatch::Exact(p) => p == path,
                PathMatch::Prefix(p) => {
                    path == p
                        || path
                            .strip_prefix(p.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                }
                PathMatch::Regex(_) => false,
            })
    })
}

fn header(name: &str, value: StringMatch) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value,
        invert: false,
    }
}

fn listed_host(routes: Vec<Route>) -> RoutingConfig {
    let mut c = base();
    c.virtual_hosts.push(VirtualHost {
        name: "gw".into(),
        hosts: vec!["shop.example.com".into()],
        wildcard: WildcardMode::MultiLabel,
        order: RouteOrder::Listed,
        routes,
        default_backend: None,
    });
    c
}

/// N rules, 10 per service, sorted as the controller sorts Gateway API matches.
fn gateway(n: usize) -> RoutingConfig {
    let mut routes = Vec::with_capacity(n);
    for s in 0..n.div_ceil(10) {
        let tenant = |t: &str| vec![header("x-tenant", StringMatch::Exact(t.into()))];
        let canary = vec![header("x-canary", StringMatch::Present)];
        for (i, (path, method, headers)) in [
            (
                PathMatch::Exact(format!("/svc{s}/health")),
                Some("GET"),
                vec![],
            ),
            (
                PathMatch::Exact(format!("/svc{s}/login")),
                Some("POST"),
                vec![],
            ),
            (
                PathMatch::Prefix(format!("/svc{s}/api/v1")),
                None,
                tenant("t1"),
            ),
            (
                PathMatch::Prefix(format!("/svc{s}/api/v1")),
                None,
                tenant("t2"),
            ),
            (PathMatch::Prefix(format!("/svc{s}/api/v1")), None, vec![]),
            (PathMatch::Prefix(format!("/svc{s}/api/v2")), None, canary),
            (PathMatch::Prefix(format!("/svc{s}/api/v2")), None, vec![]),
            (
                PathMatch::Prefix(format!("/svc{s}/static")),
                Some("GET"),
                vec![],
            ),
            (PathMatch::Prefix(format!("/svc{s}/api")), None, vec![]),
            (PathMatch::Prefix(format!("/svc{s}")), None, vec![]),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = Route::new(format!("svc{s}-{i}"), path, RouteAction::to("b:80"));
            r.method = method.map(str::to_owned);
            r.headers = headers;
            routes.push(r);
        }
    }
    routes.truncate(n);
    // Exact, then regex, then prefix; longer paths first; a method first; more headers first.
    routes.sort_by_key(|r| {
        let (kind, len) = match &r.path {
            PathMatch::Exact(p) => (0, p.len()),
            PathMatch::Regex(p) => (1, p.len()),
            PathMatch::Prefix(p) => (2, p.trim_end_matches('/').len()),
        };
        (
            kind,
            std::cmp::Reverse(len),
            r.method.is_none(),
            std::cmp::Reverse(r.headers.len()),
        )
    });
    listed_host(routes)
}

/// N routes, 10 per service in the VirtualService's order, as the controller emits them.
fn istio(n: usize) -> RoutingConfig {
    istio_with(n, false)
}

/// [`istio`] with another 1% of the routes case-insensitive (`ignoreUriCase`): regexes with no
/// literal start, so candidates for every path.
fn istio_caseless(n: usize) -> RoutingConfig {
    istio_with(n, true)
}

fn istio_with(n: usize, caseless: bool) -> RoutingConfig {
    let prefix = |p: String| PathMatch::Regex(format!("{}.*", regex::escape(&p)));
    let mut routes = Vec::with_capacity(n);
    for s in 0..n.div_ceil(10) {
        let user = vec![header("end-user", StringMatch::Exact("jason".into()))];
        let get = vec![header(":method", StringMatch::Exact("GET".into()))];
        // One service in ten has a real regex: 1% of the routes.
        let seventh = if s % 10 == 0 {
            PathMatch::Regex(format!("/svc{s}/users/[0-9]+/orders"))
        } else if caseless && s % 10 == 5 {
            PathMatch::Regex(format!("(?i)/svc{s}/legacy/.*"))
        } else {
            PathMatch::Exact(format!("/svc{s}/login"))
        };
        for (i, (path, headers)) in [
            (PathMatch::Exact(format!("/svc{s}/health")), vec![]),
            (prefix(format!("/svc{s}/api/v1/")), user),
            (prefix(format!("/svc{s}/api/v1/")), vec![]),
            (prefix(format!("/svc{s}/api/v2/")), get),
            (prefix(format!("/svc{s}/api/")), vec![]),
            (prefix(format!("/svc{s}/static/")), vec![]),
            (seventh, vec![]),
            (prefix(format!("/svc{s}/admin")), vec![]),
            (PathMatch::Exact(format!("/svc{s}")), vec![]),
            (prefix(format!("/svc{s}/")), vec![]),
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = Route::new(format!("svc{s}-{i}"), path, RouteAction::to("b:80"));
            r.headers = headers;
            routes.push(r);
        }
    }
    routes.truncate(n);
    listed_host(routes)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide/ingress");
    for n in SIZES {
        let cfg = ingress(n);
        let router = Router::try_from(cfg.clone()).unwrap();
        let host = format!("host{}.example.com", n / 20);
        group.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
            b.iter(|| router.decide_path(black_box(&host), black_box("/api/v4/items/42?x=1")))
        });
        group.bench_with_input(BenchmarkId::new("linear", n), &n, |b, _| {
            b.iter(|| ingress_linear(&cfg, black_box(&host), black_box("/api/v4/items/42")))
        });
    }
    group.finish();

    let listed: [(Family, (&str, &str)); 3] = [
        (("gateway", gateway), ("x-tenant", "t2")),
        (("istio", istio), ("end-user", "bob")),
        (("istio-caseless", istio_caseless), ("end-user", "bob")),
    ];
    for ((family, config), (name, value)) in listed {
        let mut group = c.benchmark_group(format!("decide/{family}"));
        for n in SIZES {
            let router = Router::try_from(config(n)).unwrap();
            let path = format!("/svc{}/api/v1/items/42?x=1", n / 20);
            let headers = vec![(name.to_owned(), value.to_owned())];
            let req = Request {
                authority: "shop.example.com",
                path: &path,
                method: "GET",
                headers: &headers,
                source: None,
            };
            let d = router.decide(&req);
            assert_eq!(d, router.decide_linear(&req));
            let route = match d {
                portico_core::Decision::Route { vhost, route } => router.route(vhost, route),
                other => panic!("{family} {n}: {other:?}"),
            };
            assert!(
                route.name.starts_with(&format!("svc{}-", n / 20)),
                "{}",
                route.name
            );
            group.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
                b.iter(|| router.decide(black_box(&req)))
            });
            group.bench_with_input(BenchmarkId::new("linear", n), &n, |b, _| {
                b.iter(|| router.decide_linear(black_box(&req)))
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    let families: [Family; 3] = [("ingress", ingress), ("gateway", gateway), ("istio", istio)];
    for (family, config) in families {
        for n in SIZES {
            let json = config(n).to_json();
            group.bench_with_input(BenchmarkId::new(family, n), &json, |b, json| {
                b.iter(|| Router::from_json(json.as_bytes()).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
