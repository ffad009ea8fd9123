//! Scheduling cost per probe: context switches (rusage), CPU user and
//! system time, and syscalls (perf's tracepoint counts, or strace -c when
//! perf cannot count them) for each model at 100 in flight against
//! zero-latency HTTP and TCP hosts. These runs are also the figures the
//! peers are set beside.

use std::time::Duration;

use pulse_bench::chart::{Bars, Panel};
use pulse_bench::machine::command_output;
use pulse_bench::report::Table;
use pulse_bench::setup;

use super::{Ctx, Section, f1, f2, models, pick};

/// Probes in flight.
const WORKERS: usize = 100;

/// How syscalls are counted on this machine.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Counter {
    /// `perf stat -e raw_syscalls:sys_enter`: kernel tracepoint counts,
    /// every thread, little overhead.
    Perf,
    /// `strace -c -f`: every syscall through ptrace, slow but everywhere.
    Strace,
}

/// Which counter works here, if any.
pub(super) fn counter() -> Option<Counter> {
    let perf = command_output(
        "perf",
        &[
            "stat",
            "-x,",
            "-e",
            "raw_syscalls:sys_enter,syscalls:sys_enter_futex",
            "--",
            "true",
        ],
    );
    // perf prints its counts on stderr; success means the events exist
    // and may be counted by this user.
    if perf.is_some() {
        return Some(Counter::Perf);
    }
    command_output("strace", &["-V"]).map(|_| Counter::Strace)
}

