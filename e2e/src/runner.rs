//! Scenario files through a real Envoy: the scenario driver's [`Host`] that renders each
//! scenario's translation, starts Envoy and an echo server on every endpoint, and sends each
//! request as a client would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use portico_controller::envoy::{render, RenderOptions, BOOTSTRAP};
use portico_controller::sink::FileSink;
use portico_scenario::format::{Echo, Observed, Request, Scenario, Via};
use portico_scenario::prepare::{request_addresses, Plan, Prepared};
use portico_scenario::{routing_wasm, Host, RunOptions};

use crate::client::{send, Outgoing, TIMED_OUT};
use crate::echo::EchoServers;
use crate::proxy::{free_ports, Envoy};

/// A real Envoy per scenario, with an echo backend on every endpoint: a scenario [`Host`].
/// With a cluster ([`EnvoyHost::with_kube`]) each scenario's objects are applied to the API
/// server and Envoy serves what the controller's watchers read back; otherwise Envoy serves the
/// scenario's own translation.
#[derive(Debug)]
pub struct EnvoyHost {
    rt: tokio::runtime::Runtime,
    kube: Option<Cluster>,
    istio: bool,
    /// With `istio`: the gateway's routing attached by WasmPlugins.
    wasm_plugins: bool,
    /// Envoy shaped as Envoy Gateway configures it: where its wasm server serves the routing
    /// module, and the module's sha256.
    envoy_gateway: Option<(SocketAddr, String)>,
    /// With `envoy_gateway`: the current scenario's ports the model does not serve, and why.
    eg_skips: BTreeMap<u16, String>,
}

/// The API server scenarios are applied to.
struct Cluster {
    /// A test API server the host started (none: an existing cluster's kubeconfig).
    _server: Option<crate::kube::TestApiServer>,
    client: kube::Client,
    /// What the last scenario applied (deleted before the next one).
    applied: Vec<crate::kube::Applied>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self._server)
            .field("applied", &self.applied.len())
            .finish_non_exhaustive()
    }
}

impl EnvoyHost {
    /// A host with its own async runtime (for the client and the echo backends).
    ///
    /// # Errors
    /// When the runtime cannot start.
    pub fn new() -> Result<EnvoyHost, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(EnvoyHost {
            rt,
            kube: None,
            istio: false,
            wasm_plugins: false,
            envoy_gateway: None,
            eg_skips: BTreeMap::new(),
        })
    }

    /// A host whose Envoy is configured as Envoy Gateway configures a Gateway's, with Portico
    /// attached by its EnvoyExtensionPolicies and EnvoyPatchPolicies (see
    /// [`crate::envoy_gateway`]); the module is served over HTTP as Envoy Gateway serves it.
    ///
    /// # Errors
    /// When the runtime cannot start or the module cannot be read.
    pub fn envoy_gateway() -> Result<EnvoyHost, String> {
        let mut host = EnvoyHost::new()?;
        let wasm = routing_wasm();
        let sha256 = portico_controller::package::sha256_hex(
            &std::fs::read(&wasm).map_err(|e| format!("reading {}: {e}", wasm.display()))?,
        );
        let server = host.rt.block_on(crate::envoy_gateway::serve_file(&wasm))?;
        host.envoy_gateway = Some((server, sha256));
        Ok(host)
    }

    /// A host whose Envoy is configured as istiod configures an ingress gateway and a sidecar,
    /// with Portico attached by its EnvoyFilters (see [`crate::istio`]).
    ///
    /// # Errors
    /// When the runtime cannot start.
    pub fn istio() -> Result<EnvoyHost, String> {
        let mut host = EnvoyHost::new()?;
        host.istio = true;
        Ok(host)
    }

    /// [`EnvoyHost::istio`], the gateway's routing module attached by WasmPlugin objects
    /// (inserted as istiod inserts them) instead of the EnvoyFilter.
    ///
    /// # Errors
    /// When the runtime cannot start.
    pub fn istio_wasm_plugins() -> Result<EnvoyHost, String> {
        let mut host = EnvoyHost::istio()?;
        host.wasm_plugins = true;
        Ok(host)
    }

    /// A host that applies each scenario's objects to a Kubernetes API server: the cluster of
    /// `kubeconfig`, else a test API server it starts (and stops when dropped). The Gateway API,
    /// Istio and Portico CRDs are installed first.
    ///
    /// # Errors
    /// The server does not start or refuses the CRDs.
    pub fn with_kube(kubeconfig: Option<std::path::PathBuf>) -> Result<EnvoyHost, String> {
        let mut host = EnvoyHost::new()?;
        let (server, kubeconfig) = match kubeconfig {
            Some(k) => (None, k),
            None => {
                let server = crate::kube::TestApiServer::start("e2e")?;
                let k = server.kubeconfig.clone();
                (Some(server), k)
            }
        };
        let client = host.rt.block_on(async {
            let client = portico_controller::kubernetes::client(Some(&kubeconfig))
                .await
                .map_err(|e| format!("{e:#}"))?;
            crate::kube::install_crds(&client).await?;
            Ok::<_, String>(client)
        })?;
        host.kube = Some(Cluster {
            _server: server,
            client,
            applied: Vec::new(),
        });
        Ok(host)
    }
}

