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
    let table = String::from_utf8(out.stdout).unwrap();
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
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "md")),
        "a markdown report"
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
    let mut farm = pulse()
        .args(["farm", "--scenario", "smoke", "--write-targets"])
        .arg(&targets)
        .arg("--write-expectations")
        .arg(&expect)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !(targets.exists() && expect.exists()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the farm wrote its files"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
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
    let ok = std::process::Command::new("kill")
        .args(["-INT", &farm.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = farm.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
