//! ingress-nginx annotations (`nginx.ingress.kubernetes.io/*`), as ingress-nginx reads them.
//!
//! Supported: `rewrite-target` (with `$n` captures), `use-regex`, `ssl-redirect`,
//! `force-ssl-redirect`, `permanent-redirect` (+ `-code`), `temporal-redirect` (+ `-code`),
//! `app-root`, canaries: `canary`, `canary-by-header` (+ `-value`, `-pattern`),
//! `canary-by-cookie`, `canary-weight` (+ `canary-weight-total`), and `upstream-vhost`,
//! `x-forwarded-prefix`, `server-alias`, `allowlist-source-range` (`whitelist-source-range`),
//! `denylist-source-range`, `upstream-hash-by`, `from-to-www-redirect`, `enable-cors` with its
//! `cors-*` settings, `default-backend`. Critical-risk snippets refuse the Ingress; any other
//! annotation of the prefix is reported as ignored.
//!
//! Values are validated as `parser/validators.go` does; what an invalid value does is what the
//! annotation's parser does with the validation error ([`OnInvalid`]): use its default and keep
//! the Ingress, or return it, which leaves the whole Ingress out of ingress-nginx's store.
//!
//! # Semantics (from the ingress-nginx user guide, annotations page and source)
//! - If `use-regex` or `rewrite-target` is set on any Ingress of a host, every path of that host
//!   becomes a case-insensitive regex anchored at the start; paths are tried longest first.
//! - `rewrite-target` replaces the whole path with the target, `$n` being the path regex's
//!   captures; the query is kept.
//! - An Ingress with TLS for a host redirects plain HTTP to HTTPS with 308 unless
//!   `ssl-redirect: "false"`; `force-ssl-redirect: "true"` redirects without TLS too; one
//!   trailing `/` of the request URI is dropped unless `preserve-trailing-slash: "true"`
//!   (`rootfs/etc/nginx/lua/lua_ingress.lua`).
//! - `temporal-redirect` wins over `permanent-redirect`; codes out of range fall back to the
//!   default (`internal/ingress/annotations/redirect/redirect.go`).
//! - An allow or deny list that does not parse makes the Ingress's paths answer 503
//!   (`ipallowlist/main.go`'s `LocationDeniedError`, nginx.tmpl's `return 503`).
//! - `upstream-hash-by` is an nginx variable expression (`upstreamhashby/main.go`, `util.lua`);
//!   `x-forwarded-prefix` is sent only beside a rewrite (`template.go` `buildProxyPass`).
//! - A canary Ingress sends a request to its backend by header (`always`/`never`, or the
//!   configured value or pattern), then by cookie (`always`/`never`), then by weight; it only
//!   applies to host and path pairs a non-canary Ingress defines.

use std::collections::BTreeMap;

use portico_core::config::HashKey;
use portico_core::routing::nginx_var;

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
    /// `ssl-passthrough` (the controller runs with `--enable-ssl-passthrough`): TLS for the
    /// Ingress's hosts goes untouched to the `/` path's Service.
    pub ssl_passthrough: bool,
    /// `preserve-trailing-slash`: the HTTPS redirect keeps a trailing `/`.
    pub preserve_trailing_slash: bool,
    /// `temporal-redirect` (with its code, default 302) or else `permanent-redirect` (with its
    /// code, default 301): the `Location` as written and the status.
    pub redirect: Option<(String, u16)>,
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
    /// `default-backend`: the Service (in the Ingress's namespace) that serves a location whose
    /// own Service has no ready endpoint.
    pub default_backend: Option<String>,
    /// Why the Ingress's locations are denied (an allow or deny list that does not parse):
    /// ingress-nginx renders them as `return 503`.
    pub denied: Option<String>,
    /// `auth-tls-*`: client certificate authentication.
    pub auth_tls: Option<AuthTls>,
}

/// The `auth-tls-*` annotations as `internal/ingress/annotations/authtls` keeps them.
#[derive(Debug, Clone, Default)]
pub struct AuthTls {
    /// `auth-tls-secret`, as written (`namespace/name`).
    pub secret: String,
    /// `auth-tls-verify-client`: `on` (also for an invalid value), `off`, `optional`,
    /// `optional_no_ca`.
    pub verify: String,
    /// `auth-tls-verify-depth` (1 for an invalid value or 0).
    pub depth: u32,
    /// `auth-tls-error-page`.
    pub error_page: Option<String>,
    /// `auth-tls-pass-certificate-to-upstream`.
    pub pass_certificate: bool,
    /// `auth-tls-match-cn` (`CN=…`, a regex over the subject DN).
    pub match_cn: Option<String>,
}

