//! The TLS choice of a port: which filter chain (certificate, or passthrough) a connection gets
//! from its SNI.
//!
//! A [`TlsTable`] is an ordered list of SNI rules, first match wins, and a default chain for a
//! connection without SNI or with an SNI no rule takes. The controller builds the table with each
//! family's precedence already applied (ingress-nginx: exact host, then the first label replaced
//! by `*`, then the default certificate, then the fake one; Istio and the Gateway API: exact, then
//! the longest wildcard suffix, then a catch-all server or listener, else refuse). The same table
//! is rendered into Envoy's `filter_chain_matcher` (one regex predicate per rule, in this order,
//! the default as `on_no_match`: see [`SniPattern::regex`]) and evaluated here by
//! [`TlsTable::select`] for host-runner and explanations, so both hosts pick the same chain.

use serde::{Deserialize, Serialize};

pub use super::client_hello::normalize_sni;

/// The reference whose rules built a table (explanations name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Family {
    /// Kubernetes Ingress as ingress-nginx serves it.
    IngressNginx,
    /// Istio `Gateway` servers.
    Istio,
    /// Gateway API listeners.
    GatewayApi,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::IngressNginx => "ingress-nginx",
            Family::Istio => "Istio",
            Family::GatewayApi => "Gateway API",
        })
    }
}

/// What an SNI rule matches. Names are stored normalized ([`normalize_sni`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SniPattern {
    /// This name.
    Exact(String),
    /// `*.SUFFIX` matching exactly one label before the suffix (ingress-nginx replaces only the
    /// first label with `*` when it looks a certificate up).
    OneLabel(String),
    /// `*.SUFFIX` matching one or more labels before the suffix (Envoy's `server_names`, Istio
    /// server hosts, Gateway API listener hostnames).
    AnyLabels(String),
}

impl SniPattern {
    /// Reads a host as written in an object (`shop.example.com`, `*.example.com`) with the given
    /// wildcard reading. `None` for `*` (a catch-all is a table's default, not a rule) and for an
    /// empty name.
    pub fn parse(host: &str, one_label: bool) -> Option<SniPattern> {
        let host = normalize_sni(host);
        if host.is_empty() || host == "*" {
            return None;
        }
        Some(match host.strip_prefix("*.") {
            Some(suffix) if one_label => SniPattern::OneLabel(suffix.to_owned()),
            Some(suffix) => SniPattern::AnyLabels(suffix.to_owned()),
            None => SniPattern::Exact(host),
        })
    }

    /// Whether a normalized SNI matches.
    pub fn matches(&self, sni: &str) -> bool {
        match self {
            SniPattern::Exact(name) => sni == name,
            SniPattern::OneLabel(suffix) | SniPattern::AnyLabels(suffix) => {
                let Some(head) = sni
                    .strip_suffix(suffix.as_str())
                    .and_then(|h| h.strip_suffix('.'))
                else {
                    return false;
                };
                // Every label before the suffix is non-empty; a one-label wildcard takes one.
                !head.split('.').any(str::is_empty)
                    && (matches!(self, SniPattern::AnyLabels(_)) || !head.contains('.'))
            }
        }
    }

