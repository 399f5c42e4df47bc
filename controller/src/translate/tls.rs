//! TLS material every family shares: Secrets read into checked key pairs and CA bundles, the
//! default and fake certificates, and the per-port [`TlsTable`]s the families fill.
//!
//! A Secret is decoded (`data` base64, `stringData` in clear), its PEM parsed, its key checked
//! against its certificate, and the certificate's DNS names kept so a family can check that it
//! covers the hosts that reference it. Every problem is a [`SecretProblem`] the family reports on
//! the referencing object, falling back the way its reference does.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::OnceLock;

use base64::Engine as _;
use portico_core::tls::select::{
    Certificate, CertificateSource, Chain, Family, SniPattern, SniRule, TlsTable,
};

use crate::model::{namespace_of, Object, Secret};
use crate::snapshot::SdsSecret;

/// Why a Secret cannot serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    /// No such Secret.
    #[error("Secret {0} not found")]
    Missing(String),
    /// A key is absent or empty.
    #[error("Secret {secret} has no {key:?}")]
    MissingKey {
        /// The Secret.
        secret: String,
        /// The key (`tls.crt`).
        key: String,
    },
    /// A `data` value is not base64.
    #[error("Secret {secret} data[{key:?}] is not base64: {message}")]
    Base64 {
        /// The Secret.
        secret: String,
        /// The key.
        key: String,
        /// The decoder's message.
        message: String,
    },
    /// A value is not the PEM it should be.
    #[error("Secret {secret} {key:?}: {message}")]
    Pem {
        /// The Secret.
        secret: String,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The private key is not the certificate's.
    #[error("Secret {0}: the private key does not match the certificate")]
    KeyMismatch(String),
}

/// A checked key pair.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The certificate chain, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// DNS subject alternative names of the leaf.
    pub dns_names: Vec<String>,
    /// Common name of the leaf's subject.
    pub common_name: Option<String>,
    /// Expiry of the leaf (seconds since the epoch).
    pub not_after: i64,
}

impl KeyPair {
    /// The names [`KeyPair::covers`] checks: the DNS SANs, or the CN when there are none.
    pub fn names(&self) -> Vec<String> {
        if self.dns_names.is_empty() {
            self.common_name.iter().cloned().collect()
        } else {
            self.dns_names.clone()
        }
    }

    /// Whether the leaf is valid for `host` by its DNS SANs, or its CN when it has none
    /// (ingress-nginx's `verifyHostname`, the legacy Go check).
    pub fn covers(&self, host: &str) -> bool {
        Self::matches_any(&self.names(), host)
    }

    /// Whether a DNS SAN of the leaf is valid for `host` (Go's `VerifyHostname`: no CN).
    pub fn covers_by_san(&self, host: &str) -> bool {
        Self::matches_any(&self.dns_names, host)
    }

    /// Go's `matchHostnames`: equal names, or a `*` first label standing for exactly one
    /// label; a wildcard host is covered by the same wildcard.
    fn matches_any(names: &[String], host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        names.iter().any(|n| {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            if n == host {
                return true;
            }
            match (n.strip_prefix("*."), host.split_once('.')) {
                (Some(suffix), Some((label, rest))) => {
                    !label.is_empty() && label != "*" && rest == suffix
                }
                _ => false,
            }
        })
    }
}

