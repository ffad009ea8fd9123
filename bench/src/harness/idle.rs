//! Idle units: how many sleeping units of concurrency each model can hold,
//! and what one costs: the "spin up 10,000 goroutines" exercise, to a
//! million, set beside the published figures.

use std::path::Path;

use pulse_bench::chart::Lines;
use pulse_bench::measure::Child;
use pulse_bench::report::Table;

use super::{Ctx, Section, f1, models, per_model, pick};

/// How long each unit sleeps: long enough that all are asleep at once at
/// the peak, short enough that a million cost seconds, not minutes.
const HOLD_MS: u64 = 1000;

/// One measurement.
struct Point {
    /// The model.
    model: &'static str,
    /// Units held asleep.
    units: usize,
    /// Peak RSS less the model's baseline (no units), bytes per unit; or
    /// the reason there is none.
    per_unit: Result<f64, String>,
    /// Time to start them all, ms.
    start_ms: Option<f64>,
    /// Peak OS threads.
    threads: u64,
}

/// Run one idle child: (peak RSS MiB, start ms, peak threads), or why not.
fn child(ctx: &mut Ctx, model: &str, units: usize) -> Result<(f64, f64, u64), String> {
    let args = vec![
        "idle".to_string(),
        "--model".into(),
        model.into(),
        "--units".into(),
        units.to_string(),
        "--hold-ms".into(),
        HOLD_MS.to_string(),
    ];
    let me = ctx.me.clone();
    let c = Child::new(
        &me,
        &args,
        ctx.scratch.path(),
        &format!("idle-{model}-{units}"),
    );
    let (out, err) = (c.stdout.clone(), c.stderr.clone());
    ctx.commands
        .push(format!("{} {}", me.display(), args.join(" ")));
    let m = c.run()?;
    if m.usage.exit_code != Some(0) {
        let why = std::fs::read_to_string(&err).unwrap_or_default();
        let first = why.lines().find(|l| !l.trim().is_empty());
        return Err(match first {
            Some(line) => line.to_string(),
            None => format!("the child ended with {} and no message", m.status),
        });
    }
    let start = read_ms(&out).unwrap_or(0.0);
    Ok((m.usage.peak_rss_mib, start, m.usage.peak_threads))
}

