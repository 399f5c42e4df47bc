//! Follows the HTTP/1.1 requests of one connection as hyper reads them, to learn what hyper hides:
//! which requests carried both `Content-Length` and `Transfer-Encoding`. Envoy answers those 400;
//! hyper drops `Content-Length`, reads the body as chunked and answers, so `host-runner serve`
//! needs the raw head to answer as Envoy does — on every request of a kept-alive connection, not
//! only the first.
//!
//! The scanner frames requests as hyper does (`httparse` heads; a body by `Transfer-Encoding:
//! chunked`, else `Content-Length`, else none) and records one verdict per head, in order; the
//! service takes them in the same order (HTTP/1 serves a connection's requests one at a time).
//! Anything it cannot frame stops it: later requests get no verdict and are served as hyper
//! parsed them.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use portico_host_runner::state::lock;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The verdicts of a connection's request heads: `true` for both lengths.
pub type Verdicts = Arc<Mutex<VecDeque<bool>>>;

/// Longest request head followed; hyper refuses longer ones itself.
const MAX_HEAD: usize = 64 * 1024;

/// Where the scanner is in the byte stream.
#[derive(Debug)]
enum State {
    /// Reading a request head (bytes so far).
    Head(Vec<u8>),
    /// Skipping this many body bytes.
    Body(u64),
    /// A chunk-size line (bytes so far).
    ChunkSize(Vec<u8>),
    /// Chunk data left, then its CRLF (2 bytes).
    ChunkData(u64),
    /// Trailer lines after the last chunk (bytes of the current line).
    Trailers(Vec<u8>),
    /// Not following any more.
    Lost,
}

/// Frames the requests of one connection from its bytes.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    verdicts: Verdicts,
}

impl Scanner {
    /// A scanner at the start of a connection, recording into `verdicts`.
    pub fn new(verdicts: Verdicts) -> Self {
        Scanner {
            state: State::Head(Vec::new()),
            verdicts,
        }
    }

    /// Follows `bytes`, the next bytes read from the connection.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let state = std::mem::replace(&mut self.state, State::Lost);
            self.state = match state {
                State::Lost => return,
                State::Head(mut head) => {
                    let start = head.len().saturating_sub(3);
                    let take = bytes.len().min(MAX_HEAD + 4 - head.len().min(MAX_HEAD));
                    head.extend_from_slice(&bytes[..take]);
                    match find(&head[start..], b"\r\n\r\n").map(|i| start + i + 4) {
                        Some(end) => {
                            // Bytes past the head go back to the stream.
                            let rest = head.len() - end;
                            bytes = &bytes[take - rest..];
                            self.head(&head[..end])
                        }
                        None if head.len() > MAX_HEAD => State::Lost,
                        None => {
                            bytes = &bytes[take..];
                            State::Head(head)
                        }
                    }
                }
                State::Body(left) => match skip(left, &mut bytes) {
                    0 => State::Head(Vec::new()),
                    left => State::Body(left),
                },
                State::ChunkSize(line) => match read_line(line, &mut bytes, 1024) {
                    Line::Whole(line) => match chunk_size(&line) {
                        Some(0) => State::Trailers(Vec::new()),
                        Some(n) => State::ChunkData(n.saturating_add(2)),
                        None => State::Lost,
                    },
                    Line::Partial(line) => State::ChunkSize(line),
                    Line::TooLong => State::Lost,
                },
                State::ChunkData(left) => match skip(left, &mut bytes) {
                    0 => State::ChunkSize(Vec::new()),
                    left => State::ChunkData(left),
                },
                State::Trailers(line) => match read_line(line, &mut bytes, MAX_HEAD) {
                    // An empty line ends the trailers and the request.
                    Line::Whole(line) if line.is_empty() || line == b"\r" => {
                        State::Head(Vec::new())
                    }
                    Line::Whole(_) => State::Trailers(Vec::new()),
                    Line::Partial(line) => State::Trailers(line),
                    Line::TooLong => State::Lost,
                },
            };
        }
    }

    /// Records a complete head's verdict; the state its body starts in.
    fn head(&mut self, raw: &[u8]) -> State {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(_)) = req.parse(raw) else {
            return State::Lost;
        };
        if req.method == Some("CONNECT") {
            return State::Lost;
        }
        let mut length = None;
        let mut te = None;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if length.is_none() {
                    return State::Lost;
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                te = Some(h.value);
            }
        }
        lock(&self.verdicts).push_back(length.is_some() && te.is_some());
        match (te, length) {
            (Some(v), _) if ends_chunked(v) => State::ChunkSize(Vec::new()),
            // hyper refuses any other transfer coding (400) and closes.
            (Some(_), _) => State::Lost,
            (None, Some(0) | None) => State::Head(Vec::new()),
            (None, Some(n)) => State::Body(n),
        }
    }
}

