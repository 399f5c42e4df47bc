//! What the routing filter does with one request, decided without a host: the [`Planner`] turns
//! the request's headers (and, on demand, the client and destination addresses) into a
//! [`Plan`] — header edits, a local reply or the steering header for Envoy's router, a delay,
//! mirror copies, counters — and the filter's glue only carries it out. The response phase gets
//! its header edits from [`Planner::response`], with what the request phase left in a [`Memo`].
//!
//! Policy lives here, in the order Envoy's filters apply it: steering headers from the client are
//! dropped; the route is decided; client ranges (403); CORS (a preflight is answered; an allowed
//! origin is remembered for the response); faults (delay, then abort, each sampled on its own);
//! then the action: a direct response, a redirect, or a forward — the route's header changes,
//! then the picked backend's, the upstream policy headers, a rewrite, mirror copies of the final
//! request, and the endpoint (or cluster) Envoy's router goes to.

use std::cell::RefCell;
use std::net::IpAddr;

use crate::config::{
    ForwardMode, HashKey, HeaderMods, LoadBalancer, CLUSTER_HEADER, ORIGINAL_DST_HEADER,
};
pub use crate::effects::{HeaderEdit, Reply};
use crate::lb::{rendezvous, InFlight, Random, RoundRobin, WeightedRoundRobin};
use crate::matching::cidr;
use crate::routing::router::{Action, BackendId, Decision, Request, Router};

/// The counters the routing filter keeps, in metric-id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handed to Envoy's router.
    Forwarded = 0,
    /// No route: 404.
    NoRoute = 1,
    /// The backend has no ready endpoint: 503.
    NoEndpoints = 2,
    /// Redirected.
    Redirected = 3,
    /// Answered locally (direct response, abort, CORS preflight, client range 403).
    Responded = 4,
    /// No usable backend (every weight 0, or an unresolved reference): 500.
    NoBackend = 5,
    /// A mirror copy was sent (counted by the glue when it sends one).
    Mirrored = 6,
    /// The request was held by an injected delay.
    Delayed = 7,
}

impl Outcome {
    /// Prometheus names of the counters, indexed by `Outcome as usize`.
    pub const METRIC_NAMES: [&'static str; 8] = [
        "portico_routing_forwarded_total",
        "portico_routing_no_route_total",
        "portico_routing_no_endpoints_total",
        "portico_routing_redirected_total",
        "portico_routing_direct_response_total",
        "portico_routing_no_backend_total",
        "portico_routing_mirrored_total",
        "portico_routing_delayed_total",
    ];
}

/// A copy of the request for a mirror backend: the cluster and the headers to send (the body
/// follows the request's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorCopy {
    /// Envoy cluster of the mirror backend.
    pub cluster: String,
    /// The final request headers, without steering headers, `:authority` with Envoy's `-shadow`.
    pub headers: Vec<(String, String)>,
}

/// What the response phase and the end of the stream need from the request phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memo {
    route: Option<(usize, usize)>,
    backend_filters: Option<usize>,
    cors_origin: Option<String>,
    in_flight: Option<String>,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Request header changes, in order (steering headers included).
    pub edits: Vec<HeaderEdit>,
    /// A local answer; `None`: continue to Envoy's router.
    pub reply: Option<Reply>,
    /// Hold the request (and its reply, if any) this many milliseconds first.
    pub delay_ms: Option<u64>,
    /// Copies to send once the request body is complete.
    pub mirrors: Vec<MirrorCopy>,
    /// Counters to bump.
    pub counts: Vec<Outcome>,
    /// Kept for [`Planner::response`] and [`Planner::done`].
    pub memo: Memo,
}

impl Plan {
    fn new() -> Plan {
        Plan {
            edits: Vec::new(),
            reply: None,
            delay_ms: None,
            mirrors: Vec::new(),
            counts: Vec::new(),
            memo: Memo::default(),
        }
    }

    fn reply(mut self, outcome: Outcome, reply: Reply) -> Plan {
        self.counts.push(outcome);
        self.reply = Some(reply);
        self
    }
}

/// Addresses the plan may need; each read can cost a host call, so the planner asks only when a
/// route needs one.
pub trait Peer {
    /// The client's address (`ip:port` or `ip`).
    fn source(&self) -> Option<String>;
    /// The address the client connected to (the original destination), `ip:port`.
    fn destination(&self) -> Option<String>;
}

/// Fixed addresses (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct FixedPeer {
    /// See [`Peer::source`].
    pub source: Option<String>,
    /// See [`Peer::destination`].
    pub destination: Option<String>,
}

impl Peer for FixedPeer {
    fn source(&self) -> Option<String> {
        self.source.clone()
    }
    fn destination(&self) -> Option<String> {
        self.destination.clone()
    }
}

