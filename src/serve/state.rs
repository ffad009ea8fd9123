//! What the exporter knows, shared by the round loop (which writes it), the
//! signal thread (reload, stop) and the HTTP threads (which read it).
//!
//! Locks are held only to copy or update plain data, never across a probe,
//! a write to a socket or the rendering of a page: a scrape copies what it
//! needs and renders outside the lock, so it neither waits for the round nor
//! makes the round's collector wait for it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use pulse_core::encode::prom::{
    Family, Histogram, Labels, MetricType, TargetLabels, write_targets,
};
use pulse_core::model::Sink;
use pulse_core::plan::Plan;
use pulse_core::redact::redact_password;
use pulse_core::result::{ErrorKind, Kind, ProbeResult};
use pulse_core::shutdown::Shutdown;
use pulse_core::target::Target;

use crate::markup::escape;

/// Upper bounds of the queue-wait histogram, in seconds.
const QUEUE_WAIT_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];
/// Upper bounds of the round-duration histogram, in seconds.
const ROUND_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// A target's identity across reloads: what it probes, and which
/// occurrence of that it is in the file (a file may list one target twice
/// with different options). The line number is not part of it, so adding a
/// line above a target keeps its last result.
pub(crate) type Key = (String, Kind, usize);

/// One loaded targets file, as this instance runs it.
pub(crate) struct Config {
    /// The file, as named in messages.
    pub(crate) source: String,
    /// Every target of the file (all shards): `/probe` accepts these.
    pub(crate) all: Vec<Target>,
    /// The CA bundles the targets name, read once per load.
    pub(crate) cas: HashMap<PathBuf, Vec<u8>>,
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
                (t.text.clone(), t.kind, *n)
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

/// The config in force and the last result of each of its targets, under
/// one lock so that a reload and a result can never cross.
pub(crate) struct Current {
    pub(crate) config: Arc<Config>,
    pub(crate) latest: Vec<Option<Latest>>,
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

/// Counts over the process's life.
pub(crate) struct Counters {
    /// Probes finished, by kind and result (`up`, or the error kind).
    pub(crate) probes: BTreeMap<(Kind, &'static str), u64>,
    pub(crate) queue_wait: Histogram,
    pub(crate) round_duration: Histogram,
    pub(crate) rounds: u64,
    pub(crate) rounds_skipped: u64,
    pub(crate) rounds_failed: u64,
    pub(crate) last_round: Option<LastRound>,
    pub(crate) reloads_ok: u64,
    pub(crate) reloads_failed: u64,
    pub(crate) last_reload_ok: bool,
    pub(crate) last_reload_ok_at: SystemTime,
}

/// The last round that ran to its end.
#[derive(Clone, Copy)]
pub(crate) struct LastRound {
    pub(crate) duration: Duration,
    pub(crate) ended: SystemTime,
    pub(crate) targets: usize,
    pub(crate) up: usize,
}

/// Fixed facts about this instance, for `pulse_build_info` and the page.
pub(crate) struct Info {
    pub(crate) runtime: &'static str,
    pub(crate) interval: Duration,
    pub(crate) workers: usize,
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
        State {
            info,
            current: Mutex::new(Current {
                config: Arc::new(config),
                latest,
            }),
            round: Mutex::new(None),
            counters: Mutex::new(Counters {
                probes: BTreeMap::new(),
                queue_wait: Histogram::new(QUEUE_WAIT_BUCKETS),
                round_duration: Histogram::new(ROUND_BUCKETS),
                rounds: 0,
                rounds_skipped: 0,
                rounds_failed: 0,
                last_round: None,
                reloads_ok: 0,
                reloads_failed: 0,
                last_reload_ok: true,
                last_reload_ok_at: SystemTime::now(),
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
            for (old, slot) in cur.config.keys.iter().zip(cur.latest.iter_mut()) {
                if let Some(&j) = config.index.get(old) {
                    latest[j] = slot.take();
                }
            }
            *cur = Current {
                config: Arc::new(config),
                latest,
            };
            drop(guard);
        }
        let mut c = lock(&self.counters);
        c.reloads_ok += 1;
        c.last_reload_ok = true;
        c.last_reload_ok_at = SystemTime::now();
    }

    /// Count a reload that failed (the old config stays in force).
    pub(crate) fn reload_failed(&self) {
        let mut c = lock(&self.counters);
        c.reloads_failed += 1;
        c.last_reload_ok = false;
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

    /// The round has ended (`duration` long, or None when it failed to set up).
    pub(crate) fn end_round(&self, outcome: Option<(Duration, usize, usize)>) {
        *lock(&self.round) = None;
        let mut c = lock(&self.counters);
        match outcome {
            Some((duration, targets, up)) => {
                c.rounds += 1;
                c.round_duration.observe(duration.as_secs_f64());
                c.last_round = Some(LastRound {
                    duration,
                    ended: SystemTime::now(),
                    targets,
                    up,
                });
            }
            None => c.rounds_failed += 1,
        }
    }

    /// Count rounds skipped because the one before overran the interval.
    pub(crate) fn skipped(&self, n: u64) {
        lock(&self.counters).rounds_skipped += n;
    }

    /// Stop: no new round, and the running one (if any) drains.
    pub(crate) fn stop(&self, now: Instant) {
        self.stopping.trigger(now);
        if let Some(round) = &*lock(&self.round) {
            round.shutdown.trigger(now);
        }
    }

    /// Completed rounds and skipped rounds so far.
    pub(crate) fn round_counts(&self) -> (u64, u64) {
        let c = lock(&self.counters);
        (c.rounds, c.rounds_skipped)
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
        let mut cur = lock(&self.current);
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
        if let Some(slot) = slot.and_then(|i| cur.latest.get_mut(i)) {
            *slot = Some(Latest {
                result,
                at: SystemTime::now(),
            });
        }
    }

    /// A snapshot of the config and results, for rendering.
    pub(crate) fn snapshot(&self) -> (Arc<Config>, Vec<Option<Latest>>) {
        let cur = lock(&self.current);
        (cur.config.clone(), cur.latest.clone())
    }

    /// `/metrics`: every target's last result, then pulse's own figures.
    pub(crate) fn metrics(&self) -> String {
        let (config, latest) = self.snapshot();
        let results: Vec<ProbeResult> = latest.into_iter().flatten().map(|l| l.result).collect();
        let (in_flight, round_running) = match &*lock(&self.round) {
            Some(r) => {
                let started = r.plan.probes_started().saturating_sub(r.started_before);
                (
                    started.saturating_sub(r.completed.load(Ordering::Relaxed)),
                    true,
                )
            }
            None => (0, false),
        };
        let (probes, queue_wait, round_duration, counts, last, reloads) = {
            let c = lock(&self.counters);
            (
                c.probes.clone(),
                c.queue_wait.clone(),
                c.round_duration.clone(),
                (c.rounds, c.rounds_skipped, c.rounds_failed),
                c.last_round,
                (
                    c.reloads_ok,
                    c.reloads_failed,
                    c.last_reload_ok,
                    c.last_reload_ok_at,
                ),
            )
        };

        let mut out = String::with_capacity(256 * results.len() + 4096);
        write_targets(&mut out, &results, TargetLabels::Labelled);
        let none = Labels::default();
        let gauge = |out: &mut String, name, help, v: f64| {
            let mut f = Family::new(name, help);
            f.sample(&none, v);
            f.write_to(out);
        };
        let counter = |out: &mut String, name, help, v: f64| {
            let mut f = Family::typed(name, help, MetricType::Counter);
            f.sample(&none, v);
            f.write_to(out);
        };

        gauge(
            &mut out,
            "pulse_targets",
            "Targets this instance probes (its shard of the file).",
            config.plan.len() as f64,
        );
        gauge(
            &mut out,
            "pulse_targets_in_file",
            "Targets in the targets file, all shards.",
            config.all.len() as f64,
        );
        gauge(
            &mut out,
            "pulse_interval_seconds",
            "Time between round starts.",
            self.info.interval.as_secs_f64(),
        );
        gauge(
            &mut out,
            "pulse_spread_seconds",
            "Probe starts are spread over this long from each round's start.",
            config.plan.options.spread.as_secs_f64(),
        );
        counter(
            &mut out,
            "pulse_rounds_total",
            "Rounds run to their end.",
            counts.0 as f64,
        );
        counter(
            &mut out,
            "pulse_rounds_skipped_total",
            "Rounds not started because the round before was still running at their start time.",
            counts.1 as f64,
        );
        counter(
            &mut out,
            "pulse_rounds_failed_total",
            "Rounds that could not start (setup failure, e.g. no ICMP socket); the log says why.",
            counts.2 as f64,
        );
        gauge(
            &mut out,
            "pulse_round_running",
            "1 while a round is in progress.",
            if round_running { 1.0 } else { 0.0 },
        );
        gauge(
            &mut out,
            "pulse_probes_in_flight",
            "Probes started and not yet finished.",
            in_flight as f64,
        );
        if let Some(last) = last {
            gauge(
                &mut out,
                "pulse_last_round_duration_seconds",
                "Wall time of the last complete round.",
                last.duration.as_secs_f64(),
            );
            gauge(
                &mut out,
                "pulse_last_round_end_timestamp_seconds",
                "When the last complete round ended, in Unix time.",
                unix(last.ended),
            );
            gauge(
                &mut out,
                "pulse_last_round_up",
                "Targets up in the last complete round.",
                last.up as f64,
            );
            gauge(
                &mut out,
                "pulse_last_round_targets",
                "Targets in the last complete round.",
                last.targets as f64,
            );
        }
        let mut f = Family::typed(
            "pulse_round_duration_seconds",
            "Wall time of each complete round.",
            MetricType::Histogram,
        );
        f.histogram(&none, &round_duration);
        f.write_to(&mut out);

        let mut f = Family::typed(
            "pulse_probes_total",
            "Probes finished, by kind and result (up, or the error kind).",
            MetricType::Counter,
        );
        for ((kind, result), n) in &probes {
            f.sample(
                &none.with("kind", kind.as_str()).with("result", result),
                *n as f64,
            );
        }
        f.write_to(&mut out);

        let mut f = Family::typed(
            "pulse_queue_wait_seconds",
            "How late each probe started: from its due time (its spread start) until a worker ran it.",
            MetricType::Histogram,
        );
        f.histogram(&none, &queue_wait);
        f.write_to(&mut out);

        let mut f = Family::typed(
            "pulse_config_reloads_total",
            "Targets-file reloads (SIGHUP), by result.",
            MetricType::Counter,
        );
        f.sample(&none.with("result", "success"), reloads.0 as f64);
        f.sample(&none.with("result", "failure"), reloads.1 as f64);
        f.write_to(&mut out);
        gauge(
            &mut out,
            "pulse_config_last_reload_successful",
            "Whether the last reload succeeded (1) or kept the old targets (0).",
            if reloads.2 { 1.0 } else { 0.0 },
        );
        gauge(
            &mut out,
            "pulse_config_last_reload_success_timestamp_seconds",
            "When the targets in force were loaded, in Unix time.",
            unix(reloads.3),
        );

        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        gauge(
            &mut out,
            "pulse_http_connections_open",
            "Connections to this exporter open now (at most 64).",
            load(&self.http.open),
        );
        counter(
            &mut out,
            "pulse_http_connections_evicted_total",
            "Connections waiting for a request (idle keep-alive, or a head that never ends) closed at the 64-connection cap to make room for a new one.",
            load(&self.http.evicted),
        );
        counter(
            &mut out,
            "pulse_http_connections_refused_total",
            "Connections answered 503 because all 64 were busy answering requests.",
            load(&self.http.refused),
        );

        let mut f = Family::new(
            "pulse_build_info",
            "pulse version and the concurrency model that runs the probes; always 1.",
        );
        let shard = self
            .info
            .shard
            .map_or_else(|| "0/1".to_owned(), |(i, n)| format!("{i}/{n}"));
        let info = none
            .with("version", pulse_core::VERSION)
            .with("runtime", self.info.runtime)
            .with("rustc", env!("PULSE_RUSTC_VERSION"))
            .with("workers", &self.info.workers.to_string())
            .with("shard", &shard);
        f.sample(&info, 1.0);
        f.write_to(&mut out);

        process_metrics(&mut out, self.info.started);
        out
    }

    /// `/`: a page listing the targets and their last state.
    pub(crate) fn page(&self) -> String {
        let (config, latest) = self.snapshot();
        let (rounds, skipped) = self.round_counts();
        let up = latest.iter().flatten().filter(|l| l.result.success).count();
        let down = latest.iter().flatten().count() - up;
        let pending = latest.iter().filter(|l| l.is_none()).count();
        let mut h = String::with_capacity(512 + 160 * config.plan.len());
        let shard = self
            .info
            .shard
            .map_or_else(String::new, |(i, n)| format!(", shard {i}/{n}"));
        let _ = write!(
            h,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>pulse serve</title>\
             <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}\
             td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}}\
             .up{{color:#070}}.down{{color:#b00}}.pending{{color:#777}}</style></head><body>\n\
             <h1>pulse serve</h1>\n<p>{} {} on {}, every {}{}: {} targets of {} in <code>{}</code>; \
             {} up, {} down, {} pending; {} rounds, {} skipped.</p>\n\
             <p><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a> · \
             /probe?target=…</p>\n<table><tr><th>target</th><th>kind</th><th>line</th>\
             <th>state</th><th>duration</th><th>checked</th><th>error</th></tr>\n",
            pulse_core::VERSION,
            self.info.runtime,
            escape(&self.info.listen),
            pulse_core::session::fmt_duration(self.info.interval),
            shard,
            config.plan.len(),
            config.all.len(),
            escape(&config.source),
            up,
            down,
            pending,
            rounds,
            skipped,
        );
        for (t, l) in config.plan.targets.iter().zip(&latest) {
            let (class, state, duration, at, error) = match l {
                None => (
                    "pending",
                    "pending",
                    String::new(),
                    String::new(),
                    String::new(),
                ),
                Some(l) => (
                    if l.result.success { "up" } else { "down" },
                    if l.result.success { "up" } else { "down" },
                    format!("{:.1} ms", l.result.duration_ms),
                    humantime::format_rfc3339_seconds(l.at).to_string(),
                    l.result
                        .error
                        .as_ref()
                        .map(|e| format!("{}: {}", e.kind.as_str(), e.message))
                        .unwrap_or_default(),
                ),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td>\
                 <td>{duration}</td><td>{at}</td><td>{}</td></tr>",
                escape(&redact_password(&t.text)),
                t.kind.as_str(),
                t.line,
                escape(&error),
            );
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A `/proc/self/status` field given in kB (`VmRSS:`), in bytes.
pub(crate) fn status_bytes(status: &str, field: &str) -> Option<u64> {
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// The standard `process_*` families (as Prometheus's client libraries
/// write them), from /proc; any that cannot be read are left out.
fn process_metrics(out: &mut String, started: SystemTime) {
    let none = Labels::default();
    let mut one = |name, help, kind, v: f64| {
        let mut f = Family::typed(name, help, kind);
        f.sample(&none, v);
        f.write_to(out);
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| status_bytes(&status, field).map(|b| b as f64);
    if let Some(rss) = kib("VmRSS:") {
        one(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricType::Gauge,
            rss,
        );
    }
    if let Some(vsz) = kib("VmSize:") {
        one(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            MetricType::Gauge,
            vsz,
        );
    }
    // utime and stime, fields 14 and 15, in clock ticks; the fields after
    // the command name (which may hold spaces) start at field 3. Linux
    // reports ticks in USER_HZ, which is 100 on every architecture.
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(u), Some(s)) = (ticks(11), ticks(12)) {
            one(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                MetricType::Counter,
                (u + s) / 100.0,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        one(
            "process_open_fds",
            "Number of open file descriptors.",
            MetricType::Gauge,
            fds.count() as f64,
        );
    }
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        one(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            MetricType::Gauge,
            soft as f64,
        );
    }
    one(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge,
        unix(started),
    );
}

/// The sink of one round: results go to the shared state as they arrive.
pub(crate) struct RoundSink {
    pub(crate) state: Arc<State>,
    pub(crate) config: Arc<Config>,
    pub(crate) completed: Arc<AtomicUsize>,
}

impl Sink for RoundSink {
    fn accept(&mut self, index: usize, result: ProbeResult) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.state.record(&self.config, index, result);
    }
}
