//! The workers sweep: 10 to 10,000 probes in flight against blackholed TCP
//! hosts (every probe waits its whole timeout) and against HTTP hosts that
//! answer after 50 ms, and the acceptance run the rayon issue named.

use std::time::Duration;

use pulse_bench::chart::Lines;
use pulse_bench::measure::{ScanRun, sorted};
use pulse_bench::report::Table;
use pulse_bench::setup;

use super::{Ctx, Section, brief, f0, f1, f2, models, per_model, pick};

/// One run of the sweep.
struct Point {
    /// The model.
    model: &'static str,
    /// `--workers`.
    workers: usize,
    /// Targets scanned.
    targets: usize,
    /// The scan as run, or why it did not.
    run: Result<ScanRun, String>,
}

impl Point {
    /// Probes per second by the scan's own clock.
    fn rate(&self) -> Option<f64> {
        let r = self.run.as_ref().ok()?.report.as_ref()?;
        Some(r.results.len() as f64 / (r.pulse.duration_ms / 1000.0).max(1e-9))
    }

    /// When the last of the first `workers` probes started: the time to put
    /// every worker to work.
    fn start_all_ms(&self) -> Option<f64> {
        let r = self.run.as_ref().ok()?.report.as_ref()?;
        let waits = sorted(r.results.iter().map(|p| p.queue_wait_ms));
        let k = self.workers.min(waits.len());
        (k > 0).then(|| waits[k - 1])
    }

    /// The failure, if the model did not run.
    fn failure(&self) -> Option<String> {
        match &self.run {
            Err(e) => Some(e.clone()),
            Ok(r) => r.failure.clone(),
        }
    }
}

/// One sweep: every model at every worker count against `farm`'s hosts,
/// `targets(workers)` targets each.
fn sweep(
    ctx: &mut Ctx,
    what: &str,
    farm: &pulse_fixtures::farm::Farm,
    workers: &[usize],
    timeout: Duration,
    targets: impl Fn(usize) -> usize,
) -> Vec<Point> {
    let mut points = Vec::new();
    for &w in workers {
        if !ctx.fits(&format!("the {what} sweep"), w) {
            continue;
        }
        let n = targets(w);
        let (text, _) = setup::cycle(farm, n);
        let file = match ctx.file(&format!("{what}-{w}.txt"), &text) {
            Ok(f) => f,
            Err(e) => {
                ctx.skip(format!("the {what} sweep at {w}: {e}"));
                continue;
            }
        };
        for model in models() {
            let run = ctx.scan(model, &file, w, timeout, |_| {});
            points.push(Point {
                model,
                workers: w,
                targets: n,
                run,
            });
        }
    }
    points
}

/// The sweep's table: one row per model and worker count.
fn table(points: &[Point], ideal: impl Fn(&Point) -> f64) -> Table {
    let mut t = Table::new(&[
        "model",
        "workers#",
        "targets#",
        "probes/s#",
        "share of ideal#",
        "time to start all (ms)#",
        "peak RSS (MiB)#",
        "OS threads#",
        "CPU (s)#",
        "note",
    ]);
    for p in points {
        match (p.rate(), p.run.as_ref()) {
            (Some(rate), Ok(run)) => {
                let u = &run.measured.usage;
                t.row(vec![
                    p.model.into(),
                    p.workers.to_string(),
                    p.targets.to_string(),
                    f0(rate),
                    format!("{:.0}%", rate / ideal(p) * 100.0),
                    p.start_all_ms().map_or_else(String::new, f1),
                    f1(u.peak_rss_mib),
                    u.peak_threads.to_string(),
                    f2(u.cpu_s()),
                    String::new(),
                ]);
            }
            _ => t.row(vec![
                p.model.into(),
                p.workers.to_string(),
                p.targets.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                p.failure().as_deref().map(brief).unwrap_or_default(),
            ]),
        }
    }
    t
}

