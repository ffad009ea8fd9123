//! `pulse compare`: the workbench's main job. One farm, the same scan run by
//! every model as a child process, one table side by side.
//!
//! Each model runs as `pulse --runtime X scan ...`, a process of its own, so
//! its peak RSS and CPU time come from the kernel's accounting of the whole
//! process (wait4(2) rusage, through `pulse_bench::measure`, the sweep
//! harness's own measuring code), not from the model's own word. Every run gets
//! the same targets file, `--workers` and `--timeout`: the model is the only
//! thing that differs. What cannot be equal is stated in the report: the
//! farm shares the machine (its CPU is measured during each run), and each
//! model uses the number of OS threads its design calls for (reported).

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pulse_bench::chart::{Bars, Panel};
use pulse_bench::machine::{self, Machine};
use pulse_bench::measure::{ScanSpec, percentile, sorted};
use pulse_bench::report::{Doc, Table};
use pulse_core::session::fmt_duration;
use pulse_fixtures::farm::{Correctness, Farm, Scenario, check};
use serde::Serialize;

use crate::farm::{farm_options, load_scenario};
use crate::{CompareArgs, EXIT_DOWN, EXIT_SETUP, EXIT_UP, EXIT_USAGE, Runtime, fail};

/// One model's run, as measured.
#[derive(Debug, Clone, Serialize)]
struct Measurement {
    runtime: &'static str,
    /// Which repetition (0-based); the order of models rotates between runs.
    run: usize,
    /// Targets divided by the scan's own wall time.
    probes_per_sec: f64,
    /// Scan wall time as the scan measured it, in seconds.
    scan_seconds: f64,
    /// Median and 99th percentile probe time of the probes that succeeded (ms).
    p50_ms: f64,
    p99_ms: f64,
    /// 99th percentile time from scan start to probe start (ms).
    p99_queue_wait_ms: f64,
    /// Peak resident set of the whole child process (kernel's ru_maxrss).
    peak_rss_mib: f64,
    /// User and system CPU of the whole child process.
    cpu_user_s: f64,
    cpu_sys_s: f64,
    /// OS threads the model reported using.
    runtime_threads: usize,
    /// Results matching the farm's expectations.
    correctness: Correctness,
    /// CPU the farm used while this model ran.
    farm_cpu_s: f64,
}

/// What `compare` writes to `reports/`.
#[derive(Debug, Serialize)]
struct CompareReport {
    date: String,
    command: String,
    scenario: ScenarioInfo,
    workers: usize,
    timeout: String,
    runs: usize,
    machine: Machine,
    rustc: &'static str,
    pulse: &'static str,
    commit: String,
    farm_threads: usize,
    skipped: Vec<String>,
    notes: Vec<String>,
    /// One row per model: the run with the median throughput.
    summary: Vec<Measurement>,
    /// Every run.
    runs_detail: Vec<Measurement>,
}

#[derive(Debug, Serialize)]
struct ScenarioInfo {
    name: String,
    description: String,
    hosts: usize,
    seed: u64,
}

