//! The scenario format: what a file holds (objects, requests, expectations), how it is read
//! (unknown keys are errors), what a host observed, and the URLs requests name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// What it pins.
    #[serde(default)]
    pub description: Option<String>,
    /// Kubernetes objects, as a user would apply them.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Requests and their expectations.
    #[serde(default)]
    pub requests: Vec<Request>,
}

/// Where a request enters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The ingress listeners.
    #[default]
    Gateway,
    /// The sidecar's outbound listener.
    Sidecar,
}

/// `null` and absent are different for `sni`: absent means "the URL host", null means "none".
fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A YAML scalar (string, number or bool) read as a string, as header values are.
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "{k}: {other} is not a scalar"
            ))),
        })
        .collect()
}

/// One request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Name.
    pub name: String,
    /// Entry point.
    #[serde(default)]
    pub via: Via,
    /// `scheme://host[:port]/path?query`.
    pub url: String,
    /// `tls` or `tcp` for a raw connection instead of HTTP.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Destination `ip:port` for sidecar or raw requests.
    #[serde(default)]
    pub address: Option<String>,
    /// SNI override (`null`: send none).
    #[serde(default, deserialize_with = "double_option")]
    pub sni: Option<Option<String>>,
    /// Method (GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers; `host` replaces the URL's host.
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: BTreeMap<String, String>,
    /// Client source address.
    #[serde(default)]
    pub source: Option<String>,
    /// Client certificate (Secret name).
    #[serde(default)]
    pub client_certificate: Option<String>,
    /// Send this many times (for distributions and stickiness).
    #[serde(default)]
    pub repeat: Option<u32>,
    /// `"1.1"` or `"2"`.
    #[serde(default)]
    pub http_version: Option<String>,
    /// Highest TLS version offered.
    #[serde(default)]
    pub tls_max_version: Option<String>,
    /// What must happen.
    pub expect: Expect,
}

/// What must happen to a request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Backend that served it: `FQDN:port`.
    #[serde(default)]
    pub backend: Option<String>,
    /// Endpoint that served it: `ip:port`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// One of these endpoints served it.
    #[serde(default)]
    pub endpoint_in: Option<Vec<String>>,
    /// Response status.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Location` response header.
    #[serde(default)]
    pub location: Option<String>,
    /// Exact response body.
    #[serde(default)]
    pub body: Option<String>,
    /// What the backend received.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    /// Response headers (exact values).
    #[serde(default, deserialize_with = "scalar_map")]
    pub response_headers: BTreeMap<String, String>,
    /// Certificate served by the handshake.
    #[serde(default)]
    pub certificate: Option<String>,
    /// `closed`.
    #[serde(default)]
    pub connection: Option<String>,
    /// A copy also reached this backend.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Share of `repeat` requests per backend (or endpoint).
    #[serde(default)]
    pub distribution: Option<BTreeMap<String, f64>>,
    /// Allowed deviation for `distribution` (0.05).
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// Every `repeat` request went to one endpoint.
    #[serde(default)]
    pub same_endpoint: Option<bool>,
}

/// What the backend must have received.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Path (with query).
    #[serde(default)]
    pub path: Option<String>,
    /// Host header.
    #[serde(default)]
    pub host: Option<String>,
    /// Headers (exact values).
    #[serde(default, deserialize_with = "scalar_map")]
    pub headers: BTreeMap<String, String>,
    /// Headers that must not be there.
    #[serde(default)]
    pub absent_headers: Vec<String>,
}

/// What the echo backend reports about a request it received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// `ip:port` the backend listens on.
    pub endpoint: String,
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Host header (or `:authority`).
    pub host: String,
    /// Headers, names lower-case, in order.
    pub headers: Vec<(String, String)>,
}

impl Echo {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a host observed for one request (one of a `repeat`).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Status, if there was a response.
    pub status: Option<u16>,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
    /// The echo report, when a backend answered.
    pub echo: Option<Echo>,
    /// Why there is no response (connection refused, timeout…).
    pub error: Option<String>,
    /// Mirror copies of the request that reached a backend (host `…-shadow`).
    pub mirrored: Vec<Echo>,
    /// The names of the certificate the TLS handshake served (`ns/name`, `default`, `fake`);
    /// `None` when no handshake completed (plain HTTP, refused, closed).
    pub certificate: Option<Vec<String>>,
    /// How the connection ended without an HTTP answer: `closed` (the proxy closed it, or the
    /// handshake failed) or `refused` (nothing listens).
    pub connection: Option<String>,
}