/// A canary Ingress's conditions, as the canary parser keeps them (an invalid value is no value)
/// and `balancer.lua` reads them.
#[derive(Debug, Clone, Default)]
pub struct Canary {
    /// `canary-by-header`.
    pub header: Option<String>,
    /// `canary-by-header-value` (not empty).
    pub header_value: Option<String>,
    /// `canary-by-header-pattern` (not empty), when no value is set.
    pub header_pattern: Option<HeaderPattern>,
    /// `canary-by-cookie`.
    pub cookie: Option<String>,
    /// `canary-weight`, from 0 to `weight_total`.
    pub weight: Option<u32>,
    /// `canary-weight-total` when above 100, else 100 (balancer.lua).
    pub weight_total: u32,
}

/// A `canary-by-header-pattern` that passed the parser's validation.
#[derive(Debug, Clone)]
pub enum HeaderPattern {
    /// Compiles: requests whose header contains a match go to the canary.
    Regex(String),
    /// Does not compile: `ngx.re.match` fails and balancer.lua sends requests carrying the
    /// header to the main backend, before the cookie and the weight.
    Broken,
}

/// `canary/main.go` Parse and the validators of `parser/validators.go`: a value that fails its
/// validator (or is empty, `parser/main.go` parseString) is logged and replaced by the default
/// (`''`, weight 0, total 100); the Ingress is kept. `balancer.lua` then uses a total of 100
/// unless it is above 100.
fn canary<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    field: &dyn Fn(&str) -> String,
    problems: &mut Vec<(String, ErrorKind)>,
) -> Canary {
    let mut warn = |k: &str, m: String| problems.push((field(k), ErrorKind::InvalidSetting(m)));
    // strconv.Atoi: an optional sign and digits, nothing else.
    let int = |k: &str, default: i64, warn: &mut dyn FnMut(&str, String)| -> Option<i64> {
        let v = get(k)?;
        match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                warn(k, format!("{v:?} is not a whole number; {default} is used"));
                Some(default)
            }
        }
    };
    let weight = int("canary-weight", 0, &mut warn);
    let total = int("canary-weight-total", 100, &mut warn).unwrap_or(100);
    let weight_total = if total > 100 {
        u32::try_from(total).unwrap_or(u32::MAX)
    } else {
        if total != 100 {
            warn(
                "canary-weight-total",
                format!("{total} is not above 100; balancer.lua uses 100"),
            );
        }
        100
    };
    let weight = weight.map(|w| u32::try_from(w.clamp(0, i64::from(weight_total))).unwrap_or(0));
    // BasicCharsRegex (validated with spaces removed); IsValidRegex for the pattern.
    let basic = |b: u8| b.is_ascii_alphanumeric() || b"-._~/:".contains(&b);
    let mut text = |k: &str, spaces_removed: bool, ok: &dyn Fn(u8) -> bool| -> Option<String> {
        let v = get(k)?.trim();
        if v.is_empty() {
            warn(k, "empty: no value".into());
            return None;
        }
        let valid = v
            .bytes()
            .filter(|b| !(spaces_removed && *b == b' '))
            .all(ok);
        if valid {
            Some(v.to_owned())
        } else {
            warn(
                k,
                format!("{v:?} has characters the ingress-nginx parser refuses; no value is used"),
            );
            None
        }
    };
    let header = text("canary-by-header", true, &basic);
    let header_value = text("canary-by-header-value", true, &basic);
    let pattern = text("canary-by-header-pattern", false, &|b| {
        basic(b) || b"^$[](){}*+?|&=\\".contains(&b)
    });
    let cookie = text("canary-by-cookie", true, &basic);
    let header_pattern = match pattern {
        Some(p) if header_value.is_none() => Some(match portico_core::matching::re2::compile(&p) {
            Ok(_) => HeaderPattern::Regex(p),
            Err(e) => {
                warn(
                    "canary-by-header-pattern",
                    format!(
                        "does not compile ({e}); requests with the header go to the main backend"
                    ),
                );
                HeaderPattern::Broken
            }
        }),
        _ => None,
    };
    Canary {
        header,
        header_value,
        header_pattern,
        cookie,
        weight,
        weight_total,
    }
}

