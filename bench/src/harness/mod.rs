//! The harness's regimes, what they share, and the report they make.
//!
//! Each regime is one file with one `run(&mut Ctx) -> Section`: it starts
//! the farm it needs, runs every model (and peers) as children through
//! [`Ctx::scan`], and returns its part of the report: tables (also written
//! as CSV), charts, and the findings in words beside them. A regime that
//! cannot run (no root, a missing tool, a value past the open-files limit)
//! says so in [`Ctx::skip`] and the rest of the run goes on; the report
//! lists every skip with its reason.

mod cancel;
mod cpu;
mod criterion;
mod idle;
mod kernel;
mod memory;
mod peers;
mod sched;
mod stacks;
mod workers;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pulse_bench::machine::{self, Machine};
use pulse_bench::measure::{ScanRun, ScanSpec};
use pulse_bench::report::{Doc, Table};
use pulse_bench::units::Model;
use pulse_fixtures::farm::{Farm, FarmOptions, Scenario};

/// Every regime, in report order, with one line on what it shows.
pub const REGIMES: [(&str, &str); 11] = [
    (
        "criterion",
        "the micro-benchmarks' figures (run `cargo bench -p pulse-bench` first)",
    ),
    (
        "workers",
        "workers 10..10,000 against blackholed and 50 ms hosts",
    ),
    ("memory", "memory per in-flight probe, per probe kind"),
    ("idle", "10k..1M sleeping units per model"),
    (
        "sched",
        "context switches, CPU and syscalls per probe at 100 in flight",
    ),
    (
        "cpu",
        "HTTPS with full handshakes at zero latency: the CPU-bound regime",
    ),
    (
        "cancel",
        "SIGINT mid-scan with 1,000 in flight, and failure cost",
    ),
    (
        "peers",
        "wrk, hey, blackbox_exporter and fping on the same workloads",
    ),
    (
        "kernel",
        "HTTP against nginx beside wrk -t1 and hey, syscalls per probe, the goals checked",
    ),
    (
        "stacks",
        "every model, the native stacks and the Go/Python baselines on one farm",
    ),
    (
        "acceptance",
        "rayon at --workers 10000 against 10,000 blackholed targets",
    ),
];

/// File descriptors a child keeps for itself beyond one per worker (pulse's
/// own FD_RESERVE).
const FD_RESERVE: u64 = 64;

/// What every regime shares.
pub struct Ctx {
    /// The pulse binary measured.
    pub pulse: PathBuf,
    /// This binary, for the idle-units children.
    pub me: PathBuf,
    /// Scratch space: targets files, children's outputs.
    pub scratch: tempfile::TempDir,
    /// Every command run, in order, for the run folder.
    pub commands: Vec<String>,
    /// What was skipped and why, for the report.
    pub skipped: Vec<String>,
    /// Criterion's output directory.
    pub criterion: PathBuf,
    /// The zero-latency HTTP runs at 100 in flight (`sched`), which the
    /// peers are set beside: (model, probes/s, CPU µs per probe).
    pub http100: Vec<(String, f64, f64)>,
    /// The same for TCP connect.
    pub tcp100: Vec<(String, f64, f64)>,
    /// Resident KiB per in-flight blackholed TCP probe (`memory`), which
    /// the `kernel` regime checks against its goal: (model, in flight, KiB).
    pub tcp_kib: Vec<(String, usize, f64)>,
    /// Children run so far, for unique file names.
    runs: usize,
}

/// One regime's part of the report.
#[derive(Default)]
pub struct Section {
    /// Its heading.
    pub title: String,
    /// Its text: tables, figures, findings.
    pub doc: Doc,
    /// Raw data, written to the run folder as `<name>.csv`.
    pub csv: Vec<(String, Table)>,
    /// Charts, written to `charts/<name>.svg` (the doc links them).
    pub charts: Vec<(String, String)>,
}

impl Section {
    /// An empty section titled `title`.
    pub fn new(title: &str) -> Section {
        Section {
            title: title.to_string(),
            ..Section::default()
        }
    }