    /// The RE2 regex Envoy's `filter_chain_matcher` evaluates on the raw SNI: case-insensitive,
    /// one optional trailing dot, the same language as [`SniPattern::matches`] after
    /// [`normalize_sni`].
    pub fn regex(&self) -> String {
        let quote = |s: &str| {
            let mut out = String::with_capacity(s.len() + 4);
            for c in s.chars() {
                if !c.is_ascii_alphanumeric() && c != '-' && c != '_' {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        };
        match self {
            SniPattern::Exact(name) => format!("(?i)^{}\\.?$", quote(name)),
            SniPattern::OneLabel(suffix) => format!("(?i)^[^.]+\\.{}\\.?$", quote(suffix)),
            SniPattern::AnyLabels(suffix) => {
                format!("(?i)^[^.]+(\\.[^.]+)*\\.{}\\.?$", quote(suffix))
            }
        }
    }
}

impl std::fmt::Display for SniPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SniPattern::Exact(name) => f.write_str(name),
            SniPattern::OneLabel(suffix) => write!(f, "*.{suffix} (one label)"),
            SniPattern::AnyLabels(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.0.
    #[serde(rename = "TLSv1_0")]
    V1_0,
    /// TLS 1.1.
    #[serde(rename = "TLSv1_1")]
    V1_1,
    /// TLS 1.2.
    #[serde(rename = "TLSv1_2")]
    V1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSv1_3")]
    V1_3,
}

impl TlsVersion {
    /// Envoy's `TlsParameters.TlsProtocol` name (`TLSv1_2`).
    pub fn envoy_name(self) -> &'static str {
        match self {
            TlsVersion::V1_0 => "TLSv1_0",
            TlsVersion::V1_1 => "TLSv1_1",
            TlsVersion::V1_2 => "TLSv1_2",
            TlsVersion::V1_3 => "TLSv1_3",
        }
    }

    /// Reads `1.2`, `TLSv1_2`, `TLSv1.2`, `TLS_V1_2` (the spellings of scenarios, Istio and
    /// ingress-nginx).
    pub fn parse(s: &str) -> Option<TlsVersion> {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        match digits.as_str() {
            "10" => Some(TlsVersion::V1_0),
            "11" => Some(TlsVersion::V1_1),
            "12" => Some(TlsVersion::V1_2),
            "13" => Some(TlsVersion::V1_3),
            _ => None,
        }
    }

    /// The wire value (`0x0303` for TLS 1.2).
    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::V1_0 => 0x0301,
            TlsVersion::V1_1 => 0x0302,
            TlsVersion::V1_2 => 0x0303,
            TlsVersion::V1_3 => 0x0304,
        }
    }
}

/// Where a served certificate came from; scenarios and explanations name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CertificateSource {
    /// A Secret an object references (`namespace/name`).
    Secret(String),
    /// The configured default certificate (nginx's `--default-ssl-certificate`, a Secret).
    Default(String),
    /// The generated self-signed certificate nginx serves when nothing else applies.
    Fake,
}

impl CertificateSource {
    /// Every name a scenario may use for it: `ns/name`, `default`, `fake`.
    pub fn names(&self) -> Vec<String> {
        match self {
            CertificateSource::Secret(name) => vec![name.clone()],
            CertificateSource::Default(name) => vec!["default".into(), name.clone()],
            CertificateSource::Fake => vec!["fake".into()],
        }
    }
}

impl std::fmt::Display for CertificateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertificateSource::Secret(name) => write!(f, "Secret {name}"),
            CertificateSource::Default(name) => {
                write!(f, "the default certificate (Secret {name})")
            }
            CertificateSource::Fake => f.write_str("the fake certificate"),
        }
    }
}

/// A certificate a chain serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Certificate {
    /// Name of the SDS resource holding the key pair (one per distinct key pair).
    pub sds: String,
    /// Where it came from.
    pub source: CertificateSource,
}

/// How a terminating chain treats client certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientValidation {
    /// SDS resource holding the trusted CA bundle.
    pub ca_sds: String,
    /// `true`: a client without a valid certificate fails the handshake (MUTUAL); `false`: the
    /// certificate is requested and checked when sent (OPTIONAL_MUTUAL, nginx `optional`).
    pub required: bool,
    /// Subject alternative names of which the client certificate must carry one (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// Request a certificate without checking its chain (nginx's `optional_no_ca`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_untrusted: bool,
    /// Longest chain accepted (nginx's `auth-tls-verify-depth`; none: Envoy's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
}

