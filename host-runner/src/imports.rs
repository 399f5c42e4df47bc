//! The host side of every proxy-wasm ABI 0.2.1 import (and 0.2.0's `proxy_continue_request`,
//! `proxy_continue_response`, `proxy_clear_route_cache`), on a wasmtime `Linker`.
//!
//! Every function validates its pointers against the module's memory and answers
//! `BadArgument` for anything out of bounds, so a hostile or buggy module cannot crash the host.
//! Returning data to the module goes through its allocator (`proxy_on_memory_allocate`, or
//! `malloc` for ABI 0.2.0), as Envoy does.
//!
//! Longer than most files on purpose: it is the ABI's import table, one short function per host
//! call in the spec's order, sharing the pointer and allocator helpers at the end.

use std::collections::VecDeque;

use wasmtime::{Caller, Extern, Linker};

use crate::abi::{
    deserialize_map, serialize_map, BufferType, LogLevel, MapType, MetricType, Status, StreamType,
};
use crate::state::{
    lock, ForeignCall, GrpcCall, HeaderEdit, Headers, HostState, LocalResponse, Metric, Queue,
};

type C<'a> = Caller<'a, HostState>;
type R = wasmtime::Result<i32>;

const OK: i32 = Status::Ok as i32;
const NOT_FOUND: i32 = Status::NotFound as i32;
const BAD_ARGUMENT: i32 = Status::BadArgument as i32;
const INVALID_MEMORY_ACCESS: i32 = Status::InvalidMemoryAccess as i32;

