//! Portico's core: the configuration types shared by the controller and the filters, and the
//! compiled matchers that make every routing decision. No proxy-wasm, no wasmtime, no I/O.
//!
//! Entry point: [`Router::from_json`] (parse, then compile) and [`Router::decide`].
//! [`lb`] picks endpoints and weighted backends.
//!
//! ```
//! use portico_core::config::*;
//! use portico_core::{Decision, Router};
//! let mut cfg = RoutingConfig::empty("g1");
//! cfg.backends.insert("cart.default.svc.cluster.local:80".into(), Backend {
//!     cluster: "outbound|80||cart.default.svc.cluster.local".into(),
//!     endpoints: vec!["127.0.10.1:8080".into()],
//!     lb: LoadBalancer::RoundRobin,
//!     original_destination: false,
//! });
//! cfg.virtual_hosts.push(VirtualHost {
//!     name: "Ingress default/shop".into(),
//!     hosts: vec!["shop.example.com".into()],
//!     wildcard: WildcardMode::SingleLabel,
//!     order: RouteOrder::LongestPath,
//!     routes: vec![Route::new(
//!         "Ingress default/shop rules[0].http.paths[0]",
//!         PathMatch::Prefix("/cart".into()),
//!         RouteAction::to("cart.default.svc.cluster.local:80"),
//!     )],
//!     default_backend: None,
//! });
//! let router = Router::from_json(cfg.to_json().as_bytes()).unwrap();
//! assert!(matches!(router.decide_path("Shop.Example.com:80", "/cart/items?id=3"), Decision::Route { .. }));
//! assert_eq!(router.decide_path("shop.example.com", "/cartoon"), Decision::NoRoute);
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod effects;
pub mod egress;
pub mod json;
pub mod lb;
pub mod matching;
pub mod routing;
pub mod tls;

pub use routing::router::{BackendId, Decision, HeaderSource, NoHeaders, Request, Router};

/// Why a configuration was refused. Every variant names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not valid JSON for the config types (wrong type, unknown field, missing field).
    #[error("config field {path}: {message}")]
    Json {
        /// Field path, e.g. `virtualHosts[0].routes[2].path`.
        path: String,
        /// serde's message.
        message: String,
    },
    /// The `apiVersion` is not the one this filter speaks.
    #[error("config field apiVersion: got {got:?}, this filter speaks {want:?}")]
    ApiVersion {
        /// What the config said.
        got: String,
        /// What the filter speaks.
        want: &'static str,
    },
    /// A value is well-typed but unusable.
    #[error("config field {field}: {message}")]
    Invalid {
        /// Field path.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ConfigError::Json { .. } => "json",
            ConfigError::ApiVersion { .. } => "api_version",
            ConfigError::Invalid { .. } => "invalid",
        }
    }
}