/// A chain that terminates TLS and then routes HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Terminate {
    /// The certificate served.
    pub certificate: Certificate,
    /// Lowest TLS version accepted.
    pub min_version: TlsVersion,
    /// Highest TLS version accepted.
    pub max_version: TlsVersion,
    /// Cipher suites for TLS ≤ 1.2 (OpenSSL names; empty: Envoy's defaults).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// Client certificate handling (none: no certificate is requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientValidation>,
    /// Request headers the chain's HTTP connection manager sets from the client certificate
    /// (Envoy's router, after the filters; not set when there is no certificate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<(String, PeerHeader)>,
}

/// What of the client certificate a chain sends upstream in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PeerHeader {
    /// The issuer DN, RFC 2253 (Envoy's `%DOWNSTREAM_PEER_ISSUER%`, nginx's `$ssl_client_i_dn`).
    Issuer,
    /// The certificate, PEM, URL-encoded (`%DOWNSTREAM_PEER_CERT%`, nginx's
    /// `$ssl_client_escaped_cert`).
    Certificate,
}

impl PeerHeader {
    /// Envoy's header formatter for it.
    pub fn envoy_formatter(self) -> &'static str {
        match self {
            PeerHeader::Issuer => "%DOWNSTREAM_PEER_ISSUER%",
            PeerHeader::Certificate => "%DOWNSTREAM_PEER_CERT%",
        }
    }
}

/// What a chain does with a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChainAction {
    /// Terminate TLS, then route the HTTP requests with the port's routing configuration.
    Terminate(Terminate),
    /// Forward the TLS bytes untouched to a backend (weighted), through its Envoy cluster: the
    /// `tls` network filter picks one and sets `envoy.tcp_proxy.cluster`.
    Passthrough {
        /// The backends and their weights (0: never picked).
        backends: Vec<PassthroughBackend>,
    },
    /// Close the connection: the chain exists but cannot serve (Istio: a server whose
    /// credential is missing fails its handshakes, other servers keep serving).
    Refuse {
        /// Why.
        reason: String,
    },
}

/// A backend of a passthrough chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PassthroughBackend {
    /// `FQDN:port`, as scenarios and explanations name it.
    pub backend: String,
    /// The Envoy cluster the TCP proxy connects through.
    pub cluster: String,
    /// Weight.
    pub weight: u32,
}

/// One filter chain of a TLS port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Chain {
    /// Unique within the port (Envoy's filter chain name).
    pub name: String,
    /// Which object made it (`Ingress default/shop tls[0]`).
    pub origin: String,
    /// What it does.
    pub action: ChainAction,
    /// The host names (`*.example.com`, `*`) of the server or listener that made the chain, for
    /// [`Chain::host_check`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// How a request's Host is checked against the chain its connection's SNI chose (none:
    /// any Host is routed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_check: Option<HostCheck>,
}

/// How a request's Host must relate to the chain its connection's SNI chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HostCheck {
    /// Istio: each HTTPS server has its own routes, so a Host outside the chain's server hosts
    /// finds no virtual host: 404.
    Server,
    /// Gateway API (`Listener.hostname`, GEP-3567): when the listener that best matches the
    /// Host is another than the SNI's, 421 Misdirected Request; when no listener matches the
    /// Host, 404.
    Listener,
}

/// One SNI rule: a pattern and the chain it picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SniRule {
    /// What the SNI must match.
    pub pattern: SniPattern,
    /// Index into [`TlsTable::chains`].
    pub chain: usize,
}

/// The TLS configuration of one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsTable {
    /// Whose rules built it.
    pub family: Family,
    /// The chains.
    pub chains: Vec<Chain>,
    /// SNI rules, first match wins.
    pub rules: Vec<SniRule>,
    /// The chain for no SNI or an SNI no rule takes; `None`: the handshake is refused (the
    /// connection is closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_chain: Option<usize>,
    /// Headers every response over TLS on this port gets, replacing the upstream's
    /// (ingress-nginx's `Strict-Transport-Security`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<(String, String)>,
}