    /// Add a chart and its figure in the text.
    pub fn chart(&mut self, name: &str, alt: &str, svg: String) {
        self.doc.figure(&format!("charts/{name}.svg"), alt);
        self.charts.push((name.to_string(), svg));
    }

    /// Add a table to the text and to the run folder.
    pub fn table(&mut self, name: &str, table: Table) {
        self.doc.table(&table);
        self.csv.push((name.to_string(), table));
    }
}

impl Ctx {
    /// Record a skip: printed now, listed in the report.
    pub fn skip(&mut self, what: String) {
        eprintln!("pulse-bench: skipped {what}");
        self.skipped.push(what);
    }

    /// Start a farm, with the ICMP responder (pulse itself) when the
    /// scenario has ICMP hosts. Its own skips go to the report.
    pub fn farm(&mut self, scenario: &Scenario) -> Result<Farm, String> {
        let farm = Farm::start(
            scenario,
            FarmOptions {
                threads: 2,
                responder: Some(vec![
                    self.pulse.clone().into_os_string(),
                    "farm-icmp-responder".into(),
                ]),
            },
        )?;
        for why in farm.skipped() {
            self.skip(format!("{} farm: {why}", scenario.name));
        }
        Ok(farm)
    }

    /// Write a scratch file; returns its path.
    pub fn file(&mut self, name: &str, text: &str) -> Result<PathBuf, String> {
        let path = self.scratch.path().join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Whether `workers` sockets fit this process's open-files limit (a
    /// child inherits it); if not, the skip says which value would.
    pub fn fits(&mut self, what: &str, workers: usize) -> bool {
        let hard = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
        if workers as u64 + FD_RESERVE <= hard {
            return true;
        }
        self.skip(format!(
            "{what} at {workers}: beyond the open-files limit {hard} (at most {} fit; raise ulimit -Hn)",
            hard.saturating_sub(FD_RESERVE)
        ));
        false
    }

    /// Run one model's scan of `targets` as a child and measure it.
    pub fn scan(
        &mut self,
        model: &str,
        targets: &Path,
        workers: usize,
        timeout: Duration,
        tweak: impl FnOnce(&mut ScanSpec<'_>),
    ) -> Result<ScanRun, String> {
        self.runs += 1;
        let pulse = self.pulse.clone();
        let dir = self.scratch.path().to_path_buf();
        let mut spec = ScanSpec {
            pulse: &pulse,
            runtime: model,
            targets,
            workers,
            timeout: pulse_core::session::fmt_duration(timeout),
            extra: Vec::new(),
            wrapper: Vec::new(),
            interrupt_after: None,
            dir: &dir,
            stem: format!("run{}-{model}", self.runs),
        };
        tweak(&mut spec);
        let run = spec.run()?;
        self.commands.push(run.command.clone());
        if let Some(why) = &run.failure {
            eprintln!(
                "pulse-bench: {model} at --workers {workers}: {}",
                brief(why)
            );
        }
        Ok(run)
    }
}

/// The models' names, in report order.
pub fn models() -> [&'static str; 5] {
    Model::ALL.map(Model::name)
}

/// One chart line per model, in report order, from whatever points a
/// regime keeps: `model` names a point's model, `xy` gives its position
/// (None for a point that did not run, which the line skips).
pub fn per_model<P>(
    points: &[P],
    model: impl Fn(&P) -> &str,
    xy: impl Fn(&P) -> Option<(f64, f64)>,
) -> Vec<pulse_bench::chart::Series> {
    models()
        .iter()
        .map(|m| pulse_bench::chart::Series {
            name: (*m).into(),
            points: points
                .iter()
                .filter(|p| model(p) == *m)
                .filter_map(&xy)
                .collect(),
        })
        .collect()
}

/// `full` normally, `quick` under PULSE_BENCH_QUICK.
pub fn pick<T>(full: T, quick: T) -> T {
    pulse_bench::quick::pick(full, quick)
}

/// A failure as a table cell: its first clause (the rayon model's refusal,
/// for one, goes on to explain itself at length, and the explanation is in
/// the report once, in the acceptance section and the crate doc).
pub fn brief(why: &str) -> String {
    match why.find(": ") {
        Some(i) if i < 120 => why[..i].to_string(),
        _ if why.chars().count() > 120 => why.chars().take(120).collect::<String>() + "…",
        _ => why.to_string(),
    }
}

/// A figure to one decimal, or the failure's short form.
pub fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// A figure with no decimals.
pub fn f0(v: f64) -> String {
    format!("{v:.0}")
}

/// A figure to two decimals.
pub fn f2(v: f64) -> String {
    format!("{v:.2}")
}

/// Run the named regimes (all when none are named) and write the report.
pub fn main(
    names: &[String],
    out: &Path,
    pulse: Option<PathBuf>,
    criterion_dir: Option<PathBuf>,
) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let pulse = pulse.unwrap_or_else(|| me.with_file_name("pulse"));
    if !pulse.is_file() {
        return Err(format!(
            "no pulse binary at {}: build it (cargo build --release) or pass --pulse",
            pulse.display()
        ));
    }
    let criterion = criterion_dir.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from);
        target.join("criterion")
    });
    let mut ctx = Ctx {
        pulse,
        me,
        scratch: tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?,
        commands: Vec::new(),
        skipped: Vec::new(),
        criterion,
        http100: Vec::new(),
        tcp100: Vec::new(),
        tcp_kib: Vec::new(),
        runs: 0,
    };
    let known: Vec<&str> = REGIMES.iter().map(|r| r.0).collect();
    let mut chosen: Vec<&str> = Vec::new();
    for n in names {
        if known.contains(&n.as_str()) {
            chosen.push(n);
        } else {
            ctx.skip(format!(
                "regime `{n}`: no such regime (known: {})",
                known.join(", ")
            ));
        }
    }
    if names.is_empty() {
        chosen = known.clone();
    }
    // `peers` sets its rows beside `sched`'s figures.
    if chosen.contains(&"peers") && !chosen.contains(&"sched") {
        chosen.insert(0, "sched");
    }
    let started = std::time::Instant::now();
    let mut sections = Vec::new();
    for name in known.iter().filter(|k| chosen.contains(k)) {
        eprintln!(
            "pulse-bench: regime `{name}` ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
        let section = match *name {
            "criterion" => criterion::run(&mut ctx),
            "workers" => workers::run(&mut ctx),
            "memory" => memory::run(&mut ctx),
            "idle" => idle::run(&mut ctx),
            "sched" => sched::run(&mut ctx),
            "cpu" => cpu::run(&mut ctx),
            "cancel" => cancel::run(&mut ctx),
            "peers" => peers::run(&mut ctx),
            "kernel" => kernel::run(&mut ctx),
            "stacks" => stacks::run(&mut ctx),
            _ => workers::acceptance(&mut ctx),
        };
        sections.push(section);
    }
    write(&ctx, &sections, out, started.elapsed())
}

