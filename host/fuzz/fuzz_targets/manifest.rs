//! `taskhost::api::fuzz::upload_manifest` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::upload_manifest(data));
