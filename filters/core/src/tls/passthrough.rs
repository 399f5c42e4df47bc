//! The `tls` network filter's policy: read the ClientHello, pick the chain by SNI from the same
//! [`TlsTable`] Envoy's filter chain matcher was rendered from, and for a passthrough chain pick
//! a backend by weight; the glue sets `envoy.tcp_proxy.cluster` to its cluster.

use serde::{Deserialize, Serialize};

use super::client_hello::{self, HelloError};
use super::select::{ChainAction, TlsTable};
use crate::lb::WeightedRoundRobin;

/// The `apiVersion` of the `tls` filter's configuration.
pub const TLS_API_VERSION: &str = "tls.portico.dev/v1alpha1";

/// The `tls` filter's configuration: the port's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsFilterConfig {
    /// Must be [`TLS_API_VERSION`].
    pub api_version: String,
    /// Opaque version (a content hash), logged on load.
    pub generation: String,
    /// The listener's port.
    pub port: u16,
    /// The port's TLS table.
    pub table: TlsTable,
}

impl TlsFilterConfig {
    /// Serializes (a `TlsFilterConfig` always serializes).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What to do with a connection after the bytes seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The ClientHello is not complete: wait for more bytes.
    Wait,
    /// Send the connection, untouched, to this cluster.
    Forward {
        /// Envoy cluster.
        cluster: String,
        /// `FQDN:port` of the backend.
        backend: String,
        /// Why.
        why: String,
    },
    /// Close the connection.
    Close(String),
}

/// The compiled policy, with its per-worker weighted round robin.
#[derive(Debug)]
pub struct Passthrough {
    config: TlsFilterConfig,
    split: std::cell::RefCell<WeightedRoundRobin<usize>>,
}

impl Passthrough {
    /// Parses and checks a configuration.
    ///
    /// # Errors
    /// The field at fault.
    pub fn from_json(bytes: &[u8]) -> Result<Passthrough, crate::ConfigError> {
        let config: TlsFilterConfig = crate::json::from_slice(bytes)?;
        if config.api_version != TLS_API_VERSION {
            return Err(crate::ConfigError::ApiVersion {
                got: config.api_version,
                want: TLS_API_VERSION,
            });
        }
        config.table.validate().map_err(|e| match e {
            crate::ConfigError::Invalid { field, message } => crate::ConfigError::Invalid {
                field: format!("table.{field}"),
                message,
            },
            other => other,
        })?;
        Ok(Passthrough {
            config,
            split: std::cell::RefCell::new(WeightedRoundRobin::default()),
        })
    }

    /// The configuration's generation.
    pub fn generation(&self) -> &str {
        &self.config.generation
    }

    /// Decides on the bytes a client has sent so far (all of them, from the first).
    pub fn decide(&self, data: &[u8]) -> Verdict {
        let hello = match client_hello::parse(data) {
            Ok(h) => h,
            Err(HelloError::Incomplete { .. }) => return Verdict::Wait,
            Err(e) => return Verdict::Close(format!("not a usable ClientHello: {e}")),
        };
        let selection = self.config.table.select(hello.sni.as_deref());
        let Some(chain) = selection.chain else {
            return Verdict::Close(selection.to_string());
        };
        let ChainAction::Passthrough { backends } = &chain.action else {
            return Verdict::Close(format!("{selection}: not a passthrough chain"));
        };
        let index = self
            .config
            .table
            .chains
            .iter()
            .position(|c| c.name == chain.name)
            .unwrap_or(0);
        let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        let picked = self.split.borrow_mut().pick(index, &weights);
        match picked.and_then(|i| backends.get(i)) {
            Some(b) => Verdict::Forward {
                cluster: b.cluster.clone(),
                backend: b.backend.clone(),
                why: selection.to_string(),
            },
            None => Verdict::Close(format!("{selection}: every backend has weight 0")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::select::{Chain, Family, PassthroughBackend, SniPattern, SniRule};

    fn hello(sni: &str) -> Vec<u8> {
        crate::tls::test_hello(Some(sni))
    }

    fn config() -> TlsFilterConfig {
        let backend = |name: &str, weight| PassthroughBackend {
            backend: format!("{name}.default.svc.cluster.local:443"),
            cluster: format!("outbound|443||{name}.default.svc.cluster.local"),
            weight,
        };
        TlsFilterConfig {
            api_version: TLS_API_VERSION.into(),
            generation: "g1".into(),
            port: 443,
            table: TlsTable {
                family: Family::Istio,
                chains: vec![Chain {
                    name: "pt".into(),
                    origin: "test".into(),
                    action: ChainAction::Passthrough {
                        backends: vec![backend("a", 3), backend("b", 1), backend("c", 0)],
                    },
                    hosts: Vec::new(),
                    host_check: None,
                }],
                rules: vec![SniRule {
                    pattern: SniPattern::parse("*.example.com", false).unwrap(),
                    chain: 0,
                }],
                default_chain: None,
                response_headers: Vec::new(),
            },
        }
    }

    #[test]
    fn forwards_by_sni_and_weight() {
        let p = Passthrough::from_json(config().to_json().as_bytes()).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..8 {
            match p.decide(&hello("a.example.com")) {
                Verdict::Forward { backend, .. } => *seen.entry(backend).or_insert(0) += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen.get("a.default.svc.cluster.local:443"), Some(&6));
        assert_eq!(seen.get("b.default.svc.cluster.local:443"), Some(&2));
        assert_eq!(seen.get("c.default.svc.cluster.local:443"), None);
    }

    #[test]
    fn waits_for_the_whole_hello_and_closes_otherwise() {
        let p = Passthrough::from_json(config().to_json().as_bytes()).unwrap();
        let full = hello("a.example.com");
        assert_eq!(p.decide(&full[..10]), Verdict::Wait);
        assert!(matches!(p.decide(&hello("other.test")), Verdict::Close(_)));
        assert!(matches!(
            p.decide(b"GET / HTTP/1.1\r\n\r\n"),
            Verdict::Close(_)
        ));
    }

    #[test]
    fn refuses_bad_configs() {
        let mut c = config();
        c.api_version = "x".into();
        assert!(Passthrough::from_json(c.to_json().as_bytes()).is_err());
        let mut c = config();
        c.table.rules[0].chain = 7;
        let e = Passthrough::from_json(c.to_json().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("table.rules[0].chain"), "{e}");
    }
}
