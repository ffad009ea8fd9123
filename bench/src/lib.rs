//! pulse-bench: the measuring half of the workbench.
//!
//! Two ways to measure, for two kinds of question:
//!
//! - **criterion benches** (`cargo bench -p pulse-bench`), in-process and
//!   statistical, one file per area, the workload as the group and the
//!   model as the benchmark ID, so criterion prints the five side by side:
//!   `fanout` (probes/s against the farm), `overhead` (one probe's client
//!   cost), `spawn` (units of work and wake-ups), `core` (the sans-IO
//!   session alone). `PULSE_BENCH_QUICK=1` shrinks them to a smoke run.
//! - **the sweep harness** (`pulse-bench`, run by `scripts/bench.sh`), for
//!   what an in-process bench cannot see: each model as its own `pulse
//!   scan` process against the farm, measured by the kernel (peak RSS, OS
//!   threads, CPU, context switches, syscalls), swept over workers and
//!   probe kinds, interrupted mid-scan, and set beside the tools a user
//!   would pick instead. It writes `reports/README.md` and a run folder.
//!
//! # Layout
//!
//! - [`measure`]: one child process, measured (wait4, getrusage, /proc), and
//!   the statistics (percentiles, medians).
//! - [`machine`]: the facts a figure depends on (CPU, kernel, commit).
//! - [`report`]: the one markdown writer, and tables that are also CSV.
//! - [`chart`]: the one SVG writer (bar panels, line sweeps).
//! - [`units`]: each model's unit of concurrency alone: spawn and join,
//!   holding many asleep, a wake-up round trip.
//! - [`setup`]: farms from inline scenarios, cycled target files, and
//!   in-process scans for the benches.
//! - [`quick`]: the quick-mode switch and the sizes it picks.
//!
//! `pulse compare` uses `measure`, `machine`, `report` and `chart` too, so
//! its one-scenario table and the harness's sweeps are measured and
//! written by the same code.

pub mod chart;
pub mod machine;
pub mod measure;
pub mod quick;
pub mod report;
pub mod setup;
pub mod units;
