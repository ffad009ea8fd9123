//! The same scan in other clients and languages: every model on the core
//! stack, the native stacks (`--stack native`: reqwest and surge-ping on
//! tokio, ureq on threads and rayon), and the standard-library baselines
//! in `bench/baselines/` (Go goroutines + channels in two shapes, Python
//! asyncio, Python threads + queue), all on the same farm in the same run.
//!
//! Per row: throughput and CPU per probe on a zero-latency farm with every
//! kind of failure, correctness against the farm's expectations, memory
//! per in-flight probe and time from SIGINT to exit with 1,000 requests
//! waiting, and the lines of code it takes (non-comment, per file).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pulse_bench::measure::{Child, Measured};
use pulse_bench::report::Table;
use pulse_bench::setup;
use pulse_core::result::{ErrorKind, Kind, Phases, ProbeError, ProbeResult};
use pulse_fixtures::farm::{Scenario, check};

use super::{Ctx, Section, brief, f0, f1, f2, pick};

/// The throughput and correctness farm: zero latency, so the rate is what
/// a probe costs, and every behaviour a client must classify.
const SCENARIO: &str = r#"
name = "stacks"
description = "Zero-latency HTTP, HTTPS and TCP with every failure a client must classify."
seed = 13
timeout = "1s"
workers = 100

[[groups]]
name = "web"
hosts = 1500
protocol = "http"
latency = { dist = "fixed", ms = 0 }
mix = { ok = 88, status = 3, wrong_body = 3, reset = 2, garbage = 2, refused = 2 }
status = 503

[[groups]]
name = "tls"
hosts = 200
protocol = "https"
latency = { dist = "fixed", ms = 0 }
mix = { ok = 95, status = 5 }
status = 500

[[groups]]
name = "ports"
hosts = 300
protocol = "tcp"
mix = { ok = 90, refused = 10 }
"#;

/// Requests waiting when memory is sampled and SIGINT comes.
const IN_FLIGHT: usize = 1000;

/// Workers of the baseline-memory run (as the memory regime's).
const BASE_WORKERS: usize = 10;

/// What runs one row.
#[derive(Clone)]
enum Runner {
    /// `pulse --runtime MODEL [--stack native] scan`.
    Pulse { model: &'static str, native: bool },
    /// A baseline program and its fixed arguments (`-shape pool`).
    Baseline {
        program: PathBuf,
        args: Vec<String>,
        /// Go spells its flags `-targets`; Python `--targets`.
        dash: &'static str,
    },
}

/// One row of the comparison.
#[derive(Clone)]
struct Row {
    label: String,
    runner: Runner,
    /// The files whose lines of code the row counts.
    files: Vec<PathBuf>,
}

/// One measured scan of a row: the kernel's figures and its results.
struct Run {
    measured: Measured,
    results: Vec<ProbeResult>,
    failure: Option<String>,
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Stacks and baselines: the same scan in other clients and languages");
    s.doc.para(
        "Every model on the core stack (the same sans-IO session), the native stacks (`--stack native`: \
         tokio with reqwest, surge-ping and `TcpStream`; threads and rayon with ureq for HTTP(S), the \
         core for TCP and ICMP; smol and async-std have none, see `no_native_stack` in src/main.rs), and \
         the standard-library baselines in `bench/baselines/` (Go: a worker pool over channels, and one \
         goroutine per target under a semaphore; Python: asyncio under a semaphore, threads over a \
         queue), each as its own process on the same farm in this run. Here the stack is the difference \
         between two rows of one model, and the language between a baseline and the models: unlike the \
         other sections, these rows do not share their probe code.",
    );
    let rows = rows(ctx);
    let scenario = match Scenario::parse("stacks", SCENARIO) {
        Ok(sc) => sc.scaled(pick(1.0, 0.05)),
        Err(e) => {
            ctx.skip(format!("stacks: the scenario does not parse: {e}"));
            return s;
        }
    };
    throughput(ctx, &mut s, &rows, &scenario);
    waiting(ctx, &mut s, &rows);
    lines_of_code(&mut s, &rows);
    s
}

/// The rows that can run here; the others are skipped with the reason.
fn rows(ctx: &mut Ctx) -> Vec<Row> {
    let model_files = |dir: &str| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(format!("models/{dir}/src"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "rs") && !p.ends_with("native.rs"));
        files.sort();
        files
    };
    let mut rows = Vec::new();
    for (model, dir, native) in [
        ("tokio", "tokio", Some("models/tokio/src/native.rs")),
        ("smol", "smol", None),
        ("async-std", "async-std", None),
        ("threads", "threads", Some("models/threads/src/native.rs")),
        ("rayon", "rayon", Some("models/threads/src/native.rs")),
    ] {
        rows.push(Row {
            label: model.into(),
            runner: Runner::Pulse {
                model,
                native: false,
            },
            files: model_files(dir),
        });
        if let Some(native) = native {
            let mut files = model_files(dir);
            files.push(native.into());
            rows.push(Row {
                label: format!("{model} native"),
                runner: Runner::Pulse {
                    model,
                    native: true,
                },
                files,
            });
        }
    }
    let baselines = Path::new("bench/baselines");
    match go_build(ctx, &baselines.join("go")) {
        Ok(program) => {
            for shape in ["pool", "semaphore"] {
                rows.push(Row {
                    label: format!("go {shape}"),
                    runner: Runner::Baseline {
                        program: program.clone(),
                        args: vec!["-shape".into(), shape.into()],
                        dash: "-",
                    },
                    files: source_files(&baselines.join("go"), "go"),
                });
            }
        }
        Err(why) => ctx.skip(format!("stacks: the Go baselines: {why}")),
    }
    match pulse_bench::machine::command_output("python3", &["--version"]) {
        Some(_) => {
            let dir = baselines.join("python");
            for (label, script) in [
                ("python asyncio", "asyncio_scan.py"),
                ("python threads", "threads_scan.py"),
            ] {
                let path = dir.join(script);
                if !path.is_file() {
                    ctx.skip(format!("stacks: {label}: no {}", path.display()));
                    continue;
                }
                // The script and the module both scripts import.
                let mut files = vec![path.clone()];
                let shared = dir.join("targets.py");
                if shared.is_file() {
                    files.push(shared);
                }
                rows.push(Row {
                    label: label.into(),
                    runner: Runner::Baseline {
                        program: "python3".into(),
                        args: vec![path.display().to_string()],
                        dash: "--",
                    },
                    files,
                });
            }
        }
        None => ctx.skip("stacks: the Python baselines: no python3 on this machine".into()),
    }
    rows
}

