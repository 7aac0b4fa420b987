//! `taskhost::api::fuzz::batch_body` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::batch_body(data));
