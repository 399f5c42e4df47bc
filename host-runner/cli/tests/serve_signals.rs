//! `host-runner serve` stops on SIGTERM (what a container runtime or systemd sends) as on
//! Ctrl-C, and leaves nothing behind in the temporary directory.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use portico_e2e::proxy::{free_ports, routing_wasm, wait_listening};

#[test]
fn sigterm_stops_serve_and_removes_its_scratch_directory() {
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    let tmp = work.path().join("tmp");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(
        manifests.join("svc.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: default}\nspec: {ports: [{name: http, port: 80}]}\n",
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_ports(1).unwrap()[0]));
    let mut serve = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["serve", "--listen", &addr.to_string(), "--manifests"])
        .arg(&manifests)
        .arg("--routing-wasm")
        .arg(routing_wasm())
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_listening(addr, Duration::from_secs(30)),
        "serve did not start"
    );
    let scratch = |tmp: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("host-runner-serve-"))
            .collect()
    };
    assert_eq!(
        scratch(&tmp).len(),
        1,
        "serve keeps its xDS scratch files in TMPDIR"
    );
    let status = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t0 = Instant::now();
    let exit = loop {
        if let Some(exit) = serve.try_wait().unwrap() {
            break exit;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = serve.kill();
            panic!("serve did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(scratch(&tmp).is_empty(), "left behind: {:?}", scratch(&tmp));
}
