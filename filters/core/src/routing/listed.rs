//! The path index of a `listed` virtual host: which routes can match a path, so
//! [`Router::decide`](crate::Router::decide) checks a handful of candidates instead of scanning
//! every route, and still takes exactly the route the scan would (the first one, in list order,
//! whose whole match holds).
//!
//! Every route is filed under one key, a byte string that is a prefix of every path the route's
//! path match can accept:
//!
//! - `Exact(p)`: key `p`, taken when the path is `p`;
//! - `Prefix(p)` (stored without its trailing `/`): key `p`, taken when the path is `p` or goes on
//!   with `/` (segment-wise, as `CompiledPath::Prefix` matches);
//! - `Regex(r)`: key = the literal text the anchored regex must start with (`/api/` for
//!   `/api/.*`, empty for `(?i)/api` or `[ab]/x`); its path is checked by the regex, or, when the
//!   rest of the regex is `.*` or nothing (`.*` is how the controller emits Istio `prefix` URIs
//!   and matches without a URI), by the equivalent string test.
//!
//! The keys are sorted, and each one links to its longest proper prefix among the keys (its
//! parent). The keys that are prefixes of a path are then exactly the parent chain of the
//! greatest key `<=` the path, cut to those no longer than their common prefix with the path: one
//! binary search and a walk of a few links, whatever the number of routes. Each candidate list is
//! in ascending route order; the lookup keeps the lowest route whose match holds and stops
//! reading a list at the first route past it.
//!
//! Regex routes whose key is empty are candidates for every path: a host of N such regexes is
//! still a scan of N regexes (those before the first route that matches).

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// No parent.
const NONE: u32 = u32::MAX;

/// How the path of a regex route is checked once its key is known to be a prefix of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Not a regex route (its path is proven by the key alone).
    NotRegex,
    /// Run the regex.
    Regex,
    /// `^key$`: the path is the key.
    Empty,
    /// `^key.*$`: the rest has no `\n`.
    AnyButLf,
    /// `^key(?s:.*)$`: anything.
    Any,
}

/// One key and its route lists (`ids[start..exact]`, `ids[exact..segment]`,
/// `ids[segment..regex]`).
#[derive(Debug, Clone, Copy)]
struct Entry {
    key_start: u32,
    key_len: u32,
    parent: u32,
    /// The lowest route of the three lists: once a route below it holds, the entry is skipped
    /// without reading its lists.
    min: u32,
    start: u32,
    exact: u32,
    segment: u32,
    regex: u32,
}

