//! Bounded fan-out: `workers` tasks, a shared counter as the queue, a bounded
//! results channel, and the collector that feeds the ledger.

use std::sync::Arc;
use std::time::Instant;

use pulse_core::model::{COLLECT_EVERY, Ledger, SetupError, Sink};
use pulse_core::native::Stack;
use pulse_core::panic::catch_unwind_future;
use pulse_core::plan::Plan;
use pulse_core::result::{Outcome, ProbeResult};
use pulse_core::shutdown::Shutdown;
use pulse_core::sync::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

use crate::io::Icmp;
use crate::native::Native;
use crate::shutdown::Stop;
use crate::timeout::with_timeout;

/// What every worker task shares.
struct Ctx {
    /// The targets and options, shared by every worker.
    plan: Arc<Plan>,
    /// The queue: the index of the next target to probe. A counter is all a
    /// queue of `0..n` needs; `fetch_add` hands each index to exactly one worker.
    next: AtomicUsize,
    /// Shutdown as this runtime's tasks wait for it: checked before each
    /// target, raced by each probe (shutdown.rs).
    stop: Stop,
    /// The scan's ICMP sockets and their reader tasks, if any target pings
    /// (the core stack's).
    icmp: Option<Icmp>,
    /// The native stack's clients (`--stack native`), instead of the
    /// core's session and sockets.
    native: Option<Native>,
    /// When the scan started: spread due times and queue waits count from it.
    started: Instant,
}

/// Run every target with at most `plan.options.workers` in flight.
pub(crate) async fn scan(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
    started: Instant,
) -> Result<pulse_core::result::Summary, SetupError> {
    let (icmp, native) = match plan.options.stack {
        Stack::Core => (Icmp::open(&plan)?, None),
        Stack::Native => (None, Some(Native::open(&plan)?)),
    };
    let workers = plan.workers();
    let ctx = Arc::new(Ctx {
        plan: plan.clone(),
        next: AtomicUsize::new(0),
        stop: Stop::new(&shutdown),
        icmp,
        native,
        started,
    });
    // Bounded: at most one finished result per worker waits for the
    // collector; beyond that, workers wait instead of buffering.
    let (tx, mut rx) = mpsc::channel::<(usize, ProbeResult)>(workers);
    for _ in 0..workers {
        tokio::spawn(worker(ctx.clone(), tx.clone()));
    }
    // The collector ends when the last sender (one per worker) is dropped,
    // i.e. when every worker has returned: that is "all tasks done".
    drop(tx);
    let mut ledger = Ledger::new(&plan, sink, started);
    while let Some((index, result)) = rx.recv().await {
        ledger.record(index, result);
        // Take what else has come, then let results gather for a while
        // (COLLECT_EVERY says why).
        while let Ok((index, result)) = rx.try_recv() {
            ledger.record(index, result);
        }
        tokio::time::sleep(COLLECT_EVERY).await;
    }
    if let Some(icmp) = &ctx.icmp {
        icmp.close();
    }
    Ok(ledger.finish(shutdown.is_triggered(), Instant::now()))
}

/// One worker: take the next target until none are left or shutdown began.
async fn worker(ctx: Arc<Ctx>, tx: mpsc::Sender<(usize, ProbeResult)>) {
    loop {
        if ctx.stop.is_triggered() {
            break;
        }
        let index = ctx.next.fetch_add(1, Ordering::Relaxed);
        if index >= ctx.plan.len() {
            break;
        }
        // `pulse serve` spreads start times over the interval; a scan's
        // `due` is its start, already past. Boxed, like the send below: only
        // a spread probe waits here, and unboxed the wait's state would be
        // in every worker for its whole life.
        let due = ctx.plan.due(index, ctx.started);
        if due > Instant::now() && !Box::pin(ctx.stop.until(due)).await {
            break;
        }
        let result = probe_one(&ctx, index).await;
        // Usually there is room and this does not wait. When the collector
        // is behind, the send waits, boxed: a waiting send holds the result
        // (300 bytes). The wait is outside the `match`, whose scrutinee (the
        // result again) would otherwise be kept across it.
        let behind = match tx.try_send((index, result)) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(message)) => Some(Box::pin(tx.send(message))),
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        };
        if let Some(send) = behind
            && send.await.is_err()
        {
            break;
        }
    }
}

/// Probe one target; a panic anywhere in it becomes its result.
async fn probe_one(ctx: &Ctx, index: usize) -> ProbeResult {
    let start = Instant::now();
    let queue_wait = start.saturating_duration_since(ctx.plan.due(index, ctx.started));
    let limit = ctx.plan.timeout(index);
    let probe = async {
        if let Some(native) = &ctx.native {
            // Boxed: only a native scan pays for the client's futures.
            return Box::pin(native.probe(&ctx.plan, index, start, &ctx.stop)).await;
        }
        let session = ctx.plan.session(index, start);
        with_timeout(session, start, limit, &ctx.stop, ctx.icmp.as_ref()).await
    };
    let outcome = catch_unwind_future(probe)
        .await
        .unwrap_or_else(|message| Outcome::panicked(&message, start.elapsed()));
    ctx.plan.result(index, outcome, queue_wait)
}