/// Why a chain was (or was not) picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Rule number `index` matched.
    Rule {
        /// Position in [`TlsTable::rules`].
        index: usize,
        /// Its pattern.
        pattern: SniPattern,
    },
    /// The client sent no SNI.
    NoSni,
    /// No rule matched this SNI.
    NoRule,
}

/// What [`TlsTable::select`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    /// The chain, or `None` when the connection is refused.
    pub chain: Option<&'a Chain>,
    /// Why.
    pub why: Why,
}

impl std::fmt::Display for Selection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match &self.why {
            Why::Rule { index, pattern } => format!("SNI rule {index} ({pattern}) matched"),
            Why::NoSni => "no SNI: the default chain".into(),
            Why::NoRule => "no SNI rule matched: the default chain".into(),
        };
        match self.chain {
            None => write!(f, "{why}, and there is none: the handshake is refused"),
            Some(c) => match &c.action {
                ChainAction::Terminate(t) => write!(
                    f,
                    "{why}: chain {} ({}) serves {}",
                    c.name, c.origin, t.certificate.source
                ),
                ChainAction::Passthrough { backends } => {
                    let to: Vec<String> = backends
                        .iter()
                        .map(|b| format!("{} (weight {})", b.backend, b.weight))
                        .collect();
                    write!(
                        f,
                        "{why}: chain {} ({}) passes through to {}",
                        c.name,
                        c.origin,
                        to.join(", ")
                    )
                }
                ChainAction::Refuse { reason } => write!(
                    f,
                    "{why}: chain {} ({}) refuses the handshake: {reason}",
                    c.name, c.origin
                ),
            },
        }
    }
}

