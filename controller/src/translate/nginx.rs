//! ingress-nginx annotations (`nginx.ingress.kubernetes.io/*`), as ingress-nginx reads them.
//!
//! Supported: `rewrite-target` (with `$n` captures), `use-regex`, `ssl-redirect`,
//! `force-ssl-redirect`, `permanent-redirect` (+ `-code`), `temporal-redirect` (+ `-code`),
//! `app-root`, canaries: `canary`, `canary-by-header` (+ `-value`, `-pattern`),
//! `canary-by-cookie`, `canary-weight` (+ `canary-weight-total`), and `upstream-vhost`,
//! `x-forwarded-prefix`, `server-alias`, `allowlist-source-range` (`whitelist-source-range`),
//! `denylist-source-range`, `upstream-hash-by`, `from-to-www-redirect`, `enable-cors` with its
//! `cors-*` settings. Any other annotation of the prefix is reported as ignored.
//!
//! # Semantics (from the ingress-nginx user guide and annotations page)
//! - If `use-regex` or `rewrite-target` is set on any Ingress of a host, every path of that host
//!   becomes a case-insensitive regex anchored at the start; paths are tried longest first.
//! - `rewrite-target` replaces the whole path with the target, `$n` being the path regex's
//!   captures; the query is kept.
//! - An Ingress with TLS for a host redirects plain HTTP to HTTPS with 308 unless
//!   `ssl-redirect: "false"`; `force-ssl-redirect: "true"` redirects without TLS too.
//! - A canary Ingress sends a request to its backend by header (`always`/`never`, or the
//!   configured value or pattern), then by cookie (`always`/`never`), then by weight; it only
//!   applies to host and path pairs a non-canary Ingress defines.

use std::collections::BTreeMap;

use portico_core::config::HashKey;

use super::diagnostics::ErrorKind;

