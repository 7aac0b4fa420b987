//! The wasmtime engine and the policy for running one job: compile a component once, then give
//! every job a fresh store with limits, a deadline and nothing of the outside world.
//!
//! The engine knows nothing of names, queues or HTTP: [`ComponentLimits::check`] says whether
//! it agrees to compile some bytes; [`TaskEngine::compile_here`] (or a compiler process, see
//! `compile`) turns them into code, which [`TaskEngine::link`] makes a [`CompiledTask`];
//! [`TaskEngine::run`] (on an engine thread) and [`TaskEngine::run_async`] (on the IO
//! executor) run one input through it and say how it went.

mod allocation;
mod bindings;
mod cpu;
mod fuel;
mod imports;
mod json;
mod limiter;
mod log;
mod manifest;
mod outcome;
mod output;
mod state;
mod stop;
mod ticker;
mod validate;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

pub use allocation::{Allocation, POOL_SLOT_BYTES, PoolSettings, PoolStatus};
pub use fuel::{FuelMetering, Metering};
pub use json::RawJson;
pub use log::{JobLog, LiveCursor, LiveLog, LogLevel, LogLimits, LogLine, LogStream, Progress};
pub use manifest::{Manifest, ManifestError};
pub use outcome::{ErrorCode, JobError, Outcome, Receipt};
pub use tokio_util::sync::CancellationToken as CancelToken;
pub use validate::{ComponentLimits, Limit, OverLimit};

use crate::egress::{HttpAllowList, HttpTrust};
use bindings::{io, sync};
use imports::Imports;
use state::HostState;
use stop::Stopped;
use ticker::EpochTicker;

/// How often the epoch advances. A running job checks for cancellation at each tick, and an
/// IO-bound job yields to the executor at each tick, so a cancelled job stops within a tick
/// and no job holds an executor thread longer than one; 10 ms keeps both small while the
/// ticker thread wakes only 100 times a second. (Deadlines do not wait for a tick: the epoch
/// also advances at each running job's deadline.)
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How long the epoch ticker goes on ticking after the last job ends, before it sleeps until
/// the next job: long enough that a steady stream of short jobs never has to wake it.
const TICKER_IDLE_AFTER: Duration = Duration::from_secs(1);

thread_local! {
    /// The executor on which an engine thread runs a job that can wait: see [`TaskEngine::run`].
    static THREAD_EXECUTOR: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting an engine thread's executor");
}

/// Settings of the engine that hold for every job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSettings {
    /// Which jobs count fuel, so that they get deterministic CPU budgets and report what
    /// they used: metered code costs some speed ([`FuelMetering`]).
    pub fuel_metering: FuelMetering,
    /// Largest wasm stack of a job, in bytes; deeper recursion fails with `stack_overflow`.
    pub max_wasm_stack: usize,
    /// The instance pool, or `None` to allocate instances on demand.
    pub pool: Option<PoolSettings>,
    /// Hosts tasks may send HTTP requests to (none by default).
    pub http_allowed: HttpAllowList,
    /// The certificate authorities HTTPS requests trust (the Mozilla roots by default).
    pub http_trust: HttpTrust,
    /// How much of its log (SDK lines, stdout, stderr) a job keeps.
    pub log: LogLimits,
}

impl EngineSettings {
    /// The settings that shape compiled code of `metering`.
    pub(crate) fn code(&self, metering: Metering) -> CodeSettings {
        CodeSettings {
            fuel_metering: metering == Metering::Metered,
            max_wasm_stack: self.max_wasm_stack,
        }
    }
}

impl Default for EngineSettings {
    /// The settings of `taskhost serve` without flags: fuel metered for jobs with a budget,
    /// a 512 KiB wasm stack, the instance pool, no outgoing HTTP, the Mozilla roots,
    /// [`LogLimits::DEFAULT`].
    fn default() -> Self {
        Self {
            fuel_metering: FuelMetering::OnDemand,
            max_wasm_stack: 512 << 10,
            pool: Some(PoolSettings::default()),
            http_allowed: HttpAllowList::default(),
            http_trust: HttpTrust::default(),
            log: LogLimits::DEFAULT,
        }
    }
}

