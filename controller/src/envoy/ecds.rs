//! The filter configuration files (ECDS) as binary protobuf.
//!
//! Envoy reads a file-based xDS resource in the format its extension names (`.pb` binary,
//! anything else JSON). A routing configuration at 1 000 rules is a ~300 KB string inside the
//! document, and Envoy's JSON → protobuf conversion of such a document took ~20 ms of its main
//! thread on every update, before the new configuration was even checked; the same document as
//! binary protobuf loads in ~2 ms (docs/benchmarks.md, "Kubernetes update latency").
//!
//! The document is built as JSON (the proto3 JSON mapping, as Envoy would read it) and encoded
//! here with the schema of exactly the messages it holds: `DiscoveryResponse`,
//! `TypedExtensionConfig`, the HTTP and network `Wasm` filters, `PluginConfig`, `VmConfig`,
//! `AsyncDataSource`/`DataSource` and `StringValue` (field numbers from Envoy's v3 API). A field
//! outside that schema is an error naming it, not a silently dropped setting; [`decode`] reads a
//! file back into the same JSON.

use serde_json::{Map, Value};

/// How one field is encoded.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Enum(&'static [(&'static str, u64)]),
    Msg(&'static [Field]),
    /// `google.protobuf.Any`: `{"@type": URL, ...the message's fields}`.
    Any,
    /// A repeated `Any`.
    Anys,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    json: &'static str,
    number: u64,
    ty: Ty,
}

const fn f(json: &'static str, number: u64, ty: Ty) -> Field {
    Field { json, number, ty }
}

const STRING_VALUE: &[Field] = &[f("value", 1, Ty::Str)];
const DATA_SOURCE: &[Field] = &[f("filename", 1, Ty::Str)];
const ASYNC_DATA_SOURCE: &[Field] = &[f("local", 1, Ty::Msg(DATA_SOURCE))];
const VM_CONFIG: &[Field] = &[
    f("vm_id", 1, Ty::Str),
    f("runtime", 2, Ty::Str),
    f("code", 3, Ty::Msg(ASYNC_DATA_SOURCE)),
];
const FAILURE_POLICY: &[(&str, u64)] = &[
    ("UNSPECIFIED", 0),
    ("FAIL_RELOAD", 1),
    ("FAIL_CLOSED", 2),
    ("FAIL_OPEN", 3),
];
const PLUGIN_CONFIG: &[Field] = &[
    f("name", 1, Ty::Str),
    f("root_id", 2, Ty::Str),
    f("vm_config", 3, Ty::Msg(VM_CONFIG)),
    f("configuration", 4, Ty::Any),
    f("failure_policy", 7, Ty::Enum(FAILURE_POLICY)),
];
const WASM: &[Field] = &[f("config", 1, Ty::Msg(PLUGIN_CONFIG))];
const TYPED_EXTENSION_CONFIG: &[Field] = &[f("name", 1, Ty::Str), f("typed_config", 2, Ty::Any)];
const DISCOVERY_RESPONSE: &[Field] = &[f("version_info", 1, Ty::Str), f("resources", 2, Ty::Anys)];

/// The messages an `Any` may hold, by type URL.
const TYPES: &[(&str, &[Field])] = &[
    (
        "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        TYPED_EXTENSION_CONFIG,
    ),
    (
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        WASM,
    ),
    (
        "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
        WASM,
    ),
    (
        "type.googleapis.com/google.protobuf.StringValue",
        STRING_VALUE,
    ),
];

fn message_of(url: &str, at: &str) -> Result<&'static [Field], String> {
    TYPES
        .iter()
        .find(|(u, _)| *u == url)
        .map(|(_, m)| *m)
        .ok_or_else(|| format!("{at}: no protobuf encoding for type {url:?}"))
}

/// Encodes an ECDS `DiscoveryResponse` given as its JSON form.
///
/// # Errors
/// A field, type URL or enum value outside the schema above, or a value of the wrong JSON type;
/// the message names its path.
pub fn encode(doc: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    message(doc, DISCOVERY_RESPONSE, "", &mut out)?;
    Ok(out)
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn bytes_field(number: u64, data: &[u8], out: &mut Vec<u8>) {
    varint(number << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

fn message(value: &Value, fields: &[Field], at: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("{at}: expected an object"))?;
    for (key, v) in map {
        if key == "@type" {
            continue;
        }
        let path = format!("{at}.{key}");
        let field = fields
            .iter()
            .find(|f| f.json == key)
            .ok_or_else(|| format!("{path}: no protobuf encoding for this field"))?;
        match field.ty {
            Ty::Str => {
                let s = v
                    .as_str()
                    .ok_or_else(|| format!("{path}: expected a string"))?;
                if !s.is_empty() {
                    bytes_field(field.number, s.as_bytes(), out);
                }
            }
            Ty::Enum(values) => {
                let name = v
                    .as_str()
                    .ok_or_else(|| format!("{path}: expected a string"))?;
                let n = values
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, n)| *n)
                    .ok_or_else(|| format!("{path}: unknown value {name:?}"))?;
                if n != 0 {
                    varint(field.number << 3, out);
                    varint(n, out);
                }
            }
            Ty::Msg(inner) => {
                let mut buf = Vec::new();
                message(v, inner, &path, &mut buf)?;
                bytes_field(field.number, &buf, out);
            }
            Ty::Any => any(v, field.number, &path, out)?,
            Ty::Anys => {
                let items = v
                    .as_array()
                    .ok_or_else(|| format!("{path}: expected an array"))?;
                for (i, item) in items.iter().enumerate() {
                    any(item, field.number, &format!("{path}[{i}]"), out)?;
                }
            }
        }
    }
    Ok(())
}

