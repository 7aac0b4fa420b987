//! A one-shot report of taskhost's costs, every figure next to a baseline measured in the
//! same run (the machines are shared and noisy, so only ratios travel):
//!
//! - a no-op job: bare wasmtime `InstancePre` loop vs the taskhost engine vs a job through the
//!   host's scheduler (waited for from async code and from a plain thread), on-demand and
//!   pooled, one thread and all threads (p50/p99, jobs/s);
//! - `fib(25)` with no interruption, epoch only, and epoch + fuel;
//! - what compiling a fuel-metered variant beside the epoch-only one costs, and what on-demand
//!   metering saves jobs without a budget through the host;
//! - CPU-heavy jobs on one engine thread vs all of them;
//! - fairness between tenants: one tenant's job latency alone and while another floods the
//!   queue, and the CPU time two saturating tenants of weights 3:1 get;
//! - how long after its deadline an infinite loop is stopped;
//! - getting a compiled component: Cranelift compile vs disk-cache load vs memory hit, for a
//!   typical example task and the largest (`grep`, which links `regex`);
//! - from saving a task file to its new version serving.
//!
//! `cargo bench -p taskhost-benches --bench report [-- SECTION...]`, sections: noop, threads,
//! metering, fuel-variant, fuel-on-demand, scaling, fairness, deadline, cache, reload (all by
//! default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use taskhost::config::{CompileSettings, FuelMetering, TasksSettings};
use taskhost::host::Scope;
use taskhost::internals::{ComponentCache, HashedWasm, Limits};
use taskhost::tenants::{Quotas, TenantId};
use taskhost::{Host, JobRequest};
use taskhost_benches::bare::{Bare, Metering};
use taskhost_benches::{engine, host, request, task_path};

const LIMITS: Limits = Limits {
    timeout: Duration::from_secs(60),
    fuel: None,
    memory_bytes: 256 << 20,
    max_output_bytes: 1 << 20,
};

/// Latencies of one scenario.
struct Sample(Vec<Duration>);

impl Sample {
    fn measure(iterations: usize, mut run: impl FnMut()) -> Self {
        for _ in 0..iterations / 10 {
            run(); // warm-up
        }
        let mut times: Vec<Duration> = (0..iterations)
            .map(|_| {
                let started = Instant::now();
                run();
                started.elapsed()
            })
            .collect();
        times.sort();
        Self(times)
    }

    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[index]
    }

    fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
}

