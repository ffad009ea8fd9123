//! The rayon model: pulse's probe core driven by a rayon thread pool running
//! blocking probes. The wrong tool for IO, measured honestly.
//!
//! # Model
//!
//! A dedicated `rayon::ThreadPool` of `--workers` threads, and a parallel
//! iterator over the target indices: each index becomes a job, and rayon's
//! work-stealing hands the jobs to its threads. Each probe is exactly the
//! threads model's blocking probe (io.rs, timeout.rs re-export it), so the
//! two models differ only in how the work is scheduled. `run` builds the
//! pool with `build_scoped`, which makes its threads std scoped threads:
//! when `run` returns the pool is gone and every one of its threads has been
//! joined. (Dropping a plain `ThreadPool` only asks its threads to exit;
//! they finish later, on their own.)
//!
//! # Bounded fan-out
//!
//! The pool size is the bound: a pool thread runs one probe at a time and
//! blocks in it, so `--workers` threads cannot have more than `--workers`
//! probes in flight (scan.rs). Results go to the collector, the calling
//! thread, over a bounded channel, so a slow sink slows the pool down
//! instead of piling results up in memory. The pool is at most
//! [`MAX_WORKERS`] threads: past that the model refuses the scan (see the
//! last heading for why).
//!
//! # Timeouts
//!
//! The threads model's: one absolute deadline per probe, and before every
//! blocking call the socket's timeout is set to what is left of it.
//!
//! # Shutdown
//!
//! A parallel iterator cannot be stopped halfway, so each index looks at the
//! flag before its probe and returns at once once it is set; targets never
//! started are reported `cancelled` by the core's ledger. Probes in flight
//! are cut off at the end of the grace period by the threads model's
//! watchdog (it shuts their sockets down, which wakes the blocked threads),
//! here on a thread of its own. Signals themselves are caught by the CLI
//! and turned into `Shutdown::trigger`, the same for every model.
//!
//! # Where this model hurts
//!
//! Everywhere, by design: rayon is built for CPU-bound fork/join work, and
//! this job is IO-bound. The benches show what that costs.
//!
//! - Work-stealing assumes every job is computing. A thread blocked in a
//!   socket call looks busy to rayon, which neither runs anything else on
//!   it nor starts another thread in its place (tokio's blocking pool does;
//!   so does Go's scheduler when a goroutine blocks in a system call). A
//!   blocked thread is a lost worker, so the pool has to be as large as the
//!   number of probes in flight: one thread per probe, as in the threads
//!   model, plus rayon's machinery on top.
//! - The global pool is sized for the CPU (one thread per core) and shared
//!   by every `par_iter` in the process. Probes on it would leave two
//!   probes in flight on this machine, and would starve any CPU work that
//!   uses rayon for as long as they block. Hence a pool of our own.
//! - Splitting decides the order, not the input. The iterator splits `0..n`
//!   in halves; each thread goes on with the left half while idle threads
//!   steal right halves. With 4 threads and 32 targets, the first four to
//!   start were 0, 16, 8 and 12, and target 1 started fifth: a target's
//!   queue wait depends on where it falls in the split tree, not on its
//!   position. Left to its default, rayon also splits only into about one
//!   run of targets per thread (and further only what gets stolen), and a
//!   run once started is probed one target after the other: a run of slow
//!   targets holds back its thread while the others go idle.
//!   `with_max_len(1)` makes each target its own stealable job, which fixes
//!   the idling, not the order.
//! - Nothing can be taken back: shutdown cannot stop the iterator, only make
//!   the remaining jobs return at once.
//! - A big pool eats itself. A rayon thread with nothing to do does not
//!   sleep at once: for 32 rounds it tries to steal from every other
//!   thread's deque, yielding between rounds, and every steal attempt pins
//!   crossbeam's epoch, whose periodic advance walks the list of *every*
//!   thread in the process. So one idle round costs about N steals plus
//!   N²/128 list steps, and N threads go idle together when the pool
//!   starts, whenever work runs dry, and at the end: the cost grows with
//!   the cube of the pool size. Measured here with jobs that only sleep
//!   (`perf`: 70% of the time in `crossbeam_epoch::Global::try_advance`,
//!   15% pinning, 6% `Stealer::steal`), a pool of 1,000 threads starts in
//!   0.7 s, 2,000 in 4.6 s, 10,000 in over 80 s; 10,000 blackholed
//!   targets at `--workers 10000 --timeout 2s` took 377 s, where the
//!   threads model takes 7 s. Nothing in rayon turns the spinning off,
//!   and a smaller pool cannot hold more blocked probes, so this model
//!   refuses more than [`MAX_WORKERS`] in flight and says what to use
//!   instead: the threads model (one plain thread per probe and a queue,
//!   nothing that scans) or an async model. It is the general lesson in
//!   its sharpest form: a work-stealing pool is sized for the cores, and
//!   every thread past that is a thief with nothing to steal.

mod io;
mod scan;
mod shutdown;
mod timeout;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use pulse_core::model::{RunReport, SetupError, Sink};
use pulse_core::plan::Plan;
use pulse_core::shutdown::Shutdown;

/// This model's name, as given to `--runtime`.
pub const MODEL: &str = "rayon";

/// OS threads a scan of `plan` runs on, counted as for the threads model,
/// whose probe and watchdog this model runs: the pool (one thread per
/// worker, where the threads model has its workers), the watchdog, and one
/// ICMP reader per address family pinged.
pub use pulse_threads::runtime_threads;

/// Largest pool this model builds. A rayon pool's idle cost grows with
/// the cube of its size (see "Where this model hurts"): measured here, a
/// pool of 1,000 threads starts in 0.7 s, 2,000 in 4.6 s and 10,000 in
/// over 80 s, before it has run anything. At 1,000 the start is still small
/// next to a probe timeout; past it, the pool is the scan's slowest part.
pub const MAX_WORKERS: usize = 1000;

/// Run the plan to completion (or shutdown), handing results to `sink`.
pub fn run(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
) -> Result<RunReport, SetupError> {
    let threads = runtime_threads(&plan);
    let workers = plan.workers();
    if workers > MAX_WORKERS {
        return Err(SetupError {
            message: format!(
                "the rayon model refuses {workers} probes in flight (at most {MAX_WORKERS}): every \
                 idle rayon thread scans every other thread's queue, and each look pins \
                 crossbeam's epoch, whose advance walks every thread, so a pool of {workers} \
                 threads spends minutes in its own idle loop (10,000 blackholed targets at \
                 --workers 10000 took 377 s against a 2 s timeout). Use --runtime threads (the \
                 same blocking probe on plain threads) or an async model (tokio, smol) for more \
                 than {MAX_WORKERS} in flight, or --workers {MAX_WORKERS} or less"
            ),
        });
    }
    let started_at = SystemTime::now();
    let started = Instant::now();
    // `build_scoped` runs the closure with the pool, then drops the pool and
    // joins its threads before returning.
    let summary = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("pulse-rayon-{i}"))
        .build_scoped(rayon::ThreadBuilder::run, |pool| {
            scan::scan(pool, plan, shutdown, sink, started)
        })
        .map_err(|e| SetupError {
            message: format!(
                "cannot start the rayon pool of {workers} threads: {e}. Fix: lower --workers, \
                 or raise the thread limit (ulimit -u, sysctl kernel.threads-max)"
            ),
        })?;
    Ok(RunReport {
        runtime_threads: threads,
        started_at,
        duration: started.elapsed(),
        summary: summary?,
    })
}
