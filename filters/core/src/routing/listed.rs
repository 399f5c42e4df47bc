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

/// [`regex_key`] by reading the pattern: the body of `^(?:…)$` (the router's anchoring) as a
/// sequence of atoms, the literal ones from the start making the key. A literal that repeats
/// ends the key (included when it must occur: `+`, `{n,…}` with n ≥ 1); an alternation of the
/// whole body, a flag group (case-insensitivity changes what a literal matches) or anything not
/// read here gives the empty key.
fn regex_key_parsed(pattern: &str) -> (Vec<u8>, Tail) {
    let fallback = (Vec::new(), Tail::Regex);
    let Some(body) = pattern
        .strip_prefix("^(?:")
        .and_then(|b| b.strip_suffix(")$"))
    else {
        return fallback;
    };
    let chars: Vec<char> = body.chars().collect();
    // The `(?:` must close at the end: the body's groups balance and it has no alternation of
    // its own.
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => match class_end(&chars, i) {
                Some(end) => i = end,
                None => return fallback,
            },
            '(' => depth += 1,
            ')' if depth == 0 => return fallback,
            ')' => depth -= 1,
            '|' if depth == 0 => return fallback,
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return fallback;
    }
    let mut key = String::new();
    let mut at = 0;
    while let Some((c, len)) = literal_at(&chars, at) {
        match chars.get(at + len) {
            Some('*' | '?') => break,
            Some('+') => {
                key.push(c);
                break;
            }
            Some('{') => {
                if chars
                    .get(at + len + 1)
                    .is_some_and(|d| ('1'..='9').contains(d))
                {
                    key.push(c);
                }
                break;
            }
            _ => {
                key.push(c);
                at += len;
            }
        }
    }
    let rest: String = chars[at..].iter().collect();
    let tail = match rest.as_str() {
        "" => Tail::Empty,
        ".*" | ".*?" | "(?-s:.*)" | "(?-s:.*?)" => Tail::AnyButLf,
        "(?s:.*)" | "(?s:.*?)" => Tail::Any,
        _ => Tail::Regex,
    };
    (key.into_bytes(), tail)
}

/// The literal character at `chars[at]` and its length: a plain character, escaped punctuation
/// or `\x{…}` (what [`crate::matching::re2`] writes). `None` for anything else.
fn literal_at(chars: &[char], at: usize) -> Option<(char, usize)> {
    match *chars.get(at)? {
        '\\' => match *chars.get(at + 1)? {
            p if p.is_ascii_punctuation() => Some((p, 2)),
            'x' if chars.get(at + 2) == Some(&'{') => {
                let close = chars[at + 3..].iter().position(|&c| c == '}')?;
                let hex: String = chars[at + 3..at + 3 + close].iter().collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                Some((c, close + 4))
            }
            _ => None,
        },
        '.' | '^' | '$' | '|' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' => None,
        c => Some((c, 1)),
    }
}

/// The index of the `]` closing the class opened at `chars[open]` (a `]` first is text, `[:…:]`
/// inside is one item), `None` if it does not close.
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' if chars.get(i + 1) == Some(&':') => {
                i += chars[i..].windows(2).position(|w| w == [':', ']'])? + 1;
            }
            ']' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
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

#[cfg(test)]
mod tests;
