//! The Go and Python baselines (`bench/baselines/`) scan the smoke farm and
//! give the farm's verdict for every target they can probe, account for
//! every target after SIGINT, and refuse a bad targets file with
//! `FILE:LINE:COL`. A baseline whose toolchain is missing is skipped with
//! the reason, never failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use pulse_fixtures::HttpFixture;
use pulse_fixtures::farm::{Farm, FarmOptions, Scenario};

use super::util::signal;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One baseline: its name and the command that runs it (flags follow).
struct Baseline {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// `-` for Go's flags, `--` for Python's.
    dash: &'static str,
}

impl Baseline {
    fn command(&self, targets: &Path, workers: usize, timeout: &str, grace: &str) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        for (flag, value) in [
            ("targets", targets.display().to_string()),
            ("workers", workers.to_string()),
            ("timeout", timeout.to_string()),
            ("grace", grace.to_string()),
        ] {
            c.arg(format!("{}{flag}", self.dash)).arg(value);
        }
        c.stdin(Stdio::null());
        c
    }
}

/// Build the Go baseline once per test process (`go build`'s cache makes
/// later builds quick), into the target dir.
fn go() -> Option<PathBuf> {
    let version = Command::new("go").arg("version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped the Go baselines: no `go` (Debian: apt-get install golang-go)");
        return None;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(ROOT).join("target"), PathBuf::from);
    let out = target.join("pulse-baseline-go");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(Path::new(ROOT).join("bench/baselines/go"))
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", target.join("gocache"))
        .env("GOFLAGS", "-mod=mod")
        .output()
        .expect("go runs");
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(out)
}

/// Every baseline this machine can run.
fn baselines() -> Vec<Baseline> {
    let mut all = Vec::new();
    if let Some(program) = go() {
        for shape in ["pool", "semaphore"] {
            all.push(Baseline {
                name: if shape == "pool" {
                    "go pool"
                } else {
                    "go semaphore"
                },
                program: program.clone(),
                args: vec!["-shape".into(), shape.into()],
                dash: "-",
            });
        }
    }
    let python = Command::new("python3").arg("--version").output();
    if python.is_ok_and(|o| o.status.success()) {
        for (name, script) in [
            ("python asyncio", "asyncio_scan.py"),
            ("python threads", "threads_scan.py"),
        ] {
            all.push(Baseline {
                name,
                program: "python3".into(),
                args: vec![format!("{ROOT}/bench/baselines/python/{script}")],
                dash: "--",
            });
        }
    } else {
        eprintln!("skipped the Python baselines: no python3");
    }
    all
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn error_kind(v: &serde_json::Value) -> Option<&str> {
    v["error"]["kind"].as_str()
}

#[test]
fn every_baseline_gives_the_smoke_farms_verdicts() {
    let scenario = Scenario::builtin("smoke").expect("built in");
    let farm = Farm::start(
        &scenario,
        FarmOptions {
            threads: 2,
            responder: None,
        },
    )
    .expect("the farm starts");
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("smoke.txt");
    std::fs::write(&targets, farm.targets()).unwrap();
    for b in baselines() {
        let out = b.command(&targets, 50, "1s", "0s").output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            b.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let results = lines(&out);
        assert_eq!(
            results.len(),
            farm.expectations().len(),
            "{}: one result per target",
            b.name
        );
        for e in farm.expectations() {
            let mine: Vec<_> = results.iter().filter(|r| r["line"] == e.line).collect();
            assert_eq!(mine.len(), 1, "{}: line {}", b.name, e.line);
            let r = mine[0];
            assert_eq!(
                r["target"],
                e.target.as_str(),
                "{}: line {}",
                b.name,
                e.line
            );
            // The one listed difference: the standard libraries have no
            // unprivileged ping, so ICMP targets are read and reported
            // `unsupported`, never probed.
            if e.target.starts_with("icmp://") {
                assert_eq!(error_kind(r), Some("unsupported"), "{}: {r}", b.name);
                continue;
            }
            let want = e.expect.map(|k| k.as_str());
            let got = if r["success"] == true {
                None
            } else {
                error_kind(r)
            };
            assert_eq!(
                got, want,
                "{}: line {} ({}): {r}",
                b.name, e.line, e.behaviour
            );
        }
    }
}

#[test]
fn a_bad_targets_file_is_refused_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("bad.txt");
    std::fs::write(
        &targets,
        "http://127.0.0.1:1/ fast=yes\ntcp://127.0.0.1:1 expect=200\n",
    )
    .unwrap();
    let name = targets.display().to_string();
    for b in baselines() {
        let out = b.command(&targets, 5, "1s", "0s").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", b.name);
        assert!(
            err.contains(&format!("{name}:1:21: unknown option")),
            "{}: {err}",
            b.name
        );
        assert!(
            err.contains(&format!("{name}:2:19: option")),
            "{}: {err}",
            b.name
        );
        assert!(out.stdout.is_empty(), "{}: nothing was probed", b.name);
    }
}

#[test]
fn sigint_accounts_for_every_target_and_exits_130() {
    let http = HttpFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("stall.txt");
    let text: String = (0..60)
        .map(|i| format!("{}\n", http.url(&format!("/stall?{i}"))))
        .collect();
    std::fs::write(&targets, text).unwrap();
    for b in baselines() {
        let child = b
            .command(&targets, 20, "30s", "0s")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Every worker is waiting on a server that never answers.
        let t0 = std::time::Instant::now();
        while http.stats().max_open < 20 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal(child.id(), "INT");
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(130),
            "{}: {}",
            b.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{}: it waited for the deadline",
            b.name
        );
        let results = lines(&out);
        assert_eq!(results.len(), 60, "{}: every target accounted for", b.name);
        assert!(
            results.iter().all(|r| error_kind(r) == Some("cancelled")),
            "{}: all cancelled",
            b.name
        );
        http.reset_stats();
    }
}
