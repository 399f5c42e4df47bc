//! Path tables: `Exact` by hash, `Prefix` by element in a `matchit` radix tree.
//!
//! A `Prefix` value `/aaa/bbb` is inserted into `matchit` as three routes — `/aaa/bbb`,
//! `/aaa/bbb/` and `/aaa/bbb/{*rest}` — so a lookup matches whole path elements only
//! (`/aaa/bbbxyz` falls back to a shorter prefix) and `matchit`'s static-before-catch-all
//! priority with backtracking makes the longest prefix win. `Exact` values live in a `HashMap`
//! instead: a radix tree buys nothing for whole-string equality.

use std::collections::HashMap;

/// Strips the query string and fragment from a `:path`.
pub fn path_only(path_and_query: &str) -> &str {
    // Bytes, not chars: both delimiters are ASCII, so the cut is a char boundary, and a search
    // by `char` decodes UTF-8 on every request (2 000 instructions of the module's ~27 000 in
    // host-runner's count for a 13-byte path).
    let end = path_and_query
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(path_and_query.len());
    &path_and_query[..end]
}

/// A `Prefix` value with its trailing slashes removed (`/` becomes the empty string).
pub fn prefix_key(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// Escapes `matchit`'s parameter braces so a value is taken literally.
fn escape(segment: &str) -> String {
    segment.replace('{', "{{").replace('}', "}}")
}

/// Which kind of path match won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathKind {
    /// A `Prefix` match (loses ties).
    Prefix,
    /// An `Exact` match (wins ties).
    Exact,
}

/// The winner of a path lookup: the value, its kind, and the matched rule's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathHit<T> {
    /// The value stored for the winning rule.
    pub value: T,
    /// Exact or Prefix.
    pub kind: PathKind,
    /// Length of the rule's path (a Prefix without its trailing `/`).
    pub len: usize,
}

/// Errors building a [`PathTable`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The value does not start with `/`.
    #[error("path {0:?} must start with '/'")]
    NotAbsolute(String),
    /// `matchit` refused the value (it reports why).
    #[error("path {path:?} cannot be indexed: {reason}")]
    Index {
        /// The offending value.
        path: String,
        /// `matchit`'s reason.
        reason: String,
    },
}

/// Exact and prefix path rules of one virtual host.
#[derive(Debug, Clone, Default)]
pub struct PathTable<T> {
    exact: HashMap<String, T>,
    /// Prefix routes → their slot.
    prefix: matchit::Router<usize>,
    /// Per slot: the value and the length of its key (the prefix without its trailing `/`).
    slots: Vec<(T, usize)>,
    /// Key → its slot and the length of the prefix as written (for equivalent prefixes).
    prefix_keys: HashMap<String, (usize, usize)>,
}

impl<T: Clone> PathTable<T> {
    /// Adds an `Exact` rule. Returns `Ok(false)` if the same value was already present (the first
    /// one stays).
    ///
    /// # Errors
    /// [`PathError::NotAbsolute`] when the value does not start with `/`.
    pub fn insert_exact(&mut self, path: &str, value: T) -> Result<bool, PathError> {
        if !path.starts_with('/') {
            return Err(PathError::NotAbsolute(path.to_owned()));
        }
        if self.exact.contains_key(path) {
            return Ok(false);
        }
        self.exact.insert(path.to_owned(), value);
        Ok(true)
    }

    /// Adds a `Prefix` rule. Equivalent prefixes (the same elements: `/foo` and `/foo/`) match
    /// the same requests; the Ingress API's "longest matching path" gives them to the longer one
    /// as written (`/foo/`), and of two identical ones the first stays. Returns whether this rule
    /// is now the table's for its prefix.
    ///
    /// # Errors
    /// [`PathError`] when the value is not absolute or cannot be indexed.
    pub fn insert_prefix(&mut self, prefix: &str, value: T) -> Result<bool, PathError> {
        if !prefix.starts_with('/') {
            return Err(PathError::NotAbsolute(prefix.to_owned()));
        }
        let key = prefix_key(prefix);
        if let Some((slot, written)) = self.prefix_keys.get_mut(key) {
            if prefix.len() <= *written {
                return Ok(false);
            }
            *written = prefix.len();
            self.slots[*slot].0 = value;
            return Ok(true);
        }
        let escaped = escape(key);
        let slot = self.slots.len();
        let mut routes = vec![format!("{escaped}/"), format!("{escaped}/{{*rest}}")];
        if !key.is_empty() {
            routes.push(escaped.clone());
        }
        for route in routes {
            self.prefix
                .insert(route, slot)
                .map_err(|e| PathError::Index {
                    path: prefix.to_owned(),
                    reason: e.to_string(),
                })?;
        }
        self.slots.push((value, key.len()));
        self.prefix_keys
            .insert(key.to_owned(), (slot, prefix.len()));
        Ok(true)
    }

