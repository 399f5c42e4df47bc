//! The `re2` fuzz target: see `fuzz/checks/re2.rs`.
#![no_main]

include!("../checks/re2.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
