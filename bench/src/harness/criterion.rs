//! The micro-benchmarks' figures, read back from criterion's own output
//! (`<criterion>/<group>/<id>/new/{benchmark,estimates}.json`), so the
//! report shows what `cargo bench -p pulse-bench` measured in this run.

use std::path::Path;

use pulse_bench::chart::{Bars, Lines, Panel};
use pulse_bench::report::Table;
use serde::Deserialize;

use super::{Ctx, Section, f2, models, per_model};

/// criterion's `benchmark.json`, the fields used.
#[derive(Deserialize)]
struct Benchmark {
    /// The workload (`fanout/http-0ms/workers-10`).
    group_id: String,
    /// The case, for `core` (`http-exchange`).
    function_id: Option<String>,
    /// The model, for groups with the model as the parameter (`tokio`).
    value_str: Option<String>,
    /// Elements per iteration, when set.
    throughput: Option<Throughput>,
}

/// criterion's throughput record.
#[derive(Deserialize)]
enum Throughput {
    /// Elements (probes, units, round trips) per iteration.
    Elements(u64),
    /// Anything else criterion may write; unused here.
    #[serde(other)]
    Other,
}

/// One point estimate.
#[derive(Deserialize)]
struct Estimate {
    /// Nanoseconds per iteration.
    point_estimate: f64,
}

/// criterion's `estimates.json`, the fields used.
#[derive(Deserialize)]
struct Estimates {
    /// The mean time per iteration.
    mean: Estimate,
    /// The linear fit's slope, when criterion sampled linearly: the time of
    /// one more iteration, without the per-sample constant.
    slope: Option<Estimate>,
}

/// One benchmark's result.
struct Result {
    /// Its group.
    group: String,
    /// Its ID.
    id: String,
    /// Nanoseconds per iteration (slope when there is one).
    ns: f64,
    /// Elements per iteration.
    elements: u64,
}

impl Result {
    /// Elements per second.
    fn rate(&self) -> f64 {
        self.elements as f64 * 1e9 / self.ns.max(1e-9)
    }
}

/// Every result under `dir`.
fn read(dir: &Path) -> Vec<Result> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    let b = std::fs::read(p.join("benchmark.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Benchmark>(&b).ok());
                    let est = std::fs::read(p.join("estimates.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Estimates>(&b).ok());
                    if let (Some(b), Some(est)) = (b, est) {
                        out.push(Result {
                            group: b.group_id,
                            id: b.function_id.or(b.value_str).unwrap_or_default(),
                            ns: est
                                .slope
                                .map_or(est.mean.point_estimate, |s| s.point_estimate),
                            elements: match b.throughput {
                                Some(Throughput::Elements(n)) => n,
                                _ => 1,
                            },
                        });
                    }
                } else if p.file_name().is_some_and(|n| n != "report") {
                    stack.push(p);
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.group, order(&a.id)).cmp(&(&b.group, order(&b.id))));
    out
}

/// Models in report order, other IDs after them.
fn order(id: &str) -> usize {
    models()
        .iter()
        .position(|m| *m == id)
        .unwrap_or(models().len())
}

/// A time in its natural unit.
fn time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Micro-benchmarks (criterion)");
    let all = read(&ctx.criterion);
    if all.is_empty() {
        ctx.skip(format!(
            "the criterion tables: no results under {} (run `cargo bench -p pulse-bench` first; scripts/bench.sh does)",
            ctx.criterion.display()
        ));
        return s;
    }
    s.doc.para(
        "From `cargo bench -p pulse-bench` in this run: one group per workload, the model as the benchmark \
         ID. Times are criterion's slope estimate where it sampled linearly (the cost of one more \
         iteration, without the per-sample start-up), its mean otherwise. These run in one process with \
         the farm on two threads of its own.",
    );
    let base = |group: &str| {
        all.iter()
            .find(|r| r.group == group && r.id == "tokio")
            .map(|r| r.ns)
    };
    for (area, what) in [
        (
            "fanout",
            "probes/s of a whole in-process scan against the farm",
        ),
        (
            "overhead",
            "one probe at a time: the client's cost per probe",
        ),
        ("spawn", "the unit of concurrency alone"),
        ("core", "the sans-IO session alone, no socket, no executor"),
    ] {
        let mine: Vec<&Result> = all
            .iter()
            .filter(|r| r.group.split('/').next() == Some(area))
            .collect();
        if mine.is_empty() {
            ctx.skip(format!("criterion area `{area}`: no results"));
            continue;
        }
        s.doc.heading(3, &format!("{area}: {what}"));
        match area {
            "fanout" => {
                for lat in ["0ms", "50ms"] {
                    let key = format!("http-{lat}/");
                    let series = per_model(
                        &mine,
                        |r| r.id.as_str(),
                        |r| {
                            let workers = r.group.rsplit("workers-").next()?.parse().ok()?;
                            r.group.contains(&key).then(|| (workers, r.rate()))
                        },
                    );
                    s.chart(
                        &format!("criterion-fanout-{lat}"),
                        &format!("fanout probes/s by workers at {lat}"),
                        Lines {
                            title: format!("criterion fanout: probes/s by workers, HTTP at {lat}"),
                            x_label: "workers, log scale".into(),
                            y_label: "probes/s".into(),
                            log_x: true,
                            log_y: lat == "50ms",
                            series,
                        }
                        .svg(),
                    );
                }
            }
            "overhead" | "spawn" => {
                let groups: Vec<&str> = {
                    let mut g: Vec<&str> = mine.iter().map(|r| r.group.as_str()).collect();
                    g.dedup();
                    g
                };
                s.chart(
                    &format!("criterion-{area}"),
                    &format!("criterion {area}, time per element per model"),
                    Bars {
                        title: format!("criterion {area}: µs per element (lower is better)"),
                        panels: groups
                            .iter()
                            .map(|g| Panel {
                                title: (*g).to_string(),
                                unit: " µs".into(),
                                rows: mine
                                    .iter()
                                    .filter(|r| r.group == *g)
                                    .map(|r| (r.id.clone(), r.ns / 1e3 / r.elements as f64))
                                    .collect(),
                            })
                            .collect(),
                    }
                    .svg(),
                );
            }
            _ => {}
        }
        findings(&mut s, area, &mine);
        let mut t = Table::new(&[
            "group",
            "id",
            "time per iteration#",
            "elements per iteration#",
            "elements/s#",
            "time vs tokio#",
        ]);
        for r in &mine {
            t.row(vec![
                r.group.clone(),
                r.id.clone(),
                time(r.ns),
                r.elements.to_string(),
                format!("{:.0}", r.rate()),
                base(&r.group).map_or_else(String::new, |b| f2(r.ns / b)),
            ]);
        }
        s.table(&format!("criterion-{area}"), t);
    }
    s
}

