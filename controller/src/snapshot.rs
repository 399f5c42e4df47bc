//! [`Snapshot`]: everything Envoy needs, as `translate` derives it from the objects and the
//! renderer ([`crate::envoy`]) reads it. It knows nothing of Kubernetes objects.

use std::collections::BTreeMap;

use std::collections::BTreeSet;

use portico_core::config::RoutingConfig;
use portico_core::egress::EgressConfig;
use portico_core::tls::select::TlsTable;

/// A listener the snapshot needs, with its routing filter's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Port clients address (80 for Ingress HTTP).
    pub port: u16,
    /// The routing filter's configuration on this listener (every terminating chain of a TLS
    /// listener routes with it).
    pub routing: RoutingConfig,
    /// TLS: the filter chain for each SNI (`None`: plain HTTP).
    pub tls: Option<TlsTable>,
}

/// A secret Envoy reads through SDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdsSecret {
    /// A certificate chain and its private key (PEM).
    KeyPair {
        /// Certificate chain, leaf first.
        certificate_chain: String,
        /// Private key.
        private_key: String,
    },
    /// CA certificates client certificates are checked against (PEM).
    TrustedCa(String),
}

/// An Envoy cluster for one backend (used by the `cluster` forward mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `outbound|PORT||FQDN`.
    pub name: String,
    /// Ready endpoints, `ip:port`.
    pub endpoints: Vec<String>,
}

/// What the sidecar listener needs besides routing: the egress filter's configuration and the
/// ports whose connections it picks by SNI or address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarEgress {
    /// The egress filter's configuration.
    pub config: EgressConfig,
    /// Ports with TLS entries (a TLS filter chain each).
    pub tls_ports: BTreeSet<u16>,
    /// Ports with TCP entries (a TCP filter chain each, unless HTTP has the port).
    pub tcp_ports: BTreeSet<u16>,
}

/// Everything Envoy needs, derived from the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Listeners by port, each with its routing configuration.
    pub listeners: Vec<Listener>,
    /// The sidecar's outbound routing, by the destination port a client addressed.
    pub sidecar: Vec<Listener>,
    /// The sidecar's egress policy (with a sidecar).
    pub egress: Option<SidecarEgress>,
    /// Backend clusters.
    pub clusters: Vec<Cluster>,
    /// Secrets the TLS chains name, by SDS resource name.
    pub secrets: BTreeMap<String, SdsSecret>,
    /// A hash of everything above.
    pub generation: String,
}

impl Snapshot {
    /// The routing configuration of the listener on `port`.
    pub fn routing(&self, port: u16) -> Option<&RoutingConfig> {
        self.listeners
            .iter()
            .find(|l| l.port == port)
            .map(|l| &l.routing)
    }

    /// The sidecar's routing configuration for requests addressed to `port`.
    pub fn sidecar_routing(&self, port: u16) -> Option<&RoutingConfig> {
        self.sidecar
            .iter()
            .find(|l| l.port == port)
            .map(|l| &l.routing)
    }
}

/// A stable 64-bit FNV-1a hash, in hex: the version of rendered contents.
pub fn content_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
