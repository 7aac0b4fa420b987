//! The wasmtime engine and the policy for running one job: compile a component once, then give
//! every job a fresh store with limits, a deadline and nothing of the outside world.
//!
//! The engine knows nothing of names, queues or HTTP: [`TaskEngine::compile`] turns bytes into
//! a [`CompiledTask`], and [`TaskEngine::run`] runs one input through it and says how it went.

mod bindings;
mod limiter;
mod outcome;
mod state;
mod stop;
mod ticker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

pub use outcome::{ErrorCode, JobError, JobLog, LogLevel, LogLine, Outcome, Receipt};
pub use stop::CancelToken;

use bindings::{Task, TaskPre};
use state::HostState;
use ticker::EpochTicker;

/// How often the epoch advances. A job's deadline and its cancellation are checked at each
/// tick, so a job is stopped at most one tick after its deadline or its cancellation; 10 ms
/// keeps that small while the ticker thread wakes only 100 times a second.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Settings of the engine that hold for every job (they change the generated code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineSettings {
    /// Count fuel, so that jobs get deterministic CPU budgets and report what they used.
    /// Costs some speed; off means `fuel` limits cannot be set.
    pub fuel_metering: bool,
    /// Largest wasm stack of a job, in bytes; deeper recursion fails with `stack_overflow`.
    pub max_wasm_stack: usize,
}

/// Limits applied to one job's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time the job may run before it is stopped with `timeout`.
    pub timeout: Duration,
    /// Fuel the job may consume before it is stopped with `fuel_exhausted`; `None` is no
    /// limit. Only counted when the engine meters fuel.
    pub fuel: Option<u64>,
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
    settings: EngineSettings,
    _ticker: Arc<EpochTicker>,
}

impl TaskEngine {
    /// Creates the engine, links WASI (granting no files, network or environment) and the
    /// taskhost host interface, and starts the epoch ticker.
    pub fn new(settings: EngineSettings) -> Result<Self, EngineError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(settings.fuel_metering);
        config.max_wasm_stack(settings.max_wasm_stack);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Task::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;

        let ticker = Arc::new(EpochTicker::start(engine.clone(), EPOCH_TICK));
        Ok(Self {
            engine,
            linker,
            settings,
            _ticker: ticker,
        })
    }

    /// The settings this engine was created with.
    pub fn settings(&self) -> EngineSettings {
        self.settings
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
    /// out. Limits, traps and cancellation end up in the outcome, never as a panic of the
    /// host.
    pub fn run(
        &self,
        task: &CompiledTask,
        input: &str,
        limits: Limits,
        cancel: CancelToken,
    ) -> Outcome {
        let started = Instant::now();
        let state = HostState::new(limits.memory_bytes, started + limits.timeout, cancel);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every tick, check for cancellation and the deadline.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|context| match context.data().stop_reason() {
            Some(reason) => Err(reason.into()),
            None => Ok(UpdateDeadline::Continue(1)),
        });
        let fuel_given = limits.fuel.unwrap_or(u64::MAX);
        if self.settings.fuel_metering {
            store
                .set_fuel(fuel_given)
                .expect("fuel is enabled on this engine");
        }

        let result = task
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_run(&mut store, input));

        let fuel_consumed = self
            .settings
            .fuel_metering
            .then(|| fuel_given - store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let receipt = Receipt {
            wall: started.elapsed(),
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak_memory,
        };
        outcome::classify(result, state, limits, receipt)
    }
}

#[cfg(test)]
impl TaskEngine {
    /// An engine with the CLI's default settings.
    pub(crate) fn for_tests() -> Self {
        Self::new(EngineSettings {
            fuel_metering: true,
            max_wasm_stack: 512 << 10,
        })
        .expect("creating an engine")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_core_modules_are_not_components() {
        let engine = TaskEngine::for_tests();
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
