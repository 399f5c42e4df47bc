//! Cost of one routing decision (`Router::decide`) and of compiling a configuration, for 10,
//! 1 000 and 10 000 routes (10 paths per host). The `linear` case is the baseline in the same
//! run: a naive scan over every route, which is what the indexed lookup must beat.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portico_core::config::{
    Backend, PathMatch, Route, RouteAction, RouteOrder, RoutingConfig, VirtualHost, WildcardMode,
};
use portico_core::Router;

fn config(routes: usize) -> RoutingConfig {
    let mut c = RoutingConfig::empty("bench");
    c.backends.insert(
        "b:80".into(),
        Backend {
            cluster: "outbound|80||b".into(),
            endpoints: vec!["127.0.0.1:80".into()],
            lb: Default::default(),
        },
    );
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
fn linear(c: &RoutingConfig, host: &str, path: &str) -> bool {
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

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for n in [10, 1_000, 10_000] {
        let cfg = config(n);
        let router = Router::try_from(cfg.clone()).unwrap();
        let host = format!("host{}.example.com", n / 20);
        group.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
            b.iter(|| router.decide_path(black_box(&host), black_box("/api/v4/items/42?x=1")))
        });
        group.bench_with_input(BenchmarkId::new("linear", n), &n, |b, _| {
            b.iter(|| linear(&cfg, black_box(&host), black_box("/api/v4/items/42")))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for n in [10, 1_000, 10_000] {
        let json = config(n).to_json();
        group.bench_with_input(BenchmarkId::from_parameter(n), &json, |b, json| {
            b.iter(|| Router::from_json(json.as_bytes()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
