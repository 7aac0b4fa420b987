//! `GET /metrics`: every metric in the OpenMetrics text format (which Prometheus scrapes
//! natively), encoded by prometheus-client.
//!
//! Two sources, one exposition: the event instruments of [`Metrics`] (jobs finished, time
//! queued and run, fuel, CPU, memory, component load times), and, read at scrape time from a
//! [`Status`], every gauge and counter a part keeps itself (queue, engine threads, IO
//! executor, cache, tasks, job records, batches, health). Nothing is counted twice.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::Status;
use crate::metrics::Metrics;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of a host whose parts report `status` and whose events `metrics` counted.
pub fn export(status: &Status, metrics: &Metrics) -> String {
    let mut scrape = Registry::with_prefix("taskhost");
    scrape.register_collector(Box::new(StatusCollector(status.clone())));
    let mut text = String::new();
    // prometheus-client's encoders fail only when the writer does, and a String never does.
    encode_registry(&mut text, metrics.registry())
        .and_then(|()| encode_registry(&mut text, &scrape))
        .and_then(|()| encode_eof(&mut text))
        .expect("writing to a String cannot fail");
    text
}

/// One snapshot of the parts' status, encoded as metrics.
#[derive(Debug)]
struct StatusCollector(Status);

/// One metric's samples: a label and a value each.
type Samples<M> = Vec<((&'static str, String), M)>;

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let parts = &self.0.parts;
        let out = &mut encoder;
        let scheduler = &parts.scheduler;
        gauge(
            out,
            "jobs_queued",
            "Jobs accepted and waiting to start",
            scheduler.queued,
        )?;
        gauge(out, "jobs_running", "Jobs running now", scheduler.running)?;
        gauge(
            out,
            "queue_capacity",
            "Most jobs that may wait",
            scheduler.max_queued,
        )?;
        counter(
            out,
            "jobs_accepted",
            "Jobs accepted into the queue",
            scheduler.accepted,
        )?;
        counter(
            out,
            "jobs_rejected",
            "Jobs refused because the queue was full",
            scheduler.rejected,
        )?;
        let by_worker = |value: fn(&crate::scheduler::WorkerStatus) -> u64| -> Samples<u64> {
            scheduler
                .workers
                .iter()
                .map(|worker| (("worker", worker.index.to_string()), value(worker)))
                .collect()
        };
        let counters = |samples: Samples<u64>| {
            samples
                .into_iter()
                .map(|(l, v)| (l, ConstCounter::new(v)))
                .collect()
        };
        family(
            out,
            "worker_jobs_completed",
            "Jobs each engine thread finished",
            None,
            counters(by_worker(|w| w.completed)),
        )?;
        family(
            out,
            "worker_jobs_stolen",
            "Jobs each engine thread took from a sibling's deque",
            None,
            counters(by_worker(|w| w.stolen)),
        )?;
        let busy = scheduler
            .workers
            .iter()
            .map(|w| {
                (
                    ("worker", w.index.to_string()),
                    ConstCounter::new(w.busy_ms as f64 / 1e3),
                )
            })
            .collect();
        family(
            out,
            "worker_busy",
            "Time each engine thread spent running jobs",
            Some(&Unit::Seconds),
            busy,
        )?;
        let io = &scheduler.io;
        gauge(
            out,
            "io_jobs_running",
            "IO-bound jobs running on the IO executor",
            io.running,
        )?;
        let admission = &scheduler.admission;
        gauge(
            out,
            "io_jobs_waiting",
            "IO-bound jobs on the IO executor waiting for a slot",
            admission.waiting.io_slots,
        )?;
        gauge(
            out,
            "io_slots",
            "Most IO-bound jobs that may run at once",
            admission.io_jobs.max,
        )?;
        gauge(
            out,
            "jobs_memory_reserved_bytes",
            "Memory the limits of the running jobs reserve",
            admission.memory_reserved_bytes as usize,
        )?;
        gauge(
            out,
            "jobs_memory_bytes",
            "Most memory the running jobs' limits may reserve together",
            admission.memory_bytes as usize,
        )?;
        if let Some(pool) = &parts.engine.pool {
            gauge(
                out,
                "pool_idle_resident_bytes",
                "Memory the idle instance-pool slots keep resident for the next jobs",
                pool.idle_resident_bytes,
            )?;
        }
        if let Some(http) = &parts.http {
            gauge(
                out,
                "http_connections",
                "HTTP connections open",
                http.connections,
            )?;
            counter(
                out,
                "http_connections_refused",
                "HTTP connections refused past the connection cap",
                http.refused,
            )?;
            let closed = http.closed;
            let limits = [
                ("header_timeout", closed.header_timeout),
                ("idle_timeout", closed.idle_timeout),
                ("write_timeout", closed.write_timeout),
                ("body_timeout", closed.body_timeout),
            ];
            family(
                out,
                "http_connections_closed",
                "HTTP connections closed by a limit",
                None,
                labelled_counters("limit", limits),
            )?;
        }
        let waiting = admission.waiting;
        let reasons = [
            ("engine_threads", waiting.engine_threads),
            ("io_slots", waiting.io_slots),
            ("memory", waiting.memory),
            ("pool_slots", waiting.pool_slots),
            ("task_thread_ceiling", waiting.task_thread_ceiling),
            ("long_job_lane", waiting.long_job_lane),
        ];
        family(
            out,
            "jobs_waiting",
            "Accepted jobs waiting to start, by what they wait for",
            None,
            gauges("reason", reasons),
        )?;

        let cache = &parts.cache;
        let hits = vec![
            (("tier", "memory".to_owned()), ConstCounter::new(cache.hits)),
            (
                ("tier", "disk".to_owned()),
                ConstCounter::new(cache.disk_hits),
            ),
        ];
        family(
            out,
            "cache_hits",
            "Compiled components found without compiling, by tier",
            None,
            hits,
        )?;
        counter(
            out,
            "cache_compiles",
            "Components compiled (missed by both tiers)",
            cache.compiles,
        )?;
        counter(
            out,
            "cache_evictions",
            "Compiled components dropped from memory to stay within the bound",
            cache.evictions,
        )?;
        counter(
            out,
            "cache_disk_rejected",
            "Disk artifacts that failed their checks and were deleted",
            cache.disk_rejected,
        )?;
        counter(
            out,
            "cache_disk_write_errors",
            "Compiled components that could not be written to disk",
            cache.disk_write_errors,
        )?;
        gauge(
            out,
            "cache_entries",
            "Compiled components held in memory",
            cache.entries,
        )?;
        gauge(
            out,
            "cache_capacity",
            "Most compiled components held in memory",
            cache.max_entries,
        )?;
        gauge(
            out,
            "compiles_running",
            "Components compiling now",
            cache.compiling,
        )?;
        gauge(
            out,
            "compiles_waiting",
            "Components waiting for a compile slot (--compile-jobs)",
            cache.compiles_waiting,
        )?;
        gauge(
            out,
            "jobs_waiting_for_code",
            "Jobs waiting for the fuel-metered code their budget needs to compile",
            cache.jobs_waiting_for_code,
        )?;

        let tasks = &parts.tasks;
        let states = [
            ("served", tasks.served),
            ("loading", tasks.loading),
            ("failed", tasks.problems.len()),
        ];
        family(
            out,
            "tasks",
            "Task names by state (failed: the latest file did not load)",
            None,
            gauges("state", states),
        )?;

        let jobs = &parts.jobs;
        let statuses = [
            ("queued", jobs.queued),
            ("running", jobs.running),
            ("succeeded", jobs.succeeded),
            ("failed", jobs.failed),
        ];
        family(
            out,
            "job_records",
            "Job records kept, by status",
            None,
            gauges("status", statuses),
        )?;
        counter(
            out,
            "job_records_forgotten",
            "Finished job records forgotten past the bound",
            jobs.forgotten,
        )?;
        gauge(out, "batches", "Batches remembered", parts.batches.kept)?;

        let health = self
            .0
            .health
            .components()
            .map(|(component, health)| (component, usize::from(health.is_ok())));
        family(
            out,
            "component_healthy",
            "1 if the component is ok, 0 if degraded (see /v1/status)",
            None,
            gauges("component", health),
        )
    }
}

