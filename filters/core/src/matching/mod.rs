//! Matching shared by every filter: hosts (exact, wildcard, catch-all), paths (segment-wise
//! prefixes, exact paths), string matches (exact, prefix, regex, present) and address ranges.
//! Pure functions and tables; no policy.

pub mod casefold;
pub mod cidr;
pub mod host;
pub mod path;
pub mod re2;
pub mod string;

/// Whether two header names are the same name (ASCII case ignored). The lengths are compared
/// first, inline: a header lookup scans the whole map, and most names differ in length.
#[inline]
pub fn same_header_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
}
