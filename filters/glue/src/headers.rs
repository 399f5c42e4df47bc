//! Header maps read straight from the host's serialization, for two reasons:
//!
//! - **Bytes that are not UTF-8.** HTTP/1.1 allows `obs-text` (0x80–0xFF) in a field value and
//!   Envoy hands such a value to the filters as it came; the proxy-wasm SDK's `get_map` and
//!   `get_map_value` `unwrap` a UTF-8 conversion, so one such header aborted the VM. Here a name
//!   or value that is not UTF-8 is replaced lossily (U+FFFD), which no configured name or value
//!   can equal by accident: configurations are UTF-8 text and never carry U+FFFD from a request.
//! - **Cost.** The SDK copies every name and value into its own `String` (two allocations per
//!   header, per request); here they are borrowed from the one buffer the host wrote.
//!
//! A serialization the host got wrong (a length past the end) ends the map there: never a panic.
#![allow(unsafe_code)] // The two imports below and taking back the buffer the host allocated.

use std::borrow::Cow;
use std::ptr::null_mut;

use portico_core::routing::router::RequestHeaders;
use proxy_wasm::types::MapType;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of a buffer the host returned: it allocated it through this module's
/// `proxy_on_memory_allocate`, which the proxy-wasm SDK implements as a `Vec<u8>` of exactly
/// that capacity, forgotten (the SDK takes its own buffers back the same way).
fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: `data` and `size` come from the host's `proxy_on_memory_allocate(size)` call,
    // i.e. from `Vec::<u8>::with_capacity(size)` in the SDK, and the host filled `size` bytes.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// A header map as the host serialized it; [`HeaderMap::pairs`] borrows from it.
#[derive(Debug, Default)]
pub struct HeaderMap {
    raw: Vec<u8>,
}

impl HeaderMap {
    /// The current stream's request headers (empty where the host has none).
    pub fn request() -> HeaderMap {
        HeaderMap::read(MapType::HttpRequestHeaders)
    }

    fn read(map: MapType) -> HeaderMap {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes a pointer and a length to the two locations given.
        let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
        let raw = take(data, size);
        HeaderMap {
            raw: if status == 0 { raw } else { Vec::new() },
        }
    }

    /// Every (name, value) pair in order, borrowed where it is UTF-8.
    pub fn pairs(&self) -> RequestHeaders<'_> {
        decode(&self.raw)
    }
}

/// The proxy-wasm map serialization: the pair count (u32 LE), then each pair's name and value
/// lengths (u32 LE each), then each name and value followed by a NUL.
fn decode(raw: &[u8]) -> RequestHeaders<'_> {
    let word = |at: usize| -> Option<usize> {
        let b = raw.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(count) = word(0) else {
        return Vec::new();
    };
    // At least 10 bytes per pair (two lengths, two NULs): a count past that is a lie.
    let count = count.min(raw.len() / 10);
    // Room for the one header a plan usually adds (the cluster steering header): no regrowth.
    let mut pairs = Vec::with_capacity(count + 1);
    let mut at = 4 + count * 8;
    for n in 0..count {
        let (Some(k), Some(v)) = (word(4 + n * 8), word(8 + n * 8)) else {
            break;
        };
        let Some(name) = at.checked_add(k).and_then(|end| raw.get(at..end)) else {
            break;
        };
        at += k + 1;
        let Some(value) = at.checked_add(v).and_then(|end| raw.get(at..end)) else {
            break;
        };
        at += v + 1;
        pairs.push((text(name), text(value)));
    }
    pairs
}

/// Bytes as text: borrowed when UTF-8 (the usual case, checked first: the lossy decoder is
/// several times slower), else with U+FFFD in place of what is not.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// One header of the current stream's `map` (the first, if repeated), lossily UTF-8.
pub fn header_value(map: MapType, name: &str) -> Option<String> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: `name` is valid for its length; the host writes a pointer and a length.
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    let raw = take(data, size);
    (status == 0).then(|| match String::from_utf8(raw) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The host's serialization of `pairs`.
#[cfg(test)]
fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_borrowed_and_bytes_that_are_not_utf8_are_replaced() {
        let raw = serialize(&[
            (b":authority", b"shop.example.com"),
            (b"x-latin1", b"caf\xe9"),
            (b"x-empty", b""),
        ]);
        let map = HeaderMap { raw };
        let pairs = map.pairs();
        assert_eq!(pairs.len(), 3);
        assert_eq!(
            (&*pairs[0].0, &*pairs[0].1),
            (":authority", "shop.example.com")
        );
        assert!(matches!(pairs[0].1, Cow::Borrowed(_)));
        assert_eq!(&*pairs[1].1, "caf\u{fffd}");
        assert_eq!(&*pairs[2].1, "");
    }

    #[test]
    fn a_malformed_serialization_ends_the_map_without_a_panic() {
        assert!(decode(&[]).is_empty());
        assert!(decode(&[1, 0]).is_empty());
        let good = serialize(&[(b"a", b"1"), (b"b", b"2")]);
        // Every truncation, and a count far past the data.
        for end in 0..good.len() {
            let pairs = decode(&good[..end]);
            assert!(pairs.len() <= 2);
        }
        let mut lying = good.clone();
        lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&lying).len() <= 2);
        let mut long = good.clone();
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&long).is_empty());
        assert_eq!(decode(&good).len(), 2);
    }
}