/// A line per model of `y` over workers.
fn lines(
    title: &str,
    y_label: &str,
    log_y: bool,
    points: &[Point],
    y: impl Fn(&Point) -> Option<f64>,
) -> String {
    Lines {
        title: title.into(),
        x_label: "workers (probes in flight), log scale".into(),
        y_label: y_label.into(),
        log_x: true,
        log_y,
        series: per_model(points, |p| p.model, |p| Some((p.workers as f64, y(p)?))),
    }
    .svg()
}

/// The value of `f` for `model` at `workers`, if it ran.
fn at(
    points: &[Point],
    model: &str,
    workers: usize,
    f: impl Fn(&Point) -> Option<f64>,
) -> Option<f64> {
    points
        .iter()
        .find(|p| p.model == model && p.workers == workers)
        .and_then(f)
}

/// The largest worker count every point of `model` reached.
fn top(points: &[Point]) -> usize {
    points.iter().map(|p| p.workers).max().unwrap_or(0)
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Workers sweep: 10 to 10,000 probes in flight");
    let workers = pick(vec![10, 100, 1000, 5000, 10_000], vec![10, 100]);
    s.doc.para(
        "Every model scans the same targets with `--workers` from 10 to 10,000. Against **blackholed** \
         hosts (the farm keeps their accept queues full, so every SYN is dropped) each probe waits its \
         whole 1 s timeout: one round of `workers` targets, ideal throughput `workers / 1 s` \
         (Little's law: in flight = rate × time in system). Against **50 ms** hosts the ideal is \
         `workers / 50 ms`, until the machine's CPU runs out. \"Time to start all\" is when the \
         `workers`-th probe started (its queue wait): what it costs the model to put every worker to \
         work. Hosts are cycled: a target file lists each farm host as often as needed, one \
         connection per line.",
    );

    // Blackholed.
    let timeout = Duration::from_secs(1);
    let bh = setup::one_group(
        "sweep-blackhole",
        "tcp",
        "blackhole",
        pick(2000, 20),
        0,
        "1s",
    )
    .and_then(|sc| ctx.farm(&sc));
    match bh {
        Err(e) => ctx.skip(format!(
            "the blackholed workers sweep: the farm cannot start: {e}"
        )),
        Ok(farm) => {
            let points = sweep(ctx, "blackhole", &farm, &workers, timeout, |w| w);
            drop(farm);
            s.doc.heading(3, "Blackholed hosts (every probe waits 1 s)");
            s.chart(
                "workers-blackhole-rate",
                "probes/s against blackholed hosts by workers, per model",
                lines(
                    "Blackholed hosts: probes/s by workers (ideal = workers / 1 s)",
                    "probes/s",
                    true,
                    &points,
                    Point::rate,
                ),
            );
            s.chart(
                "workers-blackhole-start",
                "time to start all workers, per model",
                lines(
                    "Blackholed hosts: time until every worker had started a probe",
                    "ms (log)",
                    true,
                    &points,
                    Point::start_all_ms,
                ),
            );
            blackhole_findings(&mut s, &points);
            s.table(
                "workers-blackhole",
                table(&points, |p| p.workers as f64 / timeout.as_secs_f64()),
            );
        }
    }

    // 50 ms.
    let lat = setup::one_group("sweep-50ms", "http", "ok", pick(2000, 20), 50, "2s")
        .and_then(|sc| ctx.farm(&sc));
    match lat {
        Err(e) => ctx.skip(format!(
            "the 50 ms workers sweep: the farm cannot start: {e}"
        )),
        Ok(farm) => {
            let points = sweep(ctx, "50ms", &farm, &workers, Duration::from_secs(2), |w| {
                (w * 10).min(50_000)
            });
            drop(farm);
            s.doc.heading(3, "Hosts answering after 50 ms");
            s.chart(
                "workers-50ms-rate",
                "probes/s against 50 ms hosts by workers, per model",
                lines(
                    "50 ms hosts: probes/s by workers (ideal = workers / 50 ms)",
                    "probes/s",
                    true,
                    &points,
                    Point::rate,
                ),
            );
            s.chart(
                "workers-50ms-rss",
                "peak RSS by workers, per model",
                lines(
                    "50 ms hosts: peak RSS of the scan process by workers",
                    "MiB (log)",
                    true,
                    &points,
                    |p| Some(p.run.as_ref().ok()?.measured.usage.peak_rss_mib),
                ),
            );
            latency_findings(&mut s, &points);
            s.table(
                "workers-50ms",
                table(&points, |p| p.workers.min(p.targets) as f64 / 0.05),
            );
        }
    }
    s
}

