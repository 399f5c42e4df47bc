//! What the routing filter does with one request, decided without a host: the [`Planner`] turns
//! the request's headers (and, on demand, the client and destination addresses) into a
//! [`Plan`] — header edits, a local reply or the steering header for Envoy's router, a delay,
//! mirror copies, counters — and the filter's glue only carries it out. The response phase gets
//! its header edits from [`Planner::response`], with what the request phase left in a [`Memo`].
//!
//! Policy lives here, in the order Envoy's filters apply it: steering headers from the client are
//! dropped; the route is decided; CORS (a preflight is answered; an allowed origin is remembered
//! for the response); client ranges (403); faults (delay, then abort, each sampled on its own);
//! then the action: a direct response, a redirect, or a forward — the route's header changes,
//! then the picked backend's, the upstream policy headers, a rewrite, mirror copies of the final
//! request, and the endpoint (or cluster) Envoy's router goes to.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::IpAddr;

use crate::config::{
    ForwardMode, HashKey, HeaderMods, LoadBalancer, CLUSTER_HEADER, ORIGINAL_DST_HEADER,
};
pub use crate::effects::{HeaderEdit, Reply};
use crate::lb::{rendezvous, InFlight, Random, RoundRobin, WeightedRoundRobin};
use crate::matching::{cidr, same_header_name};
use crate::routing::nginx_var;
use crate::routing::router::{
    Action, BackendId, Decision, HeaderSource, Request, RequestHeaders, Router,
};

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
    /// Over TLS, the Host belongs to another listener than the SNI's: 421.
    Misdirected = 8,
}

impl Outcome {
    /// Every outcome, in metric-id order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Forwarded,
        Outcome::NoRoute,
        Outcome::NoEndpoints,
        Outcome::Redirected,
        Outcome::Responded,
        Outcome::NoBackend,
        Outcome::Mirrored,
        Outcome::Delayed,
        Outcome::Misdirected,
    ];

    /// Prometheus names of the counters, indexed by `Outcome as usize`.
    pub const METRIC_NAMES: [&'static str; 9] = [
        "portico_routing_forwarded_total",
        "portico_routing_no_route_total",
        "portico_routing_no_endpoints_total",
        "portico_routing_redirected_total",
        "portico_routing_direct_response_total",
        "portico_routing_no_backend_total",
        "portico_routing_mirrored_total",
        "portico_routing_delayed_total",
        "portico_routing_misdirected_total",
    ];
}

/// The counters a plan bumps, each at most once: a set of [`Outcome`]s (no allocation per
/// request, as a `Vec` would be).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(u16);

impl Counts {
    /// Adds `outcome` to the set.
    pub fn push(&mut self, outcome: Outcome) {
        self.0 |= 1 << outcome as u16;
    }

    /// Whether `outcome` is in the set.
    pub fn contains(self, outcome: Outcome) -> bool {
        self.0 & (1 << outcome as u16) != 0
    }

    /// The outcomes in the set, in metric-id order.
    pub fn iter(self) -> impl Iterator<Item = Outcome> {
        Outcome::ALL.into_iter().filter(move |o| self.contains(*o))
    }

    /// [`Counts::iter`], collected.
    pub fn to_vec(self) -> Vec<Outcome> {
        self.iter().collect()
    }
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
    /// The request arrived over TLS on a port with a TLS table.
    tls: bool,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Request header changes, in order (the cluster steering header included).
    pub edits: Vec<HeaderEdit>,
    /// The value of the [`crate::config::STEER_STATE`] filter state to set before the request
    /// goes on: the endpoint (`ip:port`), or [`crate::config::CLUSTER_STEER`] with the
    /// cluster header. `None`: nothing is forwarded.
    pub steer: Option<Cow<'static, str>>,
    /// A local answer; `None`: continue to Envoy's router.
    pub reply: Option<Reply>,
    /// Hold the request (and its reply, if any) this many milliseconds first.
    pub delay_ms: Option<u64>,
    /// Copies to send once the request body is complete.
    pub mirrors: Vec<MirrorCopy>,
    /// Counters to bump.
    pub counts: Counts,
    /// Kept for [`Planner::response`] and [`Planner::done`].
    pub memo: Memo,
}

impl Plan {
    fn new() -> Plan {
        Plan {
            edits: Vec::new(),
            steer: None,
            reply: None,
            delay_ms: None,
            mirrors: Vec::new(),
            counts: Counts::default(),
            memo: Memo::default(),
        }
    }

    /// Answers locally, counting `outcome`.
    fn reply(&mut self, outcome: Outcome, reply: Reply) {
        self.counts.push(outcome);
        self.reply = Some(reply);
    }
}

