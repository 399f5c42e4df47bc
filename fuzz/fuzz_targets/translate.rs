//! The `translate` fuzz target: see `fuzz/checks/translate.rs`.
#![no_main]

include!("../checks/translate.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
