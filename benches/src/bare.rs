//! The baseline: the least an embedder can do to run a task, straight on wasmtime, with
//! none of taskhost's scheduling, limits or bookkeeping. A fresh store and instance per call,
//! from an `InstancePre`, with WASI p2 linked, as taskhost does.

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "task",
});

/// Which interruption mechanisms the engine compiles in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metering {
    /// Neither: the fastest code, and no way to stop a runaway task.
    None,
    /// Epoch interruption only (wall-clock deadlines): what taskhost runs for jobs with no
    /// fuel budget.
    Epoch,
    /// Epoch interruption and fuel: what taskhost runs for jobs with a fuel budget.
    EpochAndFuel,
}

/// The configuration of an engine compiling code with `metering`'s interruption.
fn metered_config(metering: Metering) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(metering != Metering::None);
    config.consume_fuel(metering == Metering::EpochAndFuel);
    config
}

/// A compiled task on a bare engine.
pub struct Bare {
    engine: Engine,
    pre: TaskPre<State>,
    metering: Metering,
}

/// The bare store's data.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl taskhost::task::host::Host for State {
    fn log(&mut self, _: taskhost::task::host::Level, _: String) {}
    fn progress(&mut self, _: u64, _: Option<u64>, _: Option<String>) {}
    fn panicked(&mut self, _: String) {}
}

impl taskhost::task::types::Host for State {}

impl Bare {
    /// An engine that compiles code with `metering`'s interruption (on-demand allocation).
    pub fn compiler(metering: Metering) -> Engine {
        Engine::new(&metered_config(metering)).unwrap()
    }

    /// Compiles the component at `path`.
    pub fn new(path: &str, metering: Metering, pooling: bool) -> Self {
        let mut config = metered_config(metering);
        if pooling {
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(64)
                .total_core_instances(256)
                .total_memories(64)
                .total_tables(256)
                .max_memory_size(256 << 20);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        Task::add_to_linker::<State, HasSelf<State>>(&mut linker, |state| state).unwrap();
        let component = Component::from_file(&engine, path).unwrap();
        let pre = TaskPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Self {
            engine,
            pre,
            metering,
        }
    }

    /// Instantiates the task in a fresh store and runs it on `input`.
    pub fn run(&self, input: &str) -> String {
        let state = State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        if self.metering != Metering::None {
            store.set_epoch_deadline(u64::MAX);
        }
        if self.metering == Metering::EpochAndFuel {
            store.set_fuel(u64::MAX).unwrap();
        }
        let task = self.pre.instantiate(&mut store).unwrap();
        task.call_run(&mut store, input).unwrap().unwrap()
    }
}
