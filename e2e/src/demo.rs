//! `just demo`: the embedded default manifests on a local Envoy, a few requests, a table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portico_controller::envoy::{RenderOptions, BOOTSTRAP};
use portico_controller::reconcile::Reporter;
use portico_controller::translate::Options;
use portico_controller::DirController;
use serde_json::Value;

use crate::client::{send, Outgoing};
use crate::proxy::{routing_wasm, Envoy};

/// Ports of the demo: clients use 127.0.0.1:18080 for the Ingress port 80.
pub const DEMO_HTTP_PORT: u16 = 18080;
/// … and 127.0.0.1:18443 for port 443 (TLS).
pub const DEMO_HTTPS_PORT: u16 = 18443;
/// The demo Envoy's admin port.
pub const DEMO_ADMIN_PORT: u16 = 19901;

/// The requests the demo sends: (Host, path) pairs over the demo manifests.
const DEMO_REQUESTS: &[(&str, &str, &str)] = &[
    ("http", "shop.example.com", "/"),
    ("http", "shop.example.com", "/cart/items?id=3"),
    ("http", "shop.example.com", "/cartoon"),
    ("http", "shop.example.com", "/checkout"),
    ("http", "shop.example.com", "/checkout/step2"),
    ("http", "eu.shop.example.com", "/"),
    ("http", "a.b.shop.example.com", "/"),
    ("http", "unknown.example.org", "/anything"),
    // No Ingress has a `tls` section: ingress-nginx serves every host on 443 with its fake
    // certificate, and so does Portico.
    ("https", "shop.example.com", "/cart/items?id=3"),
];

/// Every document of every manifest file, as JSON values (what the scenario helpers read).
fn manifest_values(manifests: &Path) -> Result<Vec<Value>, String> {
    let loaded = portico_controller::source::load_dir(manifests)
        .map_err(|e| format!("{}: {e}", manifests.display()))?;
    let files: std::collections::BTreeSet<PathBuf> =
        loaded.manifests.iter().map(|m| m.file.clone()).collect();
    Ok(files
        .into_iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| portico_controller::source::documents(&t).unwrap_or_default())
        .collect())
}

