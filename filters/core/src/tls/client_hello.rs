//! Parses a TLS ClientHello from the first bytes a client sends, without I/O.
//!
//! The filter buffers downstream data and calls [`parse`] with everything received so far until
//! it returns something other than [`HelloError::Incomplete`]. TLS 1.0 to 1.3 ClientHellos are
//! understood (their layout is the same; TLS 1.3 moves the real version to `supported_versions`).
//!
//! # What is accepted
//!
//! * The record layer: records of content type handshake (`0x16`) with a record version `0x03xx`,
//!   each 1 to 2^14 bytes long. The ClientHello may be split over any number of records of any
//!   size (even 1-byte records); they are reassembled. Zero-length handshake records are refused
//!   ([`HelloError::Malformed`]`("record length")`, RFC 8446 §5.1 forbids them): otherwise a
//!   client could keep the filter buffering forever.
//! * If the *first* byte is not `0x16` or the second not `0x03`, the connection is not TLS
//!   ([`HelloError::NotTls`]): plain HTTP, an SSLv2-compatible hello (first byte has its top bit
//!   set), anything else. A record of any other content type (alert, change_cipher_spec,
//!   application data) or version *after* the first record but before the ClientHello is
//!   complete is [`HelloError::Malformed`]`("record type")` / `("record version")`: the
//!   connection did start as TLS, and RFC 8446 §5.1 forbids interleaving other records with a
//!   fragmented handshake message.
//! * The first handshake message must be a ClientHello (type 1), else `Malformed("handshake type")`.
//!   Its declared length is checked against [`MAX_HELLO`] as soon as the 4-byte handshake header
//!   is in, so an oversized hello is refused ([`HelloError::TooLarge`]) before it is buffered.
//! * Bytes after the ClientHello (the rest of its last record, later records) are not looked at:
//!   `parse` returns as soon as the hello is complete.
//!
//! # What is extracted
//!
//! See [`ClientHello`]. GREASE values (RFC 8701, `0x?A?A`) are dropped from cipher suites,
//! `supported_versions` and extension types (a GREASE extension's contents are not parsed).
//! Duplicate extensions (other than GREASE ones) are `Malformed("duplicate extension")`.
//!
//! # Guarantees
//!
//! * No panic, no out-of-range index; every length is checked against the bytes actually present
//!   before anything is allocated from it.
//! * Monotonic: once `parse(buf)` returns anything but `Incomplete`, `parse` of any `buf` extended
//!   with more bytes returns the same thing. A prefix never parses `Ok` with different data.
//! * `Incomplete { needed }` is a lower bound: no extension of `buf` by fewer than `needed` bytes
//!   parses `Ok`.
//! * What the filter must buffer is bounded: a hello of [`MAX_HELLO`] bytes in 1-byte records is
//!   at most `6 * (MAX_HELLO + 4)` bytes (about 384 KiB); past that, `parse` has answered.

use std::borrow::Cow;

/// The largest ClientHello accepted, in bytes of handshake message body (the 24-bit length in the
/// handshake header, which excludes that 4-byte header): 64 KiB, the bound Envoy's `tls_inspector`
/// uses too. Real hellos are well under 2 KiB even with post-quantum key shares (an
/// X25519MLKEM768 share is 1,216 bytes); anything larger is refused with
/// [`HelloError::TooLarge`] instead of being buffered.
pub const MAX_HELLO: usize = 64 * 1024;

/// TLS record header: content type (1), version (2), length (2).
const RECORD_HEADER: usize = 5;
/// The largest TLSPlaintext fragment (RFC 8446 §5.1, RFC 5246 §6.2.1).
const MAX_RECORD: usize = 1 << 14;
const CONTENT_HANDSHAKE: u8 = 0x16;
/// Handshake header: message type (1), length (3).
const HANDSHAKE_HEADER: usize = 4;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
/// The smallest well-formed ClientHello body: version (2), random (32), empty session id (1), one
/// cipher suite (2 + 2), one compression method (1 + 1), no extensions.
const MIN_BODY: usize = 41;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const SNI_HOST_NAME: u8 = 0;