/// What a route's path match is, for indexing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PathSpec<'a> {
    /// `CompiledPath::Exact`.
    Exact(&'a str),
    /// `CompiledPath::Prefix` (trailing `/` already stripped).
    Prefix(&'a str),
    /// `CompiledPath::Regex`: the compiled (anchored) pattern.
    Regex(&'a str),
}

/// The path index of one `listed` virtual host.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListedIndex {
    /// Sorted, distinct.
    entries: Vec<Entry>,
    /// [`head`] of each entry's key: most comparisons of the binary search end here.
    heads: Vec<u64>,
    /// The keys, back to back.
    keys: Vec<u8>,
    /// Route indices, by entry and list, ascending within a list.
    ids: Vec<u32>,
    /// Per route.
    tails: Vec<Tail>,
}

impl ListedIndex {
    /// Indexes the routes of a virtual host, in list order.
    pub(crate) fn new<'a>(paths: impl IntoIterator<Item = PathSpec<'a>>) -> Self {
        // (key, list: 0 exact, 1 segment, 2 regex, route), sorted: by key, then list, then route.
        let mut items: Vec<(std::borrow::Cow<'a, [u8]>, u8, u32)> = Vec::new();
        let mut tails = Vec::new();
        for (i, spec) in paths.into_iter().enumerate() {
            let (key, list, tail) = match spec {
                PathSpec::Exact(p) => (p.as_bytes().into(), 0, Tail::NotRegex),
                PathSpec::Prefix(p) => (p.as_bytes().into(), 1, Tail::NotRegex),
                PathSpec::Regex(r) => {
                    let (key, tail) = regex_key(r);
                    (key.into(), 2, tail)
                }
            };
            items.push((key, list, to_u32(i)));
            tails.push(tail);
        }
        items.sort_unstable();
        let mut index = ListedIndex {
            tails,
            ids: items.iter().map(|&(_, _, id)| id).collect(),
            ..Default::default()
        };
        // Keys in sorted order: every key-prefix of a key comes before it, and the previous key's
        // chain (itself and its parents) holds the longest one.
        let mut chain: Vec<u32> = Vec::new();
        let mut at = 0;
        while at < items.len() {
            let key: &[u8] = &items[at].0;
            let end = at + items[at..].partition_point(|(k, _, _)| **k == *key);
            let list_end = |list: u8| to_u32(at + items[at..end].partition_point(|i| i.1 <= list));
            while let Some(&top) = chain.last() {
                if key.starts_with(index.key(top)) {
                    break;
                }
                chain.pop();
            }
            let entry = Entry {
                key_start: to_u32(index.keys.len()),
                key_len: to_u32(key.len()),
                parent: chain.last().copied().unwrap_or(NONE),
                min: items[at..end].iter().map(|i| i.2).min().unwrap_or(NONE),
                start: to_u32(at),
                exact: list_end(0),
                segment: list_end(1),
                regex: list_end(2),
            };
            index.heads.push(head(key));
            index.keys.extend_from_slice(key);
            chain.push(to_u32(index.entries.len()));
            index.entries.push(entry);
            at = end;
        }
        index.entries.shrink_to_fit();
        index.heads.shrink_to_fit();
        index.keys.shrink_to_fit();
        index.ids.shrink_to_fit();
        index
    }

    /// Heap bytes held (capacity), for the memory budget test.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.heads.capacity() * 8
            + self.keys.capacity()
            + self.ids.capacity() * 4
            + self.tails.capacity() * std::mem::size_of::<Tail>()
    }

    fn key(&self, entry: u32) -> &[u8] {
        let e = &self.entries[entry as usize];
        &self.keys[e.key_start as usize..(e.key_start + e.key_len) as usize]
    }

    /// The lowest route whose match holds: `holds(route, path_known)` checks the route's other
    /// conditions, and its path too unless `path_known`.
    pub(crate) fn first(
        &self,
        path: &str,
        mut holds: impl FnMut(usize, bool) -> bool,
    ) -> Option<usize> {
        let p = path.as_bytes();
        // The greatest key <= the path: a key whose head is below the path's is below it, above
        // is above; only equal heads compare the whole key.
        let h = head(p);
        let lo = self.heads.partition_point(|&k| k < h);
        let same = self.heads[lo..].partition_point(|&k| k == h);
        let after = lo
            + self.entries[lo..lo + same].partition_point(|e| {
                &self.keys[e.key_start as usize..(e.key_start + e.key_len) as usize] <= p
            });
        let mut at = u32::try_from(after).ok()?.checked_sub(1)?;
        let common = {
            let k = self.key(at);
            k.iter().zip(p).take_while(|(a, b)| a == b).count()
        };
        let mut best = NONE;
        loop {
            let e = self.entries[at as usize];
            let n = e.key_len as usize;
            if n <= common && e.min < best {
                // The key is a prefix of the path; `rest` is what follows it.
                let rest = &p[n..];
                let ids = |a: u32, b: u32| &self.ids[a as usize..b as usize];
                if rest.is_empty() {
                    lowest(ids(e.start, e.exact), &mut best, |id| holds(id, true));
                }
                if rest.is_empty() || rest[0] == b'/' {
                    lowest(ids(e.exact, e.segment), &mut best, |id| holds(id, true));
                }
                lowest(ids(e.segment, e.regex), &mut best, |id| {
                    match self.tails[id] {
                        Tail::Regex | Tail::NotRegex => holds(id, false),
                        Tail::Empty => rest.is_empty() && holds(id, true),
                        Tail::AnyButLf => !rest.contains(&b'\n') && holds(id, true),
                        Tail::Any => holds(id, true),
                    }
                });
            }
            if e.parent == NONE {
                break;
            }
            at = e.parent;
        }
        (best != NONE).then_some(best as usize)
    }
}

