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

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Convert the Ingresses of a directory of manifests, as ingress-nginx serves them, into
    /// Gateway API objects (a Gateway, HTTPRoutes, ReferenceGrants) printed as YAML; each
    /// annotation or field without an equivalent is named in a comment and a warning.
    Convert {
        /// Directory of Kubernetes manifests (YAML/JSON, searched recursively).
        #[arg(long)]
        manifests: PathBuf,
        /// The Gateway's name.
        #[arg(long, default_value = "portico")]
        gateway: String,
        /// The Gateway's namespace.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// The Gateway's class (`gatewayClassName`).
        #[arg(long, default_value = "portico")]
        gateway_class: String,
        /// Also write that GatewayClass, claimed by Portico (`portico.dev/gateway-controller`).
        #[arg(long)]
        with_gateway_class: bool,
        /// Write the YAML here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write each filter module as OCI images (an image layout directory and its tarball) in
    /// the two forms Istio's WasmPlugin and Envoy Gateway's EnvoyExtensionPolicy fetch, and print
    /// the sha256 to pin.
    Package {
        /// Where `just build` put the modules.
        #[arg(long, default_value = "target/wasm32-wasip1/wasm")]
        wasm_dir: PathBuf,
        /// Output directory (`NAME/` layouts and `NAME.tar` archives).
        #[arg(long, default_value = "target/oci")]
        out: PathBuf,
        /// The tag in each layout's index (`org.opencontainers.image.ref.name`).
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        tag: String,
    },
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
    /// Write the files, then follow the manifests (a directory, or a cluster with `--kube`) and
    /// push every change to Envoy live.
    Run {
        /// Directory of Kubernetes manifests (YAML/JSON, searched recursively).
        #[arg(long, required_unless_present = "kube", conflicts_with = "kube")]
        manifests: Option<PathBuf>,
        /// Watch a Kubernetes cluster instead: `--kubeconfig`, else `$KUBECONFIG` or
        /// `~/.kube/config`, else the in-cluster service account.
        #[arg(long)]
        kube: bool,
        /// Kubeconfig file for `--kube`.
        #[arg(long, requires = "kube")]
        kubeconfig: Option<PathBuf>,
        #[command(flatten)]
        replica: ReplicaArgs,
        /// With `--kube`: the leader also keeps the EnvoyFilters that attach Portico's modules
        /// to istiod's gateway and sidecars applied (as `istio` writes them; routing forwards
        /// to istiod's `outbound|…` clusters). Takes `istio`'s `--namespace`,
        /// `--gateway-selector`, `--gateway-port`, `--wasm-dir` and `--no-sidecar`.
        #[arg(long, requires = "kube")]
        istio: bool,
        #[command(flatten)]
        attach: AttachArgs,
        /// xDS directory Envoy reads (the bootstrap is written there too).
        #[arg(long)]
        xds_dir: PathBuf,
        /// How often to look for changes in the directory, in milliseconds.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Translate a directory of manifests and write the Istio EnvoyFilters that attach
    /// Portico's modules, with that configuration, to istiod's gateway and sidecars.
    Istio {
        /// Directory of Kubernetes manifests (YAML/JSON, searched recursively).
        #[arg(long)]
        manifests: PathBuf,
        /// Write `envoyfilters.yaml` into this directory instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        attach: AttachArgs,
    },
    /// Translate a directory of manifests and write the Envoy Gateway objects that attach
    /// Portico's routing module to the Envoys Envoy Gateway runs for its Gateways: an
    /// EnvoyExtensionPolicy per Gateway port and an EnvoyPatchPolicy per Gateway.
    EnvoyGateway {
        /// Directory of Kubernetes manifests (YAML/JSON, searched recursively).
        #[arg(long)]
        manifests: PathBuf,
        /// Write `policies.yaml` into this directory instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The module as an OCI image (`oci://REGISTRY/portico-routing:TAG`, what `package`
        /// wrote and you pushed).
        #[arg(
            long,
            value_name = "URL",
            conflicts_with = "wasm_http_url",
            required_unless_present = "wasm_http_url"
        )]
        wasm_image: Option<String>,
        /// The module as a `.wasm` Envoy Gateway downloads over HTTP(S).
        #[arg(long, value_name = "URL")]
        wasm_http_url: Option<String>,
        /// The image's manifest sha256 (`package` prints it), or with `--wasm-http-url` the
        /// `.wasm` file's.
        #[arg(long, value_name = "HEX", value_parser = sha256_hex)]
        wasm_sha256: Option<String>,
    },
    /// Print Portico's CustomResourceDefinition (PorticoConfig), or write it into a directory.
    Crdgen {
        /// Write `portico.dev_porticoconfigs.yaml` into this directory instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Where the EnvoyFilters that attach Portico to Istio go and what they select.
#[derive(Debug, Args)]
struct AttachArgs {
    /// Namespace of the EnvoyFilters (istiod's root namespace applies them mesh-wide).
    #[arg(long, default_value = "istio-system")]
    namespace: String,
    /// Label of the ingress gateway's pods, `KEY=VALUE` (repeatable).
    #[arg(long = "gateway-selector", value_name = "KEY=VALUE", default_values_t = ["istio=ingressgateway".to_owned()])]
    gateway_selector: Vec<String>,
    /// Gateway port → the port the gateway's Envoy listens on (`80=8080`, repeatable;
    /// default: 80=8080 and 443=8443, as the default gateway Service maps them).
    #[arg(long = "gateway-port", value_name = "PORT=LISTENER")]
    gateway_ports: Vec<String>,
    /// Directory holding the `.wasm` modules inside the proxy container.
    #[arg(long, default_value = "/var/local/lib/wasm")]
    wasm_dir: PathBuf,
    /// Patch only the gateway, not the sidecars.
    #[arg(long)]
    no_sidecar: bool,
    /// Attach the gateway's routing module with WasmPlugin objects (`extensions.istio.io`)
    /// loading it from this URL (`oci://…`, or `file://…` inside the proxy) instead of inserting
    /// it with the EnvoyFilter, which then keeps only the route and cluster patches.
    #[arg(long, value_name = "URL")]
    wasm_plugin_url: Option<String>,
    /// The WasmPlugins' `sha256`: for an `oci://` URL, the manifest digest `package` printed.
    #[arg(long, value_name = "HEX", requires = "wasm_plugin_url", value_parser = sha256_hex)]
    wasm_plugin_sha256: Option<String>,
}

/// A sha256 as WasmPlugin's `sha256` takes it: 64 lower-case hex digits.
fn sha256_hex(s: &str) -> Result<String, String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(s.to_owned())
    } else {
        Err("expected 64 lower-case hex digits (the manifest sha256 `portico-controller package` prints)".into())
    }
}

