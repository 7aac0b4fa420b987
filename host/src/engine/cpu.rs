//! CPU time: what a job costs the machine, as distinct from how long it took.

use std::future::Future;
use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

/// CPU time the calling thread has used so far.
pub(crate) fn thread_time() -> Duration {
    let now = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Runs `future` to its end, counting the CPU time of its polls on whichever threads they
/// run: what an async job cost, excluding the other tasks its executor threads ran.
pub(crate) async fn timed<F: Future>(future: F) -> (F::Output, Duration) {
    let mut future = std::pin::pin!(future);
    let mut used = Duration::ZERO;
    let output = std::future::poll_fn(|context| {
        let before = thread_time();
        let poll = future.as_mut().poll(context);
        used += thread_time().saturating_sub(before);
        poll
    })
    .await;
    (output, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_in_thread_time_and_a_wait_does_not() {
        let before = thread_time();
        let mut x = 0u64;
        while thread_time() - before < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_time() - before >= Duration::from_millis(20));

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let wait = async { timed(tokio::time::sleep(Duration::from_millis(50))).await };
        let ((), used) = runtime.block_on(wait);
        assert!(
            used < Duration::from_millis(25),
            "a wait costs no CPU: {used:?}"
        );
    }
}