/// Limits applied to one job's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time the job may run before it is stopped with `timeout`.
    pub timeout: Duration,
    /// Fuel the job may consume before it is stopped with `fuel_exhausted`; `None` is no
    /// limit. A budget needs metered code ([`FuelMetering::for_budget`]).
    pub fuel: Option<u64>,
    /// Most memory the job's linear memories and tables may take together, in bytes.
    pub memory_bytes: usize,
    /// Largest output the job may return, in bytes; a larger one fails it with
    /// `output_too_large`.
    pub max_output_bytes: usize,
}

/// How a job runs: on an engine thread, or on the async IO executor.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// CPU-bound: runs to completion on an engine thread.
    Cpu,
    /// IO-bound: runs on the async executor and yields while it waits.
    Io,
}

/// Where a task's default [`Kind`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindSource {
    /// The task declares it in its manifest: `#[taskhost_sdk::task(kind = "io")]`.
    Declared,
    /// The task declares none; its imports decide (see `IO_IMPORTS`).
    Imports,
}

/// Errors from compiling a component into a runnable task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The bytes are not WebAssembly at all: empty, text, anything else.
    #[error("not a WebAssembly component: {0}")]
    NotWasm(&'static str),
    /// The bytes are a core WebAssembly module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build tasks for wasm32-wasip2 \
         (tasks/build.sh does), or wrap a module with `wasm-tools component new`"
    )]
    CoreModule,
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0:#}")]
    Invalid(wasmtime::Error),
    /// The component is valid but does not fit the `taskhost:task` world: it lacks the `run`
    /// export or imports something the host does not provide.
    #[error("the component does not implement the taskhost:task world: {0:#}")]
    WrongWorld(wasmtime::Error),
    /// The component's manifest (what the task declares about itself) is malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The component instantiates more of something than a task may have.
    #[error("the component instantiates {found} {what}; a task may have at most {max}")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// How many the component instantiates.
        found: u32,
        /// How many a task may have.
        max: u32,
    },
    /// The task declares `memoize` but can observe the outside world, so the same input may
    /// give a different result.
    #[error(
        "the task declares #[task(memoize)], but the same input may give it a different result: \
         it imports {}. Drop `memoize`, or stop using them (a HashMap's random seed is \
         wasi:random/insecure-seed: use a BTreeMap or a fixed hasher)",
        .0.join(", ")
    )]
    MemoizeNotDeterministic(Vec<String>),
    /// The component is over a limit of what this host compiles ([`ComponentLimits`]).
    #[error(transparent)]
    OverLimit(#[from] OverLimit),
    /// Compiling went past its deadline, and was stopped.
    #[error(
        "compiling the component took longer than {} ms (--compile-timeout-ms), so it was \
         stopped: the component is too large or too complex to compile here",
        .0.as_millis()
    )]
    TimedOut(Duration),
    /// Compiling needed more memory than it may have, and was stopped.
    #[error(
        "compiling the component needed more than {} MiB of memory (--compile-memory-mib), \
         so it was stopped",
        .0 >> 20
    )]
    OutOfMemory(u64),
    /// The component compiles, but an instance of it does not fit this host's instance pool
    /// (a table too large from the start, more state in one core instance than a slot holds):
    /// wasmtime's reason, which names what.
    #[error("the component does not fit this host's instance pool: {0}")]
    DoesNotFit(String),
    /// The compiled code is larger than this host keeps (bytes).
    #[error("the compiled component is larger than {} MiB (--max-artifact-mib)", .0 >> 20)]
    ArtifactTooLarge(u64),
    /// The compiler stopped without a result (it crashed): what it said.
    #[error("the compiler failed on this component: {0}")]
    CompilerFailed(String),
    /// The compiler could not be run: a problem of the host, not of the component.
    #[error("could not run the compiler: {0}")]
    CompilerUnavailable(#[source] std::io::Error),
}

