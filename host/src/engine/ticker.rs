//! The thread that advances the engine's epoch, which is what enforces wall-clock deadlines.
//!
//! It advances the epoch every tick, so that running jobs check for cancellation and (on the
//! IO executor) yield, and also at each running job's deadline, so that a job is stopped
//! right after its deadline rather than up to a tick later. A job sets an [`Alarm`] at its
//! deadline for as long as it runs; alarms are kept to the millisecond, and the thread is
//! woken early only for an alarm due before its next tick.
//!
//! With no job running (no alarm set) for a while, the ticker stops ticking and sleeps until
//! a job sets an alarm, so an idle host does not wake a hundred times a second. Going idle,
//! it first runs its `on_idle` step (the engine gives freed heap back to the OS there).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// Advances the epoch of the host's engines every tick and at every alarm until dropped; dropping
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
    /// How the thread sleeps now.
    sleep: Sleep,
    stopping: bool,
}

/// Whether and until when the ticker thread sleeps: what an alarm checks to decide whether
/// to wake it.
#[derive(Clone, Copy, Default)]
enum Sleep {
    /// Awake.
    #[default]
    Awake,
    /// Until this instant (its next tick or alarm), unless woken.
    Until(Instant),
    /// Until woken: no job is running.
    Idle,
}

/// A running job's deadline, set with the ticker; dropping it (when the job ends) unsets it.
pub(crate) struct Alarm {
    shared: Arc<Shared>,
    at: u64,
}

impl EpochTicker {
    /// Starts the ticker thread, advancing the epoch of each of `engines` every `tick` while
    /// jobs run, and stopping once none has run for `idle_after`, after running `on_idle`.
    pub(crate) fn start(
        engines: Vec<Engine>,
        tick: Duration,
        idle_after: Duration,
        on_idle: fn(),
    ) -> Self {
        let shared = Arc::new(Shared {
            origin: Instant::now(),
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("taskhost-epoch".into())
                .spawn(move || shared.run(&engines, tick, idle_after, on_idle))
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
        let wake = match state.sleep {
            Sleep::Awake => false,
            Sleep::Until(until) => shared.instant(at) < until,
            Sleep::Idle => true,
        };
        if wake {
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
    /// until one is, or until an alarm is set when no job has run for `idle_after` (having
    /// run `on_idle`, without its lock).
    fn run(&self, engines: &[Engine], tick: Duration, idle_after: Duration, on_idle: fn()) {
        let mut next_tick = Instant::now() + tick;
        let mut busy_at = Instant::now();
        let mut state = self.lock();
        while !state.stopping {
            let now = Instant::now();
            if !state.alarms.is_empty() {
                busy_at = now;
            } else if now.duration_since(busy_at) >= idle_after {
                drop(state);
                on_idle();
                state = self.lock();
                if !state.alarms.is_empty() || state.stopping {
                    continue;
                }
                state.sleep = Sleep::Idle;
                state = self.wake.wait(state).expect("epoch ticker poisoned");
                state.sleep = Sleep::Awake;
                (busy_at, next_tick) = (Instant::now(), Instant::now() + tick);
                continue;
            }
            let alarm = state
                .alarms
                .first_key_value()
                .map(|(at, _)| self.instant(*at));
            let due = alarm.map_or(next_tick, |alarm| alarm.min(next_tick));
            if now < due {
                state.sleep = Sleep::Until(due);
                state = self
                    .wake
                    .wait_timeout(state, due - now)
                    .expect("epoch ticker poisoned")
                    .0;
                state.sleep = Sleep::Awake;
                continue;
            }
            for engine in engines {
                engine.increment_epoch();
            }
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
    use std::sync::mpsc::{self, RecvTimeoutError};
    use wasmtime::{Config, Module, Store, UpdateDeadline};

    const HOUR: Duration = Duration::from_secs(3600);

    fn engine() -> Engine {
        Engine::new(Config::new().epoch_interruption(true)).unwrap()
    }

    /// Runs an endless loop whose epoch callback is `check` (the loop stops when it fails),
    /// calling `ready` once the loop is about to start; returns why the loop stopped. Should
    /// the ticker never stop it, a watchdog does after a minute, and the test fails.
    fn spin(
        engine: &Engine,
        ready: impl FnOnce(),
        check: impl FnMut() -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> String {
        let module = Module::new(engine, r#"(module (func (export "spin") (loop br 0)))"#);
        let mut store = Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module.unwrap(), &[]).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let mut check = check;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| check().map(|()| UpdateDeadline::Continue(1)));
        let (done, watching) = mpsc::channel::<()>();
        let watchdog = thread::spawn({
            let engine = engine.clone();
            move || {
                let fired = watching.recv_timeout(Duration::from_secs(60))
                    == Err(RecvTimeoutError::Timeout);
                if fired {
                    engine.increment_epoch();
                }
                fired
            }
        });
        ready();
        let error = spin.call(&mut store, ()).unwrap_err();
        drop(done);
        assert!(!watchdog.join().unwrap(), "the watchdog stopped the loop");
        error.root_cause().to_string()
    }

    /// Waits (spinning, for at most a minute) until the ticker sleeps for want of jobs.
    fn wait_until_idle(ticker: &EpochTicker) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(ticker.shared.lock().sleep, Sleep::Idle) {
            assert!(Instant::now() < deadline, "the ticker never went idle");
            thread::yield_now();
        }
    }

    #[test]
    fn an_alarm_wakes_an_idle_ticker_and_advances_the_epoch_at_its_deadline() {
        let engine = engine();
        // No tick comes during the test: only the alarm can stop the loop.
        let ticker = EpochTicker::start(vec![engine.clone()], HOUR, Duration::ZERO, || {});
        wait_until_idle(&ticker);
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut alarm = None;
        let stopped = spin(
            &engine,
            || alarm = Some(ticker.alarm(deadline)),
            move || match Instant::now() >= deadline {
                true => wasmtime::bail!("stopped at the deadline"),
                false => Ok(()),
            },
        );
        assert_eq!(stopped, "stopped at the deadline");
        drop(alarm);
        assert!(ticker.shared.lock().alarms.is_empty());
    }

    #[test]
    fn a_job_starting_while_the_ticker_is_idle_gets_its_ticks() {
        let engine = engine();
        let ticker = EpochTicker::start(
            vec![engine.clone()],
            Duration::from_millis(5),
            Duration::ZERO,
            || {},
        );
        wait_until_idle(&ticker);
        let mut alarm = None;
        let mut ticks = 0;
        let stopped = spin(
            &engine,
            || alarm = Some(ticker.alarm(Instant::now() + HOUR)),
            move || {
                ticks += 1;
                match ticks {
                    3 => wasmtime::bail!("ticked three times"),
                    _ => Ok(()),
                }
            },
        );
        assert_eq!(stopped, "ticked three times");
    }

    #[test]
    fn alarms_are_counted_per_millisecond_and_unset_when_dropped() {
        let ticker = EpochTicker::start(vec![engine()], HOUR, HOUR, || {});
        let deadline = Instant::now() + Duration::from_secs(600);
        let first = ticker.alarm(deadline);
        let second = ticker.alarm(deadline);
        let later = ticker.alarm(deadline + Duration::from_millis(5));
        let counts = |ticker: &EpochTicker| -> Vec<usize> {
            ticker.shared.lock().alarms.values().copied().collect()
        };
        assert_eq!(counts(&ticker), [2, 1]);
        drop(first);
        assert_eq!(counts(&ticker), [1, 1]);
        drop((second, later));
        assert!(counts(&ticker).is_empty());
    }
}
