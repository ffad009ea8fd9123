//! `pulse scan` against every fixture behaviour.

use std::time::{Duration, Instant};

use pulse_core::result::{ErrorKind, Kind, Report};
use pulse_fixtures::{Blackhole, HttpFixture, SilentTcp, closed_port};

use super::util::*;

/// One line of the fixture scan and what it must produce.
struct Case {
    line: String,
    expect: Option<ErrorKind>,
}

fn case(line: String, expect: Option<ErrorKind>) -> Case {
    Case { line, expect }
}

#[test]
fn every_fixture_behaviour_is_classified_in_input_order() {
    let http = HttpFixture::start();
    let (https, tls) = HttpFixture::start_tls();
    let blackhole = Blackhole::start();
    let silent = SilentTcp::start();
    let closed = closed_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &tls.ca_pem).unwrap();
    let u = |p: &str| http.url(p);
    let mut cases = vec![
        case(u("/ok"), None),
        case(u("/status/503"), Some(ErrorKind::Status)),
        case(format!("{} expect=500-599", u("/status/503")), None),
        case(
            format!("{} contains=\"hello\"", u("/body/hello%20world")),
            None,
        ),
        case(
            format!("{} contains=nope", u("/body/hello")),
            Some(ErrorKind::Body),
        ),
        case(format!("{} matches=\"^hel+o$\"", u("/body/hello")), None),
        case(
            format!("{} timeout=400ms", u("/stall")),
            Some(ErrorKind::Timeout),
        ),
        case(
            format!("{} timeout=600ms", u("/drip/50")),
            Some(ErrorKind::Timeout),
        ),
        case(u("/garbage"), Some(ErrorKind::Protocol)),
        case(u("/reset"), Some(ErrorKind::Reset)),
        case(u("/huge/5000000"), None),
        case(u("/redirect/3"), None),
        case(
            format!("{} redirects=2", u("/redirect/5")),
            Some(ErrorKind::Status),
        ),
        case(u("/chunked"), None),
        case(u("/close-delimited"), None),
        case(
            format!("{} timeout=3s", u("/headers-forever")),
            Some(ErrorKind::Protocol),
        ),
        case(format!("tcp://{closed}"), Some(ErrorKind::Refused)),
        case(format!("http://{closed}/"), Some(ErrorKind::Refused)),
        case(
            format!("{} timeout=300ms", blackhole.addr()),
            Some(ErrorKind::Timeout),
        ),
        case(format!("{}", silent.addr()), None),
        case("http://name.invalid/".into(), Some(ErrorKind::Dns)),
        case("tcp://name.invalid:80".into(), Some(ErrorKind::Dns)),
        case(https.url("/ok"), Some(ErrorKind::Tls)),
        case(format!("{} insecure", https.url("/ok")), None),
        case(format!("{} ca=ca.pem", https.url("/ok")), None),
        case(
            format!("{} ca=ca.pem", https.url("/garbage")),
            Some(ErrorKind::Protocol),
        ),
        case(
            format!("{} insecure", https.url("/reset")),
            Some(ErrorKind::Reset),
        ),
    ];
    if icmp_available() {
        cases.push(case("icmp://127.0.0.1".into(), None));
        cases.push(case("127.0.0.2".into(), None));
    } else {
        eprintln!(
            "skipped ICMP cases: no raw or ping socket (run as root, or set ping_group_range)"
        );
    }
    let path = dir.path().join("targets.txt");
    let text: String = cases.iter().map(|c| format!("{}\n", c.line)).collect();
    std::fs::write(&path, text).unwrap();

    let out = run(&[
        "scan",
        "--targets",
        path.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code(&out), 1, "some targets are down: {}", stderr(&out));
    let rep = report(&out);
    assert_eq!(rep.results.len(), cases.len());
    for (i, (c, r)) in cases.iter().zip(&rep.results).enumerate() {
        assert_eq!(r.line, i + 1, "results are in input order");
        assert_eq!(
            kind(r),
            c.expect,
            "line {}: {} gave {:?}",
            i + 1,
            c.line,
            r.error
        );
        assert_eq!(r.success, c.expect.is_none());
        if r.kind != Kind::Icmp && !matches!(c.expect, Some(ErrorKind::Dns)) {
            assert!(r.phases.resolve.is_some(), "line {}: resolve phase", i + 1);
            assert!(r.phases.connect.is_some(), "line {}: connect phase", i + 1);
        }
    }
    let ok = &rep.results[0];
    let h = ok.http.as_ref().unwrap();
    assert_eq!(h.status_code, Some(200));
    assert_eq!(h.version.as_deref(), Some("HTTP/1.1"));
    assert!(ok.phases.processing.is_some() && ok.phases.transfer.is_some());
    assert_eq!(
        ok.address.as_deref(),
        Some(http.addr().to_string().as_str())
    );

    // The drip-fed body cannot extend the absolute deadline.
    let drip = &rep.results[7];
    assert!(
        drip.duration_ms >= 600.0 && drip.duration_ms < 900.0,
        "drip took {} ms",
        drip.duration_ms
    );
    assert!(
        drip.error
            .as_ref()
            .unwrap()
            .message
            .contains("reading the body")
    );

    let huge = rep.results[10].http.as_ref().unwrap();
    assert_eq!(
        (huge.body_bytes, huge.body_truncated),
        (1024 * 1024, true),
        "body read up to the 1 MiB cap"
    );
    let redirected = rep.results[11].http.as_ref().unwrap();
    assert_eq!(redirected.redirects, 4, "/redirect/3 → 2 → 1 → 0 → /ok");
    assert_eq!(redirected.final_url.as_deref(), Some(u("/ok").as_str()));
    assert!(
        rep.results[12]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("limit 2")
    );
    let secured = rep.results[23].http.as_ref().unwrap();
    assert!(secured.tls_version.is_some());
    assert!(rep.results[23].phases.tls.is_some());
    assert!(
        rep.results[22]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("certificate"),
        "{:?}",
        rep.results[22].error
    );

    assert_eq!(rep.summary.targets, cases.len());
    assert_eq!(
        rep.summary.up,
        cases.iter().filter(|c| c.expect.is_none()).count()
    );
    assert_eq!(rep.pulse.runtime, "tokio");
    assert_eq!(rep.pulse.workers, 50);
    assert!(rep.pulse.runtime_threads >= 1);
}

