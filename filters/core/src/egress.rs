//! The sidecar's egress policy: Istio's `outboundTrafficPolicy` (`ALLOW_ANY` / `REGISTRY_ONLY`)
//! over a registry of ServiceEntries and Services, per client scope (a Sidecar's
//! `egress.hosts` and `outboundTrafficPolicy`), with one verdict per request or connection.
//!
//! Semantics (pilot's sidecar listeners, `service_entry.proto`, `sidecar.proto`):
//! - HTTP: the Host (port ignored, Istio's `IgnorePortInHostMatching`) picks an entry with an
//!   HTTP port equal to the destination port: exact name, then the longest `*.` wildcard, or
//!   one of its addresses. Unknown: `REGISTRY_ONLY` → Istio's `block_all` 502; `ALLOW_ANY` →
//!   where the client was going.
//! - TLS: an entry whose address (one IP) is the destination takes the connection whatever the
//!   SNI (a VIP listener has no `server_names`); otherwise the SNI picks among the port's
//!   entries without an IP of their own (CIDR entries must also contain the destination). No
//!   SNI, or one no entry names: the port's fallthrough (`PassthroughFilterChain`).
//! - TCP: an entry whose addresses contain the destination (longest prefix first); else an
//!   entry with that TCP port and no addresses (it captures the port for every IP).
//! - Blocked TLS and TCP are closed (Istio's `BlackHoleCluster`).
//!
//! Istio trusts the Host header and the SNI for entries resolved `NONE` (the request goes to
//! whatever address the client dialled). [`EgressConfig::verify_destination`] closes that: the
//! dialled address must then be one of the entry's addresses or endpoints.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::matching::cidr::Cidr;
use crate::matching::host::normalize_host;
use crate::tls::client_hello::{self, HelloError};
use crate::tls::select::SniPattern;
use crate::ConfigError;

/// The `apiVersion` of the egress filter's configuration.
pub const EGRESS_API_VERSION: &str = "egress.portico.dev/v1alpha1";

/// The metric label of verdicts no entry decided.
pub const UNKNOWN_ENTRY: &str = "unknown";

/// The egress filter's configuration: the whole sidecar (every port, every client scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressConfig {
    /// Must be [`EGRESS_API_VERSION`].
    pub api_version: String,
    /// Opaque version (a content hash), logged on load.
    pub generation: String,
    /// Whether the dialled address must belong to a `NONE` entry picked by Host or SNI
    /// (PorticoConfig `verifyEgressDestination`). Istio does not check (`false`).
    #[serde(default)]
    pub verify_destination: bool,
    /// Client scopes, first match by source address; the last one has no `sources` and takes
    /// every other client.
    pub scopes: Vec<Scope>,
}

/// The outbound policy of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Unknown destinations pass through to where the client was going.
    AllowAny,
    /// Unknown destinations are blocked.
    RegistryOnly,
}

/// What a set of clients sees: their policy and the registry entries visible to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scope {
    /// Where it comes from (`mesh (PorticoConfig istio-system/mesh)`, `Sidecar shop/default`).
    pub name: String,
    /// Client addresses it applies to; `None`: every client no earlier scope takes.
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    /// The policy for destinations no entry takes.
    pub mode: Mode,
    /// The visible entries, in precedence order (earlier wins between equal matches).
    pub entries: Vec<Entry>,
}

/// A ServiceEntry or Service, as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Entry {
    /// The object (`ServiceEntry default/httpbin`, `Service default/web`).
    pub name: String,
    /// The metric label (`serviceentry.default.httpbin`).
    pub id: String,
    /// Host names: exact, or `*.suffix` (any depth).
    pub hosts: Vec<String>,
    /// IPs and CIDR ranges.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Endpoint IPs (a destination check accepts them).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Traffic goes where the client dialled (resolution `NONE`), so Host and SNI are trusted.
    #[serde(default)]
    pub original_destination: bool,
    /// Ports.
    pub ports: Vec<EntryPort>,
}

/// One port of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPort {
    /// The port clients dial.
    pub number: u16,
    /// How its traffic is told apart.
    pub protocol: Protocol,
    /// Envoy cluster for TLS and TCP connections (`outbound|PORT||HOST`, or the passthrough
    /// cluster); HTTP requests are routed by the routing filter.
    #[serde(default)]
    pub cluster: String,
}

