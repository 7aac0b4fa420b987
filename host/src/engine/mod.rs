//! The wasmtime engine and the policy for running one job: compile a component once, then give
//! every job a fresh store with limits, a deadline and nothing of the outside world.
//!
//! The engine knows nothing of names, queues or HTTP: [`TaskEngine::compile`] turns bytes into
//! a [`CompiledTask`], and [`TaskEngine::run`] runs one input through it and says how it went.

mod bindings;
mod outcome;
mod state;
mod ticker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

pub use outcome::{ErrorCode, JobError, JobLog, LogLevel, LogLine, Outcome, Receipt};

use bindings::{Task, TaskPre};
use state::HostState;
use ticker::EpochTicker;

/// How often the epoch advances. Deadlines are counted in these ticks, so a job is stopped
/// at most one tick after its deadline; 10 ms keeps that error small while the ticker thread
/// wakes only 100 times a second.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to one job's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time the job may run before it is stopped with `timeout`.
    pub timeout: Duration,
    /// Largest linear memory the job's instance may grow to, in bytes.
    pub memory_bytes: usize,
}

/// Errors from compiling a component into a runnable task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The bytes are not a valid WebAssembly component (a core module, say, or garbage).
    #[error("not a valid WebAssembly component: {0:#}")]
    Invalid(wasmtime::Error),
    /// The component is valid but does not fit the `taskhost:task` world: it lacks the `run`
    /// export or imports something the host does not provide.
    #[error("the component does not implement the taskhost:task world: {0:#}")]
    WrongWorld(wasmtime::Error),
}

/// Errors from setting up the engine.
#[derive(Debug, thiserror::Error)]
#[error("could not set up the wasmtime engine: {0:#}")]
pub struct EngineError(#[from] wasmtime::Error);

/// A component compiled and linked against the host, ready to instantiate per job.
#[derive(Clone)]
pub struct CompiledTask {
    pre: TaskPre<HostState>,
}

/// The one wasmtime engine of the host, with its linker and epoch ticker.
pub struct TaskEngine {
    engine: Engine,
    linker: Linker<HostState>,
    _ticker: Arc<EpochTicker>,
}

impl TaskEngine {
    /// Creates the engine, links WASI (granting no files, network or environment) and the
    /// taskhost host interface, and starts the epoch ticker.
    pub fn new() -> Result<Self, EngineError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Task::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;

        let ticker = Arc::new(EpochTicker::start(engine.clone(), EPOCH_TICK));
        Ok(Self {
            engine,
            linker,
            _ticker: ticker,
        })
    }

    /// Compiles a component with Cranelift and checks it against the `task` world.
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledTask, CompileError> {
        let component = Component::new(&self.engine, bytes).map_err(CompileError::Invalid)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(CompileError::WrongWorld)?;
        let pre = TaskPre::new(instance_pre).map_err(CompileError::WrongWorld)?;
        Ok(CompiledTask { pre })
    }

    /// Runs one job: a fresh instance in a fresh store, `input` (JSON text) in, an outcome
    /// out. Traps and limits end up in the outcome, never as a panic of the host.
    pub fn run(&self, task: &CompiledTask, input: &str, limits: Limits) -> Outcome {
        let started = Instant::now();
        let mut store = Store::new(&self.engine, HostState::new(limits));
        store.limiter(|state| state.limiter());
        store.set_epoch_deadline(ticks_for(limits.timeout));
        store.epoch_deadline_trap();

        let result = task
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_run(&mut store, input));
        let state = store.into_data();
        let receipt = Receipt {
            wall: started.elapsed(),
        };
        outcome::classify(result, state, receipt)
    }
}

/// Epoch ticks that cover `timeout`, rounded up so that no job is stopped early.
fn ticks_for(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        assert_eq!(ticks_for(Duration::ZERO), 1);
        assert_eq!(ticks_for(Duration::from_millis(1)), 1);
        assert_eq!(ticks_for(EPOCH_TICK), 1);
        assert_eq!(ticks_for(EPOCH_TICK + Duration::from_nanos(1)), 2);
        assert_eq!(ticks_for(Duration::from_secs(30)), 3000);
    }

    #[test]
    fn garbage_and_core_modules_are_not_components() {
        let engine = TaskEngine::new().unwrap();
        assert!(matches!(
            engine.compile(b"not wasm"),
            Err(CompileError::Invalid(_))
        ));
        // The smallest core module: magic and version 1.
        let core_module = b"\0asm\x01\0\0\0";
        assert!(matches!(
            engine.compile(core_module),
            Err(CompileError::Invalid(_))
        ));
    }
}
