//! `taskhost::api::fuzz::task_name` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::task_name(data));