/// Consumes up to `left` bytes from `bytes`; how many are still to come.
fn skip(left: u64, bytes: &mut &[u8]) -> u64 {
    let n = left.min(bytes.len() as u64);
    *bytes = &bytes[n as usize..];
    left - n
}

/// A line read so far.
enum Line {
    /// Up to its `\n` (consumed, not included).
    Whole(Vec<u8>),
    /// No `\n` yet: every byte was taken.
    Partial(Vec<u8>),
    /// Longer than the limit without a `\n`.
    TooLong,
}

/// Continues `line` with `bytes` up to and including a `\n`, at most `max` bytes in all.
fn read_line(mut line: Vec<u8>, bytes: &mut &[u8], max: usize) -> Line {
    match bytes.iter().position(|b| *b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&bytes[..i]);
            *bytes = &bytes[i + 1..];
            Line::Whole(line)
        }
        None if line.len() + bytes.len() > max => Line::TooLong,
        None => {
            line.extend_from_slice(bytes);
            *bytes = &[];
            Line::Partial(line)
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn ends_chunked(value: &[u8]) -> bool {
    String::from_utf8_lossy(value)
        .rsplit(',')
        .next()
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// A chunk-size line: hex digits, then optional extensions after `;`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.split(|b| *b == b';').next()?;
    let digits = std::str::from_utf8(digits).ok()?.trim();
    u64::from_str_radix(digits, 16).ok()
}

/// A connection whose reads are followed by a [`Scanner`].
pub struct Watched<S> {
    inner: S,
    scanner: Scanner,
}

impl<S> Watched<S> {
    /// `inner`, its request verdicts recorded into `verdicts`.
    pub fn new(inner: S, verdicts: Verdicts) -> Self {
        Watched {
            inner,
            scanner: Scanner::new(verdicts),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.scanner.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(chunks: &[&[u8]]) -> Vec<bool> {
        let v = Verdicts::default();
        let mut s = Scanner::new(v.clone());
        for c in chunks {
            s.feed(c);
        }
        let out = lock(&v).iter().copied().collect();
        out
    }

    #[test]
    fn follows_heads_and_bodies_of_a_kept_alive_connection() {
        // A body that looks like a head with both lengths is a body, not a request.
        let body = "GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let stream = format!(
            "GET /a HTTP/1.1\r\nHost: a\r\n\r\n\
             POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}\
             POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
             4;ext=1\r\nGET \r\n0\r\nX-Trailer: y\r\n\r\n\
             POST /d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            body.len()
        );
        let stream = stream.as_bytes();
        assert_eq!(verdicts(&[stream]), [false, false, false, true]);
        // The same bytes one at a time.
        let one: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(verdicts(&one), [false, false, false, true]);
    }

    #[test]
    fn stops_where_it_cannot_frame() {
        assert_eq!(
            verdicts(&[b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET / HTTP/1.1\r\n\r\n"]),
            Vec::<bool>::new()
        );
        assert_eq!(
            verdicts(&[
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET / HTTP/1.1\r\n\r\n"
            ]),
            [false]
        );
    }
}
