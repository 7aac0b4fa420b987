//! `taskhost::api::fuzz::job_spec` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::job_spec(data));
