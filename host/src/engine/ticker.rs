//! The thread that advances the engine's epoch, which is what enforces wall-clock deadlines.
//!
//! It advances the epoch every tick, so that running jobs check for cancellation and (on the
//! IO executor) yield, and also at each running job's deadline, so that a job is stopped
//! right after its deadline rather than up to a tick later. A job sets an [`Alarm`] at its
//! deadline for as long as it runs; alarms are kept to the millisecond, and the thread is
//! woken early only for an alarm due before its next tick.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// Advances the epoch of an engine every tick and at every alarm until dropped; dropping
/// stops and joins its thread.
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// The ticker's state, shared with its thread and the alarms.
struct Shared {
    /// When the ticker started: alarms are whole milliseconds after it.
    origin: Instant,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Alarms due, as milliseconds after `origin`, with how many jobs set each.
    alarms: BTreeMap<u64, usize>,
    /// When the thread next wakes unless woken.
    sleeping_until: Option<Instant>,
    stopping: bool,
}

/// A running job's deadline, set with the ticker; dropping it (when the job ends) unsets it.
pub(crate) struct Alarm {
    shared: Arc<Shared>,
    at: u64,
}

impl EpochTicker {
    /// Starts the ticker thread, advancing `engine`'s epoch every `tick`.
    pub(crate) fn start(engine: Engine, tick: Duration) -> Self {
        let shared = Arc::new(Shared {
            origin: Instant::now(),
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("taskhost-epoch".into())
                .spawn(move || shared.run(&engine, tick))
                .expect("spawning the epoch ticker thread")
        };
        Self {
            shared,
            thread: Some(thread),
        }
    }

    /// Advances the epoch at `deadline` (rounded up to the millisecond) too, until the alarm
    /// is dropped.
    pub(crate) fn alarm(&self, deadline: Instant) -> Alarm {
        let shared = &self.shared;
        let at = deadline
            .saturating_duration_since(shared.origin)
            .as_nanos()
            .div_ceil(1_000_000) as u64;
        let mut state = shared.lock();
        *state.alarms.entry(at).or_default() += 1;
        if state
            .sleeping_until
            .is_some_and(|until| shared.instant(at) < until)
        {
            shared.wake.notify_one();
        }
        Alarm {
            shared: shared.clone(),
            at,
        }
    }
}

impl Shared {
    /// The ticker thread: advances the epoch when a tick or an alarm is due, else sleeps
    /// until one is.
    fn run(&self, engine: &Engine, tick: Duration) {
        let mut next_tick = Instant::now() + tick;
        let mut state = self.lock();
        while !state.stopping {
            let now = Instant::now();
            let alarm = state
                .alarms
                .first_key_value()
                .map(|(at, _)| self.instant(*at));
            let due = alarm.map_or(next_tick, |alarm| alarm.min(next_tick));
            if now < due {
                state.sleeping_until = Some(due);
                state = self
                    .wake
                    .wait_timeout(state, due - now)
                    .expect("epoch ticker poisoned")
                    .0;
                state.sleeping_until = None;
                continue;
            }
            engine.increment_epoch();
            if now >= next_tick {
                next_tick = now + tick;
            }
            // Jobs whose alarm rang stop now; one still running on is stopped by the ticks.
            while let Some(entry) = state.alarms.first_entry() {
                if self.instant(*entry.key()) > now {
                    break;
                }
                entry.remove();
            }
        }
    }

    fn instant(&self, at: u64) -> Instant {
        self.origin + Duration::from_millis(at)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("epoch ticker poisoned")
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(count) = state.alarms.get_mut(&self.at) {
            *count -= 1;
            if *count == 0 {
                state.alarms.remove(&self.at);
            }
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Config, Module, Store, UpdateDeadline};

    #[test]
    fn an_alarm_advances_the_epoch_at_its_deadline_between_ticks() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        // No tick comes during the test: only the alarm can stop the loop.
        let ticker = EpochTicker::start(engine.clone(), Duration::from_secs(3600));
        let module = Module::new(&engine, r#"(module (func (export "spin") (loop br 0)))"#);
        let mut store = Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module.unwrap(), &[]).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();

        // Set once the loop is ready to run: an alarm before that would find no store.
        let deadline = Instant::now() + Duration::from_millis(50);
        let alarm = ticker.alarm(deadline);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                wasmtime::bail!("stopped at the deadline")
            }
            Ok(UpdateDeadline::Continue(1))
        });
        // Should the alarm not ring, a watchdog ends the loop (and the test fails) instead of
        // letting it spin for ever.
        let (done, watching) = std::sync::mpsc::channel::<()>();
        let watchdog = thread::spawn({
            let engine = engine.clone();
            move || {
                let timed_out = watching.recv_timeout(Duration::from_secs(60))
                    == Err(std::sync::mpsc::RecvTimeoutError::Timeout);
                if timed_out {
                    engine.increment_epoch();
                }
                timed_out
            }
        });
        let error = spin.call(&mut store, ()).unwrap_err();
        drop(done);
        assert!(!watchdog.join().unwrap(), "the watchdog stopped the loop");
        assert_eq!(error.root_cause().to_string(), "stopped at the deadline");
        drop(alarm);
        assert!(ticker.shared.lock().alarms.is_empty());
    }

    #[test]
    fn alarms_are_counted_per_millisecond_and_unset_when_dropped() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let ticker = EpochTicker::start(engine, Duration::from_secs(3600));
        let deadline = Instant::now() + Duration::from_secs(600);
        let first = ticker.alarm(deadline);
        let second = ticker.alarm(deadline);
        let later = ticker.alarm(deadline + Duration::from_millis(5));
        let alarms = |ticker: &EpochTicker| ticker.shared.lock().alarms.clone();
        assert_eq!(
            alarms(&ticker).values().copied().collect::<Vec<_>>(),
            [2, 1]
        );
        drop(first);
        assert_eq!(
            alarms(&ticker).values().copied().collect::<Vec<_>>(),
            [1, 1]
        );
        drop((second, later));
        assert!(alarms(&ticker).is_empty());
    }
}