impl Annotations {
    /// Whether every path of this Ingress's hosts must be a regex.
    pub fn wants_regex(&self) -> bool {
        self.use_regex || self.rewrite_target.is_some()
    }
}

/// `strconv.ParseBool`, which every ingress-nginx boolean goes through (`parser.ValidateBool`,
/// `parseBool`): exactly these spellings, no spaces.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// What an annotation's parser does with a value its validator refuses.
#[derive(Clone, Copy)]
enum OnInvalid {
    /// The parser returns the validation error: `Extract` fails and the Ingress is not served
    /// (`annotations.go` `Extract`, `store.go` `syncIngress`).
    Refuse,
    /// The parser logs it and uses this default; the Ingress is kept.
    Default(&'static str),
}

impl OnInvalid {
    fn report(self, value: &str, why: &str) -> ErrorKind {
        match self {
            OnInvalid::Refuse => ErrorKind::Invalid(format!("{value:?} {why}")),
            OnInvalid::Default(d) => {
                ErrorKind::InvalidSetting(format!("{value:?} {why}; {d} is used"))
            }
        }
    }
}

/// `parser.RegexPathWithCapture`: a path with `$n` captures (letters, digits, `-._~/:$`).
fn path_with_captures(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/:$".contains(&b))
}

/// `parser.IsValidRegex`, which `ValidateServerName` applies to a trimmed name: letters, digits,
/// `-._~/:` and the regex characters `^$[](){}*+?|&=\`.
fn server_name_chars(v: &str) -> bool {
    v.bytes().all(|b| {
        b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) || b"^$[](){}*+?|&=\\".contains(&b)
    })
}

/// Annotations of `AnnotationRiskCritical`: above ingress-nginx's default
/// `annotations-risk-level` (`High`, `config.go`), so `CheckAnnotationRisk` fails and the Ingress
/// is not served (`annotations.go` `Extract`: `NewRiskyAnnotations`).
const CRITICAL: &[&str] = &[
    "configuration-snippet",
    "server-snippet",
    "stream-snippet",
    "auth-snippet",
    "modsecurity-snippet",
];