/// Runs the demo: renders `manifests`, starts the echo backends and Envoy, sends the demo
/// requests and prints a table. With `serve`, keeps running and follows edits of `manifests`
/// until Ctrl-C.
///
/// # Errors
/// Anything that stops the demo from starting, with the reason.
pub async fn run(manifests: PathBuf, serve: bool) -> Result<(), String> {
    let work = crate::proxy::workspace_root().join(".run/demo");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let wasm = routing_wasm();
    if !wasm.is_file() {
        return Err(format!("{} is missing: run `just build`", wasm.display()));
    }
    let render = RenderOptions {
        routing_wasm: wasm,
        xds_dir: work.join("xds"),
        listen_address: "127.0.0.1".into(),
        admin_port: DEMO_ADMIN_PORT,
        port_map: BTreeMap::from([(80, DEMO_HTTP_PORT), (443, DEMO_HTTPS_PORT)]),
        sidecar_port: None,
    };
    let mut controller =
        DirController::new(manifests.clone(), Options::default(), render.clone()).settling();
    println!("portico demo: manifests {}", manifests.display());
    let report = controller
        .sync()
        .map_err(|e| format!("{}: {e}", manifests.display()))?;
    // The same problem lines as `portico-controller run`.
    let mut reporter = Reporter::default();
    reporter.print(&report);
    let values = manifest_values(&manifests)?;
    let backends = portico_scenario::format::endpoint_backends(&values);
    let echo = crate::echo::start(backends.keys().filter_map(|a| a.parse().ok())).await?;
    let listener = SocketAddr::from(([127, 0, 0, 1], DEMO_HTTP_PORT));
    let tls_listener = SocketAddr::from(([127, 0, 0, 1], DEMO_HTTPS_PORT));
    let certificates = std::sync::Arc::new(
        report
            .snapshot
            .as_ref()
            .map(portico_controller::translate::tls::served_certificates)
            .unwrap_or_default(),
    );
    // Port 443 only when the configuration opens it (a Gateway may have no HTTPS listener).
    let has_https = report
        .snapshot
        .as_ref()
        .is_some_and(|s| s.listeners.iter().any(|l| l.port == 443));
    let listening: Vec<SocketAddr> = std::iter::once(listener)
        .chain(has_https.then_some(tls_listener))
        .collect();
    let envoy = tokio::task::block_in_place(|| {
        Envoy::start(&render.xds_dir.join(BOOTSTRAP), &work, &listening)
    })?;
    println!(
        "envoy {} (pid {}), listeners http://127.0.0.1:{DEMO_HTTP_PORT} https://127.0.0.1:{DEMO_HTTPS_PORT}, admin http://{}\n",
        env_version(),
        envoy.pid(),
        envoy.admin
    );

    println!("{:<52} answer", "request");
    println!("{:<52} ------", "-------");
    for (scheme, host, path) in DEMO_REQUESTS {
        let https = *scheme == "https";
        if https && !has_https {
            println!(
                "{:<52} nothing listens on 443",
                format!("GET {scheme}://{host}{path}")
            );
            continue;
        }
        let out = Outgoing {
            target: if https { tls_listener } else { listener },
            source: None,
            method: "GET".into(),
            authority: (*host).to_owned(),
            path: (*path).to_owned(),
            headers: BTreeMap::new(),
            http2: false,
            timeout: Duration::from_secs(5),
            proxy_destination: None,
            tls: https.then(|| crate::client::ClientTls {
                sni: Some((*host).to_owned()),
                max_version: portico_core::tls::select::TlsVersion::V1_3,
                names: certificates.clone(),
                handshake_only: false,
                client: None,
            }),
        };
        let o = send(&out).await;
        let answer = match (&o.echo, o.status) {
            (Some(e), Some(s)) => {
                let backend = backends
                    .get(&e.endpoint)
                    .and_then(|b| b.iter().next())
                    .map_or("?", String::as_str);
                format!("{s} {backend} (endpoint {})", e.endpoint)
            }
            _ => o.summary(),
        };
        let answer = match &o.certificate {
            Some(names) => format!("{answer}, certificate {}", names.join(" | ")),
            None => answer,
        };
        println!("{:<52} {answer}", format!("GET {scheme}://{host}{path}"));
    }
    let forwarded = envoy.stat("wasmcustom.portico_routing_forwarded_total");
    let no_route = envoy.stat("wasmcustom.portico_routing_no_route_total");
    let no_ep = envoy.stat("wasmcustom.portico_routing_no_endpoints_total");
    println!("\nfilter counters: forwarded {forwarded}, no_route {no_route}, no_endpoints {no_ep}");

    if serve {
        println!("\nserving; try:");
        println!(
            "  curl -i -H 'Host: shop.example.com' http://127.0.0.1:{DEMO_HTTP_PORT}/cart/items"
        );
        println!("  curl -i -H 'Host: eu.shop.example.com' http://127.0.0.1:{DEMO_HTTP_PORT}/");
        println!(
            "  curl -s http://127.0.0.1:{DEMO_ADMIN_PORT}/stats/prometheus | grep portico_routing"
        );
        println!(
            "edit {} and routing follows within a second; Ctrl-C stops everything.",
            manifests.display()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            flag.store(true, Ordering::SeqCst);
        });
        while !stop.load(Ordering::SeqCst) {
            match controller.sync() {
                Ok(r) => {
                    reporter.print(&r);
                    if !r.written.is_empty() {
                        let generation = r
                            .snapshot
                            .as_ref()
                            .map(|s| s.generation.clone())
                            .unwrap_or_default();
                        println!("pushed generation {generation} ({})", r.written.join(", "));
                    }
                }
                Err(e) => eprintln!("error: syncing {}: {e}", manifests.display()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("stopping");
    }
    drop(envoy);
    drop(echo);
    println!("stopped envoy and the echo backends");
    Ok(())
}

fn env_version() -> String {
    std::process::Command::new(crate::proxy::envoy_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.split("version: ")
                .nth(1)
                .and_then(|v| v.split('/').nth(1))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into())
}
