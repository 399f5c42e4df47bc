//! What Envoy does after the filter chain: its connection manager's path normalization, and the
//! router that sends a request to the endpoint (`ORIGINAL_DST`) or the cluster it was steered to.

use std::collections::{BTreeMap, BTreeSet};

use super::{local_reply, Response};
use crate::state::Headers;

/// Envoy's answer when the upstream refuses the connection.
pub fn connect_failure() -> Response {
    local_reply(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused",
    )
}

pub use portico_envoy_path::normalize_path;

/// The router behind the chain, over a snapshot's clusters and the endpoints that answer.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    /// Cluster name → endpoints.
    pub clusters: BTreeMap<String, Vec<String>>,
    /// Endpoints with a server behind them (the echo servers of the Envoy harness).
    pub live: BTreeSet<String>,
    /// The request header whose value names the cluster (Envoy's `cluster_header` route).
    pub cluster_header: Option<String>,
    rr: BTreeMap<String, usize>,
}

/// The header Envoy's `ORIGINAL_DST` cluster reads the endpoint from when it has
/// `use_http_header: true` (Portico's has not: a filter strips any client copy).
pub const ORIGINAL_DST_HEADER: &str = "x-envoy-original-dst-host";

/// The filter state Envoy's `ORIGINAL_DST` cluster reads the endpoint from, and that the
/// listener's forwarding routes require (`match.filter_state`): only a filter can set it.
pub const ORIGINAL_DST_STATE: &str = "envoy.network.transport_socket.original_dst_address";

/// Where the router sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// To this endpoint, which answers.
    Endpoint(String),
    /// Envoy answered itself.
    Reply(Response),
}

impl Upstreams {
    /// Upstreams over clusters and the endpoints that answer.
    pub fn new(clusters: BTreeMap<String, Vec<String>>, live: BTreeSet<String>) -> Self {
        Upstreams {
            clusters,
            live,
            cluster_header: None,
            rr: BTreeMap::new(),
        }
    }

    /// Routes requests carrying `header` to the cluster it names, as a `cluster_header` route.
    pub fn with_cluster_header(mut self, header: &str) -> Self {
        self.cluster_header = Some(header.to_owned());
        self
    }

    /// Picks the endpoint as Portico's listener route table does, or Envoy's own answer. The
    /// routes forward only requests whose filters set [`ORIGINAL_DST_STATE`] (`steer`, the
    /// value Envoy sees when it picks the route: after a filter cleared the route cache): with
    /// the cluster header, to that cluster; otherwise to the state's address (`ORIGINAL_DST`).
    /// Anything else gets the 404 route, whatever headers it carries.
    pub fn pick(&mut self, headers: &Headers, steer: Option<&str>) -> Routed {
        let Some(dst) = steer else {
            return Routed::Reply(local_reply(404, "404 page not found\n"));
        };
        let named = self.cluster_header.as_deref().and_then(|name| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        });
        match named {
            Some(cluster) => self.cluster(&cluster),
            None => Routed::Endpoint(dst.to_owned()),
        }
    }

    /// One endpoint of `cluster`, round robin, as a route naming it (or a TCP proxy or an HTTP
    /// callout) gets: an unknown cluster is Envoy's 503 with an empty body (measured), one
    /// without endpoints its `no healthy upstream`.
    pub fn cluster(&mut self, cluster: &str) -> Routed {
        let Some(endpoints) = self.clusters.get(cluster) else {
            return Routed::Reply(Response {
                status: 503,
                headers: vec![],
                body: vec![],
            });
        };
        if endpoints.is_empty() {
            return Routed::Reply(local_reply(503, "no healthy upstream"));
        }
        let n = self.rr.entry(cluster.to_owned()).or_default();
        let e = endpoints[*n % endpoints.len()].clone();
        *n += 1;
        Routed::Endpoint(e)
    }

    /// [`Upstreams::pick`], then Envoy's 503 for an endpoint with no server behind it.
    pub fn route(&mut self, headers: &Headers, steer: Option<&str>) -> Routed {
        let routed = self.pick(headers, steer);
        self.reach(routed)
    }

    /// [`Upstreams::cluster`], then Envoy's 503 for an endpoint with no server behind it.
    pub fn route_to_cluster(&mut self, cluster: &str) -> Routed {
        let routed = self.cluster(cluster);
        self.reach(routed)
    }

    fn reach(&self, routed: Routed) -> Routed {
        match routed {
            Routed::Endpoint(e) if !self.live.contains(&e) => Routed::Reply(connect_failure()),
            routed => routed,
        }
    }
}