/// Build the Go baseline once, into the scratch directory.
fn go_build(ctx: &mut Ctx, dir: &Path) -> Result<PathBuf, String> {
    if !dir.join("go.mod").is_file() {
        return Err(format!("no {}", dir.join("go.mod").display()));
    }
    let Some(version) = pulse_bench::machine::command_output("go", &["version"]) else {
        return Err("no `go` on this machine (Debian: apt-get install golang-go)".into());
    };
    let out = ctx.scratch.path().join("pulse-baseline-go");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", ctx.scratch.path().join("gocache"))
        .env("GOFLAGS", "-mod=mod")
        .output()
        .map_err(|e| format!("go build: {e}"))?;
    if !status.status.success() {
        return Err(format!(
            "go build failed: {}",
            String::from_utf8_lossy(&status.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    ctx.commands.push(format!(
        "(cd {} && go build -o {} .)  # {version}",
        dir.display(),
        out.display()
    ));
    Ok(out)
}

fn source_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.extension().is_some_and(|e| e == ext)
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("_test.go"))
    });
    files.sort();
    files
}

/// Run `row` over `targets` and measure it.
fn scan(
    ctx: &mut Ctx,
    row: &Row,
    targets: &Path,
    workers: usize,
    timeout: Duration,
    interrupt_after: Option<Duration>,
) -> Result<Run, String> {
    let timeout_text = pulse_core::session::fmt_duration(timeout);
    match &row.runner {
        Runner::Pulse { model, native } => {
            let r = ctx.scan(model, targets, workers, timeout, |spec| {
                if *native {
                    spec.extra = vec!["--stack".into(), "native".into()];
                }
                if interrupt_after.is_some() {
                    spec.extra.extend(["--grace".into(), "0".into()]);
                    spec.interrupt_after = interrupt_after;
                }
            })?;
            Ok(Run {
                measured: r.measured,
                results: r.report.map(|rep| rep.results).unwrap_or_default(),
                failure: r.failure,
            })
        }
        Runner::Baseline {
            program,
            args,
            dash,
        } => {
            let mut argv = args.clone();
            for (flag, value) in [
                ("targets", targets.display().to_string()),
                ("workers", workers.to_string()),
                ("timeout", timeout_text),
                ("grace", "0s".into()),
            ] {
                argv.push(format!("{dash}{flag}"));
                argv.push(value);
            }
            let stem = format!("baseline-{}", row.label.replace(' ', "-"));
            let mut child = Child::new(program, &argv, ctx.scratch.path(), &stem);
            child.interrupt_after = interrupt_after;
            let stdout = child.stdout.clone();
            let stderr = child.stderr.clone();
            ctx.commands
                .push(format!("{} {}", program.display(), argv.join(" ")));
            let measured = child.run()?;
            let text = std::fs::read_to_string(&stdout).unwrap_or_default();
            let results: Vec<ProbeResult> = text.lines().filter_map(baseline_result).collect();
            let failure = match measured.usage.exit_code {
                Some(0 | 1 | 130) => None,
                _ => Some(
                    std::fs::read_to_string(&stderr)
                        .unwrap_or_default()
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("no output and no message")
                        .to_string(),
                ),
            };
            Ok(Run {
                measured,
                results,
                failure,
            })
        }
    }
}

