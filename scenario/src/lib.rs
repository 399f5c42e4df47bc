//! `portico-scenario`: the scenario format every Portico test host shares — what a user would
//! `kubectl apply`, then requests and what must happen to them — and the one driver that runs
//! scenario files on any [`Host`].
//!
//! - [`format`]: the file format (unknown keys are errors), observations, URLs;
//! - [`prepare`]: objects parsed and translated as the controller does; each request planned;
//! - [`check`]: what a host observed against what a request expects;
//! - [`tls`]: the client side of TLS requests (a real ClientHello, the name of the certificate
//!   a passthrough backend serves);
//! - [`convert`]: the objects as `portico-controller convert` makes Gateway API of their Ingresses
//!   (`--converted` runs);
//! - [`explain`]: one request against objects, step by step (`host-runner explain`, the
//!   playground);
//! - [`driver`]: the [`Host`] trait and [`run_paths`], which prints each file's result and the
//!   closing line `N passed, M failed`.
//!
//! Hosts: `host-runner scenario` (the filters on wasmtime) and `portico-e2e run` (a real Envoy).

pub mod check;
pub mod convert;
pub mod driver;
pub mod explain;
pub mod format;
pub mod prepare;
pub mod tls;

pub use driver::{run_paths, Host, RequestResult, RunOptions, Summary};

use std::path::{Path, PathBuf};

/// Header the echo backends set on their answers (`x-portico-echo: <endpoint>`): a host knows an
/// echo answer by it.
pub const ECHO_HEADER: &str = "x-portico-echo";

/// The workspace root (where `.tools/` and `target/` live) of the build that made this binary.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The routing filter module: `$PORTICO_ROUTING_WASM`, else the one `just build` makes.
pub fn routing_wasm() -> PathBuf {
    std::env::var_os("PORTICO_ROUTING_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join("target/wasm32-wasip1/wasm/portico_filter_routing.wasm")
        })
}