impl Observed {
    /// A response header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The connection ended without an HTTP answer.
    pub fn ended(connection: &str, why: impl Into<String>) -> Observed {
        Observed {
            connection: Some(connection.to_owned()),
            error: Some(why.into()),
            ..Observed::default()
        }
    }

    /// A one-line summary for failure messages.
    pub fn summary(&self) -> String {
        match (&self.error, self.status, &self.echo) {
            (Some(e), _, _) => format!("no response ({e})"),
            (None, Some(s), Some(echo)) => format!("{s} from endpoint {}", echo.endpoint),
            (None, Some(s), None) => {
                let body = String::from_utf8_lossy(&self.body);
                let body: String = body.chars().take(80).collect();
                format!("{s} {body:?}")
            }
            (None, None, _) => "nothing".into(),
        }
    }
}

/// Loads a scenario file.
///
/// # Errors
/// A message naming the file and the field at fault.
pub fn load(path: &Path) -> Result<Scenario, String> {
    let text = portico_controller::source::read_text(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    portico_controller::source::check_nesting(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("{}: not valid YAML: {e}", path.display()))?;
    serde_path_to_error::deserialize(value)
        .map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner()))
}

/// Expands paths (files or folders, searched recursively) into sorted scenario files.
///
/// # Errors
/// A path that does not exist.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = BTreeSet::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                let entries =
                    std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml")
                    ) {
                        out.insert(path);
                    }
                }
            }
        } else if p.is_file() {
            out.insert(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(out.into_iter().collect())
}

/// A parsed request URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http`, `https` or `tcp`.
    pub scheme: String,
    /// Host as written.
    pub host: String,
    /// Port (scheme default when absent).
    pub port: u16,
    /// Whether the URL spelled the port.
    pub explicit_port: bool,
    /// Path and query (`/` when absent).
    pub path: String,
}

impl Url {
    /// Parses `scheme://host[:port][/path]`.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(url: &str) -> Result<Url, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("url {url:?}: no scheme"))?;
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            "tcp" => 0,
            other => {
                return Err(format!(
                    "url {url:?}: scheme {other:?} is not http, https or tcp"
                ))
            }
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("url {url:?}: bad port {p:?}"))?;
                (h.to_owned(), Some(port))
            }
            _ => (authority.to_owned(), None),
        };
        if host.is_empty() {
            return Err(format!("url {url:?}: no host"));
        }
        let port_num = port.unwrap_or(default_port);
        if port_num == 0 {
            return Err(format!("url {url:?}: a tcp url needs a port"));
        }
        Ok(Url {
            scheme: scheme.to_owned(),
            host,
            port: port_num,
            explicit_port: port.is_some(),
            path,
        })
    }

    /// The Host header a client sends for this URL.
    pub fn authority(&self) -> String {
        if self.explicit_port {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.clone()
        }
    }
}

fn is_loopback(addr: &str) -> bool {
    let ip = addr
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| addr.parse::<std::net::IpAddr>());
    matches!(ip, Ok(std::net::IpAddr::V4(v4)) if v4.is_loopback())
}

