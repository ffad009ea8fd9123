//! The tokio model: pulse's probe core driven by a multi-threaded tokio runtime.
//!
//! # Model
//!
//! A work-stealing runtime with one worker thread per core. Each probe is a
//! future; while it waits on a socket or a timer it costs a few hundred bytes
//! and no thread. `run` builds the runtime, runs the scan on it, and shuts it
//! down, so nothing of tokio leaks to the caller.
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
//! One absolute deadline per probe, `start + timeout`, set once with
//! `tokio::time::timeout_at` around the whole exchange (timeout.rs). A server
//! that drips one byte a second cannot extend it, because no read resets it.
//!
//! # Shutdown
//!
//! The core's `Shutdown` flips a `watch` channel (shutdown.rs). Workers check
//! the flag before taking the next target; each in-flight probe races its
//! exchange against "triggered, then the grace period elapsed" and, if the
//! grace period wins, reports `cancelled`. Targets never started are
//! reported `cancelled` by the core's ledger. Signals themselves are caught
//! by the CLI and turned into `Shutdown::trigger`, the same for every model.
//!
//! # Where this model hurts
//!
//! DNS: tokio resolves names with `getaddrinfo` on its blocking thread pool
//! (up to 512 threads), so a scan of thousands of names is thread-bound
//! exactly where the rest of the model is not. A probe cut off by its deadline
//! abandons the lookup, but the blocking thread runs until getaddrinfo gives up.
//!
//! System calls: mio removes every socket from epoll (`epoll_ctl DEL`)
//! before the close that would remove it anyway, one call per probe that no
//! setting turns off; and `TcpStream::connect` reads `SO_ERROR` after every
//! connect, which is why io.rs connects through `pulse_net::start_connect`
//! and asks only when tokio's readiness says the connect failed. The
//! report's kernel section counts what is left (`strace -c -f`).

mod io;
mod native;
mod scan;
mod shutdown;
mod timeout;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pulse_core::model::{RunReport, SetupError, Sink};
use pulse_core::plan::Plan;
use pulse_core::shutdown::Shutdown;

/// This model's name, as given to `--runtime`.
pub const MODEL: &str = "tokio";

/// Runtime worker threads: one per core, tokio's own default, stated
/// explicitly because the comparison depends on it.
pub fn runtime_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run the plan to completion (or shutdown), handing results to `sink`.
pub fn run(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
) -> Result<RunReport, SetupError> {
    let threads = runtime_threads();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("pulse-tokio")
        .enable_all()
        .build()
        .map_err(|e| SetupError {
            message: format!("cannot start the tokio runtime: {e}"),
        })?;
    let started_at = SystemTime::now();
    let started = Instant::now();
    let summary = rt.block_on(scan::scan(plan, shutdown, sink, started));
    // Blocking DNS lookups abandoned by timed-out probes may still be
    // running; don't wait for getaddrinfo to give up on them.
    rt.shutdown_timeout(Duration::from_millis(50));
    Ok(RunReport {
        runtime_threads: threads,
        started_at,
        duration: started.elapsed(),
        summary: summary?,
    })
}