/// Which sampler: each fault and each mirror of a route samples on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sampler {
    Delay(usize, usize),
    Abort(usize, usize),
    /// Route, list (0: the route's, 1: the picked backend's), mirror index.
    Mirror(usize, usize, u8, usize),
}

/// Per-worker load-balancing state.
#[derive(Debug)]
struct Balancers {
    rr: RoundRobin,
    split: WeightedRoundRobin,
    samplers: WeightedRoundRobin<Sampler>,
    random: Random,
    inflight: InFlight,
}

/// The routing filter's policy for one worker: the compiled router and the load-balancing state.
#[derive(Debug)]
pub struct Planner {
    router: Router,
    state: RefCell<Balancers>,
}

/// The request headers as the plan edits them: reads see earlier edits.
struct Working {
    headers: Vec<(String, String)>,
    edits: Vec<HeaderEdit>,
}

impl Working {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: &str, value: Option<&str>) {
        let mut first = None;
        let mut i = 0;
        self.headers.retain(|(k, _)| {
            let keep = !k.eq_ignore_ascii_case(name) || (first.is_none() && value.is_some());
            if keep && first.is_none() && k.eq_ignore_ascii_case(name) {
                first = Some(i);
            }
            i += usize::from(keep);
            keep
        });
        match (value, first) {
            (Some(v), Some(at)) => self.headers[at].1 = v.to_owned(),
            (Some(v), None) => self.headers.push((name.to_owned(), v.to_owned())),
            (None, _) => {}
        }
        self.edits.push((name.to_owned(), value.map(str::to_owned)));
    }
}

impl HeaderAccess for Working {
    fn get(&self, name: &str) -> Option<String> {
        Working::get(self, name).map(str::to_owned)
    }
    fn set(&mut self, name: &str, value: Option<&str>) {
        Working::set(self, name, value);
    }
}

/// Response headers as the plan edits them: the host's, under the edits made so far.
struct ResponseOverlay<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    edits: Vec<HeaderEdit>,
}

impl HeaderAccess for ResponseOverlay<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match self
            .edits
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => v.clone(),
            None => (self.get)(name),
        }
    }
    fn set(&mut self, name: &str, value: Option<&str>) {
        self.edits.push((name.to_owned(), value.map(str::to_owned)));
    }
}

/// A header map the plan reads and edits.
trait HeaderAccess {
    fn get(&self, name: &str) -> Option<String>;
    fn set(&mut self, name: &str, value: Option<&str>);
}

/// Header changes as Envoy's header mutations apply them: remove, then set, then add (appended
/// to an existing value with a comma), each reading the result of the one before.
fn apply_mods(mods: &HeaderMods, h: &mut impl HeaderAccess) {
    for name in &mods.remove {
        h.set(name, None);
    }
    for (name, value) in &mods.set {
        h.set(name, Some(value));
    }
    for (name, value) in &mods.add {
        let joined = match h.get(name) {
            Some(old) => format!("{old},{value}"),
            None => value.clone(),
        };
        h.set(name, Some(&joined));
    }
}

/// Envoy's shadow host: `-shadow` after the host name, before any port.
pub fn shadow_host(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}-shadow:{port}")
        }
        _ => format!("{authority}-shadow"),
    }
}

/// The IP of an `ip:port` or bare `ip` address.
fn ip_of(addr: &str) -> Option<IpAddr> {
    addr.parse::<std::net::SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| addr.parse())
        .ok()
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The first value of query parameter `name` in a path.
fn query_parameter<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let query = path.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

impl Planner {
    /// A planner for `router`, its random choices seeded with `seed`.
    pub fn new(router: Router, seed: u64) -> Planner {
        Planner {
            router,
            state: RefCell::new(Balancers {
                rr: RoundRobin::default(),
                split: WeightedRoundRobin::default(),
                samplers: WeightedRoundRobin::default(),
                random: Random::new(seed),
                inflight: InFlight::default(),
            }),
        }
    }

