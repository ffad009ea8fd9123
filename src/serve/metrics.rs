//! `/metrics`: every target's last result with blackbox_exporter's names,
//! then pulse's own figures and the standard `process_*` families, in the
//! Prometheus text format 0.0.4 the core writes.
//!
//! Everything is copied out of the [`State`] under its short locks first,
//! then rendered with no lock held.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use pulse_core::encode::prom::{
    Family, Labels, MetricType, TargetLabels, target_labels, write_targets,
};
use pulse_core::result::ProbeResult;
use pulse_procfs::{Proc, Stat, Status};

use super::state::State;

/// The exposition: every target's last result, then pulse's own figures.
pub(crate) fn render(state: &State) -> String {
    let (config, latest) = state.snapshot();
    // Each result with its target's deadline (index i of the plan is
    // index i of `latest`).
    let (results, timeouts): (Vec<ProbeResult>, Vec<f64>) = latest
        .into_iter()
        .enumerate()
        .filter_map(|(i, l)| Some((l?.result, config.plan.timeout(i).as_secs_f64())))
        .unzip();
    let in_flight = state.in_flight();
    let c = state.counters();

    let mut out = String::with_capacity(256 * results.len() + 4096);
    write_targets(&mut out, &results, TargetLabels::Labelled);
    // Not in a scan's output (whose results say nothing of the deadline)
    // nor blackbox_exporter's: it lets an alert compare
    // probe_duration_seconds with the deadline it must beat.
    let mut f = Family::new(
        "pulse_probe_timeout_seconds",
        "The target's deadline (its timeout=, else --timeout), in seconds.",
    );
    for (l, t) in target_labels(&results).iter().zip(&timeouts) {
        f.sample(l, *t);
    }
    f.write_to(&mut out);
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
        state.info.interval.as_secs_f64(),
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
        c.rounds.completed as f64,
    );
    counter(
        &mut out,
        "pulse_rounds_skipped_total",
        "Rounds not started because the round before was still running at their start time.",
        c.rounds.skipped as f64,
    );
    counter(
        &mut out,
        "pulse_rounds_failed_total",
        "Rounds that could not start (setup failure, e.g. no ICMP socket); the log says why.",
        c.rounds.failed as f64,
    );
    gauge(
        &mut out,
        "pulse_round_running",
        "1 while a round is in progress.",
        if in_flight.is_some() { 1.0 } else { 0.0 },
    );
    gauge(
        &mut out,
        "pulse_probes_in_flight",
        "Probes started and not yet finished.",
        in_flight.unwrap_or(0) as f64,
    );
    if let Some(last) = c.last_round {
        gauge(
            &mut out,
            "pulse_last_round_duration_seconds",
            "Wall time of the last complete round.",
            last.round.duration.as_secs_f64(),
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
            last.round.up as f64,
        );
        gauge(
            &mut out,
            "pulse_last_round_targets",
            "Targets in the last complete round.",
            last.round.targets as f64,
        );
    }
    let mut f = Family::typed(
        "pulse_round_duration_seconds",
        "Wall time of each complete round.",
        MetricType::Histogram,
    );
    f.histogram(&none, &c.round_duration);
    f.write_to(&mut out);

    let mut f = Family::typed(
        "pulse_probes_total",
        "Probes finished, by kind and result (up, or the error kind).",
        MetricType::Counter,
    );
    for ((kind, result), n) in &c.probes {
        f.sample(
            &none.with("kind", kind.as_str()).with("result", result),
            *n as f64,
        );
    }
    f.write_to(&mut out);

    let mut f = Family::typed(
        "pulse_probe_requests_total",
        "On-demand /probe probes finished, by kind and result (up, the error kind, or cancelled: the client went away first).",
        MetricType::Counter,
    );
    for ((kind, result), n) in &c.probe_requests {
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
    f.histogram(&none, &c.queue_wait);
    f.write_to(&mut out);

    let mut f = Family::typed(
        "pulse_config_reloads_total",
        "Targets-file reloads (SIGHUP or POST /-/reload), by result.",
        MetricType::Counter,
    );
    f.sample(&none.with("result", "success"), c.reloads.succeeded as f64);
    f.sample(&none.with("result", "failure"), c.reloads.failed as f64);
    f.write_to(&mut out);
    gauge(
        &mut out,
        "pulse_config_last_reload_successful",
        "Whether the last reload succeeded (1) or kept the old targets (0).",
        if c.reloads.last_ok { 1.0 } else { 0.0 },
    );
    gauge(
        &mut out,
        "pulse_config_last_reload_success_timestamp_seconds",
        "When the targets in force were loaded, in Unix time.",
        unix(c.reloads.last_ok_at),
    );

    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    gauge(
        &mut out,
        "pulse_http_connections_open",
        "Connections to this exporter open now (at most 64).",
        load(&state.http.open),
    );
    counter(
        &mut out,
        "pulse_http_connections_evicted_total",
        "Connections waiting for a request (idle keep-alive, or a head that never ends) closed at the 64-connection cap to make room for a new one.",
        load(&state.http.evicted),
    );
    counter(
        &mut out,
        "pulse_http_connections_refused_total",
        "Connections answered 503 because all 64 were busy answering requests.",
        load(&state.http.refused),
    );

    let mut f = Family::new(
        "pulse_build_info",
        "pulse version and the concurrency model that runs the probes; always 1.",
    );
    let shard = state
        .info
        .shard
        .map_or_else(|| "0/1".to_owned(), |(i, n)| format!("{i}/{n}"));
    let info = none
        .with("version", pulse_core::VERSION)
        .with("runtime", state.info.runtime)
        .with("rustc", env!("PULSE_RUSTC_VERSION"))
        .with("workers", &state.info.workers.to_string())
        .with("shard", &shard);
    f.sample(&info, 1.0);
    f.write_to(&mut out);

    process_metrics(&mut out, state.info.started);
    out
}

/// Seconds since the Unix epoch (0 for a time before it).
pub(crate) fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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
    let status = Status::read(Proc::Current);
    let bytes = |field: &str| status.as_ref()?.bytes(field).map(|b| b as f64);
    if let Some(rss) = bytes("VmRSS") {
        one(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricType::Gauge,
            rss,
        );
    }
    if let Some(vsz) = bytes("VmSize") {
        one(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            MetricType::Gauge,
            vsz,
        );
    }
    if let Some(stat) = Stat::read(Proc::Current) {
        one(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricType::Counter,
            stat.cpu_time().as_secs_f64(),
        );
    }
    if let Some(fds) = pulse_procfs::open_fds() {
        one(
            "process_open_fds",
            "Number of open file descriptors.",
            MetricType::Gauge,
            fds as f64,
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
