//! What the exporter knows, shared by the round loop (which writes it), the
//! signal thread (reload, stop) and the HTTP threads (which read it).
//!
//! Locks are held only to copy or update plain data, never across a probe,
//! a write to a socket or the rendering of a page: a scrape copies what it
//! needs and renders outside the lock ([`super::metrics`], [`super::page`]),
//! so it neither waits for the round nor makes the round's collector wait
//! for it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use pulse_core::encode::prom::Histogram;
use pulse_core::model::Sink;
use pulse_core::plan::Plan;
use pulse_core::result::{ErrorKind, Kind, ProbeResult};
use pulse_core::shutdown::Shutdown;
use pulse_core::target::Target;

use super::history::History;

/// Upper bounds of the queue-wait histogram, in seconds.
const QUEUE_WAIT_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];
/// Upper bounds of the round-duration histogram, in seconds.
const ROUND_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// A target's identity across reloads: what it probes, and which
/// occurrence of that it is in the file (a file may list one target twice
/// with different options). The line number is not part of it, so adding a
/// line above a target keeps its last result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// The target as written (`Target::text`).
    pub(crate) text: String,
    pub(crate) kind: Kind,
    /// 1 for the first line with this text and kind, 2 for the second...
    pub(crate) occurrence: usize,
}

/// One loaded targets file, as this instance runs it.
pub(crate) struct Config {
    /// The file, as named in messages.
    pub(crate) source: String,
    /// Every target of the file (all shards): `/probe` accepts these.
    pub(crate) all: Vec<Target>,
    /// The files the targets name (`ca=`, `body_file=`, `auth_file=`),
    /// read once per load: `/probe` reads no others.
    pub(crate) files: HashMap<PathBuf, Vec<u8>>,
    /// This shard's targets, with the round options. Kept for the life of
    /// the config, so its `probes_started` counts across rounds.
    pub(crate) plan: Arc<Plan>,
    /// The key of each of the plan's targets, by index.
    pub(crate) keys: Vec<Key>,
    /// Index by key.
    pub(crate) index: HashMap<Key, usize>,
}

impl Config {
    /// Keys for `targets`, in order.
    pub(crate) fn keys(targets: &[Target]) -> Vec<Key> {
        let mut seen: HashMap<(&str, Kind), usize> = HashMap::new();
        targets
            .iter()
            .map(|t| {
                let n = seen.entry((t.text.as_str(), t.kind)).or_default();
                *n += 1;
                Key {
                    text: t.text.clone(),
                    kind: t.kind,
                    occurrence: *n,
                }
            })
            .collect()
    }
}

/// A target's last result and when it arrived.
#[derive(Clone)]
pub(crate) struct Latest {
    pub(crate) result: ProbeResult,
    pub(crate) at: SystemTime,
}

/// The config in force and the last results of each of its targets, under
/// one lock so that a reload and a result can never cross.
pub(crate) struct Current {
    pub(crate) config: Arc<Config>,
    /// Each target's last result, whole, by plan index.
    pub(crate) latest: Vec<Option<Latest>>,
    /// Each target's recent results, compact, by plan index (see
    /// [`History`] for the bound); `None` until its first result.
    pub(crate) history: Vec<Option<Arc<History>>>,
}

/// What the page at `/` draws, copied under the lock.
pub(crate) struct PageSnapshot {
    pub(crate) config: Arc<Config>,
    pub(crate) latest: Vec<Option<Latest>>,
    pub(crate) history: Vec<Option<Arc<History>>>,
    pub(crate) rounds: RoundCounts,
}

/// The round being run, for the in-flight gauge and for stopping it.
pub(crate) struct Round {
    pub(crate) plan: Arc<Plan>,
    /// `plan.probes_started()` when the round began.
    pub(crate) started_before: usize,
    /// Results the round has handed over so far.
    pub(crate) completed: Arc<AtomicUsize>,
    pub(crate) shutdown: Shutdown,
}

/// A round that ran to its end, as the round loop reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CompletedRound {
    /// Wall time from its start to its last result.
    pub(crate) duration: Duration,
    /// Targets it probed.
    pub(crate) targets: usize,
    /// Of which up.
    pub(crate) up: usize,
}

/// How a round ended, as the round loop reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RoundEnd {
    /// It ran to its end.
    Completed(CompletedRound),
    /// A stop (SIGTERM) cut it short: counted nowhere, since it neither
    /// completed nor failed, and the process is about to exit.
    Interrupted,
    /// It could not run (no ICMP socket, no runtime); the log says why.
    Failed,
}

/// The last round that ran to its end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastRound {
    pub(crate) round: CompletedRound,
    pub(crate) ended: SystemTime,
}