    /// The compiled router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    fn sample(&self, key: Sampler, weights: &[u32; 2]) -> bool {
        self.state.borrow_mut().samplers.pick(key, weights) == Some(0)
    }

    /// Plans a request from all its headers (pseudo-headers included).
    pub fn request(&self, headers: Vec<(String, String)>, peer: &dyn Peer) -> Plan {
        let mut plan = Plan::new();
        let mut w = Working {
            headers,
            edits: Vec::new(),
        };
        // Steering headers are ours alone: drop whatever the client sent before anything else.
        for name in [ORIGINAL_DST_HEADER, CLUSTER_HEADER] {
            if w.get(name).is_some() {
                w.set(name, None);
            }
        }
        self.decide(&mut plan, &mut w, peer);
        plan.edits = w.edits;
        plan
    }

    fn decide(&self, plan: &mut Plan, w: &mut Working, peer: &dyn Peer) {
        let router = &self.router;
        let pseudo = |w: &Working, name: &str| w.get(name).unwrap_or("").to_owned();
        let (authority, path, method) = (
            pseudo(w, ":authority"),
            pseudo(w, ":path"),
            pseudo(w, ":method"),
        );
        // The client address may cost a host call: read only when a route matches on it.
        let source = if router.needs_source() {
            peer.source().as_deref().and_then(ip_of)
        } else {
            None
        };
        let decision = router.decide(&Request {
            authority: &authority,
            path: &path,
            method: &method,
            headers: &w.headers,
            source,
        });
        let (vhost, index) = match decision {
            Decision::NoRoute if router.passes_through(&authority) => {
                // ALLOW_ANY: on to where the client was going (the PROXY header / iptables
                // redirect's original destination), as Istio's PassthroughCluster.
                match peer.destination() {
                    Some(dst) => {
                        w.set(ORIGINAL_DST_HEADER, Some(&dst));
                        plan.counts.push(Outcome::Forwarded);
                    }
                    None => {
                        *plan = std::mem::replace(plan, Plan::new())
                            .reply(Outcome::NoRoute, Reply::text(404, "404 page not found\n"));
                    }
                }
                return;
            }
            Decision::NoRoute => {
                *plan = std::mem::replace(plan, Plan::new())
                    .reply(Outcome::NoRoute, Reply::text(404, "404 page not found\n"));
                return;
            }
            Decision::Default { backend, .. } => {
                self.forward(plan, w, backend, peer);
                return;
            }
            Decision::Route { vhost, route } => (vhost, route),
        };
        let route = router.route(vhost, index);
        plan.memo.route = Some((vhost, index));
        let reply = |plan: &mut Plan, outcome: Outcome, r: Reply| {
            plan.counts.push(outcome);
            plan.reply = Some(r);
        };
        if let Some(ranges) = &route.client_ranges {
            if !cidr::admitted(ranges, source) {
                return reply(
                    plan,
                    Outcome::Responded,
                    Reply::text(403, "403 Forbidden\n"),
                );
            }
        }
        // Envoy's CORS filter (before faults and the router): answer an allowed preflight,
        // remember an allowed origin for the response.
        if let Some(cors) = &route.cors {
            let origin = pseudo(w, "origin");
            if cors.allows(&origin) {
                if cors.nginx() {
                    // ingress-nginx: every OPTIONS from an allowed origin gets 204 and the headers.
                    if method == "OPTIONS" {
                        let mut headers = cors.nginx_headers(&origin);
                        headers.push(("content-type".into(), "text/plain charset=UTF-8".into()));
                        let r = Reply {
                            status: 204,
                            headers,
                            body: Vec::new(),
                        };
                        return reply(plan, Outcome::Responded, r);
                    }
                } else {
                    let asked = pseudo(w, "access-control-request-method");
                    if method == "OPTIONS" && !asked.is_empty() {
                        let headers = cors.preflight(
                            &origin,
                            &asked,
                            &pseudo(w, "access-control-request-headers"),
                        );
                        let r = Reply {
                            status: 200,
                            headers,
                            body: Vec::new(),
                        };
                        return reply(plan, Outcome::Responded, r);
                    }
                }
                plan.memo.cors_origin = Some(origin);
            }
        }
        // Envoy's fault filter: the delay first, then the abort, each sampled on its own.
        plan.delay_ms = route
            .delay
            .filter(|(_, weights)| self.sample(Sampler::Delay(vhost, index), weights))
            .map(|(ms, _)| ms);
        if plan.delay_ms.is_some() {
            plan.counts.push(Outcome::Delayed);
        }
        if let Some((status, weights)) = route.abort {
            if self.sample(Sampler::Abort(vhost, index), &weights) {
                let r = Reply::text(u32::from(status), "fault filter abort");
                return reply(plan, Outcome::Responded, r);
            }
        }
        let scheme = match pseudo(w, ":scheme") {
            s if s.is_empty() => "http".to_owned(),
            s => s,
        };
        let redirect = |r: &crate::config::Redirect| Reply {
            status: u32::from(r.status.unwrap_or(302)),
            headers: vec![(
                "location".into(),
                route.redirect_location(r, &scheme, &authority, &path, router.port()),
            )],
            body: Vec::new(),
        };
        match &route.action {
            Action::Respond { status, body } => {
                reply(
                    plan,
                    Outcome::Responded,
                    Reply::text(u32::from(*status), body),
                );
            }
            Action::Redirect(r) => reply(plan, Outcome::Redirected, redirect(r)),
            Action::Forward {
                backends,
                rewrite,
                filters,
            } => {
                let weights: Vec<u32> = backends.iter().map(|(_, w)| *w).collect();
                let picked = self
                    .state
                    .borrow_mut()
                    .split
                    .pick((vhost, index), &weights)
                    .and_then(|i| backends[i].0.map(|id| (i, id)));
                let Some((i, id)) = picked else {
                    // Every weight is 0, or the pick is a reference that did not resolve.
                    let r = Reply::text(500, "500 no usable backend\n");
                    return reply(plan, Outcome::NoBackend, r);
                };
                // The picked backend's own filters come after the route's.
                let own = filters.get(i).and_then(Option::as_deref);
                plan.memo.backend_filters = own.map(|_| i);
                apply_mods(&route.request_headers, w);
                if let Some(f) = own {
                    apply_mods(&f.request_headers, w);
                }
                for (name, value) in &route.upstream_headers {
                    w.set(name, Some(value));
                }
                if let Some(r) = own.and_then(|f| f.redirect.as_ref()) {
                    return reply(plan, Outcome::Redirected, redirect(r));
                }
                if let Some(rw) = own.and_then(|f| f.rewrite.as_ref()).or(rewrite.as_ref()) {
                    if let Some(host) = &rw.host {
                        w.set(":authority", Some(host));
                    }
                    if let Some(p) = &rw.path {
                        w.set(":path", Some(&route.rewrite_path(p, &path)));
                    }
                }
                let own_mirrors = own.map_or(&[][..], |f| f.mirrors.as_slice());
                for (list, mirrors) in [&route.mirrors[..], own_mirrors].into_iter().enumerate() {
                    for (m, (id, weights)) in mirrors.iter().enumerate() {
                        let key = Sampler::Mirror(vhost, index, list as u8, m);
                        if self.sample(key, weights) {
                            plan.mirrors.push(MirrorCopy {
                                cluster: router.backend(*id).cluster.clone(),
                                headers: mirror_headers(&w.headers),
                            });
                        }
                    }
                }
                self.forward(plan, w, id, peer);
            }
        }
    }

    /// The value a consistent hash is computed over, if the request has it.
    fn hash_key(w: &Working, key: &HashKey, peer: &dyn Peer) -> Option<String> {
        match key {
            HashKey::Header(name) => w.get(name).map(str::to_owned),
            HashKey::Cookie(name) => w
                .get("cookie")
                .and_then(|c| cookie(c, name))
                .map(str::to_owned),
            HashKey::SourceIp => {
                let addr = peer.source()?;
                Some(ip_of(&addr).map_or(addr, |ip| ip.to_string()))
            }
            HashKey::Path => w.get(":path").map(str::to_owned),
            HashKey::QueryParameter(name) => w
                .get(":path")
                .and_then(|p| query_parameter(p, name))
                .map(str::to_owned),
        }
    }

    /// Hands the request to Envoy for `backend`: one ready endpoint, or its cluster.
    fn forward(&self, plan: &mut Plan, w: &mut Working, id: BackendId, peer: &dyn Peer) {
        let router = &self.router;
        let backend = router.backend(id);
        let no_endpoints = |plan: &mut Plan| {
            plan.counts.push(Outcome::NoEndpoints);
            plan.reply = Some(Reply::text(503, "503 no ready endpoints\n"));
        };
        // A load balancer other than round robin is the filter's to apply, whatever the mode:
        // Envoy's cluster would only rotate.
        let mode = if backend.lb.is_round_robin() {
            router.forward_mode()
        } else {
            ForwardMode::Endpoint
        };
        match mode {
            ForwardMode::Endpoint => {
                let n = backend.endpoints.len();
                let pick = match &backend.lb {
                    _ if n == 0 => None,
                    LoadBalancer::RoundRobin => self.state.borrow_mut().rr.pick(id, n),
                    LoadBalancer::Random => Some(self.state.borrow_mut().random.below(n)),
                    LoadBalancer::LeastRequest => {
                        let i = self.state.borrow_mut().inflight.pick(&backend.endpoints);
                        plan.memo.in_flight = i.map(|i| backend.endpoints[i].clone());
                        i
                    }
                    LoadBalancer::ConsistentHash { key } => match Self::hash_key(w, key, peer) {
                        Some(k) => rendezvous(k.as_bytes(), &backend.endpoints),
                        None => self.state.borrow_mut().rr.pick(id, n),
                    },
                };
                let Some(endpoint) = pick.and_then(|i| backend.endpoints.get(i)) else {
                    return no_endpoints(plan);
                };
                w.set(ORIGINAL_DST_HEADER, Some(endpoint));
            }
            ForwardMode::Cluster => {
                if backend.endpoints.is_empty() {
                    return no_endpoints(plan);
                }
                w.set(CLUSTER_HEADER, Some(&backend.cluster));
            }
        }
        plan.counts.push(Outcome::Forwarded);
    }

    /// The response header changes for a request planned with `memo`: the route's, the CORS
    /// headers for an allowed origin, then the picked backend's. `get` reads a response header.
    pub fn response(&self, memo: &Memo, get: &dyn Fn(&str) -> Option<String>) -> Vec<HeaderEdit> {
        let Some((vhost, index)) = memo.route else {
            return Vec::new();
        };
        let route = self.router.route(vhost, index);
        let mut out = ResponseOverlay {
            get,
            edits: Vec::new(),
        };
        apply_mods(&route.response_headers, &mut out);
        if let (Some(origin), Some(cors)) = (memo.cors_origin.as_deref(), &route.cors) {
            if cors.nginx() {
                for (name, value) in cors.nginx_headers(origin) {
                    out.set(&name, Some(&value));
                }
                return out.edits;
            }
            out.set("access-control-allow-origin", Some(origin));
            if cors.credentials() {
                out.set("access-control-allow-credentials", Some("true"));
            }
            if let Some(expose) = cors.expose() {
                out.set("access-control-expose-headers", Some(&expose));
            }
        }
        if let (Some(i), Action::Forward { filters, .. }) = (memo.backend_filters, &route.action) {
            if let Some(f) = filters.get(i).and_then(Option::as_deref) {
                apply_mods(&f.response_headers, &mut out);
            }
        }
        out.edits
    }

    /// The request planned with `memo` has ended (releases its least-request slot).
    pub fn done(&self, memo: &mut Memo) {
        if let Some(endpoint) = memo.in_flight.take() {
            self.state.borrow_mut().inflight.done(&endpoint);
        }
    }
}

