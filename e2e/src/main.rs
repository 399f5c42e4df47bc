//! `portico-e2e`: run scenarios on a real Envoy, run the demo, or serve echo backends.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portico_core::config::ForwardMode;

/// Portico's real-Envoy harness.
#[derive(Debug, Parser)]
#[command(name = "portico-e2e", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenario files (or folders of them) through a real Envoy.
    Run {
        /// Scenario files or folders (default: testdata/scenarios).
        paths: Vec<PathBuf>,
        /// Print translate notes and Envoy's log tail.
        #[arg(short, long)]
        verbose: bool,
        /// Send to the Service's Envoy cluster instead of straight to a pod endpoint.
        #[arg(long)]
        cluster_mode: bool,
        /// Replace the served Ingresses by what `portico-controller convert` makes of them
        /// (Gateway API) and check the same requests.
        #[arg(long)]
        converted: bool,
        /// Apply each scenario's objects to a Kubernetes API server and serve what the
        /// controller's watchers read back (a test API server is started unless --kubeconfig).
        #[arg(long)]
        kube: bool,
        /// The cluster for --kube (its objects of the kinds the scenarios use are replaced).
        #[arg(long, requires = "kube")]
        kubeconfig: Option<PathBuf>,
        /// Configure Envoy as istiod configures a gateway and a sidecar, and attach Portico
        /// with its EnvoyFilters, merged as istiod merges them.
        #[arg(long, conflicts_with = "kube")]
        istio: bool,
        /// With --istio: attach the gateway's routing module by WasmPlugin objects, inserted as
        /// istiod inserts them, instead of the EnvoyFilter.
        #[arg(long, requires = "istio")]
        wasm_plugins: bool,
        /// Configure Envoy as Envoy Gateway configures a Gateway's, and attach Portico with its
        /// EnvoyExtensionPolicies and EnvoyPatchPolicies, applied as Envoy Gateway applies them
        /// (forwarding by endpoint; TLS ports and sidecar requests are skipped).
        #[arg(long, conflicts_with_all = ["kube", "istio", "cluster_mode"])]
        envoy_gateway: bool,
    },
    /// Serve the demo manifests on a local Envoy, send a few requests, print a table.
    Demo {
        /// Manifests directory.
        #[arg(long, default_value = "testdata/demo")]
        manifests: PathBuf,
        /// Keep running and follow edits of the manifests until Ctrl-C.
        #[arg(long)]
        serve: bool,
    },
    /// Requests/s and Envoy CPU per request with and without the routing filter (demo config).
    BenchEnvoy {
        /// Manifests directory.
        #[arg(long, default_value = "testdata/demo")]
        manifests: PathBuf,
        /// Alternating rounds over the three configurations.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds per measured run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Instead of the manifests, a generated Gateway API config with this many HTTPRoute rules.
        #[arg(long)]
        gateway_routes: Option<usize>,
        /// Envoy worker threads (repeatable: one comparison each).
        #[arg(long = "concurrency", default_values_t = [1usize])]
        concurrency: Vec<usize>,
        /// A few seconds of each configuration (one round of one second): fails unless every
        /// configuration served requests with no error. Measures nothing.
        #[arg(long)]
        smoke: bool,
    },
    /// Instructions per request of the routing filter in host-runner, counted by valgrind's
    /// callgrind (two runs of `host-runner call --repeat`, subtracted): stable whatever the
    /// machine's load.
    BenchInstructions {
        /// Generated Gateway API HTTPRoute rules (repeatable: one count each).
        #[arg(long = "gateway-routes", default_values_t = [1000usize])]
        gateway_routes: Vec<usize>,
        /// Requests counted beyond the first.
        #[arg(long, default_value_t = 200)]
        requests: u32,
    },
    /// Envoy's own instructions per request (valgrind's callgrind, start-up and warm-up not
    /// counted) for native RDS, the pass-through wasm filter and the routing filter in both
    /// forward modes, on a generated Gateway API configuration: stable whatever the machine's load
    BenchEnvoyInstructions {
        /// Generated Gateway API HTTPRoute rules.
        #[arg(long = "gateway-routes", default_value_t = 1000)]
        gateway_routes: usize,
        /// Requests counted (after 50 not counted).
        #[arg(long, default_value_t = 200)]
        requests: u32,
        /// Keep each configuration's callgrind dump in this directory (`N-label.callgrind`),
        /// to read with `callgrind_annotate --inclusive=yes`: where the instructions go.
        #[arg(long)]
        dumps: Option<std::path::PathBuf>,
        /// Also price single proxy-wasm host calls: the probe module making one call per
        /// request (every header read, one header read, one set, the steering filter state,
        /// a route-cache clear, a counter) in front of native RDS, each against the pass-through.
        #[arg(long)]
        abi_calls: bool,
    },
    /// Update latency on Kubernetes: object applied to a test API server → served by Envoy,
    /// p50/p99 over `updates` updates, with `routes` HTTPRoute rules in the cluster.
    BenchKube {
        /// HTTPRoute rules besides the probe (repeatable: one run each).
        #[arg(long = "routes", default_values_t = [10usize, 1000])]
        routes: Vec<usize>,
        /// Updates per run.
        #[arg(long, default_value_t = 100)]
        updates: usize,
    },
    /// Print CRDs for the Gateway API and Istio kinds Portico reads (every field kept, so Portico
    /// judges objects itself), for a test API server; a real cluster has the projects' own.
    TestCrds,
    /// Serve echo backends on the given addresses until Ctrl-C.
    Echo {
        /// `ip:port` to listen on (repeatable).
        #[arg(required = true)]
        listen: Vec<std::net::SocketAddr>,
    },
}