/// The first 8 bytes of `key`, big-endian, zero-padded: `head(a) < head(b)` implies `a < b` (and
/// `>` implies `>`), so heads order keys except among equal heads.
fn head(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// Sizes and indices fit in `u32` (a configuration is far smaller than 4 GiB).
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(NONE)
}

/// Reads one candidate list (ascending) up to `best`; the first route there that holds is the new
/// `best`.
fn lowest(ids: &[u32], best: &mut u32, mut holds: impl FnMut(usize) -> bool) {
    for &id in ids {
        if id >= *best {
            return;
        }
        if holds(id as usize) {
            *best = id;
            return;
        }
    }
}

/// The literal text every match of the anchored regex `pattern` starts with, and how the rest is
/// checked. Unknown or unparsable shapes get the empty key and [`Tail::Regex`] (always a
/// candidate, always run).
fn regex_key(pattern: &str) -> (Vec<u8>, Tail) {
    plain_regex_key(pattern).unwrap_or_else(|| regex_key_parsed(pattern))
}

/// [`regex_key`] through the parser.
fn regex_key_parsed(pattern: &str) -> (Vec<u8>, Tail) {
    let fallback = (Vec::new(), Tail::Regex);
    // The regex crate's default syntax options are regex-syntax's defaults.
    let Ok(hir) = regex_syntax::Parser::new().parse(pattern) else {
        return fallback;
    };
    let parts: &[Hir] = match hir.kind() {
        HirKind::Concat(parts) => parts,
        _ => return fallback,
    };
    // `^(?:…)$` as the router compiles it: starts at the text's start, ends at its end.
    if !matches!(
        parts.first().map(Hir::kind),
        Some(HirKind::Look(Look::Start))
    ) {
        return fallback;
    }
    let mut key = Vec::new();
    let mut i = 1;
    while let Some(part) = parts.get(i) {
        match part.kind() {
            HirKind::Literal(lit) => key.extend_from_slice(&lit.0),
            _ => break,
        }
        i += 1;
    }
    let tail = match &parts[i..] {
        [end] if is_end(end) => Tail::Empty,
        [rep, end] if is_end(end) => match dot_star(rep) {
            Some(true) => Tail::Any,
            Some(false) => Tail::AnyButLf,
            None => Tail::Regex,
        },
        _ => Tail::Regex,
    };
    (key, tail)
}

/// [`regex_key`] without parsing, for the shape the controller emits most (Istio `prefix` URIs):
/// `^(?:` escaped literal, then `.*`, `.*?` or nothing, `)$`. `None` for anything else.
fn plain_regex_key(pattern: &str) -> Option<(Vec<u8>, Tail)> {
    let body = pattern.strip_prefix("^(?:")?.strip_suffix(")$")?;
    let mut key = String::new();
    let mut chars = body.char_indices();
    let mut tail_at = body.len();
    while let Some((i, c)) = chars.next() {
        match c {
            // What `regex::escape` escapes.
            '\\' => match chars.next() {
                Some((_, e)) if "\\.+*?()|[]{}^$#&-~".contains(e) => key.push(e),
                _ => return None,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                tail_at = i;
                break;
            }
            c => key.push(c),
        }
    }
    let tail = match &body[tail_at..] {
        "" => Tail::Empty,
        ".*" | ".*?" => Tail::AnyButLf,
        _ => return None,
    };
    Some((key.into_bytes(), tail))
}

fn is_end(hir: &Hir) -> bool {
    matches!(hir.kind(), HirKind::Look(Look::End))
}