pub(crate) fn compare(args: &CompareArgs) -> u8 {
    let scenario = match load_scenario(&args.scenario, args.scale) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let workers = args.workers.unwrap_or(scenario.workers);
    let timeout = match args.timeout {
        Some(t) => t,
        None => match pulse_core::target::parse_duration(&scenario.timeout) {
            Ok(t) => t,
            Err(e) => {
                return fail(
                    EXIT_USAGE,
                    format!("scenario `{}`: timeout: {e}", scenario.name),
                );
            }
        },
    };
    if args
        .timeout
        .is_some_and(|t| Some(t) != pulse_core::target::parse_duration(&scenario.timeout).ok())
    {
        eprintln!(
            "pulse compare: warning: the farm's expectations hold for the scenario's timeout ({}); \
             with --timeout {} some results may differ from them",
            scenario.timeout,
            fmt_duration(timeout)
        );
    }
    let runtimes: Vec<Runtime> = if args.runtimes.is_empty() {
        Runtime::ALL.to_vec()
    } else {
        args.runtimes.clone()
    };
    // The farm's listeners live in this process (one descriptor per host);
    // `Farm::start` raises the open-files limit to what the scenario needs.
    let farm = match Farm::start(&scenario, farm_options(args.farm_threads)) {
        Ok(f) => f,
        Err(e) => return fail(EXIT_SETUP, format!("cannot start the farm: {e}")),
    };
    for why in farm.skipped() {
        eprintln!("pulse: skipped {why}");
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return fail(
                EXIT_SETUP,
                format!("cannot make a temporary directory: {e}"),
            );
        }
    };
    let targets = dir.path().join("targets.txt");
    if let Err(e) = farm.write_targets(&targets) {
        return fail(EXIT_SETUP, format!("cannot write the targets file: {e}"));
    }
    eprintln!(
        "pulse compare: scenario `{}` ({} hosts), {} workers, timeout {}, {} run(s) of {}",
        scenario.name,
        farm.hosts(),
        workers,
        fmt_duration(timeout),
        args.runs,
        runtimes
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let progress = progress_bar((args.runs * runtimes.len()) as u64);
    let mut all = Vec::new();
    for run in 0..args.runs {
        // Rotate the order, so no model always runs first (cold caches) or last.
        for k in 0..runtimes.len() {
            let rt = runtimes[(k + run) % runtimes.len()];
            progress.set_message(format!("{} (run {}/{})", rt.name(), run + 1, args.runs));
            let farm_before = farm.cpu_time();
            let measured = measure(rt, run, &targets, workers, timeout, dir.path(), &farm);
            progress.inc(1);
            match measured {
                Ok(mut m) => {
                    m.farm_cpu_s = farm.cpu_time().saturating_sub(farm_before).as_secs_f64();
                    all.push(m);
                }
                Err(e) => {
                    progress.finish_and_clear();
                    return fail(EXIT_SETUP, format!("{}: {e}", rt.name()));
                }
            }
        }
    }
    progress.finish_and_clear();
    let summary: Vec<Measurement> = runtimes
        .iter()
        .filter_map(|rt| median_run(&all, rt.name()))
        .collect();
    let report = CompareReport {
        date: machine::now(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            hosts: farm.hosts(),
            seed: scenario.seed,
        },
        workers,
        timeout: fmt_duration(timeout),
        runs: args.runs,
        machine: Machine::this(),
        rustc: env!("PULSE_RUSTC_VERSION"),
        pulse: pulse_core::VERSION,
        commit: machine::commit(),
        farm_threads: args.farm_threads,
        skipped: farm.skipped().to_vec(),
        notes: notes(&runtimes, &scenario, args.farm_threads),
        summary,
        runs_detail: all,
    };
    let table = markdown_table(&report);
    println!("{table}");
    for n in &report.notes {
        println!("- {n}");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("pulse-compare"));
    match write_report(&report, &table, &out) {
        Ok([md, json, svg]) => eprintln!(
            "pulse compare: wrote {}, {} and {}",
            md.display(),
            json.display(),
            svg.display()
        ),
        Err(e) => {
            return fail(
                EXIT_SETUP,
                format!("cannot write the report to {}: {e}", out.display()),
            );
        }
    }
    if report.summary.iter().all(|m| m.correctness.is_perfect()) {
        EXIT_UP
    } else {
        for m in report
            .summary
            .iter()
            .filter(|m| !m.correctness.is_perfect())
        {
            eprintln!(
                "pulse compare: {} got {} of {} right:",
                m.runtime, m.correctness.matched, m.correctness.total
            );
            for line in &m.correctness.mismatches {
                eprintln!("  {line}");
            }
        }
        EXIT_DOWN
    }
}

