//! The embedding facade: start a host, submit jobs, read, await and cancel them, read its
//! status, shut down. The HTTP API is a thin layer over this; a Rust program can use it
//! directly.

mod batch;
mod dispatch;
mod events;
mod run;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batches::{BatchId, BatchStore};
use crate::cache::{CacheStatus, ComponentCache};
use crate::config::{Config, LimitError, LimitPolicy, RequestedLimits};
use crate::engine::{Kind, TaskEngine};
use crate::idempotency::{Claim, IdempotencyKeys};
use crate::jobs::{Cancelled, JobFilter, JobId, JobRecord, JobStore, RecordFields, Until};
use crate::memo::{MemoCache, MemoKey};
use crate::metrics::Metrics;
use crate::registry::{Catalogue, Lookup};
use crate::scheduler::{Scheduler, SchedulerSettings, Share};
use crate::server::HttpStatus;
use crate::status::{EngineStatus, Parts, Status, TasksStatus, TenantStatus};
use crate::tenants::{
    Auth, Caller, QuotaExceeded, Quotas, SubmissionRates, TenantError, TenantId, TenantView,
    Tenants, TenantsError,
};
use dispatch::Dispatcher;
use run::{Admitted, Memoized, RunJob};

pub use crate::engine::{CompileError, EngineError, Limit, ManifestError, OverLimit};
pub use crate::idempotency::KeyReused;
pub use crate::registry::{
    Problem, Scope, Snapshot, TaskVersion, UploadError, WatchError, is_valid_task_name,
};
pub use crate::scheduler::QueueFull;
pub use batch::{BatchError, BatchRequest};
pub use events::{EventPosition, InvalidPosition, JobEvent, JobEvents};

/// When a tenant at its queued-jobs quota is told to try again: jobs start within moments
/// on a host that is not overloaded.
const QUEUED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The share of the engine threads (or IO slots) of `tenant`'s jobs of `kind`, as its
/// `quotas` set it.
fn share_of(tenant: &TenantId, quotas: &Quotas, kind: Kind) -> Share {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tenant.hash(&mut hasher);
    Share {
        tenant: hasher.finish(),
        weight: quotas.weight.unwrap_or(1).max(1),
        max_running: match kind {
            Kind::Cpu => quotas.max_running_cpu_jobs,
            Kind::Io => quotas.max_running_io_jobs,
        },
    }
}

/// How long cancelling a running job waits for it to stop before answering: a few epoch
/// ticks are enough; this bound only matters if the machine is badly overloaded.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// A request to run a task once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobRequest {
    /// Name of the task to run.
    pub task: String,
    /// The task's input.
    pub input: serde_json::Value,
    /// Limits asked for; the host's defaults fill the rest.
    pub limits: RequestedLimits,
    /// How to run it; `None` takes the task's default: the kind it declares, else the one its
    /// imports suggest ([`CompiledTask::default_kind`](crate::engine::CompiledTask::default_kind)).
    pub kind: Option<Kind>,
    /// The tenant whose job it is (the `default` tenant unless given): only that tenant
    /// sees it, and memoized results are its own.
    pub tenant: TenantId,
    /// Reuse the result of an earlier run of the same component on the same input, if
    /// there is one, instead of running. `Some(true)` asks for it (the task must be
    /// deterministic, and memoization on); `None` does as the task declares
    /// (`#[task(memoize)]`) when memoization is on.
    pub memoize: Option<bool>,
}