#[test]
fn yaml_and_jsonl_carry_the_same_results_as_json() {
    let http = HttpFixture::start();
    let closed = closed_port();
    let f = targets_file(&[
        http.url("/ok"),
        format!("tcp://{closed}"),
        http.url("/status/404"),
    ]);
    let p = f.path().to_str().unwrap();
    let json = report(&run(&["scan", "-t", p, "-o", "json"]));
    let yaml_out = run(&["scan", "-t", p, "-o", "yaml"]);
    assert_eq!(code(&yaml_out), 1);
    let yaml: Report =
        serde_norway::from_slice(&yaml_out.stdout).expect("yaml parses back to a Report");
    let jsonl_out = run(&["scan", "-t", p, "-o", "jsonl"]);
    let mut lines: Vec<pulse_core::result::ProbeResult> = String::from_utf8(jsonl_out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each jsonl line is one result"))
        .collect();
    lines.sort_by_key(|r| r.line);
    let strip = |rs: &[pulse_core::result::ProbeResult]| {
        rs.iter()
            .map(|r| {
                (
                    r.target.clone(),
                    r.line,
                    r.success,
                    kind(r),
                    r.http.as_ref().and_then(|h| h.status_code),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&json.results), strip(&yaml.results));
    assert_eq!(strip(&json.results), strip(&lines));
    assert_eq!(json.summary, yaml.summary);
}

#[test]
fn prom_output_passes_promtool() {
    let http = HttpFixture::start();
    let (https, _) = HttpFixture::start_tls();
    let f = targets_file(&[
        http.url("/ok"),
        http.url("/status/500"),
        format!("tcp://{}", closed_port()),
        format!("{} insecure", https.url("/ok")),
    ]);
    let out = run(&["scan", "-t", f.path().to_str().unwrap(), "-o", "prom"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let ok = format!(
        "probe_success{{target=\"{}\",kind=\"http\"}} 1",
        http.url("/ok")
    );
    assert!(text.contains(&ok), "{text}");
    assert!(text.contains(&format!(
        "probe_http_status_code{{target=\"{}\",kind=\"http\"}} 500",
        http.url("/status/500")
    )));
    assert!(text.contains("pulse_build_info{version=\""));
    // The TLS families, for the https target only.
    let tls = format!("target=\"{}\",kind=\"http\"", https.url("/ok"));
    for family in [
        "probe_ssl_earliest_cert_expiry",
        "probe_http_ssl",
        "probe_tls_version_info",
    ] {
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .count(),
            if family == "probe_http_ssl" { 3 } else { 1 },
            "{family}\n{text}"
        );
        assert!(
            text.contains(&format!("{family}{{{tls}")),
            "{family}\n{text}"
        );
    }
    assert!(text.contains(&format!("probe_http_ssl{{{tls}}} 1")));
    promtool_check(&text);
}

/// `--resolve` pins a name for the whole scan, and an `all_addresses`
/// target reports every address in JSON, in the table and in metrics.
#[test]
fn resolve_pins_a_name_and_all_addresses_reports_each() {
    let http = HttpFixture::start();
    let port = http.addr().port();
    let closed = closed_port().port();
    let f = targets_file(&[
        format!("http://app.test:{port}/ok all_addresses"),
        format!("tcp://app.test:{closed} all_addresses"),
    ]);
    let path = f.path().to_str().unwrap();
    let pin = "--resolve=App.Test=127.0.0.1,127.0.0.1";
    let out = run(&["scan", "-t", path, pin, "-o", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let r = report(&out);
    assert!(r.results[0].success);
    assert_eq!(r.results[0].addresses.len(), 2);
    assert_eq!(kind(&r.results[1]), Some(ErrorKind::Refused));
    assert!(r.results[1].addresses.iter().all(|a| !a.success));
    let out = run(&["scan", "-t", path, pin, "-o", "table"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("all 2 addresses up"));
    let out = run(&["scan", "-t", path, pin, "-o", "prom"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("pulse_address_up{"))
            .count(),
        4
    );
    promtool_check(&text);
    let bad = run(&["scan", "-t", path, "--resolve", "app.test"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("has no `=`"), "{}", stderr(&bad));
}

#[test]
fn two_thousand_targets_never_exceed_the_worker_bound() {
    let http = HttpFixture::start();
    let lines: Vec<String> = (0..2000)
        .map(|i| http.url(&format!("/delay/5?n={i}")))
        .collect();
    let f = targets_file(&lines);
    let started = Instant::now();
    let out = run(&[
        "scan",
        "-t",
        f.path().to_str().unwrap(),
        "-o",
        "json",
        "--workers",
        "50",
    ]);
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rep = report(&out);
    assert_eq!(rep.results.len(), 2000);
    assert!(rep.results.iter().all(|r| r.success));
    let stats = http.stats();
    assert_eq!(
        stats.requests, 2000,
        "one request per target, no retries or duplicates"
    );
    assert!(
        stats.max_open <= 50,
        "the server saw {} connections at once",
        stats.max_open
    );
    // Shows the bound was actually used, not trivially met by a serial scan.
    assert!(
        stats.max_open >= 10,
        "the server saw only {} connections at once",
        stats.max_open
    );
    eprintln!(
        "2000 probes, 50 workers: {took:?}, max {} open at once",
        stats.max_open
    );
    // Queue wait is separate from probe time: late targets waited in the queue,
    // but their own probe time stays near the 5 ms the server takes.
    let last = rep
        .results
        .iter()
        .max_by(|a, b| a.queue_wait_ms.total_cmp(&b.queue_wait_ms))
        .unwrap();
    assert!(last.queue_wait_ms > last.duration_ms);
}

#[test]
fn targets_from_stdin_and_jsonl_streams_one_line_per_target() {
    let http = HttpFixture::start();
    let input = format!(
        "# from stdin\n{}\n{}\n",
        http.url("/ok"),
        http.url("/status/500")
    );
    let out = run_with_stdin(&["scan", "--targets", "-", "-o", "jsonl"], input.as_bytes());
    assert_eq!(code(&out), 1);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn a_panicking_probe_becomes_its_targets_result() {
    let http = HttpFixture::start();
    let f = targets_file(&[http.url("/ok"), http.url("/ok?2"), http.url("/ok?3")]);
    let out = run(&[
        "scan",
        "-t",
        f.path().to_str().unwrap(),
        "-o",
        "json",
        "--fault-panic-line",
        "2",
    ]);
    assert_eq!(code(&out), 1);
    let rep = report(&out);
    assert_eq!(kind(&rep.results[1]), Some(ErrorKind::Panicked));
    assert!(
        rep.results[1]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("injected fault")
    );
    assert!(
        rep.results[0].success && rep.results[2].success,
        "the other probes go on"
    );
}

#[test]
fn a_closed_stdout_pipe_is_not_a_crash() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let http = HttpFixture::start();
    let lines: Vec<String> = (0..500)
        .map(|i| http.url(&format!("/delay/2?{i}")))
        .collect();
    let f = targets_file(&lines);
    let mut child = pulse()
        .args([
            "scan",
            "-t",
            f.path().to_str().unwrap(),
            "-o",
            "jsonl",
            "-w",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'));
    // The reader is gone now (like `pulse scan ... | head -1`).
    let t0 = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(out.status.code().is_some(), "killed by a signal: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the scan stops when nobody reads"
    );
}
