//! Bounded fan-out: a pool of `workers` rayon threads, a parallel iterator
//! over the target indices as the queue, a bounded results channel, and the
//! collector (the calling thread) that feeds the ledger.
//!
//! The bound is the pool size, and nothing else is needed: a pool thread
//! runs one probe at a time and blocks in it, so `workers` threads cannot
//! have more than `workers` probes in flight.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Sender, bounded};
use pulse_core::model::{COLLECT_EVERY, Ledger, SetupError, Sink};
use pulse_core::native::Stack;
use pulse_core::panic::message;
use pulse_core::plan::Plan;
use pulse_core::result::{Outcome, ProbeResult};
use pulse_core::shutdown::Shutdown;
use rayon::ThreadPool;
use rayon::iter::{IndexedParallelIterator as _, IntoParallelIterator as _, ParallelIterator as _};

use crate::io::Icmp;
use crate::shutdown::Stop;
use crate::timeout::with_timeout;
use pulse_threads::Native;

/// What every probe shares (borrowed by the pool's jobs: `in_place_scope`
/// waits for them all before it returns).
struct Ctx {
    /// The targets and options, shared by every pool thread.
    plan: Arc<Plan>,
    /// The threads model's shutdown: the flag each job checks, the
    /// in-flight sockets the watchdog shuts down.
    stop: Stop,
    /// The scan's ICMP sockets and their reader threads, if any target pings.
    icmp: Option<Icmp>,
    /// The ureq agents (`--stack native`): http targets go to them, TCP
    /// and ICMP stay on the core's session (native.rs says why).
    native: Option<Native>,
    /// When the scan started: spread due times and queue waits count from it.
    started: Instant,
}

/// Run every target on `pool`, at most one probe per pool thread at a time.
pub(crate) fn scan(
    pool: &ThreadPool,
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
    started: Instant,
) -> Result<pulse_core::result::Summary, SetupError> {
    let icmp = Icmp::open(&plan)?;
    let native = match plan.options.stack {
        Stack::Core => None,
        Stack::Native => Some(Native::open(&plan)?),
    };
    let workers = plan.workers();
    let mut ctx = Ctx {
        plan: plan.clone(),
        stop: Stop::new(&shutdown),
        icmp,
        native,
        started,
    };
    // The watchdog is a std scoped thread: joined before `scope` returns.
    let summary = std::thread::scope(|s| {
        let ctx = &ctx;
        // Nothing is sent on `done`: dropping its sender, once every probe
        // has finished, tells the watchdog to stand down.
        let (done_tx, done_rx) = bounded::<()>(1);
        std::thread::Builder::new()
            .name("pulse-watchdog".into())
            .spawn_scoped(s, move || ctx.stop.watch(&done_rx))
            .map_err(|e| SetupError {
                message: format!("cannot start the watchdog thread: {e}"),
            })?;
        // Bounded: at most one finished result per worker waits for the
        // collector; beyond that, pool threads wait instead of buffering.
        let (tx, rx) = bounded::<(usize, ProbeResult)>(workers);
        let mut ledger = Ledger::new(&plan, sink, started);
        // `in_place_scope` runs this closure on the calling thread, which is
        // not a pool thread and so never runs a probe: it collects. The one
        // job spawned into the pool runs the whole parallel iterator.
        pool.in_place_scope(|scope| {
            scope.spawn(move |_| {
                (0..ctx.plan.len())
                    .into_par_iter()
                    // Every target its own job. Left to itself rayon splits
                    // `0..n` into about one run of targets per thread, each
                    // probed one after the other once started: a run of slow
                    // targets would hold its thread while the others sit
                    // idle at the end.
                    .with_max_len(1)
                    // rayon calls `init` once per job it splits off, not per
                    // thread: a sender clone per probe, which is cheap. The
                    // read buffer is the pool thread's own (readbuf).
                    .for_each_init(|| tx.clone(), |tx, index| worker(ctx, index, tx));
            });
            // Ends when the last clone of `tx` is dropped, i.e. when the
            // parallel iterator has run every index: that is "all done".
            while let Ok((index, result)) = rx.recv() {
                ledger.record(index, result);
                // Take what else has come, then let results gather for a
                // while (COLLECT_EVERY says why).
                while let Ok((index, result)) = rx.try_recv() {
                    ledger.record(index, result);
                }
                std::thread::sleep(COLLECT_EVERY);
            }
        });
        drop(done_tx);
        Ok(ledger.finish(shutdown.is_triggered(), Instant::now()))
    });
    if let Some(icmp) = &mut ctx.icmp {
        icmp.close();
    }
    summary
}

/// What a pool thread does with one target: probe it, unless shutdown began.
fn worker(ctx: &Ctx, index: usize, tx: &Sender<(usize, ProbeResult)>) {
    // A parallel iterator cannot be stopped: every remaining index still
    // comes through here, and returns at once. The ledger reports it.
    if ctx.stop.is_triggered() {
        return;
    }
    // `pulse serve` spreads start times over the interval: this pool thread
    // waits for it (a scan's `due` is its start, already past). rayon hands
    // out indices by splitting ranges, not in order, so a thread may hold an
    // early index while another sleeps on a later one: a spread round can
    // start probes late under rayon where a queue would not.
    let due = ctx.plan.due(index, ctx.started);
    if due > Instant::now() && !ctx.stop.until(due) {
        return;
    }
    let result = probe_one(ctx, index);
    // Fails only if the collector is gone, and then nobody wants it.
    let _ = tx.send((index, result));
}

/// Probe one target; a panic anywhere in it becomes its result.
fn probe_one(ctx: &Ctx, index: usize) -> ProbeResult {
    let start = Instant::now();
    let queue_wait = start.saturating_duration_since(ctx.plan.due(index, ctx.started));
    let limit = ctx.plan.timeout(index);
    let probe = || {
        if let Some(outcome) = ctx
            .native
            .as_ref()
            .and_then(|n| n.probe(&ctx.plan, index, start, &ctx.stop))
        {
            return outcome;
        }
        let session = ctx.plan.session(index, start);
        with_timeout(session, start, limit, &ctx.stop, ctx.icmp.as_ref())
    };
    // AssertUnwindSafe: after a panic nothing of this probe is used again;
    // its socket and ICMP entry are released by their guards' drops during
    // the unwind. Caught here, the panic never reaches rayon, which would
    // otherwise carry it to the end of the scope and fail the whole scan.
    let outcome = catch_unwind(AssertUnwindSafe(probe))
        .unwrap_or_else(|payload| Outcome::panicked(&message(payload.as_ref()), start.elapsed()));
    ctx.plan.result(index, outcome, queue_wait)
}