/// What of the engine's settings shapes the code it compiles: a compiler in another process
/// creates its engine from exactly these (see `compiling_engine`), or its artifacts do not
/// load here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSettings {
    /// Whether the code counts fuel ([`Metering::Metered`]).
    pub fuel_metering: bool,
    /// [`EngineSettings::max_wasm_stack`].
    pub max_wasm_stack: usize,
}

/// The wasmtime configuration for code of `code`'s settings, for the host's engine and for
/// compilers alike.
fn code_config(code: CodeSettings) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.consume_fuel(code.fuel_metering);
    config.max_wasm_stack(code.max_wasm_stack);
    config
}

/// An engine that only compiles, on the calling thread, code that an engine of `code`'s
/// settings loads: for a compiler in a process of its own. (Neither the allocation strategy
/// nor parallel compilation changes the code.)
pub(crate) fn compiling_engine(code: CodeSettings) -> Result<Engine, EngineError> {
    let mut config = code_config(code);
    config.parallel_compilation(false);
    Ok(Engine::new(&config)?)
}

/// Errors from setting up the engine.
#[derive(Debug, thiserror::Error)]
#[error("could not set up the wasmtime engine: {0:#}")]
pub struct EngineError(#[from] wasmtime::Error);

/// A component compiled and linked against the host, ready to instantiate per job, on
/// either path.
#[derive(Clone)]
pub struct CompiledTask {
    component: Component,
    sync: sync::TaskPre<HostState>,
    io: io::TaskPre<HostState>,
    imports: Imports,
    manifest: Manifest,
    memories: u32,
    metering: Metering,
    pooled: bool,
}

impl CompiledTask {
    /// The compiled code, serialized, for the disk cache.
    pub fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        self.component.serialize()
    }

    /// The linear memories a job of the component takes from the instance pool: as many as
    /// each instance has, or none when its engine allocates on demand. The two engines'
    /// pools have as many slots each, and the scheduler counts the slots taken from both
    /// against one pool's: so neither pool ever runs out.
    pub fn pool_memories(&self) -> u32 {
        if self.pooled { self.memories } else { 0 }
    }

    /// Whether the code counts fuel.
    pub fn metering(&self) -> Metering {
        self.metering
    }

    /// The interfaces the component imports, sorted.
    pub fn imports(&self) -> &[String] {
        &self.imports.interfaces
    }

    /// How the component runs unless a job says otherwise, and why: the kind its manifest
    /// declares, else IO-bound if it imports an interface that can wait (a clock's or the
    /// network's), else CPU-bound.
    pub fn default_kind(&self) -> (Kind, KindSource) {
        match self.manifest.kind {
            Some(kind) => (kind, KindSource::Declared),
            None if self.imports.can_wait => (Kind::Io, KindSource::Imports),
            None => (Kind::Cpu, KindSource::Imports),
        }
    }

    /// The functions the component imports that can observe the world outside its input
    /// (clocks, randomness, the network), as `interface#function`. When there are none, the
    /// same input always gives the same result, so results can be memoized.
    pub fn outside_world_imports(&self) -> &[String] {
        &self.imports.outside_world
    }

    /// Whether the task's results are memoized unless a job says otherwise: it declares
    /// `#[task(memoize)]` (and, having loaded, imports nothing of the outside world).
    pub fn memoize_by_default(&self) -> bool {
        self.manifest.memoize
    }
}

/// A task may declare `memoize` only if nothing outside its input can change its result.
fn check_memoize(manifest: &Manifest, imports: &Imports) -> Result<(), CompileError> {
    if manifest.memoize && !imports.outside_world.is_empty() {
        return Err(CompileError::MemoizeNotDeterministic(
            imports.outside_world.clone(),
        ));
    }
    Ok(())
}

