//! Criterion benchmarks of one job's cost, from the bare wasmtime loop to a job through the
//! host's scheduler, and of metering's cost on CPU-heavy code.
//!
//! `cargo bench -p taskhost-benches --bench jobs`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use taskhost::config::FuelMetering;
use taskhost::internals::Limits;
use taskhost::tenants::TenantId;
use taskhost_benches::bare::{Bare, Metering};
use taskhost_benches::{engine, host, request, task_path};

const LIMITS: Limits = Limits {
    timeout: Duration::from_secs(60),
    fuel: None,
    memory_bytes: 256 << 20,
    max_output_bytes: 1 << 20,
};

fn noop(c: &mut Criterion) {
    let mut group = c.benchmark_group("noop job");
    group.throughput(Throughput::Elements(1));
    for pooling in [false, true] {
        let allocation = if pooling { "pooling" } else { "on-demand" };
        let bare = Bare::new(&task_path("noop"), Metering::Epoch, pooling);
        group.bench_function(format!("bare wasmtime, {allocation}"), |b| {
            b.iter(|| bare.run("null"))
        });

        let engine = engine(pooling);
        let task = engine
            .compile(&std::fs::read(task_path("noop")).unwrap())
            .unwrap();
        group.bench_function(format!("taskhost engine, {allocation}"), |b| {
            b.iter(|| engine.run(&task, "null", LIMITS, engine.job_control()))
        });

        let host = host(1, FuelMetering::OnDemand, pooling);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        group.bench_function(format!("taskhost host submit+wait, {allocation}"), |b| {
            b.iter(|| {
                let record = host.submit(request("noop", json!(null))).unwrap();
                runtime.block_on(host.wait(&record.tenant, record.id, Duration::from_secs(60)))
            })
        });
    }
    group.finish();
}

fn fib_metering(c: &mut Criterion) {
    let mut group = c.benchmark_group("fib(25) metering");
    group.sample_size(20);
    for metering in [Metering::None, Metering::Epoch, Metering::EpochAndFuel] {
        let bare = Bare::new(&task_path("fib"), metering, true);
        group.bench_function(format!("{metering:?}"), |b| {
            b.iter(|| bare.run(r#"{"n": 25}"#))
        });
    }
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("fib(25) x 16 jobs");
    group.sample_size(10);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for workers in [1, cores] {
        let host = host(workers, FuelMetering::OnDemand, true);
        group.bench_function(format!("{workers} engine threads"), |b| {
            b.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    let ids: Vec<_> = (0..16)
                        .map(|_| host.submit(request("fib", json!({"n": 25}))).unwrap().id)
                        .collect();
                    for id in ids {
                        runtime.block_on(host.wait(
                            &TenantId::default(),
                            id,
                            Duration::from_secs(60),
                        ));
                    }
                }
                started.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = noop, fib_metering, scaling
}
criterion_main!(benches);
