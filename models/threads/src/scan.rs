//! Bounded fan-out: `workers` threads, a bounded channel as the queue filled
//! by a dispatcher thread, a bounded results channel, and the collector (the
//! calling thread) that feeds the ledger.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::Scope;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded, select};
use pulse_core::model::{Ledger, SetupError, Sink};
use pulse_core::panic::message;
use pulse_core::plan::Plan;
use pulse_core::result::{Outcome, ProbeResult};
use pulse_core::shutdown::Shutdown;

use crate::io::Icmp;
use crate::shutdown::Stop;
use crate::timeout::with_timeout;

/// What every worker thread shares. Borrowed, not `Arc`ed: the threads are
/// scoped, so they cannot outlive it.
struct Ctx {
    plan: Arc<Plan>,
    stop: Stop,
    icmp: Option<Icmp>,
    started: Instant,
}

/// Worker threads for this plan: `--workers`, but no more than there are
/// targets (a thread with nothing to do is still a thread to start and join).
pub(crate) fn workers(plan: &Plan) -> usize {
    plan.options.workers.clamp(1, plan.len().max(1))
}

/// Run every target with at most `plan.options.workers` in flight.
pub(crate) fn scan(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
    started: Instant,
) -> Result<pulse_core::result::Summary, SetupError> {
    let icmp = Icmp::open(&plan)?;
    let workers = workers(&plan);
    let mut ctx = Ctx {
        plan: plan.clone(),
        stop: Stop::new(&shutdown),
        icmp,
        started,
    };
    // Every thread below is scoped: `scope` returns only once all of them
    // have been joined, whichever way the closure returns.
    let summary = std::thread::scope(|s| {
        let ctx = &ctx;
        // The queue. Bounded, so the dispatcher is never more than one job
        // per worker ahead: when shutdown comes it stops, and at most that
        // many queued jobs are left for the workers to skip. Unbounded, every
        // target would already sit in the queue at once.
        let (jobs_tx, jobs_rx) = bounded::<usize>(workers);
        // Bounded: at most one finished result per worker waits for the
        // collector; beyond that, workers wait instead of buffering.
        let (tx, rx) = bounded::<(usize, ProbeResult)>(workers);
        for _ in 0..workers {
            let (jobs, tx) = (jobs_rx.clone(), tx.clone());
            spawn(s, "pulse-worker", move || worker(ctx, &jobs, &tx))?;
        }
        drop((jobs_rx, tx));
        // Nothing is sent on `done`: the collector drops its sender once
        // every worker has finished, which tells the watchdog to stand down.
        let (done_tx, done_rx) = bounded::<()>(1);
        spawn(s, "pulse-dispatch", move || {
            dispatch(ctx, jobs_tx);
            // Dispatch is over (all jobs queued, or shutdown): the same
            // thread now keeps watch for the end of the grace period.
            ctx.stop.watch(&done_rx);
        })?;
        // The collector ends when the last sender (one per worker) is
        // dropped, i.e. when every worker has returned: that is "all done".
        let mut ledger = Ledger::new(&plan, sink, started);
        for (index, result) in &rx {
            ledger.record(index, result);
        }
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

/// Queue every target index in order, until the plan is exhausted or
/// shutdown began. Returning drops `jobs`, which closes the queue: that is
/// how the workers learn there is no more work.
fn dispatch(ctx: &Ctx, jobs: Sender<usize>) {
    for index in 0..ctx.plan.len() {
        if ctx.stop.is_triggered() {
            break;
        }
        // `pulse serve` spreads start times over the interval: hold the job
        // back until it is due (a scan's `due` is its start, already past).
        let due = ctx.plan.due(index, ctx.started);
        if due > Instant::now() && !ctx.stop.until(due) {
            break;
        }
        // The queue is full while every worker is busy; the trigger must
        // still stop us at once, not when a worker next takes a job.
        select! {
            send(jobs, index) -> sent => if sent.is_err() { break },
            recv(ctx.stop.triggered()) -> _ => break,
        }
    }
}

/// One worker: take the next target until none are left or shutdown began.
fn worker(ctx: &Ctx, jobs: &Receiver<usize>, tx: &Sender<(usize, ProbeResult)>) {
    let mut buf = vec![0u8; 16 * 1024];
    // `recv` fails once the queue is closed and empty.
    while let Ok(index) = jobs.recv() {
        // A job taken after the trigger is dropped, never started: the
        // ledger reports it cancelled.
        if ctx.stop.is_triggered() {
            break;
        }
        let result = probe_one(ctx, index, &mut buf);
        if tx.send((index, result)).is_err() {
            break;
        }
    }
}

/// Probe one target; a panic anywhere in it becomes its result.
fn probe_one(ctx: &Ctx, index: usize, buf: &mut [u8]) -> ProbeResult {
    let start = Instant::now();
    let queue_wait = start.saturating_duration_since(ctx.plan.due(index, ctx.started));
    let limit = ctx.plan.timeout(index);
    let probe = || {
        let session = ctx.plan.session(index, start);
        with_timeout(session, start, limit, &ctx.stop, ctx.icmp.as_ref(), buf)
    };
    // AssertUnwindSafe: after a panic nothing of this probe is used again;
    // its socket and ICMP entry are released by their guards' drops during
    // the unwind.
    let outcome = catch_unwind(AssertUnwindSafe(probe))
        .unwrap_or_else(|payload| Outcome::panicked(&message(payload.as_ref()), start.elapsed()));
    ctx.plan.result(index, outcome, queue_wait)
}