/// One JSON line of a baseline as a result the farm's check can read. A
/// kind pulse does not have (`unsupported`, `other`) stays a failure of
/// kind `io` whose message names it, so the check counts it as wrong
/// wherever the farm expects something else.
fn baseline_result(line: &str) -> Option<ProbeResult> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let target = v["target"].as_str()?.to_string();
    let kind = if target.starts_with("tcp://") {
        Kind::Tcp
    } else if target.starts_with("icmp://") {
        Kind::Icmp
    } else {
        Kind::Http
    };
    let error = v["error"].as_object().map(|e| {
        let name = e.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
        match serde_json::from_value::<ErrorKind>(serde_json::Value::String(name.into())) {
            Ok(k) => ProbeError::new(k, message),
            Err(_) => ProbeError::new(ErrorKind::Io, format!("[{name}] {message}")),
        }
    });
    Some(ProbeResult {
        target,
        kind,
        line: usize::try_from(v["line"].as_u64()?).ok()?,
        success: v["success"].as_bool()?,
        duration_ms: v["duration_ms"].as_f64().unwrap_or(0.0),
        queue_wait_ms: 0.0,
        phases: Phases::default(),
        address: None,
        http: None,
        icmp: None,
        error,
        addresses: Vec::new(),
    })
}

fn throughput(ctx: &mut Ctx, s: &mut Section, rows: &[Row], scenario: &Scenario) {
    s.doc.heading(3, "Throughput, CPU and correctness");
    let farm = match ctx.farm(scenario) {
        Ok(f) => f,
        Err(e) => {
            ctx.skip(format!("stacks: the farm cannot start: {e}"));
            return;
        }
    };
    let Ok(file) = ctx.file("stacks.txt", farm.targets()) else {
        return;
    };
    let targets = farm.hosts();
    let workers = scenario.workers;
    let timeout = scenario.timeout().unwrap_or(Duration::from_secs(1));
    s.doc.para(&format!(
        "{targets} targets on hosts that answer at once (HTTP, HTTPS with `insecure`, TCP), with a few of \
         every failure a client must classify (wrong status, missing body text, reset, garbage, refused), \
         `--workers {workers} --timeout {}`. Probes/s is targets over the process's wall time (start-up \
         included, the same for every row); CPU is user + system of the whole process per probe; correct \
         is the share of results whose verdict (and error kind) matches the farm's expectation.",
        pulse_core::session::fmt_duration(timeout)
    ));
    let mut t = Table::new(&[
        "stack",
        "probes/s#",
        "vs tokio#",
        "CPU µs/probe#",
        "peak RSS (MiB)#",
        "results#",
        "correct#",
        "note",
    ]);
    let mut reference = None;
    let mut line = Vec::new();
    let mut wrong = Vec::new();
    for row in rows {
        let run = match scan(ctx, row, &file, workers, timeout, None) {
            Ok(r) => r,
            Err(e) => {
                t.row(vec![
                    row.label.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    brief(&e),
                ]);
                continue;
            }
        };
        let u = &run.measured.usage;
        let rate = targets as f64 / u.wall_s.max(1e-9);
        let tokio = *reference.get_or_insert(rate);
        let c = check(farm.expectations(), &run.results);
        let note = run
            .failure
            .as_deref()
            .map(brief)
            .or_else(|| c.mismatches.first().cloned())
            .unwrap_or_default();
        line.push(format!("{} {rate:.0}", row.label));
        if c.percent() < 100.0 {
            wrong.push(format!("{} {:.1}%", row.label, c.percent()));
        }
        t.row(vec![
            row.label.clone(),
            f0(rate),
            f2(rate / tokio),
            f0(u.cpu_s() * 1e6 / targets as f64),
            f1(u.peak_rss_mib),
            format!("{} of {targets}", run.results.len()),
            format!("{:.1}%", c.percent()),
            note,
        ]);
    }
    drop(farm);
    if !wrong.is_empty() {
        s.doc.finding(
            &format!("Not every verdict matched the farm: {}.", wrong.join(", ")),
            "A probe whose deadline passed before it finished is a timeout, whatever the host did: a \
             row that is slow per probe (see its CPU µs/probe) misses deadlines the others meet, and \
             the note names the first target it got wrong.",
        );
    }
    s.doc.finding(
        &format!("Probes/s on the same farm: {}.", line.join(", ")),
        "The model rows share the core's session, so between them the executor is the difference; a \
         native row adds its client's own work per probe (reqwest's connection pool and hyper's \
         dispatch task, ureq's agent and its buffers) on the same executor. A baseline is a different \
         language's runtime and standard library doing the same exchange. The note shows the first \
         result that did not match the farm, where one did not.",
    );
    s.table("stacks-throughput", t);
}

