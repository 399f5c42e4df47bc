//! What a filter's decision asks of the host, in every filter: a local reply and header edits.
//! A decision module returns these; the glue carries them out.

/// A local answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u32,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A plain-text answer.
    pub fn text(status: u32, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// One header change, in order: set the header to the value (replacing every copy), or remove
/// it (`None`).
pub type HeaderEdit = (String, Option<String>);
