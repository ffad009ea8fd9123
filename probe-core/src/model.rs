//! The contract every model honours, and the bookkeeping they share.
//!
//! A model is a function with this shape (each `models/<name>` crate exports
//! one as `run`, next to its `MODEL` name):
//!
//! ```text
//! pub fn run(plan: Arc<Plan>, shutdown: Shutdown, sink: &mut dyn Sink) -> Result<RunReport, SetupError>
//! ```
//!
//! It runs every target of the plan with at most `plan.options.workers`
//! probes in flight, hands each result to the sink exactly once (through a
//! [`Ledger`], which also accounts for targets that never ran), honours the
//! shutdown protocol ([`crate::shutdown`]), and returns the summary. Only
//! setup failures are errors; a probe's failure is a result.

use std::time::{Duration, Instant, SystemTime};

use crate::plan::Plan;
use crate::result::{ErrorKind, ProbeResult, Summary};

/// How long a model's collector lets results gather between two looks,
/// once it has found some.
///
/// Results travel from the workers to the collector, which runs on the
/// thread that called `run` (it owns the sink). Woken for every result, the
/// collector costs two futex calls per probe, a wake from the worker and a
/// wait of its own: on this 2-core machine that was 1.8 of the 11 system
/// calls a tokio HTTP probe made. Woken at most once a millisecond, it takes
/// a batch each time; the results wait at most that long (a jsonl line, a
/// serve metric, a millisecond late), and the bounded results channel still
/// makes workers wait when the collector falls behind. A collector with
/// nothing waiting still sleeps until the first result, so a slow scan costs
/// no extra wake-ups. Every model uses this one value, so the comparison
/// stays fair.
pub const COLLECT_EVERY: Duration = Duration::from_millis(1);

/// Where results go, in completion order. Called from one thread at a time
/// (the model's collector), so it needs no locking of its own.
pub trait Sink: Send {
    /// Take the result of target `index` (its position in the plan).
    fn accept(&mut self, index: usize, result: ProbeResult);
}

/// A sink that keeps results by input position, for the ordered outputs
/// (json, yaml, table, prom).
#[derive(Debug, Default)]
pub struct Collect {
    slots: Vec<Option<ProbeResult>>,
}

impl Collect {
    /// A collector for a plan of `len` targets.
    pub fn new(len: usize) -> Self {
        Collect {
            slots: vec![None; len],
        }
    }

    /// The results in input order (every slot is filled after a `run`,
    /// which the ledger guarantees).
    pub fn into_ordered(self) -> Vec<ProbeResult> {
        self.slots.into_iter().flatten().collect()
    }
}

impl Sink for Collect {
    fn accept(&mut self, index: usize, result: ProbeResult) {
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(result);
        }
    }
}

/// What a model returns after a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// OS threads the model used to run probes (runtime workers, pool size).
    pub runtime_threads: usize,
    /// Wall-clock start of the scan.
    pub started_at: SystemTime,
    /// Wall time of the whole scan.
    pub duration: Duration,
    /// Counts.
    pub summary: Summary,
}

/// A failure to set the scan up (runtime, socket), with the fix in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError {
    /// What failed and how to fix it.
    pub message: String,
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SetupError {}

/// Exactly-once bookkeeping between a model's collector and the sink: each
/// target's result is passed on once, duplicates are dropped (and counted, so
/// a test can see a model that produces them), and at the end every target
/// that never reported is reported `cancelled`.
pub struct Ledger<'a> {
    plan: &'a Plan,
    sink: &'a mut dyn Sink,
    seen: Vec<bool>,
    summary: Summary,
    duplicates: usize,
    started: Instant,
}

impl<'a> Ledger<'a> {
    /// A ledger for `plan` writing to `sink`; `started` is the scan start.
    pub fn new(plan: &'a Plan, sink: &'a mut dyn Sink, started: Instant) -> Self {
        Ledger {
            plan,
            sink,
            seen: vec![false; plan.len()],
            summary: Summary::default(),
            duplicates: 0,
            started,
        }
    }

    /// Record the result of target `index`.
    pub fn record(&mut self, index: usize, result: ProbeResult) {
        match self.seen.get_mut(index) {
            Some(seen) if !*seen => {
                *seen = true;
                self.summary.add(&result);
                self.sink.accept(index, result);
            }
            _ => self.duplicates += 1,
        }
    }

    /// Results recorded twice (always zero for a correct model).
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Account for every target that has no result yet as cancelled, and
    /// return the summary. `interrupted` says whether shutdown was triggered.
    pub fn finish(mut self, interrupted: bool, now: Instant) -> Summary {
        let wait = now.saturating_duration_since(self.started);
        for i in 0..self.seen.len() {
            if !self.seen[i] {
                let r = self.plan.failed(
                    i,
                    ErrorKind::Cancelled,
                    "scan interrupted before this probe started",
                    Duration::ZERO,
                    wait,
                );
                self.record(i, r);
            }
        }
        self.summary.interrupted = interrupted;
        self.summary
    }
}