/// Errors from starting a host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The wasmtime engine could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The tasks directory could not be loaded.
    #[error(transparent)]
    Tasks(#[from] WatchError),
    /// The cache directory could not be opened.
    #[error("cannot open the cache directory {dir}: {source}")]
    Cache {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The IO executor could not be started.
    #[error("could not start the IO executor: {0}")]
    Executor(#[from] std::io::Error),
    /// The tenants of the data directory could not be read or created.
    #[error("cannot open the tenants: {0}")]
    Tenants(#[from] TenantsError),
}

/// Errors from submitting a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// No task has this name.
    #[error("no task named {}{}", crate::echo::echo(name), match problem {
        Some(problem) => format!(" (its file did not load: {})", problem.error),
        None => String::new(),
    })]
    UnknownTask {
        /// The name asked for.
        name: String,
        /// Why the file of that name, if there is one, is not served.
        problem: Option<Problem>,
    },
    /// The idempotency key was used before for a different request.
    #[error(transparent)]
    KeyReused(#[from] KeyReused),
    /// The idempotency key's job is so old that its record is forgotten.
    #[error("the job of Idempotency-Key {0:?} is too old to be remembered; use a new key")]
    KeyExpired(String),
    /// The task's file is still being compiled for the first time.
    #[error("task {0:?} is still loading; try again in a moment")]
    TaskLoading(String),
    /// A memoized result was asked of a task that can observe the outside world.
    #[error(
        "task {task:?} cannot be memoized: it imports {}, so the same input may give a \
         different result",
        imports.join(", ")
    )]
    NotDeterministic {
        /// The task.
        task: String,
        /// The functions it imports that observe the outside world.
        imports: Vec<String>,
    },
    /// Memoization is turned off (`--memo-cache-mib 0`).
    #[error("memoization is turned off on this server (--memo-cache-mib 0)")]
    MemoOff,
    /// A requested limit is not allowed.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The queue is full.
    #[error(transparent)]
    QueueFull(#[from] QueueFull),
    /// Over one of the tenant's quotas.
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
}

/// Errors from cancelling a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// No job has this id.
    #[error("no job with id {0}")]
    NotFound(JobId),
    /// The job had already finished.
    #[error("job {} already finished", .0.id)]
    AlreadyFinished(Box<JobRecord>),
}

/// What shutting down did with the jobs still in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainReport {
    /// Whether every accepted job finished within the drain timeout.
    pub drained: bool,
    /// Jobs cancelled because they had not finished by then.
    pub cancelled: usize,
    /// Jobs that, cancelled, had still not stopped after [`STOP_GRACE`]: their records may
    /// still say `running`. Zero unless a host call ignores cancellation.
    pub unstopped: usize,
}

/// How long jobs cancelled at shutdown have to stop and record it: a running job stops at its
/// next epoch tick, or at once if it is waiting in a host call, so this is a bound, not a wait.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running task host.
pub struct Host {
    engine: Arc<TaskEngine>,
    cache: Arc<ComponentCache>,
    /// The shared tasks and each tenant's own.
    catalogue: Catalogue,
    idempotency: IdempotencyKeys,
    max_upload_bytes: usize,
    jobs: Arc<JobStore>,
    /// Results of deterministic tasks; `None` when memoization is off.
    memo: Option<Arc<MemoCache>>,
    batches: BatchStore,
    scheduler: Arc<Scheduler>,
    /// Hands jobs to the scheduler, compiling first the code some need.
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<Metrics>,
    limits: LimitPolicy,
    max_wait: Duration,
    drain_timeout: Duration,
    /// Cancelled when the host begins to shut down: ends event streams.
    stopping: tokio_util::sync::CancellationToken,
    /// Who may call the API.
    tenants: Tenants,
    /// Each tenant's submissions, against its rate.
    rates: SubmissionRates,
    /// Whether requests need API keys.
    auth: Auth,
}

