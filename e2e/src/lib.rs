//! `portico-e2e`: Portico's real-Envoy test harness.
//!
//! - [`scenario`]: the scenario format shared by every test host (parse, validate, check);
//! - [`runner::run_paths`]: scenarios through a real Envoy running the routing filter;
//! - [`echo`]: the echo backend every endpoint runs; [`client`]: the test client;
//! - [`proxy::Envoy`]: a real Envoy process; [`demo::run`]: `just demo`.

pub mod bench;
pub mod client;
pub mod demo;
pub mod echo;
pub mod proxy;
pub mod runner;
pub mod scenario;
