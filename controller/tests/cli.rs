//! The `portico-controller` command as a user runs it: exit codes and what it blames.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const GOOD: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: default}
spec:
  ingressClassName: portico
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
";

fn controller(args: &[&str], wasm: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portico-controller"))
        .env("RUST_BACKTRACE", "1")
        .args(args)
        .arg("--routing-wasm")
        .arg(wasm)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A manifests folder with `yaml`, an output folder, and a stand-in module file.
fn setup(yaml: &str) -> (tempfile::TempDir, String, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("a.yaml"), yaml).unwrap();
    let wasm = dir.path().join("routing.wasm");
    std::fs::write(&wasm, b"\0asm").unwrap();
    let out = dir.path().join("out");
    (
        dir,
        manifests.display().to_string(),
        out.display().to_string(),
        wasm,
    )
}

#[test]
fn render_fails_when_an_object_was_left_out_unless_allowed() {
    let bad = GOOD.replace("path: /,", "path: relative,");
    let (_dir, manifests, out, wasm) = setup(&bad);
    let o = controller(&["render", "--manifests", &manifests, "--out", &out], &wasm);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("error: "), "{}", text(&o));
    assert!(text(&o).contains("--allow-errors"), "{}", text(&o));
    assert!(
        Path::new(&out).join("envoy.yaml").is_file(),
        "the files are written either way"
    );
    let o = controller(
        &[
            "render",
            "--manifests",
            &manifests,
            "--out",
            &out,
            "--allow-errors",
        ],
        &wasm,
    );
    assert!(o.status.success(), "{}", text(&o));

    let (_dir, manifests, out, wasm) = setup(GOOD);
    let o = controller(&["render", "--manifests", &manifests, "--out", &out], &wasm);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_missing_manifests_folder_or_an_unwritable_output_is_named_and_fatal() {
    let (dir, _manifests, out, wasm) = setup(GOOD);
    let missing = dir.path().join("nowhere").display().to_string();
    for cmd in ["render", "run"] {
        let flag = if cmd == "render" {
            "--out"
        } else {
            "--xds-dir"
        };
        let o = controller(&[cmd, "--manifests", &missing, flag, &out], &wasm);
        assert!(!o.status.success(), "{cmd}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("--manifests {missing}: no such directory")),
            "{cmd}: {}",
            text(&o)
        );
    }
    // An output path below a regular file cannot be created.
    let manifests = dir.path().join("manifests").display().to_string();
    let under_file = wasm.join("out").display().to_string();
    let o = controller(
        &["render", "--manifests", &manifests, "--out", &under_file],
        &wasm,
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("--out {under_file}")),
        "{}",
        text(&o)
    );
    assert!(
        !text(&o).contains("reading"),
        "the manifests are not blamed: {}",
        text(&o)
    );
}

#[test]
fn run_says_when_a_bad_edit_is_fixed() {
    let (dir, manifests, out, wasm) = setup(GOOD);
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico-controller"))
        .args([
            "run",
            "--manifests",
            &manifests,
            "--xds-dir",
            &out,
            "--interval-ms",
            "20",
        ])
        .arg("--routing-wasm")
        .arg(&wasm)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let file = dir.path().join("manifests/a.yaml");
    std::thread::sleep(Duration::from_millis(400));
    std::fs::write(&file, GOOD.replace("path: /,", "path: relative,")).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    std::fs::write(&file, GOOD).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        stderr.contains("spec.rules[0].http.paths[0].path"),
        "the bad edit is reported: {stderr}"
    );
    assert_eq!(
        stdout
            .matches("recovered: no object is left out or held at its last good version")
            .count(),
        1,
        "once, after the fix, not at start: {stdout} / {stderr}"
    );
}
