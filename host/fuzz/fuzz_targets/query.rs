//! `taskhost::api::fuzz::query` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::query(data));
