//! Host normalization and host-pattern lookup.
//!
//! `matchit` does not fit here: host patterns are matched right to left by label, and a wildcard
//! is a whole leading label, which a left-to-right path router cannot express. Two hash maps do it
//! in at most one lookup per label.

use std::collections::HashMap;

use crate::config::WildcardMode;

/// Lower-cases a Host/`:authority` value and drops a port and one trailing dot.
///
/// `Shop.Example.COM.:8080` → `shop.example.com`. IPv6 literals keep their brackets
/// (`[::1]:80` → `[::1]`). Returns a borrowed slice when nothing needs lower-casing.
pub fn normalize_host(authority: &str) -> std::borrow::Cow<'_, str> {
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        }
    } else {
        match authority.rfind(':') {
            Some(colon) if authority[colon + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                &authority[..colon]
            }
            _ => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

/// Maps host names to a value: exact names, `*.suffix` wildcards and one catch-all.
#[derive(Debug, Clone)]
pub struct HostTable<T> {
    exact: HashMap<String, T>,
    /// Keyed by the suffix including its leading dot (`.example.com`).
    single_label: HashMap<String, T>,
    multi_label: HashMap<String, T>,
    catch_all: Option<T>,
}

impl<T> Default for HostTable<T> {
    fn default() -> Self {
        HostTable {
            exact: HashMap::new(),
            single_label: HashMap::new(),
            multi_label: HashMap::new(),
            catch_all: None,
        }
    }
}

impl<T: Clone> HostTable<T> {
    /// Adds a pattern; returns false if that pattern was already present (the first one stays).
    pub fn insert(&mut self, pattern: &str, mode: WildcardMode, value: T) -> bool {
        let pattern = normalize_host(pattern);
        let (map, key) = if pattern == "*" {
            if self.catch_all.is_some() {
                return false;
            }
            self.catch_all = Some(value);
            return true;
        } else if let Some(suffix) = pattern.strip_prefix('*') {
            let map = match mode {
                WildcardMode::SingleLabel => &mut self.single_label,
                WildcardMode::MultiLabel => &mut self.multi_label,
            };
            (map, suffix.to_owned())
        } else {
            (&mut self.exact, pattern.into_owned())
        };
        if map.contains_key(&key) {
            return false;
        }
        map.insert(key, value);
        true
    }

    /// Finds the most specific entry for a normalized host: exact, then the wildcard with the
    /// longest suffix (a single-label wildcard before a multi-label one of the same suffix), then
    /// the catch-all.
    pub fn get(&self, host: &str) -> Option<&T> {
        if let Some(v) = self.exact.get(host) {
            return Some(v);
        }
        // Each '.' starts a candidate suffix; the first one is the longest and the only one a
        // single-label wildcard can take. A wildcard needs a non-empty label before its suffix.
        for (n, (i, _)) in host.match_indices('.').enumerate() {
            if i == 0 {
                return self.catch_all.as_ref();
            }
            let suffix = &host[i..];
            if n == 0 {
                if let Some(v) = self.single_label.get(suffix) {
                    return Some(v);
                }
            }
            if let Some(v) = self.multi_label.get(suffix) {
                return Some(v);
            }
        }
        self.catch_all.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        for (input, want) in [
            ("foo.example.com", "foo.example.com"),
            ("Foo.Example.COM", "foo.example.com"),
            ("foo.example.com:8080", "foo.example.com"),
            ("foo.example.com.", "foo.example.com"),
            ("FOO.example.com.:80", "foo.example.com"),
            ("[::1]:80", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("", ""),
        ] {
            assert_eq!(normalize_host(input), want, "{input}");
        }
    }

    fn table() -> HostTable<&'static str> {
        let mut t = HostTable::default();
        assert!(t.insert("foo.example.com", WildcardMode::SingleLabel, "exact"));
        assert!(t.insert("*.example.com", WildcardMode::SingleLabel, "one"));
        assert!(t.insert("*.multi.test", WildcardMode::MultiLabel, "many"));
        assert!(t.insert("*.a.multi.test", WildcardMode::MultiLabel, "many-a"));
        assert!(!t.insert("FOO.example.com", WildcardMode::SingleLabel, "dup"));
        t
    }

    #[test]
    fn lookups() {
        let t = table();
        for (host, want) in [
            ("foo.example.com", Some("exact")),
            ("bar.example.com", Some("one")),
            ("a.bar.example.com", None),
            ("example.com", None),
            (".example.com", None),
            ("x.multi.test", Some("many")),
            ("x.y.multi.test", Some("many")),
            ("x.a.multi.test", Some("many-a")),
            ("multi.test", None),
            ("other.test", None),
        ] {
            assert_eq!(t.get(host).copied(), want, "{host}");
        }
    }

    #[test]
    fn catch_all_takes_the_rest() {
        let mut t = table();
        assert!(t.insert("*", WildcardMode::SingleLabel, "any"));
        assert!(!t.insert("*", WildcardMode::SingleLabel, "any2"));
        assert_eq!(t.get("a.bar.example.com"), Some(&"any"));
        assert_eq!(t.get("foo.example.com"), Some(&"exact"));
    }
}