/// (all syscalls, futex calls) from a counter's output file.
pub(super) fn parse_counts(c: Counter, text: &str) -> Option<(f64, f64)> {
    match c {
        Counter::Perf => {
            let count = |event: &str| {
                text.lines()
                    .find(|l| l.contains(event))
                    .and_then(|l| l.split(',').next())
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            Some((
                count("raw_syscalls:sys_enter")?,
                count("sys_enter_futex").unwrap_or(0.0),
            ))
        }
        Counter::Strace => {
            // The summary table: `% time seconds usecs/call calls errors syscall`,
            // then a `total` line.
            let calls = |l: &str| {
                l.split_whitespace()
                    .nth(3)
                    .and_then(|v| v.parse::<f64>().ok())
            };
            let total = text
                .lines()
                .find(|l| l.trim_end().ends_with("total"))
                .and_then(calls)?;
            let futex = text
                .lines()
                .find(|l| l.trim_end().ends_with(" futex"))
                .and_then(calls)
                .unwrap_or(0.0);
            Some((total, futex))
        }
    }
}

/// Run `model`'s scan of `file` once more under the counter `c`: (syscalls,
/// futex calls) per probe, or None when the counted run failed.
pub(super) fn counted(
    ctx: &mut Ctx,
    c: Counter,
    model: &str,
    file: &std::path::Path,
    workers: usize,
    stem: &str,
) -> Option<(f64, f64)> {
    let out = ctx.scratch.path().join(format!("{stem}.count"));
    let wrapper: Vec<String> = match c {
        Counter::Perf => [
            "perf",
            "stat",
            "-x,",
            "-e",
            "raw_syscalls:sys_enter,syscalls:sys_enter_futex",
            "-o",
        ]
        .map(String::from)
        .into_iter()
        .chain([out.display().to_string(), "--".into()])
        .collect(),
        Counter::Strace => ["strace", "-c", "-f", "-o"]
            .map(String::from)
            .into_iter()
            .chain([out.display().to_string()])
            .collect(),
    };
    let run = ctx
        .scan(model, file, workers, Duration::from_secs(2), |spec| {
            spec.wrapper = wrapper
        })
        .ok()?;
    let done = run.report.as_ref()?.results.len() as f64;
    let (all, futex) = parse_counts(c, &std::fs::read_to_string(&out).ok()?)?;
    Some((all / done, futex / done))
}

/// Per-probe figures of one model on one workload.
struct Row {
    /// The model.
    model: &'static str,
    /// Probes done.
    probes: f64,
    /// Probes per second.
    rate: f64,
    /// Voluntary + involuntary context switches per probe.
    vcs: f64,
    /// Involuntary ones per probe.
    ics: f64,
    /// User and system CPU per probe, µs.
    user_us: f64,
    /// System CPU per probe, µs.
    sys_us: f64,
    /// Syscalls and futex calls per probe, when counted.
    syscalls: Option<(f64, f64)>,
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Scheduling cost per probe: context switches, CPU, syscalls");
    let counter = counter();
    let how = match counter {
        Some(Counter::Perf) => {
            "syscalls are counted with `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_futex` (kernel tracepoints, every thread) in a second run of the same scan"
        }
        Some(Counter::Strace) => {
            "syscalls are counted with `strace -c -f` in a second run of the same scan (ptrace slows it, the counts stay exact)"
        }
        None => "syscalls are not counted: neither perf nor strace works here",
    };
    if counter.is_none() {
        ctx.skip("syscall counts: neither `perf stat` (linux-perf) nor `strace` works here".into());
    }
    s.doc.para(&format!(
        "Each model scans zero-latency farm hosts with `--workers {WORKERS}`. Context switches and CPU \
         come from the kernel's rusage of the scan process: voluntary switches are a thread going to \
         sleep (a futex, epoll_wait, a blocking read), involuntary ones the scheduler taking the CPU away; \
         {how}. The farm's side is not in these figures (it is another process's threads)."
    ));
    let n = pick(20_000, 300);
    for (protocol, label) in [("http", "HTTP"), ("tcp", "TCP connect")] {
        let farm = match setup::one_group("sched", protocol, "ok", pick(100, 10), 0, "2s")
            .and_then(|sc| ctx.farm(&sc))
        {
            Ok(f) => f,
            Err(e) => {
                ctx.skip(format!(
                    "scheduling cost ({label}): the farm cannot start: {e}"
                ));
                continue;
            }
        };
        let (text, _) = setup::cycle(&farm, n);
        let Ok(file) = ctx.file(&format!("sched-{protocol}.txt"), &text) else {
            continue;
        };
        let mut rows = Vec::new();
        for model in models() {
            let Ok(run) = ctx.scan(model, &file, WORKERS, Duration::from_secs(2), |_| {}) else {
                continue;
            };
            let Some(rep) = &run.report else { continue };
            let probes = rep.results.len() as f64;
            let u = &run.measured.usage;
            let syscalls = counter.and_then(|c| {
                counted(
                    ctx,
                    c,
                    model,
                    &file,
                    WORKERS,
                    &format!("sched-{protocol}-{model}"),
                )
            });
            rows.push(Row {
                model,
                probes,
                rate: probes / (rep.pulse.duration_ms / 1000.0).max(1e-9),
                vcs: (u.voluntary_cs + u.involuntary_cs) as f64 / probes,
                ics: u.involuntary_cs as f64 / probes,
                user_us: u.user_s * 1e6 / probes,
                sys_us: u.sys_s * 1e6 / probes,
                syscalls,
            });
        }
        drop(farm);
        let keep: Vec<(String, f64, f64)> = rows
            .iter()
            .map(|r| (r.model.to_string(), r.rate, r.user_us + r.sys_us))
            .collect();
        if protocol == "http" {
            ctx.http100 = keep;
        } else {
            ctx.tcp100 = keep;
        }
        s.doc.heading(3, label);
        let mut panels = vec![
            Panel {
                title: "context switches per probe (lower is better)".into(),
                unit: String::new(),
                rows: rows.iter().map(|r| (r.model.into(), r.vcs)).collect(),
            },
            Panel {
                title: "CPU per probe, µs (user + sys, lower is better)".into(),
                unit: " µs".into(),
                rows: rows
                    .iter()
                    .map(|r| (r.model.into(), r.user_us + r.sys_us))
                    .collect(),
            },
        ];
        if rows.iter().all(|r| r.syscalls.is_some()) {
            panels.push(Panel {
                title: "syscalls per probe (lower is better)".into(),
                unit: String::new(),
                rows: rows
                    .iter()
                    .map(|r| (r.model.into(), r.syscalls.map_or(0.0, |c| c.0)))
                    .collect(),
            });
        }
        s.chart(
            &format!("sched-{protocol}"),
            &format!("context switches, CPU and syscalls per probe, {label}"),
            Bars {
                title: format!("{label} at {WORKERS} in flight, zero latency: cost per probe"),
                panels,
            }
            .svg(),
        );
        findings(&mut s, &rows);
        let mut t = Table::new(&[
            "model",
            "probes#",
            "probes/s#",
            "ctx switches/probe#",
            "involuntary/probe#",
            "user µs/probe#",
            "sys µs/probe#",
            "syscalls/probe#",
            "futex/probe#",
        ]);
        for r in &rows {
            t.row(vec![
                r.model.into(),
                format!("{:.0}", r.probes),
                format!("{:.0}", r.rate),
                f2(r.vcs),
                f2(r.ics),
                f1(r.user_us),
                f1(r.sys_us),
                r.syscalls.map_or_else(String::new, |c| f1(c.0)),
                r.syscalls.map_or_else(String::new, |c| f2(c.1)),
            ]);
        }
        s.table(&format!("sched-{protocol}"), t);
    }
    s
}

fn findings(s: &mut Section, rows: &[Row]) {
    let get = |m: &str| rows.iter().find(|r| r.model == m);
    if let (Some(t), Some(th)) = (get("tokio"), get("threads")) {
        s.doc.finding(
            &format!(
                "Context switches per probe: threads {:.2}, tokio {:.2} ({:.1}x).",
                th.vcs,
                t.vcs,
                th.vcs / t.vcs.max(1e-3)
            ),
            if th.vcs > t.vcs {
                "A blocking thread sleeps in the kernel at every wait (each read for a response that has \
                 not come yet) and is switched back in when its socket is ready: each wait is a switch out \
                 and a switch in. An async worker thread sleeps only when its whole run queue is empty; \
                 with 100 probes in flight, one epoll_wait usually returns several ready sockets, and the \
                 worker runs them back to back."
            } else {
                "Here the blocking models switch less. On loopback a blocking connect completes inside \
                 the connect call (the kernel runs the whole handshake before it returns), so a thread \
                 that only connects and closes rarely has to sleep at all. An async model starts a \
                 non-blocking connect, gets EINPROGRESS and waits for epoll to report the socket \
                 writable: a park and a wake per probe that the blocking path never needs. With a \
                 response to wait for (the HTTP table) it is the other way round."
            },
        );
    }
    if let Some(best) = rows
        .iter()
        .min_by(|a, b| (a.user_us + a.sys_us).total_cmp(&(b.user_us + b.sys_us)))
    {
        let worst = rows
            .iter()
            .max_by(|a, b| (a.user_us + a.sys_us).total_cmp(&(b.user_us + b.sys_us)));
        if let Some(w) = worst {
            s.doc.finding(
                &format!(
                    "CPU per probe ranges from {:.0} µs ({}) to {:.0} µs ({}); the kernel's share is {:.0}% for {}.",
                    best.user_us + best.sys_us,
                    best.model,
                    w.user_us + w.sys_us,
                    w.model,
                    best.sys_us / (best.user_us + best.sys_us).max(1e-9) * 100.0,
                    best.model
                ),
                "Most of a loopback probe is the kernel's work: socket, connect, the TCP handshake, send, \
                 receive, close. What the models differ in is the rest: how often a thread sleeps and is \
                 woken (futex calls, context switches) and how many epoll calls it makes per probe.",
            );
        }
    }
    if let (Some(t), Some(th)) = (
        get("tokio").and_then(|r| r.syscalls),
        get("threads").and_then(|r| r.syscalls),
    ) {
        s.doc.finding(
            &format!("Syscalls per probe: tokio {:.1} (futex {:.2}), threads {:.1} (futex {:.2}).", t.0, t.1, th.0, th.1),
            "The blocking models set a socket timeout before every call (setsockopt) and hand each result \
             over a queue between threads (futex); the async models register each socket with epoll and \
             wake a worker through the reactor.",
        );
    }
}