fn us(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Submits `count` jobs and waits for all of them; returns the time taken.
fn batch(host: &Arc<Host>, task: &str, input: serde_json::Value, count: usize) -> Duration {
    batch_of(host, &request(task, input), count)
}

/// How long `count` jobs of `job`, all submitted at once, take to finish.
fn batch_of(host: &Arc<Host>, job: &JobRequest, count: usize) -> Duration {
    let runtime = runtime();
    let started = Instant::now();
    let ids: Vec<_> = (0..count)
        .map(|_| host.submit(job.clone()).unwrap().id)
        .collect();
    for id in ids {
        runtime.block_on(host.wait(&TenantId::default(), id, Duration::from_secs(120)));
    }
    started.elapsed()
}

fn noop_one_thread() {
    println!("## No-op job, one thread (per job)\n");
    println!("| path | allocation | p50 µs | p99 µs | jobs/s | p50 vs bare |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let iterations = 5000;
    for pooling in [true, false] {
        let allocation = if pooling { "pooling" } else { "on-demand" };
        let bare = Bare::new(&task_path("noop"), Metering::Epoch, pooling);
        let bare_sample = Sample::measure(iterations, || {
            bare.run("null");
        });
        let engine = engine(pooling);
        let task = engine
            .compile(&std::fs::read(task_path("noop")).unwrap())
            .unwrap();
        let engine_sample = Sample::measure(iterations, || {
            engine.run(&task, "null", LIMITS, engine.job_control());
        });
        let host = host(1, FuelMetering::OnDemand, pooling);
        let runtime = runtime();
        let host_sample = Sample::measure(iterations, || {
            let record = host.submit(request("noop", json!(null))).unwrap();
            runtime.block_on(host.wait(&record.tenant, record.id, Duration::from_secs(60)));
        });
        let blocking_sample = Sample::measure(iterations, || {
            let record = host.submit(request("noop", json!(null))).unwrap();
            host.wait_blocking(&record.tenant, record.id, Duration::from_secs(60));
        });
        let base = us(bare_sample.percentile(0.5));
        for (path, sample) in [
            ("bare wasmtime InstancePre loop", &bare_sample),
            ("taskhost engine::run", &engine_sample),
            ("taskhost Host submit + wait (async)", &host_sample),
            ("taskhost Host submit + wait_blocking", &blocking_sample),
        ] {
            println!(
                "| {path} | {allocation} | {:.1} | {:.1} | {:.0} | {:.2} |",
                us(sample.percentile(0.5)),
                us(sample.percentile(0.99)),
                1.0 / sample.mean().as_secs_f64(),
                us(sample.percentile(0.5)) / base
            );
        }
    }
    println!();
}

fn noop_all_threads() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("## No-op jobs, all {cores} threads (throughput)\n");
    let jobs = 20_000;
    let on_threads = |threads: usize, run: &(dyn Fn() + Sync)| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| (0..jobs / threads).for_each(|_| run()));
            }
        });
        jobs as f64 / started.elapsed().as_secs_f64()
    };
    let bare = Bare::new(&task_path("noop"), Metering::Epoch, true);
    let bare_run = || {
        bare.run("null");
    };
    let engine = engine(true);
    let task = engine
        .compile(&std::fs::read(task_path("noop")).unwrap())
        .unwrap();
    let engine_run = || {
        engine.run(&task, "null", LIMITS, engine.job_control());
    };
    // One thread and all of them, interleaved, best of three each (scaling is a ratio of two
    // rates, so both should see the same machine).
    let (mut bare_rates, mut engine_rates) = ([0.0f64; 2], [0.0f64; 2]);
    for _ in 0..3 {
        for (i, threads) in [1, cores].into_iter().enumerate() {
            bare_rates[i] = bare_rates[i].max(on_threads(threads, &bare_run));
            engine_rates[i] = engine_rates[i].max(on_threads(threads, &engine_run));
        }
    }
    let (bare_rate, engine_rate) = (bare_rates[1], engine_rates[1]);
    let host = host(cores, FuelMetering::OnDemand, true);
    batch(&host, "noop", json!(null), 1000); // warm-up
    let host_rate = jobs as f64 / batch(&host, "noop", json!(null), jobs).as_secs_f64();
    println!("| path | jobs/s | vs bare | vs engine loop | vs 1 thread |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (path, rate, one_thread) in [
        (
            format!("bare wasmtime loop (stock pool), {cores} threads"),
            bare_rate,
            Some(bare_rates[0]),
        ),
        (
            format!("taskhost engine::run loop, {cores} threads"),
            engine_rate,
            Some(engine_rates[0]),
        ),
        (
            format!("taskhost Host (scheduler), {cores} engine threads, 1 submitter"),
            host_rate,
            None,
        ),
    ] {
        let scaling = one_thread.map_or("".into(), |one| format!("{:.2}x", rate / one));
        println!(
            "| {path} | {rate:.0} | {:.2} | {:.2} | {scaling} |",
            rate / bare_rate,
            rate / engine_rate
        );
    }
    println!();
}