/// One scenario on [`EnvoyHost`]. Dropping it stops Envoy, then the echo backends.
#[derive(Debug)]
pub struct Session {
    envoy: Envoy,
    echo: EchoServers,
    /// Scenario listener port → the port Envoy really listens on.
    port_map: BTreeMap<u16, u16>,
    sidecar_port: Option<u16>,
    /// Served certificates' leaf DER → their names.
    certificates: std::sync::Arc<BTreeMap<Vec<u8>, Vec<String>>>,
    verbose: bool,
    _work: tempfile::TempDir,
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.verbose {
            eprintln!(
                "  envoy pid {} log tail:\n{}",
                self.envoy.pid(),
                self.envoy.log_tail()
            );
        }
    }
}

impl Host for EnvoyHost {
    type Session = Session;

    fn start(
        &mut self,
        _file: &str,
        scenario: &Scenario,
        prepared: &Prepared,
        options: &RunOptions,
    ) -> Result<Session, String> {
        let snapshot = &prepared.translation.snapshot;
        let work = tempfile::tempdir().map_err(|e| e.to_string())?;
        // The admin port comes from the same batch: with port 0 the kernel could hand Envoy's
        // admin a port just picked (and released) for a listener.
        let mut ports = free_ports(snapshot.listeners.len() + 2).map_err(|e| e.to_string())?;
        let admin_port = ports.pop().unwrap_or(0);
        let sidecar_port = ports.pop().filter(|_| snapshot.egress.is_some());
        let port_map: BTreeMap<u16, u16> = snapshot
            .listeners
            .iter()
            .map(|l| l.port)
            .zip(ports)
            .collect();
        let render_options = RenderOptions {
            routing_wasm: routing_wasm(),
            xds_dir: work.path().join("xds"),
            listen_address: "127.0.0.1".into(),
            admin_port,
            port_map: port_map.clone(),
            sidecar_port,
        };
        let mut bootstrap = render_options.xds_dir.join(BOOTSTRAP);
        let mut eg_attachment = None;
        match &mut self.kube {
            None if self.envoy_gateway.is_some() => {
                let (server, sha256) = self.envoy_gateway.clone().unwrap_or_else(|| unreachable!());
                let objects: Vec<portico_controller::objects::Object> = scenario
                    .objects
                    .iter()
                    .filter_map(|v| portico_controller::objects::Object::from_value(v.clone()).ok())
                    .collect();
                let (config, attachment, notes) = crate::envoy_gateway::bootstrap(
                    &objects,
                    snapshot,
                    server,
                    &sha256,
                    &port_map,
                    render_options.admin_port,
                )?;
                if options.verbose {
                    for n in &notes {
                        eprintln!("  envoy gateway: {n}");
                    }
                }
                std::fs::create_dir_all(&render_options.xds_dir).map_err(|e| e.to_string())?;
                bootstrap = render_options.xds_dir.join("envoy-gateway-shaped.yaml");
                std::fs::write(
                    &bootstrap,
                    serde_yaml::to_string(&config).unwrap_or_default(),
                )
                .map_err(|e| e.to_string())?;
                std::fs::write(
                    render_options.xds_dir.join("policies.yaml"),
                    portico_controller::attach::envoy_gateway::attachment_yaml(&attachment),
                )
                .map_err(|e| e.to_string())?;
                self.eg_skips = port_map
                    .keys()
                    .filter_map(|p| {
                        crate::envoy_gateway::unsupported(snapshot, &attachment, *p)
                            .map(|r| (*p, r))
                    })
                    .collect();
                eg_attachment = Some(attachment);
            }
            None if self.istio => {
                let wasm_dir = routing_wasm()
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default();
                let (config, filters) = crate::istio::bootstrap(
                    snapshot,
                    &wasm_dir,
                    &port_map,
                    sidecar_port,
                    render_options.admin_port,
                    self.wasm_plugins,
                )?;
                std::fs::create_dir_all(&render_options.xds_dir).map_err(|e| e.to_string())?;
                bootstrap = render_options.xds_dir.join("istio-shaped.yaml");
                let yaml = |v: &serde_json::Value| serde_yaml::to_string(v).unwrap_or_default();
                std::fs::write(&bootstrap, yaml(&config)).map_err(|e| e.to_string())?;
                let filters: String = filters
                    .iter()
                    .map(|f| format!("---\n{}", yaml(f)))
                    .collect();
                std::fs::write(render_options.xds_dir.join("envoyfilters.yaml"), filters)
                    .map_err(|e| e.to_string())?;
            }
            None => {
                FileSink::new(render_options.xds_dir.clone())
                    .write(&render(snapshot, &render_options))
                    .map_err(|e| format!("writing config: {e}"))?;
            }
            Some(cluster) => {
                let served = self.rt.block_on(apply_and_configure(
                    cluster,
                    scenario,
                    options,
                    &render_options,
                ))?;
                if served
                    .listeners
                    .iter()
                    .map(|l| l.port)
                    .ne(port_map.keys().copied())
                {
                    return Err(format!(
                        "the controller's listeners ({:?}) are not the scenario's ({:?})",
                        served.listeners.iter().map(|l| l.port).collect::<Vec<_>>(),
                        port_map.keys().collect::<Vec<_>>()
                    ));
                }
            }
        }
        let mut endpoints: Vec<SocketAddr> = prepared
            .backends
            .keys()
            .filter_map(|a| a.parse().ok())
            .collect();
        for a in request_addresses(scenario) {
            if let Ok(addr) = a.parse() {
                if !endpoints.contains(&addr) {
                    endpoints.push(addr);
                }
            }
        }
        let echo = self.rt.block_on(crate::echo::start(endpoints))?;
        let listeners: Vec<SocketAddr> = port_map
            .iter()
            .filter(|(port, _)| {
                (!self.istio || crate::istio::unsupported(snapshot, **port).is_none())
                    && eg_attachment.as_ref().is_none_or(|a| {
                        crate::envoy_gateway::unsupported(snapshot, a, **port).is_none()
                    })
            })
            .map(|(_, bind)| bind)
            .chain(sidecar_port.iter().filter(|_| eg_attachment.is_none()))
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        let envoy = Envoy::start(&bootstrap, work.path(), &listeners)?;
        Ok(Session {
            envoy,
            echo,
            port_map,
            sidecar_port,
            certificates: std::sync::Arc::new({
                let mut names = prepared.certificates.clone();
                if let Some((der, _)) = crate::echo::backend_certificate() {
                    names.insert(
                        der.clone(),
                        vec![portico_scenario::tls::BACKEND_CERTIFICATE.to_owned()],
                    );
                }
                names
            }),
            verbose: options.verbose,
            _work: work,
        })
    }