impl AttachArgs {
    fn options(&self) -> anyhow::Result<portico_controller::attach::AttachOptions> {
        let mut options = portico_controller::attach::AttachOptions {
            namespace: self.namespace.clone(),
            wasm_dir: self.wasm_dir.clone(),
            sidecar: !self.no_sidecar,
            wasm_plugin_url: self.wasm_plugin_url.clone(),
            wasm_plugin_sha256: self.wasm_plugin_sha256.clone(),
            ..Default::default()
        };
        options.gateway_labels.clear();
        for kv in &self.gateway_selector {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--gateway-selector {kv:?}: expected KEY=VALUE"))?;
            options.gateway_labels.insert(k.to_owned(), v.to_owned());
        }
        if !self.gateway_ports.is_empty() {
            options.gateway_ports = parse_port_map(&self.gateway_ports, "--gateway-port")?;
        }
        Ok(options)
    }
}

/// How a `--kube` replica runs.
#[derive(Debug, Args)]
struct ReplicaArgs {
    /// This replica's name in the Lease and the Events (default: `$POD_NAME`, else
    /// `$HOSTNAME`, else `portico-controller-PID`).
    #[arg(long)]
    identity: Option<String>,
    /// Namespace of the leader-election Lease (default: `$POD_NAMESPACE`, else `default`).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "portico-controller")]
    lease_name: String,
    /// How long the Lease holds without renewal, in seconds (the leader renews every third).
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Publish this address (an IP or a hostname) in `status.loadBalancer` of the Ingresses
    /// served (repeatable), as ingress-nginx's `--publish-status-address`.
    #[arg(long = "publish-address")]
    publish_addresses: Vec<String>,
    /// Log lines as text or as JSON objects (level with `$RUST_LOG`, default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serve `/metrics`, `/healthz` and `/readyz` here.
    #[arg(long, default_value = "127.0.0.1:9090")]
    metrics_address: std::net::SocketAddr,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event (for log pipelines).
    Json,
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

/// `PORT=OTHER` pairs of a repeatable flag.
fn parse_port_map(pairs: &[String], flag: &str) -> anyhow::Result<BTreeMap<u16, u16>> {
    let mut port_map = BTreeMap::new();
    for p in pairs {
        let Some((from, to)) = p.split_once('=') else {
            bail!("{flag} {p:?}: expected PORT=PORT, e.g. 80=18080");
        };
        let parse = |s: &str| {
            s.parse::<u16>()
                .with_context(|| format!("{flag} {p:?}: {s:?} is not a port"))
        };
        port_map.insert(parse(from)?, parse(to)?);
    }
    Ok(port_map)
}

impl Common {
    fn options(&self, xds_dir: &Path) -> anyhow::Result<(Options, RenderOptions)> {
        let port_map = parse_port_map(&self.ports, "--port")?;
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

/// Prints what a sync of a long-running loop did: its problems (each change once), then the
/// pushed generation when files were written.
fn print_sync(reporter: &mut Reporter, r: &SyncReport, took: Option<Duration>) {
    reporter.print(r);
    if !r.written.is_empty() {
        let generation = r.snapshot.as_ref().map(|s| s.generation.as_str());
        let took = took
            .map(|t| format!(" {} ms after the first change", t.as_millis()))
            .unwrap_or_default();
        println!(
            "pushed generation {}{took} ({})",
            generation.unwrap_or("?"),
            r.written.join(", ")
        );
    }
}

/// `run --manifests`: reads the directory every `interval_ms`.
fn follow_dir(
    manifests: PathBuf,
    xds_dir: &Path,
    interval_ms: u64,
    options: Options,
    render: RenderOptions,
) -> anyhow::Result<()> {
    check_dirs(&manifests, xds_dir, "--xds-dir")?;
    let mut controller = DirController::new(manifests.clone(), options, render).settling();
    let mut reporter = Reporter::default();
    loop {
        match controller.sync() {
            Ok(r) => print_sync(&mut reporter, &r, None),
            Err(e) => eprintln!("error: syncing {}: {e}", manifests.display()),
        }
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
}

/// `run --kube`: watches the cluster and pushes after every burst of changes; leader election,
/// status and events, metrics.
fn follow_kube(
    kubeconfig: Option<PathBuf>,
    args: &ReplicaArgs,
    istio: Option<portico_controller::attach::AttachOptions>,
    xds_dir: &Path,
    options: Options,
    render: RenderOptions,
) -> anyhow::Result<()> {
    use portico_controller::kubernetes::{self, Debounce, Replica};
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    std::fs::create_dir_all(xds_dir).with_context(|| format!("--xds-dir {}", xds_dir.display()))?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let replica = Replica {
        identity: args
            .identity
            .clone()
            .or_else(|| env("POD_NAME"))
            .or_else(|| env("HOSTNAME"))
            .unwrap_or_else(|| format!("portico-controller-{}", std::process::id())),
        lease_namespace: args
            .lease_namespace
            .clone()
            .or_else(|| env("POD_NAMESPACE"))
            .unwrap_or_else(|| "default".into()),
        lease_name: args.lease_name.clone(),
        lease_duration: Duration::from_secs(args.lease_duration_seconds.max(1)),
        debounce: Debounce::default(),
        publish_addresses: args.publish_addresses.clone(),
        istio,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = kubernetes::client(kubeconfig.as_deref()).await?;
        let listener = kubernetes::ops::bind(args.metrics_address)
            .await
            .with_context(|| format!("--metrics-address {}", args.metrics_address))?;
        let sink = portico_controller::sink::FileSink::new(render.xds_dir.clone());
        let mut reporter = Reporter::default();
        tracing::info!(
            identity = %replica.identity,
            metrics = %args.metrics_address,
            "watching the cluster's Ingress, Gateway API, Istio and Portico objects"
        );
        kubernetes::run_replica(
            client,
            sink,
            options,
            render,
            replica,
            Some(listener),
            |r, took| {
                if let Ok(r) = r {
                    reporter.print(r);
                    if !r.written.is_empty() {
                        tracing::info!(
                            generation = r.snapshot.as_ref().map_or("?", |s| s.generation.as_str()),
                            took_ms = took.as_millis() as u64,
                            read_us = r.timings.read.as_micros() as u64,
                            translate_us = r.timings.translate.as_micros() as u64,
                            render_us = r.timings.render.as_micros() as u64,
                            write_us = r.timings.write.as_micros() as u64,
                            files = ?r.written,
                            "pushed"
                        );
                    }
                }
            },
        )
        .await;
        Ok(())
    })
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
        Command::Package { wasm_dir, out, tag } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let images = portico_controller::package::package_all(&wasm_dir, &tag, &out)
                .with_context(|| format!("packaging the modules of {}", wasm_dir.display()))?;
            for i in images {
                println!(
                    "{} ({}): layout {}, archive {}\n  sha256 (manifest; WasmPlugin / EnvoyExtensionPolicy `sha256`): {}\n  module sha256: {}",
                    i.name,
                    match i.variant {
                        portico_controller::package::Variant::Compat => "compat: plugin.wasm in a tar+gzip layer",
                        portico_controller::package::Variant::Artifact => "artifact: wasm layer + runtime config",
                    },
                    i.layout.display(),
                    i.tarball.display(),
                    i.manifest_digest,
                    i.wasm_digest
                );
            }
            println!("push a layout with `crane push {}/NAME REGISTRY/NAME:{tag}` (or skopeo / oras); pin the manifest sha256", out.display());
        }
        Command::Convert {
            manifests,
            gateway,
            namespace,
            gateway_class,
            with_gateway_class,
            out,
        } => {
            let loaded = portico_controller::source::load_dir(&manifests)
                .with_context(|| format!("reading {}", manifests.display()))?;
            for e in &loaded.errors {
                eprintln!("warning: {e}");
            }
            let objects: Vec<_> = loaded.manifests.into_iter().map(|m| m.object).collect();
            let options = portico_controller::convert::ConvertOptions {
                gateway,
                namespace,
                class: gateway_class,
                gateway_class_object: with_gateway_class,
                translate: Options::default(),
            };
            let conversion = portico_controller::convert::convert(&objects, &options);
            for e in &conversion.left_out {
                eprintln!("not converted (ingress-nginx does not serve it either): {e}");
            }
            for d in &conversion.differences {
                eprintln!("warning: {d}");
            }
            let yaml = portico_controller::convert::to_yaml(&conversion);
            match out {
                Some(path) => std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{yaml}"),
            }
            eprintln!(
                "{} objects, {} differences from ingress-nginx, {} Ingresses not converted",
                conversion.objects.len(),
                conversion.differences.len(),
                conversion.left_out.len()
            );
        }
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
            kube,
            kubeconfig,
            replica,
            istio,
            attach,
            xds_dir,
            interval_ms,
            common,
        } => {
            let (mut options, render) = common.options(&xds_dir)?;
            let attach = if istio {
                let a = attach.options()?;
                if a.wasm_plugin_url.is_some() {
                    bail!("--wasm-plugin-url is for `portico-controller istio`; run --kube --istio attaches with EnvoyFilters");
                }
                // What istiod's proxies need: the Service clusters, and the mesh when sidecars
                // are attached.
                options.forward = ForwardMode::Cluster;
                options.mesh = a.sidecar;
                Some(a)
            } else {
                None
            };
            match manifests {
                Some(manifests) if !kube => {
                    follow_dir(manifests, &xds_dir, interval_ms, options, render)?;
                }
                _ => follow_kube(kubeconfig, &replica, attach, &xds_dir, options, render)?,
            }
        }
        Command::Istio {
            manifests,
            out,
            attach,
        } => {
            use portico_controller::attach::envoy_filters_yaml;
            let options = attach.options()?;
            let objects = load_manifests(&manifests)?;
            let translation = translate_reporting(
                &objects,
                &Options {
                    forward: ForwardMode::Cluster,
                    mesh: options.sidecar,
                    ..Options::default()
                },
            );
            let yaml = envoy_filters_yaml(&translation.snapshot, &options);
            write_or_print(out.as_deref(), "envoyfilters.yaml", &yaml)?;
        }
        Command::EnvoyGateway {
            manifests,
            out,
            wasm_image,
            wasm_http_url,
            wasm_sha256,
        } => {
            use portico_controller::attach::envoy_gateway::{attach, attachment_yaml, WasmCode};
            let code = match (wasm_image, wasm_http_url) {
                (Some(url), _) => WasmCode::Image {
                    url,
                    sha256: wasm_sha256,
                },
                (None, Some(url)) => WasmCode::Http {
                    url,
                    sha256: wasm_sha256,
                },
                (None, None) => bail!("--wasm-image or --wasm-http-url is required"),
            };
            let objects = load_manifests(&manifests)?;
            let translation = translate_reporting(
                &objects,
                &Options {
                    forward: ForwardMode::Endpoint,
                    ..Options::default()
                },
            );
            let attachment = attach(&objects, &translation.snapshot, &code);
            for w in &attachment.warnings {
                eprintln!("warning: {w}");
            }
            write_or_print(
                out.as_deref(),
                "policies.yaml",
                &attachment_yaml(&attachment),
            )?;
        }
        Command::Crdgen { out } => {
            let yaml = portico_controller::kubernetes::crd::yaml();
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("--out {}", dir.display()))?;
                    let path = dir.join(portico_controller::kubernetes::crd::FILE);
                    std::fs::write(&path, yaml)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => print!("{yaml}"),
            }
        }
    }
    Ok(())
}

