//! Quick mode: the same benches and regimes, shrunk to a smoke run.
//!
//! `PULSE_BENCH_QUICK=1` (any value but empty or `0`) keeps every bench
//! and every model but makes the workloads small and criterion's samples
//! few, so CI can check in well under a minute that everything still runs
//! and still measures. Its figures are not for reading: they are too few
//! to be stable.

use std::time::Duration;

/// The switch's name.
pub const VAR: &str = "PULSE_BENCH_QUICK";

/// Whether quick mode is on.
pub fn on() -> bool {
    std::env::var(VAR).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `full` normally, `quick` in quick mode.
pub fn pick<T>(full: T, quick: T) -> T {
    if on() { quick } else { full }
}

/// criterion's settings for a group: a short warm-up and measurement, and
/// criterion's minimum of ten samples; in quick mode, as little as
/// criterion allows.
pub fn times() -> (Duration, Duration) {
    pick(
        (Duration::from_millis(500), Duration::from_secs(2)),
        (Duration::from_millis(10), Duration::from_millis(20)),
    )
}
