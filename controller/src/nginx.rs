//! ingress-nginx annotations (`nginx.ingress.kubernetes.io/*`), as ingress-nginx reads them.
//!
//! Supported: `rewrite-target` (with `$n` captures), `use-regex`, `ssl-redirect`,
//! `force-ssl-redirect`, `permanent-redirect` (+ `-code`), `temporal-redirect` (+ `-code`),
//! `app-root`, and canaries: `canary`, `canary-by-header` (+ `-value`, `-pattern`),
//! `canary-by-cookie`, `canary-weight` (+ `canary-weight-total`). Any other annotation of the
//! prefix is reported as ignored.
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

use crate::translate::ErrorKind;

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
    const KNOWN: &[&str] = &[
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