/// A task may instantiate no more memories and tables than a store (and the instance pool)
/// lets it have; returns how many memories it instantiates.
fn check_resources(component: &Component) -> Result<u32, CompileError> {
    // `None` only for a component that imports core modules, which the world does not offer.
    let Some(required) = component.resources_required() else {
        return Ok(limiter::MAX_MEMORIES as u32);
    };
    let within = |what, found: u32, max: usize| match found as usize > max {
        true => Err(CompileError::TooMany {
            what,
            found,
            max: max as u32,
        }),
        false => Ok(found),
    };
    within("tables", required.num_tables, limiter::MAX_TABLES)?;
    within(
        "linear memories",
        required.num_memories,
        limiter::MAX_MEMORIES,
    )
}

/// The outcome of a job with a fuel budget given code that counts no fuel, which would run
/// it unbounded: the caller should have picked the task's metered code
/// ([`FuelMetering::for_budget`]), so this is a bug of the host.
fn refuse_unmetered_budget(task: &CompiledTask, limits: Limits) -> Option<Outcome> {
    if limits.fuel.is_none() || task.metering == Metering::Metered {
        return None;
    }
    tracing::error!("a job with a fuel budget was given unmetered code");
    Some(Outcome::failed(JobError {
        code: ErrorCode::Internal,
        message: "the host gave this job code that counts no fuel, so its fuel budget could not \
                  hold; it has been logged"
            .into(),
    }))
}

/// The outside world's hold on one job: the token that stops it, and the log and progress it
/// writes, live. Cheap to clone.
#[derive(Clone, Debug)]
pub struct JobControl {
    /// Cancelling it stops the job at its next epoch tick, or in the middle of a wait.
    pub(crate) cancel: CancelToken,
    /// The job's log and progress, as it writes them.
    pub(crate) log: LiveLog,
}

/// One wasmtime engine, for one kind of code, with its linkers for both paths.
struct Runtime {
    engine: Engine,
    sync_linker: Linker<HostState>,
    io_linker: Linker<HostState>,
    allocation: Allocation,
}

impl Runtime {
    /// An engine for code of `code`'s settings, its instances from `pool` (or on demand),
    /// linking WASI (granting no files, sockets or environment), outgoing HTTP and the
    /// taskhost host interface.
    fn new(code: CodeSettings, pool: Option<PoolSettings>) -> Result<Self, EngineError> {
        let mut config = code_config(code);
        let (engine, allocation) = allocation::create_engine(&mut config, pool)?;
        let mut sync_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut sync_linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut sync_linker)?;
        sync::Task::add_to_linker::<HostState, HasSelf<HostState>>(&mut sync_linker, |s| s)?;
        let mut io_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut io_linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut io_linker)?;
        io::Task::add_to_linker::<HostState, HasSelf<HostState>>(&mut io_linker, |s| s)?;
        Ok(Self {
            engine,
            sync_linker,
            io_linker,
            allocation,
        })
    }
}

/// The host's wasmtime engines (one for the code every task compiles to, one more for the
/// metered code some jobs ask for, see [`FuelMetering`]) with their epoch ticker.
pub struct TaskEngine {
    /// The engine of [`FuelMetering::default_code`], with the instance pool.
    default: Runtime,
    /// The engine of [`FuelMetering::on_demand_code`], if any, with a pool of its own
    /// ([`PoolSettings::half`]).
    on_demand: Option<Runtime>,
    settings: EngineSettings,
    ticker: EpochTicker,
}

