//! SIGINT/SIGTERM: stop dispatch, drain in-flight probes up to the grace
//! period, report the rest cancelled, write complete output, exit 130.

use std::process::Stdio;
use std::time::{Duration, Instant};

use pulse_core::result::ErrorKind;
use pulse_fixtures::HttpFixture;

use super::util::*;

/// Start a 2,000-target scan against `path`, signal it after `after`, and
/// return (output, time from signal to exit).
fn interrupted_scan(
    path_of: impl Fn(usize) -> String,
    grace: &str,
    after: Duration,
    sig: &str,
) -> (std::process::Output, Duration) {
    let lines: Vec<String> = (0..2000).map(path_of).collect();
    let f = targets_file(&lines);
    let child = pulse()
        .args([
            "scan",
            "-t",
            f.path().to_str().unwrap(),
            "-o",
            "json",
            "-w",
            "50",
            "--grace",
            grace,
            "--timeout",
            "30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let t0 = Instant::now();
    signal(child.id(), sig);
    let out = child.wait_with_output().unwrap();
    (out, t0.elapsed())
}

#[test]
fn sigint_drains_in_flight_probes_and_accounts_for_every_target() {
    let http = HttpFixture::start();
    // 200 ms per probe: in-flight probes finish well inside the 1 s grace.
    let (out, took) = interrupted_scan(
        |i| http.url(&format!("/delay/200?{i}")),
        "1s",
        Duration::from_millis(800),
        "INT",
    );
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert!(
        took < Duration::from_millis(1500),
        "exited {took:?} after SIGINT (grace 1s)"
    );
    let rep = report(&out);
    assert_eq!(rep.results.len(), 2000, "every target accounted for");
    assert!(rep.summary.interrupted);
    let up = rep.results.iter().filter(|r| r.success).count();
    let cancelled = rep
        .results
        .iter()
        .filter(|r| kind(r) == Some(ErrorKind::Cancelled))
        .count();
    assert_eq!(
        up + cancelled,
        2000,
        "only successes and cancellations: {:?}",
        rep.summary
    );
    assert!(
        up >= 50,
        "probes in flight at the signal were allowed to finish ({up} up)"
    );
    assert!(cancelled > 1000, "{cancelled} cancelled");
    assert_eq!(
        http.stats().requests as usize,
        up,
        "no probe started after the signal was cancelled late"
    );
}

#[test]
fn sigterm_cuts_slow_probes_at_the_grace_period() {
    let http = HttpFixture::start();
    // 10 s per probe: in-flight probes are still running when the grace ends.
    let (out, took) = interrupted_scan(
        |i| http.url(&format!("/delay/10000?{i}")),
        "500ms",
        Duration::from_millis(500),
        "TERM",
    );
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert!(
        took < Duration::from_millis(1000),
        "exited {took:?} after SIGTERM (grace 500ms)"
    );
    let rep = report(&out);
    assert_eq!(rep.results.len(), 2000);
    let cut: Vec<_> = rep
        .results
        .iter()
        .filter(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.message.contains("grace period ended"))
        })
        .collect();
    assert_eq!(
        cut.len(),
        50,
        "the 50 in-flight probes were cut at the grace period"
    );
    assert!(cut.iter().all(|r| kind(r) == Some(ErrorKind::Cancelled)));
    assert!(
        rep.results
            .iter()
            .all(|r| kind(r) == Some(ErrorKind::Cancelled))
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let http = HttpFixture::start();
    let f = targets_file(&[http.url("/stall")]);
    let child = pulse()
        .args([
            "scan",
            "-t",
            f.path().to_str().unwrap(),
            "-o",
            "json",
            "--grace",
            "30s",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(child.id(), "INT");
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    signal(child.id(), "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 130);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(stderr(&out).contains("second signal"));
}