/// The traffic of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Protocol {
    /// HTTP/1.1, HTTP/2, gRPC: by Host.
    Http,
    /// TLS (and HTTPS) passed through: by SNI.
    Tls,
    /// Opaque TCP: by destination address.
    Tcp,
}

/// How a verdict ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An entry took it.
    Allowed,
    /// No entry took it; `ALLOW_ANY` lets it go where the client was going.
    Passthrough,
    /// Refused: HTTP 502, TLS and TCP closed.
    Blocked,
}

impl Outcome {
    /// Every outcome, in counter order.
    pub const ALL: [Outcome; 3] = [Outcome::Allowed, Outcome::Passthrough, Outcome::Blocked];

    /// Its name in counters and logs.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Passthrough => "passthrough",
            Outcome::Blocked => "blocked",
        }
    }
}

/// A decision, with what an operator needs to see why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// How it ended.
    pub outcome: Outcome,
    /// The deciding entry's metric label, or [`UNKNOWN_ENTRY`].
    pub entry: String,
    /// For TLS and TCP: the cluster the connection goes to (none when blocked).
    pub cluster: Option<String>,
    /// The scope that applied.
    pub scope: String,
    /// The rule that decided, in words.
    pub rule: String,
    /// For a blocked HTTP request: the client's scope has no HTTP service on that port, so
    /// Istio would have no HTTP listener there and its TCP catch-all closes the connection
    /// (instead of `block_all`'s 502).
    pub close: bool,
}

/// What a connection needs before a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Decided on the addresses alone.
    Decided(Verdict),
    /// The port's entries are picked by SNI: read the ClientHello, then [`Egress::decide_tls`].
    NeedHello,
}

/// What the bytes of a TLS connection gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// The ClientHello is not complete yet.
    Wait,
    /// The verdict, and the SNI it used.
    Decided(Verdict, Option<String>),
}

#[derive(Debug)]
struct CompiledEntry {
    name: String,
    id: String,
    addresses: Vec<Cidr>,
    endpoints: Vec<IpAddr>,
    original_destination: bool,
}

impl CompiledEntry {
    /// Whether the dialled address belongs to the entry.
    fn owns(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|c| c.contains(ip)) || self.endpoints.contains(&ip)
    }
}

/// One entry port, by what picks it.
#[derive(Debug, Clone)]
struct Target {
    entry: usize,
    cluster: String,
}

#[derive(Debug, Default)]
struct PortTable {
    /// HTTP: exact host names and addresses.
    http_exact: HashMap<String, usize>,
    /// HTTP: `*.suffix` wildcards, longest suffix first (the suffix includes its dot).
    http_wild: Vec<(String, usize)>,
    /// TLS by SNI, in match precedence (exact, then longer wildcards); CIDR entries also need
    /// the destination in range.
    sni: Vec<(SniPattern, Target, Vec<Cidr>)>,
    /// TLS entries by one IP of their own (any SNI).
    tls_vip: Vec<(Cidr, Target)>,
    /// TCP by address, longest prefix first.
    tcp: Vec<(Cidr, Target)>,
    /// TCP entries without addresses: the first captures the port.
    tcp_any: Option<Target>,
}

#[derive(Debug)]
struct CompiledScope {
    name: String,
    sources: Option<Vec<IpAddr>>,
    mode: Mode,
    entries: Vec<CompiledEntry>,
    ports: HashMap<u16, PortTable>,
}

/// The compiled policy.
#[derive(Debug)]
pub struct Egress {
    generation: String,
    verify_destination: bool,
    scopes: Vec<CompiledScope>,
}

fn invalid(field: String, message: String) -> ConfigError {
    ConfigError::Invalid { field, message }
}

