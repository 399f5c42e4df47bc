//! Matching shared by every filter: hosts (exact, wildcard, catch-all), paths (segment-wise
//! prefixes, exact paths), string matches (exact, prefix, regex, present) and address ranges.
//! Pure functions and tables; no policy.

pub mod casefold;
pub mod cidr;
pub mod host;
pub mod path;
pub mod re2;
pub mod string;