/// Addresses the plan may need; each read can cost a host call, so the planner asks only when a
/// route needs one.
pub trait Peer {
    /// The client's address (`ip:port` or `ip`).
    fn source(&self) -> Option<String>;
    /// The address the client connected to (the original destination), `ip:port`.
    fn destination(&self) -> Option<String>;
    /// Whether the request arrived over TLS, and the SNI its connection sent (`None`: plain).
    fn tls(&self) -> Option<Option<String>> {
        None
    }
    /// The subject DN (RFC 2253) of the client certificate the connection presented.
    fn client_subject(&self) -> Option<String> {
        None
    }
}

/// Fixed addresses (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct FixedPeer {
    /// See [`Peer::source`].
    pub source: Option<String>,
    /// See [`Peer::destination`].
    pub destination: Option<String>,
    /// See [`Peer::tls`].
    pub tls: Option<Option<String>>,
    /// See [`Peer::client_subject`].
    pub client_subject: Option<String>,
}

impl Peer for FixedPeer {
    fn source(&self) -> Option<String> {
        self.source.clone()
    }
    fn destination(&self) -> Option<String> {
        self.destination.clone()
    }
    fn tls(&self) -> Option<Option<String>> {
        self.tls.clone()
    }
    fn client_subject(&self) -> Option<String> {
        self.client_subject.clone()
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
struct Working<'h> {
    headers: RequestHeaders<'h>,
    edits: Vec<HeaderEdit>,
}

impl<'h> Working<'h> {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers.header(name)
    }

    /// A header's value ("" when absent) outliving later edits: borrowed from the host's buffer
    /// when it came from there, so no copy.
    fn value(&self, name: &str) -> Cow<'h, str> {
        self.headers
            .iter()
            .find(|(k, _)| same_header_name(k, name))
            .map_or(Cow::Borrowed(""), |(_, v)| v.clone())
    }

    fn set(&mut self, name: &str, value: Option<&str>) {
        let mut first = None;
        let mut i = 0;
        self.headers.retain(|(k, _)| {
            let same = same_header_name(k, name);
            let keep = !same || (first.is_none() && value.is_some());
            if keep && first.is_none() && same {
                first = Some(i);
            }
            i += usize::from(keep);
            keep
        });
        match (value, first) {
            (Some(v), Some(at)) => self.headers[at].1 = Cow::Owned(v.to_owned()),
            (Some(v), None) => self
                .headers
                .push((Cow::Owned(name.to_owned()), Cow::Owned(v.to_owned()))),
            (None, _) => {}
        }
        self.edits.push((name.to_owned(), value.map(str::to_owned)));
    }
}

