//! spawn: each model's unit of concurrency with nothing of pulse on top.
//!
//! - `spawn/join-10k`: spawn 10,000 units that do nothing and wait for all
//!   of them (tasks on the async runtimes, OS threads, rayon jobs on a pool
//!   of one thread per core). Throughput in units.
//! - `spawn/ping-pong`: one round trip between the calling thread and a
//!   unit on the executor over the model's own bounded channel: two
//!   cross-thread wake-ups, what every probe pays at least once when its
//!   socket becomes ready.
//!
//! Executors are built once, outside the timing (see `pulse_bench::units`).

use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pulse_bench::{quick, units::Executor, units::Model};

mod common;

fn spawn(c: &mut Criterion) {
    let executors: Vec<Executor> = Model::ALL
        .into_iter()
        .map(|m| Executor::new(m).expect("the executor starts"))
        .collect();
    let units = quick::pick(10_000, 1_000);
    let mut group = common::group(
        c,
        &format!("spawn/join-{}k", units / 1000),
        units as u64,
        true,
    );
    for ex in &executors {
        group.bench_function(BenchmarkId::from_parameter(ex.model().name()), |b| {
            b.iter(|| ex.spawn_join(units).expect("units spawn"));
        });
    }
    group.finish();

    let mut group = common::group(c, "spawn/ping-pong", 1, false);
    for ex in &executors {
        group.bench_function(BenchmarkId::from_parameter(ex.model().name()), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                ex.ping_pong(iters).expect("the echo answers");
                t0.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