fn findings(s: &mut Section, area: &str, rows: &[&Result]) {
    let get = |g: &str, id: &str| rows.iter().find(|r| r.group == g && r.id == id);
    match area {
        "spawn" => {
            let g = rows
                .iter()
                .find(|r| r.group.contains("join"))
                .map(|r| r.group.clone())
                .unwrap_or_default();
            if let (Some(t), Some(th)) = (get(&g, "tokio"), get(&g, "threads")) {
                s.doc.finding(
                    &format!(
                        "Spawning and joining a unit: tokio {}, a thread {} ({:.0}x).",
                        time(t.ns / t.elements as f64),
                        time(th.ns / th.elements as f64),
                        th.ns / t.ns.max(1e-9)
                    ),
                    "A task is an allocation and a push onto a run queue; a thread is a clone(2) with a new \
                     stack mapping, a guard page, TLS set-up and a scheduler entry, and a join is a futex \
                     wait on its exit. This is the price the threads model pays per worker at start-up.",
                );
            }
            if let (Some(t), Some(th)) = (
                get("spawn/ping-pong", "tokio"),
                get("spawn/ping-pong", "threads"),
            ) {
                s.doc.finding(
                    &format!("One cross-thread round trip: tokio {}, threads {}.", time(t.ns), time(th.ns)),
                    if th.ns < 2_000.0 {
                        "crossbeam's channels spin for a moment before they park, so with the two threads \
                         on two cores a round trip never sleeps: hundreds of nanoseconds, no syscall. \
                         tokio's blocking send and receive from outside the runtime park on a futex, and \
                         the echo task's worker parks in epoll_wait, so each direction is a real wake-up \
                         through the kernel: microseconds. A probe pays this once per socket event."
                    } else {
                        "Each direction is a wake-up of a parked thread through the kernel (a futex, or \
                         epoll_wait for a runtime's worker): what each runtime does around the park is \
                         the difference. A probe pays this once per socket event."
                    },
                );
            }
        }
        "core" => {
            if let (Some(h), Some(t)) =
                (get("core", "http-exchange"), get("core", "https-exchange"))
            {
                s.doc.finding(
                    &format!("The core alone: an HTTP exchange {}, an HTTPS one with its handshake {}.", time(h.ns), time(t.ns)),
                    "This is the same in every model (the session is the core's), so it is the floor under \
                     every model's per-probe figure in `overhead`: the rest is sockets, the kernel and the \
                     executor. The HTTPS figure includes the in-memory server's half of the handshake.",
                );
            }
        }
        "overhead" => {
            for kind in ["tcp", "http", "https"] {
                let g = format!("overhead/{kind}");
                let vals: Vec<String> = models()
                    .iter()
                    .filter_map(|m| get(&g, m).map(|r| format!("{m} {}", time(r.ns))))
                    .collect();
                if !vals.is_empty() {
                    s.doc.finding(
                        &format!("One {kind} probe, start to result: {}.", vals.join(", ")),
                        "",
                    );
                }
            }
            s.doc.para(
                "One probe at a time is a latency figure: the farm's answer and both sides' kernel work are \
                 inside it, so the models differ only by the path from a ready socket to the code that \
                 reads it: a thread woken by the kernel (threads, rayon) or a reactor that wakes a task \
                 on a worker (tokio, smol, async-std).",
            );
        }
        _ => {
            for group in [
                "fanout/http-0ms/workers-1000",
                "fanout/http-50ms/workers-1000",
            ] {
                let rates: Vec<String> = models()
                    .iter()
                    .filter_map(|m| get(group, m).map(|r| format!("{m} {:.0}", r.rate())))
                    .collect();
                if rates.is_empty() {
                    continue;
                }
                s.doc.finding(
                    &format!("{}, probes/s: {}.", group.trim_start_matches("fanout/"), rates.join(", ")),
                    "At 50 ms the ideal is workers / 50 ms (20,000/s at 1,000) and the CPU runs out first; at \
                     zero latency the rate is CPU per probe from the start. Each figure includes the model's \
                     start-up and wind-down (a rayon or threads pool of 1,000 threads is built for every scan).",
                );
            }
        }
    }
}
