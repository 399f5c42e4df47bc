//! `portico-controller`: Kubernetes objects in, routing-filter configuration and Envoy resources
//! out. Layers, each using only those above it:
//!
//! - [`model`]: the Kubernetes objects read, one module per API group, parsed strictly or
//!   tolerantly as the source says ([`objects`] is the old path);
//! - [`translate::translate`]: the pure translation to a [`snapshot::Snapshot`], one module per
//!   family (Ingress, Gateway API, Istio, mesh);
//! - [`envoy::render`]: the Envoy bootstrap and file-xDS resources, from the snapshot alone;
//! - [`reconcile::Reconciler`]: one sync from a [`source::Source`] (the directory:
//!   [`source::DirSource`]) to a [`sink::Sink`] ([`sink::FileSink`]: write-then-rename, the only
//!   change Envoy notices), keeping the last good version of every object and file that turns
//!   bad; [`DirController`] is the one over a manifest directory;
//! - [`kubernetes`]: the other source — watchers over a cluster ([`kubernetes::KubeSource`]),
//!   the debounced loop that follows it ([`kubernetes::follow`]) and Portico's CRD;
//! - [`attach`]: the other sink — Istio EnvoyFilters carrying the modules into istiod's proxies.

pub mod attach;
pub mod convert;
pub mod envoy;
#[cfg(feature = "cluster")]
pub mod kubernetes;
pub mod model;
pub mod objects;
pub mod package;
pub mod reconcile;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod translate;

pub use reconcile::{DirController, Reconciler, SyncReport, SyncTimings};