fn main() -> ExitCode {
    exit(match Cli::parse().command {
        Command::Run {
            paths,
            verbose,
            cluster_mode,
            converted,
            kube,
            kubeconfig,
            istio,
            wasm_plugins,
            envoy_gateway,
        } => run(
            &paths,
            verbose,
            cluster_mode,
            converted,
            if kube {
                Proxy::Kube(kubeconfig)
            } else if istio {
                Proxy::Istio { wasm_plugins }
            } else if envoy_gateway {
                Proxy::EnvoyGateway
            } else {
                Proxy::Plain
            },
        ),
        Command::TestCrds => {
            for crd in portico_e2e::kube::foreign_crds() {
                print!("---\n{}", serde_yaml::to_string(&crd).unwrap_or_default());
            }
            Ok(true)
        }
        command => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(serve(command))),
    })
}

/// How `run`'s Envoy is configured.
enum Proxy {
    /// Portico's own configuration of the scenario's translation.
    Plain,
    /// What the controller reads back from a Kubernetes API server (this kubeconfig's, else a
    /// test server's).
    Kube(Option<PathBuf>),
    /// istiod's shapes with Portico's EnvoyFilters (or WasmPlugins).
    Istio { wasm_plugins: bool },
    /// Envoy Gateway's shapes with Portico's policies.
    EnvoyGateway,
}

/// `run`: the scenario driver is synchronous; the Envoy host runs its own async runtime.
fn run(
    paths: &[PathBuf],
    verbose: bool,
    cluster_mode: bool,
    converted: bool,
    proxy: Proxy,
) -> Result<bool, String> {
    let forward = if cluster_mode {
        ForwardMode::Cluster
    } else {
        ForwardMode::Endpoint
    };
    let options = portico_scenario::RunOptions {
        verbose,
        forward,
        converted,
    };
    let mut host = match proxy {
        Proxy::Kube(kubeconfig) => portico_e2e::runner::EnvoyHost::with_kube(kubeconfig)?,
        Proxy::Istio { wasm_plugins: true } => {
            portico_e2e::runner::EnvoyHost::istio_wasm_plugins()?
        }
        Proxy::Istio { .. } => portico_e2e::runner::EnvoyHost::istio()?,
        Proxy::EnvoyGateway => portico_e2e::runner::EnvoyHost::envoy_gateway()?,
        Proxy::Plain => portico_e2e::runner::EnvoyHost::new()?,
    };
    let default = [portico_scenario::workspace_root().join("testdata/scenarios")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let summary = portico_scenario::run_paths(&mut host, paths, &options)?;
    Ok(summary.failed() == 0)
}

/// The commands that run on the async runtime.
async fn serve(command: Command) -> Result<bool, String> {
    match command {
        // Dispatched in `main`, before any runtime starts (its host runs its own).
        Command::Run { .. } | Command::TestCrds => {
            Err("not a command of the shared runtime".into())
        }
        Command::Demo { manifests, serve } => portico_e2e::demo::run(manifests, serve)
            .await
            .map(|()| true),
        Command::BenchEnvoy {
            manifests,
            rounds,
            seconds,
            connections,
            gateway_routes,
            concurrency,
            smoke,
        } => {
            let (rounds, seconds) = if smoke {
                (1, 1)
            } else {
                (rounds.max(1), seconds.clamp(1, 60))
            };
            let mut clean = true;
            for workers in concurrency {
                let settings = portico_e2e::bench::Settings {
                    rounds,
                    seconds,
                    connections: connections.clamp(1, 256),
                    workers: workers.clamp(1, 8),
                };
                let measured = match gateway_routes {
                    Some(n) => {
                        let (objects, target) =
                            portico_e2e::bench::gateway_objects(n.clamp(1, 100_000))?;
                        portico_e2e::bench::run_objects(objects, target, settings).await?
                    }
                    None => portico_e2e::bench::run(&manifests, settings).await?,
                };
                for m in &measured {
                    if m.errors() > 0 || m.ok() == 0 {
                        eprintln!("{}: {} served, {} errors", m.label, m.ok(), m.errors());
                        clean = false;
                    }
                }
            }
            Ok(!smoke || clean)
        }
        Command::BenchInstructions {
            gateway_routes,
            requests,
        } => {
            let host_runner = std::env::current_exe()
                .map_err(|e| e.to_string())?
                .with_file_name("host-runner");
            for n in gateway_routes {
                let line = portico_e2e::bench::instructions(
                    &host_runner,
                    n.clamp(1, 100_000),
                    requests.clamp(1, 100_000),
                )?;
                println!("{line}");
            }
            Ok(true)
        }
        Command::BenchEnvoyInstructions {
            gateway_routes,
            requests,
            dumps,
            abi_calls,
        } => {
            let (objects, target) =
                portico_e2e::bench::gateway_objects(gateway_routes.clamp(1, 100_000))?;
            let table = portico_e2e::bench::envoy_instructions(
                objects,
                target,
                requests.clamp(1, 100_000),
                dumps.as_deref(),
                abi_calls,
            )
            .await?;
            println!("\n{table}");
            Ok(true)
        }
        Command::BenchKube { routes, updates } => {
            for n in routes {
                let line = portico_e2e::kube_bench::update_latency(
                    n.clamp(1, 100_000),
                    updates.clamp(1, 10_000),
                )
                .await?;
                println!("kube update latency: {line}");
            }
            Ok(true)
        }
        Command::Echo { listen } => {
            let _servers = portico_e2e::echo::start(listen).await?;
            let _ = tokio::signal::ctrl_c().await;
            Ok(true)
        }
    }
}

fn exit(result: Result<bool, String>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
