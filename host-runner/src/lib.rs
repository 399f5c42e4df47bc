//! `portico-host-runner`: a proxy-wasm ABI 0.2.1 (and 0.2.0) host on wasmtime, to run and test
//! proxy-wasm modules — Portico's and anyone's — without Envoy.
//!
//! Entry points: [`Runtime::new`] (one "Envoy process": engine, metrics, shared data, queues),
//! [`Runtime::compile`] (once per module), [`Runtime::start_vm`] (one VM per worker, WASI preview 1
//! attached), then [`Vm::start_plugin`] and the stream callbacks ([`Vm::create_http_context`],
//! [`Vm::on_request_headers`], …, [`Vm::finish`]) in Envoy's order. Everything lives in the
//! wasmtime `Store` of each VM and in its runtime: no globals, so tests run in parallel.
//!
//! [`envoy`] emulates what Envoy does around the filters (the filter chain, failure policies, the
//! router, connection-manager path normalization), so a test harness can send requests through
//! a chain of modules as Envoy would.
//!
//! This crate knows nothing of Portico: Portico's scenario files and local proxy live in the
//! `host-runner` command (`host-runner/cli`), which implements the scenario driver on it.

pub mod abi;
pub mod envoy;
mod imports;
pub mod state;
mod vm;

pub use abi::{AbiVersion, Action};
pub use state::{Headers, HostState, Stream};
pub use vm::{HostError, Module, Runtime, Vm};