/// Why [`parse`] returned no ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// So far a valid prefix of a ClientHello: call again with more bytes.
    #[error("incomplete ClientHello: at least {needed} more bytes needed")]
    Incomplete {
        /// At least this many more bytes are needed before `parse` can succeed (a lower bound,
        /// best effort; always at least 1).
        needed: usize,
    },
    /// Not a TLS handshake: the first byte is not a handshake record (`0x16`) or the record
    /// version is not `0x03xx` (e.g. plain HTTP, an SSLv2-compatible hello).
    #[error("not a TLS handshake")]
    NotTls,
    /// Starts as TLS but breaks the record or ClientHello format; names the field at fault.
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
    /// The ClientHello declares a length over [`MAX_HELLO`].
    #[error("ClientHello larger than {MAX_HELLO} bytes")]
    TooLarge,
}

impl HelloError {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            HelloError::Incomplete { .. } => "incomplete",
            HelloError::NotTls => "not_tls",
            HelloError::Malformed(_) => "malformed",
            HelloError::TooLarge => "too_large",
        }
    }
}

/// What Portico needs from a ClientHello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` (`client_version` before TLS 1.3): `0x0301` for TLS 1.0 … `0x0303` for
    /// TLS 1.2 and for every TLS 1.3 hello. Always `0x03xx`.
    pub legacy_version: u16,
    /// The first `host_name` entry of the `server_name` extension, normalised by
    /// [`normalize_sni`] (ASCII lower case, one trailing dot removed). `None` if the extension is
    /// absent or lists no `host_name`. Validated: non-empty, ASCII, no NUL.
    pub sni: Option<String>,
    /// The ALPN protocol names in the client's order, as sent (`h2`, `http/1.1`, …). Empty if the
    /// extension is absent. Names are opaque bytes in RFC 7301; a non-UTF-8 byte becomes U+FFFD,
    /// so such a name can never equal a registered (ASCII) protocol id.
    pub alpn: Vec<String>,
    /// The `supported_versions` extension (TLS 1.3), in the client's order, GREASE removed.
    /// Empty if the extension is absent.
    pub supported_versions: Vec<u16>,
    /// The offered cipher suites in the client's order, GREASE removed.
    pub cipher_suites: Vec<u16>,
}

impl ClientHello {
    /// The highest version the client offers: the largest of [`Self::supported_versions`]
    /// (GREASE already removed), or [`Self::legacy_version`] if that list is empty.
    /// `0x0304` means the client speaks TLS 1.3. Values are compared as numbers, so a
    /// pre-RFC TLS 1.3 draft code (`0x7fxx`), which no current client sends, would rank above it.
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// Whether `v` is a GREASE value (RFC 8701): `0x0A0A`, `0x1A1A`, … `0xFAFA`.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Normalises a server name for lookups: ASCII lower case, and ONE trailing dot removed
/// (`Shop.Example.COM.` → `shop.example.com`; `a..` → `a.`). Non-ASCII characters are kept as
/// they are ([`parse`] refuses them in an SNI before calling this).
pub fn normalize_sni(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// Parses the ClientHello at the start of `buf`, everything the client has sent so far on the
/// connection. See the [module docs](self) for what is accepted and guaranteed.
pub fn parse(buf: &[u8]) -> Result<ClientHello, HelloError> {
    let message = reassemble(buf)?;
    parse_body(message.get(HANDSHAKE_HEADER..).unwrap_or_default())
}

/// Walks the records at the start of `buf` and returns the complete ClientHello handshake
/// message (header included, nothing after it). Borrowed when it sits in the first record.
fn reassemble(buf: &[u8]) -> Result<Cow<'_, [u8]>, HelloError> {
    let mut rest = buf;
    let mut first = true;
    // Only used when the message spans records; grows by bytes present, never by a declared length.
    let mut message: Vec<u8> = Vec::new();
    loop {
        // Judge the content type and major version as soon as each byte is in.
        if let Some(&content_type) = rest.first() {
            if content_type != CONTENT_HANDSHAKE {
                return Err(not_tls_or(first, "record type"));
            }
        }
        if let Some(&major) = rest.get(1) {
            if major != 0x03 {
                return Err(not_tls_or(first, "record version"));
            }
        }
        let Some((header, after)) = rest.split_first_chunk::<RECORD_HEADER>() else {
            let needed = RECORD_HEADER - rest.len() + still_needed(&message);
            return Err(HelloError::Incomplete { needed });
        };
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Err(HelloError::Malformed("record length"));
        }
        let (fragment, next) = after.split_at_checked(len).unwrap_or((after, &[]));
        let record_missing = len - fragment.len();

        // The common case: the whole hello in the first record, parsed in place.
        if first {
            if let Some(total) = message_len(fragment)? {
                if let Some(whole) = fragment.get(..total) {
                    return Ok(Cow::Borrowed(whole));
                }
            }
        }
        message.extend_from_slice(fragment);
        if let Some(total) = message_len(&message)? {
            if message.len() >= total {
                message.truncate(total);
                return Ok(Cow::Owned(message));
            }
        }
        if record_missing > 0 {
            // The rest of this record may complete the hello; if not, another record follows.
            let hs = still_needed(&message);
            let needed = if hs <= record_missing {
                hs
            } else {
                hs + RECORD_HEADER
            };
            return Err(HelloError::Incomplete { needed });
        }
        rest = next;
        first = false;
    }
}