/// Rounds over the process's life, by how they went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoundCounts {
    /// Ran to their end.
    pub(crate) completed: u64,
    /// Not started: the round before still ran at their start time.
    pub(crate) skipped: u64,
    /// Could not run (a setup failure such as no ICMP socket).
    pub(crate) failed: u64,
}

/// Reloads of the targets file over the process's life.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reloads {
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    /// Whether the last one succeeded (true before any).
    pub(crate) last_ok: bool,
    /// When the targets in force were loaded (at start, or the last
    /// successful reload).
    pub(crate) last_ok_at: SystemTime,
}

/// Counts over the process's life. Cloned whole by a scrape: a few hundred
/// bytes, copied under the lock and rendered outside it.
#[derive(Clone)]
pub(crate) struct Counters {
    /// Round probes finished, by kind and result (`up`, or the error kind).
    pub(crate) probes: BTreeMap<(Kind, &'static str), u64>,
    /// On-demand `/probe` probes finished, by kind and result; `cancelled`
    /// when the client went away before the probe ended.
    pub(crate) probe_requests: BTreeMap<(Kind, &'static str), u64>,
    pub(crate) queue_wait: Histogram,
    pub(crate) round_duration: Histogram,
    pub(crate) rounds: RoundCounts,
    pub(crate) last_round: Option<LastRound>,
    pub(crate) reloads: Reloads,
}

/// Fixed facts about this instance, for `pulse_build_info` and the page.
pub(crate) struct Info {
    pub(crate) runtime: &'static str,
    pub(crate) interval: Duration,
    pub(crate) workers: usize,
    /// `--shard I/N` as (I, N).
    pub(crate) shard: Option<(u64, u64)>,
    pub(crate) listen: String,
    pub(crate) started: SystemTime,
}

/// Everything shared.
pub(crate) struct State {
    pub(crate) info: Info,
    current: Mutex<Current>,
    round: Mutex<Option<Round>>,
    counters: Mutex<Counters>,
    /// Triggered by SIGTERM/SIGINT: no new round; `/healthz` says so.
    pub(crate) stopping: Shutdown,
    /// The HTTP server's connection figures, which it updates itself.
    pub(crate) http: Arc<super::http::Stats>,
}

/// Lock, carrying on after a panic elsewhere: every critical section here
/// only moves plain data, which stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    pub(crate) fn new(info: Info, config: Config) -> State {
        let latest = vec![None; config.plan.len()];
        let history = vec![None; config.plan.len()];
        State {
            info,
            current: Mutex::new(Current {
                config: Arc::new(config),
                latest,
                history,
            }),
            round: Mutex::new(None),
            counters: Mutex::new(Counters {
                probes: BTreeMap::new(),
                probe_requests: BTreeMap::new(),
                queue_wait: Histogram::new(QUEUE_WAIT_BUCKETS),
                round_duration: Histogram::new(ROUND_BUCKETS),
                rounds: RoundCounts::default(),
                last_round: None,
                reloads: Reloads {
                    succeeded: 0,
                    failed: 0,
                    last_ok: true,
                    last_ok_at: SystemTime::now(),
                },
            }),
            stopping: Shutdown::new(Duration::ZERO),
            http: Arc::default(),
        }
    }

    /// The config in force.
    pub(crate) fn config(&self) -> Arc<Config> {
        lock(&self.current).config.clone()
    }

    /// Put a newly loaded config in force (from the next round on). Results
    /// of targets it keeps are kept; those of targets it drops are gone at
    /// once, so `/metrics` never shows a target the file no longer has.
    pub(crate) fn replace_config(&self, config: Config) {
        {
            let mut guard = lock(&self.current);
            let cur = &mut *guard;
            let mut latest = vec![None; config.plan.len()];
            let mut history = vec![None; config.plan.len()];
            let old = cur
                .config
                .keys
                .iter()
                .zip(cur.latest.iter_mut().zip(cur.history.iter_mut()));
            for (key, (last, ring)) in old {
                if let Some(&j) = config.index.get(key) {
                    latest[j] = last.take();
                    history[j] = ring.take();
                }
            }
            *cur = Current {
                config: Arc::new(config),
                latest,
                history,
            };
            drop(guard);
        }
        let mut c = lock(&self.counters);
        c.reloads.succeeded += 1;
        c.reloads.last_ok = true;
        c.reloads.last_ok_at = SystemTime::now();
    }

    /// Count a reload that failed (the old config stays in force).
    pub(crate) fn reload_failed(&self) {
        let mut c = lock(&self.counters);
        c.reloads.failed += 1;
        c.reloads.last_ok = false;
    }

    /// Record the round that is about to run; false if the exporter is
    /// stopping, and the round must not start. Either this sees the stop, or
    /// the stop sees the round (both look under the `round` lock) and
    /// triggers it.
    pub(crate) fn begin_round(&self, round: Round) -> bool {
        let mut r = lock(&self.round);
        if self.stopping.is_triggered() {
            return false;
        }
        *r = Some(round);
        true
    }

