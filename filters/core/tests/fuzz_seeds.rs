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
mod re2 {
    include!("../../../fuzz/checks/re2.rs");
}

mod corpus {
    include!("../../../fuzz/checks/seeds.rs");
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    corpus::seeds(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"),
        target,
    )
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

#[test]
fn re2_seeds() {
    for (name, data) in seeds("re2") {
        eprintln!("{name}");
        re2::check(&data);
    }
}