fn not_tls_or(first: bool, field: &'static str) -> HelloError {
    if first {
        HelloError::NotTls
    } else {
        HelloError::Malformed(field)
    }
}

/// The length of the handshake message (header included) once its header is in; checks the
/// message type and [`MAX_HELLO`] as soon as the bytes allow.
fn message_len(message: &[u8]) -> Result<Option<usize>, HelloError> {
    if let Some(&msg_type) = message.first() {
        if msg_type != HANDSHAKE_CLIENT_HELLO {
            return Err(HelloError::Malformed("handshake type"));
        }
    }
    let Some(header) = message.first_chunk::<HANDSHAKE_HEADER>() else {
        return Ok(None);
    };
    let body = body_len(header);
    if body > MAX_HELLO {
        return Err(HelloError::TooLarge);
    }
    Ok(Some(HANDSHAKE_HEADER + body))
}

fn body_len(header: &[u8; HANDSHAKE_HEADER]) -> usize {
    // 24 bits always fit in usize on the 32- and 64-bit targets this crate builds for.
    u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize
}

/// At least how many more handshake bytes a successful parse needs (for `Incomplete`).
fn still_needed(message: &[u8]) -> usize {
    match message.first_chunk::<HANDSHAKE_HEADER>() {
        Some(header) => (HANDSHAKE_HEADER + body_len(header)).saturating_sub(message.len()),
        None => HANDSHAKE_HEADER - message.len() + MIN_BODY,
    }
}

/// Parses a complete ClientHello body (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 is the same layout).
fn parse_body(body: &[u8]) -> Result<ClientHello, HelloError> {
    let mut r = Reader::new(body);
    let legacy_version = r.u16("legacy_version")?;
    if legacy_version >> 8 != 0x03 {
        return Err(HelloError::Malformed("legacy_version"));
    }
    r.take(32, "random")?;
    if r.vec8("legacy_session_id")?.len() > 32 {
        return Err(HelloError::Malformed("legacy_session_id"));
    }
    let mut suites = r.vec16("cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(HelloError::Malformed("cipher_suites"));
    }
    let mut cipher_suites = Vec::with_capacity(suites.len() / 2);
    while !suites.is_empty() {
        let suite = suites.u16("cipher_suites")?;
        if !is_grease(suite) {
            cipher_suites.push(suite);
        }
    }
    if r.vec8("legacy_compression_methods")?.is_empty() {
        return Err(HelloError::Malformed("legacy_compression_methods"));
    }
    let mut hello = ClientHello {
        legacy_version,
        cipher_suites,
        ..ClientHello::default()
    };
    // TLS 1.0/1.1 hellos may stop here: no extensions block at all.
    if r.is_empty() {
        return Ok(hello);
    }
    let mut extensions = r.vec16("extensions")?;
    if !r.is_empty() {
        return Err(HelloError::Malformed("extensions"));
    }
    let mut seen = Vec::new();
    while !extensions.is_empty() {
        let ext_type = extensions.u16("extension type")?;
        let data = extensions.vec16("extension length")?;
        if is_grease(ext_type) {
            continue;
        }
        seen.push(ext_type);
        match ext_type {
            EXT_SERVER_NAME => hello.sni = server_name(data)?,
            EXT_ALPN => hello.alpn = alpn(data)?,
            EXT_SUPPORTED_VERSIONS => hello.supported_versions = supported_versions(data)?,
            _ => {}
        }
    }
    seen.sort_unstable();
    if seen.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(HelloError::Malformed("duplicate extension"));
    }
    Ok(hello)
}

