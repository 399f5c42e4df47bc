//! What `translate` says about the objects it could not use (fully): [`Diagnostic`]s, each naming
//! the object (API group, kind, namespace, name) and the field, with a [`Severity`]: an error
//! left the object out of the snapshot, a warning kept it (a setting without effect, a reference
//! that answers 5xx).

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
    /// A field value that is invalid, in a setting that is left without effect; the object is
    /// kept (an invalid `server-alias`, a redirecting rule's `backendRefs`).
    InvalidSetting(String),
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The object was left out (the reconciler serves its last good version, if any).
    Error,
    /// The object was kept; part of it has no effect or answers 5xx.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

impl ErrorKind {
    /// Error when the object is left out, warning when it is kept.
    pub fn severity(&self) -> Severity {
        match self {
            ErrorKind::Invalid(_) | ErrorKind::Unsupported(_) | ErrorKind::UnsupportedKind => {
                Severity::Error
            }
            ErrorKind::MissingReference(_)
            | ErrorKind::Ignored(_)
            | ErrorKind::InvalidSetting(_) => Severity::Warning,
        }
    }
}

/// A diagnostic of `translate`: the object, the field, what is wrong, and so its severity.
pub type Diagnostic = TranslateError;

/// One object `translate` could not use (fully). Prints as `Kind namespace/name: field: what`.
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
    /// Error (the object was left out) or warning (it was kept).
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// Whether the object was left out of the snapshot.
    pub fn object_dropped(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self.kind {
            ErrorKind::Invalid(_) | ErrorKind::InvalidSetting(_) => "invalid",
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
        write!(f, ": {}", self.kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Invalid(m) | ErrorKind::InvalidSetting(m) => write!(f, "invalid: {m}"),
            ErrorKind::Unsupported(m) => write!(f, "not supported: {m}"),
            ErrorKind::MissingReference(m) => f.write_str(m),
            ErrorKind::UnsupportedKind => f.write_str("this kind is not supported"),
            ErrorKind::Ignored(m) => write!(f, "ignored: {m}"),
        }
    }
}

impl std::error::Error for TranslateError {}
