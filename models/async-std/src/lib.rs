//! The async-std model: pulse's probe core driven by async-std's global runtime.
//!
//! **async-std is discontinued.** Its README says so and points users to smol;
//! advisory RUSTSEC-2025-0052 records it. It gets no fixes, security ones
//! included. pulse pins its last release (`=1.13.2`, workspace Cargo.toml) so
//! the comparison stays reproducible, and every report that shows this model
//! must say that it is discontinued. It stays in the comparison because many
//! codebases still run on it, and because it is the clearest example of one
//! design: a process-global executor (async-global-executor) over a shared
//! reactor (async-io), behind an API that mirrors `std`.
//!
//! # Model
//!
//! A work-stealing executor whose threads belong to the process, not to the
//! scan. Each probe is a future; while it waits on a socket or a timer it
//! costs a few hundred bytes and no thread. The runtime starts at its first
//! use with `ASYNC_STD_THREAD_COUNT` threads, or one per core, and that number
//! is then fixed for the life of the process; it cannot be configured per
//! scan, nor shut down. So, unlike tokio's, the runtime outlives `run`: a
//! second scan reuses the same threads. `run` only blocks the calling thread
//! on the scan (`task::block_on`), which is where the collector and the sink
//! live (the sink is a borrowed `&mut dyn Sink`, so it cannot move into a
//! spawned task). Everything `run` itself spawns is finished or cancelled
//! before it returns.
//!
//! # Bounded fan-out
//!
//! `--workers` tasks are spawned, and each pulls the next target index from a
//! shared counter until the plan is exhausted (scan.rs), rather than one
//! task per target under a semaphore; the report has no figure comparing the
//! two shapes in Rust. Results go to the collector over a bounded
//! channel, so a slow sink (a terminal, a pipe) slows the workers down
//! instead of piling results up in memory.
//!
//! # Timeouts
//!
//! One absolute deadline per probe, `start + timeout`. async-std's timers take
//! a duration, not an instant, so the time left is computed once when the
//! probe starts and one `task::sleep` of that length races the whole exchange
//! (timeout.rs). That is still an absolute deadline: the timer is armed once
//! and nothing re-arms it, so a server that drips one byte a second cannot
//! extend it. (A per-read timeout, such as `async_std::io::timeout` around
//! each read, would restart on every byte.)
//!
//! # Shutdown
//!
//! The core's `Shutdown` closes a channel (shutdown.rs): closing is the one
//! channel event every receiver sees, so it works as a broadcast. Workers
//! check the flag before taking the next target; each in-flight probe races
//! its exchange against "triggered, then the grace period elapsed" and, if
//! the grace period wins, reports `cancelled`. Targets never started are
//! reported `cancelled` by the core's ledger. Signals themselves are caught by
//! the CLI and turned into `Shutdown::trigger`, the same for every model.
//!
//! # Where this model hurts
//!
//! The global runtime. Its size is read once per process, from an environment
//! variable, so a library cannot choose it and two scans in one process cannot
//! differ; and since nothing shuts it down, whatever a scan leaves behind
//! keeps running after `run` returns. A dropped `JoinHandle` detaches its task
//! instead of stopping it, so the ICMP readers must be cancelled explicitly
//! (io.rs). DNS shows the cost: names are resolved with `getaddrinfo` on the
//! `blocking` thread pool (up to 500 threads), and a lookup abandoned by a
//! probe's deadline runs on, past the end of the scan, until getaddrinfo
//! gives up; there is no `shutdown_timeout` to cut it loose as tokio's model
//! does. And the project is discontinued (see the top of this page).
//!
//! System calls and memory: its sockets are async-io's, with smol's costs
//! (an `epoll_ctl MOD` before every wait, eventfd and timerfd wake-ups),
//! and its executor adds its own parking. `async_std::future::timeout` is
//! an `async fn` that keeps the future it wraps twice (rust-lang/rust#62958),
//! 280 bytes more per waiting probe, so timeout.rs races `task::sleep`
//! instead.

mod io;
mod scan;
mod shutdown;
mod timeout;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_std::task;
use pulse_core::model::{RunReport, SetupError, Sink};
use pulse_core::plan::Plan;
use pulse_core::shutdown::Shutdown;

/// This model's name, as given to `--runtime`.
pub const MODEL: &str = "async-std";

/// The variable async-std reads its executor thread count from.
const THREAD_COUNT_VAR: &str = "ASYNC_STD_THREAD_COUNT";

/// Executor threads: what async-std really starts, read the way it reads it
/// (async-global-executor's config: the variable if it parses as a number,
/// else one per core, and at least one). The runtime reads it once, at its
/// first use in the process; this reads it again, which agrees unless the
/// environment changed in between. Not counted, as for tokio: the reactor
/// thread (`async-io`) and the `blocking` pool that runs DNS lookups.
pub fn runtime_threads() -> usize {
    std::env::var(THREAD_COUNT_VAR)
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Run the plan to completion (or shutdown), handing results to `sink`.
pub fn run(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
) -> Result<RunReport, SetupError> {
    let threads = runtime_threads();
    // async-std starts its runtime at first use and, if it cannot spawn the
    // threads, panics instead of returning an error (and panics again on
    // every later use). Start it here, where that panic can still become a
    // setup error, as a failed `Builder::build` is in the tokio model.
    std::panic::catch_unwind(|| task::block_on(std::future::ready(()))).map_err(|_| {
        SetupError {
            message: format!(
                "cannot start the async-std runtime ({threads} threads): lower \
                 {THREAD_COUNT_VAR} or raise the process's thread limit (ulimit -u)"
            ),
        }
    })?;
    let started_at = SystemTime::now();
    let started = Instant::now();
    // No runtime to build or shut down: the scan runs on the global one, and
    // the calling thread only drives the collector until the scan is over.
    let summary = task::block_on(scan::scan(plan, shutdown, sink, started));
    Ok(RunReport {
        runtime_threads: threads,
        started_at,
        duration: started.elapsed(),
        summary: summary?,
    })
}
