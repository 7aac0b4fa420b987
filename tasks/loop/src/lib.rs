//! `loop`: never returns. Only its deadline, its fuel or a cancellation stops it.

#[taskhost_sdk::task]
fn run(_: serde::de::IgnoredAny) {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}
