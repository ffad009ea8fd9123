//! fanout: probes/s of a whole scan against the farm's HTTP hosts, at zero
//! latency (the CPU-bound end: how fast each model turns probes over) and at
//! 50 ms (the waiting end: how well it keeps `workers` in flight), for
//! workers 10, 100 and 1,000. One group per (latency, workers), the model as
//! the benchmark ID, throughput in probes.
//!
//! Each iteration is one `run` of the model, as `pulse scan` calls it:
//! runtime start, the scan, and the join, over four rounds of targets
//! (`workers × 4`, at least 1,000 at zero latency so a round is not all
//! start-up). The farm runs in this process on two threads of its own: it
//! shares the cores with the model, equally for every model.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pulse_bench::{quick, setup, units::Model};

mod common;

fn fanout(c: &mut Criterion) {
    for latency_ms in [0, 50] {
        let hosts = quick::pick(1000, 50);
        let scenario = setup::one_group("fanout", "http", "ok", hosts, latency_ms, "2s")
            .expect("the bench's scenario is valid");
        let farm = setup::start(&scenario, 2).expect("the farm starts");
        for workers in quick::pick(vec![10, 100, 1000], vec![10, 100]) {
            let n = quick::pick(
                if latency_ms == 0 {
                    (workers * 4).max(1000)
                } else {
                    workers * 4
                },
                workers,
            );
            let (targets, _) = setup::cycle(&farm, n);
            let plan = setup::plan(&targets, workers, Duration::from_secs(2)).expect("valid plan");
            let mut group = common::group(
                c,
                &format!("fanout/http-{latency_ms}ms/workers-{workers}"),
                n as u64,
                true,
            );
            for model in Model::ALL {
                group.bench_function(BenchmarkId::from_parameter(model.name()), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| setup::scan(model.run_fn(), &plan).expect("the scan runs").0)
                            .sum()
                    });
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
