//! What a job's store holds: its WASI context (granting nothing; stdout and stderr go to the
//! job's log), its outgoing-HTTP hooks (the allow-list), its limits, what the task told the
//! host through the `host` interface, and the time it spent in host calls.

use std::time::{Duration, Instant};

use tokio_rustls::TlsConnector;
use wasmtime::CallHook;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::CancelToken;
use super::bindings::sync::taskhost::task::{host, types};
use super::limiter::JobLimiter;
use super::log::{LiveLog, LogLevel, LogStream, Progress};
use super::output::CapturedOutput;
use super::stop::Stopped;
use super::ticker::Alarm;
use crate::egress::{HttpAllowList, JobHttp};

/// Most bytes one call for random bytes (`wasi:random`) may ask for; a larger call traps
/// instead of making the host allocate it (wasmtime's default is 64 MiB).
const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Most resources (streams, pollables, HTTP requests and bodies, ...) a job may hold at once;
/// one more traps (wasmtime's default is a million, each costing the host memory).
const MAX_RESOURCES: usize = 10_000;

/// Most bytes of HTTP header fields a job may hold in one fields resource.
const MAX_HTTP_FIELDS_BYTES: usize = 64 << 10;

/// The data of one job's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: JobHttp,
    table: ResourceTable,
    pub(crate) limiter: JobLimiter,
    cancel: CancelToken,
    deadline: Instant,
    /// Makes the epoch advance at the deadline, for as long as the job runs.
    _deadline_alarm: Alarm,
    pub(crate) log: LiveLog,
    pub(crate) panic_message: Option<String>,
    pub(crate) host_calls: HostCallTimer,
}

/// Wall-clock time a job spends outside its own code: in host calls (WASI, HTTP, logging,
/// waits) and the runtime's own calls (memory growth, epoch checks).
#[derive(Debug, Default)]
pub(crate) struct HostCallTimer {
    entered: Option<Instant>,
    /// Time spent so far.
    pub(crate) total: Duration,
}

impl HostCallTimer {
    /// Follows the store's transitions between the guest and the host.
    pub(crate) fn on(&mut self, hook: CallHook) {
        match hook {
            CallHook::CallingHost => {
                self.entered.get_or_insert_with(Instant::now);
            }
            CallHook::ReturningFromHost => {
                if let Some(entered) = self.entered.take() {
                    self.total += entered.elapsed();
                }
            }
            CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
        }
    }
}

impl HostState {
    /// State for a new job: no arguments, environment, files, sockets or stdin; stdout and
    /// stderr go to `log`; HTTP requests only to `http_allowed` hosts, over TLS from `tls`.
    pub(crate) fn new(
        memory_limit: usize,
        deadline: Instant,
        deadline_alarm: Alarm,
        cancel: CancelToken,
        http_allowed: HttpAllowList,
        tls: TlsConnector,
        log: LiveLog,
    ) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(CapturedOutput::new(log.clone(), LogStream::Stdout))
            .stderr(CapturedOutput::new(log.clone(), LogStream::Stderr))
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HTTP_FIELDS_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Self {
            wasi,
            http,
            http_hooks: JobHttp::new(http_allowed, tls, deadline, {
                let log = log.clone();
                std::sync::Arc::new(move |notice| log.log(LogLevel::Warn, notice))
            }),
            table,
            limiter: JobLimiter::new(memory_limit),
            cancel,
            deadline,
            _deadline_alarm: deadline_alarm,
            log,
            panic_message: None,
            host_calls: HostCallTimer::default(),
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
        self.log.log(level, message);
    }

    fn progress(&mut self, done: u64, total: Option<u64>, message: Option<String>) {
        self.log.report_progress(Progress {
            done,
            total,
            message,
        });
    }

    fn panicked(&mut self, message: String) {
        self.panic_message = Some(super::outcome::cut_message(message));
    }
}

impl types::Host for HostState {}