/// A mirror copy's headers: the request's, without steering headers, with Envoy's shadow host.
fn mirror_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case(ORIGINAL_DST_HEADER) && !k.eq_ignore_ascii_case(CLUSTER_HEADER)
        })
        .map(|(k, v)| {
            let v = if k == ":authority" {
                shadow_host(v)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::config::{
        Abort, Backend, BackendFilters, ClientRanges, Cors, Mirror, PathMatch, PathRewrite,
        Redirect, Rewrite, Route, RouteAction, RouteOrder, RoutingConfig, StringMatch, VirtualHost,
        WeightedBackend, WildcardMode,
    };

    fn backend(endpoints: &[&str]) -> Backend {
        Backend {
            cluster: "outbound|80||svc".into(),
            endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
            lb: LoadBalancer::RoundRobin,
        }
    }

    /// One listed host `shop.example.com` with `routes`, backends `a` (two endpoints), `b`
    /// (one) and `empty` (none).
    fn planner(routes: Vec<Route>, tweak: impl FnOnce(&mut RoutingConfig)) -> Planner {
        let mut c = RoutingConfig::empty("t");
        c.backends
            .insert("a".into(), backend(&["127.0.0.1:1", "127.0.0.2:1"]));
        c.backends.insert("b".into(), backend(&["127.0.0.3:1"]));
        c.backends.insert("empty".into(), backend(&[]));
        c.virtual_hosts.push(VirtualHost {
            name: "shop".into(),
            hosts: vec!["shop.example.com".into()],
            wildcard: WildcardMode::SingleLabel,
            order: RouteOrder::Listed,
            routes,
            default_backend: None,
        });
        tweak(&mut c);
        Planner::new(Router::try_from(c).unwrap(), 7)
    }

    fn req(method: &str, url_path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut h = vec![
            (":method".to_owned(), method.to_owned()),
            (":scheme".to_owned(), "http".to_owned()),
            (":authority".to_owned(), "shop.example.com".to_owned()),
            (":path".to_owned(), url_path.to_owned()),
        ];
        h.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        h
    }

    fn edit(plan: &Plan, name: &str) -> Option<Option<String>> {
        plan.edits
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn to_a(name: &str, path: &str) -> Route {
        Route::new(name, PathMatch::Prefix(path.into()), RouteAction::to("a"))
    }

    /// A peer that counts how often it is asked.
    #[derive(Default)]
    struct Counting {
        asked: Cell<u32>,
        source: Option<String>,
    }

    impl Peer for Counting {
        fn source(&self) -> Option<String> {
            self.asked.set(self.asked.get() + 1);
            self.source.clone()
        }
        fn destination(&self) -> Option<String> {
            self.asked.set(self.asked.get() + 1);
            Some("127.0.9.9:8080".into())
        }
    }

    #[test]
    fn unknown_host_is_404_and_client_steering_headers_are_dropped() {
        let p = planner(vec![to_a("r", "/")], |_| {});
        let mut h = req("GET", "/", &[(ORIGINAL_DST_HEADER, "10.0.0.1:80")]);
        h[2].1 = "other.example.com".into();
        let peer = Counting::default();
        let plan = p.request(h, &peer);
        assert_eq!(plan.reply.as_ref().map(|r| r.status), Some(404));
        assert_eq!(plan.counts, vec![Outcome::NoRoute]);
        assert_eq!(edit(&plan, ORIGINAL_DST_HEADER), Some(None));
        assert_eq!(
            peer.asked.get(),
            0,
            "no address is read when no route needs one"
        );
    }

    #[test]
    fn forwards_round_robin_to_endpoints_or_to_the_cluster() {
        let p = planner(vec![to_a("r", "/")], |_| {});
        let peer = FixedPeer::default();
        let picks: Vec<_> = (0..4)
            .map(|_| {
                let plan = p.request(req("GET", "/x", &[]), &peer);
                assert!(plan.reply.is_none());
                assert_eq!(plan.counts, vec![Outcome::Forwarded]);
                edit(&plan, ORIGINAL_DST_HEADER).flatten().unwrap()
            })
            .collect();
        assert_eq!(
            picks,
            ["127.0.0.1:1", "127.0.0.2:1", "127.0.0.1:1", "127.0.0.2:1"]
        );

        let p = planner(vec![to_a("r", "/")], |c| c.forward = ForwardMode::Cluster);
        let plan = p.request(req("GET", "/x", &[]), &peer);
        assert_eq!(
            edit(&plan, CLUSTER_HEADER).flatten().as_deref(),
            Some("outbound|80||svc")
        );
        assert_eq!(edit(&plan, ORIGINAL_DST_HEADER), None);
    }

    #[test]
    fn no_ready_endpoint_is_503_and_no_usable_backend_is_500() {
        let empty = Route::new("e", PathMatch::Exact("/e".into()), RouteAction::to("empty"));
        let zero = Route::new(
            "z",
            PathMatch::Exact("/z".into()),
            RouteAction::Forward {
                backends: vec![WeightedBackend {
                    backend: Some("a".into()),
                    weight: 0,
                    filters: BackendFilters::default(),
                }],
                rewrite: None,
            },
        );
        let p = planner(vec![empty, zero], |_| {});
        let plan = p.request(req("GET", "/e", &[]), &FixedPeer::default());
        assert_eq!(plan.reply.map(|r| r.status), Some(503));
        assert_eq!(plan.counts, vec![Outcome::NoEndpoints]);
        let plan = p.request(req("GET", "/z", &[]), &FixedPeer::default());
        assert_eq!(plan.reply.map(|r| r.status), Some(500));
        assert_eq!(plan.counts, vec![Outcome::NoBackend]);
    }

    #[test]
    fn header_changes_route_then_backend_then_upstream_then_rewrite() {
        let mut r = Route::new(
            "r",
            PathMatch::Prefix("/api".into()),
            RouteAction::Forward {
                backends: vec![WeightedBackend {
                    backend: Some("b".into()),
                    weight: 1,
                    filters: BackendFilters {
                        request_headers: HeaderMods {
                            add: vec![("x-tag".into(), "backend".into())],
                            ..HeaderMods::default()
                        },
                        response_headers: HeaderMods {
                            set: vec![("x-served-by".into(), "b".into())],
                            ..HeaderMods::default()
                        },
                        ..BackendFilters::default()
                    },
                }],
                rewrite: Some(Rewrite {
                    host: Some("internal".into()),
                    path: Some(PathRewrite::Prefix("/v2".into())),
                }),
            },
        );
        r.request_headers = HeaderMods {
            set: vec![("x-tag".into(), "route".into())],
            add: vec![("x-list".into(), "two".into())],
            remove: vec!["x-secret".into()],
        };
        r.response_headers.add = vec![("x-trace".into(), "portico".into())];
        r.upstream.timeout_ms = Some(500);
        let p = planner(vec![r], |_| {});
        let h = req(
            "GET",
            "/api/items?q=1",
            &[("x-list", "one"), ("x-secret", "s"), ("x-tag", "client")],
        );
        let plan = p.request(h, &FixedPeer::default());
        assert_eq!(edit(&plan, "x-secret"), Some(None));
        assert_eq!(
            edit(&plan, "x-tag").flatten().as_deref(),
            Some("route,backend")
        );
        assert_eq!(edit(&plan, "x-list").flatten().as_deref(), Some("one,two"));
        assert_eq!(
            edit(&plan, "x-envoy-upstream-rq-timeout-ms")
                .flatten()
                .as_deref(),
            Some("500")
        );
        assert_eq!(
            edit(&plan, ":authority").flatten().as_deref(),
            Some("internal")
        );
        assert_eq!(
            edit(&plan, ":path").flatten().as_deref(),
            Some("/v2/items?q=1")
        );
        let response = p.response(&plan.memo, &|n| (n == "x-trace").then(|| "origin".into()));
        assert_eq!(
            response,
            vec![
                ("x-trace".to_owned(), Some("origin,portico".to_owned())),
                ("x-served-by".to_owned(), Some("b".to_owned())),
            ]
        );
    }

    #[test]
    fn redirects_use_the_request_and_the_listener_port() {
        let r = Route::new(
            "r",
            PathMatch::Prefix("/".into()),
            RouteAction::Redirect(Redirect {
                scheme: Some("https".into()),
                status: Some(301),
                ..Redirect::default()
            }),
        );
        let p = planner(vec![r], |c| c.port = 8080);
        let plan = p.request(req("GET", "/a?b=1", &[]), &FixedPeer::default());
        let reply = plan.reply.unwrap();
        assert_eq!(reply.status, 301);
        assert_eq!(
            reply.headers,
            vec![(
                "location".to_owned(),
                "https://shop.example.com/a?b=1".to_owned()
            )]
        );
        assert_eq!(plan.counts, vec![Outcome::Redirected]);
    }

    #[test]
    fn client_ranges_read_the_source_and_refuse_with_403() {
        let mut r = to_a("r", "/");
        r.client_ranges = Some(ClientRanges {
            allow: vec!["127.0.0.0/24".into()],
            deny: vec!["127.0.0.66".into()],
        });
        let p = planner(vec![r], |_| {});
        for (source, status) in [("127.0.0.5:4000", None), ("127.0.0.66:4000", Some(403))] {
            let peer = Counting {
                source: Some(source.into()),
                ..Counting::default()
            };
            let plan = p.request(req("GET", "/", &[]), &peer);
            assert_eq!(plan.reply.map(|r| r.status), status, "{source}");
            assert_eq!(peer.asked.get(), 1);
        }
    }

    #[test]
    fn cors_preflights_are_answered_and_allowed_origins_marked_on_the_response() {
        let mut envoy = to_a("envoy", "/e");
        envoy.cors = Some(Cors {
            allow_origins: vec![StringMatch::Exact("https://app.example".into())],
            allow_methods: vec!["GET".into(), "PUT".into()],
            allow_credentials: true,
            ..Cors::default()
        });
        let mut nginx = to_a("nginx", "/n");
        nginx.cors = Some(Cors {
            allow_methods: vec!["GET".into()],
            nginx: true,
            ..Cors::default()
        });
        let p = planner(vec![envoy, nginx], |_| {});
        let origin = ("origin", "https://app.example");
        let ask = ("access-control-request-method", "PUT");
        let plan = p.request(req("OPTIONS", "/e", &[origin, ask]), &FixedPeer::default());
        let reply = plan.reply.unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply
            .headers
            .contains(&("access-control-allow-methods".into(), "GET, PUT".into())));
        // Another origin's preflight goes on to the backend untouched.
        let other = ("origin", "https://evil.example");
        let plan = p.request(req("OPTIONS", "/e", &[other, ask]), &FixedPeer::default());
        assert!(plan.reply.is_none());
        assert!(p.response(&plan.memo, &|_| None).is_empty());
        // An allowed simple request: allow headers on the response.
        let plan = p.request(req("GET", "/e", &[origin]), &FixedPeer::default());
        assert_eq!(
            p.response(&plan.memo, &|_| None),
            vec![
                (
                    "access-control-allow-origin".to_owned(),
                    Some("https://app.example".to_owned())
                ),
                (
                    "access-control-allow-credentials".to_owned(),
                    Some("true".to_owned())
                ),
            ]
        );
        // ingress-nginx: any OPTIONS is answered 204, any origin allowed as `*`.
        let plan = p.request(req("OPTIONS", "/n", &[]), &FixedPeer::default());
        let reply = plan.reply.unwrap();
        assert_eq!(reply.status, 204);
        assert!(reply
            .headers
            .contains(&("access-control-allow-origin".into(), "*".into())));
    }

    #[test]
    fn faults_are_sampled_exactly_and_independently() {
        let mut r = to_a("r", "/");
        r.abort = Some(Abort {
            status: 418,
            percent: 25.0,
        });
        r.delay = Some(crate::config::Delay {
            millis: 40,
            percent: 50.0,
        });
        let p = planner(vec![r], |_| {});
        let plans: Vec<Plan> = (0..8)
            .map(|_| p.request(req("GET", "/", &[]), &FixedPeer::default()))
            .collect();
        let aborted = plans.iter().filter(|p| p.reply.is_some()).count();
        let delayed = plans.iter().filter(|p| p.delay_ms == Some(40)).count();
        assert_eq!((aborted, delayed), (2, 4));
        for plan in plans.iter().filter(|p| p.reply.is_some()) {
            assert_eq!(plan.reply.as_ref().unwrap().status, 418);
            assert!(plan.counts.contains(&Outcome::Responded));
        }
    }

    #[test]
    fn mirrors_copy_the_final_request_to_the_shadow_host() {
        let mut r = to_a("r", "/");
        r.request_headers.set = vec![("x-added".into(), "1".into())];
        r.mirrors = vec![
            Mirror {
                backend: "b".into(),
                percent: 100.0,
            },
            Mirror {
                backend: "empty".into(),
                percent: 0.0,
            },
        ];
        let p = planner(vec![r], |_| {});
        let plan = p.request(req("POST", "/m", &[]), &FixedPeer::default());
        assert_eq!(plan.mirrors.len(), 1);
        let copy = &plan.mirrors[0];
        assert_eq!(copy.cluster, "outbound|80||svc");
        assert!(copy
            .headers
            .contains(&(":authority".into(), "shop.example.com-shadow".into())));
        assert!(copy.headers.contains(&("x-added".into(), "1".into())));
        assert!(!copy.headers.iter().any(|(k, _)| k == ORIGINAL_DST_HEADER));
    }

    #[test]
    fn passthrough_goes_to_the_original_destination() {
        let p = planner(vec![to_a("r", "/")], |c| c.passthrough = true);
        let mut h = req("GET", "/", &[]);
        h[2].1 = "api.external.example".into();
        let plan = p.request(h, &Counting::default());
        assert!(plan.reply.is_none());
        assert_eq!(
            edit(&plan, ORIGINAL_DST_HEADER).flatten().as_deref(),
            Some("127.0.9.9:8080")
        );
    }

    #[test]
    fn least_request_releases_its_slot_when_done_and_hashes_stick() {
        let p = planner(vec![to_a("r", "/")], |c| {
            c.backends.get_mut("a").unwrap().lb = LoadBalancer::LeastRequest;
            c.backends.get_mut("b").unwrap().lb = LoadBalancer::ConsistentHash {
                key: HashKey::Cookie("user".into()),
            };
            c.virtual_hosts[0].routes.push(Route::new(
                "h",
                PathMatch::Prefix("/h".into()),
                RouteAction::to("b"),
            ));
            c.virtual_hosts[0].routes.reverse();
        });
        let peer = FixedPeer::default();
        let mut first = p.request(req("GET", "/", &[]), &peer);
        let second = p.request(req("GET", "/", &[]), &peer);
        let dst = |plan: &Plan| edit(plan, ORIGINAL_DST_HEADER).flatten().unwrap();
        assert_ne!(dst(&first), dst(&second), "the busy endpoint is avoided");
        p.done(&mut first.memo);
        p.done(&mut first.memo);
        let third = p.request(req("GET", "/", &[]), &peer);
        assert_eq!(dst(&third), dst(&first), "its slot was released once");
        let cookie = ("cookie", "theme=dark; user=42");
        let a = p.request(req("GET", "/h", &[cookie]), &peer);
        let b = p.request(req("GET", "/h", &[cookie]), &peer);
        assert_eq!(dst(&a), dst(&b));
    }

    #[test]
    fn header_reads_and_parsers() {
        assert_eq!(shadow_host("example.com"), "example.com-shadow");
        assert_eq!(shadow_host("example.com:8080"), "example.com-shadow:8080");
        assert_eq!(shadow_host("[::1]:80"), "[::1]-shadow:80");
        assert_eq!(cookie("a=1; user=42", "user"), Some("42"));
        assert_eq!(cookie("username=1", "user"), None);
        assert_eq!(query_parameter("/p?x=1&id=7", "id"), Some("7"));
        assert_eq!(query_parameter("/p", "id"), None);
        assert_eq!(ip_of("127.0.0.1:80"), "127.0.0.1".parse().ok());
        assert_eq!(ip_of("::1"), "::1".parse().ok());
        let mut w = Working {
            headers: vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("a".into(), "3".into()),
            ],
            edits: Vec::new(),
        };
        w.set("a", Some("x"));
        assert_eq!(
            w.headers,
            vec![("a".to_owned(), "x".to_owned()), ("b".into(), "2".into())]
        );
        w.set("b", None);
        assert_eq!(w.headers, vec![("a".to_owned(), "x".to_owned())]);
    }
}
