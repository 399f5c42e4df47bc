//! The `egress_verdict` fuzz target: see `fuzz/checks/egress_verdict.rs`.
#![no_main]

include!("../checks/egress_verdict.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