/// The objects of a manifests directory; what cannot be read is reported on standard error.
fn load_manifests(
    manifests: &std::path::Path,
) -> anyhow::Result<Vec<portico_controller::model::Object>> {
    if !manifests.is_dir() {
        bail!("--manifests {}: no such directory", manifests.display());
    }
    let loaded = portico_controller::source::load_dir(manifests)
        .with_context(|| format!("reading {}", manifests.display()))?;
    for e in &loaded.errors {
        eprintln!("error: {e}");
    }
    Ok(loaded.manifests.into_iter().map(|m| m.object).collect())
}

/// [`portico_controller::translate::translate`] at the current time, its diagnostics reported
/// on standard error.
fn translate_reporting(
    objects: &[portico_controller::model::Object],
    options: &Options,
) -> portico_controller::translate::Translation {
    let translation = portico_controller::translate::translate(
        objects,
        &Options {
            now: portico_controller::translate::options::now(),
            ..options.clone()
        },
    );
    for e in &translation.errors {
        eprintln!("{}: {e}", e.severity());
    }
    translation
}

/// Writes `text` as `file` in the directory `out` (created), else prints it.
fn write_or_print(out: Option<&std::path::Path>, file: &str, text: &str) -> anyhow::Result<()> {
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("--out {}", dir.display()))?;
            let path = dir.join(file);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