const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// The ingress-nginx annotations of one Ingress.
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    /// `rewrite-target`.
    pub rewrite_target: Option<String>,
    /// `use-regex`.
    pub use_regex: bool,
    /// `ssl-redirect` (default: true when the Ingress has TLS for the host).
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`.
    pub force_ssl_redirect: bool,
    /// `permanent-redirect` and its code (default 301).
    pub permanent_redirect: Option<(String, u16)>,
    /// `temporal-redirect` and its code (default 302).
    pub temporal_redirect: Option<(String, u16)>,
    /// `app-root`.
    pub app_root: Option<String>,
    /// Canary settings, when `canary: "true"`.
    pub canary: Option<Canary>,
    /// `upstream-vhost`: the Host the backend receives.
    pub upstream_vhost: Option<String>,
    /// `x-forwarded-prefix`: the `X-Forwarded-Prefix` header the backend receives.
    pub x_forwarded_prefix: Option<String>,
    /// `server-alias`: more host names for this Ingress's hosts.
    pub server_alias: Vec<String>,
    /// `allowlist-source-range` (or the older `whitelist-source-range`): the only clients served.
    pub allow_ranges: Vec<String>,
    /// `denylist-source-range`: clients refused.
    pub deny_ranges: Vec<String>,
    /// `upstream-hash-by`: consistent hashing over one nginx variable.
    pub upstream_hash_by: Option<HashKey>,
    /// `from-to-www-redirect`.
    pub from_to_www: bool,
    /// `enable-cors` and its `cors-*` settings.
    pub cors: Option<portico_core::config::Cors>,
}

/// A canary Ingress's conditions.
#[derive(Debug, Clone, Default)]
pub struct Canary {
    /// `canary-by-header`.
    pub header: Option<String>,
    /// `canary-by-header-value`.
    pub header_value: Option<String>,
    /// `canary-by-header-pattern`.
    pub header_pattern: Option<String>,
    /// `canary-by-cookie`.
    pub cookie: Option<String>,
    /// `canary-weight`.
    pub weight: Option<u32>,
    /// `canary-weight-total` (default 100).
    pub weight_total: u32,
}

impl Annotations {
    /// Whether every path of this Ingress's hosts must be a regex.
    pub fn wants_regex(&self) -> bool {
        self.use_regex || self.rewrite_target.is_some()
    }
}

fn boolean(v: &str) -> Option<bool> {
    match v.trim() {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Reads the annotations. Problems are `(field, kind)` pairs: bad values are `Invalid`;
/// annotations Portico does not implement are `Ignored`.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Annotations, Vec<(String, ErrorKind)>) {
    let mut a = Annotations::default();
    let mut problems = Vec::new();
    let get = |k: &str| annotations.get(&format!("{PREFIX}{k}")).map(String::as_str);
    let field = |k: &str| format!("metadata.annotations[{PREFIX}{k}]");
    let flag = |k: &str, problems: &mut Vec<(String, ErrorKind)>| -> Option<bool> {
        let v = get(k)?;
        match boolean(v) {
            Some(b) => Some(b),
            None => {
                problems.push((
                    field(k),
                    ErrorKind::Invalid(format!("{v:?} is not true or false")),
                ));
                None
            }
        }
    };
    let code = |k: &str, default: u16, problems: &mut Vec<(String, ErrorKind)>| -> u16 {
        match get(k).map(|v| v.trim().parse::<u16>()) {
            None => default,
            Some(Ok(c)) if (300..=308).contains(&c) => c,
            Some(_) => {
                problems.push((
                    field(k),
                    ErrorKind::Invalid("must be a redirect status code (300-308)".into()),
                ));
                default
            }
        }
    };
    a.rewrite_target = get("rewrite-target").map(str::to_owned);
    a.use_regex = flag("use-regex", &mut problems).unwrap_or(false);
    a.ssl_redirect = flag("ssl-redirect", &mut problems);
    a.force_ssl_redirect = flag("force-ssl-redirect", &mut problems).unwrap_or(false);
    if let Some(url) = get("permanent-redirect") {
        a.permanent_redirect = Some((
            url.to_owned(),
            code("permanent-redirect-code", 301, &mut problems),
        ));
    }
    if let Some(url) = get("temporal-redirect") {
        a.temporal_redirect = Some((
            url.to_owned(),
            code("temporal-redirect-code", 302, &mut problems),
        ));
    }
    a.app_root = get("app-root").map(str::to_owned);
    if flag("canary", &mut problems) == Some(true) {
        let weight = match get("canary-weight").map(|v| v.trim().parse::<u32>()) {
            None => None,
            Some(Ok(w)) => Some(w),
            Some(Err(_)) => {
                problems.push((
                    field("canary-weight"),
                    ErrorKind::Invalid("must be a whole number".into()),
                ));
                None
            }
        };
        let weight_total = match get("canary-weight-total").map(|v| v.trim().parse::<u32>()) {
            None => 100,
            Some(Ok(t)) if t > 0 => t,
            Some(_) => {
                problems.push((
                    field("canary-weight-total"),
                    ErrorKind::Invalid("must be a positive whole number".into()),
                ));
                100
            }
        };
        if let Some(p) = get("canary-by-header-pattern") {
            if let Err(e) = regex::Regex::new(p) {
                problems.push((
                    field("canary-by-header-pattern"),
                    ErrorKind::Invalid(format!("regex does not compile: {e}")),
                ));
            }
        }
        a.canary = Some(Canary {
            header: get("canary-by-header").map(str::to_owned),
            header_value: get("canary-by-header-value").map(str::to_owned),
            header_pattern: get("canary-by-header-pattern").map(str::to_owned),
            cookie: get("canary-by-cookie").map(str::to_owned),
            weight: weight.map(|w| w.min(weight_total)),
            weight_total,
        });
    }
    a.upstream_vhost = get("upstream-vhost").map(|v| v.trim().to_owned());
    a.x_forwarded_prefix = get("x-forwarded-prefix").map(str::to_owned);
    a.server_alias = get("server-alias")
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let ranges = |k: &str, problems: &mut Vec<(String, ErrorKind)>| -> Vec<String> {
        let mut out = Vec::new();
        for r in get(k)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            match r.parse::<portico_core::matching::cidr::Cidr>() {
                Ok(_) => out.push(r.to_owned()),
                Err(e) => problems.push((field(k), ErrorKind::Invalid(e))),
            }
        }
        out
    };
    a.allow_ranges = if get("allowlist-source-range").is_some() {
        ranges("allowlist-source-range", &mut problems)
    } else {
        ranges("whitelist-source-range", &mut problems)
    };
    a.deny_ranges = ranges("denylist-source-range", &mut problems);
    if let Some(v) = get("upstream-hash-by") {
        match hash_key(v.trim()) {
            Some(k) => a.upstream_hash_by = Some(k),
            None => problems.push((
                field("upstream-hash-by"),
                ErrorKind::Ignored(format!(
                    "{v:?}: only one of $request_uri, $remote_addr, $binary_remote_addr, \
                     $http_NAME, $cookie_NAME, $arg_NAME is supported; round robin is used"
                )),
            )),
        }
    }
    a.from_to_www = flag("from-to-www-redirect", &mut problems).unwrap_or(false);
    if flag("enable-cors", &mut problems) == Some(true) {
        // The values as written: nginx sends them verbatim.
        let raw = |k: &str, default: &str| -> Vec<String> {
            let v = get(k).unwrap_or(default).trim();
            if v.is_empty() {
                Vec::new()
            } else {
                vec![v.to_owned()]
            }
        };
        let origins: Vec<String> = get("cors-allow-origin")
            .unwrap_or("*")
            .split(',')
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        let allow_origins = if origins.iter().any(|o| o == "*") {
            Vec::new()
        } else {
            origins
                .iter()
                .map(|o| {
                    // Case-insensitive; `*.` covers one label (ingress-nginx's origin regex).
                    let re = regex::escape(o).replace("\\*", "[A-Za-z0-9\\-]+");
                    portico_core::config::StringMatch::Regex(format!("(?i){re}"))
                })
                .collect()
        };
        let max_age = match get("cors-max-age").map(|v| v.trim().parse::<u64>()) {
            None => 1_728_000,
            Some(Ok(v)) => v,
            Some(Err(_)) => {
                problems.push((
                    field("cors-max-age"),
                    ErrorKind::Invalid("must be a whole number of seconds".into()),
                ));
                1_728_000
            }
        };
        a.cors = Some(portico_core::config::Cors {
            allow_origins,
            allow_methods: raw("cors-allow-methods", "GET, PUT, POST, DELETE, PATCH, OPTIONS"),
            allow_headers: raw(
                "cors-allow-headers",
                "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization",
            ),
            expose_headers: raw("cors-expose-headers", ""),
            max_age: Some(max_age),
            allow_credentials: flag("cors-allow-credentials", &mut problems).unwrap_or(true),
            nginx: true,
        });
    }
    const KNOWN: &[&str] = &[
        "upstream-vhost",
        "x-forwarded-prefix",
        "server-alias",
        "allowlist-source-range",
        "whitelist-source-range",
        "denylist-source-range",
        "upstream-hash-by",
        "from-to-www-redirect",
        "enable-cors",
        "cors-allow-origin",
        "cors-allow-methods",
        "cors-allow-headers",
        "cors-expose-headers",
        "cors-allow-credentials",
        "cors-max-age",
        "rewrite-target",
        "use-regex",
        "ssl-redirect",
        "force-ssl-redirect",
        "permanent-redirect",
        "permanent-redirect-code",
        "temporal-redirect",
        "temporal-redirect-code",
        "app-root",
        "canary",
        "canary-by-header",
        "canary-by-header-value",
        "canary-by-header-pattern",
        "canary-by-cookie",
        "canary-weight",
        "canary-weight-total",
    ];
    for key in annotations.keys() {
        if let Some(name) = key.strip_prefix(PREFIX) {
            if !KNOWN.contains(&name) {
                problems.push((
                    format!("metadata.annotations[{key}]"),
                    ErrorKind::Ignored("this ingress-nginx annotation is not implemented".into()),
                ));
            }
        }
    }
    (a, problems)
}

/// The hash key of an `upstream-hash-by` value that is one nginx variable.
fn hash_key(v: &str) -> Option<HashKey> {
    let name = v.strip_prefix('$')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match name {
        "request_uri" => Some(HashKey::Path),
        "remote_addr" | "binary_remote_addr" => Some(HashKey::SourceIp),
        _ => {
            if let Some(h) = name.strip_prefix("http_").filter(|h| ok(h)) {
                Some(HashKey::Header(h.replace('_', "-").to_ascii_lowercase()))
            } else if let Some(c) = name.strip_prefix("cookie_").filter(|c| ok(c)) {
                Some(HashKey::Cookie(c.to_owned()))
            } else {
                name.strip_prefix("arg_")
                    .filter(|a| ok(a))
                    .map(|a| HashKey::QueryParameter(a.to_owned()))
            }
        }
    }
}

/// A nginx regex location for `path`: case-insensitive, anchored at the start only.
pub fn regex_path(path: &str) -> String {
    format!("(?i){path}.*")
}

/// The regex `rewrite-target` captures from (the location's regex, without the tail).
pub fn rewrite_regex(path: &str) -> String {
    format!("(?i)^{path}")
}

/// A regex matching a `Cookie` header that carries `name=value`.
pub fn cookie_regex(name: &str, value: &str) -> String {
    format!(
        "(?:.*;\\s*)?{}={}(?:;.*)?",
        regex::escape(name),
        regex::escape(value)
    )
}
