//! What a job's store holds: its WASI context (granting nothing), its outgoing-HTTP hooks
//! (the allow-list), its limits, and what the task told the host through the `host`
//! interface.

use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::CancelToken;
use super::bindings::sync::taskhost::task::{host, types};
use super::http::{HttpAllowList, JobHttp};
use super::limiter::JobLimiter;
use super::outcome::{JobLog, LogLevel};
use super::stop::Stopped;

/// Longest panic message kept, in bytes.
const MAX_PANIC_MESSAGE: usize = 4 * 1024;

/// The data of one job's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: JobHttp,
    table: ResourceTable,
    pub(crate) limiter: JobLimiter,
    cancel: CancelToken,
    deadline: Instant,
    pub(crate) log: JobLog,
    pub(crate) panic_message: Option<String>,
}

impl HostState {
    /// State for a new job: no arguments, environment, files, sockets or stdin; stdout and
    /// stderr discarded; HTTP requests only to `http_allowed` hosts.
    pub(crate) fn new(
        memory_limit: usize,
        deadline: Instant,
        cancel: CancelToken,
        http_allowed: HttpAllowList,
    ) -> Self {
        Self {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            http_hooks: JobHttp::new(http_allowed, deadline),
            table: ResourceTable::new(),
            limiter: JobLimiter::new(memory_limit),
            cancel,
            deadline,
            log: JobLog::default(),
            panic_message: None,
        }
    }

    /// Why the job must stop now, if it must: checked at every epoch tick.
    pub(crate) fn stop_reason(&self) -> Option<Stopped> {
        if self.cancel.is_cancelled() {
            Some(Stopped::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(Stopped::Timeout)
        } else {
            None
        }
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

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
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
