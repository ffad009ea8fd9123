//! The smol model: pulse's probe core driven by a multi-threaded smol executor.
//!
//! # Model
//!
//! An `async_executor::Executor` (smol's `Executor`) run by one OS thread per
//! core. Each probe is a future; while it waits on a socket or a timer it
//! costs a few hundred bytes and no thread. smol has no runtime object and no
//! "current runtime": the executor is a plain value, any thread that calls
//! `executor.run(..)` becomes one of its workers, and the executor is passed
//! to whoever spawns (scan.rs, io.rs). Sockets and timers live in async-io's
//! process-wide reactor, which whichever thread is about to park drives.
//! `run` creates the executor, starts its threads, runs the scan on it, and
//! joins every thread it started before returning, so nothing of the
//! executor leaks to the caller.
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
//! One absolute deadline per probe, `start + timeout`, set once as a
//! `Timer::at(deadline)` raced with `future::or` against the whole exchange
//! (timeout.rs). A server that drips one byte a second cannot extend it,
//! because no read resets it.
//!
//! # Shutdown
//!
//! The core's `Shutdown` notifies an `event_listener::Event` (shutdown.rs).
//! Workers check the flag before taking the next target; each in-flight probe
//! races its exchange against "triggered, then the grace period elapsed" and,
//! if the grace period wins, reports `cancelled`. Targets never started are
//! reported `cancelled` by the core's ledger. Signals themselves are caught
//! by the CLI and turned into `Shutdown::trigger`, the same for every model.
//!
//! # Where this model hurts
//!
//! DNS: smol resolves names with `getaddrinfo` on the `blocking` crate's
//! thread pool (up to 500 threads, `BLOCKING_MAX_THREADS`), so a scan of
//! thousands of names is thread-bound exactly where the rest of the model is
//! not. That pool is process-wide and not ours to join, and in blocking 1.7
//! an idle pool thread never exits unless the pool is over its limit
//! (checked on this machine: one lookup of `localhost` leaves `blocking-1`
//! parked for good). So a scan of names leaves the pool at its high-water
//! mark (it grows while lookups queue up), parked for the rest of the
//! process; the next scan reuses those threads. A probe
//! cut off by its deadline abandons the lookup, but the pool thread runs
//! until getaddrinfo gives up. IP literals, as in the conformance suite's
//! thread count, never reach the pool.
//!
//! Scheduling: async-executor 1.14 pushes every woken task onto its one
//! shared queue (its source has a TODO to use the waking thread's local
//! queue), where tokio keeps a task woken on a worker in that worker's own
//! queue; under heavy load smol's threads meet on that queue more. Like
//! tokio's, the reactor is one epoll driven by whichever thread parks, and it
//! keeps a helper thread, `async-io`, started on first use and alive for the
//! whole process (not one of `runtime_threads`, and not ours to join).
//!
//! System calls: async-io registers every socket with `EPOLLONESHOT`, so
//! each wait re-arms it with an `epoll_ctl MOD` (tokio registers once,
//! edge-triggered, and never again); a thread that wants the reactor's
//! attention while another drives it writes its eventfd, and a timer that
//! becomes the earliest resets its timerfd. Together that is about twice
//! tokio's calls per HTTP probe (the report's kernel section has the
//! counts).

mod io;
mod scan;
mod shutdown;
mod timeout;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use pulse_core::model::{RunReport, SetupError, Sink};
use pulse_core::plan::Plan;
use pulse_core::shutdown::Shutdown;
use smol::Executor;

/// This model's name, as given to `--runtime`.
pub const MODEL: &str = "smol";

/// Executor threads: one per core, stated explicitly because the comparison
/// depends on it. The calling thread counts as one of them: it runs the
/// executor too while it collects results, so `run` starts one thread fewer.
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
    let executor = Executor::new();
    // The executor threads' stop signal: each runs the executor until
    // `until_done.recv()` fails, which happens once `done`, the only sender,
    // is dropped. Nothing is ever sent; the channel closing is the message.
    let (done, until_done) = smol::channel::bounded::<()>(1);
    let started_at = SystemTime::now();
    let started = Instant::now();
    // Scoped threads: they may borrow `executor`, and the scope joins every
    // one of them before `run` goes on, so no thread outlives the scan.
    let summary = std::thread::scope(|threads_scope| {
        // Moved in here so it is dropped on every way out of this closure (an
        // early return below, or a panic in the scan): the threads then stop
        // and the scope can join them instead of waiting forever.
        let done = done;
        for _ in 1..threads {
            let until_done = until_done.clone();
            let executor = &executor;
            std::thread::Builder::new()
                .name("pulse-smol".into())
                .spawn_scoped(threads_scope, move || {
                    smol::block_on(executor.run(until_done.recv()))
                })
                .map_err(|e| SetupError {
                    message: format!("cannot start a smol executor thread: {e}"),
                })?;
        }
        // The collector and the sink stay on this thread (the sink is
        // borrowed, not 'static, so it cannot move into a task); between
        // results this thread runs probes like the others.
        let summary =
            smol::block_on(executor.run(scan::scan(&executor, plan, shutdown, sink, started)));
        drop(done);
        summary
    });
    Ok(RunReport {
        runtime_threads: threads,
        started_at,
        duration: started.elapsed(),
        summary: summary?,
    })
}
