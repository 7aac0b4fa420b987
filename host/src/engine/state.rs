//! What a job's store holds: its WASI context (granting nothing), its limits, and what the
//! task told the host through the `host` interface.

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Limits;
use super::bindings::taskhost::task::{host, types};
use super::outcome::{JobLog, LogLevel};

/// A task may have this many instances, tables and memories in its store: enough for any
/// component built by the SDK (which uses one of each per core module), not for a bomb.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Longest panic message kept, in bytes.
const MAX_PANIC_MESSAGE: usize = 4 * 1024;

/// The data of one job's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    pub(crate) log: JobLog,
    pub(crate) panic_message: Option<String>,
}

impl HostState {
    /// State for a new job: no arguments, environment, files, sockets or stdin; stdout and
    /// stderr discarded.
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(MAX_INSTANCES)
                .tables(MAX_TABLES)
                .memories(MAX_MEMORIES)
                .table_elements(MAX_TABLE_ELEMENTS)
                .build(),
            log: JobLog::default(),
            panic_message: None,
        }
    }

    /// The resource limiter the store consults before growing memories and tables.
    pub(crate) fn limiter(&mut self) -> &mut StoreLimits {
        &mut self.limits
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => LogLevel::Trace,
            host::Level::Debug => LogLevel::Debug,
            host::Level::Info => LogLevel::Info,
            host::Level::Warn => LogLevel::Warn,
            host::Level::Error => LogLevel::Error,
        };
        tracing::debug!(target: "taskhost::task", ?level, "{message}");
        self.log.push(level, message);
    }

    fn panicked(&mut self, mut message: String) {
        super::outcome::truncate_at_char(&mut message, MAX_PANIC_MESSAGE);
        self.panic_message = Some(message);
    }
}

impl types::Host for HostState {}
