//! Steering is unforgeable on a real Envoy: the listener's routes forward only requests the
//! routing filter steered through filter state. With the filter taken out of the chain (what a
//! filter failing open, or a chain that lost it, amounts to), a client naming an address or a
//! cluster in the steering headers gets the 404 route and reaches nothing.

use std::net::SocketAddr;
use std::time::Duration;

use portico_core::config::{CLUSTER_HEADER, ORIGINAL_DST_CLUSTER, ORIGINAL_DST_HEADER};
use portico_e2e::client::{send, Outgoing};
use portico_e2e::fixture::{shop, static_bootstrap, write_bootstrap};
use portico_e2e::proxy::{free_ports, Envoy};

fn shop_bootstrap(work: &std::path::Path, port: u16) -> serde_json::Value {
    static_bootstrap(&shop("127.0.44.1"), work, port)
}

/// What a client would like to reach: a stand-in for a metadata server.
const TARGET: &str = "127.0.44.254:80";

/// Envoy with the routing filter removed from every HTTP filter chain.
fn envoy_without_routing(work: &std::path::Path, port: u16) -> Envoy {
    let mut bootstrap = shop_bootstrap(work, port);
    let mut removed = 0;
    for listener in bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .unwrap()
    {
        for chain in listener["filter_chains"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for filter in chain["filters"].as_array_mut().into_iter().flatten() {
                let http = filter
                    .get_mut("typed_config")
                    .and_then(|t| t.get_mut("http_filters"))
                    .and_then(serde_json::Value::as_array_mut);
                if let Some(http) = http {
                    let before = http.len();
                    http.retain(|f| f["name"] == "envoy.filters.http.router");
                    removed += before - http.len();
                }
            }
        }
    }
    assert!(removed > 0, "the routing filter was in the chain");
    let path = work.join("envoy-no-routing.yaml");
    write_bootstrap(&bootstrap, &path);
    Envoy::start(&path, work, &[SocketAddr::from(([127, 0, 0, 1], port))]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_routing_filter_forged_steering_reaches_nothing() {
    let work = tempfile::tempdir().unwrap();
    let port = free_ports(1).unwrap()[0];
    let echo = portico_e2e::echo::start(["127.0.44.1:8080", TARGET].map(|a| a.parse().unwrap()))
        .await
        .unwrap();
    let _envoy = envoy_without_routing(work.path(), port);
    let forged: [&[(&str, &str)]; 4] = [
        &[(ORIGINAL_DST_HEADER, TARGET)],
        &[
            (CLUSTER_HEADER, ORIGINAL_DST_CLUSTER),
            (ORIGINAL_DST_HEADER, TARGET),
        ],
        &[(CLUSTER_HEADER, "outbound|80||web.default.svc.cluster.local")],
        &[],
    ];
    for headers in forged {
        let out = Outgoing {
            target: SocketAddr::from(([127, 0, 0, 1], port)),
            source: None,
            method: "GET".into(),
            authority: "shop.example.com".into(),
            path: "/latest/meta-data".into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            http2: false,
            timeout: Duration::from_secs(5),
            proxy_destination: None,
            tls: None,
        };
        let o = send(&out).await;
        assert_eq!(o.status, Some(404), "{headers:?}: {}", o.summary());
        assert!(o.echo.is_none(), "{headers:?} reached a backend");
    }
    assert!(
        echo.hits.lock().unwrap().is_empty(),
        "a forged request reached a backend"
    );
}