    fn skip_request(&self, prepared: &Prepared, request: &Request, plan: &Plan) -> Option<String> {
        if self.envoy_gateway.is_some() {
            if plan.via == Via::Sidecar {
                return Some("through a sidecar: Envoy Gateway has none".to_owned());
            }
            let upstream = request.expect.upstream.as_ref();
            if upstream.is_some_and(|u| u.headers.keys().any(|h| h.starts_with("x-envoy-"))) {
                return Some(
                    "expects an x-envoy-* header upstream: Envoy Gateway's router suppresses them (suppress_envoy_headers)"
                        .to_owned(),
                );
            }
            return self.eg_skips.get(&plan.url.port).cloned();
        }
        if !self.istio || plan.via == Via::Sidecar {
            return None;
        }
        crate::istio::unsupported(&prepared.translation.snapshot, plan.url.port)
    }

    fn send(
        &mut self,
        session: &mut Session,
        request: &Request,
        plan: &Plan,
        _trace: &mut Vec<String>,
    ) -> Vec<Observed> {
        let (bind, proxy_destination) = match (plan.via, session.sidecar_port) {
            (Via::Sidecar, Some(p)) => (p, Some(plan.destination)),
            _ => match session.port_map.get(&plan.url.port) {
                Some(p) => (*p, None),
                None => {
                    return vec![Observed {
                        error: Some(format!("no listener for port {}", plan.url.port)),
                        ..Observed::default()
                    }]
                }
            },
        };
        let out = Outgoing {
            target: SocketAddr::from(([127, 0, 0, 1], bind)),
            proxy_destination,
            source: plan.source,
            method: plan.method.clone(),
            authority: plan.authority.clone(),
            path: plan.url.path.clone(),
            headers: request.headers.clone(),
            http2: request.http_version.as_deref() == Some("2"),
            timeout: Duration::from_secs(10),
            tls: plan.tls.as_ref().map(|t| crate::client::ClientTls {
                sni: t.sni.clone(),
                max_version: t.max_version,
                names: session.certificates.clone(),
                handshake_only: request.protocol.as_deref() == Some("tls"),
                client: t.client.clone(),
            }),
        };
        let echo = &session.echo;
        self.rt.block_on(async {
            let seen = echo.hits.lock().map(|h| h.len()).unwrap_or(0);
            let mut observed = Vec::new();
            for _ in 0..request.repeat.unwrap_or(1).max(1) {
                let mut o = send(&out).await;
                if o.error.as_deref().is_some_and(|e| e.starts_with(TIMED_OUT)) {
                    // A stall, not an answer: seen once in CI (a TLS 1.3 client whose
                    // certificate Envoy refuses) and not in 3 000 tries of that request since,
                    // on a loaded machine. Said on stderr, and tried once more; a second stall
                    // fails.
                    eprintln!(
                        "warning: {:?}: {}; sending it again",
                        request.name,
                        o.error.as_deref().unwrap_or_default()
                    );
                    o = send(&out).await;
                }
                observed.push(o);
            }
            if request.expect.mirror.is_some() {
                // Mirror copies travel on their own: give them a moment to arrive.
                let copies = shadow_copies(echo, seen, Duration::from_secs(2)).await;
                if let Some(last) = observed.last_mut() {
                    last.mirrored = copies;
                }
            }
            observed
        })
    }
}