fn waiting(ctx: &mut Ctx, s: &mut Section, rows: &[Row]) {
    s.doc.heading(3, "Memory per waiting request, and SIGINT");
    let n = pick(IN_FLIGHT, 20);
    if !ctx.fits("stacks memory", n) {
        return;
    }
    let farms = setup::one_group("stacks-stall", "http", "stall", n, 0, "5s")
        .and_then(|sc| ctx.farm(&sc))
        .and_then(|stall| {
            setup::one_group("stacks-base", "http", "refused", n, 0, "5s")
                .and_then(|sc| ctx.farm(&sc))
                .map(|refused| (stall, refused))
        });
    let (stall, refused) = match farms {
        Ok(f) => f,
        Err(e) => {
            ctx.skip(format!(
                "stacks memory and SIGINT: the farm cannot start: {e}"
            ));
            return;
        }
    };
    let (Ok(file), Ok(base_file)) = (
        ctx.file("stacks-stall.txt", stall.targets()),
        ctx.file("stacks-refused.txt", refused.targets()),
    ) else {
        return;
    };
    s.doc.para(&format!(
        "{n} HTTP targets whose server accepts and never answers, `--workers {n} --timeout 5s --grace 0`, \
         SIGINT 1 s in, when all {n} requests are waiting. Memory per request is that run's peak RSS less \
         the same row's peak scanning {n} refusing hosts with {BASE_WORKERS} in flight, over {n}. \
         Accounted means one result per target after the signal."
    ));
    let mut t = Table::new(&[
        "stack",
        "KiB per request#",
        "SIGINT to exit (ms)#",
        "results after SIGINT#",
        "exit code#",
        "note",
    ]);
    let mut kib_line = Vec::new();
    let mut exit_line = Vec::new();
    for row in rows {
        let base = scan(
            ctx,
            row,
            &base_file,
            BASE_WORKERS,
            Duration::from_secs(5),
            None,
        )
        .ok()
        .filter(|r| r.failure.is_none())
        .map(|r| r.measured.usage.peak_rss_mib);
        let run = scan(
            ctx,
            row,
            &file,
            n,
            Duration::from_secs(5),
            Some(Duration::from_secs(1)),
        );
        let Ok(run) = run else { continue };
        let u = &run.measured.usage;
        let kib = base.map(|b| (u.peak_rss_mib - b) * 1024.0 / n as f64);
        let exit_ms = run
            .measured
            .exit_after_interrupt
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        if let Some(k) = kib {
            kib_line.push(format!("{} {k:.1}", row.label));
        }
        exit_line.push(format!("{} {exit_ms:.0} ms", row.label));
        t.row(vec![
            row.label.clone(),
            kib.map_or_else(String::new, f1),
            f0(exit_ms),
            format!("{} of {n}", run.results.len()),
            u.exit_code
                .map_or_else(|| "signal".into(), |c| c.to_string()),
            run.failure.as_deref().map(brief).unwrap_or_default(),
        ]);
    }
    drop((stall, refused));
    s.doc.finding(
        &format!("KiB per waiting request: {}.", kib_line.join(", ")),
        "A waiting request on an async model is a parked future and a socket; on a thread it is a \
         stack's touched pages; a native client adds its own per-request state (reqwest: the hyper \
         connection task and its buffers; ureq: its buffers on the thread). Go's goroutine starts with \
         a small growable stack; a Python coroutine or thread carries the interpreter's objects.",
    );
    s.doc.finding(
        &format!("SIGINT to exit with every request waiting: {}.", exit_line.join(", ")),
        "The core stack's blocking models shut their registered sockets down at the end of the grace \
         period; ureq owns its sockets, so threads native and rayon native can only wait for each \
         probe's own deadline (5 s here) before they exit (models/threads/src/native.rs). The rayon \
         core row cuts its probes the same way as threads, then pays for joining a pool of 1,000 \
         threads whose idle loops search each other's deques (the cancellation section's rayon \
         finding). How each baseline stops is in its own file's header and in \
         bench/baselines/README.md.",
    );
    s.table("stacks-waiting", t);
}

