//! String matchers (exact, prefix, regex, present) as every filter compiles them.

use super::re2::{self, Regex};

use crate::config::StringMatch;
use crate::ConfigError;

/// A compiled [`StringMatch`].
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The whole value.
    Exact(String),
    /// A prefix of the value.
    Prefix(String),
    /// An anchored regex over the whole value.
    Regex(Regex),
    /// Any value (the header is there).
    Present,
}

impl Matcher {
    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(v) => v == value,
            Matcher::Prefix(v) => value.starts_with(v.as_str()),
            Matcher::Regex(r) => r.is_match(value),
            Matcher::Present => true,
        }
    }

    /// The matcher in words, for traces.
    pub fn describe(&self) -> String {
        match self {
            Matcher::Exact(v) => format!("exact {v:?}"),
            Matcher::Prefix(v) => format!("prefix {v:?}"),
            Matcher::Regex(r) => format!("regex {:?}", r.as_str()),
            Matcher::Present => "present".into(),
        }
    }

    /// Compiles `m`; a regex that does not compile is an error naming `field`.
    pub fn compile(field: String, m: &StringMatch) -> Result<Matcher, ConfigError> {
        Ok(match m {
            StringMatch::Exact(v) => Matcher::Exact(v.clone()),
            StringMatch::Prefix(v) => Matcher::Prefix(v.clone()),
            StringMatch::Regex(r) => Matcher::Regex(compile_regex(field, r)?),
            StringMatch::Present => Matcher::Present,
        })
    }
}

/// Compiles `re` (RE2 syntax, [`super::re2`]) anchored: the whole value must match, as in
/// Envoy's `safe_regex` and the Gateway API. A regex that does not compile is an error naming
/// `field`.
pub fn compile_regex(field: String, re: &str) -> Result<Regex, ConfigError> {
    re2::compile_anchored(re).map_err(|e| ConfigError::Invalid {
        field,
        message: format!("regex {re:?} does not compile: {e}"),
    })
}
