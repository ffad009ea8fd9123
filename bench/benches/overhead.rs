//! overhead: what one probe costs the client, per model, at the CPU-bound
//! end: one probe at a time (`--workers 1`) against farm hosts that answer
//! at once, so the time is the model's own work (syscalls, wake-ups,
//! buffers) plus the farm's, never waiting. One group per probe kind (TCP
//! connect, HTTP, HTTPS with a full handshake), the model as the ID.
//!
//! An iteration is one probe: a sample of `k` iterations is one scan of `k`
//! targets, and criterion's linear fit over samples of growing `k` puts the
//! runtime's start-up in the intercept and the per-probe cost in the slope.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pulse_bench::{setup, units::Model};

mod common;

fn overhead(c: &mut Criterion) {
    for protocol in ["tcp", "http", "https"] {
        let scenario = setup::one_group("overhead", protocol, "ok", 20, 0, "2s")
            .expect("the bench's scenario is valid");
        let farm = setup::start(&scenario, 2).expect("the farm starts");
        let mut group = common::group(c, &format!("overhead/{protocol}"), 1, false);
        for model in Model::ALL {
            group.bench_function(BenchmarkId::from_parameter(model.name()), |b| {
                b.iter_custom(|iters| {
                    let n = usize::try_from(iters).unwrap_or(usize::MAX).max(1);
                    let (targets, _) = setup::cycle(&farm, n);
                    let plan =
                        setup::plan(&targets, 1, Duration::from_secs(2)).expect("valid plan");
                    setup::scan(model.run_fn(), &plan).expect("the scan runs").0
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, overhead);
criterion_main!(benches);