/// A progress bar on a terminal, nothing otherwise.
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Run one model's scan as a child process and measure it.
fn measure(
    rt: Runtime,
    run: usize,
    targets: &Path,
    workers: usize,
    timeout: Duration,
    dir: &Path,
    farm: &Farm,
) -> Result<Measurement, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the pulse binary: {e}"))?;
    let scan = ScanSpec {
        pulse: &exe,
        runtime: rt.name(),
        targets,
        workers,
        timeout: fmt_duration(timeout),
        extra: Vec::new(),
        wrapper: Vec::new(),
        interrupt_after: None,
        dir,
        stem: format!("{}-{run}", rt.name()),
    }
    .run()?;
    let report = match (scan.report, scan.failure) {
        (Some(r), _) => r,
        (None, why) => {
            return Err(format!(
                "the scan failed ({}): {}",
                scan.measured.status,
                why.unwrap_or_default()
            ));
        }
    };
    let up: Vec<f64> = sorted(
        report
            .results
            .iter()
            .filter(|r| r.success)
            .map(|r| r.duration_ms),
    );
    let waits: Vec<f64> = sorted(report.results.iter().map(|r| r.queue_wait_ms));
    let scan_seconds = report.pulse.duration_ms / 1000.0;
    let usage = &scan.measured.usage;
    Ok(Measurement {
        runtime: rt.name(),
        run,
        probes_per_sec: report.results.len() as f64 / scan_seconds.max(1e-9),
        scan_seconds,
        p50_ms: percentile(&up, 0.50),
        p99_ms: percentile(&up, 0.99),
        p99_queue_wait_ms: percentile(&waits, 0.99),
        peak_rss_mib: usage.peak_rss_mib,
        cpu_user_s: usage.user_s,
        cpu_sys_s: usage.sys_s,
        runtime_threads: report.pulse.runtime_threads,
        correctness: check(farm.expectations(), &report.results),
        farm_cpu_s: 0.0,
    })
}

/// The run of `runtime` with the median throughput (its numbers stay together).
fn median_run(all: &[Measurement], runtime: &str) -> Option<Measurement> {
    let mut runs: Vec<&Measurement> = all.iter().filter(|m| m.runtime == runtime).collect();
    runs.sort_by(|a, b| a.probes_per_sec.total_cmp(&b.probes_per_sec));
    runs.get(runs.len() / 2).map(|m| (*m).clone())
}

/// The summary table, ratios against tokio (or the first model).
fn markdown_table(r: &CompareReport) -> String {
    let tokio = r.summary.iter().find(|m| m.runtime == "tokio");
    let base = tokio
        .or(r.summary.first())
        .map_or(1.0, |m| m.probes_per_sec);
    let vs = format!("vs {}#", if tokio.is_some() { "tokio" } else { "first" });
    let mut t = Table::new(&[
        "model",
        "probes/s#",
        &vs,
        "p50#",
        "p99#",
        "p99 queue wait#",
        "peak RSS#",
        "CPU user+sys#",
        "threads#",
        "correct#",
        "farm CPU#",
    ]);
    for m in &r.summary {
        t.row(vec![
            m.runtime.to_string(),
            format!("{:.0}", m.probes_per_sec),
            format!("{:.2}", m.probes_per_sec / base),
            format!("{:.1} ms", m.p50_ms),
            format!("{:.1} ms", m.p99_ms),
            format!("{:.0} ms", m.p99_queue_wait_ms),
            format!("{:.1} MiB", m.peak_rss_mib),
            format!("{:.2} s", m.cpu_user_s + m.cpu_sys_s),
            m.runtime_threads.to_string(),
            format!("{:.1}%", m.correctness.percent()),
            format!("{:.2} s", m.farm_cpu_s),
        ]);
    }
    t.markdown()
}

