//! What every bench file sets up the same way: a group with criterion's
//! minimum of ten samples, the quick-mode times, and its throughput.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use pulse_bench::quick;

/// A group named after its workload, counting `elements` per iteration.
/// `flat` for iterations long enough (a whole scan, 10,000 spawns) that
/// criterion's growing linear samples would run for minutes.
pub fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    elements: u64,
    flat: bool,
) -> BenchmarkGroup<'a, WallTime> {
    let (warm, measure) = quick::times();
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(elements))
        .sample_size(10)
        .warm_up_time(warm)
        .measurement_time(measure);
    if flat {
        group.sampling_mode(SamplingMode::Flat);
    }
    group
}