impl TaskEngine {
    /// Creates the engines, links WASI (granting no files, sockets or environment), outgoing
    /// HTTP (to allowed hosts only) and the taskhost host interface, and starts the epoch
    /// ticker.
    pub fn new(settings: EngineSettings) -> Result<Self, EngineError> {
        let metering = settings.fuel_metering;
        // With code of a second kind, two pools share the resident budget.
        let pool = match metering.on_demand_code() {
            Some(_) => settings.pool.map(PoolSettings::half),
            None => settings.pool,
        };
        let default = Runtime::new(settings.code(metering.default_code()), pool)?;
        // Only beside a pool that could be reserved: the scheduler counts the slots of both
        // as one pool's (see `CompiledTask::pool_memories`).
        let second_pool = pool.filter(|_| default.allocation.pool_memories().is_some());
        let on_demand = metering
            .on_demand_code()
            .map(|code| Runtime::new(settings.code(code), second_pool))
            .transpose()?;
        let engines = std::iter::once(&default)
            .chain(&on_demand)
            .map(|runtime| runtime.engine.clone())
            .collect();
        let ticker = EpochTicker::start(
            engines,
            EPOCH_TICK,
            TICKER_IDLE_AFTER,
            crate::heap::give_back_freed,
        );
        Ok(Self {
            default,
            on_demand,
            settings,
            ticker,
        })
    }

    /// The settings this engine was created with.
    pub(crate) fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// The engine of code of `metering`, if this host runs such code.
    fn runtime(&self, metering: Metering) -> Option<&Runtime> {
        let modes = self.settings.fuel_metering;
        if metering == modes.default_code() {
            Some(&self.default)
        } else {
            self.on_demand.as_ref()
        }
    }

    /// How this engine allocates the instances of most jobs (the pool may have fallen back
    /// to on demand).
    pub(crate) fn allocation(&self) -> &Allocation {
        &self.default.allocation
    }

    /// What the instance pools (one, or two with fuel-metered code on demand) hold now,
    /// together; `None` without a pool.
    pub(crate) fn pool_status(&self) -> Option<PoolStatus> {
        let runtimes = std::iter::once(&self.default).chain(&self.on_demand);
        allocation::pool_status(runtimes.map(|runtime| &runtime.engine))
    }

    /// Compiles a component to code of `metering` with Cranelift, on the calling thread, with
    /// no bound on its time or memory: for bytes that passed [`ComponentLimits::check`], where
    /// no compiler process is at hand. A component that compiles but whose instances do not
    /// fit the instance pool is [`CompileError::DoesNotFit`], as it is from a compiler process.
    pub(crate) fn compile_here(
        &self,
        bytes: &[u8],
        metering: Metering,
    ) -> Result<Component, CompileError> {
        let engine = self.wasmtime(metering)?;
        Component::new(engine, bytes).map_err(|error| {
            // The pool refuses such a component only once it is compiled; telling it from an
            // invalid one takes a compile without the pool (on this failure path only).
            let fits_nowhere = compiling_engine(self.settings.code(metering))
                .map_or(true, |engine| Component::new(&engine, bytes).is_err());
            if fits_nowhere {
                CompileError::Invalid(error)
            } else {
                CompileError::DoesNotFit(format!("{error:#}"))
            }
        })
    }

    /// [`compile_here`](TaskEngine::compile_here)s a component to the code jobs run by default
    /// and [`link`](TaskEngine::link)s it with its manifest: the whole way from trusted bytes
    /// to a task, unbounded (the host itself loads through the cache, which validates and
    /// compiles within bounds).
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledTask, CompileError> {
        let metering = self.settings.fuel_metering.default_code();
        self.link(self.compile_here(bytes, metering)?, Manifest::read(bytes)?)
    }

    /// The wasmtime engine of code of `metering`, for loading artifacts compiled earlier.
    pub(crate) fn wasmtime(&self, metering: Metering) -> Result<&Engine, CompileError> {
        self.runtime(metering)
            .map(|runtime| &runtime.engine)
            .ok_or_else(|| {
                CompileError::CompilerUnavailable(std::io::Error::other(format!(
                    "this host runs no {metering:?} code (--fuel-metering {:?})",
                    self.settings.fuel_metering
                )))
            })
    }