fn metering() {
    println!("## Cost of interruption (bare engine, same component, median of interleaved runs)\n");
    println!("| workload | none ms | epoch | epoch + fuel |");
    println!("| --- | ---: | ---: | ---: |");
    let text = "the quick brown fox jumps over the lazy dog 0123456789 ".repeat(4000);
    let grep_input = json!({"pattern": r"\b\w+o\w*\b", "text": text}).to_string();
    let workloads = [
        ("fib(25): recursive calls", "fib", r#"{"n": 25}"#.to_owned()),
        ("grep: regex over 220 KB", "grep", grep_input),
    ];
    for (workload, task, input) in workloads {
        let engines: Vec<Bare> = [Metering::None, Metering::Epoch, Metering::EpochAndFuel]
            .into_iter()
            .map(|metering| Bare::new(&task_path(task), metering, true))
            .collect();
        // Interleaved, so that a noisy moment on the machine hits every variant alike.
        let mut times: [Vec<Duration>; 3] = Default::default();
        for _ in 0..30 {
            for (bare, times) in engines.iter().zip(&mut times) {
                times.push(timed(|| bare.run(&input)));
            }
        }
        let [none, epoch, fuel] = times.map(median);
        let overhead = |time: Duration| percent_over(time.as_secs_f64(), none.as_secs_f64());
        println!(
            "| {workload} | {:.2} | {:+.1}% | {:+.1}% |",
            none.as_secs_f64() * 1e3,
            overhead(epoch),
            overhead(fuel)
        );
    }
    println!();
}

/// What a fuel-metered variant of each component, beside the plain (epoch-only) one, would
/// cost: a second Cranelift compile and a second artifact, on disk and in memory.
fn fuel_variant() {
    println!(
        "## A fuel-metered variant beside the epoch-only one (median of 5 interleaved compiles)\n"
    );
    println!("| task | size | compile, epoch | + fuel | artifact, epoch | + fuel |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let compilers = [Metering::Epoch, Metering::EpochAndFuel].map(Bare::compiler);
    let (mut compile_total, mut artifact_total) = ([0.0; 2], [0usize; 2]);
    for task in ["noop", "fib", "uppercase", "wordcount", "fetch", "grep"] {
        let bytes = std::fs::read(task_path(task)).unwrap();
        let mut times: [Vec<Duration>; 2] = Default::default();
        let mut artifacts = [0; 2];
        for _ in 0..5 {
            for ((engine, times), artifact) in compilers.iter().zip(&mut times).zip(&mut artifacts)
            {
                let started = Instant::now();
                let component = wasmtime::component::Component::new(engine, &bytes).unwrap();
                times.push(started.elapsed());
                *artifact = component.serialize().unwrap().len();
            }
        }
        let [epoch, fuel] = times.map(median);
        for (total, time) in compile_total.iter_mut().zip([epoch, fuel]) {
            *total += time.as_secs_f64();
        }
        for (total, artifact) in artifact_total.iter_mut().zip(artifacts) {
            *total += artifact;
        }
        println!(
            "| {task} | {} KiB | {:.1} ms | {:+.0}% | {} KiB | {:+.0}% |",
            bytes.len() >> 10,
            epoch.as_secs_f64() * 1e3,
            percent_over(fuel.as_secs_f64(), epoch.as_secs_f64()),
            artifacts[0] >> 10,
            percent_over(artifacts[1] as f64, artifacts[0] as f64),
        );
    }
    println!(
        "\nBoth variants of all six: compile {:.2}x the epoch-only one alone, artifacts {:.2}x.\n",
        compile_total.iter().sum::<f64>() / compile_total[0],
        artifact_total.iter().sum::<usize>() as f64 / artifact_total[0] as f64,
    );
}

/// What on-demand fuel metering (the default) saves the jobs without a fuel budget, against a
/// host that meters every job, and what the first job with a budget waits for its task's
/// metered variant.
fn fuel_on_demand() {
    println!(
        "## Fuel on demand: jobs through the host, 1 engine thread (best of 3 interleaved rounds)\n"
    );
    println!("| task | host | jobs | jobs/s | vs always metered |");
    println!("| --- | --- | --- | ---: | ---: |");
    // Caches of their own: the metered variant is compiled here, not found on disk.
    let cache = tempfile::tempdir().unwrap();
    let fresh_host = |metering| {
        let mut config = taskhost_benches::config(1, metering, true);
        config.cache_dir = cache.path().join(format!("{metering:?}"));
        Arc::new(Host::start(&config).expect("starting a host"))
    };
    let (on_demand, always) = (
        fresh_host(FuelMetering::OnDemand),
        fresh_host(FuelMetering::Always),
    );
    let mut first_budgeted = Vec::new();
    for (task, input, round) in [("fib", json!({"n": 25}), 300), ("noop", json!(null), 5000)] {
        let plain = request(task, input);
        let mut budgeted = plain.clone();
        budgeted.limits.fuel = Some(1 << 40);
        first_budgeted.push((task, batch_of(&on_demand, &budgeted, 1)));
        let cases = [
            ("always", "no budget", &always, &plain),
            ("on-demand", "no budget", &on_demand, &plain),
            ("on-demand", "with a budget", &on_demand, &budgeted),
        ];
        let mut best = [0.0f64; 3];
        for _ in 0..3 {
            for ((_, _, host, job), best) in cases.iter().zip(&mut best) {
                *best = best.max(round as f64 / batch_of(host, job, round).as_secs_f64());
            }
        }
        for ((mode, jobs, ..), rate) in cases.iter().zip(best) {
            println!(
                "| {task} | {mode} | {jobs} | {rate:.0} | {:.2}x |",
                rate / best[0]
            );
        }
    }
    for (task, took) in first_budgeted {
        println!(
            "\nThe first {task} job with a budget took {:.0} ms, compiling the metered variant in process.",
            took.as_secs_f64() * 1e3
        );
    }
    println!();
}

/// How much more `value` is than `base`, in percent.
fn percent_over(value: f64, base: f64) -> f64 {
    (value / base - 1.0) * 100.0
}

fn scaling() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("## Scaling: 32 fib(27) jobs\n");
    println!("| engine threads | seconds | speed-up |");
    println!("| ---: | ---: | ---: |");
    let mut base = None;
    for workers in [1, cores] {
        let host = host(workers, FuelMetering::OnDemand, true);
        batch(&host, "fib", json!({"n": 27}), 4); // warm-up
        let seconds = batch(&host, "fib", json!({"n": 27}), 32).as_secs_f64();
        let base = *base.get_or_insert(seconds);
        println!("| {workers} | {seconds:.2} | {:.2}x |", base / seconds);
    }
    println!();
}

/// A host with `workers` engine threads and a data directory of its own, with the tenants
/// `ids` created, each of `weight`.
fn host_with_tenants(
    workers: usize,
    data_dir: &std::path::Path,
    tenants: &[(&str, u32)],
) -> (Arc<Host>, Vec<TenantId>) {
    let mut config = taskhost_benches::config(workers, FuelMetering::OnDemand, true);
    config.data_dir = data_dir.to_owned();
    let host = Arc::new(Host::start(&config).expect("starting a host"));
    let ids = tenants
        .iter()
        .map(|(id, weight)| {
            let id = TenantId::try_from(id.to_string()).unwrap();
            let quotas = Quotas {
                weight: Some(*weight),
                ..Quotas::default()
            };
            host.create_tenant(id.clone(), quotas).unwrap();
            id
        })
        .collect();
    (host, ids)
}

/// Keeps `queued` jobs of `job` queued for `tenant` until `stop`; the ids submitted.
fn keep_queued(
    host: &Arc<Host>,
    job: &JobRequest,
    queued: usize,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<taskhost::jobs::JobId> {
    use std::sync::atomic::Ordering;
    let mut ids = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let waiting = host.tenant_status(&job.tenant).jobs.queued;
        for _ in waiting..queued {
            ids.push(host.submit(job.clone()).unwrap().id);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ids
}

/// The CPU milliseconds of the jobs `ids` of `tenant` that have finished.
fn cpu_ms_of(host: &Host, tenant: &TenantId, ids: &[taskhost::jobs::JobId]) -> f64 {
    ids.iter()
        .filter_map(|id| host.job(tenant, *id)?.cpu_ms)
        .sum()
}

fn fairness() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let fib = |tenant: &TenantId| JobRequest {
        tenant: tenant.clone(),
        ..request("fib", json!({"n": 27}))
    };
    println!(
        "## Fairness between tenants: fib(27) jobs, {cores} engine threads
"
    );

    // B submits one job every 50 ms, alone, then while A keeps 2,000 jobs queued.
    let dir = tempfile::tempdir().unwrap();
    let (host, ids) = host_with_tenants(cores, dir.path(), &[("a", 1), ("b", 1)]);
    let (a, b) = (&ids[0], &ids[1]);
    batch_of(&host, &fib(b), 8); // warm-up
    let latencies = |samples: usize| {
        let runtime = runtime();
        let mut times: Vec<Duration> = (0..samples)
            .map(|_| {
                let tick = Instant::now();
                let id = host.submit(fib(b)).unwrap().id;
                runtime.block_on(host.wait(b, id, Duration::from_secs(120)));
                let took = tick.elapsed();
                std::thread::sleep(Duration::from_millis(50).saturating_sub(took));
                took
            })
            .collect();
        times.sort();
        Sample(times)
    };
    let alone = latencies(60);
    let stop = AtomicBool::new(false);
    let flooded = std::thread::scope(|scope| {
        let feeder = scope.spawn(|| keep_queued(&host, &fib(a), 2000, &stop));
        while host.tenant_status(a).jobs.queued < 2000 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let flooded = latencies(100);
        stop.store(true, Ordering::Relaxed);
        feeder.join().unwrap();
        flooded
    });
    host.delete_tenant(a).unwrap();
    println!("| tenant B's job latency | p50 ms | p99 ms | p99 vs alone |");
    println!("| --- | ---: | ---: | ---: |");
    let ms = |duration: Duration| duration.as_secs_f64() * 1e3;
    for (case, sample) in [("alone", &alone), ("A keeps 2,000 queued", &flooded)] {
        println!(
            "| {case} | {:.2} | {:.2} | {:.2}x |",
            ms(sample.percentile(0.5)),
            ms(sample.percentile(0.99)),
            sample.percentile(0.99).as_secs_f64() / alone.percentile(0.99).as_secs_f64()
        );
    }

    // Weights 3:1, both keeping 500 jobs queued for 5 s.
    let dir = tempfile::tempdir().unwrap();
    let (host, ids) = host_with_tenants(cores, dir.path(), &[("heavy", 3), ("light", 1)]);
    let stop = AtomicBool::new(false);
    let submitted = std::thread::scope(|scope| {
        let feeders: Vec<_> = ids
            .iter()
            .map(|tenant| {
                let (host, stop, job) = (&host, &stop, fib(tenant));
                scope.spawn(move || keep_queued(host, &job, 500, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_secs(5));
        stop.store(true, Ordering::Relaxed);
        // What finished by now is what the shares gave; the rest is cancelled unstarted.
        let cpu: Vec<f64> = feeders
            .into_iter()
            .zip(&ids)
            .map(|(feeder, tenant)| {
                let submitted = feeder.join().unwrap();
                cpu_ms_of(&host, tenant, &submitted)
            })
            .collect();
        cpu
    });
    for tenant in &ids {
        host.delete_tenant(tenant).unwrap();
    }
    println!(
        "
| weights 3:1, both saturating 5 s | CPU s of finished jobs | share |"
    );
    println!("| --- | ---: | ---: |");
    let total: f64 = submitted.iter().sum();
    for ((id, weight), cpu) in [("heavy", 3), ("light", 1)].iter().zip(&submitted) {
        println!(
            "| {id} (weight {weight}) | {:.2} | {:.1}% |",
            cpu / 1e3,
            cpu / total * 100.0
        );
    }
    println!(
        "
Ratio {:.2}:1 (the goal is 3:1 within 10%).
",
        submitted[0] / submitted[1]
    );
}

fn deadline_precision() {
    println!("## Deadline precision: `loop` with timeout_ms = 20, 50 runs\n");
    let host = host(1, FuelMetering::OnDemand, true);
    let runtime = runtime();
    let mut late: Vec<f64> = (0..50)
        .map(|_| {
            let mut job = request("loop", json!(null));
            job.limits.timeout_ms = Some(20);
            let record = host.submit(job).unwrap();
            let record = runtime
                .block_on(host.wait(&record.tenant, record.id, Duration::from_secs(60)))
                .unwrap();
            record.wall_ms.unwrap() - 20.0
        })
        .collect();
    late.sort_by(f64::total_cmp);
    println!(
        "stopped after its deadline by: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (epoch tick: {} ms)\n",
        late[late.len() / 2],
        late[(late.len() * 99) / 100],
        late[late.len() - 1],
        taskhost::internals::EPOCH_TICK.as_millis()
    );
}

fn component_cache() {
    println!("## Getting a compiled component\n");
    println!(
        "| task | size | Cranelift compile | disk cache load | memory hit | compile / disk | compile / memory |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let engine = Arc::new(engine(true));
    for task in ["sleep", "grep"] {
        let bytes = std::fs::read(task_path(task)).unwrap();
        let rounds = 10;
        let (mut compile, mut disk, mut memory) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let dir = tempfile::tempdir().unwrap();
            let cold = ComponentCache::open(
                engine.clone(),
                CompileSettings::default(),
                4,
                dir.path(),
                Arc::default(),
            )
            .unwrap();
            compile.push(timed(|| cold.get_or_compile(&HashedWasm::new(&bytes))));
            memory.push(timed(|| cold.get_or_compile(&HashedWasm::new(&bytes))));
            let restarted = ComponentCache::open(
                engine.clone(),
                CompileSettings::default(),
                4,
                dir.path(),
                Arc::default(),
            )
            .unwrap();
            disk.push(timed(|| restarted.get_or_compile(&HashedWasm::new(&bytes))));
        }
        let (compile, disk, memory) = (median(compile), median(disk), median(memory));
        println!(
            "| {task} | {} KiB | {:.1} ms | {:.2} ms | {:.1} µs | {:.0}x | {:.0}x |",
            bytes.len() >> 10,
            compile.as_secs_f64() * 1e3,
            disk.as_secs_f64() * 1e3,
            us(memory),
            compile.as_secs_f64() / disk.as_secs_f64(),
            compile.as_secs_f64() / memory.as_secs_f64(),
        );
    }
    println!();
}

/// From saving a task file (editor-style: write a temporary file, rename it over the old one)
/// to the host serving the new version.
fn reload() {
    println!("## From file save to the new version serving (task `sleep`)\n");
    println!("| debounce | new bytes (compiled) | bytes seen before (memory hit) |");
    println!("| ---: | ---: | ---: |");
    let original = std::fs::read(task_path("sleep")).unwrap();
    for debounce_ms in [0, 50] {
        let tasks = tempfile::tempdir().unwrap();
        let file = tasks.path().join("work.wasm");
        std::fs::write(&file, &original).unwrap();
        let mut config = taskhost_benches::config(1, FuelMetering::OnDemand, true);
        config.tasks = TasksSettings {
            dir: tasks.path().into(),
            debounce: Duration::from_millis(debounce_ms),
            wait_until_loaded: true,
            ..TasksSettings::default()
        };
        config.data_dir = tasks.path().join(".data");
        config.cache_dir = config.data_dir.join("cache");
        let host = Host::start(&config).unwrap();
        let runtime = runtime();
        let save = |version: u8| {
            let hash_before = host.task(Scope::Shared, "work").unwrap().hash();
            let revision = host.tasks(Scope::Shared).revision;
            let temporary = tasks.path().join(".work.wasm.tmp");
            std::fs::write(&temporary, with_custom_section(&original, version)).unwrap();
            let started = Instant::now();
            std::fs::rename(&temporary, &file).unwrap();
            let mut revision = revision;
            while host.task(Scope::Shared, "work").unwrap().hash() == hash_before {
                revision = runtime
                    .block_on(host.tasks_after(Scope::Shared, revision, Duration::from_secs(60)))
                    .revision;
            }
            started.elapsed()
        };
        let rounds = 10u8;
        let compiled: Vec<_> = (0..rounds).map(save).collect();
        let seen: Vec<_> = (0..rounds).map(save).collect();
        println!(
            "| {debounce_ms} ms | {:.1} ms | {:.1} ms |",
            median(compiled).as_secs_f64() * 1e3,
            median(seen).as_secs_f64() * 1e3
        );
    }
    println!();
}

/// `component` with a custom section appended: the same code under a different hash.
fn with_custom_section(component: &[u8], version: u8) -> Vec<u8> {
    let mut bytes = component.to_vec();
    bytes.extend_from_slice(&[0, 3, 1, b'v', version]);
    bytes
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let started = Instant::now();
    std::hint::black_box(f());
    started.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments pick sections.
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let sections: [(&str, fn()); 10] = [
        ("noop", noop_one_thread),
        ("threads", noop_all_threads),
        ("metering", metering),
        ("fuel-variant", fuel_variant),
        ("fuel-on-demand", fuel_on_demand),
        ("scaling", scaling),
        ("fairness", fairness),
        ("deadline", deadline_precision),
        ("cache", component_cache),
        ("reload", reload),
    ];
    for (name, section) in sections {
        if chosen.is_empty() || chosen.iter().any(|c| c == name) {
            section();
        }
    }
}