/// Reads the annotations. Problems are `(field, kind)` pairs: bad values are `Invalid`;
/// annotations Portico does not implement are `Ignored`.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Annotations, Vec<(String, ErrorKind)>) {
    let mut a = Annotations::default();
    let mut problems = Vec::new();
    let get = |k: &str| annotations.get(&format!("{PREFIX}{k}")).map(String::as_str);
    let field = |k: &str| format!("metadata.annotations[{PREFIX}{k}]");
    // An empty value is not validated and then fails `parseString` / `parseBool` with
    // `InvalidContent`, which every parser treats as no annotation (`parser/main.go`).
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    // A boolean (`parser.ValidateBool`); `None` when absent or invalid.
    let flag = |k: &str, on_invalid: OnInvalid, problems: &mut Vec<(String, ErrorKind)>| {
        let v = get(k)?;
        let b = go_bool(v);
        if b.is_none() {
            problems.push((
                field(k),
                on_invalid.report(v, "is not a boolean (strconv.ParseBool)"),
            ));
        }
        b
    };
    // `CheckAnnotationRisk` looks at the annotations present, whatever their values.
    for k in CRITICAL {
        if annotations.contains_key(&format!("{PREFIX}{k}")) {
            problems.push((
                field(k),
                ErrorKind::Invalid(
                    "a Critical-risk annotation: ingress-nginx's default annotations-risk-level \
                     (High) refuses the Ingress"
                        .into(),
                ),
            ));
        }
    }
    // rewrite/main.go: every value of the group that its validator refuses is logged and the
    // default used; the Ingress is kept. `rewrite-target` and `app-root` must be paths
    // (`RegexPathWithCapture`), `app-root` also a path `url.ParseRequestURI` takes that is not
    // an absolute URL (so it starts with `/`).
    a.rewrite_target = get("rewrite-target").and_then(|v| {
        if path_with_captures(v) {
            return Some(v.to_owned());
        }
        problems.push((
            field("rewrite-target"),
            OnInvalid::Default("no rewrite")
                .report(v, "has characters other than letters, digits and -._~/:$"),
        ));
        None
    });
    a.use_regex = flag("use-regex", OnInvalid::Default("false"), &mut problems).unwrap_or(false);
    a.ssl_redirect = flag("ssl-redirect", OnInvalid::Default("true"), &mut problems);
    a.force_ssl_redirect = flag(
        "force-ssl-redirect",
        OnInvalid::Default("false"),
        &mut problems,
    )
    .unwrap_or(false);
    // sslpassthrough/main.go returns the validation error.
    a.ssl_passthrough = flag("ssl-passthrough", OnInvalid::Refuse, &mut problems).unwrap_or(false);
    // authtls/main.go: an invalid verify-client is `on`, an invalid or zero depth 1; an invalid
    // error page, pass-certificate flag or match-cn makes the parser fail (the Ingress is left
    // out).
    if let Some(secret) = get("auth-tls-secret") {
        let verify = get("auth-tls-verify-client")
            .filter(|v| matches!(*v, "on" | "off" | "optional" | "optional_no_ca"))
            .unwrap_or("on")
            .to_owned();
        let depth = get("auth-tls-verify-depth")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|d| *d > 0)
            .unwrap_or(1);
        let error_page = get("auth-tls-error-page").map(str::to_owned);
        if let Some(page) = &error_page {
            static ERROR_PAGE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
                regex::Regex::new(
                    r"^(@[A-Za-z0-9_-]+|((https?://)?[A-Za-z0-9\-.]+(:\d+)?)?(/[A-Za-z0-9\-_.]+)*/?)$",
                )
                .expect("a fixed regex")
            });
            let valid = ERROR_PAGE.is_match(page);
            if !valid {
                problems.push((
                    field("auth-tls-error-page"),
                    ErrorKind::Invalid(format!("{page:?} is not a URL or named location")),
                ));
            }
        }
        let pass_certificate = flag(
            "auth-tls-pass-certificate-to-upstream",
            OnInvalid::Refuse,
            &mut problems,
        )
        .unwrap_or(false);
        let match_cn = get("auth-tls-match-cn").map(str::to_owned);
        if let Some(cn) = &match_cn {
            let valid = cn
                .strip_prefix("CN=")
                .is_some_and(|rest| portico_core::matching::re2::compile(rest).is_ok());
            if !valid {
                problems.push((
                    field("auth-tls-match-cn"),
                    ErrorKind::Invalid(format!("{cn:?} is not CN= followed by a regex")),
                ));
            }
        }
        a.auth_tls = Some(AuthTls {
            secret: secret.to_owned(),
            verify,
            depth,
            error_page,
            pass_certificate,
            match_cn,
        });
    }
    // rewrite/main.go: an invalid value is logged and the default (false) used.
    a.preserve_trailing_slash = flag(
        "preserve-trailing-slash",
        OnInvalid::Default("false"),
        &mut problems,
    )
    .unwrap_or(false);
    a.redirect = redirect(&get, &field, &mut problems);
    a.app_root = get("app-root").and_then(|v| {
        if path_with_captures(v) && v.starts_with('/') {
            return Some(v.to_owned());
        }
        problems.push((
            field("app-root"),
            OnInvalid::Default("no app-root").report(v, "is not a path starting with /"),
        ));
        None
    });
    // defaultbackend/main.go: validated as a Service name (parser.ValidateServiceName, a DNS-1035
    // label); an invalid one refuses the Ingress. An empty value is no annotation.
    if let Some(v) = get("default-backend") {
        if super::admission::dns1035_label(v) {
            a.default_backend = Some(v.to_owned());
        } else {
            problems.push((
                field("default-backend"),
                ErrorKind::Invalid(format!(
                    "{v:?} is not a valid Service name (a DNS-1035 label)"
                )),
            ));
        }
    }
    // canary/main.go: an invalid `canary` is false (the Ingress is an ordinary one).
    if flag("canary", OnInvalid::Default("false"), &mut problems) == Some(true) {
        a.canary = Some(canary(&get, &field, &mut problems));
    }
    // upstreamvhost, xforwardedprefix and alias main.go return the validation error: a value
    // their validator refuses refuses the Ingress.
    a.upstream_vhost = get("upstream-vhost").and_then(|v| {
        let v = v.trim();
        if server_name_chars(v) {
            return Some(v.to_owned());
        }
        problems.push((
            field("upstream-vhost"),
            OnInvalid::Refuse.report(v, "is not a server name (parser.ValidateServerName)"),
        ));
        None
    });
    a.x_forwarded_prefix = get("x-forwarded-prefix").and_then(|v| {
        if path_with_captures(&v.replace(' ', "")) {
            return Some(v.trim().to_owned());
        }
        problems.push((
            field("x-forwarded-prefix"),
            OnInvalid::Refuse.report(v, "has characters other than letters, digits and -._~/:$"),
        ));
        None
    });
    if let Some(v) = get("server-alias") {
        if v.split(',').all(|h| server_name_chars(h.trim())) {
            a.server_alias = v
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect();
        } else {
            problems.push((
                field("server-alias"),
                OnInvalid::Refuse.report(
                    v,
                    "is not a list of server names (parser.ValidateArrayOfServerName)",
                ),
            ));
        }
    }
    // ipallowlist / ipdenylist main.go: a list with an entry that is no IP address or CIDR
    // denies the location (`LocationDeniedError`), which nginx.tmpl renders as `return 503`.
    let ranges = |k: &str, problems: &mut Vec<(String, ErrorKind)>, denied: &mut Option<String>| {
        let v = get(k).filter(|v| !v.trim().is_empty())?;
        let mut out = Vec::new();
        for r in v.split(',').map(str::trim) {
            match r.parse::<portico_core::matching::cidr::Cidr>() {
                Ok(_) => out.push(r.to_owned()),
                Err(e) => {
                    problems.push((
                        field(k),
                        ErrorKind::InvalidSetting(format!(
                            "{e}; the Ingress's paths answer 503 (ingress-nginx denies the location)"
                        )),
                    ));
                    denied.get_or_insert(format!("{k}: {e}"));
                    return None;
                }
            }
        }
        Some(out)
    };
    let allow_key = if get("allowlist-source-range").is_some() {
        "allowlist-source-range"
    } else {
        "whitelist-source-range"
    };
    a.allow_ranges = ranges(allow_key, &mut problems, &mut a.denied).unwrap_or_default();
    a.deny_ranges =
        ranges("denylist-source-range", &mut problems, &mut a.denied).unwrap_or_default();
    // upstreamhashby/main.go: the value (spaces removed) must match `^[A-Za-z0-9\-_${}]*$`, else
    // the Ingress is refused; util.lua evaluates it as text and variables.
    if let Some(v) = get("upstream-hash-by") {
        let ok = v
            .bytes()
            .filter(|b| *b != b' ')
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'$' | b'{' | b'}'));
        if ok {
            for part in nginx_var::parse(v) {
                if let nginx_var::Part::Var(name) = part {
                    if !nginx_var::known(&name) {
                        problems.push((
                            field("upstream-hash-by"),
                            ErrorKind::Ignored(format!(
                                "${name} has no value in Portico (hashed as empty)"
                            )),
                        ));
                    }
                }
            }
            a.upstream_hash_by = Some(HashKey::Nginx(v.to_owned()));
        } else {
            problems.push((
                field("upstream-hash-by"),
                ErrorKind::Invalid(format!(
                    "{v:?}: only letters, digits, '-', '_', '$', '{{', '}}' (nginx variables and text)"
                )),
            ));
        }
    }
    // redirect.go returns the validation error.
    a.from_to_www = flag("from-to-www-redirect", OnInvalid::Refuse, &mut problems).unwrap_or(false);
    if flag("enable-cors", OnInvalid::Default("false"), &mut problems) == Some(true) {
        a.cors = cors(&get, &field, &mut problems);
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
        "ssl-passthrough",
        "auth-tls-secret",
        "auth-tls-verify-client",
        "auth-tls-verify-depth",
        "auth-tls-error-page",
        "auth-tls-pass-certificate-to-upstream",
        "auth-tls-match-cn",
        "preserve-trailing-slash",
        "permanent-redirect",
        "permanent-redirect-code",
        "temporal-redirect",
        "temporal-redirect-code",
        "app-root",
        "default-backend",
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
            if !KNOWN.contains(&name) && !CRITICAL.contains(&name) {
                problems.push((
                    format!("metadata.annotations[{key}]"),
                    ErrorKind::Ignored("this ingress-nginx annotation is not implemented".into()),
                ));
            }
        }
    }
    (a, problems)
}