    /// Checks a compiled component against the `task` world and links it for both paths;
    /// `manifest` is what the component's bytes declare ([`Manifest::read`]).
    pub(crate) fn link(
        &self,
        component: Component,
        manifest: Manifest,
    ) -> Result<CompiledTask, CompileError> {
        let (metering, runtime) = [Metering::Unmetered, Metering::Metered]
            .into_iter()
            .find_map(|metering| {
                self.runtime(metering)
                    .filter(|runtime| Engine::same(&runtime.engine, component.engine()))
                    .map(|runtime| (metering, runtime))
            })
            .expect("a component compiled by one of this host's engines");
        let sync_pre = runtime
            .sync_linker
            .instantiate_pre(&component)
            .map_err(CompileError::WrongWorld)?;
        let io_pre = runtime
            .io_linker
            .instantiate_pre(&component)
            .map_err(CompileError::WrongWorld)?;
        let imports = Imports::of(&component, &runtime.engine);
        check_memoize(&manifest, &imports)?;
        let memories = check_resources(&component)?;
        Ok(CompiledTask {
            component,
            sync: sync::TaskPre::new(sync_pre).map_err(CompileError::WrongWorld)?,
            io: io::TaskPre::new(io_pre).map_err(CompileError::WrongWorld)?,
            imports,
            manifest,
            memories,
            metering,
            pooled: runtime.allocation.pool_memories().is_some(),
        })
    }

    /// The control of a new job: not cancelled, its log empty, bounded by this engine's
    /// log limits.
    pub fn job_control(&self) -> JobControl {
        JobControl {
            cancel: CancelToken::new(),
            log: LiveLog::new(self.settings.log),
        }
    }

    /// Runs one CPU-bound job on the calling thread: a fresh instance in a fresh store,
    /// `input` (JSON text) in, an outcome out. Limits, traps and cancellation end up in the
    /// outcome, never as a panic of the host. Must not be called on an async executor's
    /// thread.
    ///
    /// A component that can wait (on a clock or the network) runs through the async API
    /// instead, on a small executor of this thread's own: a wait inside a host call is then
    /// stopped by the job's deadline or cancellation, as on the IO executor, rather than
    /// holding the thread for as long as the wait lasts.
    pub fn run(
        &self,
        task: &CompiledTask,
        input: &str,
        limits: Limits,
        control: JobControl,
    ) -> Outcome {
        if let Some(refused) = refuse_unmetered_budget(task, limits) {
            return refused;
        }
        if task.imports.can_wait {
            return THREAD_EXECUTOR
                .with(|executor| executor.block_on(self.run_async(task, input, limits, control)));
        }
        let started = Instant::now();
        let cpu_before = cpu::thread_time();
        let mut store = self.new_store(task, limits, control, false);
        let result = task
            .sync
            .instantiate(&mut store)
            .and_then(|instance| instance.call_run(&mut store, input));
        let cpu = cpu::thread_time().saturating_sub(cpu_before);
        self.outcome(task, store, result, started, cpu, limits)
    }

