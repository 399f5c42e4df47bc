//! host-runner's own costs with Portico's routing filter: compiling the module, starting a VM
//! and plugin, and one request through `proxy_on_request_headers` (context create, headers,
//! `on_log`/`on_done`/`on_delete`) for 10, 1 000 and 10 000 routes. Compare the per-request cost
//! with the filter's CPU cost inside Envoy (`portico-e2e bench-envoy`, docs/benchmarks.md).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use portico_core::config::{
    Backend, PathMatch, Route, RouteAction, RouteOrder, RoutingConfig, VirtualHost, WildcardMode,
};
use portico_host_runner::Runtime;

fn config(routes: usize) -> Vec<u8> {
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
                        PathMatch::Prefix(format!("/api/v{p}/items")),
                        RouteAction::to("b:80"),
                    )
                })
                .collect(),
            default_backend: None,
        });
    }
    c.to_json().into_bytes()
}

fn wasm() -> Vec<u8> {
    let path = portico_scenario::routing_wasm();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run `just build`)", path.display()))
}

fn bench(c: &mut Criterion) {
    let bytes = wasm();
    let runtime = Runtime::new().unwrap();
    let mut g = c.benchmark_group("module");
    g.sample_size(10);
    g.bench_function("compile", |b| {
        b.iter(|| runtime.compile(black_box(&bytes)).unwrap())
    });
    let module = runtime.compile(&bytes).unwrap();
    let small = config(10);
    g.bench_function("start vm + plugin (10 routes)", |b| {
        b.iter(|| {
            let mut vm = runtime.start_vm(&module, "routing", b"").unwrap();
            vm.start_plugin("portico-routing", &small).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("request");
    for n in [10, 1_000, 10_000] {
        let mut vm = runtime.start_vm(&module, "routing", b"").unwrap();
        let root = vm.start_plugin("portico-routing", &config(n)).unwrap();
        let host = format!("host{}.example.com", n / 20);
        let headers = vec![
            (":authority".to_owned(), host),
            (":path".to_owned(), "/api/v4/items/42?x=1".to_owned()),
            (":method".to_owned(), "GET".to_owned()),
            (":scheme".to_owned(), "http".to_owned()),
            ("user-agent".to_owned(), "bench".to_owned()),
        ];
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let ctx = vm.create_http_context(root).unwrap();
                vm.on_request_headers(ctx, headers.clone(), true).unwrap();
                vm.finish(ctx).unwrap()
            })
        });
    }
    g.finish();

    // A Gateway API configuration: 1 000 HTTPRoute rules (100 hostnames × 10, path prefix and a
    // header match each), the request matching the last rule of its host.
    let (objects, target) = portico_e2e::bench::gateway_objects(1_000).unwrap();
    let translation = portico_controller::translate::translate(&objects, &Default::default());
    let config = translation.snapshot.routing(80).unwrap().to_json();
    let mut vm = runtime.start_vm(&module, "routing", b"").unwrap();
    let root = vm
        .start_plugin("portico-routing", config.as_bytes())
        .unwrap();
    let mut headers = vec![
        (":authority".to_owned(), target.host.clone()),
        (":path".to_owned(), target.path.clone()),
        (":method".to_owned(), "GET".to_owned()),
        (":scheme".to_owned(), "http".to_owned()),
    ];
    headers.extend(target.headers.iter().cloned());
    let mut g = c.benchmark_group("request");
    g.bench_function("gateway-api 1000 routes", |b| {
        b.iter(|| {
            let ctx = vm.create_http_context(root).unwrap();
            vm.on_request_headers(ctx, headers.clone(), true).unwrap();
            vm.finish(ctx).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