/// Every `ip:port` in EndpointSlices mapped to the backends (`FQDN:port`) it serves, from the
/// raw objects (independently of `translate`, which is what is being tested).
pub fn endpoint_backends(objects: &[Value]) -> HashMap<String, BTreeSet<String>> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let ns_of = |o: &Value| {
        let ns = o
            .get("metadata")
            .map(|m| s(m, "namespace"))
            .unwrap_or_default();
        if ns.is_empty() {
            "default".to_owned()
        } else {
            ns
        }
    };
    // (ns, service, port name) -> service port
    let mut ports: HashMap<(String, String, String), u64> = HashMap::new();
    for o in objects.iter().filter(|o| s(o, "kind") == "Service") {
        let name = o.get("metadata").map(|m| s(m, "name")).unwrap_or_default();
        for p in o
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(port) = p.get("port").and_then(Value::as_u64) {
                ports.insert((ns_of(o), name.clone(), s(p, "name")), port);
            }
        }
    }
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    // ServiceEntry endpoints serve `host:port` for each host and port (the endpoint's port from
    // its `ports[name]`, else the port's `targetPort`, else its number).
    for o in objects.iter().filter(|o| s(o, "kind") == "ServiceEntry") {
        let spec = o.get("spec").cloned().unwrap_or_default();
        let list = |k: &str| {
            spec.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for p in list("ports") {
            let Some(number) = p.get("number").and_then(Value::as_u64) else {
                continue;
            };
            // Its addresses that are one IP each (a NONE entry's traffic goes there), on the
            // port and its target port.
            let ips = list("addresses")
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|a| {
                    a.strip_suffix("/32")
                        .or(Some(a))
                        .filter(|a| !a.contains('/'))
                })
                .map(str::to_owned)
                .collect::<Vec<_>>();
            let target = p.get("targetPort").and_then(Value::as_u64);
            for ip in &ips {
                for port in std::iter::once(number).chain(target) {
                    for host in list("hosts").iter().filter_map(Value::as_str) {
                        out.entry(format!("{ip}:{port}"))
                            .or_default()
                            .insert(format!("{host}:{number}"));
                    }
                }
            }
            for ep in list("endpoints") {
                let address = s(&ep, "address");
                let port = ep
                    .get("ports")
                    .and_then(|m| m.get(s(&p, "name")))
                    .and_then(Value::as_u64)
                    .or_else(|| p.get("targetPort").and_then(Value::as_u64))
                    .unwrap_or(number);
                for host in list("hosts").iter().filter_map(Value::as_str) {
                    out.entry(format!("{address}:{port}"))
                        .or_default()
                        .insert(format!("{host}:{number}"));
                }
            }
        }
    }
    for o in objects.iter().filter(|o| s(o, "kind") == "EndpointSlice") {
        let Some(svc) = o
            .pointer("/metadata/labels/kubernetes.io~1service-name")
            .and_then(Value::as_str)
        else {
            continue;
        };
        for p in o
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(target) = p.get("port").and_then(Value::as_u64) else {
                continue;
            };
            let Some(port) = ports.get(&(ns_of(o), svc.to_owned(), s(p, "name"))) else {
                continue;
            };
            for ep in o
                .get("endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for a in ep
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(a) = a.as_str() {
                        out.entry(format!("{a}:{target}"))
                            .or_default()
                            .insert(format!("{svc}.{}.svc.cluster.local:{port}", ns_of(o)));
                    }
                }
            }
        }
    }
    out
}

/// Checks the scenario-wide rules: every address loopback. Returns the problems.
pub fn check_addresses(scenario: &Scenario) -> Vec<String> {
    let mut problems = Vec::new();
    for o in scenario
        .objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("EndpointSlice"))
    {
        for a in o
            .pointer("/endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for addr in a
                .get("addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let addr = addr.as_str().unwrap_or("");
                if !is_loopback(addr) {
                    problems.push(format!(
                        "endpoint address {addr:?} is not loopback (127.0.0.0/8)"
                    ));
                }
            }
        }
    }
    for o in scenario
        .objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("ServiceEntry"))
    {
        let spec = o.get("spec").cloned().unwrap_or_default();
        let endpoints = spec
            .get("endpoints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for ep in endpoints {
            let addr = ep.get("address").and_then(Value::as_str).unwrap_or("");
            if addr.parse::<std::net::IpAddr>().is_ok() && !is_loopback(addr) {
                problems.push(format!(
                    "ServiceEntry endpoint address {addr:?} is not loopback (127.0.0.0/8)"
                ));
            }
        }
    }
    for r in &scenario.requests {
        for (what, addr) in [("address", &r.address), ("source", &r.source)] {
            if let Some(a) = addr {
                if !is_loopback(a) {
                    problems.push(format!(
                        "request {:?}: {what} {a:?} is not loopback (127.0.0.0/8)",
                        r.name
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://shop.example.com/cart/items?id=3").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str(), u.authority()),
            (
                "shop.example.com",
                80,
                "/cart/items?id=3",
                "shop.example.com".to_owned()
            )
        );
        let u = Url::parse("http://a.test:8080").unwrap();
        assert_eq!(
            (u.port, u.path.as_str(), u.authority()),
            (8080, "/", "a.test:8080".to_owned())
        );
        let u = Url::parse("http://a.test?x=1").unwrap();
        assert_eq!(u.path, "/?x=1");
        assert!(Url::parse("ftp://a/").is_err());
        assert!(Url::parse("http:///x").is_err());
        assert!(Url::parse("tcp://a.test").is_err());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let yaml =
            "name: x\nrequests:\n- name: r\n  url: http://a/\n  expect: {status: 200, stauts: 1}\n";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, yaml).unwrap();
        let err = load(&p).unwrap_err();
        assert!(
            err.contains("requests[0].expect") && err.contains("stauts"),
            "{err}"
        );
    }

    #[test]
    fn sni_null_differs_from_absent() {
        let r: Request =
            serde_yaml::from_str("name: r\nurl: https://a/\nsni: null\nexpect: {}\n").unwrap();
        assert_eq!(r.sni, Some(None));
        let r: Request = serde_yaml::from_str("name: r\nurl: https://a/\nexpect: {}\n").unwrap();
        assert_eq!(r.sni, None);
    }
}