/// `enable-cors`'s settings as `cors/main.go` Parse reads them: every invalid value is logged
/// and replaced by its default, the Ingress kept. `None` when no listed origin is valid: the
/// template then never sets `$cors` and the location has no CORS (`nginx.tmpl` `CORS`).
fn cors<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    field: &dyn Fn(&str) -> String,
    problems: &mut Vec<(String, ErrorKind)>,
) -> Option<portico_core::config::Cors> {
    use regex::Regex;
    use std::sync::LazyLock;
    const METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
    const HEADERS: &str = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
    const MAX_AGE: i64 = 1_728_000;
    // cors/main.go's regexes, compiled once (Go's `\s` is ASCII whitespace).
    fn re(r: &str) -> Regex {
        Regex::new(r).expect("a fixed regex")
    }
    static ORIGIN_LIST: LazyLock<Regex> =
        LazyLock::new(|| re(r"^((((([a-z]+://)?(\*\.)?[A-Za-z0-9\-.]*(:\d+)?,?)|null)+)|\*)?$"));
    static ORIGIN_ONE: LazyLock<Regex> =
        LazyLock::new(|| re(r"^([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?$"));
    static METHODS_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^([A-Za-z]+,?[\t\n\x0C\r ]?)+$"));
    static HEADERS_RE: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z0-9\-_, ]*$"));
    static EXPOSE_RE: LazyLock<Regex> =
        LazyLock::new(|| re(r"^(([A-Za-z0-9\-_]+|\*),?[\t\n\x0C\r ]?)+$"));
    let (origin_list, origin_one) = (&*ORIGIN_LIST, &*ORIGIN_ONE);
    let (methods, headers, expose) = (&*METHODS_RE, &*HEADERS_RE, &*EXPOSE_RE);
    // parser.ValidateRegex(re, true): spaces removed, then the regex and no CR or LF; Parse
    // checks the trimmed value against the regex again.
    let text = |k: &str, r: &Regex, default: &'static str, problems: &mut Vec<_>| -> String {
        let Some(v) = get(k) else {
            return default.to_owned();
        };
        let bare = v.replace(' ', "");
        let trimmed = v.trim();
        if r.is_match(&bare) && !bare.contains(['\r', '\n']) && r.is_match(trimmed) {
            return trimmed.to_owned();
        }
        let d = if default.is_empty() { "none" } else { default };
        problems.push((
            field(k),
            ErrorKind::InvalidSetting(format!("{v:?} is not valid; {d:?} is used")),
        ));
        default.to_owned()
    };
    let list = |v: String| if v.is_empty() { Vec::new() } else { vec![v] };
    let allow_methods = list(text("cors-allow-methods", methods, METHODS, problems));
    let allow_headers = list(text("cors-allow-headers", headers, HEADERS, problems));
    let expose_headers = list(text("cors-expose-headers", expose, "", problems));
    let allow_credentials = match get("cors-allow-credentials") {
        None => true,
        Some(v) => go_bool(v).unwrap_or_else(|| {
            problems.push((
                field("cors-allow-credentials"),
                OnInvalid::Default("true").report(v, "is not a boolean (strconv.ParseBool)"),
            ));
            true
        }),
    };
    // strconv.Atoi: an optional sign and digits.
    let max_age = match get("cors-max-age") {
        None => MAX_AGE,
        Some(v) => v.parse::<i64>().unwrap_or_else(|_| {
            problems.push((
                field("cors-max-age"),
                OnInvalid::Default("1728000").report(v, "is not a whole number"),
            ));
            MAX_AGE
        }),
    };
    // The list as a whole (spaces removed) must pass the validator, else any origin (`*`);
    // then each origin that is no `scheme://host[:port]`, `null` or `*` is skipped, and `*`
    // anywhere allows any.
    let mut any = true;
    let mut allow_origins = Vec::new();
    if let Some(v) = get("cors-allow-origin") {
        let bare = v.replace(' ', "");
        if origin_list.is_match(&bare) && !bare.contains(['\r', '\n']) {
            any = false;
            for o in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if o == "*" {
                    any = true;
                    break;
                }
                if !origin_one.is_match(o) {
                    problems.push((
                        field("cors-allow-origin"),
                        ErrorKind::InvalidSetting(format!(
                            "{o:?} is not scheme://host[:port], null or *; skipped"
                        )),
                    ));
                    continue;
                }
                // template.go buildOriginRegex and nginx's `$http_origin ~* (…)$`: a
                // case-insensitive search anchored at the end only; the first `*` covers one
                // label.
                allow_origins.push(portico_core::config::StringMatch::Regex(origin_regex(o)));
            }
        } else {
            problems.push((
                field("cors-allow-origin"),
                ErrorKind::InvalidSetting(format!("{v:?} is not valid; \"*\" is used")),
            ));
        }
    }
    if any {
        allow_origins.clear();
    } else if allow_origins.is_empty() {
        problems.push((
            field("cors-allow-origin"),
            ErrorKind::InvalidSetting("no valid origin: the location has no CORS".into()),
        ));
        return None;
    }
    Some(portico_core::config::Cors {
        allow_origins,
        allow_methods,
        allow_headers,
        expose_headers,
        max_age: Some(max_age),
        allow_credentials,
        nginx: true,
        ignore_unmatched_preflights: false,
    })
}

