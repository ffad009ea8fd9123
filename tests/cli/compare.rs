//! `pulse farm` and `pulse compare` end to end: the real binary, the real
//! farm on loopback, every model as a child process.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::util::*;

#[test]
fn compare_runs_every_model_against_the_smoke_farm_with_full_correctness() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "compare",
        "--scenario",
        "smoke",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = String::from_utf8(out.stdout.clone()).unwrap();
    for rt in ["tokio", "smol", "async-std", "threads", "rayon"] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| {rt} |")))
            .unwrap_or_else(|| panic!("no {rt} row in\n{table}"));
        assert!(row.contains("| 100.0% |"), "{row}");
    }
    assert!(table.contains("async-std is discontinued"), "{table}");
    let files: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let json = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a json report");
    for ext in ["md", "svg"] {
        let file = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("a .{ext} report in {files:?}"));
        // stderr names every file written, so a user can find them.
        assert!(
            stderr(&out).contains(&file.display().to_string()),
            "{}",
            stderr(&out)
        );
    }
    assert!(
        stderr(&out).contains(&json.display().to_string()),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(report["scenario"]["name"], "smoke");
    assert_eq!(report["summary"].as_array().unwrap().len(), 5);
    for key in ["machine", "rustc", "commit", "date", "workers"] {
        assert!(!report[key].is_null(), "report has {key}");
    }
    for m in report["summary"].as_array().unwrap() {
        assert!(m["peak_rss_mib"].as_f64().unwrap() > 1.0, "{m}");
        assert!(
            m["cpu_user_s"].as_f64().unwrap() + m["cpu_sys_s"].as_f64().unwrap() > 0.0,
            "{m}"
        );
        assert_eq!(m["correctness"]["matched"], m["correctness"]["total"]);
    }
}

#[test]
fn compare_rejects_an_unknown_scenario() {
    let out = run(&["compare", "--scenario", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("smoke, latency, mixed, fail-heavy"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn farm_serves_until_interrupted_and_its_targets_scan_as_expected() {
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.txt");
    let expect = dir.path().join("expect.json");
    // Interrupted when dropped, so a failure here leaves no farm behind.
    let mut farm = Farm(
        pulse()
            .args(["farm", "--scenario", "smoke", "--write-targets"])
            .arg(&targets)
            .arg("--write-expectations")
            .arg(&expect)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_files(&[&targets, &expect], "the farm wrote its files");
    let expectations: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&expect).unwrap()).unwrap();
    for runtime in ["tokio", "smol", "async-std", "threads", "rayon"] {
        let out = run(&[
            "--runtime",
            runtime,
            "scan",
            "-t",
            targets.to_str().unwrap(),
            "-o",
            "json",
            "--timeout",
            "1s",
        ]);
        // Nothing panicked on the way, not even a thread whose panic the
        // results would not show: the blocking models' ICMP reader once
        // panicked in std's recv_from when closed after replies from the
        // farm's namespace hosts.
        assert!(
            !stderr(&out).contains("panicked"),
            "{runtime}: {}",
            stderr(&out)
        );
        let rep = report(&out);
        assert_eq!(rep.results.len(), expectations.len());
        for (r, e) in rep.results.iter().zip(&expectations) {
            let want = e["expect"].as_str();
            let got = r.error.as_ref().map(|e| e.kind.as_str());
            assert_eq!(got, want, "{runtime} {}: {:?}", r.target, r.error);
        }
    }
    assert_eq!(farm.stop(), Some(0));
}

/// A second farm waits for the first to release the ICMP addresses (only
/// one farm's fit on a machine), and says so on stderr within seconds,
/// naming the process it waits for, rather than starting silently a minute
/// later. Root only: without a namespace there is nothing to wait for.
#[test]
fn a_farm_that_waits_for_another_says_which_process_it_waits_for() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !root {
        eprintln!("skipped: needs root (the farm's ICMP hosts live in a network namespace)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spawn_farm = |name: &str| {
        Farm(
            pulse()
                .args(["farm", "--scenario", "smoke", "--write-targets"])
                .arg(dir.path().join(name))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    // The first holds the addresses once its targets file is there (it may
    // itself wait for another test's farm first).
    let mut first = spawn_farm("first.txt");
    wait_for_files(&[&dir.path().join("first.txt")], "the first farm started");
    // Its stderr, up to the line that says it serves: no group skipped. The
    // reader stays alive until the farm exits (a closed stderr would fail
    // its last message).
    let mut first_log = std::io::BufReader::new(first.0.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut first_log, &mut line).unwrap() > 0,
            "the first farm says it serves"
        );
        assert!(
            !line.contains("skipped"),
            "the first farm runs its ICMP hosts: {line}"
        );
        if line.contains("serving") {
            break;
        }
    }
    let mut second = spawn_farm("second.txt");
    let (tx, rx) = std::sync::mpsc::channel();
    let log = second.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(log).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let waiting = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the second farm says within 5 s that it waits");
    assert!(
        waiting.contains("waiting for another pulse farm")
            && waiting.contains(&format!("process {}", first.0.id()))
            && waiting.contains("giving up in 1"),
        "{waiting}"
    );
    assert!(
        !dir.path().join("second.txt").exists(),
        "the second farm does not serve while it waits"
    );
    // Once the first stops, the second starts (unless another test's farm
    // took the addresses in between: then it waits for that one).
    assert_eq!(first.stop(), Some(0));
    drop(first_log);
    wait_for_files(&[&dir.path().join("second.txt")], "the second farm started");
    let started: Vec<String> = rx.try_iter().collect();
    assert!(
        started.iter().all(|l| !l.starts_with("pulse: skipped")),
        "the second farm runs its ICMP hosts: {started:?}"
    );
    assert_eq!(second.stop(), Some(0));
}

/// A `pulse farm` child that is interrupted (SIGINT, so it removes its
/// namespace) when dropped: a failing test must not leave a farm holding
/// the machine's ICMP addresses for the tests after it.
struct Farm(std::process::Child);

impl Farm {
    /// SIGINT, then its exit code.
    fn stop(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        self.0.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// Waits until a farm has written every one of `paths`. A farm writes its
/// files whole (a temporary name, then a rename) once every host serves, so
/// a file that exists is complete and its hosts answer. As root a farm may
/// first wait, up to 120 s, for another test's farm to release the ICMP
/// addresses: hence 150 s.
fn wait_for_files(paths: &[&std::path::Path], what: &str) {
    let t0 = Instant::now();
    while !paths.iter().all(|p| p.exists()) {
        assert!(t0.elapsed() < Duration::from_secs(150), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