fn memory(caller: &mut C<'_>) -> Option<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// Reads `len` bytes at `ptr`; `None` when out of bounds.
fn read(caller: &mut C<'_>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    mem.data(&caller)
        .get(ptr..ptr.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

fn read_str(caller: &mut C<'_>, ptr: i32, len: i32) -> Option<String> {
    read(caller, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn write(caller: &mut C<'_>, ptr: i32, data: &[u8]) -> Option<()> {
    let mem = memory(caller)?;
    let ptr = ptr as u32 as usize;
    mem.data_mut(caller)
        .get_mut(ptr..ptr.checked_add(data.len())?)?
        .copy_from_slice(data);
    Some(())
}

fn write_u32(caller: &mut C<'_>, ptr: i32, v: u32) -> Option<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copies `data` into memory the module allocates, and writes its address and size to the two
/// return pointers. Errors are traps (the allocator itself trapped or is missing).
fn give(caller: &mut C<'_>, data: &[u8], ret_ptr: i32, ret_size: i32) -> R {
    let alloc = ["proxy_on_memory_allocate", "malloc"]
        .iter()
        .find_map(|name| caller.get_export(name).and_then(Extern::into_func))
        .ok_or_else(|| {
            wasmtime::Error::msg("module exports no allocator (proxy_on_memory_allocate)")
        })?;
    let alloc = alloc.typed::<i32, i32>(&caller)?;
    let addr = alloc.call(&mut *caller, data.len() as i32)?;
    if addr == 0 && !data.is_empty() {
        return Ok(Status::InternalFailure as i32);
    }
    if write(caller, addr, data).is_none()
        || write_u32(caller, ret_ptr, addr as u32).is_none()
        || write_u32(caller, ret_size, data.len() as u32).is_none()
    {
        return Ok(BAD_ARGUMENT);
    }
    Ok(OK)
}

/// Splits a property path (`request\0path`) into its segments.
fn property_path(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A header name as Envoy's header maps store it: lower case, and in request headers the legacy
/// `host` is `:authority` (Envoy's request-header lookup table maps one to the other).
fn header_key(map: MapType, key: &str) -> String {
    let key = key.to_ascii_lowercase();
    if map == MapType::HttpRequestHeaders && key == "host" {
        return ":authority".to_owned();
    }
    key
}

fn map_mut(state: &mut HostState, map: MapType) -> Option<&mut Headers> {
    if matches!(
        map,
        MapType::HttpCallResponseHeaders
            | MapType::HttpCallResponseTrailers
            | MapType::GrpcReceiveInitialMetadata
            | MapType::GrpcReceiveTrailingMetadata
    ) {
        let (headers, _, trailers) = state.callout.as_mut()?;
        return Some(match map {
            MapType::HttpCallResponseHeaders | MapType::GrpcReceiveInitialMetadata => headers,
            _ => trailers,
        });
    }
    let stream = state.streams.get_mut(&state.active)?;
    Some(match map {
        MapType::HttpRequestHeaders => &mut stream.request_headers,
        MapType::HttpRequestTrailers => &mut stream.request_trailers,
        MapType::HttpResponseHeaders => &mut stream.response_headers,
        _ => &mut stream.response_trailers,
    })
}

fn record_edit(state: &mut HostState, map: MapType, edit: HeaderEdit) {
    if let Some(stream) = state.streams.get_mut(&state.active) {
        match map {
            MapType::HttpRequestHeaders | MapType::HttpRequestTrailers => {
                stream.request_edits.push(edit)
            }
            MapType::HttpResponseHeaders | MapType::HttpResponseTrailers => {
                stream.response_edits.push(edit)
            }
            _ => {}
        }
    }
}

fn buffer_mut(state: &mut HostState, buffer: BufferType) -> Option<&mut Vec<u8>> {
    let active = state.active;
    match buffer {
        BufferType::VmConfiguration => Some(&mut state.vm_config),
        BufferType::PluginConfiguration => {
            let root = state.root_of(active)?;
            state.roots.get_mut(&root).map(|r| &mut r.configuration)
        }
        BufferType::CallData => Some(&mut state.call_data),
        BufferType::HttpCallResponseBody | BufferType::GrpcReceiveBuffer => {
            state.callout.as_mut().map(|c| &mut c.1)
        }
        BufferType::HttpRequestBody => state.streams.get_mut(&active).map(|s| &mut s.request_body),
        BufferType::HttpResponseBody => {
            state.streams.get_mut(&active).map(|s| &mut s.response_body)
        }
        BufferType::DownstreamData => state
            .streams
            .get_mut(&active)
            .map(|s| &mut s.downstream_data),
        BufferType::UpstreamData => state.streams.get_mut(&active).map(|s| &mut s.upstream_data),
    }
}

/// Decodes the `SetEnvoyFilterStateArguments` protobuf: path = 1, value = 2, span = 3.
fn filter_state_args(bytes: &[u8]) -> Option<(String, Vec<u8>, u32)> {
    let mut i = 0;
    let (mut path, mut value, mut span) = (None, Vec::new(), 0u32);
    let varint = |i: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(*i)?;
            *i += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    while i < bytes.len() {
        let key = varint(&mut i)?;
        match (key >> 3, key & 7) {
            (1 | 2, 2) => {
                let len = varint(&mut i)? as usize;
                let data = bytes.get(i..i.checked_add(len)?)?.to_vec();
                i += len;
                if key >> 3 == 1 {
                    path = Some(String::from_utf8(data).ok()?);
                } else {
                    value = data;
                }
            }
            (3, 0) => span = varint(&mut i)? as u32,
            _ => return None,
        }
    }
    Some((path?, value, span))
}

/// A fresh callout token.
fn next_token(state: &mut HostState) -> u32 {
    let token = state.next_token;
    state.next_token += 1;
    token
}

/// Records a gRPC call or stream for the active context and returns its token to the module.
fn open_grpc(c: &mut C<'_>, mut call: GrpcCall, ret: i32) -> R {
    let state = c.data_mut();
    call.token = next_token(state);
    call.context = state.active;
    let token = call.token;
    state.grpc_calls.push(call);
    Ok(write_u32(c, ret, token).map_or(BAD_ARGUMENT, |()| OK))
}

/// Adds every import to the linker.
///
/// # Errors
/// Only if a name is defined twice (a bug).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    const ENV: &str = "env";

    linker.func_wrap(
        ENV,
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> R {
            let Some(message) = read_str(&mut c, ptr, len) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(level) = LogLevel::from_i32(level) else {
                return Ok(BAD_ARGUMENT);
            };
            let state = c.data_mut();
            if state.echo_logs {
                eprintln!("[{} {level}] {message}", state.vm_id);
            }
            let context = state.active;
            state.logs.push(crate::state::LogRecord {
                level,
                context,
                message,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(ENV, "proxy_get_log_level", |mut c: C<'_>, ret: i32| -> R {
        let level = c.data().log_level as u32;
        Ok(write_u32(&mut c, ret, level).map_or(BAD_ARGUMENT, |()| OK))
    })?;
    linker.func_wrap(
        ENV,
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> R {
            let now = c.data().now_ns();
            Ok(write(&mut c, ret, &now.to_le_bytes()).map_or(BAD_ARGUMENT, |()| OK))
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| -> R {
            let state = c.data_mut();
            let now = state.now_ns();
            let Some(root) = state.root_of(state.active) else {
                return Ok(BAD_ARGUMENT);
            };
            if let Some(r) = state.roots.get_mut(&root) {
                r.tick_period_ms = period as u32;
                r.next_tick_ns = (period > 0).then(|| now + u64::from(period as u32) * 1_000_000);
            }
            Ok(OK)
        },
    )?;

    // Buffers.
    linker.func_wrap(
        ENV,
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, buffer: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| -> R {
            let Some(buffer) = BufferType::from_i32(buffer) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(data) = buffer_mut(c.data_mut(), buffer) else {
                return Ok(NOT_FOUND);
            };
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            if start > data.len() {
                return Ok(BAD_ARGUMENT);
            }
            let end = start.saturating_add(max).min(data.len());
            if end == start {
                // Envoy answers OK and leaves the return pointers alone: the SDKs read "no data"
                // (the Rust SDK's `None`), not an empty buffer.
                return Ok(OK);
            }
            let slice = data[start..end].to_vec();
            give(&mut c, &slice, ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_buffer_status",
        |mut c: C<'_>, buffer: i32, ret_size: i32, ret_flags: i32| -> R {
            // Envoy: the buffer's length and flags 0 (no flags are defined); NOT_FOUND when the
            // buffer does not exist in this callback.
            let Some(buffer) = BufferType::from_i32(buffer) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(len) = buffer_mut(c.data_mut(), buffer).map(|b| b.len() as u32) else {
                return Ok(NOT_FOUND);
            };
            if write_u32(&mut c, ret_size, len).is_none()
                || write_u32(&mut c, ret_flags, 0).is_none()
            {
                return Ok(INVALID_MEMORY_ACCESS);
            }
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, buffer: i32, start: i32, size: i32, ptr: i32, len: i32| -> R {
            let Some(buffer) = BufferType::from_i32(buffer) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(new) = read(&mut c, ptr, len) else {
                return Ok(BAD_ARGUMENT);
            };
            if matches!(
                buffer,
                BufferType::VmConfiguration | BufferType::PluginConfiguration
            ) {
                return Ok(BAD_ARGUMENT);
            }
            let Some(data) = buffer_mut(c.data_mut(), buffer) else {
                return Ok(NOT_FOUND);
            };
            let start = (start as u32 as usize).min(data.len());
            let end = start.saturating_add(size as u32 as usize).min(data.len());
            data.splice(start..end, new);
            Ok(OK)
        },
    )?;

    // Header maps.
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map: i32, ret_ptr: i32, ret_size: i32| -> R {
            let Some(map) = MapType::from_i32(map) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(pairs) = map_mut(c.data_mut(), map).map(|m| serialize_map(m)) else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, &pairs, ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_size",
        |mut c: C<'_>, map: i32, ret: i32| -> R {
            // Envoy answers `HeaderMap::byteSize()`: the sum of every name's and value's length
            // (not the serialized size), and only for the stream's own maps: the callout and gRPC
            // maps are BAD_ARGUMENT there, as is a root context (no stream).
            let Some(map) = MapType::from_i32(map) else {
                return Ok(BAD_ARGUMENT);
            };
            if !matches!(
                map,
                MapType::HttpRequestHeaders
                    | MapType::HttpRequestTrailers
                    | MapType::HttpResponseHeaders
                    | MapType::HttpResponseTrailers
            ) {
                return Ok(BAD_ARGUMENT);
            }
            // A map the stream has not received yet (here: an empty one; headers always carry
            // pseudo-headers) is null in Envoy: BAD_ARGUMENT.
            let Some(size) = map_mut(c.data_mut(), map)
                .filter(|m| !m.is_empty())
                .map(|m| m.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() as u32)
            else {
                return Ok(BAD_ARGUMENT);
            };
            Ok(write_u32(&mut c, ret, size).map_or(INVALID_MEMORY_ACCESS, |()| OK))
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map: i32, ptr: i32, len: i32| -> R {
            let Some(map) = MapType::from_i32(map) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(bytes) = read(&mut c, ptr, len) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(pairs) = deserialize_map(&bytes) else {
                return Ok(Status::ParseFailure as i32);
            };
            let n = pairs.len();
            let Some(m) = map_mut(c.data_mut(), map) else {
                return Ok(NOT_FOUND);
            };
            *m = pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            record_edit(c.data_mut(), map, HeaderEdit::SetAll(n));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32, ret_ptr: i32, ret_size: i32| -> R {
            let Some(map) = MapType::from_i32(map) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(key) = read_str(&mut c, kp, kl) else {
                return Ok(BAD_ARGUMENT);
            };
            let key = header_key(map, &key);
            let Some(m) = map_mut(c.data_mut(), map) else {
                return Ok(NOT_FOUND);
            };
            let Some(value) = m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v.clone())
            else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, value.as_bytes(), ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_replace_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> R {
            let Some(map) = MapType::from_i32(map) else {
                return Ok(BAD_ARGUMENT);
            };
            let (Some(key), Some(value)) = (read_str(&mut c, kp, kl), read_str(&mut c, vp, vl))
            else {
                return Ok(BAD_ARGUMENT);
            };
            let key = header_key(map, &key);
            let Some(m) = map_mut(c.data_mut(), map) else {
                return Ok(NOT_FOUND);
            };
            // Envoy's setCopy: the first occurrence takes the value, the others go.
            match m.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    m[i].1 = value.clone();
                    let mut j = i + 1;
                    while j < m.len() {
                        if m[j].0 == key {
                            m.remove(j);
                        } else {
                            j += 1;
                        }
                    }
                }
                None => m.push((key.clone(), value.clone())),
            }
            record_edit(c.data_mut(), map, HeaderEdit::Replace(key, value));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32| -> R {
            let Some(map) = MapType::from_i32(map) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(key) = read_str(&mut c, kp, kl) else {
                return Ok(BAD_ARGUMENT);
            };
            let key = header_key(map, &key);
            let Some(m) = map_mut(c.data_mut(), map) else {
                return Ok(NOT_FOUND);
            };
            m.retain(|(k, _)| *k != key);
            record_edit(c.data_mut(), map, HeaderEdit::Remove(key));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_add_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> R {
            let Some(map) = MapType::from_i32(map) else {
                return Ok(BAD_ARGUMENT);
            };
            let (Some(key), Some(value)) = (read_str(&mut c, kp, kl), read_str(&mut c, vp, vl))
            else {
                return Ok(BAD_ARGUMENT);
            };
            let key = header_key(map, &key);
            let Some(m) = map_mut(c.data_mut(), map) else {
                return Ok(NOT_FOUND);
            };
            m.push((key.clone(), value.clone()));
            record_edit(c.data_mut(), map, HeaderEdit::Add(key, value));
            Ok(OK)
        },
    )?;

    // Properties.
    linker.func_wrap(
        ENV,
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, ret_ptr: i32, ret_size: i32| -> R {
            let Some(path) = read(&mut c, pp, pl) else {
                return Ok(BAD_ARGUMENT);
            };
            let path = property_path(&path);
            match c.data_mut().property(&path) {
                Some(v) => give(&mut c, &v, ret_ptr, ret_size),
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, pl: i32, vp: i32, vl: i32| -> R {
            let (Some(path), Some(value)) = (read(&mut c, pp, pl), read(&mut c, vp, vl)) else {
                return Ok(BAD_ARGUMENT);
            };
            let path = property_path(&path);
            let state = c.data_mut();
            match state.streams.get_mut(&state.active) {
                Some(stream) => {
                    stream.properties.insert(path, value);
                }
                None => {
                    state.properties.insert(path, value);
                }
            }
            Ok(OK)
        },
    )?;

    // Shared data.
    linker.func_wrap(
        ENV,
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, ret_ptr: i32, ret_size: i32, ret_cas: i32| -> R {
            let Some(key) = read_str(&mut c, kp, kl) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some((value, cas)) = c.data().shared.shared_data(&key) else {
                return Ok(NOT_FOUND);
            };
            if write_u32(&mut c, ret_cas, cas).is_none() {
                return Ok(BAD_ARGUMENT);
            }
            give(&mut c, &value, ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> R {
            let (Some(key), Some(value)) = (read_str(&mut c, kp, kl), read(&mut c, vp, vl)) else {
                return Ok(BAD_ARGUMENT);
            };
            let shared = c.data().shared.clone();
            let mut data = lock(&shared.shared_data);
            let current = data.get(&key).map_or(0, |(_, c)| *c);
            if cas != 0 && cas as u32 != current {
                return Ok(Status::CasMismatch as i32);
            }
            data.insert(key, (value, current.wrapping_add(1).max(1)));
            Ok(OK)
        },
    )?;

    // Shared queues.
    linker.func_wrap(
        ENV,
        "proxy_register_shared_queue",
        |mut c: C<'_>, np: i32, nl: i32, ret: i32| -> R {
            let Some(name) = read_str(&mut c, np, nl) else {
                return Ok(BAD_ARGUMENT);
            };
            let state = c.data();
            let (vm_id, root) = (
                state.vm_id.clone(),
                state.root_of(state.active).unwrap_or(state.active),
            );
            let shared = state.shared.clone();
            let id = {
                let mut queues = lock(&shared.queues);
                match queues
                    .iter()
                    .position(|q| q.vm_id == vm_id && q.name == name)
                {
                    Some(i) => {
                        queues[i].root = root;
                        i
                    }
                    None => {
                        queues.push(Queue {
                            vm_id,
                            name,
                            root,
                            items: VecDeque::new(),
                        });
                        queues.len() - 1
                    }
                }
            };
            Ok(write_u32(&mut c, ret, id as u32).map_or(BAD_ARGUMENT, |()| OK))
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32| -> R {
            let (Some(vm_id), Some(name)) = (read_str(&mut c, vp, vl), read_str(&mut c, np, nl))
            else {
                return Ok(BAD_ARGUMENT);
            };
            let shared = c.data().shared.clone();
            let found = lock(&shared.queues)
                .iter()
                .position(|q| q.vm_id == vm_id && q.name == name);
            match found {
                Some(id) => Ok(write_u32(&mut c, ret, id as u32).map_or(BAD_ARGUMENT, |()| OK)),
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, id: i32, ret_ptr: i32, ret_size: i32| -> R {
            let shared = c.data().shared.clone();
            let item = {
                let mut queues = lock(&shared.queues);
                let Some(q) = queues.get_mut(id as u32 as usize) else {
                    return Ok(NOT_FOUND);
                };
                q.items.pop_front()
            };
            match item {
                Some(v) => give(&mut c, &v, ret_ptr, ret_size),
                None => Ok(Status::Empty as i32),
            }
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, id: i32, vp: i32, vl: i32| -> R {
            let Some(value) = read(&mut c, vp, vl) else {
                return Ok(BAD_ARGUMENT);
            };
            let shared = c.data().shared.clone();
            let mut queues = lock(&shared.queues);
            let Some(q) = queues.get_mut(id as u32 as usize) else {
                return Ok(NOT_FOUND);
            };
            q.items.push_back(value);
            lock(&shared.queue_ready).push((q.vm_id.clone(), q.root, id as u32));
            Ok(OK)
        },
    )?;

    // Stream control and local replies.
    linker.func_wrap(
        ENV,
        "proxy_continue_stream",
        |mut c: C<'_>, stream: i32| -> R {
            let Some(stream) = StreamType::from_i32(stream) else {
                return Ok(BAD_ARGUMENT);
            };
            let state = c.data_mut();
            let Some(s) = state.streams.get_mut(&state.active) else {
                return Ok(NOT_FOUND);
            };
            s.continued.push(stream);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_close_stream",
        |mut c: C<'_>, stream: i32| -> R {
            let Some(stream) = StreamType::from_i32(stream) else {
                return Ok(BAD_ARGUMENT);
            };
            let state = c.data_mut();
            let Some(s) = state.streams.get_mut(&state.active) else {
                return Ok(NOT_FOUND);
            };
            s.closed.push(stream);
            Ok(OK)
        },
    )?;
    for (name, stream) in [
        ("proxy_continue_request", StreamType::HttpRequest),
        ("proxy_continue_response", StreamType::HttpResponse),
    ] {
        linker.func_wrap(ENV, name, move |mut c: C<'_>| -> R {
            let state = c.data_mut();
            let Some(s) = state.streams.get_mut(&state.active) else {
                return Ok(NOT_FOUND);
            };
            s.continued.push(stream);
            Ok(OK)
        })?;
    }
    linker.func_wrap(ENV, "proxy_clear_route_cache", |mut c: C<'_>| -> R {
        let state = c.data_mut();
        let Some(s) = state.streams.get_mut(&state.active) else {
            return Ok(NOT_FOUND);
        };
        s.route_cache_cleared += 1;
        Ok(OK)
    })?;
    linker.func_wrap(
        ENV,
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: i32,
         dp: i32,
         dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         grpc: i32|
         -> R {
            let (Some(details), Some(body), Some(headers)) = (
                read_str(&mut c, dp, dl),
                read(&mut c, bp, bl),
                read(&mut c, hp, hl),
            ) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(headers) = deserialize_map(&headers) else {
                return Ok(Status::ParseFailure as i32);
            };
            let state = c.data_mut();
            let Some(s) = state.streams.get_mut(&state.active) else {
                return Ok(NOT_FOUND);
            };
            s.local_response = Some(LocalResponse {
                status: status as u32,
                details,
                body,
                headers,
                grpc_status: grpc,
            });
            Ok(OK)
        },
    )?;

    // HTTP callouts.
    linker.func_wrap(
        ENV,
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         tp: i32,
         tl: i32,
         timeout: i32,
         ret: i32|
         -> R {
            let (Some(upstream), Some(headers), Some(body), Some(trailers)) = (
                read_str(&mut c, up, ul),
                read(&mut c, hp, hl),
                read(&mut c, bp, bl),
                read(&mut c, tp, tl),
            ) else {
                return Ok(BAD_ARGUMENT);
            };
            let (Some(headers), Some(trailers)) =
                (deserialize_map(&headers), deserialize_map(&trailers))
            else {
                return Ok(Status::ParseFailure as i32);
            };
            // Envoy refuses a callout without these.
            let has = |n: &str| headers.iter().any(|(k, v)| k == n && !v.is_empty());
            if upstream.is_empty() || !has(":method") || !has(":path") || !has(":authority") {
                return Ok(BAD_ARGUMENT);
            }
            let state = c.data_mut();
            let token = next_token(state);
            let context = state.active;
            state.http_calls.push(crate::state::HttpCall {
                token,
                context,
                upstream,
                headers,
                body,
                trailers,
                timeout_ms: timeout as u32,
            });
            Ok(write_u32(&mut c, ret, token).map_or(BAD_ARGUMENT, |()| OK))
        },
    )?;

    // gRPC.
    linker.func_wrap(
        ENV,
        "proxy_grpc_call",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         sp: i32,
         sl: i32,
         mp: i32,
         ml: i32,
         hp: i32,
         hl: i32,
         msgp: i32,
         msgl: i32,
         timeout: i32,
         ret: i32|
         -> R {
            let (Some(upstream), Some(service), Some(method), Some(meta), Some(message)) = (
                read_str(&mut c, up, ul),
                read_str(&mut c, sp, sl),
                read_str(&mut c, mp, ml),
                read(&mut c, hp, hl),
                read(&mut c, msgp, msgl),
            ) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(metadata) = deserialize_map(&meta) else {
                return Ok(Status::ParseFailure as i32);
            };
            let call = GrpcCall {
                token: 0,
                context: 0,
                upstream,
                service,
                method,
                metadata,
                messages: vec![(message, true)],
                streaming: false,
                timeout_ms: timeout as u32,
                cancelled: false,
                closed: false,
            };
            open_grpc(&mut c, call, ret)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_grpc_stream",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         sp: i32,
         sl: i32,
         mp: i32,
         ml: i32,
         hp: i32,
         hl: i32,
         ret: i32|
         -> R {
            let (Some(upstream), Some(service), Some(method), Some(meta)) = (
                read_str(&mut c, up, ul),
                read_str(&mut c, sp, sl),
                read_str(&mut c, mp, ml),
                read(&mut c, hp, hl),
            ) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(metadata) = deserialize_map(&meta) else {
                return Ok(Status::ParseFailure as i32);
            };
            let call = GrpcCall {
                token: 0,
                context: 0,
                upstream,
                service,
                method,
                metadata,
                messages: Vec::new(),
                streaming: true,
                timeout_ms: 0,
                cancelled: false,
                closed: false,
            };
            open_grpc(&mut c, call, ret)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_grpc_send",
        |mut c: C<'_>, token: i32, mp: i32, ml: i32, end: i32| -> R {
            let Some(message) = read(&mut c, mp, ml) else {
                return Ok(BAD_ARGUMENT);
            };
            let state = c.data_mut();
            let Some(call) = state
                .grpc_calls
                .iter_mut()
                .find(|g| g.token == token as u32 && g.streaming)
            else {
                return Ok(NOT_FOUND);
            };
            call.messages.push((message, end != 0));
            Ok(OK)
        },
    )?;
    for (name, cancel) in [("proxy_grpc_cancel", true), ("proxy_grpc_close", false)] {
        linker.func_wrap(ENV, name, move |mut c: C<'_>, token: i32| -> R {
            let state = c.data_mut();
            let Some(call) = state
                .grpc_calls
                .iter_mut()
                .find(|g| g.token == token as u32)
            else {
                return Ok(NOT_FOUND);
            };
            if cancel {
                call.cancelled = true;
            } else {
                call.closed = true;
            }
            Ok(OK)
        })?;
    }
    linker.func_wrap(
        ENV,
        "proxy_get_status",
        |mut c: C<'_>, ret_code: i32, ret_ptr: i32, ret_size: i32| -> R {
            let (code, message) = c.data().grpc_status.clone();
            if write_u32(&mut c, ret_code, code).is_none() {
                return Ok(BAD_ARGUMENT);
            }
            give(&mut c, &message, ret_ptr, ret_size)
        },
    )?;

    // Contexts.
    linker.func_wrap(
        ENV,
        "proxy_set_effective_context",
        |mut c: C<'_>, context: i32| -> R {
            let state = c.data_mut();
            let context = context as u32;
            if state.roots.contains_key(&context) || state.streams.contains_key(&context) {
                state.active = context;
                Ok(OK)
            } else {
                Ok(BAD_ARGUMENT)
            }
        },
    )?;
    linker.func_wrap(ENV, "proxy_done", |mut c: C<'_>| -> R {
        let state = c.data_mut();
        let Some(root) = state.root_of(state.active) else {
            return Ok(NOT_FOUND);
        };
        if let Some(r) = state.roots.get_mut(&root) {
            r.done = true;
        }
        Ok(OK)
    })?;

    // Foreign functions: Envoy's `set_envoy_filter_state` and `clear_route_cache`.
    linker.func_wrap(
        ENV,
        "proxy_call_foreign_function",
        |mut c: C<'_>, np: i32, nl: i32, ap: i32, al: i32, ret_ptr: i32, ret_size: i32| -> R {
            let (Some(name), Some(args)) = (read_str(&mut c, np, nl), read(&mut c, ap, al)) else {
                return Ok(BAD_ARGUMENT);
            };
            let state = c.data_mut();
            let context = state.active;
            state.foreign_calls.push(ForeignCall {
                context,
                name: name.clone(),
                args: args.clone(),
            });
            match name.as_str() {
                "set_envoy_filter_state" => {
                    let Some(parsed) = filter_state_args(&args) else {
                        return Ok(BAD_ARGUMENT);
                    };
                    let Some(s) = state.streams.get_mut(&context) else {
                        return Ok(NOT_FOUND);
                    };
                    s.filter_state.push(parsed);
                }
                "clear_route_cache" => {
                    let Some(s) = state.streams.get_mut(&context) else {
                        return Ok(NOT_FOUND);
                    };
                    s.route_cache_cleared += 1;
                }
                _ => return Ok(NOT_FOUND),
            }
            // Both return no data; the SDK expects an empty result.
            let _ = (ret_ptr, ret_size);
            Ok(OK)
        },
    )?;

    // Metrics (process-wide, by name, as in Envoy).
    linker.func_wrap(
        ENV,
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, np: i32, nl: i32, ret: i32| -> R {
            let Some(kind) = MetricType::from_i32(kind) else {
                return Ok(BAD_ARGUMENT);
            };
            let Some(name) = read_str(&mut c, np, nl) else {
                return Ok(BAD_ARGUMENT);
            };
            let shared = c.data().shared.clone();
            let id = {
                let mut metrics = lock(&shared.metrics);
                match metrics.iter().position(|m| m.name == name) {
                    Some(i) if metrics[i].kind == kind => i,
                    Some(_) => return Ok(BAD_ARGUMENT),
                    None => {
                        metrics.push(Metric {
                            name,
                            kind,
                            value: 0,
                            samples: Vec::new(),
                        });
                        metrics.len() - 1
                    }
                }
            };
            Ok(write_u32(&mut c, ret, id as u32).map_or(BAD_ARGUMENT, |()| OK))
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_increment_metric",
        |c: C<'_>, id: i32, offset: i64| -> R {
            let mut metrics = lock(&c.data().shared.metrics);
            let Some(m) = metrics.get_mut(id as u32 as usize) else {
                return Ok(NOT_FOUND);
            };
            match m.kind {
                MetricType::Counter if offset < 0 => Ok(BAD_ARGUMENT),
                MetricType::Histogram => Ok(BAD_ARGUMENT),
                _ => {
                    m.value = m.value.saturating_add(offset);
                    Ok(OK)
                }
            }
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_record_metric",
        |c: C<'_>, id: i32, value: i64| -> R {
            let mut metrics = lock(&c.data().shared.metrics);
            let Some(m) = metrics.get_mut(id as u32 as usize) else {
                return Ok(NOT_FOUND);
            };
            match m.kind {
                MetricType::Counter => Ok(BAD_ARGUMENT),
                MetricType::Gauge => {
                    m.value = value;
                    Ok(OK)
                }
                MetricType::Histogram => {
                    m.samples.push(value as u64);
                    m.value = value;
                    Ok(OK)
                }
            }
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| -> R {
            let value = {
                let metrics = lock(&c.data().shared.metrics);
                let Some(m) = metrics.get(id as u32 as usize) else {
                    return Ok(NOT_FOUND);
                };
                m.value
            };
            Ok(write(&mut c, ret, &(value as u64).to_le_bytes()).map_or(BAD_ARGUMENT, |()| OK))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_paths() {
        assert_eq!(property_path(b"request\0path"), ["request", "path"]);
        assert_eq!(property_path(b"request\0path\0"), ["request", "path"]);
        assert_eq!(property_path(b""), Vec::<String>::new());
    }

    #[test]
    fn filter_state_arguments() {
        // path = "envoy.tcp_proxy.cluster", value = "c", span = 1
        let mut b = vec![0x0a, 23];
        b.extend_from_slice(b"envoy.tcp_proxy.cluster");
        b.extend_from_slice(&[0x12, 1, b'c', 0x18, 1]);
        assert_eq!(
            filter_state_args(&b),
            Some(("envoy.tcp_proxy.cluster".into(), b"c".to_vec(), 1))
        );
        assert_eq!(filter_state_args(&[0x0a, 200]), None);
        assert_eq!(filter_state_args(&[0x12, 0]), None);
    }
}