fn any(value: &Value, number: u64, at: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let url = value
        .get("@type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: an Any needs its \"@type\""))?;
    let mut inner = Vec::new();
    message(value, message_of(url, at)?, at, &mut inner)?;
    let mut buf = Vec::new();
    bytes_field(1, url.as_bytes(), &mut buf);
    bytes_field(2, &inner, &mut buf);
    bytes_field(number, &buf, out);
    Ok(())
}

/// Decodes what [`encode`] wrote back into its JSON form.
///
/// # Errors
/// Bytes that are not such a document (truncated, a field or type outside the schema).
pub fn decode(bytes: &[u8]) -> Result<Value, String> {
    read_message(bytes, DISCOVERY_RESPONSE, "")
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("varint longer than 64 bits".into())
}

fn read_message(bytes: &[u8], fields: &[Field], at: &str) -> Result<Value, String> {
    let mut map = Map::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let tag = read_varint(bytes, &mut pos)?;
        let field = fields
            .iter()
            .find(|f| f.number == tag >> 3)
            .ok_or_else(|| format!("{at}: unexpected field number {}", tag >> 3))?;
        let path = format!("{at}.{}", field.json);
        if let Ty::Enum(values) = field.ty {
            let n = read_varint(bytes, &mut pos)?;
            let name = values
                .iter()
                .find(|(_, v)| *v == n)
                .map(|(name, _)| *name)
                .ok_or_else(|| format!("{path}: unknown value {n}"))?;
            map.insert(field.json.into(), name.into());
            continue;
        }
        if tag & 7 != 2 {
            return Err(format!("{path}: expected a length-delimited field"));
        }
        let len = usize::try_from(read_varint(bytes, &mut pos)?).map_err(|e| e.to_string())?;
        let data = bytes
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| format!("{path}: truncated"))?;
        pos += len;
        let value = match field.ty {
            Ty::Str => Value::String(
                std::str::from_utf8(data)
                    .map_err(|e| format!("{path}: {e}"))?
                    .to_owned(),
            ),
            Ty::Msg(inner) => read_message(data, inner, &path)?,
            Ty::Any | Ty::Anys => read_any(data, &path)?,
            Ty::Enum(_) => unreachable!("enums are read above"),
        };
        if matches!(field.ty, Ty::Anys) {
            map.entry(field.json)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .ok_or_else(|| format!("{path}: not a list"))?
                .push(value);
        } else {
            map.insert(field.json.into(), value);
        }
    }
    Ok(Value::Object(map))
}

fn read_any(bytes: &[u8], at: &str) -> Result<Value, String> {
    let mut url = String::new();
    let mut inner: &[u8] = &[];
    let mut pos = 0;
    while pos < bytes.len() {
        let tag = read_varint(bytes, &mut pos)?;
        let len = usize::try_from(read_varint(bytes, &mut pos)?).map_err(|e| e.to_string())?;
        let data = bytes
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| format!("{at}: truncated Any"))?;
        pos += len;
        match (tag >> 3, tag & 7) {
            (1, 2) => {
                url = std::str::from_utf8(data)
                    .map_err(|e| format!("{at}: {e}"))?
                    .to_owned();
            }
            (2, 2) => inner = data,
            _ => return Err(format!("{at}: not an Any")),
        }
    }
    let mut value = read_message(inner, message_of(&url, at)?, at)?;
    if let Value::Object(map) = &mut value {
        map.insert("@type".into(), url.into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({
            "version_info": "abc",
            "resources": [{
                "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                "name": "portico-routing-80",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "portico-routing-80",
                        "root_id": "portico-routing",
                        "vm_config": {
                            "vm_id": "portico-routing",
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": {"local": {"filename": "/m/routing.wasm"}},
                        },
                        "configuration": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": "{\"a\": \"é\"}",
                        },
                        "failure_policy": "FAIL_RELOAD",
                    },
                },
            }],
        })
    }

    #[test]
    fn round_trips() {
        let doc = document();
        let bytes = encode(&doc).unwrap();
        assert_eq!(decode(&bytes).unwrap(), doc);
    }

    #[test]
    fn encodes_the_wire_format() {
        // StringValue{value: "hi"} inside an Any, as protoc would write it.
        let mut out = Vec::new();
        any(
            &json!({"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "hi"}),
            4,
            "",
            &mut out,
        )
        .unwrap();
        let url = b"type.googleapis.com/google.protobuf.StringValue";
        let mut want = vec![0x22, (2 + url.len() + 2 + 4) as u8, 0x0a, url.len() as u8];
        want.extend_from_slice(url);
        want.extend_from_slice(&[0x12, 4, 0x0a, 2, b'h', b'i']);
        assert_eq!(out, want);
        // failure_policy FAIL_RELOAD: field 7, varint 1.
        let mut out = Vec::new();
        message(
            &json!({"failure_policy": "FAIL_RELOAD"}),
            PLUGIN_CONFIG,
            "",
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0x38, 1]);
    }

    #[test]
    fn refuses_what_it_cannot_encode() {
        let mut doc = document();
        doc["resources"][0]["typed_config"]["config"]["vm_config"]["allow_precompiled"] =
            true.into();
        assert_eq!(
            encode(&doc).unwrap_err(),
            ".resources[0].typed_config.config.vm_config.allow_precompiled: no protobuf encoding for this field"
        );
        let mut doc = document();
        doc["resources"][0]["typed_config"]["@type"] = "type.googleapis.com/x.Y".into();
        assert!(encode(&doc)
            .unwrap_err()
            .contains("no protobuf encoding for type \"type.googleapis.com/x.Y\""));
        assert!(decode(&[0x0a, 9, b'x']).unwrap_err().contains("truncated"));
    }
}
