//! `taskhost::api::fuzz::last_event_id` under libFuzzer.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| taskhost::api::fuzz::last_event_id(data));
