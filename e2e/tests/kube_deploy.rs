//! What a user applies, applied with `kubectl` to a real API server (the test server of
//! `../shared/tools/kube-apiserver`, with the Gateway API and Istio CRDs as the harness installs
//! them): the kustomization of `deploy/` as `kubectl apply -k` renders it, then `deploy/istio/`
//! (the EnvoyFilters of the demo and the `--istio` RBAC). The test server does not serve RBAC,
//! ServiceAccounts or Deployments (it runs no controllers): those are rendered and counted, the
//! rest — namespace, Portico's CRD, the metrics Service, a PorticoConfig, the EnvoyFilters — is
//! applied and must be accepted.

use std::process::Command;

use kube::api::{Api, Patch, PatchParams};
use portico_e2e::kube::{foreign_crds, TestApiServer};

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(root)
        .output()
        .expect("kubectl runs (it is on the machine; `just setup` says so when not)");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_deploy_directory() {
    let server = tokio::task::spawn_blocking(|| TestApiServer::start("deploy"))
        .await
        .unwrap()
        .unwrap();
    let client = server.client().await.unwrap();
    // The Gateway API and Istio CRDs a cluster running them has (EnvoyFilter among them).
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in foreign_crds() {
        let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
        crds.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    let config = &server.kubeconfig;
    let rendered = kubectl(config, &["kustomize", "deploy/"]);
    let applied = apply_served(config, &rendered);
    for what in [
        "namespace/portico-system",
        "customresourcedefinition.apiextensions.k8s.io/porticoconfigs.portico.dev",
        "service/portico-controller-metrics",
    ] {
        assert!(applied.contains(what), "{what} not applied:\n{applied}");
    }
    kubectl(
        config,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=20s",
            "crd/porticoconfigs.portico.dev",
        ],
    );
    // A PorticoConfig the new CRD takes.
    apply_served(
        config,
        "apiVersion: portico.dev/v1alpha1\nkind: PorticoConfig\nmetadata: {name: edge, namespace: portico-system}\nspec: {fakeCertificate: true}\n",
    );

    kubectl(config, &["create", "namespace", "istio-system"]);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/istio");
    let mut istio = String::new();
    for f in ["envoyfilters.yaml", "rbac.yaml"] {
        istio.push_str(&std::fs::read_to_string(root.join(f)).unwrap());
        istio.push_str("\n---\n");
    }
    let applied = apply_served(config, &istio);
    assert!(
        applied.contains("envoyfilter.networking.istio.io/portico-gateway"),
        "{applied}"
    );
    let got = kubectl(
        config,
        &["get", "envoyfilters", "-n", "istio-system", "-o", "name"],
    );
    assert!(got.contains("portico-gateway"), "{got}");
}

/// Kinds the test API server does not serve (see its README).
const NOT_SERVED: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Deployment",
];

/// Applies the documents of `yaml` whose kind the test server serves with `kubectl apply -f -`
/// and returns kubectl's output; the others must be of [`NOT_SERVED`] kinds and well-formed.
fn apply_served(config: &std::path::Path, yaml: &str) -> String {
    let mut served = String::new();
    for doc in portico_controller::source::documents(yaml).unwrap() {
        let kind = doc["kind"].as_str().unwrap_or_default();
        assert!(
            doc["apiVersion"].is_string() && doc["metadata"]["name"].is_string(),
            "{doc}"
        );
        if NOT_SERVED.contains(&kind) {
            continue;
        }
        served.push_str("---\n");
        served.push_str(&serde_yaml::to_string(&doc).unwrap());
    }
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(config)
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(served.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