impl TlsTable {
    /// The chain a connection with this SNI (raw, as the client sent it) gets.
    pub fn select(&self, sni: Option<&str>) -> Selection<'_> {
        let default = |why| Selection {
            chain: self.default_chain.and_then(|i| self.chains.get(i)),
            why,
        };
        let sni = match sni.map(normalize_sni) {
            Some(s) if !s.is_empty() => s,
            _ => return default(Why::NoSni),
        };
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.pattern.matches(&sni) {
                return Selection {
                    chain: self.chains.get(rule.chain),
                    why: Why::Rule {
                        index,
                        pattern: rule.pattern.clone(),
                    },
                };
            }
        }
        default(Why::NoRule)
    }

    /// The status a request gets when its Host does not belong to the chain its connection's
    /// SNI chose ([`HostCheck`]); `None` when it may be routed. `host` is normalized (no port,
    /// lower case).
    pub fn misdirected(&self, sni: Option<&str>, host: &str) -> Option<(u16, String)> {
        let chain = self.select(sni).chain?;
        match chain.host_check? {
            HostCheck::Server => {
                let covered = chain.hosts.iter().any(|h| {
                    h == "*" || SniPattern::parse(h, false).is_some_and(|p| p.matches(host))
                });
                (!covered).then(|| {
                    (
                        404,
                        format!(
                            "host {host} is not served by {} (hosts {})",
                            chain.origin,
                            chain.hosts.join(", ")
                        ),
                    )
                })
            }
            HostCheck::Listener => match self.select(Some(host)).chain {
                None => Some((404, format!("no listener takes host {host}"))),
                Some(other) if other.name != chain.name => Some((
                    421,
                    format!(
                        "host {host} belongs to {}, the SNI chose {}",
                        other.origin, chain.origin
                    ),
                )),
                Some(_) => None,
            },
        }
    }

    /// Checks that every rule and the default name a chain and chain names are unique.
    ///
    /// # Errors
    /// The field at fault.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let invalid =
            |field: String, message: String| crate::ConfigError::Invalid { field, message };
        let n = self.chains.len();
        for (i, r) in self.rules.iter().enumerate() {
            if r.chain >= n {
                return Err(invalid(
                    format!("rules[{i}].chain"),
                    format!("{} is not a chain", r.chain),
                ));
            }
        }
        if let Some(d) = self.default_chain.filter(|d| *d >= n) {
            return Err(invalid(
                "defaultChain".into(),
                format!("{d} is not a chain"),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in self.chains.iter().enumerate() {
            if !names.insert(c.name.as_str()) {
                return Err(invalid(
                    format!("chains[{i}].name"),
                    format!("{:?} is used twice", c.name),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(name: &str) -> Chain {
        Chain {
            name: name.into(),
            origin: format!("test {name}"),
            action: ChainAction::Passthrough {
                backends: vec![PassthroughBackend {
                    backend: format!("{name}.default.svc.cluster.local:443"),
                    cluster: format!("outbound|443||{name}.default.svc.cluster.local"),
                    weight: 1,
                }],
            },
            hosts: Vec::new(),
            host_check: None,
        }
    }

    fn table(family: Family, hosts: &[&str], default: bool) -> TlsTable {
        let one = family == Family::IngressNginx;
        let mut chains: Vec<Chain> = hosts.iter().map(|h| chain(h)).collect();
        let rules = hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                SniPattern::parse(h, one).map(|pattern| SniRule { pattern, chain: i })
            })
            .collect();
        let default_chain = default.then(|| {
            chains.push(chain("default"));
            chains.len() - 1
        });
        TlsTable {
            family,
            chains,
            rules,
            default_chain,
            response_headers: Vec::new(),
        }
    }

    fn picked(t: &TlsTable, sni: Option<&str>) -> Option<String> {
        t.select(sni).chain.map(|c| c.name.clone())
    }

    #[test]
    fn normalizes_sni() {
        assert_eq!(normalize_sni("Shop.Example.COM."), "shop.example.com");
        assert_eq!(normalize_sni("a.test.."), "a.test.");
        assert_eq!(normalize_sni(""), "");
    }

    #[test]
    fn nginx_wildcards_take_one_label() {
        let t = table(
            Family::IngressNginx,
            &["shop.example.com", "*.example.com"],
            true,
        );
        for (sni, want) in [
            (Some("shop.example.com"), "shop.example.com"),
            (Some("SHOP.example.com."), "shop.example.com"),
            (Some("cart.example.com"), "*.example.com"),
            (Some("a.cart.example.com"), "default"),
            (Some("example.com"), "default"),
            (Some(".example.com"), "default"),
            (None, "default"),
            (Some(""), "default"),
        ] {
            assert_eq!(picked(&t, sni).as_deref(), Some(want), "{sni:?}");
        }
    }

    #[test]
    fn istio_wildcards_take_any_depth_and_no_default_refuses() {
        let t = table(Family::Istio, &["shop.example.com", "*.example.com"], false);
        assert_eq!(
            picked(&t, Some("a.b.example.com")).as_deref(),
            Some("*.example.com")
        );
        assert_eq!(picked(&t, Some("other.test")), None);
        let s = t.select(None);
        assert_eq!((s.chain, s.why.clone()), (None, Why::NoSni));
        assert!(s.to_string().contains("refused"), "{s}");
    }

    #[test]
    fn patterns_and_their_regexes_agree() {
        let re = |p: &SniPattern| regex::Regex::new(&p.regex()).unwrap();
        let patterns = [
            SniPattern::parse("shop.example.com", true).unwrap(),
            SniPattern::parse("*.example.com", true).unwrap(),
            SniPattern::parse("*.example.com", false).unwrap(),
            SniPattern::parse("*.a-b.test", false).unwrap(),
        ];
        for sni in [
            "shop.example.com",
            "Shop.Example.com.",
            "shopxexample.com",
            "a.example.com",
            "a.b.example.com",
            "example.com",
            ".example.com",
            "x.a-b.test",
            "x.y.a-b.test",
            "a-b.test",
            "shop.example.com..",
            "x..example.com",
            "a..b.example.com",
        ] {
            for p in &patterns {
                assert_eq!(
                    p.matches(&normalize_sni(sni)),
                    re(p).is_match(sni),
                    "{p} on {sni:?}: {}",
                    p.regex()
                );
            }
        }
    }

    #[test]
    fn gateway_listeners_answer_421_for_a_host_of_another_listener() {
        // conformance httproute-https-listener-detect-misdirected-requests: a catch-all listener,
        // second-example.org, *.wildcard.org, fourth-example.wildcard.org.
        let mut t = table(
            Family::GatewayApi,
            // Rules in precedence order, as the controller sorts them.
            &[
                "second-example.org",
                "fourth-example.wildcard.org",
                "*.wildcard.org",
            ],
            true,
        );
        for c in &mut t.chains {
            c.host_check = Some(HostCheck::Listener);
        }
        let status = |sni: &str, host: &str| t.misdirected(Some(sni), host).map(|(s, _)| s);
        assert_eq!(status("example.org", "example.org"), None);
        assert_eq!(status("example.org", "second-example.org"), Some(421));
        assert_eq!(status("example.org", "unknown-example.org"), None);
        assert_eq!(status("second-example.org", "example.org"), Some(421));
        assert_eq!(
            status("second-example.org", "unknown-example.org"),
            Some(421)
        );
        assert_eq!(
            status("third-example.wildcard.org", "fith-example.wildcard.org"),
            None
        );
        assert_eq!(
            status("third-example.wildcard.org", "fourth-example.wildcard.org"),
            Some(421)
        );
        assert_eq!(
            status("third-example.wildcard.org", "second-example.org"),
            Some(421)
        );
        assert_eq!(
            status("fourth-example.wildcard.org", "fith-example.wildcard.org"),
            Some(421)
        );
        assert_eq!(status("unknown-example.org", "example.org"), None);
        // Without a catch-all, a Host no listener takes is 404.
        let mut t = t.clone();
        t.default_chain = None;
        assert_eq!(
            t.misdirected(Some("second-example.org"), "nowhere.test")
                .map(|(s, _)| s),
            Some(404)
        );
    }

    #[test]
    fn istio_servers_answer_404_for_a_host_outside_the_server() {
        let mut t = table(Family::Istio, &["a.example.com", "*.example.org"], false);
        for c in &mut t.chains {
            c.hosts = vec![c.name.clone()];
            c.host_check = Some(HostCheck::Server);
        }
        let status = |sni: &str, host: &str| t.misdirected(Some(sni), host).map(|(s, _)| s);
        assert_eq!(status("a.example.com", "a.example.com"), None);
        assert_eq!(status("a.example.com", "x.example.org"), Some(404));
        assert_eq!(status("x.example.org", "y.z.example.org"), None);
        assert_eq!(
            status("unknown.test", "a.example.com"),
            None,
            "no chain: nothing to check"
        );
    }

    #[test]
    fn catch_all_is_not_a_rule() {
        assert_eq!(SniPattern::parse("*", false), None);
        assert_eq!(SniPattern::parse("", false), None);
    }

    #[test]
    fn validate_names_the_field() {
        let mut t = table(Family::GatewayApi, &["a.test"], false);
        assert!(t.validate().is_ok());
        t.rules[0].chain = 9;
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("rules[0].chain"));
        t.rules[0].chain = 0;
        t.chains.push(chain("a.test"));
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("chains[1].name"));
    }

    #[test]
    fn versions() {
        assert_eq!(TlsVersion::parse("1.2"), Some(TlsVersion::V1_2));
        assert_eq!(TlsVersion::parse("TLSv1_3"), Some(TlsVersion::V1_3));
        assert_eq!(TlsVersion::parse("TLS_V1_0"), Some(TlsVersion::V1_0));
        assert_eq!(TlsVersion::parse("TLSv1.1"), Some(TlsVersion::V1_1));
        assert_eq!(TlsVersion::parse("SSLv3"), None);
        assert!(TlsVersion::V1_2 < TlsVersion::V1_3);
    }
}