/// The start time the child printed.
fn read_ms(path: &Path) -> Option<f64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The kernel limits that decide how many threads a process can start.
fn thread_limits() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    format!(
        "vm.max_map_count {} (each thread's stack is a mapping plus its guard page), kernel.threads-max {}, \
         kernel.pid_max {}",
        read("/proc/sys/vm/max_map_count"),
        read("/proc/sys/kernel/threads-max"),
        read("/proc/sys/kernel/pid_max")
    )
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Idle units: 1k to 1M sleeping units per model");
    s.doc.para(&format!(
        "A child process (`pulse-bench idle`) builds the model's executor as its scan does, starts N units \
         that each sleep {HOLD_MS} ms (tokio, smol and async-std tasks on their timers; an OS thread each \
         for threads; a pool thread each for rayon, since a sleeping rayon job holds its thread), and \
         waits for them. Bytes per unit are its peak RSS less the same child's with no units, divided \
         by N. A model that cannot start N units records the OS's reason, and larger N are not tried."
    ));
    let sizes = pick(vec![1000, 10_000, 100_000, 1_000_000], vec![100, 1000]);
    let mut points = Vec::new();
    for model in models() {
        let base = match child(ctx, model, 0) {
            Ok(b) => b.0,
            Err(e) => {
                ctx.skip(format!("idle units for {model}: the baseline failed: {e}"));
                continue;
            }
        };
        let mut failed: Option<usize> = None;
        for &n in &sizes {
            if let Some(at) = failed {
                points.push(Point {
                    model,
                    units: n,
                    per_unit: Err(format!("not tried: failed at {at}")),
                    start_ms: None,
                    threads: 0,
                });
                continue;
            }
            if model == "rayon" && n > pulse_rayon::MAX_WORKERS {
                points.push(Point {
                    model,
                    units: n,
                    per_unit: Err(format!(
                        "not run: a rayon pool above {} threads spends minutes in its idle loop before it runs anything (see the acceptance section)",
                        pulse_rayon::MAX_WORKERS
                    )),
                    start_ms: None,
                    threads: 0,
                });
                continue;
            }
            match child(ctx, model, n) {
                Ok((peak, start, threads)) => points.push(Point {
                    model,
                    units: n,
                    per_unit: Ok((peak - base) * 1024.0 * 1024.0 / n as f64),
                    start_ms: Some(start),
                    threads,
                }),
                Err(e) => {
                    failed = Some(n);
                    points.push(Point {
                        model,
                        units: n,
                        per_unit: Err(format!("failed: {e}; limits: {}", thread_limits())),
                        start_ms: None,
                        threads: 0,
                    });
                }
            }
        }
    }
    s.chart(
        "idle-bytes",
        "resident bytes per sleeping unit, per model",
        Lines {
            title: "Resident bytes per sleeping unit".into(),
            x_label: "units asleep, log scale".into(),
            y_label: "bytes per unit (log)".into(),
            log_x: true,
            log_y: true,
            series: per_model(
                &points,
                |p| p.model,
                |p| Some((p.units as f64, *p.per_unit.as_ref().ok()?)),
            ),
        }
        .svg(),
    );
    let per = |m: &str, n: usize| {
        points
            .iter()
            .find(|p| p.model == m && p.units == n)
            .and_then(|p| p.per_unit.as_ref().ok().copied())
    };
    let top = sizes.last().copied().unwrap_or(0);
    let mut bits = Vec::new();
    for m in models() {
        let best = points
            .iter()
            .filter(|p| p.model == m && p.per_unit.is_ok())
            .map(|p| p.units)
            .max();
        if let Some(b) = best {
            bits.push(format!("{m} {b} ({:.0} B each)", per(m, b).unwrap_or(0.0)));
        }
    }
    s.doc.finding(
        &format!(
            "Most units held asleep (up to {top} tried): {}.",
            bits.join(", ")
        ),
        "",
    );
    if let (Some(t), Some(th)) = (per("tokio", 10_000), per("threads", 10_000)) {
        s.doc.finding(
            &format!("At 10,000 a thread costs {:.0}x a tokio task ({th:.0} vs {t:.0} bytes).", th / t.max(1.0)),
            "A task is its future's state machine plus a header (the scheduler's links, a reference \
             count, the waker): a sleeping one holds a timer entry and nothing else. A thread is a kernel \
             task (not counted in RSS), a stack of which the first pages are touched, its TLS and its \
             malloc arena's bookkeeping. The threads model fails where the kernel's limits stop it, and \
             the message says which.",
        );
    }
    if let Some(f) = points
        .iter()
        .find(|p| p.model == "threads" && p.per_unit.is_err())
    {
        s.doc.finding(
            &format!("threads at {}:", f.units),
            f.per_unit.as_ref().err().map_or("", |e| e.as_str()),
        );
    }
    s.doc.para(
        "Published figures for the same exercise (P. Kołaczkowski, \"How Much Memory Do You Need to Run 1 \
         Million Concurrent Tasks?\", 2023): a tokio task about 0.2 KB, a Go goroutine about 2.6 KB, a Rust \
         thread about 4.6 KB of RSS at 10,000 threads. Those tasks slept on `tokio::time::sleep` as these \
         do; differences in tokio version, allocator and kernel move the absolute figures, so compare the \
         ratios.",
    );
    let mut t = Table::new(&[
        "model",
        "units#",
        "bytes per unit#",
        "time to start all (ms)#",
        "peak OS threads#",
        "note",
    ]);
    for p in &points {
        t.row(vec![
            p.model.into(),
            p.units.to_string(),
            p.per_unit
                .as_ref()
                .map_or_else(|_| String::new(), |v| format!("{v:.0}")),
            p.start_ms.map_or_else(String::new, f1),
            if p.threads > 0 {
                p.threads.to_string()
            } else {
                String::new()
            },
            p.per_unit.as_ref().err().cloned().unwrap_or_default(),
        ]);
    }
    s.table("idle", t);
    s
}
