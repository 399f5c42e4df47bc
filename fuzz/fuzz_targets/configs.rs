//! The `configs` fuzz target: see `fuzz/checks/configs.rs`.
#![no_main]

include!("../checks/configs.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