impl Host {
    /// Sets up the engine, starts loading the tasks directory (in the background unless
    /// `config.tasks.wait_until_loaded`) and starts the engine threads.
    pub fn start(config: &Config) -> Result<Self, StartError> {
        if config.auth == Auth::Off {
            tracing::warn!(
                listen = %config.listen,
                "authentication is off (--auth off): requests without a key act as the operator \
                 and the default tenant"
            );
        }
        let tenants = Tenants::open(&config.data_dir, config.tenants.clone())?;
        let engine = Arc::new(TaskEngine::new(config.engine.clone())?);
        let scheduler = Scheduler::start(SchedulerSettings {
            pool_memories: engine.allocation().pool_memories(),
            ..config.scheduler
        })?;
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(
            ComponentCache::open(
                engine.clone(),
                config.compile.clone(),
                config.max_cached_components,
                &config.cache_dir,
                metrics.clone(),
            )
            .map_err(|source| StartError::Cache {
                dir: config.cache_dir.clone(),
                source,
            })?,
        );
        let catalogue = Catalogue::open(
            &config.tasks,
            config.data_dir.join("tenants"),
            tenants.list().into_iter().map(|tenant| tenant.id),
            cache.clone(),
            metrics.clone(),
        )?;
        let scheduler = Arc::new(scheduler);
        Ok(Self {
            dispatcher: Arc::new(Dispatcher::new(scheduler.clone(), cache.clone())),
            engine,
            cache,
            catalogue,
            idempotency: IdempotencyKeys::new(config.max_finished_jobs),
            max_upload_bytes: config.max_upload_bytes,
            jobs: Arc::new(JobStore::new(
                config.max_finished_jobs,
                config.max_records_bytes,
            )),
            memo: (config.memo_cache_bytes > 0)
                .then(|| Arc::new(MemoCache::new(config.memo_cache_bytes))),
            batches: BatchStore::default(),
            scheduler,
            metrics,
            limits: config.limits,
            max_wait: config.max_wait,
            drain_timeout: config.drain_timeout,
            stopping: Default::default(),
            tenants,
            rates: SubmissionRates::default(),
            auth: config.auth,
        })
    }

