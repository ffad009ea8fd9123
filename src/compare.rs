//! `pulse compare`: the workbench's main job. One farm, the same scan run by
//! every model as a child process, one table side by side.
//!
//! Each model runs as `pulse --runtime X scan ...`, a process of its own, so
//! its peak RSS and CPU time come from the kernel's accounting of the whole
//! process (wait4(2) rusage), not from the model's own word. Every run gets
//! the same targets file, `--workers` and `--timeout`: the model is the only
//! thing that differs. What cannot be equal is stated in the report: the
//! farm shares the machine (its CPU is measured during each run), and each
//! model uses the number of OS threads its design calls for (reported).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pulse_core::result::Report;
use pulse_core::session::fmt_duration;
use pulse_fixtures::farm::{Correctness, Farm, Scenario, check};
use serde::Serialize;
use wait4::Wait4;

use crate::farm::{farm_options, load_scenario};
use crate::markup::escape;
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

#[derive(Debug, Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
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
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
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
        machine: machine(),
        rustc: env!("PULSE_RUSTC_VERSION"),
        pulse: pulse_core::VERSION,
        commit: commit(),
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
    match write_report(&report, &table, &args.out) {
        Ok((md, json)) => eprintln!(
            "pulse compare: wrote {} and {}",
            md.display(),
            json.display()
        ),
        Err(e) => {
            return fail(
                EXIT_SETUP,
                format!("cannot write the report to {}: {e}", args.out.display()),
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
    let out_path = dir.join(format!("{}-{run}.json", rt.name()));
    let err_path = dir.join(format!("{}-{run}.stderr", rt.name()));
    let out = File::create(&out_path).map_err(|e| e.to_string())?;
    let err = File::create(&err_path).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the pulse binary: {e}"))?;
    let mut child = Command::new(exe)
        .args(["--runtime", rt.name(), "-q", "scan", "--output", "json"])
        .arg("--targets")
        .arg(targets)
        .args([
            "--workers",
            &workers.to_string(),
            "--timeout",
            &fmt_duration(timeout),
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start the scan: {e}"))?;
    let usage = child
        .wait4()
        .map_err(|e| format!("waiting for the scan: {e}"))?;
    // 0: all up, 1: some down (expected: the farm has failing hosts).
    if !matches!(usage.status.code(), Some(0 | 1)) {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        return Err(format!(
            "the scan failed ({}): {}",
            usage.status,
            stderr.trim()
        ));
    }
    let text = std::fs::read(&out_path).map_err(|e| e.to_string())?;
    let report: Report =
        serde_json::from_slice(&text).map_err(|e| format!("unreadable scan output: {e}"))?;
    let up: Vec<f64> = sorted(
        report
            .results
            .iter()
            .filter(|r| r.success)
            .map(|r| r.duration_ms),
    );
    let waits: Vec<f64> = sorted(report.results.iter().map(|r| r.queue_wait_ms));
    let scan_seconds = report.pulse.duration_ms / 1000.0;
    Ok(Measurement {
        runtime: rt.name(),
        run,
        probes_per_sec: report.results.len() as f64 / scan_seconds.max(1e-9),
        scan_seconds,
        p50_ms: percentile(&up, 0.50),
        p99_ms: percentile(&up, 0.99),
        p99_queue_wait_ms: percentile(&waits, 0.99),
        peak_rss_mib: usage.rusage.maxrss as f64 / (1024.0 * 1024.0),
        cpu_user_s: usage.rusage.utime.as_secs_f64(),
        cpu_sys_s: usage.rusage.stime.as_secs_f64(),
        runtime_threads: report.pulse.runtime_threads,
        correctness: check(farm.expectations(), &report.results),
        farm_cpu_s: 0.0,
    })
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The run of `runtime` with the median throughput (its numbers stay together).
fn median_run(all: &[Measurement], runtime: &str) -> Option<Measurement> {
    let mut runs: Vec<&Measurement> = all.iter().filter(|m| m.runtime == runtime).collect();
    runs.sort_by(|a, b| a.probes_per_sec.total_cmp(&b.probes_per_sec));
    runs.get(runs.len() / 2).map(|m| (*m).clone())
}

fn markdown_table(r: &CompareReport) -> String {
    let base = r
        .summary
        .iter()
        .find(|m| m.runtime == "tokio")
        .or(r.summary.first())
        .map_or(1.0, |m| m.probes_per_sec);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| model | probes/s | vs {} | p50 | p99 | p99 queue wait | peak RSS | CPU user+sys | threads | correct | farm CPU |",
        r.summary
            .iter()
            .find(|m| m.runtime == "tokio")
            .map_or("first", |_| "tokio")
    );
    let _ = writeln!(
        t,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for m in &r.summary {
        let _ = writeln!(
            t,
            "| {} | {:.0} | {:.2} | {:.1} ms | {:.1} ms | {:.0} ms | {:.1} MiB | {:.2} s | {} | {:.1}% | {:.2} s |",
            m.runtime,
            m.probes_per_sec,
            m.probes_per_sec / base,
            m.p50_ms,
            m.p99_ms,
            m.p99_queue_wait_ms,
            m.peak_rss_mib,
            m.cpu_user_s + m.cpu_sys_s,
            m.runtime_threads,
            m.correctness.percent(),
            m.farm_cpu_s,
        );
    }
    t
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

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into()),
    }
}

/// The commit of the working tree we run from, `-dirty` if it has changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c)
            if git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()) =>
        {
            format!("{c}-dirty")
        }
        Some(c) => c,
        None => "unknown".into(),
    }
}