/// Replaces what the cluster holds with `scenario`'s objects and lets the controller's
/// watchers read them back and write the configuration Envoy will serve.
async fn apply_and_configure(
    cluster: &mut Cluster,
    scenario: &Scenario,
    options: &RunOptions,
    render_options: &RenderOptions,
) -> Result<portico_controller::snapshot::Snapshot, String> {
    crate::kube::delete_objects(&cluster.client, &std::mem::take(&mut cluster.applied)).await?;
    let applied = crate::kube::apply_objects(&cluster.client, &scenario.objects).await?;
    cluster.applied = applied.applied;
    if options.verbose {
        for r in &applied.refused {
            eprintln!("  note: the API server refused {r}");
        }
    }
    let report = crate::kube::configure_once(&cluster.client, |source| {
        portico_controller::Reconciler::with(
            source,
            FileSink::new(render_options.xds_dir.clone()),
            portico_scenario::prepare::translate_options(options.forward),
            render_options.clone(),
        )
    })
    .await?;
    if options.verbose {
        for (_, line) in report.messages() {
            eprintln!("  controller: {line}");
        }
    }
    report
        .snapshot
        .ok_or_else(|| "the controller made no configuration".to_owned())
}

/// The mirror copies (host `…-shadow`) the echo servers received after the first `seen` hits,
/// waiting up to `wait` for the first one.
async fn shadow_copies(echo: &EchoServers, seen: usize, wait: Duration) -> Vec<Echo> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let copies: Vec<_> = echo
            .hits
            .lock()
            .map(|h| {
                h.iter()
                    .skip(seen)
                    .filter(|e| is_shadow(&e.host))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if !copies.is_empty() || tokio::time::Instant::now() >= deadline {
            return copies;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a Host header is a mirror copy's (`name-shadow` or `name-shadow:port`).
fn is_shadow(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    name.ends_with("-shadow")
}
