//! `portico-e2e`: Portico's real-Envoy test harness.
//!
//! - [`runner::EnvoyHost`]: the scenario driver's host (`portico-scenario`) on a real Envoy
//!   running the routing filter;
//! - [`echo`]: the echo backend every endpoint runs; [`client`]: the test client;
//! - [`proxy::Envoy`]: a real Envoy process; [`demo::run`]: `just demo`;
//! - [`live::Live`]: the controller following its directory under client load;
//! - [`kube`]: the test Kubernetes API server, CRDs, and scenario objects applied to it;
//! - [`istio`]: Envoy configured as istiod would, with Portico's EnvoyFilters merged in;
//! - [`envoy_gateway`]: Envoy configured as Envoy Gateway would, with Portico's
//!   EnvoyExtensionPolicies and EnvoyPatchPolicies applied.

pub mod bench;
pub mod client;
pub mod demo;
pub mod echo;
pub mod envoy_gateway;
pub mod fixture;
pub mod istio;
pub mod kube;
pub mod kube_bench;
pub mod live;
pub mod proxy;
pub mod runner;