/// The generated self-signed certificate ingress-nginx serves when nothing else applies (its
/// `ssl.GetFakeSSLCert`: subject `O=Acme Co, CN=Kubernetes Ingress Controller Fake
/// Certificate`, DNS name `ingress.local`), valid for a year from `now` (the clock when `None`).
/// One per process.
pub fn fake_key_pair(now: Option<i64>) -> &'static KeyPair {
    static FAKE: OnceLock<KeyPair> = OnceLock::new();
    FAKE.get_or_init(|| {
        let mut params =
            rcgen::CertificateParams::new(vec!["ingress.local".to_owned()]).unwrap_or_default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Acme Co");
        dn.push(
            rcgen::DnType::CommonName,
            "Kubernetes Ingress Controller Fake Certificate",
        );
        params.distinguished_name = dn;
        // Valid for a year from now, as nginx's (rcgen's default is a fixed 1975–4096 span).
        let now = now.or_else(super::options::now).unwrap_or(0);
        let at = |secs: i64| {
            rcgen::date_time_ymd(1970, 1, 1)
                + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        };
        params.not_before = at(now - 3600);
        params.not_after = at(now + 365 * 24 * 3600);
        let generated = rcgen::KeyPair::generate()
            .and_then(|key| params.self_signed(&key).map(|cert| (key, cert)));
        match generated {
            Ok((key, cert)) => KeyPair {
                chain_pem: cert.pem(),
                key_pem: key.serialize_pem(),
                dns_names: vec!["ingress.local".into()],
                common_name: Some("Kubernetes Ingress Controller Fake Certificate".into()),
                not_after: now + 365 * 24 * 3600,
            },
            // ring's key generation only fails without an entropy source; serve nothing
            // rather than panic (the default chain is then refused).
            Err(_) => KeyPair {
                chain_pem: String::new(),
                key_pem: String::new(),
                dns_names: Vec::new(),
                common_name: None,
                not_after: 0,
            },
        }
    })
}

/// The DER of the first certificate of a PEM chain.
pub fn leaf_der(chain_pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

/// The subject of a DER certificate as RFC 2253 writes it (last RDN first, `,` between them):
/// what Envoy's `connection.subject_peer_certificate` and nginx's `$ssl_client_s_dn` give.
pub fn subject_rfc2253(der: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(rfc2253(parsed.subject()))
}

/// The issuer of a DER certificate as RFC 2253 writes it (Envoy's `%DOWNSTREAM_PEER_ISSUER%`,
/// nginx's `$ssl_client_i_dn`).
pub fn issuer_rfc2253(der: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(rfc2253(parsed.issuer()))
}

/// A certificate as Envoy's `%DOWNSTREAM_PEER_CERT%` gives it: PEM (64-character lines), with
/// newlines, spaces, `+`, `/` and `=` percent-encoded.
pub fn url_encoded_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    let mut out = String::with_capacity(pem.len() * 2);
    for c in pem.chars() {
        match c {
            '\n' => out.push_str("%0A"),
            ' ' => out.push_str("%20"),
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        let mut attrs = Vec::new();
        for attr in rdn.iter() {
            let oid = attr.attr_type().to_id_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN".to_owned(),
                "2.5.4.6" => "C".to_owned(),
                "2.5.4.7" => "L".to_owned(),
                "2.5.4.8" => "ST".to_owned(),
                "2.5.4.10" => "O".to_owned(),
                "2.5.4.11" => "OU".to_owned(),
                "0.9.2342.19200300.100.1.25" => "DC".to_owned(),
                "0.9.2342.19200300.100.1.1" => "UID".to_owned(),
                other => other.to_owned(),
            };
            let value = attr.as_str().unwrap_or_default();
            let mut escaped = String::with_capacity(value.len());
            for (i, c) in value.chars().enumerate() {
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                    || (i == 0 && matches!(c, '#' | ' '))
                {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            attrs.push(format!("{key}={escaped}"));
        }
        parts.push(attrs.join("+"));
    }
    parts.reverse();
    parts.join(",")
}

/// The DNS and URI subject alternative names of a DER certificate.
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, parsed)) => sans_of(&parsed, true),
        Err(_) => Vec::new(),
    }
}