/// A gauge's samples labelled `label`, from (value of the label, value) pairs.
fn gauges<const N: usize>(label: &'static str, values: [(&str, usize); N]) -> Samples<ConstGauge> {
    values
        .into_iter()
        .map(|(value_of_label, value)| {
            (
                (label, value_of_label.to_owned()),
                ConstGauge::new(value as i64),
            )
        })
        .collect()
}

/// A counter's samples labelled `label`, from (value of the label, value) pairs.
fn labelled_counters<const N: usize>(
    label: &'static str,
    values: [(&str, u64); N],
) -> Samples<ConstCounter> {
    values
        .into_iter()
        .map(|(value_of_label, value)| {
            ((label, value_of_label.to_owned()), ConstCounter::new(value))
        })
        .collect()
}

/// Encodes an unlabelled gauge.
fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: usize) -> fmt::Result {
    let gauge = ConstGauge::new(value as i64);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// Encodes an unlabelled counter.
fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

/// Encodes one labelled metric and its samples (nothing if it has none).
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: Samples<M>,
) -> fmt::Result {
    let Some(metric_type) = samples.first().map(|(_, metric)| metric.metric_type()) else {
        return Ok(());
    };
    let mut metric = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for (label, sample) in &samples {
        sample.encode(metric.encode_family(&std::slice::from_ref(label))?)?;
    }
    Ok(())
}