fn notes(runtimes: &[Runtime], scenario: &Scenario, farm_threads: usize) -> Vec<String> {
    let mut n = vec![
        "Every model scanned the same targets file with the same --workers and --timeout, each as its own process; \
         RSS and CPU are the kernel's accounting of that process (wait4 rusage)."
            .to_string(),
        format!(
            "The farm ran in the comparing process on {farm_threads} thread(s) and shares the machine's cores with the scan; \
             its CPU during each run is in the last column."
        ),
        "probes/s is targets divided by the scan's wall time; p50/p99 are over successful probes; \
         queue wait is the time from scan start to probe start and is never counted as latency."
            .to_string(),
        "Threads differ by design: async models use one thread per core, threads and rayon one per worker."
            .to_string(),
    ];
    if runtimes.contains(&Runtime::AsyncStd) {
        n.push(
            "async-std is discontinued (RUSTSEC-2025-0052) and pinned at 1.13.2; it is measured because code still uses it."
                .to_string(),
        );
    }
    if scenario
        .groups
        .iter()
        .any(|g| g.protocol == pulse_fixtures::farm::Protocol::Tcp)
    {
        n.push(
            "TCP-connect latency cannot be injected without netem (the kernel completes the handshake); tcp hosts answer at loopback speed."
                .to_string(),
        );
    }
    n
}

/// Writes the report to `out` as markdown, JSON and an SVG chart; returns
/// their paths in that order.
fn write_report(r: &CompareReport, table: &str, out: &Path) -> io::Result<[PathBuf; 3]> {
    std::fs::create_dir_all(out)?;
    let stem = format!("{}-{}", r.date.replace(':', "-"), r.scenario.name);
    let md_path = out.join(format!("{stem}.md"));
    let json_path = out.join(format!("{stem}.json"));
    let svg_path = out.join(format!("{stem}.svg"));
    std::fs::write(&svg_path, chart(r))?;
    let mut md = Doc::new();
    md.heading(1, &format!("pulse compare: `{}`", r.scenario.name))
        .para(&r.scenario.description)
        .facts(&[
            ("date", r.date.clone()),
            ("command", format!("`{}`", r.command)),
            ("hosts", r.scenario.hosts.to_string()),
            ("workers", r.workers.to_string()),
            ("timeout", r.timeout.clone()),
            ("runs per model", r.runs.to_string()),
            ("machine", r.machine.describe()),
            ("rustc", r.rustc.to_string()),
            ("pulse", format!("{} ({})", r.pulse, r.commit)),
        ])
        .raw(table)
        .raw("\n")
        .figure(
            &format!("{stem}.svg"),
            "probes/s, peak RSS and CPU by model",
        )
        .bullets(&r.notes)
        .bullets(
            &r.skipped
                .iter()
                .map(|s| format!("skipped: {s}"))
                .collect::<Vec<_>>(),
        );
    std::fs::write(&md_path, md.text())?;
    let json = serde_json::to_vec_pretty(r).map_err(io::Error::other)?;
    std::fs::write(&json_path, json)?;
    Ok([md_path, json_path, svg_path])
}

/// The summary as bars: throughput, peak RSS and CPU per model, one panel
/// each, every bar labelled with its value and its ratio to the first.
fn chart(r: &CompareReport) -> String {
    type Metric = (&'static str, &'static str, fn(&Measurement) -> f64);
    let metrics: [Metric; 3] = [
        ("throughput (probes/s, higher is better)", "", |m| {
            m.probes_per_sec
        }),
        ("peak RSS (MiB, lower is better)", " MiB", |m| {
            m.peak_rss_mib
        }),
        ("CPU user+sys (s, lower is better)", " s", |m| {
            m.cpu_user_s + m.cpu_sys_s
        }),
    ];
    Bars {
        title: format!(
            "pulse compare: {} ({} hosts, {} workers)",
            r.scenario.name, r.scenario.hosts, r.workers
        ),
        panels: metrics
            .iter()
            .map(|(title, unit, value)| Panel {
                title: (*title).to_string(),
                unit: (*unit).to_string(),
                rows: r
                    .summary
                    .iter()
                    .map(|m| (m.runtime.to_string(), value(m)))
                    .collect(),
            })
            .collect(),
    }
    .svg()
}
