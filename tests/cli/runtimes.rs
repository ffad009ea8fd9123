//! `pulse --runtime X scan`: the five models give the same results, timings
//! aside, for the same targets (the "done when", through the CLI).

use pulse_fixtures::{HttpFixture, SilentTcp, closed_port};

use super::util::*;

const RUNTIMES: [&str; 5] = ["tokio", "smol", "async-std", "threads", "rayon"];

/// Every result of a report, normalised as the conformance suite does.
fn normalised(out: &std::process::Output) -> Vec<String> {
    report(out).results.iter().map(normalise).collect()
}

#[test]
fn all_five_runtimes_give_identical_results() {
    let http = HttpFixture::start();
    let (https, _tls) = HttpFixture::start_tls();
    let silent = SilentTcp::start();
    let closed = closed_port();
    let mut lines = vec![
        http.url("/ok"),
        http.url("/status/404"),
        format!("{} contains=\"fixture ok\"", http.url("/chunked")),
        format!("{} timeout=300ms", http.url("/drip/30")),
        http.url("/garbage"),
        http.url("/reset"),
        http.url("/redirect/1"),
        http.url("/huge/2000000"),
        https.url("/ok"),
        format!("{} insecure", https.url("/ok")),
        format!("tcp://{closed}"),
        silent.addr().to_string(),
        "http://name.invalid/".into(),
    ];
    if icmp_available() {
        lines.push("icmp://127.0.0.1".into());
    }
    let f = targets_file(&lines);
    let path = f.path().to_str().unwrap();
    let mut reference: Option<Vec<String>> = None;
    for rt in RUNTIMES {
        let out = run(&["--runtime", rt, "scan", "-t", path, "-o", "json", "-w", "4"]);
        assert_eq!(code(&out), 1, "{rt}: {}", stderr(&out));
        assert_eq!(report(&out).pulse.runtime, rt);
        let got = normalised(&out);
        match &reference {
            None => reference = Some(got),
            Some(want) => {
                for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                    assert_eq!(w, g, "{rt} differs from tokio on line {}", i + 1);
                }
                assert_eq!(want.len(), got.len());
            }
        }
    }
}

#[test]
fn every_runtime_reports_its_threads_and_workers() {
    let http = HttpFixture::start();
    let f = targets_file(&[http.url("/ok")]);
    for rt in RUNTIMES {
        let out = pulse()
            .args([
                "-v",
                "--runtime",
                rt,
                "scan",
                "-t",
                f.path().to_str().unwrap(),
                "-o",
                "json",
                "-w",
                "7",
            ])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{rt}: {}", stderr(&out));
        let rep = report(&out);
        assert_eq!((rep.pulse.runtime.as_str(), rep.pulse.workers), (rt, 7));
        assert!(rep.pulse.runtime_threads >= 1);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{rt}: 1 targets, 7 workers")),
            "{err}"
        );
        assert!(err.contains("runtime threads"), "{err}");
    }
}