fn compile_scope(index: usize, scope: &Scope) -> Result<CompiledScope, ConfigError> {
    let at = |rest: String| format!("scopes[{index}].{rest}");
    let sources = match &scope.sources {
        None => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse::<IpAddr>().map_err(|_| {
                        invalid(
                            at(format!("sources[{i}]")),
                            format!("{s:?} is not an IP address"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let mut entries = Vec::with_capacity(scope.entries.len());
    let mut ports: HashMap<u16, PortTable> = HashMap::new();
    for (e, entry) in scope.entries.iter().enumerate() {
        let addresses = entry
            .addresses
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.parse::<Cidr>()
                    .map_err(|m| invalid(at(format!("entries[{e}].addresses[{i}]")), m))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let endpoints = entry
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, a)| {
                a.parse::<IpAddr>().map_err(|_| {
                    invalid(
                        at(format!("entries[{e}].endpoints[{i}]")),
                        format!("{a:?} is not an IP address"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut patterns = Vec::with_capacity(entry.hosts.len());
        for (i, h) in entry.hosts.iter().enumerate() {
            let host = normalize_host(h);
            if host.is_empty() || host == "*" {
                return Err(invalid(
                    at(format!("entries[{e}].hosts[{i}]")),
                    format!("{h:?}: a host is a name or a `*.` wildcard"),
                ));
            }
            patterns.push(host.into_owned());
        }
        for (p, port) in entry.ports.iter().enumerate() {
            if port.protocol != Protocol::Http && port.cluster.is_empty() {
                return Err(invalid(
                    at(format!("entries[{e}].ports[{p}].cluster")),
                    "a TLS or TCP port needs a cluster".into(),
                ));
            }
            let table = ports.entry(port.number).or_default();
            let target = Target {
                entry: e,
                cluster: port.cluster.clone(),
            };
            match port.protocol {
                Protocol::Http => {
                    for h in patterns.iter().chain(entry.addresses.iter()) {
                        match h.strip_prefix('*') {
                            Some(suffix) => {
                                if !table.http_wild.iter().any(|(s, _)| s == suffix) {
                                    table.http_wild.push((suffix.to_owned(), e));
                                }
                            }
                            None => {
                                table.http_exact.entry(h.clone()).or_insert(e);
                            }
                        }
                    }
                }
                Protocol::Tls => {
                    let (single, ranges): (Vec<Cidr>, Vec<Cidr>) =
                        addresses.iter().partition(|c| c.is_single());
                    for c in single {
                        table.tls_vip.push((c, target.clone()));
                    }
                    if entry.addresses.is_empty() || !ranges.is_empty() {
                        for h in &patterns {
                            if let Some(pattern) = SniPattern::parse(h, false) {
                                table.sni.push((pattern, target.clone(), ranges.clone()));
                            }
                        }
                    }
                }
                Protocol::Tcp => {
                    if addresses.is_empty() {
                        if table.tcp_any.is_none() {
                            table.tcp_any = Some(target);
                        }
                    } else {
                        for c in &addresses {
                            table.tcp.push((*c, target.clone()));
                        }
                    }
                }
            }
        }
        entries.push(CompiledEntry {
            name: entry.name.clone(),
            id: entry.id.clone(),
            addresses,
            endpoints,
            original_destination: entry.original_destination,
        });
    }
    for table in ports.values_mut() {
        // Stable sorts: between equals, the earlier entry stays first.
        table
            .http_wild
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        table.sni.sort_by_key(|(p, _, _)| match p {
            SniPattern::Exact(_) => (0, 0),
            SniPattern::OneLabel(s) | SniPattern::AnyLabels(s) => (1, usize::MAX - s.len()),
        });
        table
            .tls_vip
            .sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix_len()));
        table
            .tcp
            .sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix_len()));
    }
    Ok(CompiledScope {
        name: scope.name.clone(),
        sources,
        mode: scope.mode,
        entries,
        ports,
    })
}

impl Egress {
    /// Parses and compiles a configuration.
    ///
    /// # Errors
    /// The field at fault.
    pub fn from_json(bytes: &[u8]) -> Result<Egress, ConfigError> {
        let config: EgressConfig = crate::json::from_slice(bytes)?;
        Egress::compile(&config)
    }

    /// Compiles a configuration.
    ///
    /// # Errors
    /// The field at fault.
    pub fn compile(config: &EgressConfig) -> Result<Egress, ConfigError> {
        if config.api_version != EGRESS_API_VERSION {
            return Err(ConfigError::ApiVersion {
                got: config.api_version.clone(),
                want: EGRESS_API_VERSION,
            });
        }
        match config.scopes.last() {
            Some(last) if last.sources.is_none() => {}
            _ => {
                return Err(invalid(
                    "scopes".into(),
                    "the last scope must have no sources (it takes every other client)".into(),
                ))
            }
        }
        let scopes = config
            .scopes
            .iter()
            .enumerate()
            .map(|(i, s)| compile_scope(i, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Egress {
            generation: config.generation.clone(),
            verify_destination: config.verify_destination,
            scopes,
        })
    }

    /// The configuration's generation.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// Every entry metric label, once each, then [`UNKNOWN_ENTRY`].
    pub fn entry_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for s in &self.scopes {
            for e in &s.entries {
                if !ids.contains(&e.id) {
                    ids.push(e.id.clone());
                }
            }
        }
        ids.push(UNKNOWN_ENTRY.into());
        ids
    }

    fn scope(&self, source: Option<IpAddr>) -> Option<&CompiledScope> {
        self.scopes.iter().find(|s| match (&s.sources, source) {
            (None, _) => true,
            (Some(list), Some(ip)) => list.contains(&ip),
            (Some(_), None) => false,
        })
    }

    fn unknown(scope: &CompiledScope, what: String) -> Verdict {
        let (outcome, cluster, rule) = match scope.mode {
            Mode::AllowAny => (
                Outcome::Passthrough,
                Some(crate::config::PASSTHROUGH_CLUSTER.to_owned()),
                format!("ALLOW_ANY: {what}; on to where the client was going"),
            ),
            Mode::RegistryOnly => (Outcome::Blocked, None, format!("REGISTRY_ONLY: {what}")),
        };
        Verdict {
            outcome,
            entry: UNKNOWN_ENTRY.into(),
            cluster,
            scope: scope.name.clone(),
            rule,
            close: false,
        }
    }

    /// The verdict on an entry picked by name: allowed, unless the destination check refuses
    /// an address the client chose.
    fn named(
        &self,
        scope: &CompiledScope,
        entry: usize,
        cluster: Option<String>,
        destination: SocketAddr,
        by: String,
    ) -> Verdict {
        let e = &scope.entries[entry];
        if self.verify_destination && e.original_destination && !e.owns(destination.ip()) {
            return Verdict {
                outcome: Outcome::Blocked,
                entry: e.id.clone(),
                cluster: None,
                scope: scope.name.clone(),
                rule: format!(
                    "{by} names {}, but {} is none of its addresses (verifyEgressDestination)",
                    e.name,
                    destination.ip()
                ),
                close: false,
            };
        }
        Verdict {
            outcome: Outcome::Allowed,
            entry: e.id.clone(),
            cluster,
            scope: scope.name.clone(),
            rule: format!("{by}: {}", e.name),
            close: false,
        }
    }

    /// A connection an entry takes by address or port: on to its cluster.
    fn allowed(scope: &CompiledScope, target: &Target, by: String) -> Verdict {
        let e = &scope.entries[target.entry];
        Verdict {
            outcome: Outcome::Allowed,
            entry: e.id.clone(),
            cluster: Some(target.cluster.clone()),
            scope: scope.name.clone(),
            rule: format!("{by}: {}", e.name),
            close: false,
        }
    }

    fn no_scope() -> Verdict {
        Verdict {
            outcome: Outcome::Blocked,
            entry: UNKNOWN_ENTRY.into(),
            cluster: None,
            scope: String::new(),
            rule: "no scope takes this client".into(),
            close: true,
        }
    }

    /// The verdict on an HTTP request to `destination` (where the client was going) for
    /// `authority`.
    pub fn decide_http(
        &self,
        source: Option<IpAddr>,
        destination: SocketAddr,
        authority: &str,
    ) -> Verdict {
        let Some(scope) = self.scope(source) else {
            return Egress::no_scope();
        };
        let host = normalize_host(authority);
        let host = host.as_ref();
        let port = destination.port();
        let table = scope
            .ports
            .get(&port)
            .filter(|t| !t.http_exact.is_empty() || !t.http_wild.is_empty());
        let Some(table) = table else {
            let mut v = Egress::unknown(
                scope,
                format!("no HTTP service on port {port} for this client (the TCP catch-all)"),
            );
            v.close = true;
            return v;
        };
        let found = Some(table).and_then(|t| {
            t.http_exact.get(host).copied().or_else(|| {
                t.http_wild.iter().find_map(|(suffix, e)| {
                    (host.len() > suffix.len() && host.ends_with(suffix.as_str())).then_some(*e)
                })
            })
        });
        match found {
            Some(e) => self.named(scope, e, None, destination, format!("host {host}")),
            None => Egress::unknown(
                scope,
                format!("no ServiceEntry or Service has host {host} on port {port}"),
            ),
        }
    }

    /// The verdict on a new connection, on its addresses alone when it can be given.
    pub fn decide_connection(&self, source: Option<IpAddr>, destination: SocketAddr) -> Start {
        let Some(scope) = self.scope(source) else {
            return Start::Decided(Egress::no_scope());
        };
        let port = destination.port();
        let ip = destination.ip();
        let Some(table) = scope.ports.get(&port) else {
            return Start::Decided(Egress::unknown(
                scope,
                format!("no ServiceEntry or Service has port {port}"),
            ));
        };
        let by_address = table
            .tcp
            .iter()
            .chain(&table.tls_vip)
            .filter(|(c, _)| c.contains(ip))
            // The longest prefix; between equals, the earlier entry.
            .min_by_key(|(c, _)| std::cmp::Reverse(c.prefix_len()));
        if let Some((c, t)) = by_address {
            return Start::Decided(Egress::allowed(
                scope,
                t,
                format!("destination {ip} in {c}"),
            ));
        }
        if !table.sni.is_empty() {
            return Start::NeedHello;
        }
        if let Some(t) = &table.tcp_any {
            let rule = format!("TCP port {port} without addresses");
            return Start::Decided(Egress::allowed(scope, t, rule));
        }
        Start::Decided(Egress::unknown(
            scope,
            format!("no ServiceEntry or Service takes {destination} by address"),
        ))
    }

    /// The verdict on a connection that is not TLS (a TCP chain): on its addresses; a port whose
    /// entries are picked by SNI takes nothing without one.
    pub fn decide_tcp(&self, source: Option<IpAddr>, destination: SocketAddr) -> Verdict {
        match self.decide_connection(source, destination) {
            Start::Decided(v) => v,
            Start::NeedHello => match self.scope(source) {
                Some(scope) => Egress::unknown(
                    scope,
                    format!("plain TCP to {destination}, whose port's entries are picked by SNI"),
                ),
                None => Egress::no_scope(),
            },
        }
    }

    /// The verdict on a TLS connection from the bytes the client has sent so far (all of them).
    pub fn decide_tls(
        &self,
        source: Option<IpAddr>,
        destination: SocketAddr,
        data: &[u8],
    ) -> Hello {
        let Some(scope) = self.scope(source) else {
            return Hello::Decided(Egress::no_scope(), None);
        };
        let hello = match client_hello::parse(data) {
            Ok(h) => h,
            Err(HelloError::Incomplete { .. }) => return Hello::Wait,
            Err(e) => {
                return Hello::Decided(
                    Egress::unknown(scope, format!("not a usable ClientHello ({e})")),
                    None,
                )
            }
        };
        let port = destination.port();
        let Some(sni) = hello.sni.as_deref().map(client_hello::normalize_sni) else {
            return Hello::Decided(
                Egress::unknown(scope, format!("TLS without SNI to port {port}")),
                None,
            );
        };
        let found = scope.ports.get(&port).and_then(|t| {
            t.sni.iter().find(|(p, _, ranges)| {
                p.matches(&sni)
                    && (ranges.is_empty() || ranges.iter().any(|c| c.contains(destination.ip())))
            })
        });
        let verdict = match found {
            Some((_, t, _)) => self.named(
                scope,
                t.entry,
                Some(t.cluster.clone()),
                destination,
                format!("SNI {sni}"),
            ),
            None => Egress::unknown(
                scope,
                format!("no ServiceEntry names SNI {sni} on port {port}"),
            ),
        };
        Hello::Decided(verdict, Some(sni))
    }
}

impl EgressConfig {
    /// Serializes (an `EgressConfig` always serializes).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