    /// The round has ended.
    pub(crate) fn end_round(&self, end: RoundEnd) {
        *lock(&self.round) = None;
        let mut c = lock(&self.counters);
        match end {
            RoundEnd::Completed(round) => {
                c.rounds.completed += 1;
                c.round_duration.observe(round.duration.as_secs_f64());
                c.last_round = Some(LastRound {
                    round,
                    ended: SystemTime::now(),
                });
            }
            RoundEnd::Interrupted => {}
            RoundEnd::Failed => c.rounds.failed += 1,
        }
    }

    /// Count rounds skipped because the one before overran the interval.
    pub(crate) fn skipped(&self, n: u64) {
        lock(&self.counters).rounds.skipped += n;
    }

    /// Stop: no new round, and the running one (if any) drains.
    pub(crate) fn stop(&self, now: Instant) {
        self.stopping.trigger(now);
        if let Some(round) = &*lock(&self.round) {
            round.shutdown.trigger(now);
        }
    }

    /// Rounds so far, by how they went.
    pub(crate) fn round_counts(&self) -> RoundCounts {
        lock(&self.counters).rounds
    }

    /// A copy of the counters, for rendering.
    pub(crate) fn counters(&self) -> Counters {
        lock(&self.counters).clone()
    }

    /// Probes of the running round started and not yet finished, or `None`
    /// between rounds.
    pub(crate) fn in_flight(&self) -> Option<usize> {
        lock(&self.round).as_ref().map(|r| {
            let started = r.plan.probes_started().saturating_sub(r.started_before);
            started.saturating_sub(r.completed.load(Ordering::Relaxed))
        })
    }

    /// Count an on-demand `/probe` result.
    pub(crate) fn record_probe_request(&self, result: &ProbeResult) {
        let outcome = result.error.as_ref().map_or("up", |e| e.kind.as_str());
        *lock(&self.counters)
            .probe_requests
            .entry((result.kind, outcome))
            .or_default() += 1;
    }

    /// A result from a round run with `config`.
    fn record(&self, config: &Config, index: usize, result: ProbeResult) {
        {
            let mut c = lock(&self.counters);
            let outcome = result.error.as_ref().map_or("up", |e| e.kind.as_str());
            *c.probes.entry((result.kind, outcome)).or_default() += 1;
            c.queue_wait.observe(result.queue_wait_ms / 1000.0);
        }
        // A cancelled probe (the exporter is stopping) says nothing about
        // its target: keep the last real result.
        if result
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Cancelled)
        {
            return;
        }
        let mut guard = lock(&self.current);
        let cur = &mut *guard;
        // A reload during the round: find the target in the new config by
        // its key (it may have moved, or be gone).
        let slot = if std::ptr::eq(config, Arc::as_ptr(&cur.config)) {
            Some(index)
        } else {
            config
                .keys
                .get(index)
                .and_then(|k| cur.config.index.get(k).copied())
        };
        let Some((last, ring)) =
            slot.and_then(|i| cur.latest.get_mut(i).zip(cur.history.get_mut(i)))
        else {
            return;
        };
        let at = SystemTime::now();
        // Copies the ring only if a page render is holding it now.
        Arc::make_mut(ring.get_or_insert_with(Arc::default)).push(&result, at);
        *last = Some(Latest { result, at });
    }

    /// A snapshot of the config and last results, for `/metrics`.
    pub(crate) fn snapshot(&self) -> (Arc<Config>, Vec<Option<Latest>>) {
        let cur = lock(&self.current);
        (cur.config.clone(), cur.latest.clone())
    }

    /// What the page draws: the last results, the rings (shared, not
    /// copied) and the round counts.
    pub(crate) fn page_snapshot(&self) -> PageSnapshot {
        let (config, latest, history) = {
            let cur = lock(&self.current);
            (cur.config.clone(), cur.latest.clone(), cur.history.clone())
        };
        PageSnapshot {
            config,
            latest,
            history,
            rounds: self.round_counts(),
        }
    }
}

/// The sink of one round: results go to the shared state as they arrive.
pub(crate) struct RoundSink {
    pub(crate) state: Arc<State>,
    pub(crate) config: Arc<Config>,
    pub(crate) completed: Arc<AtomicUsize>,
    /// The round's first `permission` failure's message (a probe this host
    /// does not allow, e.g. ICMP with no raw or ping socket), which names
    /// the fix: the round loop logs it once.
    pub(crate) denied: Option<String>,
}

impl Sink for RoundSink {
    fn accept(&mut self, index: usize, result: ProbeResult) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        if self.denied.is_none() {
            self.denied = crate::scan::denied(std::slice::from_ref(&result));
        }
        crate::scan::log_result(&result);
        self.state.record(&self.config, index, result);
    }
}