/// Write README.md, the charts and the run folder.
fn write(ctx: &Ctx, sections: &[Section], out: &Path, took: Duration) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let m = Machine::this();
    let date = machine::now();
    let run_name = format!("{}-{}", &date[..10], m.host);
    let run_dir = out.join("runs").join(&run_name);
    let charts = out.join("charts");
    // Charts are the current report's only: none left from an earlier run.
    if charts.is_dir() {
        std::fs::remove_dir_all(&charts).map_err(|e| io(&charts, e))?;
    }
    for d in [&run_dir, &charts] {
        std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
    }
    let rustc =
        machine::command_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into());
    let commit = machine::commit();
    let quick = pulse_bench::quick::on();
    let mut doc = Doc::new();
    doc.heading(1, "pulse: the models compared")
        .para(
            "Generated by `scripts/bench.sh` (criterion, then the `pulse-bench` harness) from one run on the \
             machine below; nothing here is edited by hand. Each model ran as its own `pulse scan` process \
             against the mock host farm on loopback, so memory, threads, CPU and context switches are the \
             kernel's accounting of that process. The machine is shared and noisy: read the figures as \
             ratios between models within this run, not as absolutes.",
        )
        .facts(&[
            ("date", date.clone()),
            ("machine", m.describe()),
            ("rustc", rustc.clone()),
            ("pulse", format!("{} ({commit})", pulse_core::VERSION)),
            ("run folder", format!("[runs/{run_name}/](runs/{run_name}/) (commands, versions, raw CSV)")),
            ("harness time", format!("{:.0} s{}", took.as_secs_f64(), if quick { " (quick mode: figures too few to read)" } else { "" })),
        ]);
    doc.heading(2, "Contents");
    let toc: Vec<String> = sections.iter().map(|s| s.title.clone()).collect();
    doc.bullets(&toc);
    for s in sections {
        doc.heading(2, &s.title);
        doc.raw(s.doc.text());
        for (name, table) in &s.csv {
            let p = run_dir.join(format!("{name}.csv"));
            std::fs::write(&p, table.csv()).map_err(|e| io(&p, e))?;
        }
        for (name, svg) in &s.charts {
            let p = charts.join(format!("{name}.svg"));
            std::fs::write(&p, svg).map_err(|e| io(&p, e))?;
        }
    }
    doc.heading(2, "Skipped");
    if ctx.skipped.is_empty() {
        doc.para("Nothing: every regime, model and peer ran.");
    } else {
        doc.bullets(&ctx.skipped);
    }
    let readme = out.join("README.md");
    std::fs::write(&readme, doc.text()).map_err(|e| io(&readme, e))?;
    let mut commands = String::new();
    if let Ok(steps) = std::env::var("PULSE_BENCH_STEPS") {
        let _ = writeln!(commands, "# scripts/bench.sh ran, in order:");
        for step in steps.split("; ") {
            let _ = writeln!(commands, "{step}");
        }
        commands.push('\n');
    }
    commands.push_str(
        "# Every child the harness ran, in order (targets files were in a scratch directory)\n",
    );
    for c in &ctx.commands {
        let _ = writeln!(commands, "{c}");
    }
    let p = run_dir.join("commands.txt");
    std::fs::write(&p, commands).map_err(|e| io(&p, e))?;
    let mut versions = String::new();
    let _ = writeln!(
        versions,
        "date: {date}\ncommit: {commit}\nmachine: {}\nhost: {}\n{rustc}",
        m.describe(),
        m.host
    );
    if let Some(v) = machine::command_output("cargo", &["--version"]) {
        let _ = writeln!(versions, "{v}");
    }
    let _ = writeln!(versions, "\n# crates (Cargo.lock)");
    for (name, version) in locked_versions() {
        let _ = writeln!(versions, "{name} {version}");
    }
    let p = run_dir.join("versions.txt");
    std::fs::write(&p, versions).map_err(|e| io(&p, e))?;
    let p = run_dir.join("skipped.txt");
    std::fs::write(&p, ctx.skipped.join("\n") + "\n").map_err(|e| io(&p, e))?;
    eprintln!(
        "pulse-bench: wrote {} and {}",
        readme.display(),
        run_dir.display()
    );
    Ok(())
}

/// The versions Cargo.lock pins for the crates the comparison depends on.
fn locked_versions() -> Vec<(String, String)> {
    const CRATES: [&str; 12] = [
        "tokio",
        "smol",
        "async-executor",
        "async-io",
        "async-std",
        "rayon",
        "rayon-core",
        "crossbeam-deque",
        "crossbeam-epoch",
        "rustls",
        "ureq-proto",
        "criterion",
    ];
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take())
            && CRATES.contains(&n.as_str())
        {
            out.push((n, v.trim_matches('"').to_string()));
        }
    }
    out
}
