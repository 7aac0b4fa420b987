//! `taskhost::api::fuzz::upload_validator` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::upload_validator(data));