impl HeaderAccess for Working<'_> {
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
            .find(|(k, _)| same_header_name(k, name))
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

    /// Plans a request from all its headers (pseudo-headers included; see [`RequestHeaders`]).
    pub fn request(&self, headers: RequestHeaders<'_>, peer: &dyn Peer) -> Plan {
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

    fn decide(&self, plan: &mut Plan, w: &mut Working<'_>, peer: &dyn Peer) {
        let router = &self.router;
        let (authority, path, method) =
            (w.value(":authority"), w.value(":path"), w.value(":method"));
        // Over TLS: the Host must belong to the chain the SNI chose (Istio: 404, Gateway API:
        // 421), and every response gets the port's TLS headers.
        if let Some(table) = router.tls() {
            if let Some(sni) = peer.tls() {
                plan.memo.tls = true;
                let host = crate::matching::host::normalize_host(&authority);
                let sni = sni.filter(|s| !s.is_empty());
                if let Some((status, why)) = table.misdirected(sni.as_deref(), &host) {
                    let outcome = if status == 421 {
                        Outcome::Misdirected
                    } else {
                        Outcome::NoRoute
                    };
                    let body = if status == 421 {
                        "421 Misdirected Request\n".to_owned()
                    } else {
                        "404 page not found\n".to_owned()
                    };
                    let _ = why;
                    plan.reply(outcome, Reply::text(u32::from(status), &body));
                    return;
                }
            }
        }
        // The sidecar's egress filter found no entry this client may see for the host (a
        // Sidecar that does not import it): on to where the client was going, as Istio's
        // PassthroughCluster, whatever routing holds for other clients.
        if router.passthrough()
            && w.get(crate::config::EGRESS_VERDICT_HEADER) == Some("passthrough")
        {
            w.set(crate::config::EGRESS_VERDICT_HEADER, None);
            match peer.destination() {
                Some(dst) => {
                    plan.steer = Some(Cow::Owned(dst));
                    plan.counts.push(Outcome::Forwarded);
                }
                None => plan.reply(Outcome::NoRoute, Reply::text(404, "404 page not found\n")),
            }
            return;
        }
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
                        plan.steer = Some(Cow::Owned(dst));
                        plan.counts.push(Outcome::Forwarded);
                    }
                    None => {
                        plan.reply(Outcome::NoRoute, Reply::text(404, "404 page not found\n"));
                    }
                }
                return;
            }
            Decision::NoRoute => {
                let reply = match router.unknown_host_status() {
                    // REGISTRY_ONLY: Istio's `block_all` direct response, no body.
                    Some(status) => Reply {
                        status: u32::from(status),
                        headers: Vec::new(),
                        body: Vec::new(),
                    },
                    None => Reply::text(404, "404 page not found\n"),
                };
                plan.reply(Outcome::NoRoute, reply);
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
        // ingress-nginx's client certificate rules come first: nginx refuses a request without a
        // required certificate (400) before any phase runs, and the server block's `return 403`
        // (an unusable auth-tls-secret) and subject check run before the locations.
        if let Some((cc, subject_re)) = &route.client_certificate {
            if cc.denied {
                return plan.reply(Outcome::Responded, Reply::text(403, "403 Forbidden\n"));
            }
            let tls = peer.tls().is_some();
            let subject = if tls {
                peer.client_subject().filter(|s| !s.is_empty())
            } else {
                None
            };
            if tls && cc.required && subject.is_none() {
                let reply = match &cc.error_page {
                    Some(page) => Reply {
                        status: 302,
                        headers: vec![("location".into(), page.clone())],
                        body: Vec::new(),
                    },
                    None => Reply::text(400, "400 No required SSL certificate was sent\n"),
                };
                return plan.reply(Outcome::Responded, reply);
            }
            if let Some(re) = subject_re {
                if !re.is_match(subject.as_deref().unwrap_or("")) {
                    return plan.reply(
                        Outcome::Responded,
                        Reply::text(403, "client certificate unauthorized"),
                    );
                }
            }
            if cc.headers {
                let verify = if subject.is_some() { "SUCCESS" } else { "NONE" };
                w.set("ssl-client-verify", Some(verify));
                w.set("ssl-client-subject-dn", subject.as_deref());
                // Set by the TLS chain's connection manager when there is a certificate.
                for name in ["ssl-client-issuer-dn", "ssl-client-cert"] {
                    if w.get(name).is_some() {
                        w.set(name, None);
                    }
                }
            }
        }
        // Envoy's CORS filter (before faults and the router): answer an allowed preflight,
        // remember an allowed origin for the response.
        if let Some(cors) = &route.cors {
            let origin = w.value("origin");
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
                        return plan.reply(Outcome::Responded, r);
                    }
                } else {
                    let asked = w.value("access-control-request-method");
                    if method == "OPTIONS" && !asked.is_empty() {
                        let headers = cors.preflight(
                            &origin,
                            &asked,
                            &w.value("access-control-request-headers"),
                        );
                        let r = Reply {
                            status: 200,
                            headers,
                            body: Vec::new(),
                        };
                        return plan.reply(Outcome::Responded, r);
                    }
                }
                plan.memo.cors_origin = Some(origin.into_owned());
            } else if method == "OPTIONS" && !origin.is_empty() {
                let asked = w.value("access-control-request-method");
                if !asked.is_empty() {
                    if let Some(headers) =
                        cors.unmatched_preflight(&asked, &w.value("access-control-request-headers"))
                    {
                        let r = Reply {
                            status: 200,
                            headers,
                            body: Vec::new(),
                        };
                        return plan.reply(Outcome::Responded, r);
                    }
                }
            }
        }
        // Client ranges after CORS: ingress-nginx answers a preflight in nginx's rewrite phase
        // (the template's `if ($request_method = 'OPTIONS')` … `return 204`), before the access
        // phase's `allow` / `deny`.
        if let Some(ranges) = &route.client_ranges {
            if !cidr::admitted(ranges, source) {
                return plan.reply(Outcome::Responded, Reply::text(403, "403 Forbidden\n"));
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
                return plan.reply(Outcome::Responded, r);
            }
        }
        let scheme = match w.value(":scheme") {
            s if s.is_empty() => Cow::Borrowed("http"),
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
                plan.reply(Outcome::Responded, Reply::text(u32::from(*status), body));
            }
            Action::Redirect(r) => plan.reply(Outcome::Redirected, redirect(r)),
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
                    return plan.reply(Outcome::NoBackend, r);
                };
                // An nginx hash key reads the request as the client sent it.
                let early = self.nginx_key(w, id, peer);
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
                    return plan.reply(Outcome::Redirected, redirect(r));
                }
                let rw = own.and_then(|f| f.rewrite.as_ref()).or(rewrite.as_ref());
                let host = rw
                    .and_then(|rw| rw.host.as_ref())
                    .or(own.and_then(|f| f.host.as_ref()));
                if let Some(host) = host {
                    w.set(":authority", Some(host));
                }
                if let Some(p) = rw.and_then(|rw| rw.path.as_ref()) {
                    w.set(":path", Some(&route.rewrite_path(p, &path)));
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
                self.forward_keyed(plan, w, id, peer, early);
            }
        }
    }

    /// The key of `backend`'s nginx hash expression over the request as it is now.
    fn nginx_key(&self, w: &Working, backend: BackendId, peer: &dyn Peer) -> Option<Vec<u8>> {
        let LoadBalancer::ConsistentHash {
            key: HashKey::Nginx(expr),
        } = &self.router.backend(backend).lb
        else {
            return None;
        };
        let header = |n: &str| w.get(n).map(str::to_owned);
        let source = || peer.source().as_deref().and_then(ip_of);
        let vars = nginx_var::Vars {
            header: &header,
            source: &source,
        };
        Some(nginx_var::evaluate(&nginx_var::parse(expr), &vars))
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
            // Handled by `nginx_key` (every request has a key).
            HashKey::Nginx(_) => None,
            HashKey::QueryParameter(name) => w
                .get(":path")
                .and_then(|p| query_parameter(p, name))
                .map(str::to_owned),
        }
    }

    /// Hands the request to Envoy for `backend`: one ready endpoint, or its cluster.
    fn forward(&self, plan: &mut Plan, w: &mut Working, id: BackendId, peer: &dyn Peer) {
        let early = self.nginx_key(w, id, peer);
        self.forward_keyed(plan, w, id, peer, early);
    }

    /// [`Planner::forward`] with the nginx hash key read before the request was changed.
    fn forward_keyed(
        &self,
        plan: &mut Plan,
        w: &mut Working,
        id: BackendId,
        peer: &dyn Peer,
        nginx_key: Option<Vec<u8>>,
    ) {
        let router = &self.router;
        let backend = router.backend(id);
        let no_endpoints = |plan: &mut Plan| {
            plan.reply(
                Outcome::NoEndpoints,
                Reply::text(503, "503 no ready endpoints\n"),
            );
        };
        if backend.original_destination {
            // Envoy's ORIGINAL_DST: where the client connected, in either mode.
            match peer.destination() {
                Some(dst) => plan.steer = Some(Cow::Owned(dst)),
                None => return no_endpoints(plan),
            }
            plan.counts.push(Outcome::Forwarded);
            return;
        }
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
                    LoadBalancer::ConsistentHash { .. } if nginx_key.is_some() => {
                        rendezvous(nginx_key.as_deref().unwrap_or_default(), &backend.endpoints)
                    }
                    LoadBalancer::ConsistentHash { key } => match Self::hash_key(w, key, peer) {
                        Some(k) => rendezvous(k.as_bytes(), &backend.endpoints),
                        None => self.state.borrow_mut().rr.pick(id, n),
                    },
                };
                let Some(endpoint) = pick.and_then(|i| backend.endpoints.get(i)) else {
                    return no_endpoints(plan);
                };
                plan.steer = Some(Cow::Owned(endpoint.clone()));
            }
            ForwardMode::Cluster => {
                if backend.endpoints.is_empty() {
                    return no_endpoints(plan);
                }
                w.set(CLUSTER_HEADER, Some(&backend.cluster));
                plan.steer = Some(Cow::Borrowed(crate::config::CLUSTER_STEER));
            }
        }
        plan.counts.push(Outcome::Forwarded);
    }

    /// The response header changes for a request planned with `memo`: the route's, the CORS
    /// headers for an allowed origin, then the picked backend's. `get` reads a response header.
    pub fn response(&self, memo: &Memo, get: &dyn Fn(&str) -> Option<String>) -> Vec<HeaderEdit> {
        let mut edits = self.route_response(memo, get);
        if memo.tls {
            for (name, value) in self
                .router
                .tls()
                .map(|t| t.response_headers.as_slice())
                .unwrap_or_default()
            {
                edits.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                edits.push((name.clone(), Some(value.clone())));
            }
        }
        edits
    }

    fn route_response(&self, memo: &Memo, get: &dyn Fn(&str) -> Option<String>) -> Vec<HeaderEdit> {
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
fn mirror_headers(headers: &[(Cow<'_, str>, Cow<'_, str>)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case(ORIGINAL_DST_HEADER) && !k.eq_ignore_ascii_case(CLUSTER_HEADER)
        })
        .map(|(k, v)| {
            let v = if k == ":authority" {
                shadow_host(v)
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests;