/// Findings under the blackholed charts, from the figures.
fn blackhole_findings(s: &mut Section, points: &[Point]) {
    let w = top(points);
    let start = |m| at(points, m, w, Point::start_all_ms);
    if let (Some(tokio), Some(threads)) = (start("tokio"), start("threads")) {
        s.doc.finding(
            &format!("Starting {w} workers: threads {:.0} ms, tokio {:.0} ms ({:.0}x).", threads, tokio, threads / tokio.max(0.01)),
            &format!(
                "An async worker is a heap allocation and a queue push; an OS thread is a clone(2), a \
                 stack mapping and a scheduler entry, about {:.0} µs each here, paid before its first \
                 probe. Blackholed probes make it visible because nothing else happens: the scan is \
                 only waiting.",
                threads * 1000.0 / w as f64
            ),
        );
    }
    if let Some(why) = points
        .iter()
        .find(|p| p.model == "rayon" && p.workers == w)
        .and_then(Point::failure)
    {
        s.doc.finding(
            &format!("rayon does not run at {w} workers."),
            &format!("It refuses, and says why: \"{why}\""),
        );
    }
    let rates: Vec<String> = models()
        .iter()
        .filter_map(|m| {
            at(points, m, w, Point::rate).map(|r| format!("{m} {:.0}%", r / w as f64 * 100.0))
        })
        .collect();
    if !rates.is_empty() {
        s.doc.finding(
            &format!("Share of the ideal at {w} in flight: {}.", rates.join(", ")),
            "Every probe waits exactly its timeout, so the scan's length is the start-up plus one timeout \
             plus the wind-down: what a model loses against the ideal here is what it costs to start and \
             to reap that many waiting probes, not any speed of its own.",
        );
    }
}

/// Findings under the 50 ms charts.
fn latency_findings(s: &mut Section, points: &[Point]) {
    let share =
        |m: &str, w: usize| at(points, m, w, Point::rate).map(|r| r / (w as f64 / 0.05) * 100.0);
    for w in [1000, top(points)] {
        let shares: Vec<String> = models()
            .iter()
            .filter_map(|m| share(m, w).map(|v| format!("{m} {v:.0}%")))
            .collect();
        if shares.is_empty() {
            continue;
        }
        let best = models()
            .iter()
            .filter_map(|m| at(points, m, w, Point::rate))
            .fold(0.0, f64::max);
        s.doc.finding(
            &format!("At {w} in flight (ideal {:.0} probes/s): {}.", w as f64 / 0.05, shares.join(", ")),
            &format!(
                "The best reaches {best:.0} probes/s. Past a few hundred in flight the ideal outruns the \
                 machine: every probe is a connect, a request, a response and a close on both sides of \
                 loopback, the farm's side included, on two shared cores, so the models are compared on \
                 CPU per probe (see the scheduling and CPU-bound sections), not on waiting."
            ),
        );
    }
    let rss = |m: &str| {
        at(points, m, top(points), |p| {
            Some(p.run.as_ref().ok()?.measured.usage.peak_rss_mib)
        })
    };
    if let (Some(t), Some(th)) = (rss("tokio"), rss("threads")) {
        s.doc.finding(
            &format!("Peak RSS at {} in flight: threads {th:.0} MiB, tokio {t:.0} MiB ({:.1}x).", top(points), th / t.max(0.1)),
            "A thread's stack is reserved at 2 MiB but only touched pages count, so a blocked thread \
             costs the few stack pages a probe touches, its read buffer (one per OS thread, and every \
             probe of this model is a thread) and its share of malloc's per-thread state; an async \
             probe waits holding no buffer at all. See the memory section for the split.",
        );
    }
}

