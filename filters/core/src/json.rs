//! Parsing the controller's JSON with the field path of an error.
//!
//! serde_json alone says where an error is (line and column); the path (`virtualHosts[2].routes[0]
//! .path`) is recovered by scanning the text up to that position. A path-tracking deserializer
//! (`serde_path_to_error`) gives the same paths but wraps every visitor of every config type: it
//! was a sixth of the routing module's code and slowed every parse. `tests` compare the two on
//! every kind of error.

pub mod decode;

use serde::de::DeserializeOwned;

use crate::ConfigError;

/// Parses `bytes` as `T`; an error names the field path at fault (`.` for the document).
///
/// # Errors
/// [`ConfigError::Json`] with the path and serde_json's message.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    serde_json::from_slice(bytes).map_err(|e| ConfigError::Json {
        path: path_at(bytes, offset(bytes, e.line(), e.column())),
        message: e.to_string(),
    })
}

/// The byte offset of serde_json's (1-based line, column) position.
fn offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match bytes[start..].iter().position(|b| *b == b'\n') {
            Some(i) => start += i + 1,
            None => return bytes.len(),
        }
    }
    (start + column).min(bytes.len())
}

/// One level of the path being scanned.
enum Level {
    /// An object: the key whose value is being read (`None` between members), and whether the
    /// key was read but its `:` not yet.
    Object(Option<String>, bool),
    /// An array: the element's index.
    Array(usize),
}

/// The path of the value being read at byte `end` of `bytes`: what serde_path_to_error reports
/// for an error there, except inside a value serde buffers before deserializing it (an
/// internally tagged enum), where serde_json's position is the end of the buffered value and
/// the path is that of the object holding it.
fn path_at(bytes: &[u8], end: usize) -> String {
    let text = &bytes[..end.min(bytes.len())];
    let mut stack: Vec<Level> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'{' => stack.push(Level::Object(None, false)),
            b'[' => stack.push(Level::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Level::Array(n)) => *n += 1,
                Some(Level::Object(key, pending)) => {
                    *key = None;
                    *pending = false;
                }
                None => {}
            },
            b':' => {
                if let Some(Level::Object(_, pending)) = stack.last_mut() {
                    *pending = false;
                }
            }
            b'"' => {
                // A string: an object key when a member starts here, else a value.
                let start = i + 1;
                let mut j = start;
                while j < text.len() && text[j] != b'"' {
                    j += if text[j] == b'\\' { 2 } else { 1 };
                }
                if let Some(Level::Object(key @ None, pending)) = stack.last_mut() {
                    let raw = &text[start..j.min(text.len())];
                    *key = Some(
                        serde_json::from_slice::<String>(&[b"\"", raw, b"\""].concat())
                            .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned()),
                    );
                    *pending = true;
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for level in &stack {
        match level {
            Level::Object(Some(key), _) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Level::Object(..) => {}
            Level::Array(n) => {
                path.push('[');
                path.push_str(&n.to_string());
                path.push(']');
            }
        }
    }
    if path.is_empty() {
        path.push('.');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RoutingConfig;

    /// What serde_path_to_error reports, for comparison.
    fn reference<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) -> (String, String) {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let e = serde_path_to_error::deserialize::<_, T>(de).unwrap_err();
        (e.path().to_string(), e.inner().to_string())
    }

    fn ours<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) -> (String, String) {
        match from_slice::<T>(bytes).unwrap_err() {
            ConfigError::Json { path, message } => (path, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn paths_are_the_ones_a_path_tracking_deserializer_reports() {
        let good = RoutingConfig::for_listener(80, Default::default()).to_json();
        let route = r#"{"name":"r","path":{"type":"prefix","value":"/"},"action":{"type":"forward","backends":[{"backend":"b","weight":1}]}}"#;
        let vhost = |routes: &str| format!(r#"{{"name":"v","hosts":["a"],"routes":[{routes}]}}"#);
        let with_vhosts = |v: &str| {
            good.replacen(
                r#""virtualHosts":[]"#,
                &format!(r#""virtualHosts":[{v}]"#),
                1,
            )
        };
        assert!(good.contains(r#""virtualHosts":[]"#), "{good}");
        let cases = vec![
            // Unknown field at the top, in a nested object, in an array element.
            good.replacen('{', r#"{"bogus":1,"#, 1),
            with_vhosts(&vhost(&route.replacen('{', r#"{"bogus":1,"#, 1))),
            with_vhosts(&format!(
                "{},{}",
                vhost(route),
                vhost(&route.replace(r#""prefix""#, r#""nonsense""#))
            )),
            with_vhosts(&vhost(
                &route.replace(r#""weight":1"#, r#""weight":1,"x":2"#),
            )),
            // Wrong types.
            good.replacen(r#""port":80"#, r#""port":"x""#, 1),
            with_vhosts(&vhost(&route.replace(r#""weight":1"#, r#""weight":-1"#))),
            with_vhosts(&vhost(&format!(
                r#"{route},{}"#,
                route.replace(r#""name":"r""#, r#""name":7"#)
            ))),
            with_vhosts(r#"{"name":"v","hosts":"a","routes":[]}"#),
            // Missing fields.
            with_vhosts(r#"{"name":"v","routes":[]}"#),
            with_vhosts(&vhost(
                r#"{"name":"r","action":{"type":"forward","backends":[]}}"#,
            )),
            // Strings with escapes and structure characters before the error.
            with_vhosts(&format!(
                r#"{{"name":"a\"{{[,:b","hosts":["x\\"],"routes":[{}]}}"#,
                route.replace(r#""weight":1"#, r#""weight":true"#)
            )),
            // Truncated and malformed documents.
            good[..good.len() / 2].to_string(),
            good.replacen(':', "", 1),
            String::new(),
            "[]".into(),
        ];
        let mut exact = 0;
        for case in cases {
            let bytes = case.as_bytes();
            if serde_json::from_slice::<RoutingConfig>(bytes).is_ok() {
                panic!("case parses: {case}");
            }
            let (path, message) = ours::<RoutingConfig>(bytes);
            let (want_path, want_message) = reference::<RoutingConfig>(bytes);
            assert_eq!(message, want_message, "{case}");
            if serde_json::from_slice::<serde_json::Value>(bytes).is_err() {
                // Not JSON: the message's line and column say where; the path is the value
                // being read there, a key just read included.
                continue;
            }
            // The same path, or (inside a value serde buffers, a tagged variant, which
            // serde_json reports at its end) the path of the object that holds it.
            let ancestor = path == "."
                || want_path
                    .strip_prefix(path.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']));
            assert!(
                path == want_path || ancestor,
                "{case}: {path} vs {want_path}"
            );
            exact += usize::from(path == want_path);
        }
        assert!(exact >= 8, "{exact} exact paths");
    }
}
