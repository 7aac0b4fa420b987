//! `taskhost::api::fuzz::idempotency` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::idempotency(data));