/// `Some(true)` for `(?s:.*)` (any character), `Some(false)` for `.*` (any but `\n`), greedy or
/// not; `None` for anything else.
fn dot_star(hir: &Hir) -> Option<bool> {
    let HirKind::Repetition(rep) = hir.kind() else {
        return None;
    };
    if rep.min != 0 || rep.max.is_some() {
        return None;
    }
    let HirKind::Class(Class::Unicode(class)) = rep.sub.kind() else {
        return None;
    };
    let ranges: Vec<(char, char)> = class
        .ranges()
        .iter()
        .map(|r| (r.start(), r.end()))
        .collect();
    if ranges == [('\0', char::MAX)] {
        Some(true)
    } else if ranges == [('\0', '\t'), ('\u{b}', char::MAX)] {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        Backend, HeaderMatch, PathMatch, QueryMatch, Route, RouteAction, RouteOrder, RoutingConfig,
        StringMatch, VirtualHost, WildcardMode,
    };
    use crate::{Decision, Request, Router};

    #[test]
    fn regex_keys_and_tails() {
        let key = |re: &str| {
            let (k, t) = regex_key(&format!("^(?:{re})$"));
            (String::from_utf8(k).unwrap(), t)
        };
        let k = |s: &str, t| (s.to_owned(), t);
        assert_eq!(key("/api/.*"), k("/api/", Tail::AnyButLf));
        assert_eq!(key("/api/.*?"), k("/api/", Tail::AnyButLf));
        assert_eq!(key("/api/(?s:.*)"), k("/api/", Tail::Any));
        assert_eq!(key(r"/api\.v1/x\*.*"), k("/api.v1/x*", Tail::AnyButLf));
        assert_eq!(key("/api"), k("/api", Tail::Empty));
        assert_eq!(key(""), k("", Tail::Empty));
        assert_eq!(key(".*"), k("", Tail::AnyButLf));
        assert_eq!(key("/r/[0-9]+"), k("/r/", Tail::Regex));
        assert_eq!(key("/a?b"), k("/", Tail::Regex));
        assert_eq!(key("/ab+"), k("/a", Tail::Regex));
        assert_eq!(key("/a|/b"), k("", Tail::Regex));
        assert_eq!(key("(/a|/b)/x"), k("", Tail::Regex));
        assert_eq!(key("(?i)/api/.*"), k("/", Tail::Regex));
        assert_eq!(key("/é/.*"), k("/é/", Tail::AnyButLf));
        assert_eq!(key(r"/a\b.*"), k("/a", Tail::Regex));
        assert_eq!(key("/a(?-s:.*)"), k("/a", Tail::AnyButLf));
        assert_eq!(key("/a.+"), k("/a", Tail::Regex));
        // The router never compiles unanchored regexes; anything unexpected is a plain regex.
        assert_eq!(regex_key("/api/.*"), (Vec::new(), Tail::Regex));
        assert_eq!(regex_key("("), (Vec::new(), Tail::Regex));
    }

    /// The shortcut for plain shapes gives what the parser gives, and declines everything else.
    #[test]
    fn plain_regex_keys_agree_with_the_parser() {
        for re in [
            "/api/.*",
            "/api/.*?",
            r"/a\.b\*c\+\?\(\)\|\[\]\{\}\^\$\#\&\-\~\\\\.*",
            "/é/ü",
            "",
            ".*",
            "/a b#c&d-e~f",
        ] {
            let p = format!("^(?:{re})$");
            let plain = plain_regex_key(&p).unwrap_or_else(|| panic!("{re}"));
            assert_eq!(plain, regex_key_parsed(&p), "{re}");
        }
        for re in [
            "/a*",
            "/ab+",
            "/a.+",
            "/a.*.*",
            r"/a\d",
            r"/a\/",
            "(?i)/a",
            "/a|/b",
            "a)|(b",
            "/a{2}",
            "/a$",
            "[a]",
            r"/a\.*",
            "/a(?s:.*)",
        ] {
            assert_eq!(plain_regex_key(&format!("^(?:{re})$")), None, "{re}");
        }
        assert_eq!(plain_regex_key("/api/.*"), None);
    }

    #[test]
    fn chains_link_each_key_to_its_longest_prefix() {
        let index = ListedIndex::new([
            PathSpec::Prefix("/a/b"),
            PathSpec::Prefix(""),
            PathSpec::Exact("/a"),
            PathSpec::Prefix("/b"),
            PathSpec::Regex("^(?:/a/.*)$"),
            PathSpec::Prefix("/a"),
        ]);
        let keys: Vec<(&[u8], Option<&[u8]>)> = (0..index.entries.len() as u32)
            .map(|i| {
                let parent = index.entries[i as usize].parent;
                (index.key(i), (parent != NONE).then(|| index.key(parent)))
            })
            .collect();
        let s = |v: &'static str| v.as_bytes();
        assert_eq!(
            keys,
            [
                (s(""), None),
                (s("/a"), Some(s(""))),
                (s("/a/"), Some(s("/a"))),
                (s("/a/b"), Some(s("/a/"))),
                (s("/b"), Some(s(""))),
            ]
        );
        // Candidates, lowest first (everything holds).
        let all = |path: &str| {
            let mut seen = Vec::new();
            index.first(path, |i, _| {
                seen.push(i);
                false
            });
            seen.sort_unstable();
            seen
        };
        assert_eq!(all("/a/b/c"), [0, 1, 4, 5]);
        assert_eq!(all("/a"), [1, 2, 5]);
        assert_eq!(all("/a/"), [1, 4, 5]);
        assert_eq!(all("/ab"), [1]);
        assert_eq!(all("/b/a"), [1, 3]);
        assert_eq!(all(""), [1]);
        assert_eq!(all("*"), Vec::<usize>::new());
        assert_eq!(ListedIndex::new([]).first("/", |_, _| true), None);
    }

    /// The index of a 10 000-route host stays small next to the routes themselves (the filter
    /// runs in every Envoy worker).
    #[test]
    fn memory_per_route() {
        let paths: Vec<(String, u8)> = (0..10_000)
            .map(|i| {
                let s = i / 10;
                match i % 4 {
                    0 => (format!("/svc{s}/health{i}"), 0),
                    1 => (format!("/svc{s}/api/v{i}"), 1),
                    2 => (format!("^(?:/svc{s}/api/v{i}/.*)$"), 2),
                    _ => (format!("^(?:/svc{s}/users/[0-9]+/{i})$"), 2),
                }
            })
            .collect();
        let index = ListedIndex::new(paths.iter().map(|(p, kind)| match kind {
            0 => PathSpec::Exact(p),
            1 => PathSpec::Prefix(p),
            _ => PathSpec::Regex(p),
        }));
        let per_route = index.heap_bytes() / paths.len();
        assert!(per_route <= 64, "{per_route} bytes per route");
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    fn router(routes: Vec<Route>) -> Router {
        let mut c = RoutingConfig::empty("t");
        c.backends.insert(
            "b".into(),
            Backend {
                cluster: "b".into(),
                endpoints: vec![],
                lb: Default::default(),
            },
        );
        c.virtual_hosts = vec![VirtualHost {
            name: "v".into(),
            hosts: vec!["*".into()],
            wildcard: WildcardMode::MultiLabel,
            order: RouteOrder::Listed,
            routes,
            default_backend: None,
        }];
        Router::try_from(c).unwrap()
    }

    fn route(name: &str, path: PathMatch) -> Route {
        Route::new(name, path, RouteAction::to("b"))
    }

    fn exact(p: &str) -> PathMatch {
        PathMatch::Exact(p.into())
    }

    fn prefix(p: &str) -> PathMatch {
        PathMatch::Prefix(p.into())
    }

    fn regex(p: &str) -> PathMatch {
        PathMatch::Regex(p.into())
    }

    /// The route the index picks (asserting the scan picks the same one), by name.
    fn pick(router: &Router, path: &str, method: &str, headers: &[(&str, &str)]) -> Option<String> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let req = Request {
            authority: "h",
            path,
            method,
            headers: &headers,
            source: None,
        };
        let d = router.decide(&req);
        assert_eq!(
            d,
            router.decide_linear(&req),
            "{path:?} {method} {headers:?}"
        );
        let (explained, trace) = router.explain(&req);
        assert_eq!(explained, d);
        match d {
            Decision::Route { vhost, route } => {
                let name = router.route(vhost, route).name.clone();
                assert!(
                    trace
                        .iter()
                        .any(|l| *l == format!("route {route} {name}: matches")),
                    "{trace:?}"
                );
                Some(name)
            }
            _ => None,
        }
    }

    #[test]
    fn the_first_listed_full_match_wins_on_one_path() {
        let r = router(vec![
            Route {
                headers: vec![HeaderMatch {
                    name: "x".into(),
                    value: StringMatch::Exact("1".into()),
                    invert: false,
                }],
                ..route("hdr", exact("/a"))
            },
            Route {
                method: Some("POST".into()),
                ..route("post", exact("/a"))
            },
            route("plain", exact("/a")),
            route("later", exact("/a")),
        ]);
        let go = |m, h| pick(&r, "/a", m, h);
        assert_eq!(go("GET", &[("x", "1")]).as_deref(), Some("hdr"));
        assert_eq!(go("POST", &[("x", "1")]).as_deref(), Some("hdr"));
        assert_eq!(go("POST", &[("x", "2")]).as_deref(), Some("post"));
        assert_eq!(go("GET", &[]).as_deref(), Some("plain"));
        assert_eq!(pick(&r, "/a/", "GET", &[]), None);
    }

    #[test]
    fn a_later_longer_prefix_does_not_beat_an_earlier_shorter_one() {
        let r = router(vec![
            route("root", prefix("/")),
            route("a", prefix("/a")),
            route("ab", prefix("/a/b")),
        ]);
        assert_eq!(pick(&r, "/a/b/c", "GET", &[]).as_deref(), Some("root"));
        let r = router(vec![
            route("ab", prefix("/a/b")),
            route("a", prefix("/a")),
            route("root", prefix("/")),
        ]);
        let go = |p| pick(&r, p, "GET", &[]);
        assert_eq!(go("/a/b/c").as_deref(), Some("ab"));
        assert_eq!(go("/a/b").as_deref(), Some("ab"));
        assert_eq!(go("/a/bc").as_deref(), Some("a"), "segment-wise");
        assert_eq!(go("/a").as_deref(), Some("a"));
        assert_eq!(go("/ab").as_deref(), Some("root"));
        assert_eq!(go("/").as_deref(), Some("root"));
        let r = router(vec![route("a", prefix("/a")), route("ab", prefix("/a/b"))]);
        assert_eq!(pick(&r, "/a/b/c", "GET", &[]).as_deref(), Some("a"));
    }

    #[test]
    fn regexes_keep_their_place_in_the_list() {
        let r = router(vec![
            route("num", regex("/a/[0-9]+")),
            route("one", exact("/a/1")),
            route("x", exact("/a/x")),
            route("istio-prefix", regex("/a/.*")),
            route("nocase", regex("(?i)/B")),
            route("b", exact("/b")),
        ]);
        let go = |p| pick(&r, p, "GET", &[]);
        assert_eq!(go("/a/1").as_deref(), Some("num"));
        assert_eq!(go("/a/x").as_deref(), Some("x"));
        assert_eq!(go("/a/y").as_deref(), Some("istio-prefix"));
        assert_eq!(go("/a/y\nz"), None, "`.` is not a newline");
        assert_eq!(go("/a"), None);
        assert_eq!(go("/b").as_deref(), Some("nocase"));
        assert_eq!(go("/B").as_deref(), Some("nocase"));
    }

    #[test]
    fn trailing_slashes_and_the_empty_prefix() {
        let r = router(vec![
            route("exact-slash", exact("/foo/")),
            route("foo", prefix("/foo/")),
            route("root", prefix("/")),
        ]);
        let go = |p| pick(&r, p, "GET", &[]);
        assert_eq!(go("/foo/").as_deref(), Some("exact-slash"));
        assert_eq!(go("/foo").as_deref(), Some("foo"));
        assert_eq!(go("/foo/bar").as_deref(), Some("foo"));
        assert_eq!(go("/foo//").as_deref(), Some("foo"));
        assert_eq!(go("/foobar").as_deref(), Some("root"));
        assert_eq!(go("/FOO").as_deref(), Some("root"), "case-sensitive");
        assert_eq!(go("").as_deref(), Some("root"));
        assert_eq!(go("?q=1").as_deref(), Some("root"));
        assert_eq!(go("*"), None);
        let r = router(vec![
            route("slashes", prefix("//")),
            route("x", exact("/x")),
        ]);
        assert_eq!(pick(&r, "/x", "GET", &[]).as_deref(), Some("slashes"));
    }

    #[test]
    fn query_only_differences() {
        let q = |v: &str| {
            vec![QueryMatch {
                name: "v".into(),
                value: StringMatch::Exact(v.into()),
            }]
        };
        let r = router(vec![
            Route {
                query: q("1"),
                ..route("one", exact("/q"))
            },
            Route {
                query: q("2"),
                ..route("two", prefix("/q"))
            },
            route("rest", exact("/q")),
        ]);
        let go = |p| pick(&r, p, "GET", &[]);
        assert_eq!(go("/q?v=1").as_deref(), Some("one"));
        assert_eq!(go("/q?v=2").as_deref(), Some("two"));
        assert_eq!(go("/q/x?v=2").as_deref(), Some("two"));
        assert_eq!(go("/q?v=3").as_deref(), Some("rest"));
        assert_eq!(go("/q/x?v=1"), None);
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// `/seg/seg…` from a small alphabet, so paths collide.
    fn random_path(rng: &mut Rng) -> String {
        let mut p = String::new();
        for _ in 0..rng.below(4) {
            p.push('/');
            p.push_str(rng.pick(&["a", "b", "ab", "a.b", "A", "", "é", "segment1", "segment2"]));
        }
        if p.is_empty() || rng.chance(15) {
            p.push('/');
        }
        p
    }

    fn random_route(rng: &mut Rng, i: usize) -> Route {
        let p = random_path(rng);
        let e = regex::escape(&p);
        let path = match rng.below(10) {
            0..=2 => exact(&p),
            3..=6 => prefix(&p),
            _ => regex(&match rng.below(11) {
                0 | 1 => format!("{e}.*"),
                2 => e.clone(),
                3 => format!("{e}(?s:.*)"),
                4 => format!("(?i){e}.*"),
                5 => format!("{e}/[ab]+"),
                6 => rng.pick(&["/.*", ".*", "[ab]/.*", "/a|/b"]).to_owned(),
                7 => format!("{e}(/.*)?"),
                8 => format!("({e}|/b)"),
                9 => format!("{e}.*?"),
                _ => format!("{e}.+"),
            }),
        };
        let mut r = route(&format!("r{i}"), path);
        r.method = match rng.below(4) {
            0 => Some("GET".into()),
            1 => Some("POST".into()),
            _ => None,
        };
        if rng.chance(30) {
            r.headers.push(HeaderMatch {
                name: "x".into(),
                value: if rng.chance(50) {
                    StringMatch::Exact("1".into())
                } else {
                    StringMatch::Present
                },
                invert: rng.chance(30),
            });
        }
        if rng.chance(15) {
            r.query.push(QueryMatch {
                name: "q".into(),
                value: StringMatch::Exact(rng.pick(&["1", "2"]).into()),
            });
        }
        if rng.chance(5) {
            r.sources = Some(vec!["10.0.0.1".into()]);
        }
        r
    }

    /// Random `listed` hosts and random requests: the index takes exactly the route the scan takes.
    #[test]
    fn the_index_decides_as_the_scan_does() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut routed = 0;
        let mut total = 0;
        for _ in 0..300 {
            let n = 1 + rng.below(40);
            let routes: Vec<Route> = (0..n).map(|i| random_route(&mut rng, i)).collect();
            let router = router(routes);
            for _ in 0..200 {
                let mut path = match rng.below(20) {
                    0 => String::new(),
                    1 => "*".into(),
                    _ => random_path(&mut rng),
                };
                if rng.chance(5) {
                    path.push_str("\nx");
                }
                if rng.chance(20) {
                    path.push_str(rng.pick(&["?q=1", "?q=2", "?a=1&q=1", "#q=1", "/?q=1"]));
                }
                let mut headers = Vec::new();
                if rng.chance(40) {
                    headers.push(("x".to_owned(), rng.pick(&["1", "2"]).to_owned()));
                }
                let req = Request {
                    authority: "h",
                    path: &path,
                    method: rng.pick(&["GET", "POST", "PUT"]),
                    headers: &headers,
                    source: rng.chance(20).then(|| "10.0.0.1".parse().unwrap()),
                };
                let d = router.decide(&req);
                assert_eq!(d, router.decide_linear(&req), "{req:?} {router:#?}");
                total += 1;
                routed += usize::from(matches!(d, Decision::Route { .. }));
            }
        }
        // The generator must exercise both outcomes.
        assert!(
            routed > total / 5 && routed < total * 4 / 5,
            "{routed} of {total}"
        );
    }
}
