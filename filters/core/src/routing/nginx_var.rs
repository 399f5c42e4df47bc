//! nginx variable expressions, as ingress-nginx's balancer evaluates `upstream-hash-by`
//! (`rootfs/etc/nginx/lua/util.lua`: `parse_complex_value` splits the value into `\$name`
//! (literal), `${name}`, `$name` and text; `generate_var_value` concatenates each variable's
//! value, a variable nginx has no value for (a missing header, cookie or argument) adding
//! nothing).

use std::net::IpAddr;

/// One piece of an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text, as written.
    Text(String),
    /// A variable, by name (without `$`).
    Var(String),
}

fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Splits an expression as `parse_complex_value` does: at each position the first of
/// `\$name` (kept as text, backslash included), `${name}`, `$name`, `$` or a run of text without
/// `$` and `\`; a character none of them takes (a `\` not before `$name`) is skipped.
pub fn parse(expr: &str) -> Vec<Part> {
    let b = expr.as_bytes();
    let name_end = |from: usize| {
        let mut j = from;
        while j < b.len() && is_name(b[j]) {
            j += 1;
        }
        j
    };
    let mut out: Vec<Part> = Vec::new();
    let text = |out: &mut Vec<Part>, s: &str| match out.last_mut() {
        Some(Part::Text(t)) => t.push_str(s),
        _ => out.push(Part::Text(s.to_owned())),
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let end = if b.get(i + 1) == Some(&b'$') {
                    name_end(i + 2)
                } else {
                    i + 2
                };
                if b.get(i + 1) == Some(&b'$') && end > i + 2 {
                    text(&mut out, &expr[i..end]);
                    i = end;
                } else {
                    i += 1; // skipped, as the Lua iterator skips what no alternative matches
                }
            }
            b'$' => {
                if b.get(i + 1) == Some(&b'{') {
                    let end = name_end(i + 2);
                    if end > i + 2 && b.get(end) == Some(&b'}') {
                        out.push(Part::Var(expr[i + 2..end].to_owned()));
                        i = end + 1;
                        continue;
                    }
                }
                let end = name_end(i + 1);
                if end > i + 1 {
                    out.push(Part::Var(expr[i + 1..end].to_owned()));
                    i = end;
                } else {
                    text(&mut out, "$");
                    i += 1;
                }
            }
            _ => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'$' || c == b'\\')
                    .map_or(b.len(), |p| i + p);
                text(&mut out, &expr[i..end]);
                i = end;
            }
        }
    }
    out
}

/// The variables [`evaluate`] gives a value: `request_uri`, `uri`, `args`, `query_string`,
/// `host`, `scheme`, `request_method`, `remote_addr`, `binary_remote_addr`, `http_NAME`,
/// `cookie_NAME`, `arg_NAME`. Any other is empty.
pub fn known(name: &str) -> bool {
    matches!(
        name,
        "request_uri"
            | "uri"
            | "args"
            | "query_string"
            | "host"
            | "scheme"
            | "request_method"
            | "remote_addr"
            | "binary_remote_addr"
    ) || ["http_", "cookie_", "arg_"]
        .iter()
        .any(|p| name.len() > p.len() && name.starts_with(p))
}

/// What the request gives the variables.
#[allow(missing_debug_implementations)] // two closures
pub struct Vars<'a> {
    /// A request header (or pseudo-header) by name, case-insensitive.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The client's IP address.
    pub source: &'a dyn Fn() -> Option<IpAddr>,
}

/// The value of `parts`: text as written, each variable's value (nothing when it has none).
pub fn evaluate(parts: &[Part], vars: &Vars<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Part::Text(t) => out.extend_from_slice(t.as_bytes()),
            Part::Var(name) => {
                if let Some(v) = value(name, vars) {
                    out.extend_from_slice(&v);
                }
            }
        }
    }
    out
}

