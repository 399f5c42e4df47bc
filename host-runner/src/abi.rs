//! The proxy-wasm ABI's enumerations and wire formats (ABI 0.2.1, with 0.2.0's differences).

use std::fmt;

/// `proxy_status_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The key, buffer or property does not exist.
    NotFound = 1,
    /// An argument is out of range or the call is not valid here.
    BadArgument = 2,
    /// Data could not be serialized.
    SerializationFailure = 3,
    /// Data could not be parsed.
    ParseFailure = 4,
    /// A pointer the module passed is outside its memory.
    InvalidMemoryAccess = 6,
    /// Nothing to return (an empty queue).
    Empty = 7,
    /// Compare-and-swap mismatch.
    CasMismatch = 8,
    /// The host failed.
    InternalFailure = 10,
    /// Not implemented by this host.
    Unimplemented = 12,
}

/// `proxy_log_level_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Trace.
    Trace = 0,
    /// Debug.
    Debug = 1,
    /// Info.
    Info = 2,
    /// Warn.
    Warn = 3,
    /// Error.
    Error = 4,
    /// Critical.
    Critical = 5,
}

impl LogLevel {
    /// From the ABI value.
    pub fn from_i32(v: i32) -> Option<LogLevel> {
        Some(match v {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        };
        f.write_str(s)
    }
}

/// What a filter callback asks of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Go on to the next filter.
    Continue,
    /// Stop iteration until the filter resumes (or has answered locally).
    Pause,
}

impl Action {
    /// From the ABI value; anything but 0 stops iteration.
    pub fn from_i32(v: i32) -> Action {
        if v == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

/// `proxy_buffer_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    /// HTTP request body.
    HttpRequestBody = 0,
    /// HTTP response body.
    HttpResponseBody = 1,
    /// Downstream (client → proxy) stream data.
    DownstreamData = 2,
    /// Upstream (server → proxy) stream data.
    UpstreamData = 3,
    /// Body of an HTTP callout's response.
    HttpCallResponseBody = 4,
    /// A received gRPC message.
    GrpcReceiveBuffer = 5,
    /// The VM configuration.
    VmConfiguration = 6,
    /// The plugin configuration.
    PluginConfiguration = 7,
    /// Foreign-function call data.
    CallData = 8,
}

impl BufferType {
    /// From the ABI value.
    pub fn from_i32(v: i32) -> Option<BufferType> {
        Some(match v {
            0 => BufferType::HttpRequestBody,
            1 => BufferType::HttpResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            4 => BufferType::HttpCallResponseBody,
            5 => BufferType::GrpcReceiveBuffer,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            8 => BufferType::CallData,
            _ => return None,
        })
    }
}

/// `proxy_map_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// Request headers.
    HttpRequestHeaders = 0,
    /// Request trailers.
    HttpRequestTrailers = 1,
    /// Response headers.
    HttpResponseHeaders = 2,
    /// Response trailers.
    HttpResponseTrailers = 3,
    /// gRPC initial metadata received.
    GrpcReceiveInitialMetadata = 4,
    /// gRPC trailing metadata received.
    GrpcReceiveTrailingMetadata = 5,
    /// Headers of an HTTP callout's response.
    HttpCallResponseHeaders = 6,
    /// Trailers of an HTTP callout's response.
    HttpCallResponseTrailers = 7,
}

impl MapType {
    /// From the ABI value.
    pub fn from_i32(v: i32) -> Option<MapType> {
        Some(match v {
            0 => MapType::HttpRequestHeaders,
            1 => MapType::HttpRequestTrailers,
            2 => MapType::HttpResponseHeaders,
            3 => MapType::HttpResponseTrailers,
            4 => MapType::GrpcReceiveInitialMetadata,
            5 => MapType::GrpcReceiveTrailingMetadata,
            6 => MapType::HttpCallResponseHeaders,
            7 => MapType::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// `proxy_stream_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    /// HTTP request.
    HttpRequest = 0,
    /// HTTP response.
    HttpResponse = 1,
    /// Downstream connection.
    Downstream = 2,
    /// Upstream connection.
    Upstream = 3,
}

impl StreamType {
    /// From the ABI value.
    pub fn from_i32(v: i32) -> Option<StreamType> {
        Some(match v {
            0 => StreamType::HttpRequest,
            1 => StreamType::HttpResponse,
            2 => StreamType::Downstream,
            3 => StreamType::Upstream,
            _ => return None,
        })
    }
}

/// `proxy_metric_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Counter.
    Counter = 0,
    /// Gauge.
    Gauge = 1,
    /// Histogram.
    Histogram = 2,
}

impl MetricType {
    /// From the ABI value.
    pub fn from_i32(v: i32) -> Option<MetricType> {
        Some(match v {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Histogram,
            _ => return None,
        })
    }
}

/// `proxy_peer_type_t`, for connection-close callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerType {
    /// Unknown.
    Unknown = 0,
    /// This side closed.
    Local = 1,
    /// The peer closed.
    Remote = 2,
}

/// The ABI version a module declares through its `proxy_abi_version_*` export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiVersion {
    /// `proxy_abi_version_0_2_0`.
    V0_2_0,
    /// `proxy_abi_version_0_2_1`.
    V0_2_1,
}

/// Header map wire format: `u32 count`, then `count × (u32 key_len, u32 value_len)`, then each key
/// and value followed by a NUL byte.
pub fn serialize_map(pairs: &[(String, String)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Parses the header map wire format; `None` when it is malformed.
pub fn deserialize_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let u32_at = |i: usize| -> Option<usize> {
        let b = bytes.get(i..i + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = u32_at(0)?;
    let mut sizes = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        sizes.push((u32_at(4 + i * 8)?, u32_at(8 + i * 8)?));
    }
    let mut pos = 4 + count.checked_mul(8)?;
    let mut out = Vec::with_capacity(count.min(1024));
    for (klen, vlen) in sizes {
        let key = bytes.get(pos..pos + klen)?;
        pos += klen + 1;
        let value = bytes.get(pos..pos + vlen)?;
        pos += vlen + 1;
        out.push((
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trip() {
        let pairs = vec![
            (":path".to_owned(), "/a".to_owned()),
            ("x".to_owned(), String::new()),
        ];
        assert_eq!(deserialize_map(&serialize_map(&pairs)), Some(pairs));
        assert_eq!(deserialize_map(&[]), Some(vec![]));
        assert_eq!(deserialize_map(&[1, 0, 0, 0, 5, 0, 0, 0]), None);
        assert_eq!(deserialize_map(&[255, 255, 255, 255]), None);
    }
}
