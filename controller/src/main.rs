//! `portico-controller` CLI: `render` once, or `run` and keep Envoy in step with a directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use portico_controller::envoy::RenderOptions;
use portico_controller::reconcile::Reporter;
use portico_controller::translate::Options;
use portico_controller::translate::Severity;
use portico_controller::{DirController, SyncReport};
use portico_core::config::ForwardMode;

/// Portico's controller: Kubernetes manifests in, Envoy configuration out.
#[derive(Debug, Parser)]
#[command(name = "portico-controller", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Translate a directory of manifests once and write the Envoy bootstrap and xDS files.
    Render {
        /// Directory of Kubernetes manifests (YAML/JSON, searched recursively).
        #[arg(long)]
        manifests: PathBuf,
        /// Output directory (Envoy reads the xDS files from here, so keep it).
        #[arg(long)]
        out: PathBuf,
        /// Exit 0 even when an object was left out with an error (the files are written either way).
        #[arg(long)]
        allow_errors: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Write the files, then watch the manifests and push every change to Envoy live.
    Run {
        /// Directory of Kubernetes manifests (YAML/JSON, searched recursively).
        #[arg(long)]
        manifests: PathBuf,
        /// xDS directory Envoy reads (the bootstrap is written there too).
        #[arg(long)]
        xds_dir: PathBuf,
        /// How often to look for changes, in milliseconds.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Forward {
    /// Straight to a pod endpoint chosen by the filter (ORIGINAL_DST).
    Endpoint,
    /// To the Service's Envoy cluster (`outbound|PORT||FQDN`).
    Cluster,
}

#[derive(Debug, Args)]
struct Common {
    /// The routing filter module.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm/portico_filter_routing.wasm"
    )]
    routing_wasm: PathBuf,
    /// Address Envoy's listeners and admin bind.
    #[arg(long, default_value = "127.0.0.1")]
    listen_address: String,
    /// Envoy admin port.
    #[arg(long, default_value_t = 9901)]
    admin_port: u16,
    /// Bind a listener's port elsewhere: `80=18080` (repeatable).
    #[arg(long = "port", value_name = "PORT=BIND")]
    ports: Vec<String>,
    /// How the filter hands requests to Envoy.
    #[arg(long, value_enum, default_value_t = Forward::Endpoint)]
    forward: Forward,
    /// Also run the sidecar's outbound listener (mesh routing) on this port; clients send a
    /// PROXY protocol header naming the destination they addressed.
    #[arg(long)]
    sidecar_port: Option<u16>,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

impl Common {
    fn options(&self, xds_dir: &Path) -> anyhow::Result<(Options, RenderOptions)> {
        let mut port_map = BTreeMap::new();
        for p in &self.ports {
            let Some((from, to)) = p.split_once('=') else {
                bail!("--port {p:?}: expected PORT=BIND, e.g. 80=18080");
            };
            let parse = |s: &str| {
                s.parse::<u16>()
                    .with_context(|| format!("--port {p:?}: {s:?} is not a port"))
            };
            port_map.insert(parse(from)?, parse(to)?);
        }
        let wasm = absolute(&self.routing_wasm)?;
        if !wasm.is_file() {
            bail!(
                "--routing-wasm {}: no such file (run `just build`)",
                wasm.display()
            );
        }
        let options = Options {
            now: portico_controller::translate::options::now(),
            forward: match self.forward {
                Forward::Endpoint => ForwardMode::Endpoint,
                Forward::Cluster => ForwardMode::Cluster,
            },
            mesh: self.sidecar_port.is_some(),
            ..Options::default()
        };
        let render = RenderOptions {
            routing_wasm: wasm,
            xds_dir: absolute(xds_dir)?,
            listen_address: self.listen_address.clone(),
            admin_port: self.admin_port,
            port_map,
            sidecar_port: self.sidecar_port,
        };
        Ok((options, render))
    }
}

/// Prints a sync's problems to stderr, each as `error:` or `warning:` by its severity; returns
/// how many were errors.
fn report(r: &SyncReport) -> usize {
    let mut errors = 0;
    for (severity, line) in r.messages() {
        eprintln!("{severity}: {line}");
        errors += usize::from(severity == Severity::Error);
    }
    errors
}

/// The manifests directory must exist; the output directory must be one we can write.
fn check_dirs(manifests: &Path, out: &Path, out_flag: &str) -> anyhow::Result<()> {
    if !manifests.is_dir() {
        bail!("--manifests {}: no such directory", manifests.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("{out_flag} {}", out.display()))?;
    let probe = out.join(".portico-write-check");
    std::fs::write(&probe, b"")
        .with_context(|| format!("{out_flag} {}: not writable", out.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn main() -> std::process::ExitCode {
    // Errors print as one `error:` line with their causes, never as a Debug dump (which would
    // carry a backtrace when RUST_BACKTRACE is set).
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Render {
            manifests,
            out,
            allow_errors,
            common,
        } => {
            let (options, render) = common.options(&out)?;
            check_dirs(&manifests, &out, "--out")?;
            let mut controller = DirController::new(manifests.clone(), options, render.clone());
            let r = controller.sync().with_context(|| {
                format!("rendering {} into {}", manifests.display(), out.display())
            })?;
            let errors = report(&r);
            if let Some(snapshot) = &r.snapshot {
                let path = out.join("envoy-static.yaml");
                std::fs::write(
                    &path,
                    portico_controller::envoy::render_static(snapshot, &render),
                )
                .with_context(|| format!("writing {}", path.display()))?;
            }
            println!(
                "wrote {}: envoy.yaml (bootstrap, file xDS) and envoy-static.yaml (self-contained)",
                out.display()
            );
            if errors > 0 && !allow_errors {
                bail!("{errors} object(s) left out with an error (--allow-errors to exit 0)");
            }
        }
        Command::Run {
            manifests,
            xds_dir,
            interval_ms,
            common,
        } => {
            let (options, render) = common.options(&xds_dir)?;
            check_dirs(&manifests, &xds_dir, "--xds-dir")?;
            let mut controller = DirController::new(manifests.clone(), options, render).settling();
            let mut reporter = Reporter::default();
            loop {
                match controller.sync() {
                    Ok(r) => {
                        reporter.print(&r);
                        if !r.written.is_empty() {
                            let generation = r.snapshot.as_ref().map(|s| s.generation.as_str());
                            println!(
                                "pushed generation {} ({})",
                                generation.unwrap_or("?"),
                                r.written.join(", ")
                            );
                        }
                    }
                    Err(e) => eprintln!("error: syncing {}: {e}", manifests.display()),
                }
                std::thread::sleep(Duration::from_millis(interval_ms));
            }
        }
    }
    Ok(())
}
