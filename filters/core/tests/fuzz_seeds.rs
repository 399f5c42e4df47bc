//! The committed seeds of the fuzz targets (`fuzz/corpus/<target>/seed-*`), replayed through the
//! same checks the fuzzers run (`fuzz/checks/<target>.rs`): `cargo test` keeps every seed, and
//! every crash turned into a seed, passing. See docs/fuzzing.md.

use std::path::Path;

mod route_request {
    include!("../../../fuzz/checks/route_request.rs");
}
mod configs {
    include!("../../../fuzz/checks/configs.rs");
}
mod egress_verdict {
    include!("../../../fuzz/checks/egress_verdict.rs");
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn route_request_seeds() {
    for (name, data) in seeds("route_request") {
        eprintln!("{name}");
        route_request::check(&data);
    }
}

#[test]
fn configs_seeds() {
    for (name, data) in seeds("configs") {
        eprintln!("{name}");
        configs::check(&data);
    }
}

#[test]
fn egress_verdict_seeds() {
    for (name, data) in seeds("egress_verdict") {
        eprintln!("{name}");
        egress_verdict::check(&data);
    }
}