    /// Whether requests need API keys.
    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// Who holds the API key `key`, if anyone does.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        self.tenants.authenticate(key)
    }

    /// The tenants, to manage.
    pub fn tenants(&self) -> &Tenants {
        &self.tenants
    }

    /// Creates the tenant `id` with `quotas`, and an empty namespace of tasks of its own.
    pub fn create_tenant(&self, id: TenantId, quotas: Quotas) -> Result<TenantView, TenantError> {
        let tenant = self.tenants.create(id, quotas)?;
        if let Err(error) = self.catalogue.add_tenant(&tenant.id) {
            // Its uploads will be refused until a restart makes the directory.
            tracing::error!(tenant = tenant.id.as_str(), %error, "cannot make the tenant's tasks directory");
        }
        Ok(tenant)
    }

    /// Replaces the quotas of the tenant `id`, from the next request on.
    pub fn set_quotas(&self, id: &TenantId, quotas: Quotas) -> Result<TenantView, TenantError> {
        let tenant = self.tenants.set_quotas(id, quotas)?;
        self.rates.forget(id);
        Ok(tenant)
    }

    /// Deletes the tenant `id`: its keys are refused from the next request on, its jobs
    /// that have not finished are cancelled (queued ones never start, running ones stop at
    /// their next epoch tick), and its uploaded tasks are deleted. Returns how many jobs were
    /// cancelled.
    pub fn delete_tenant(&self, id: &TenantId) -> Result<usize, TenantError> {
        self.tenants.delete(id)?;
        self.rates.forget(id);
        let cancelled = self.jobs.cancel_all_of(id);
        if let Err(error) = self.catalogue.remove_tenant(id) {
            tracing::error!(tenant = id.as_str(), %error, "cannot delete the tenant's tasks");
        }
        Ok(cancelled)
    }

    /// The tasks `scope` sees, and those whose files are loading or did not load.
    pub fn tasks(&self, scope: Scope<'_>) -> Snapshot {
        self.catalogue.snapshot(scope)
    }

    /// The tasks `scope` sees once their revision is past `revision`, or as they are after
    /// `wait` (capped at the configured maximum wait): a long poll for changes.
    pub async fn tasks_after(&self, scope: Scope<'_>, revision: u64, wait: Duration) -> Snapshot {
        self.catalogue
            .wait_until(scope, wait.min(self.max_wait), || {
                self.catalogue.revision(scope) > revision
            })
            .await;
        self.catalogue.snapshot(scope)
    }

    /// Waits (up to `wait`, capped at the configured maximum wait) while the task `scope`
    /// calls `name` is loading for the first time, so that a job submitted right after start
    /// is not refused. Returns at once for any other name.
    pub async fn wait_for_task(&self, scope: Scope<'_>, name: &str, wait: Duration) {
        self.catalogue
            .wait_until(scope, wait.min(self.max_wait), || {
                !matches!(self.catalogue.lookup(scope, name), Lookup::Loading)
            })
            .await;
    }

    /// How many tasks, in every namespace, are still loading for the first time: the host is
    /// ready for jobs when none is.
    pub fn tasks_loading(&self) -> usize {
        self.catalogue.loading()
    }

    /// Makes `bytes` the task `name` of `scope` (written into its tasks directory, so
    /// uploaded and dropped-in tasks are one registry; a tenant's shadows the shared task of
    /// the name for that tenant only): checked and compiled first, and nothing changes if they
    /// do not load. Returns the version now serving and whether it replaced one.
    pub fn upload_task(
        &self,
        scope: Scope<'_>,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Arc<TaskVersion>, bool), UploadError> {
        if let Scope::Tenant(tenant) = scope {
            self.check_upload(tenant, name, bytes.len() as u64)
                .inspect_err(|over| self.count_refusal(tenant, over))?;
        }
        self.catalogue.upload(scope, name, bytes)
    }

    /// Whether `tenant` may upload `size` bytes as its task `name` (replacing the one it has
    /// of that name, if any): within its quotas of component size, tasks and stored bytes.
    fn check_upload(&self, tenant: &TenantId, name: &str, size: u64) -> Result<(), QuotaExceeded> {
        let quotas = self.tenants.quotas(tenant);
        // A size is its own use: nothing is added to it.
        Quotas::check("max_task_bytes", quotas.max_task_bytes, size, 0)?;
        let others: Vec<_> = self
            .catalogue
            .uploads_of(tenant)
            .into_iter()
            .filter(|version| version.name != name)
            .collect();
        Quotas::check("max_tasks", quotas.max_tasks, others.len() as u64, 1)?;
        let stored: u64 = others.iter().map(|version| version.size as u64).sum();
        Quotas::check(
            "max_stored_task_bytes",
            quotas.max_stored_task_bytes,
            stored,
            size,
        )
    }

    /// Deletes `scope`'s own task `name` and its file; false if there was no such task (a
    /// tenant cannot delete a shared task).
    pub fn delete_task(&self, scope: Scope<'_>, name: &str) -> std::io::Result<bool> {
        let deleted = self.catalogue.delete(scope, name);
        match &deleted {
            Ok(true) => tracing::info!(task = name, ?scope, "task deleted"),
            Ok(false) => {}
            Err(error) => tracing::error!(task = name, ?scope, %error, "deleting the task failed"),
        }
        deleted
    }

    /// Largest component an upload may send, in bytes.
    pub fn max_upload_bytes(&self) -> usize {
        self.max_upload_bytes
    }

    /// The version the task `scope` calls `name` serves.
    pub fn task(&self, scope: Scope<'_>, name: &str) -> Result<Arc<TaskVersion>, SubmitError> {
        match self.catalogue.lookup(scope, name) {
            Lookup::Ready(version) => Ok(version),
            Lookup::Loading => Err(SubmitError::TaskLoading(name.to_owned())),
            Lookup::Missing(problem) => Err(SubmitError::UnknownTask {
                name: name.to_owned(),
                problem,
            }),
        }
    }

    /// Accepts a job and queues it; returns its record as queued.
    pub fn submit(&self, request: JobRequest) -> Result<JobRecord, SubmitError> {
        let quotas = self.tenants.quotas(&request.tenant);
        let (record, kind, run) = self.prepare(request, None, &quotas)?;
        self.admit_for_tenant(&record.tenant, &quotas, 1)?;
        let ticket = self.scheduler.admit()?;
        self.jobs.insert(record.clone(), run.control.clone());
        self.dispatcher.dispatch(Admitted { ticket, kind, run });
        Ok(record)
    }

    /// Counts `count` submissions of `tenant` in, or refuses them all: over its queued jobs
    /// (counted before any token is taken) or its submission rate. A refusal is counted in
    /// the metrics by tenant and quota.
    fn admit_for_tenant(
        &self,
        tenant: &TenantId,
        quotas: &Quotas,
        count: u64,
    ) -> Result<(), QuotaExceeded> {
        let queued = self.jobs.counts_of(tenant).queued as u64;
        Quotas::check("max_queued_jobs", quotas.max_queued_jobs, queued, count)
            .map_err(|over| QuotaExceeded {
                retry_after: Some(QUEUED_RETRY_AFTER),
                ..over
            })
            .and_then(|()| self.rates.take(tenant, quotas, count))
            .inspect_err(|over| self.count_refusal(tenant, over))
    }

    /// Counts a refusal by `tenant`'s quota in the metrics.
    fn count_refusal(&self, tenant: &TenantId, over: &QuotaExceeded) {
        self.metrics.quota_refused(tenant.as_str(), over.quota);
    }

    /// Checks a request and makes its job: the record it starts with, how it runs, and the
    /// run itself (not yet accepted). Its limits are within the host's and its tenant's
    /// `quotas`.
    fn prepare(
        &self,
        request: JobRequest,
        batch: Option<BatchId>,
        quotas: &Quotas,
    ) -> Result<(JobRecord, Kind, RunJob), SubmitError> {
        let version = self.task(Scope::Tenant(&request.tenant), &request.task)?;
        let limits = self.limits.resolve(request.limits)?;
        let budgets_allowed = self.limits.fuel_metering.allows_budgets();
        let limits = quotas
            .cap(limits, &request.limits, budgets_allowed)
            .inspect_err(|over| self.count_refusal(&request.tenant, over))?;
        let kind = request
            .kind
            .unwrap_or_else(|| version.compiled.task.default_kind().0);
        let input = request.input.to_string();
        let memo = match request.memoize {
            Some(true) => Some(self.memoized(&request.tenant, &version, &input)?),
            Some(false) => None,
            // A task that declares memoize has been checked deterministic when it loaded;
            // with memoization off, its jobs just run.
            None if version.compiled.task.memoize_by_default() => {
                self.memoized(&request.tenant, &version, &input).ok()
            }
            None => None,
        };
        let id = JobId::new();
        let mut record =
            JobRecord::queued(id, &version.name, &version.compiled.hash.to_hex(), kind);
        record.tenant = request.tenant;
        record.batch = batch;
        let share = share_of(&record.tenant, quotas, kind);
        let run = RunJob {
            id,
            code: Ok(version.compiled.clone()),
            version,
            input,
            memo,
            limits,
            share,
            control: self.engine.job_control(),
            engine: self.engine.clone(),
            jobs: self.jobs.clone(),
            metrics: self.metrics.clone(),
            accepted: Instant::now(),
            batch: None,
        };
        Ok((record, kind, run))
    }

    /// Where the result of running `version` on `input` is memoized, if the task is
    /// deterministic and memoization is on.
    fn memoized(
        &self,
        tenant: &TenantId,
        version: &TaskVersion,
        input: &str,
    ) -> Result<Memoized, SubmitError> {
        let cache = self.memo.clone().ok_or(SubmitError::MemoOff)?;
        let outside_world = version.compiled.task.outside_world_imports();
        if !outside_world.is_empty() {
            return Err(SubmitError::NotDeterministic {
                task: version.name.clone(),
                imports: outside_world.to_vec(),
            });
        }
        Ok(Memoized {
            cache,
            key: MemoKey::new(tenant, &version.compiled.hash, input),
        })
    }

    /// Like [`submit`](Self::submit), under an idempotency key: the first submission with
    /// `key` creates the job; a later one with the same key and the same request returns
    /// that job's current record instead (`true`: a replay), and one with a different
    /// request is refused.
    pub fn submit_idempotent(
        &self,
        key: &str,
        request: JobRequest,
    ) -> Result<(JobRecord, bool), SubmitError> {
        let fingerprint = blake3::hash(
            format!(
                "{}\0{}\0{:?}\0{:?}\0{:?}",
                request.task, request.input, request.limits, request.kind, request.memoize
            )
            .as_bytes(),
        );
        // Keys are per tenant: another tenant's use of the same key is another key.
        let tenant = request.tenant.clone();
        let tenant_key = format!("{}\0{key}", tenant.as_str());
        let claim = self.idempotency.claim(&tenant_key, fingerprint, || {
            let record = self.submit(request)?;
            Ok::<_, SubmitError>((record.id, record))
        })??;
        match claim {
            Claim::New(record) => Ok((record, false)),
            Claim::Existing(id) => self
                .jobs
                .get(&tenant, id)
                .map(|record| (record, true))
                .ok_or_else(|| SubmitError::KeyExpired(key.to_owned())),
        }
    }

    /// Up to `limit` of `tenant`'s jobs matching `filter`, newest first, submitted before
    /// the job `before` if given (the last job of the previous page), with the large `fields`
    /// asked for.
    pub fn jobs(
        &self,
        tenant: &TenantId,
        filter: &JobFilter,
        before: Option<JobId>,
        limit: usize,
        fields: RecordFields,
    ) -> Vec<JobRecord> {
        let filter = JobFilter {
            tenant: Some(tenant.clone()),
            ..filter.clone()
        };
        self.jobs.list(&filter, before, limit, fields)
    }

    /// The current record of `tenant`'s job `id`: `None` if there is none (another
    /// tenant's job is none of this one's).
    pub fn job(&self, tenant: &TenantId, id: JobId) -> Option<JobRecord> {
        self.jobs.get(tenant, id)
    }

    /// The events of `tenant`'s job (queued, started, log lines, progress, finished) as
    /// they happen, replaying those that already did, or only those after `resume`. `None`
    /// if there is no such job.
    pub fn events(
        &self,
        tenant: &TenantId,
        id: JobId,
        resume: Option<EventPosition>,
    ) -> Option<JobEvents> {
        let watch = self.jobs.watch(tenant, id)?;
        Some(JobEvents::new(watch, resume, self.stopping.clone()))
    }

    /// `tenant`'s job's record once finished, or as it is after `wait` (capped at the
    /// configured maximum wait).
    pub async fn wait(&self, tenant: &TenantId, id: JobId, wait: Duration) -> Option<JobRecord> {
        self.wait_until(tenant, id, Until::Finished, wait).await
    }

    /// Like [`wait`](Self::wait), for a thread outside any async runtime: blocks the calling
    /// thread. The fastest way to run short jobs from a plain thread, since it watches the
    /// job for a few microseconds before sleeping.
    pub fn wait_blocking(&self, tenant: &TenantId, id: JobId, wait: Duration) -> Option<JobRecord> {
        self.jobs
            .wait_blocking(tenant, id, Until::Finished, wait.min(self.max_wait))
    }

    /// `tenant`'s job's record once it has reached `until`, or as it is after `wait`
    /// (capped at the configured maximum wait).
    pub async fn wait_until(
        &self,
        tenant: &TenantId,
        id: JobId,
        until: Until,
        wait: Duration,
    ) -> Option<JobRecord> {
        self.jobs
            .wait(tenant, id, until, wait.min(self.max_wait))
            .await
    }

    /// Cancels `tenant`'s job: a queued job fails with `cancelled` at once; a running one is
    /// stopped at its next epoch tick, and this returns once it has.
    pub async fn cancel(&self, tenant: &TenantId, id: JobId) -> Result<JobRecord, CancelError> {
        match self
            .jobs
            .cancel(tenant, id)
            .ok_or(CancelError::NotFound(id))?
        {
            Cancelled::BeforeStart(record) => Ok(record),
            Cancelled::AlreadyFinished(record) => {
                Err(CancelError::AlreadyFinished(Box::new(record)))
            }
            Cancelled::Stopping => self
                .jobs
                .wait(tenant, id, Until::Finished, CANCEL_WAIT)
                .await
                .ok_or(CancelError::NotFound(id)),
        }
    }

    /// What `tenant` sees of the host: its own jobs, and the tasks it sees.
    pub fn tenant_status(&self, tenant: &TenantId) -> TenantStatus {
        TenantStatus {
            tenant: tenant.as_str().to_owned(),
            jobs: self.jobs.counts_of(tenant),
            tasks: self.tasks_status(Scope::Tenant(tenant)),
        }
    }

    /// The state of the tasks `scope` sees.
    fn tasks_status(&self, scope: Scope<'_>) -> TasksStatus {
        let tasks = self.catalogue.snapshot(scope);
        TasksStatus {
            served: tasks.tasks.len(),
            loading: tasks.loading.len(),
            watching: self.catalogue.is_watching(),
            problems: tasks.problems,
        }
    }

    /// The state of every part of the host.
    pub fn status(&self) -> Status {
        self.status_with(None)
    }

    /// [`status`](Self::status), with the state of the HTTP server that serves the host.
    pub fn status_with(&self, http: Option<HttpStatus>) -> Status {
        Status::new(Parts {
            tasks: self.tasks_status(Scope::Shared),
            engine: EngineStatus::of(&self.engine),
            cache: CacheStatus {
                jobs_waiting_for_code: self.dispatcher.waiting(),
                ..self.cache.status()
            },
            scheduler: self.scheduler.status(),
            jobs: self.jobs.status(),
            batches: self.batches.status(),
            memo: self
                .memo
                .as_ref()
                .map(|memo| memo.status())
                .unwrap_or_default(),
            http,
        })
    }

    /// Every metric, in the OpenMetrics text format: the event counters and histograms, and
    /// every part's state as [`status`](Self::status) reads it now.
    pub fn metrics(&self) -> String {
        self.metrics_with(None)
    }

    /// [`metrics`](Self::metrics), with the HTTP server's connections.
    pub fn metrics_with(&self, http: Option<HttpStatus>) -> String {
        crate::status::export(&self.status_with(http), &self.metrics)
    }

    /// Ends every open event stream, so that none holds up a server that is stopping; the
    /// jobs themselves run on. Call when the server stops accepting requests.
    pub fn close_event_streams(&self) {
        self.stopping.cancel();
    }

    /// Lets accepted jobs finish for up to the drain timeout, cancels what is left and waits
    /// (up to [`STOP_GRACE`]) for the cancelled jobs to stop, so that every record is final
    /// and counted; then stops the engine threads and the IO executor. Call once no more jobs
    /// are being submitted.
    pub fn shutdown(&self) -> DrainReport {
        let drained = self.scheduler.drain(self.drain_timeout);
        let mut report = DrainReport {
            drained,
            cancelled: 0,
            unstopped: 0,
        };
        if !drained {
            report.cancelled = self.jobs.cancel_all();
            if !self.scheduler.drain(STOP_GRACE) {
                report.unstopped = self.scheduler.in_flight();
            }
        }
        self.scheduler.shutdown();
        report
    }
}