/// The run the rayon issue named: 10,000 blackholed targets at `--workers
/// 10000 --timeout 2s`, every model.
pub fn acceptance(ctx: &mut Ctx) -> Section {
    let mut s = Section::new(
        "The rayon acceptance run: 10,000 blackholed targets, --workers 10000, --timeout 2s",
    );
    let n = pick(10_000, 100);
    s.doc.para(&format!(
        "Issue 11 measured rayon at 377 s here (170 times its own 2 s deadline) where tokio took 2.2 s and \
         threads 7.1 s. The fix is a bound: the rayon model refuses more than {} probes in flight, with \
         the reason and what to use instead (its crate doc, \"Where this model hurts\", has the cause: \
         a rayon pool's idle loop costs grow with the cube of its size). Done means rayon finishes within \
         3x the slowest other model or is refused with that message.",
        pulse_rayon::MAX_WORKERS
    ));
    if !ctx.fits("the acceptance run", n) {
        return s;
    }
    let farm = match setup::one_group("acceptance", "tcp", "blackhole", pick(2000, 20), 0, "2s")
        .and_then(|sc| ctx.farm(&sc))
    {
        Ok(f) => f,
        Err(e) => {
            ctx.skip(format!("the acceptance run: the farm cannot start: {e}"));
            return s;
        }
    };
    let (text, _) = setup::cycle(&farm, n);
    let Ok(file) = ctx.file("acceptance.txt", &text) else {
        ctx.skip("the acceptance run: cannot write its targets".into());
        return s;
    };
    let mut t = Table::new(&[
        "model",
        "wall (s)#",
        "vs slowest other#",
        "peak RSS (MiB)#",
        "OS threads#",
        "outcome",
    ]);
    let mut runs = Vec::new();
    for model in models() {
        let run = ctx.scan(model, &file, n, Duration::from_secs(2), |_| {});
        runs.push((model, run));
    }
    drop(farm);
    let slowest_other = runs
        .iter()
        .filter(|(m, _)| *m != "rayon")
        .filter_map(|(_, r)| {
            r.as_ref()
                .ok()
                .filter(|r| r.report.is_some())
                .map(|r| r.measured.usage.wall_s)
        })
        .fold(0.0, f64::max);
    let mut verdict = String::from("no rayon figure");
    for (model, run) in &runs {
        match run {
            Ok(r) => {
                let u = &r.measured.usage;
                let outcome = match (&r.report, &r.failure) {
                    (Some(rep), _) => format!(
                        "{} results, {} timed out",
                        rep.results.len(),
                        rep.summary.errors.values().sum::<usize>()
                    ),
                    (None, Some(why)) => format!("refused: {why}"),
                    (None, None) => "no report".into(),
                };
                if *model == "rayon" {
                    verdict = match (&r.report, &r.failure) {
                        (Some(_), _) if u.wall_s <= 3.0 * slowest_other => format!(
                            "done: rayon finished in {:.1} s, {:.2}x the slowest other model",
                            u.wall_s,
                            u.wall_s / slowest_other.max(1e-9)
                        ),
                        (Some(_), _) => format!(
                            "NOT done: rayon took {:.1} s, {:.1}x the slowest other model",
                            u.wall_s,
                            u.wall_s / slowest_other.max(1e-9)
                        ),
                        (None, Some(why)) if why.contains("--runtime threads") => format!(
                            "done: rayon refused in {:.2} s, saying why and what to use instead",
                            u.wall_s
                        ),
                        _ => "NOT done: rayon failed without the refusal message".into(),
                    };
                }
                t.row(vec![
                    (*model).into(),
                    f2(u.wall_s),
                    f2(u.wall_s / slowest_other.max(1e-9)),
                    f1(u.peak_rss_mib),
                    u.peak_threads.to_string(),
                    outcome,
                ]);
            }
            Err(e) => t.row(vec![
                (*model).into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                e.clone(),
            ]),
        }
    }
    s.table("acceptance", t);
    s.doc.finding(
        &format!("Verdict: {verdict}."),
        &format!("The slowest model that ran took {slowest_other:.1} s."),
    );
    s
}
