//! Bounded fan-out: `workers` threads, a bounded job queue filled by a
//! dispatcher thread, a bounded result queue, and the collector (the calling
//! thread) that feeds the ledger.
//!
//! The queues and the dispatch / work / collect protocol are the core's
//! [`pulse_core::pool`], the code `loom-tests/` model-checks; this file only
//! starts the threads that run it and says what a probe is.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::Scope;
use std::time::Instant;

use crossbeam_channel::bounded;
use pulse_core::model::{COLLECT_EVERY, Ledger, SetupError, Sink};
use pulse_core::native::Stack;
use pulse_core::panic::message;
use pulse_core::plan::Plan;
use pulse_core::pool::{Pool, Producer, collect, dispatch, work};
use pulse_core::result::{Outcome, ProbeResult};
use pulse_core::shutdown::Shutdown;
use pulse_core::sync::Arc;

use crate::io::Icmp;
use crate::native::Native;
use crate::shutdown::Stop;
use crate::timeout::with_timeout;

/// What every worker thread shares. Borrowed, not `Arc`ed: the threads are
/// scoped, so they cannot outlive it.
struct Ctx {
    /// The targets and options, shared by every thread.
    plan: Arc<Plan>,
    /// Shutdown as blocking threads see it: the flag the dispatcher checks,
    /// the in-flight sockets the watchdog shuts down (shutdown.rs).
    stop: Stop,
    /// The scan's ICMP sockets and their reader threads, if any target pings.
    icmp: Option<Icmp>,
    /// The ureq agents (`--stack native`): http targets go to them, TCP
    /// and ICMP stay on the core's session (native.rs says why).
    native: Option<Native>,
    /// When the scan started: spread due times and queue waits count from it.
    started: Instant,
}

/// Run every target with at most `plan.options.workers` in flight.
pub(crate) fn scan(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
    started_at: Instant,
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
        started: started_at,
    };
    // The queues, both bounded to one item per worker (see `Pool`): the
    // dispatcher is never more than one job per worker ahead, so at the
    // trigger at most that many queued jobs are left for the workers to
    // skip; and a slow sink makes workers wait instead of buffering.
    let pool = Pool::<ProbeResult>::new(workers, &shutdown);
    // Every thread below is scoped: `scope` returns only once all of them
    // have been joined, whichever way the closure returns.
    let summary = std::thread::scope(|s| {
        let (ctx, pool) = (&ctx, &pool);
        // Nothing is sent on `done`: the collector drops its sender once
        // every worker has finished, which tells the watchdog to stand down.
        let (done_tx, done_rx) = bounded::<()>(1);
        let spawned = (|| {
            // Every producer is counted before any worker starts: the result
            // queue closes when the count is back at zero (all workers gone).
            let producers: Vec<Producer<_>> =
                (0..workers).map(|_| Producer::new(&pool.results)).collect();
            // The dispatcher first: the job queue holds one job per worker,
            // so it fills while the workers are still being created, and
            // each new worker finds its first job waiting. Started after
            // them, it left 10,000 workers asleep on an empty queue, to be
            // woken one futex call at a time once the last had started.
            spawn(s, "pulse-dispatch", move || {
                // `pulse serve` spreads start times over the interval:
                // each job is held back until it is due (a scan's `due` is
                // its start, already past).
                let due = |index| {
                    let due = ctx.plan.due(index, ctx.started);
                    due <= Instant::now() || ctx.stop.until(due)
                };
                dispatch(ctx.plan.len(), &pool.jobs, ctx.stop.shutdown(), due);
                // Dispatch is over (all jobs queued, or shutdown): the same
                // thread now keeps watch for the end of the grace period.
                ctx.stop.watch(&done_rx);
            })?;
            for results in producers {
                spawn(s, "pulse-worker", move || worker(ctx, pool, &results))?;
            }
            Ok(())
        })();
        if let Err(e) = spawned {
            // Closing the queue stops the dispatcher and sends the workers
            // already started home once it is empty; emptying it here
            // leaves them nothing but the job each may hold, so `scope`
            // can join them soon. The scan fails as a whole.
            pool.jobs.close();
            while pool.jobs.try_pop().is_some() {}
            drop(done_tx);
            return Err(e);
        }
        // The collector ends when the last worker has returned: that is
        // "all done".
        let mut ledger = Ledger::new(&plan, sink, started_at);
        // Between batches the collector sleeps (COLLECT_EVERY says why).
        let pause = || std::thread::sleep(COLLECT_EVERY);
        collect(&pool.results, pause, |index, result| {
            ledger.record(index, result)
        });
        drop(done_tx);
        Ok(ledger.finish(shutdown.is_triggered(), Instant::now()))
    });
    if let Some(icmp) = &mut ctx.icmp {
        icmp.close();
    }
    summary
}

/// Start a named scoped thread. Failing to is a setup error: the process is
/// out of threads or memory for their stacks.
fn spawn<'scope>(
    s: &'scope Scope<'scope, '_>,
    name: &str,
    f: impl FnOnce() + Send + 'scope,
) -> Result<(), SetupError> {
    match std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(s, f)
    {
        Ok(_) => Ok(()),
        Err(e) => Err(SetupError {
            message: format!(
                "cannot start a {name} thread: {e}. Fix: lower --workers, or raise the \
                 thread limit (ulimit -u, sysctl kernel.threads-max)"
            ),
        }),
    }
}

/// One worker: the core's [`work`] loop, with this model's probe.
fn worker(ctx: &Ctx, pool: &Pool<ProbeResult>, results: &Producer<(usize, ProbeResult)>) {
    work(&pool.jobs, results, ctx.stop.shutdown(), |index| {
        probe_one(ctx, index)
    });
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
    // the unwind.
    let outcome = catch_unwind(AssertUnwindSafe(probe))
        .unwrap_or_else(|payload| Outcome::panicked(&message(payload.as_ref()), start.elapsed()));
    ctx.plan.result(index, outcome, queue_wait)
}
