//! Scenarios through a real Kubernetes API server: the test API server (etcd-backed Kubernetes
//! 1.36, started and stopped by the scripts of its tool folder), the CustomResourceDefinitions of
//! the kinds Portico reads, and a scenario's objects applied as a user would apply them and read
//! back by the controller's watchers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::Client;
use portico_controller::kubernetes::kinds::{find, Kind, WATCHED};
use portico_controller::kubernetes::{spawn_watchers, KubeSource, KubeStore};
use portico_controller::reconcile::{Reconciler, SyncReport};
use portico_controller::sink::Sink;
use serde_json::{json, Value};

use crate::proxy::workspace_root;

/// The field manager the harness applies objects with.
pub const MANAGER: &str = "portico-e2e";

/// The test API server's tool folder: `$PORTICO_KUBE_APISERVER_TOOL`, else
/// `../shared/tools/kube-apiserver` beside the workspace.
pub fn tool_dir() -> PathBuf {
    std::env::var_os("PORTICO_KUBE_APISERVER_TOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/tools/kube-apiserver"))
}

/// Unpacks the API server and etcd once into `target/kube-apiserver/bin`, shared by every
/// server the tests start (an `up.sh` then takes about a second instead of two and a half).
fn shared_bins() -> Result<PathBuf, String> {
    // Tests of one process start servers in parallel: one unpacks, the others wait.
    static UNPACK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = UNPACK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = workspace_root().join("target/kube-apiserver/bin");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for name in ["kube-apiserver", "etcd"] {
        let bin = dir.join(name);
        let packed = tool_dir().join("bin").join(format!("{name}.xz"));
        let fresh = match (bin.metadata(), packed.metadata()) {
            (Ok(b), Ok(p)) => b.modified().ok() >= p.modified().ok() && b.len() > 0,
            _ => false,
        };
        if fresh {
            continue;
        }
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let out = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let status = Command::new("xz")
            .arg("-dc")
            .arg(&packed)
            .stdout(out)
            .status()
            .map_err(|e| format!("xz: {e}"))?;
        if !status.success() {
            return Err(format!("unpacking {}: xz failed", packed.display()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
        }
        std::fs::rename(&tmp, &bin).map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

/// A private etcd-backed API server; stopped (by `down.sh`, which kills by the PIDs it
/// recorded) and its state removed when dropped.
#[derive(Debug)]
pub struct TestApiServer {
    state: PathBuf,
    /// Its kubeconfig (admin client certificate).
    pub kubeconfig: PathBuf,
}

impl TestApiServer {
    /// Starts a server with its state in `target/kube-apiserver/NAME-PID`.
    ///
    /// # Errors
    /// The tool folder is missing or `up.sh` fails (its output says why).
    pub fn start(name: &str) -> Result<TestApiServer, String> {
        let tool = tool_dir();
        if !tool.join("up.sh").is_file() {
            return Err(format!(
                "no test API server at {} (set PORTICO_KUBE_APISERVER_TOOL)",
                tool.display()
            ));
        }
        let bins = shared_bins()?;
        let state = workspace_root().join(format!(
            "target/kube-apiserver/{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&state);
        let out = Command::new(tool.join("up.sh"))
            .arg(&state)
            .env("KUBE_APISERVER_BIN_DIR", &bins)
            .output()
            .map_err(|e| format!("up.sh: {e}"))?;
        let server = TestApiServer {
            kubeconfig: state.join("kubeconfig"),
            state,
        };
        if !out.status.success() {
            return Err(format!(
                "up.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(server)
    }

    /// The state directory (logs: `apiserver.log`, `etcd.log`).
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// A client for it.
    ///
    /// # Errors
    /// The kubeconfig is unreadable.
    pub async fn client(&self) -> Result<Client, String> {
        portico_controller::kubernetes::client(Some(&self.kubeconfig))
            .await
            .map_err(|e| format!("{e:#}"))
    }

    /// Stops the API server process alone (etcd keeps the data), as a crash or an upgrade
    /// would, waits `down` and starts it again with the same command line (same port,
    /// same certificates), until it is ready.
    ///
    /// # Errors
    /// It does not come back within 30 s.
    pub fn restart_apiserver(&self, down: Duration) -> Result<(), String> {
        let pid_file = self.state.join("apiserver.pid");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{}: {e}", pid_file.display()))?
            .trim()
            .parse()
            .map_err(|e| format!("apiserver.pid: {e}"))?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|e| e.to_string())?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            // A zombie (exited, not yet reaped by its parent) counts as gone.
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if status.contains("State:\tZ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(down);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.state.join("apiserver.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new(&args[0])
            .args(&args[1..])
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("restarting {}: {e}", args[0]))?;
        std::fs::write(&pid_file, child.id().to_string()).map_err(|e| e.to_string())?;
        // Reaped by the OS when this process exits; down.sh stops it by the recorded PID.
        std::mem::forget(child);
        let server = self.server_url()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // `/readyz` needs no credentials.
            let ready = Command::new("curl")
                .args(["-sk", "--max-time", "2"])
                .arg(format!("{server}/readyz"))
                .output()
                .is_ok_and(|o| o.stdout == b"ok");
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the API server did not come back within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's URL, from its kubeconfig.
    ///
    /// # Errors
    /// The kubeconfig is unreadable.
    pub fn server_url(&self) -> Result<String, String> {
        let text = std::fs::read_to_string(&self.kubeconfig).map_err(|e| e.to_string())?;
        let config: Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
        config["clusters"][0]["cluster"]["server"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "kubeconfig names no server".into())
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        let _ = Command::new(tool_dir().join("down.sh"))
            .arg(&self.state)
            .output();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Istio's EnvoyFilter, which `run --kube --istio` writes (Portico does not read it).
const ENVOYFILTER: Kind = Kind {
    group: "networking.istio.io",
    kind: "EnvoyFilter",
    plural: "envoyfilters",
    namespaced: true,
    versions: &["v1alpha3"],
};

/// CustomResourceDefinitions for the Gateway API and Istio kinds Portico reads (and Istio's
/// EnvoyFilter, which it writes), for a test API server: every version Portico parses is served
/// (the first stored; conversion `None` only rewrites `apiVersion`), with a `status`
/// subresource and a schema that keeps every field, so the controller sees objects exactly as
/// written and judges them itself. A real cluster uses the projects' own CRDs.
pub fn foreign_crds() -> Vec<Value> {
    WATCHED
        .iter()
        .filter(|k| {
            k.group == portico_controller::model::GATEWAY_GROUP
                || k.group == portico_controller::model::ISTIO_GROUP
        })
        .chain([&ENVOYFILTER])
        .map(loose_crd)
        .collect()
}

fn loose_crd(kind: &Kind) -> Value {
    let versions: Vec<Value> = kind
        .versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "name": v,
                "served": true,
                "storage": i == 0,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                }},
            })
        })
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{}.{}", kind.plural, kind.group),
            // `*.k8s.io` groups are protected: the API server wants the approval the Gateway
            // API's own CRDs carry.
            "annotations": if kind.group.ends_with(".k8s.io") {
                json!({"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/4530"})
            } else {
                json!({})
            },
        },
        "spec": {
            "group": kind.group,
            "scope": if kind.namespaced { "Namespaced" } else { "Cluster" },
            "names": {
                "kind": kind.kind,
                "plural": kind.plural,
                "singular": kind.kind.to_lowercase(),
                "listKind": format!("{}List", kind.kind),
            },
            "versions": versions,
        },
    })
}

fn crd_resource() -> kube::discovery::ApiResource {
    kube::discovery::ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// Installs Portico's CRD and [`foreign_crds`] and waits until each is established.
///
/// # Errors
/// The API server refused one, or one was not established within 20 s.
pub async fn install_crds(client: &Client) -> Result<(), String> {
    let mut crds = foreign_crds();
    let portico: Value = serde_yaml::from_str(&portico_controller::kubernetes::crd::yaml())
        .map_err(|e| e.to_string())?;
    crds.push(portico);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &crd_resource());
    let params = PatchParams::apply(MANAGER).force();
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        api.patch(name, &params, &Patch::Apply(crd))
            .await
            .map_err(|e| format!("CRD {name}: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for crd in &crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        loop {
            let o = api
                .get(name)
                .await
                .map_err(|e| format!("CRD {name}: {e}"))?;
            let established = o.data["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            if established {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("CRD {name} not established within 20 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// One object the harness applied.
#[derive(Debug, Clone)]
pub struct Applied {
    resource: kube::discovery::ApiResource,
    namespace: Option<String>,
    name: String,
}

/// The namespaces every cluster has; never deleted, only their labels are reset.
const BOOTSTRAP_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn api_for(client: &Client, applied: &Applied) -> Api<DynamicObject> {
    match &applied.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &applied.resource),
        None => Api::all_with(client.clone(), &applied.resource),
    }
}

/// What applying a scenario's objects did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Objects the API server holds now.
    pub applied: Vec<Applied>,
    /// Objects it refused, each with its reason (the controller never sees them).
    pub refused: Vec<String>,
}

/// Applies `objects` (server-side apply, field manager [`MANAGER`]) in an order that gives
/// them the `creationTimestamp` order they state: the API server sets the timestamp itself, to
/// the second, so objects without one go first and each later stated timestamp starts in a new
/// second; objects sharing a timestamp are applied together right after a second begins.
/// Namespaces the objects use are created first; `status` is written through the status
/// subresource afterwards, as the component that owns it would.
///
/// # Errors
/// Only when the cluster cannot be reached; a refused object is in [`ApplyReport::refused`].
pub async fn apply_objects(client: &Client, objects: &[Value]) -> Result<ApplyReport, String> {
    let mut report = ApplyReport::default();
    let params = PatchParams::apply(MANAGER).force();
    // Namespaces first: NamespaceLifecycle refuses objects in a missing one.
    let mut namespaces: BTreeMap<String, Value> = BTreeMap::new();
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default();
        if kind == "Namespace" && o["apiVersion"] == "v1" {
            if let Some(name) = o["metadata"]["name"].as_str() {
                namespaces.insert(name.to_owned(), o.clone());
            }
            continue;
        }
        let namespaced = kind_of(o).is_none_or(|k| k.namespaced);
        if namespaced {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("default");
            namespaces.entry(ns.to_owned()).or_insert_with(
                || json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
    }
    for ns in namespaces.values() {
        apply_one(client, ns, &params, &mut report).await?;
    }
    // Then the rest, by stated creationTimestamp.
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for o in objects {
        if o["kind"] == "Namespace" && o["apiVersion"] == "v1" {
            continue;
        }
        let stamp = o["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default();
        groups.entry(stamp.to_owned()).or_default().push(o);
    }
    let mut first = true;
    for (stamp, group) in &groups {
        // One second holds a group: start at a second's beginning when the group might not
        // fit in what is left of this one, and always for a later timestamp.
        let budget = Duration::from_millis(30 * group.len() as u64 + 50);
        if !first || !stamp.is_empty() || !fits_in_this_second(budget) {
            next_second().await;
        }
        first = false;
        for o in group {
            let mut o = (*o).clone();
            if let Some(meta) = o["metadata"].as_object_mut() {
                meta.remove("creationTimestamp");
            }
            apply_one(client, &o, &params, &mut report).await?;
        }
    }
    Ok(report)
}

/// Applies `objects` at once, in order (server-side apply, field manager [`MANAGER`]; `status`
/// through the status subresource): an update as a user's `kubectl apply --server-side` makes
/// it, with none of [`apply_objects`]' waits for timestamps. Their namespaces must exist.
///
/// # Errors
/// Only when the cluster cannot be reached; a refused object is in [`ApplyReport::refused`].
pub async fn apply_now(client: &Client, objects: &[Value]) -> Result<ApplyReport, String> {
    let mut report = ApplyReport::default();
    let params = PatchParams::apply(MANAGER).force();
    for o in objects {
        apply_one(client, o, &params, &mut report).await?;
    }
    Ok(report)
}

fn fits_in_this_second(budget: Duration) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_nanos(u64::from(now.subsec_nanos())) + budget < Duration::from_secs(1)
}

async fn next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
    tokio::time::sleep(left + Duration::from_millis(5)).await;
}

fn kind_of(o: &Value) -> Option<&'static Kind> {
    let api_version = o["apiVersion"].as_str()?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    find(group, o["kind"].as_str()?)
}

async fn apply_one(
    client: &Client,
    object: &Value,
    params: &PatchParams,
    report: &mut ApplyReport,
) -> Result<(), String> {
    let label = portico_controller::model::describe_value(object);
    let Some(kind) = kind_of(object) else {
        report
            .refused
            .push(format!("{label}: not a kind Portico reads"));
        return Ok(());
    };
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
    let Some(name) = object["metadata"]["name"].as_str() else {
        report.refused.push(format!("{label}: no metadata.name"));
        return Ok(());
    };
    let applied = Applied {
        resource: kind.api_resource(version),
        namespace: kind.namespaced.then(|| {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned()
        }),
        name: name.to_owned(),
    };
    let mut object = object.clone();
    if let (Some(meta), Some(ns)) = (object["metadata"].as_object_mut(), &applied.namespace) {
        meta.insert("namespace".into(), ns.clone().into());
    }
    let status = object.as_object_mut().and_then(|o| o.remove("status"));
    let api = api_for(client, &applied);
    match api.patch(name, params, &Patch::Apply(&object)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) => {
            report.refused.push(format!("{label}: {}", s.message));
            return Ok(());
        }
        Err(e) => return Err(format!("{label}: {e}")),
    }
    if let Some(status) = status {
        let patch = json!({
            "apiVersion": api_version,
            "kind": kind.kind,
            "metadata": {"name": name},
            "status": status,
        });
        if let Err(e) = api.patch_status(name, params, &Patch::Apply(&patch)).await {
            report.refused.push(format!("{label}: status: {e}"));
        }
    }
    report.applied.push(applied);
    Ok(())
}

/// Deletes what [`apply_objects`] applied (bootstrap namespaces are kept, their labels and
/// annotations taken back) and waits until the API server no longer lists them.
///
/// # Errors
/// The cluster cannot be reached.
pub async fn delete_objects(client: &Client, applied: &[Applied]) -> Result<(), String> {
    for a in applied.iter().rev() {
        let api = api_for(client, a);
        if a.resource.kind == "Namespace" && BOOTSTRAP_NAMESPACES.contains(&a.name.as_str()) {
            let bare =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": a.name}});
            api.patch(
                &a.name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&bare),
            )
            .await
            .map_err(|e| format!("namespace {}: {e}", a.name))?;
            continue;
        }
        match api.delete(&a.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(format!("deleting {} {}: {e}", a.resource.kind, a.name)),
        }
    }
    Ok(())
}