    /// Finds the winning rule for a request path (query already removed): the longest rule, and
    /// `Exact` over `Prefix` when they are equally long.
    pub fn lookup(&self, path: &str) -> Option<PathHit<&T>> {
        // An Exact hit is as long as the whole path; a Prefix hit can be at most that long, so an
        // Exact hit always wins (outright, or on the tie).
        if let Some(value) = self.exact.get(path) {
            return Some(PathHit {
                value,
                kind: PathKind::Exact,
                len: path.len(),
            });
        }
        let hit = self.prefix.at(path).ok()?;
        let (value, len) = self.slots.get(*hit.value)?;
        Some(PathHit {
            value,
            kind: PathKind::Prefix,
            len: *len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path-matching examples table of the Kubernetes Ingress documentation, row by row,
    /// plus the edges around it.
    #[test]
    fn ingress_examples_table() {
        type Row = (
            &'static [(&'static str, &'static str)],
            &'static str,
            Option<&'static str>,
        );
        let rows: &[Row] = &[
            (&[("P", "/")], "/anything/at/all", Some("/")),
            (&[("E", "/foo")], "/foo", Some("E/foo")),
            (&[("E", "/foo")], "/bar", None),
            (&[("E", "/foo")], "/foo/", None),
            (&[("E", "/foo/")], "/foo", None),
            (&[("P", "/foo")], "/foo", Some("/foo")),
            (&[("P", "/foo")], "/foo/", Some("/foo")),
            (&[("P", "/foo/")], "/foo", Some("/foo/")),
            (&[("P", "/foo/")], "/foo/", Some("/foo/")),
            (&[("P", "/aaa/bb")], "/aaa/bbb", None),
            (&[("P", "/aaa/bbb")], "/aaa/bbb", Some("/aaa/bbb")),
            (&[("P", "/aaa/bbb/")], "/aaa/bbb", Some("/aaa/bbb/")),
            (&[("P", "/aaa/bbb")], "/aaa/bbb/", Some("/aaa/bbb")),
            (&[("P", "/aaa/bbb")], "/aaa/bbb/ccc", Some("/aaa/bbb")),
            (&[("P", "/aaa/bbb")], "/aaa/bbbxyz", None),
            (&[("P", "/"), ("P", "/aaa")], "/aaa/ccc", Some("/aaa")),
            (
                &[("P", "/"), ("P", "/aaa"), ("P", "/aaa/bbb")],
                "/aaa/bbb",
                Some("/aaa/bbb"),
            ),
            (
                &[("P", "/"), ("P", "/aaa"), ("P", "/aaa/bbb")],
                "/ccc",
                Some("/"),
            ),
            (&[("P", "/aaa")], "/ccc", None),
            (&[("P", "/foo"), ("E", "/foo")], "/foo", Some("E/foo")),
            (&[("E", "/foo"), ("P", "/foo")], "/foo", Some("E/foo")),
            // Beyond the table.
            (&[("P", "/"), ("P", "/aaa/bbb")], "/aaa/bbbxyz", Some("/")),
            (
                &[("P", "/aaa"), ("P", "/aaa/bbb")],
                "/aaa/bbbxyz/q",
                Some("/aaa"),
            ),
            (
                &[("P", "/aaa/bbb/"), ("E", "/aaa/bbb")],
                "/aaa/bbb",
                Some("E/aaa/bbb"),
            ),
            (&[("E", "/a/b"), ("P", "/a")], "/a/b/", Some("/a")),
            (&[("P", "/")], "/", Some("/")),
            (&[("P", "/a{b}")], "/a{b}/c", Some("/a{b}")),
            (&[("P", "/a:b"), ("P", "/a*")], "/a:b/c", Some("/a:b")),
            (&[("P", "/a*")], "/a*", Some("/a*")),
            (&[("P", "/foo")], "/FOO", None),
            (&[("P", "/foo")], "", None),
        ];
        for (rules, request, want) in rows {
            let mut table = PathTable::default();
            for (kind, path) in *rules {
                let name = if *kind == "E" {
                    format!("E{path}")
                } else {
                    (*path).to_owned()
                };
                let inserted = if *kind == "E" {
                    table.insert_exact(path, name)
                } else {
                    table.insert_prefix(path, name)
                };
                assert_eq!(inserted, Ok(true), "{rules:?}");
            }
            let got = table.lookup(request).map(|h| h.value.clone());
            assert_eq!(
                got.as_deref(),
                *want,
                "rules {rules:?}, request {request:?}"
            );
        }
    }

    #[test]
    fn duplicates_keep_the_first() {
        let mut t = PathTable::default();
        assert_eq!(t.insert_prefix("/a/", 1), Ok(true));
        assert_eq!(t.insert_prefix("/a", 2), Ok(false));
        assert_eq!(
            t.insert_prefix("/a/", 5),
            Ok(false),
            "the first of identical prefixes stays"
        );
        assert_eq!(t.insert_prefix("/b", 6), Ok(true));
        assert_eq!(
            t.insert_prefix("/b/", 7),
            Ok(true),
            "the longer of equivalent prefixes wins"
        );
        assert_eq!(t.lookup("/b").map(|h| *h.value), Some(7));
        assert_eq!(t.lookup("/b/c").map(|h| *h.value), Some(7));
        assert_eq!(t.lookup("/a/c").map(|h| *h.value), Some(1));
        assert_eq!(t.insert_exact("/a", 3), Ok(true));
        assert_eq!(t.insert_exact("/a", 4), Ok(false));
        assert_eq!(t.lookup("/a/x").map(|h| *h.value), Some(1));
        assert_eq!(t.lookup("/a").map(|h| *h.value), Some(3));
    }

    #[test]
    fn relative_paths_are_errors() {
        let mut t = PathTable::default();
        assert_eq!(
            t.insert_prefix("foo", 1),
            Err(PathError::NotAbsolute("foo".into()))
        );
        assert_eq!(
            t.insert_exact("", 1),
            Err(PathError::NotAbsolute(String::new()))
        );
    }

    #[test]
    fn strips_query_and_fragment() {
        assert_eq!(path_only("/a/b?x=1/2"), "/a/b");
        assert_eq!(path_only("/a#frag"), "/a");
        assert_eq!(path_only("/a"), "/a");
    }
}