fn value(name: &str, vars: &Vars<'_>) -> Option<Vec<u8>> {
    let text = |s: Option<String>| s.map(String::into_bytes);
    let path = || (vars.header)(":path").unwrap_or_default();
    match name {
        "request_uri" => text((vars.header)(":path")),
        "uri" => text(Some(path().split('?').next().unwrap_or("").to_owned())),
        "args" | "query_string" => text(path().split_once('?').map(|(_, q)| q.to_owned())),
        "host" => {
            let a = (vars.header)(":authority").unwrap_or_default();
            let host = match a.rsplit_once(':') {
                Some((h, p)) if !a.ends_with(']') && p.bytes().all(|c| c.is_ascii_digit()) => h,
                _ => a.as_str(),
            };
            text(Some(host.trim_end_matches('.').to_ascii_lowercase()))
        }
        "scheme" => text((vars.header)(":scheme").or(Some("http".into()))),
        "request_method" => text((vars.header)(":method")),
        "remote_addr" => text((vars.source)().map(|ip| ip.to_string())),
        "binary_remote_addr" => (vars.source)().map(|ip| match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        }),
        _ => {
            if let Some(h) = name.strip_prefix("http_") {
                text((vars.header)(&h.replace('_', "-")))
            } else if let Some(c) = name.strip_prefix("cookie_") {
                let header = (vars.header)("cookie")?;
                let v = header.split(';').find_map(|kv| {
                    let (k, v) = kv.trim().split_once('=')?;
                    k.eq_ignore_ascii_case(c).then(|| v.to_owned())
                });
                text(v)
            } else if let Some(a) = name.strip_prefix("arg_") {
                let p = path();
                let v = p.split_once('?').and_then(|(_, q)| {
                    q.split('&').find_map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        k.eq_ignore_ascii_case(a).then(|| v.to_owned())
                    })
                });
                text(v)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(s: &str) -> Part {
        Part::Var(s.into())
    }
    fn txt(s: &str) -> Part {
        Part::Text(s.into())
    }

    #[test]
    fn parses_as_ingress_nginx_util_lua() {
        assert_eq!(
            parse("$request_uri$host"),
            vec![var("request_uri"), var("host")]
        );
        assert_eq!(
            parse("${request_uri}-text-value"),
            vec![var("request_uri"), txt("-text-value")]
        );
        assert_eq!(parse("$http_x_user"), vec![var("http_x_user")]);
        assert_eq!(parse("a\\$host$"), vec![txt("a\\$host$")]);
        assert_eq!(parse("${bad"), vec![txt("${bad")]);
        assert_eq!(parse("x\\y"), vec![txt("xy")]);
    }

    fn eval(expr: &str, headers: &[(&str, &str)], source: Option<&str>) -> String {
        let h: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let header = move |n: &str| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let src = source.map(|s| s.parse::<IpAddr>().unwrap());
        let source = move || src;
        let vars = Vars {
            header: &header,
            source: &source,
        };
        String::from_utf8_lossy(&evaluate(&parse(expr), &vars)).into_owned()
    }

    #[test]
    fn evaluates_variables_and_missing_ones_as_empty() {
        let h = [
            (":path", "/a/b?Page=7&x=1"),
            (":authority", "Shop.Example.com:8080"),
            ("x-user", "ann"),
            ("cookie", "a=1; Sess=abc"),
        ];
        assert_eq!(
            eval("$request_uri$host", &h, None),
            "/a/b?Page=7&x=1shop.example.com"
        );
        assert_eq!(
            eval("$http_x_user-$cookie_sess-$arg_page", &h, None),
            "ann-abc-7"
        );
        assert_eq!(eval("$uri|$args", &h, None), "/a/b|Page=7&x=1");
        assert_eq!(eval("$http_x_missing", &h, None), "");
        assert_eq!(eval("k$cookie_nope$arg_nope$unknown", &h, None), "k");
        assert_eq!(eval("$remote_addr", &h, Some("127.0.0.9")), "127.0.0.9");
        assert_eq!(eval("$remote_addr", &h, None), "");
    }

    #[test]
    fn known_variables() {
        assert!(known("request_uri") && known("http_x") && known("arg_a") && known("cookie_c"));
        assert!(!known("http_") && !known("server_name") && !known("1"));
    }
}
