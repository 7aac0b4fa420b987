//! `noop`: returns at once; the baseline of the benchmarks.

#[taskhost_sdk::task]
fn run(_: serde::de::IgnoredAny) {}
