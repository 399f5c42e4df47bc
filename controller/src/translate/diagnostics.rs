//! What `translate` says about the objects it could not use (fully).

use std::fmt;

use crate::model::ObjectRef;

/// What is wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A field value the API would refuse, or one Portico cannot honour; the object is left out.
    Invalid(String),
    /// A field Portico does not implement; the object is left out.
    Unsupported(String),
    /// A reference to an object that does not exist; the object is kept and the reference answers
    /// 503.
    MissingReference(String),
    /// A kind `translate` does not read; the object is left out.
    UnsupportedKind,
    /// A setting Portico does not implement (an unknown annotation); the object is kept and the
    /// setting has no effect.
    Ignored(String),
}

/// One object `translate` could not use (fully).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    /// The object.
    pub object: ObjectRef,
    /// Field path within it (empty for the whole object).
    pub field: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl TranslateError {
    /// Whether the object was left out of the snapshot.
    pub fn object_dropped(&self) -> bool {
        !matches!(
            self.kind,
            ErrorKind::MissingReference(_) | ErrorKind::Ignored(_)
        )
    }

    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self.kind {
            ErrorKind::Invalid(_) => "invalid",
            ErrorKind::Unsupported(_) => "unsupported",
            ErrorKind::MissingReference(_) => "missing_reference",
            ErrorKind::UnsupportedKind => "unsupported_kind",
            ErrorKind::Ignored(_) => "ignored",
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        match &self.kind {
            ErrorKind::Invalid(m) => write!(f, ": invalid: {m}"),
            ErrorKind::Unsupported(m) => write!(f, ": not supported: {m}"),
            ErrorKind::MissingReference(m) => write!(f, ": {m}"),
            ErrorKind::UnsupportedKind => write!(f, ": this kind is not supported"),
            ErrorKind::Ignored(m) => write!(f, ": ignored: {m}"),
        }
    }
}

impl std::error::Error for TranslateError {}