/// An allowed CORS origin as nginx matches it (`~* (…)$`): a case-insensitive search anchored at
/// the end only; the first `*` covers one label.
pub fn origin_regex(origin: &str) -> String {
    let re = regex::escape(origin).replacen("\\*", "[A-Za-z0-9\\-]+", 1);
    format!("(?i).*(?:{re})")
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

/// `temporal-redirect` / `permanent-redirect` as ingress-nginx's redirect parser
/// (`internal/ingress/annotations/redirect/redirect.go`) reads them: temporal first; a code that
/// is not a number refuses the Ingress, one out of range (temporal 300-307, permanent 300-308)
/// is replaced by the default (302, 301); the URL must match the parser's URL characters (no
/// nginx variables) or the Ingress is refused; a temporal URL that is not http(s) drops the
/// redirect. `get` gives no empty value (an empty annotation is none).
fn redirect<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    field: &dyn Fn(&str) -> String,
    problems: &mut Vec<(String, ErrorKind)>,
) -> Option<(String, u16)> {
    let code = |k: &str, default: u16, max: u16, problems: &mut Vec<(String, ErrorKind)>| {
        let v = get(k)?;
        match v.parse::<i64>() {
            Ok(c) if (300..=i64::from(max)).contains(&c) => Some(c as u16),
            Ok(_) => {
                problems.push((
                    field(k),
                    ErrorKind::InvalidSetting(format!(
                        "{v:?} is not a redirect code from 300 to {max}; {default} is used"
                    )),
                ));
                None
            }
            Err(_) => {
                problems.push((
                    field(k),
                    ErrorKind::Invalid(format!("{v:?} is not a number")),
                ));
                None
            }
        }
    };
    let url_ok = |k: &str, v: &str, problems: &mut Vec<(String, ErrorKind)>| {
        let ok = v.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'_' | b'~' | b'/' | b':' | b',' | b'?' | b'&' | b'='
                )
        });
        if !ok {
            problems.push((
                field(k),
                ErrorKind::Invalid(format!(
                    "{v:?}: only letters, digits and -._~/:,?&= (no nginx variables)"
                )),
            ));
        }
        ok
    };
    if let Some(url) = get("temporal-redirect") {
        let c = code("temporal-redirect-code", 302, 307, problems).unwrap_or(302);
        if !url_ok("temporal-redirect", url, problems) {
            return None;
        }
        if !url.starts_with("http") {
            problems.push((
                field("temporal-redirect"),
                ErrorKind::InvalidSetting(
                    "only http and https are valid protocols; no redirect is made".into(),
                ),
            ));
            return None;
        }
        return Some((url.to_owned(), c));
    }
    let c = code("permanent-redirect-code", 301, 308, problems).unwrap_or(301);
    let url = get("permanent-redirect")?;
    url_ok("permanent-redirect", url, problems).then(|| (url.to_owned(), c))
}
