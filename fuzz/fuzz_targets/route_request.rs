//! The `route_request` fuzz target: see `fuzz/checks/route_request.rs`.
#![no_main]

include!("../checks/route_request.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