/// Starts the controller's watchers on the cluster, waits until every kind has been listed,
/// syncs `reconciler`'s snapshot into its sink once and stops the watchers: the configuration
/// the controller serves for what the cluster holds now.
///
/// # Errors
/// The watchers did not list everything within 20 s, or the sink failed.
pub async fn configure_once<K: Sink>(
    client: &Client,
    reconciler: impl FnOnce(KubeSource) -> Reconciler<KubeSource, K>,
) -> Result<SyncReport, String> {
    let store = KubeStore::new();
    let watchers = spawn_watchers(client, &store);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store.synced() {
        if Instant::now() > deadline {
            let starting: Vec<String> = store
                .states()
                .iter()
                .filter(|(_, s)| *s == portico_controller::kubernetes::source::KindState::Starting)
                .map(|(k, _)| k.label())
                .collect();
            return Err(format!("not listed within 20 s: {}", starting.join(", ")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(watchers);
    let mut reconciler = reconciler(KubeSource::new(store));
    reconciler
        .sync()
        .map_err(|e| format!("writing the configuration: {e}"))
}

/// One sync of a [`Following`] controller that wrote files.
#[derive(Debug, Clone)]
pub struct Push {
    /// When the files were written.
    pub at: Instant,
    /// How long after the first change of its burst.
    pub took: Duration,
    /// The snapshot's generation.
    pub generation: String,
    /// Where the sync's own time went.
    pub timings: portico_controller::SyncTimings,
}

/// The controller following a cluster in a task, as `portico-controller run --kube` does; stops
/// when dropped.
#[derive(Debug)]
pub struct Following {
    task: tokio::task::JoinHandle<()>,
    _watchers: portico_controller::kubernetes::Watchers,
    /// Every push so far.
    pub pushes: std::sync::Arc<std::sync::Mutex<Vec<Push>>>,
    /// Every problem line the syncs reported.
    pub problems: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Following {
    /// Starts watchers on `client` and a task following them into `render.xds_dir`, debounced
    /// as the CLI is. Call from a tokio runtime.
    pub fn start(
        client: &Client,
        options: portico_controller::translate::Options,
        render: portico_controller::envoy::RenderOptions,
    ) -> Following {
        use portico_controller::kubernetes::{follow, Debounce};
        let store = KubeStore::new();
        let watchers = spawn_watchers(client, &store);
        let pushes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let problems = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (p, q) = (pushes.clone(), problems.clone());
        let sink = portico_controller::sink::FileSink::new(render.xds_dir.clone());
        let mut reconciler = Reconciler::with(KubeSource::new(store), sink, options, render);
        let task = tokio::spawn(async move {
            follow(&mut reconciler, Debounce::default(), |r, took| {
                match r {
                    Ok(r) => {
                        if let Ok(mut q) = q.lock() {
                            q.extend(r.messages().into_iter().map(|(_, l)| l));
                        }
                        if !r.written.is_empty() {
                            if let Ok(mut p) = p.lock() {
                                p.push(Push {
                                    at: Instant::now(),
                                    took,
                                    timings: r.timings,
                                    generation: r
                                        .snapshot
                                        .map(|s| s.generation)
                                        .unwrap_or_default(),
                                });
                            }
                        }
                    }
                    Err(e) => {
                        if let Ok(mut q) = q.lock() {
                            q.push(format!("sync failed: {e}"));
                        }
                    }
                }
                true
            })
            .await;
        });
        Following {
            task,
            _watchers: watchers,
            pushes,
            problems,
        }
    }

    /// How many pushes so far.
    pub fn push_count(&self) -> usize {
        self.pushes.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Waits up to `within` for push number `n` (1-based).
    ///
    /// # Errors
    /// It did not come.
    pub async fn wait_push(&self, n: usize, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        while self.push_count() < n {
            if Instant::now() > deadline {
                return Err(format!(
                    "push {n} did not come within {within:?}; problems: {:?}",
                    self.problems.lock().map(|p| p.clone()).unwrap_or_default()
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `f` every 50 ms until it gives `Some`, for at most `within` (for tests).
///
/// # Panics
/// When `within` passes first, naming `what`.
pub async fn wait_for<T>(within: Duration, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A replica for tests: `identity`, the Lease `portico-controller` in `lease_namespace` held
/// for 3 s, the CLI's debounce, no addresses to publish, no Istio attachment.
pub fn test_replica(
    identity: &str,
    lease_namespace: &str,
) -> portico_controller::kubernetes::Replica {
    portico_controller::kubernetes::Replica {
        identity: identity.into(),
        lease_namespace: lease_namespace.into(),
        lease_name: "portico-controller".into(),
        lease_duration: Duration::from_secs(3),
        debounce: portico_controller::kubernetes::Debounce::default(),
        publish_addresses: Vec::new(),
        istio: None,
    }
}

/// Runs `replica` on `client` as `run --kube` does, in a task (abort it to stop the replica):
/// its Envoy files go to `dir` (the routing module of this build, listeners on their own
/// ports); `ops` serves its metrics and probes.
pub fn spawn_replica(
    client: &Client,
    dir: &Path,
    options: portico_controller::translate::Options,
    replica: portico_controller::kubernetes::Replica,
    ops: Option<tokio::net::TcpListener>,
) -> tokio::task::JoinHandle<()> {
    let render = portico_controller::envoy::RenderOptions {
        routing_wasm: crate::proxy::routing_wasm(),
        xds_dir: dir.to_owned(),
        listen_address: "127.0.0.1".into(),
        admin_port: 0,
        port_map: BTreeMap::new(),
        sidecar_port: None,
    };
    tokio::spawn(portico_controller::kubernetes::run_replica(
        client.clone(),
        portico_controller::sink::FileSink::new(dir.to_owned()),
        options,
        render,
        replica,
        ops,
        |_, _| {},
    ))
}