/// The DNS (and, with `uri`, URI) subject alternative names of a parsed certificate.
fn sans_of(parsed: &x509_parser::certificate::X509Certificate<'_>, uri: bool) -> Vec<String> {
    parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    x509_parser::extensions::GeneralName::URI(u) if uri => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every served certificate of a snapshot's TLS tables: the leaf's DER → the names scenarios
/// use for it (`ns/name`, `default`, `fake`), so a harness can name what a handshake served.
pub fn served_certificates(snapshot: &crate::snapshot::Snapshot) -> BTreeMap<Vec<u8>, Vec<String>> {
    use portico_core::tls::select::ChainAction;
    let mut out: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for table in snapshot.listeners.iter().filter_map(|l| l.tls.as_ref()) {
        for chain in &table.chains {
            let ChainAction::Terminate(t) = &chain.action else {
                continue;
            };
            let Some(SdsSecret::KeyPair {
                certificate_chain, ..
            }) = snapshot.secrets.get(&t.certificate.sds)
            else {
                continue;
            };
            if let Some(der) = leaf_der(certificate_chain) {
                let names = out.entry(der).or_default();
                for n in t.certificate.source.names() {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
        }
    }
    out
}

/// Name of the SDS resource of the fake certificate.
pub const FAKE_SDS: &str = "portico-fake-certificate";

/// Reads a key pair from a Secret.
///
/// # Errors
/// What is wrong with it.
pub fn read_key_pair(secret: &Secret) -> Result<KeyPair, SecretProblem> {
    read_key_pair_from(secret, "tls.crt", "tls.key")
}

/// Reads a key pair from two keys of a Secret (`tls.crt`/`tls.key`, Istio's `cert`/`key`).
///
/// # Errors
/// What is wrong with it.
pub fn read_key_pair_from(
    secret: &Secret,
    crt_key: &str,
    key_key: &str,
) -> Result<KeyPair, SecretProblem> {
    read_key_pair_checked(secret, crt_key, key_key, false)
}

/// [`read_key_pair_from`]; with `keys_withheld`, a Secret without `key_key` is read for its
/// certificate alone ([`super::Options::keys_withheld`]).
fn read_key_pair_checked(
    secret: &Secret,
    crt_key: &str,
    key_key: &str,
    keys_withheld: bool,
) -> Result<KeyPair, SecretProblem> {
    let name = format!(
        "{}/{}",
        namespace_of(&secret.metadata),
        secret.metadata.name
    );
    let chain_pem = value(secret, &name, crt_key)?;
    let key_pem = match value(secret, &name, key_key) {
        Err(SecretProblem::MissingKey { .. }) if keys_withheld => String::new(),
        other => other?,
    };
    let pem_err = |key: &str, message: String| SecretProblem::Pem {
        secret: name.clone(),
        key: key.into(),
        message,
    };
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(crt_key, format!("not a PEM certificate chain: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(pem_err(crt_key, "holds no CERTIFICATE block".into()));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| pem_err(crt_key, format!("not an X.509 certificate: {e}")))?;
    if !key_pem.is_empty() {
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| pem_err(key_key, format!("not a PEM private key: {e}")))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| pem_err(key_key, format!("unsupported private key: {e}")))?;
        let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => return Err(SecretProblem::KeyMismatch(name)),
        }
    }
    let dns_names = sans_of(&parsed, false);
    let common_name = parsed
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok().map(str::to_owned));
    Ok(KeyPair {
        chain_pem,
        key_pem,
        dns_names,
        common_name,
        not_after: parsed.validity().not_after.timestamp(),
    })
}

/// A Secret's value in clear: `stringData` first, then `data` decoded.
fn value(secret: &Secret, name: &str, key: &str) -> Result<String, SecretProblem> {
    let missing = || SecretProblem::MissingKey {
        secret: name.to_owned(),
        key: key.to_owned(),
    };
    if let Some(v) = secret.string_data.get(key).filter(|v| !v.is_empty()) {
        return Ok(v.clone());
    }
    let raw = secret
        .data
        .get(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(missing)?;
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| SecretProblem::Base64 {
            secret: name.to_owned(),
            key: key.to_owned(),
            message: e.to_string(),
        })?;
    String::from_utf8(bytes).map_err(|_| SecretProblem::Pem {
        secret: name.to_owned(),
        key: key.to_owned(),
        message: "not text".into(),
    })
}

/// The Secrets of a translation, read once each, and the SDS resources the chains use.
pub(crate) struct Certificates<'a> {
    /// The time expiry is checked against ([`super::Options::now`]).
    now: Option<i64>,
    /// [`super::Options::keys_withheld`].
    pub(crate) keys_withheld: bool,
    secrets: HashMap<(&'a str, &'a str), &'a Secret>,
    /// By namespace, name and the two keys read.
    read: HashMap<(String, String, &'static str), Result<Rc<KeyPair>, SecretProblem>>,
    /// SDS resources by name: what the snapshot carries.
    pub(crate) sds: BTreeMap<String, SdsSecret>,
}

impl<'a> Certificates<'a> {
    pub(crate) fn new(objects: &'a [Object], now: Option<i64>) -> Self {
        let secrets = objects
            .iter()
            .filter_map(|o| match o {
                Object::Secret(s) => {
                    Some(((namespace_of(&s.metadata), s.metadata.name.as_str()), s))
                }
                _ => None,
            })
            .collect();
        Certificates {
            now,
            keys_withheld: false,
            secrets,
            read: HashMap::new(),
            sds: BTreeMap::new(),
        }
    }

    /// The `tls.crt`/`tls.key` key pair of Secret `ns/name`, read and checked once.
    pub(crate) fn key_pair(&mut self, ns: &str, name: &str) -> Result<Rc<KeyPair>, SecretProblem> {
        self.key_pair_from(ns, name, "tls.crt", "tls.key")
    }

    fn key_pair_from(
        &mut self,
        ns: &str,
        name: &str,
        crt: &'static str,
        key: &'static str,
    ) -> Result<Rc<KeyPair>, SecretProblem> {
        let cache = (ns.to_owned(), name.to_owned(), crt);
        if let Some(r) = self.read.get(&cache) {
            return r.clone();
        }
        let r = match self.secrets.get(&(ns, name)) {
            None => Err(SecretProblem::Missing(format!("{ns}/{name}"))),
            Some(s) => read_key_pair_checked(s, crt, key, self.keys_withheld).map(Rc::new),
        };
        self.read.insert(cache, r.clone());
        r
    }

    /// The diagnostic for a served certificate that has expired (it is served all the same, as
    /// ingress-nginx and Istio serve it), when the time is known.
    pub(crate) fn expiry(&self, pair: &KeyPair, secret: &str) -> Option<super::ErrorKind> {
        let now = self.now?;
        (pair.not_after < now).then(|| {
            super::ErrorKind::InvalidSetting(format!(
                "the certificate of Secret {secret} expired {} days ago; it is served anyway",
                (now - pair.not_after) / 86_400
            ))
        })
    }

    /// A value of Secret `ns/name` in clear.
    pub(crate) fn value_of(
        &self,
        ns: &str,
        name: &str,
        key: &str,
    ) -> Result<String, SecretProblem> {
        let secret = self
            .secrets
            .get(&(ns, name))
            .ok_or_else(|| SecretProblem::Missing(format!("{ns}/{name}")))?;
        value(secret, &format!("{ns}/{name}"), key)
    }

    /// A served certificate for Secret `ns/name` (registering its SDS resource).
    pub(crate) fn certificate(
        &mut self,
        ns: &str,
        name: &str,
        default: bool,
    ) -> Result<(Certificate, Rc<KeyPair>), SecretProblem> {
        self.certificate_from(ns, name, "tls.crt", "tls.key", default)
    }

    /// A served certificate from two given keys of Secret `ns/name` (Istio's `cert`/`key`).
    pub(crate) fn certificate_with_keys(
        &mut self,
        ns: &str,
        name: &str,
        crt: &'static str,
        key: &'static str,
    ) -> Result<(Certificate, Rc<KeyPair>), SecretProblem> {
        self.certificate_from(ns, name, crt, key, false)
    }

    fn certificate_from(
        &mut self,
        ns: &str,
        name: &str,
        crt: &'static str,
        key: &'static str,
        default: bool,
    ) -> Result<(Certificate, Rc<KeyPair>), SecretProblem> {
        let pair = self.key_pair_from(ns, name, crt, key)?;
        let sds = format!("secret-{ns}-{name}");
        self.sds.insert(
            sds.clone(),
            SdsSecret::KeyPair {
                certificate_chain: pair.chain_pem.clone(),
                private_key: pair.key_pem.clone(),
            },
        );
        let full = format!("{ns}/{name}");
        let source = if default {
            CertificateSource::Default(full)
        } else {
            CertificateSource::Secret(full)
        };
        Ok((Certificate { sds, source }, pair))
    }

    /// The fake certificate (registering its SDS resource); `None` if it could not be generated.
    pub(crate) fn fake(&mut self) -> Option<Certificate> {
        let pair = fake_key_pair(self.now);
        if pair.chain_pem.is_empty() {
            return None;
        }
        self.sds.insert(
            FAKE_SDS.to_owned(),
            SdsSecret::KeyPair {
                certificate_chain: pair.chain_pem.clone(),
                private_key: pair.key_pem.clone(),
            },
        );
        Some(Certificate {
            sds: FAKE_SDS.to_owned(),
            source: CertificateSource::Fake,
        })
    }
}

/// What a family's TLS part writes to: the Secrets it reads and the tables it fills.
pub(crate) struct TlsOut<'a, 'o> {
    /// The Secrets.
    pub(crate) certs: &'a mut Certificates<'o>,
    /// The tables.
    pub(crate) ports: &'a mut TlsPorts,
}

/// The TLS tables of every port, as the families fill them.
#[derive(Debug, Default)]
pub(crate) struct TlsPorts {
    pub(crate) tables: BTreeMap<u16, TlsTable>,
}

impl TlsPorts {
    /// The table of `port`, created for `family` if new.
    pub(crate) fn table(&mut self, port: u16, family: Family) -> &mut TlsTable {
        self.tables.entry(port).or_insert_with(|| TlsTable {
            family,
            chains: Vec::new(),
            rules: Vec::new(),
            default_chain: None,
            response_headers: Vec::new(),
        })
    }

    /// Adds a chain to `port` (or finds the one of that name) and returns its index.
    pub(crate) fn chain(&mut self, port: u16, family: Family, chain: Chain) -> usize {
        let table = self.table(port, family);
        if let Some(i) = table.chains.iter().position(|c| c.name == chain.name) {
            return i;
        }
        table.chains.push(chain);
        table.chains.len() - 1
    }

    /// Adds an SNI rule unless the same pattern already has one (the first stays); returns
    /// whether it was added.
    pub(crate) fn rule(
        &mut self,
        port: u16,
        family: Family,
        pattern: SniPattern,
        chain: usize,
    ) -> bool {
        let table = self.table(port, family);
        if table.rules.iter().any(|r| r.pattern == pattern) {
            return false;
        }
        table.rules.push(SniRule { pattern, chain });
        true
    }

    /// Sets the default chain of `port` unless one is set; returns whether it was set.
    pub(crate) fn default_chain(&mut self, port: u16, family: Family, chain: usize) -> bool {
        let table = self.table(port, family);
        if table.default_chain.is_some() {
            return false;
        }
        table.default_chain = Some(chain);
        true
    }

    /// Orders every table's rules by precedence: exact names first, then wildcards by longest
    /// suffix (a one-label wildcard before an any-depth one of the same suffix), each group in
    /// the order added.
    pub(crate) fn finish(mut self) -> BTreeMap<u16, TlsTable> {
        for t in self.tables.values_mut() {
            t.rules.sort_by_key(|r| match &r.pattern {
                SniPattern::Exact(_) => (0, 0, 0),
                SniPattern::OneLabel(s) => (1, usize::MAX - s.len(), 0),
                SniPattern::AnyLabels(s) => (1, usize::MAX - s.len(), 1),
            });
        }
        self.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> KeyPair {
        KeyPair {
            chain_pem: String::new(),
            key_pem: String::new(),
            dns_names: names.iter().map(|s| (*s).to_owned()).collect(),
            common_name: Some("cn.test".into()),
            not_after: 0,
        }
    }

    #[test]
    fn coverage_is_go_verify_hostname() {
        let p = pair(&["shop.example.com", "*.wild.test"]);
        assert!(p.covers("shop.example.com"));
        assert!(p.covers("SHOP.example.com."));
        assert!(p.covers("a.wild.test"));
        assert!(p.covers("*.wild.test"));
        assert!(!p.covers("a.b.wild.test"));
        assert!(!p.covers("wild.test"));
        assert!(!p.covers("other.example.com"));
        assert!(!p.covers("cn.test"), "the CN counts only without DNS SANs");
        let cn_only = KeyPair {
            dns_names: Vec::new(),
            ..pair(&[])
        };
        assert!(cn_only.covers("cn.test"));
        assert!(!cn_only.covers_by_san("cn.test"));
    }

    #[test]
    fn subjects_print_as_rfc2253() {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/certs/client.crt.pem"
        ))
        .unwrap();
        let der = leaf_der(&pem).unwrap();
        assert_eq!(
            subject_rfc2253(&der).as_deref(),
            Some("CN=client.example.com,O=Portico Tests")
        );
    }

    #[test]
    fn the_fake_certificate_is_generated_once_and_reads_back() {
        let fake = fake_key_pair(None);
        assert!(std::ptr::eq(fake, fake_key_pair(None)));
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "fake", "namespace": "x"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": fake.chain_pem, "tls.key": fake.key_pem},
        }))
        .unwrap();
        let read = read_key_pair(&secret).unwrap();
        assert_eq!(read.dns_names, ["ingress.local"]);
        assert_eq!(
            read.common_name.as_deref(),
            Some("Kubernetes Ingress Controller Fake Certificate")
        );
        assert!(read.not_after > 0);
    }

    #[test]
    fn problems_name_the_secret_and_key() {
        let fake = fake_key_pair(None);
        let other = rcgen::generate_simple_self_signed(vec!["x.test".into()]).unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let secret = |data: serde_json::Value| -> Secret {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "s", "namespace": "n"}, "data": data}))
            .unwrap()
        };
        for (data, want) in [
            (serde_json::json!({}), "Secret n/s has no \"tls.crt\""),
            (
                serde_json::json!({"tls.crt": "%%%", "tls.key": "x"}),
                "is not base64",
            ),
            (
                serde_json::json!({"tls.crt": b64("hello"), "tls.key": b64(&fake.key_pem)}),
                "holds no CERTIFICATE",
            ),
            (
                serde_json::json!({"tls.crt": b64(&fake.chain_pem), "tls.key": b64("junk")}),
                "not a PEM private key",
            ),
            (
                serde_json::json!({"tls.crt": b64(&fake.chain_pem), "tls.key": b64(&other.signing_key.serialize_pem())}),
                "does not match",
            ),
        ] {
            let err = read_key_pair(&secret(data.clone()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{data}: {err}");
        }
        let ok = secret(
            serde_json::json!({"tls.crt": b64(&other.cert.pem()), "tls.key": b64(&other.signing_key.serialize_pem())}),
        );
        assert_eq!(read_key_pair(&ok).unwrap().dns_names, ["x.test"]);
    }

    #[test]
    fn withheld_keys_read_the_certificate_alone() {
        let other = rcgen::generate_simple_self_signed(vec!["x.test".into()]).unwrap();
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "n"},
            "stringData": {"tls.crt": other.cert.pem()}}))
        .unwrap();
        let err = read_key_pair(&secret).unwrap_err().to_string();
        assert!(err.contains("has no \"tls.key\""), "{err}");
        let read = read_key_pair_checked(&secret, "tls.crt", "tls.key", true).unwrap();
        assert_eq!(read.dns_names, ["x.test"]);
        assert!(read.key_pem.is_empty());
        // A key that is there is still checked, and a certificate is still required.
        let mismatched: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s", "namespace": "n"},
            "stringData": {"tls.crt": other.cert.pem(), "tls.key": fake_key_pair(None).key_pem}}))
        .unwrap();
        assert!(read_key_pair_checked(&mismatched, "tls.crt", "tls.key", true).is_err());
        let empty: Secret = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "s", "namespace": "n"}}),
        )
        .unwrap();
        assert!(read_key_pair_checked(&empty, "tls.crt", "tls.key", true).is_err());
    }
}