fn write_report(r: &CompareReport, table: &str, out: &Path) -> io::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out)?;
    let stem = format!("{}-{}", r.date.replace(':', "-"), r.scenario.name);
    let md_path = out.join(format!("{stem}.md"));
    let json_path = out.join(format!("{stem}.json"));
    let svg_path = out.join(format!("{stem}.svg"));
    std::fs::write(&svg_path, chart(r))?;
    let mut md = String::new();
    let _ = writeln!(md, "# pulse compare: `{}`\n", r.scenario.name);
    let _ = writeln!(md, "{}\n", r.scenario.description.trim());
    let _ = writeln!(md, "| | |\n| --- | --- |");
    for (k, v) in [
        ("date", r.date.clone()),
        ("command", format!("`{}`", r.command)),
        ("hosts", r.scenario.hosts.to_string()),
        ("workers", r.workers.to_string()),
        ("timeout", r.timeout.clone()),
        ("runs per model", r.runs.to_string()),
        (
            "machine",
            format!(
                "{}, {} cores, {} GiB, Linux {}",
                r.machine.cpu, r.machine.cores, r.machine.memory_gib, r.machine.kernel
            ),
        ),
        ("rustc", r.rustc.to_string()),
        ("pulse", format!("{} ({})", r.pulse, r.commit)),
    ] {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let _ = writeln!(md, "\n{table}");
    let _ = writeln!(md, "![probes/s, peak RSS and CPU by model]({stem}.svg)\n");
    for n in &r.notes {
        let _ = writeln!(md, "- {n}");
    }
    for s in &r.skipped {
        let _ = writeln!(md, "- skipped: {s}");
    }
    std::fs::write(&md_path, md)?;
    let json = serde_json::to_vec_pretty(r).map_err(io::Error::other)?;
    std::fs::write(&json_path, json)?;
    Ok((md_path, json_path))
}

/// A bar chart of the summary: throughput, peak RSS and CPU per model, one
/// panel each, every bar labelled with its value and its ratio to tokio.
/// Plain SVG, no dependency: it is a handful of rectangles.
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
    const COLOURS: [&str; 5] = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2"];
    let (label_w, bar_w, row_h, panel_gap) = (90.0, 360.0, 22.0, 34.0);
    let rows = r.summary.len() as f64;
    let panel_h = panel_gap + rows * row_h;
    let width = label_w + bar_w + 150.0;
    let height = 40.0 + panel_h * metrics.len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="8" y="20" font-size="14" font-weight="bold">pulse compare: {} ({} hosts, {} workers)</text>"#,
        escape(&r.scenario.name),
        r.scenario.hosts,
        r.workers
    );
    for (p, (title, unit, value)) in metrics.iter().enumerate() {
        let top = 40.0 + p as f64 * panel_h;
        let _ = writeln!(
            svg,
            r#"<text x="8" y="{}" font-weight="bold">{}</text>"#,
            top + 16.0,
            escape(title)
        );
        let max = r
            .summary
            .iter()
            .map(value)
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let base = r.summary.iter().find(|m| m.runtime == "tokio").map(value);
        for (i, m) in r.summary.iter().enumerate() {
            let y = top + panel_gap - 8.0 + i as f64 * row_h;
            let v = value(m);
            let w = (v / max * bar_w).max(1.0);
            let ratio = base
                .filter(|b| *b > 0.0)
                .map(|b| format!(" ({:.2}x tokio)", v / b))
                .unwrap_or_default();
            let _ = writeln!(
                svg,
                r#"<text x="8" y="{}">{}</text>"#,
                y + 14.0,
                escape(m.runtime)
            );
            let _ = writeln!(
                svg,
                r#"<rect x="{label_w}" y="{y}" width="{w:.1}" height="{}" fill="{}"/>"#,
                row_h - 6.0,
                COLOURS[i % COLOURS.len()]
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{}">{}{unit}{ratio}</text>"#,
                label_w + w + 6.0,
                y + 14.0,
                if v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