/// RFC 6066 §3: `ServerName server_name_list<1..2^16-1>`; each entry is a type byte and a
/// 16-bit-length-prefixed name. The first `host_name` entry wins; entries of other types are
/// skipped (every implementation frames them the same way).
fn server_name(mut data: Reader<'_>) -> Result<Option<String>, HelloError> {
    const FIELD: &str = "server_name";
    let mut list = data.vec16(FIELD)?;
    // An empty extension is only legal in a ServerHello; an empty list is never legal.
    if !data.is_empty() || list.is_empty() {
        return Err(HelloError::Malformed(FIELD));
    }
    let mut sni = None;
    while !list.is_empty() {
        let name_type = list.u8(FIELD)?;
        let name = list.vec16(FIELD)?;
        if name_type == SNI_HOST_NAME && sni.is_none() {
            sni = Some(host_name(name.rest)?);
        }
    }
    Ok(sni)
}

fn host_name(name: &[u8]) -> Result<String, HelloError> {
    const FIELD: &str = "server_name host_name";
    if !name.iter().all(|&b| b.is_ascii() && b != 0) {
        return Err(HelloError::Malformed(FIELD));
    }
    let name = std::str::from_utf8(name).map_err(|_| HelloError::Malformed(FIELD))?;
    let name = normalize_sni(name);
    // Empty, or just ".".
    if name.is_empty() {
        return Err(HelloError::Malformed(FIELD));
    }
    Ok(name)
}

/// RFC 7301 §3.1: `ProtocolName protocol_name_list<2..2^16-1>`, `opaque ProtocolName<1..2^8-1>`.
fn alpn(mut data: Reader<'_>) -> Result<Vec<String>, HelloError> {
    const FIELD: &str = "alpn";
    let mut list = data.vec16(FIELD)?;
    if !data.is_empty() || list.is_empty() {
        return Err(HelloError::Malformed(FIELD));
    }
    let mut names = Vec::new();
    while !list.is_empty() {
        let name = list.vec8(FIELD)?;
        if name.is_empty() {
            return Err(HelloError::Malformed(FIELD));
        }
        names.push(String::from_utf8_lossy(name.rest).into_owned());
    }
    Ok(names)
}

/// RFC 8446 §4.2.1, ClientHello form: `ProtocolVersion versions<2..254>`.
fn supported_versions(mut data: Reader<'_>) -> Result<Vec<u16>, HelloError> {
    const FIELD: &str = "supported_versions";
    let mut list = data.vec8(FIELD)?;
    if !data.is_empty() || list.is_empty() || list.len() % 2 != 0 {
        return Err(HelloError::Malformed(FIELD));
    }
    let mut versions = Vec::with_capacity(list.len() / 2);
    while !list.is_empty() {
        let version = list.u16(FIELD)?;
        if !is_grease(version) {
            versions.push(version);
        }
    }
    Ok(versions)
}

/// A bounds-checked cursor over a complete message: running out of bytes is
/// `Malformed(field)`, since the enclosing length said they were there.
#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Reader { rest }
    }

    fn len(&self) -> usize {
        self.rest.len()
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], HelloError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(HelloError::Malformed(field))?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<&'a [u8; N], HelloError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(HelloError::Malformed(field))?;
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, HelloError> {
        let [b] = *self.array::<1>(field)?;
        Ok(b)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, HelloError> {
        Ok(u16::from_be_bytes(*self.array::<2>(field)?))
    }

    /// A vector with an 8-bit length prefix, as its own reader.
    fn vec8(&mut self, field: &'static str) -> Result<Reader<'a>, HelloError> {
        let n = self.u8(field)?;
        Ok(Reader::new(self.take(usize::from(n), field)?))
    }

    /// A vector with a 16-bit length prefix, as its own reader.
    fn vec16(&mut self, field: &'static str) -> Result<Reader<'a>, HelloError> {
        let n = self.u16(field)?;
        Ok(Reader::new(self.take(usize::from(n), field)?))
    }
}

#[cfg(test)]
mod tests;
