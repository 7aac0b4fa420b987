//! How many compiles run at once, in two lanes by size, so a small component never waits
//! behind a big one.
//!
//! At most `jobs` compiles run at once. A big component (over [`SMALL_COMPONENT_BYTES`])
//! takes at most `jobs - 1` of them (one when `jobs` is 1), so a slot is always left for small
//! ones; a small component waits only for other small ones (with `jobs` 1, it runs beside a
//! big one). Within a lane, compiles start in the order they asked. Waiting blocks the
//! calling thread, which is never an async worker or an engine thread: uploads wait on the
//! blocking pool, file reloads on the task loader's threads.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::CompileStatus;

/// Components up to this size compile in the small lane: every example task, and most
/// components written in Rust; a Python component (18 MB) is big.
pub const SMALL_COMPONENT_BYTES: usize = 4 << 20;

/// The two lanes of compiles.
pub(super) struct Lanes {
    jobs: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    running: [usize; 2],
    /// Tickets of the compiles waiting, by lane, first come first.
    waiting: [VecDeque<u64>; 2],
    next_ticket: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    Small = 0,
    Big = 1,
}

/// A slot held by one compile; dropping it frees the slot.
pub(super) struct Permit<'a> {
    lanes: &'a Lanes,
    lane: Lane,
}

impl Lanes {
    /// Lanes running at most `jobs` compiles at once (at least 1).
    pub(super) fn new(jobs: usize) -> Self {
        Self {
            jobs: jobs.max(1),
            state: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    /// Waits for a slot to compile a component of `size` bytes.
    pub(super) fn acquire(&self, size: usize) -> Permit<'_> {
        let lane = if size <= SMALL_COMPONENT_BYTES {
            Lane::Small
        } else {
            Lane::Big
        };
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting[lane as usize].push_back(ticket);
        while !self.may_start(&state, lane, ticket) {
            state = self.changed.wait(state).expect("compile lanes poisoned");
        }
        state.waiting[lane as usize].pop_front();
        state.running[lane as usize] += 1;
        // Another waiter (of the other lane) may be able to start too.
        self.changed.notify_all();
        Permit { lanes: self, lane }
    }

    /// Most compiles at once.
    pub(super) fn jobs(&self) -> usize {
        self.jobs
    }

    /// Compiles running and waiting, both lanes together.
    pub(super) fn status(&self) -> CompileStatus {
        let state = self.lock();
        CompileStatus {
            running: state.running.iter().sum(),
            waiting: state.waiting.iter().map(VecDeque::len).sum(),
        }
    }

    fn may_start(&self, state: &State, lane: Lane, ticket: u64) -> bool {
        if state.waiting[lane as usize].front() != Some(&ticket) {
            return false;
        }
        let [small, big] = state.running;
        match lane {
            Lane::Small => small + big < self.jobs || small == 0,
            Lane::Big => {
                small + big < self.jobs
                    && big < (self.jobs - 1).max(1)
                    && state.waiting[Lane::Small as usize].is_empty()
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("compile lanes poisoned")
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.lanes.lock().running[self.lane as usize] -= 1;
        self.lanes.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Lanes of `jobs` with `running` compiles (small, big) and one of `lane` waiting.
    fn with_one_waiting(jobs: usize, running: [usize; 2], lane: Lane) -> (Lanes, State) {
        let mut state = State {
            running,
            ..State::default()
        };
        state.waiting[lane as usize].push_back(7);
        (Lanes::new(jobs), state)
    }

    fn may_start(jobs: usize, running: [usize; 2], lane: Lane) -> bool {
        let (lanes, state) = with_one_waiting(jobs, running, lane);
        lanes.may_start(&state, lane, 7)
    }

    #[test]
    fn big_compiles_leave_a_slot_for_small_ones() {
        assert!(may_start(2, [0, 0], Lane::Big));
        assert!(!may_start(2, [0, 1], Lane::Big), "one of two slots at most");
        assert!(may_start(2, [0, 1], Lane::Small));
        assert!(may_start(4, [0, 2], Lane::Big));
        assert!(!may_start(4, [0, 3], Lane::Big));
        assert!(may_start(4, [0, 3], Lane::Small));
        assert!(
            !may_start(4, [1, 3], Lane::Small),
            "no more than jobs at once"
        );
        assert!(!may_start(4, [4, 0], Lane::Small));
        // With one slot, a big compile takes it, and a small one still runs beside it.
        assert!(may_start(1, [0, 0], Lane::Big));
        assert!(!may_start(1, [0, 1], Lane::Big));
        assert!(may_start(1, [0, 1], Lane::Small));
        assert!(!may_start(1, [1, 0], Lane::Small));
    }

    #[test]
    fn waiters_start_in_order_and_small_ones_first() {
        let (lanes, mut state) = with_one_waiting(2, [1, 0], Lane::Small);
        state.waiting[Lane::Small as usize].push_back(8);
        assert!(lanes.may_start(&state, Lane::Small, 7));
        assert!(!lanes.may_start(&state, Lane::Small, 8), "7 came first");
        // A big compile does not take the slot a small one waits for.
        state.waiting[Lane::Big as usize].push_back(9);
        assert!(!lanes.may_start(&state, Lane::Big, 9));
        state.waiting[Lane::Small as usize].clear();
        assert!(lanes.may_start(&state, Lane::Big, 9));
    }

    #[test]
    fn a_waiting_compile_starts_when_a_slot_is_freed() {
        let lanes = Lanes::new(1);
        let (started, starts) = mpsc::channel();
        let first = lanes.acquire(10);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _permit = lanes.acquire(20);
                started.send(()).unwrap();
            });
            assert_eq!(lanes.status().running, 1);
            drop(first);
            starts.recv().unwrap();
        });
        assert_eq!(
            lanes.status(),
            CompileStatus {
                running: 0,
                waiting: 0
            }
        );
    }
}