    /// Runs one IO-bound job on the async executor. It yields at every epoch tick while it
    /// computes, and while it waits (on a clock, say) its deadline and cancellation still
    /// stop it at once.
    pub(crate) async fn run_async(
        &self,
        task: &CompiledTask,
        input: &str,
        limits: Limits,
        control: JobControl,
    ) -> Outcome {
        if let Some(refused) = refuse_unmetered_budget(task, limits) {
            return refused;
        }
        let started = Instant::now();
        let cancel = control.cancel.clone();
        let mut store = self.new_store(task, limits, control, true);
        let call = async {
            let instance = task.io.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, input).await
        };
        let deadline = tokio::time::Instant::from_std(started + limits.timeout);
        let stopped = async {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => Stopped::Timeout,
                () = cancel.cancelled() => Stopped::Cancelled,
            }
        };
        let (result, cpu) = cpu::timed(async {
            tokio::select! {
                result = call => result,
                stopped = stopped => Err(stopped.into()),
            }
        })
        .await;
        self.outcome(task, store, result, started, cpu, limits)
    }

    /// A store for one job of `task`: its limiter, fuel (if the code counts it), and an
    /// epoch callback that stops the job on cancellation or deadline, and otherwise continues
    /// (or, with `yield_on_tick`, first yields to the async executor).
    fn new_store(
        &self,
        task: &CompiledTask,
        limits: Limits,
        control: JobControl,
        yield_on_tick: bool,
    ) -> Store<HostState> {
        let deadline = Instant::now() + limits.timeout;
        let mut store = Store::new(
            task.component.engine(),
            HostState::new(
                limits.memory_bytes,
                deadline,
                self.ticker.alarm(deadline),
                control.cancel,
                self.settings.http_allowed.clone(),
                self.settings.http_trust.connector(),
                control.log,
            ),
        );
        store.limiter(|state| &mut state.limiter);
        store.call_hook(|mut context, hook| {
            context.data_mut().host_calls.on(hook);
            Ok(())
        });
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |context| match context.data().stop_reason() {
            Some(reason) => Err(reason.into()),
            None if yield_on_tick => Ok(UpdateDeadline::Yield(1)),
            None => Ok(UpdateDeadline::Continue(1)),
        });
        if task.metering == Metering::Metered {
            store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .expect("fuel is enabled on this engine");
        }
        store
    }

    /// What a finished (or stopped) call amounts to.
    fn outcome(
        &self,
        task: &CompiledTask,
        store: Store<HostState>,
        result: wasmtime::Result<Result<String, bindings::sync::TaskError>>,
        started: Instant,
        cpu: Duration,
        limits: Limits,
    ) -> Outcome {
        // Asked only of metered code: elsewhere `get_fuel` makes an error, which captures a
        // backtrace when RUST_BACKTRACE is set (tens of µs).
        let fuel_consumed = (task.metering == Metering::Metered)
            .then(|| limits.fuel.unwrap_or(u64::MAX) - store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        let receipt = Receipt {
            wall: started.elapsed(),
            cpu,
            host_calls: state.host_calls.total,
            fuel_consumed,
            peak_memory_bytes: state.limiter.peak_memory,
        };
        outcome::classify(result, state, limits, receipt)
    }
}

#[cfg(test)]
impl TaskEngine {
    /// An engine with the CLI's default settings, but no instance pool.
    pub(crate) fn for_tests() -> Self {
        Self::new(EngineSettings {
            pool: None,
            ..EngineSettings::default()
        })
        .expect("creating an engine")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_task_that_cannot_observe_the_outside_world_may_declare_memoize() {
        let engine = TaskEngine::for_tests();
        let wordcount = engine
            .compile(&std::fs::read(taskhost_tests::fixtures::WORDCOUNT).unwrap())
            .unwrap();
        assert!(wordcount.memoize_by_default());
        assert!(wordcount.outside_world_imports().is_empty());

        // grep keys a HashMap, whose seed is random: the same manifest must not load.
        let grep = std::fs::read(taskhost_tests::fixtures::GREP).unwrap();
        let component = Component::new(&engine.default.engine, &grep).unwrap();
        let declaring = Manifest {
            memoize: true,
            ..Manifest::default()
        };
        let error = engine.link(component, declaring).err().unwrap();
        assert!(
            matches!(&error, CompileError::MemoizeNotDeterministic(imports)
                if imports.iter().any(|import| import.starts_with("wasi:random/insecure-seed"))),
            "{error}"
        );
        assert!(error.to_string().contains("#[task(memoize)]"), "{error}");
    }
}