fn lines_of_code(s: &mut Section, rows: &[Row]) {
    s.doc.heading(3, "Lines of code");
    let core: usize = source_files(Path::new("probe-core/src"), "rs")
        .iter()
        .map(|p| count_lines(p))
        .sum();
    s.doc.para(&format!(
        "Non-blank, non-comment lines (a `//` or `#` line, a Python docstring, and a Rust file's \
         `#[cfg(test)]` module are comments here) of each row's own files. Every pulse row also runs on \
         the shared core, probe-core/src ({core} lines by the same count; plus models/net for the socket \
         helpers); a baseline is the whole program."
    ));
    let mut t = Table::new(&["stack", "files", "lines#"]);
    for row in rows {
        let per: Vec<(String, usize)> = row
            .files
            .iter()
            .map(|p| {
                let shown = p
                    .strip_prefix("models")
                    .or_else(|_| p.strip_prefix("bench/baselines"))
                    .unwrap_or(p);
                (shown.display().to_string(), count_lines(p))
            })
            .collect();
        let total: usize = per.iter().map(|p| p.1).sum();
        t.row(vec![
            row.label.clone(),
            per.iter()
                .map(|(f, n)| format!("{f} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            total.to_string(),
        ]);
    }
    s.table("stacks-loc", t);
}

/// Non-blank, non-comment lines of one source file (see the table's text).
fn count_lines(path: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let python = path.extension().is_some_and(|e| e == "py");
    let mut in_doc: Option<&str> = None;
    let mut n = 0;
    for line in text.lines() {
        let l = line.trim();
        if !python && l.starts_with("#[cfg(test)]") {
            break;
        }
        if let Some(quote) = in_doc {
            // Inside a docstring until a line that closes it.
            if l.contains(quote) {
                in_doc = None;
            }
            continue;
        }
        if python && (l.starts_with("\"\"\"") || l.starts_with("'''")) {
            let quote = &l[..3];
            // A docstring that does not close on the line that opens it.
            if !l[3..].contains(quote) {
                in_doc = Some(quote);
            }
            continue;
        }
        if l.is_empty()
            || l.starts_with("//")
            || l.starts_with('#')
            || l.starts_with("/*")
            || l.starts_with('*')
        {
            continue;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_docstrings_and_tests_are_not_code() {
        let dir = tempfile::tempdir().unwrap();
        let py = dir.path().join("a.py");
        std::fs::write(&py, "\"\"\"Doc\nstring.\n\"\"\"\n# c\n\nimport x\ndef f():\n    \"\"\"one line\"\"\"\n    return 1\ndef g():\n    \"\"\"Two\n    lines.\"\"\"\n    return 2\n").unwrap();
        assert_eq!(count_lines(&py), 5);
        let rs = dir.path().join("a.rs");
        std::fs::write(
            &rs,
            "//! doc\nuse x;\n/// d\nfn f() {}\n\n#[cfg(test)]\nmod tests {}\n",
        )
        .unwrap();
        assert_eq!(count_lines(&rs), 2);
    }

    #[test]
    fn a_baseline_line_becomes_a_result() {
        let r = baseline_result(r#"{"target":"tcp://127.0.0.1:1","line":4,"success":false,"duration_ms":1.5,"error":{"kind":"refused","message":"no"}}"#).unwrap();
        assert_eq!(
            (r.kind, r.line, r.error.unwrap().kind),
            (Kind::Tcp, 4, ErrorKind::Refused)
        );
        let r = baseline_result(r#"{"target":"icmp://h","line":1,"success":false,"error":{"kind":"unsupported","message":"x"}}"#).unwrap();
        assert_eq!(r.error.unwrap().kind, ErrorKind::Io);
        assert!(baseline_result("not json").is_none());
    }
}
