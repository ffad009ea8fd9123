//! `pulse serve`: the exporter as a process, over real sockets: its
//! endpoints, reload, stop, sharding, round scheduling and its bounds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pulse_fixtures::{Blackhole, HttpFixture, closed_port};

use super::util::*;

/// A running `pulse serve`, killed on drop; its stderr is collected.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// Start `pulse --runtime R serve --listen 127.0.0.1:0 ARGS` and wait
    /// for it to say where it listens.
    pub fn start(runtime: &str, args: &[&str]) -> Serve {
        let mut child = pulse()
            .args([
                "--runtime",
                runtime,
                "-v",
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pulse serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split('/').next().unwrap().to_owned();
                    let _ = tx.send(addr);
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "pulse serve did not start ({status}): {}",
                    log.lock().unwrap()
                );
            }
        };
        Serve { child, addr, log }
    }

    /// What it printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        get(self.addr, path)
    }

    /// Wait until stderr holds `needle` (it is read on a thread of its
    /// own, so a line the exporter wrote may not be here yet), for at most
    /// `limit`; the log so far.
    pub fn wait_log(&self, limit: Duration, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < limit,
                "no {needle:?} in the log after {limit:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `/metrics`, which must answer 200.
    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Poll `/metrics` until `ready` holds, for at most `limit`.
    pub fn wait_for(&self, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let m = self.metrics();
            if ready(&m) {
                return m;
            }
            assert!(
                start.elapsed() < limit,
                "not ready after {limit:?}:\n{m}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// SIGTERM, then the process must exit 0 within 10 s; how long it took.
    pub fn terminate(&mut self) -> Duration {
        let signalled = Instant::now();
        self.signal("TERM");
        assert_eq!(self.wait_exit(Duration::from_secs(10)), 0, "{}", self.log());
        signalled.elapsed()
    }

    /// Wait for the process to exit (at most `limit`); its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited, not killed");
            }
            assert!(
                start.elapsed() < limit,
                "still running after {limit:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-shot HTTP/1.1 GET over a fresh connection: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// Send `request` as is and read the whole response: (status, body).
pub fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample whose line starts with `series` followed by a space.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// Every `probe_success` series: (target, value).
pub fn successes(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("probe_success{target=\""))
        .map(|rest| {
            let (target, rest) = rest.split_once('"').unwrap();
            let value = rest.rsplit_once(' ').unwrap().1.parse().unwrap();
            (target.to_owned(), value)
        })
        .collect()
}

fn rounds(m: &str) -> f64 {
    sample(m, "pulse_rounds_total").unwrap_or(0.0)
}

/// Serves the latest results with blackbox names and its own figures, on
/// every model; the exposition passes promtool.
fn exposes_results(runtime: &str) {
    let http = HttpFixture::start();
    let closed = closed_port();
    let file = targets_file(&[
        http.url("/ok"),
        format!("{} expect=200", http.url("/status/500")),
        format!("tcp://{}", http.addr()),
        format!("tcp://{closed}"),
    ]);
    let serve = Serve::start(
        runtime,
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "300ms",
            "--timeout",
            "2s",
        ],
    );
    let m = serve.wait_for(Duration::from_secs(20), |m| rounds(m) >= 2.0);
    let mut got = successes(&m);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (http.url("/ok"), 1.0),
        (http.url("/status/500"), 0.0),
        (format!("tcp://{}", http.addr()), 1.0),
        (format!("tcp://{closed}"), 0.0),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want, "{m}");
    let status500 = format!(
        r#"probe_http_status_code{{target="{}",kind="http"}}"#,
        http.url("/status/500")
    );
    assert_eq!(sample(&m, &status500), Some(500.0), "{m}");
    assert_eq!(sample(&m, "pulse_targets"), Some(4.0));
    assert!(
        sample(&m, r#"pulse_probes_total{kind="tcp",result="refused"}"#).unwrap() >= 2.0,
        "{m}"
    );
    assert!(
        sample(&m, r#"pulse_probes_total{kind="http",result="up"}"#).unwrap() >= 2.0,
        "{m}"
    );
    assert!(
        m.contains(&format!(
            r#"pulse_build_info{{version="{}",runtime="{runtime}""#,
            env!("CARGO_PKG_VERSION")
        )),
        "{m}"
    );
    assert!(
        sample(&m, "pulse_queue_wait_seconds_count").unwrap() >= 8.0,
        "{m}"
    );
    assert!(sample(&m, "process_resident_memory_bytes").unwrap() > 0.0);
    promtool_check(&m);
    let (status, page) = serve.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains(&http.url("/status/500")) && page.contains("<b>status</b>"),
        "{page}"
    );
    assert_eq!(serve.get("/healthz"), (200, "ok\n".into()));
}

#[test]
fn exposes_results_tokio() {
    exposes_results("tokio");
}

#[test]
fn exposes_results_smol() {
    exposes_results("smol");
}

#[test]
fn exposes_results_async_std() {
    exposes_results("async-std");
}

#[test]
fn exposes_results_threads() {
    exposes_results("threads");
}

#[test]
fn exposes_results_rayon() {
    exposes_results("rayon");
}

/// `/probe` runs one configured target on demand, blackbox style, and
/// refuses anything else unless `--allow-any-target`.
#[test]
fn probe_endpoint_is_limited_to_configured_targets() {
    let http = HttpFixture::start();
    let other = HttpFixture::start();
    let file = targets_file(&[format!("{} contains=ok", http.url("/body/ok"))]);
    let path = file.path().to_str().unwrap();
    let serve = Serve::start("tokio", &["-t", path, "--interval", "1h"]);
    let q = |t: &str| {
        format!(
            "/probe?target={}",
            t.replace(':', "%3A").replace('/', "%2F")
        )
    };

    let (status, body) = serve.get(&q(&http.url("/body/ok")));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    assert!(body.contains("\nprobe_http_status_code 200\n"), "{body}");
    assert!(
        !body.contains("target="),
        "blackbox style, no target label: {body}"
    );

    let (status, body) = serve.get(&q(&other.url("/ok")));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-any-target"), "{body}");
    assert_eq!(
        other.stats().accepted,
        0,
        "a refused target is never contacted"
    );
    assert_eq!(serve.get("/probe").0, 400);

    let open = Serve::start(
        "tokio",
        &["-t", path, "--interval", "1h", "--allow-any-target"],
    );
    let (status, body) = open.get(&q(&other.url("/ok")));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    let (status, body) = open.get("/probe?target=bogus%3A%2F%2Fx");
    assert_eq!(status, 400);
    assert!(body.contains("unsupported scheme"), "{body}");
    // A target from a query may not make the exporter read files.
    for option in ["ca", "body_file", "auth_file"] {
        let (status, body) = open.get(&format!(
            "{}%20{option}%3D%2Fetc%2Fshadow",
            q(&other.url("/ok"))
        ));
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("are read only when the targets file names them"),
            "{body}"
        );
    }
}

/// SIGHUP with an invalid file keeps the old targets and prints file:line
/// errors; with a valid one, the new targets are probed from the next round.
#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_old_targets() {
    let http = HttpFixture::start();
    let file = targets_file(&[http.url("/ok"), format!("tcp://{}", http.addr())]);
    let path = file.path().to_str().unwrap().to_owned();
    let serve = Serve::start("threads", &["-t", &path, "--interval", "200ms"]);
    serve.wait_for(Duration::from_secs(20), |m| rounds(m) >= 1.0);

    std::fs::write(
        &path,
        format!("{}\nbogus://x\ntcp://127.0.0.1\n", http.url("/ok")),
    )
    .unwrap();
    serve.signal("HUP");
    let m = serve.wait_for(Duration::from_secs(10), |m| {
        sample(m, r#"pulse_config_reloads_total{result="failure"}"#) == Some(1.0)
    });
    assert_eq!(sample(&m, "pulse_config_last_reload_successful"), Some(0.0));
    assert_eq!(sample(&m, "pulse_targets"), Some(2.0), "old targets kept");
    let log = serve.wait_log(Duration::from_secs(10), "not reloaded");
    assert!(
        log.contains(&format!("{path}:2:1: unsupported scheme")),
        "{log}"
    );
    assert!(log.contains(&format!("{path}:3:")), "{log}");
    let before = rounds(&m);
    serve.wait_for(Duration::from_secs(10), |m| rounds(m) >= before + 2.0);

    let new = format!("tcp://{}", closed_port());
    std::fs::write(
        &path,
        format!("{}\n{new}\n{}\n", http.url("/ok"), http.url("/status/404")),
    )
    .unwrap();
    serve.signal("HUP");
    let m = serve.wait_for(Duration::from_secs(10), |m| {
        successes(m).len() == 3 && successes(m).iter().any(|(t, _)| *t == new)
    });
    assert_eq!(sample(&m, "pulse_config_last_reload_successful"), Some(1.0));
    assert_eq!(sample(&m, "pulse_targets"), Some(3.0));
    let gone = format!("tcp://{}", http.addr());
    assert!(
        !successes(&m).iter().any(|(t, _)| *t == gone),
        "a dropped target's series is gone: {m}"
    );
}

/// SIGTERM during a round: in-flight probes drain for the grace period, no
/// new round starts, exit 0.
#[test]
fn sigterm_drains_the_round_and_exits_0() {
    let hole = Blackhole::start();
    let http = HttpFixture::start();
    let mut lines = vec![http.url("/ok")];
    lines.extend((0..5).map(|_| format!("tcp://{}", hole.addr())));
    let file = targets_file(&lines);
    let mut serve = Serve::start(
        "threads",
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "1h",
            "--spread",
            "0",
            "--timeout",
            "30s",
            "--grace",
            "300ms",
        ],
    );
    serve.wait_for(Duration::from_secs(20), |m| {
        sample(m, "pulse_round_running") == Some(1.0)
            && sample(m, "pulse_probes_in_flight") == Some(5.0)
    });
    let took = serve.terminate();
    let log = serve.log();
    assert!(log.contains("SIGTERM: no new rounds"), "{log}");
    assert!(log.contains("stopped after 1 rounds"), "{log}");
    // The grace period, not the 30 s probe deadline, ended it.
    assert!(took < Duration::from_secs(10), "{took:?}");
    println!("SIGTERM to exit: {took:?} (grace 300ms)");
}

/// A round that overruns the interval is never stacked on the next: the
/// ticks it covered are skipped and counted.
#[test]
fn an_overrunning_round_skips_ticks() {
    let http = HttpFixture::start();
    // Each round takes ~600 ms (a /delay probe); the interval is 200 ms.
    let file = targets_file(&[http.url("/delay/600")]);
    let mut serve = Serve::start(
        "smol",
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "200ms",
            "--rounds",
            "4",
        ],
    );
    assert_eq!(
        serve.wait_exit(Duration::from_secs(30)),
        0,
        "{}",
        serve.log()
    );
    let log = serve.log();
    let last = log
        .lines()
        .find(|l| l.contains("stopping after 4 rounds"))
        .unwrap_or_else(|| panic!("{log}"));
    let skipped: u64 = last
        .split("; ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Three overruns of ~3 ticks each; at least one skip per overrun
    // whatever the machine's load.
    assert!(skipped >= 3, "{last}");
    assert_eq!(
        log.matches("longer than the 200ms interval").count(),
        3,
        "{log}"
    );
    // Rounds never overlap: the fixture saw one connection at a time.
    assert_eq!(http.stats().max_open, 1, "{:?}", http.stats());
}

/// Two instances with --shard 0/2 and 1/2 split one file: every target in
/// exactly one of them.
#[test]
fn shards_split_one_file() {
    let http = HttpFixture::start();
    let lines: Vec<String> = (0..40).map(|i| http.url(&format!("/body/{i}"))).collect();
    let file = targets_file(&lines);
    let path = file.path().to_str().unwrap();
    let a = Serve::start(
        "tokio",
        &["-t", path, "--interval", "500ms", "--shard", "0/2"],
    );
    let b = Serve::start(
        "rayon",
        &["-t", path, "--interval", "500ms", "--shard", "1/2"],
    );
    let ma = a.wait_for(Duration::from_secs(20), |m| rounds(m) >= 1.0);
    let mb = b.wait_for(Duration::from_secs(20), |m| rounds(m) >= 1.0);
    let (sa, sb) = (successes(&ma), successes(&mb));
    assert!(!sa.is_empty() && !sb.is_empty(), "both shards have targets");
    let mut all: Vec<String> = sa.iter().chain(&sb).map(|(t, _)| t.clone()).collect();
    all.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(all, want, "every target exactly once across the shards");
    assert_eq!(sample(&ma, "pulse_targets_in_file"), Some(40.0));
    assert_eq!(
        sample(&ma, "pulse_targets").unwrap() + sample(&mb, "pulse_targets").unwrap(),
        40.0
    );

    // `--check-config --list-targets` names exactly the targets each
    // running shard probes: the list alone on stdout, the summary on stderr.
    for (shard, probed) in [("0/2", &sa), ("1/2", &sb)] {
        let o = run(&[
            "serve",
            "-t",
            path,
            "--check-config",
            "--shard",
            shard,
            "--list-targets",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let mut listed: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        listed.sort();
        let mut want: Vec<String> = probed.iter().map(|(t, _)| t.clone()).collect();
        want.sort();
        assert_eq!(listed, want, "shard {shard}");
        assert!(
            stderr(&o).contains(&format!("; shard {shard} probes {} of them", want.len())),
            "{}",
            stderr(&o)
        );
    }
    // It only lists: without --check-config it is a usage error.
    let o = run(&["serve", "-t", path, "--list-targets"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// `pulse_probe_timeout_seconds` is each target's own deadline: its
/// `timeout=`, else `--timeout`, labelled as its `probe_*` series are.
#[test]
fn exposes_each_targets_deadline() {
    let http = HttpFixture::start();
    let file = targets_file(&[
        http.url("/ok"),
        format!("tcp://{} timeout=1500ms", http.addr()),
    ]);
    let serve = Serve::start(
        "tokio",
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "300ms",
            "--timeout",
            "3s",
        ],
    );
    let m = serve.wait_for(Duration::from_secs(20), |m| rounds(m) >= 1.0);
    let http_series = format!(
        r#"pulse_probe_timeout_seconds{{target="{}",kind="http"}}"#,
        http.url("/ok")
    );
    let tcp_series = format!(
        r#"pulse_probe_timeout_seconds{{target="tcp://{}",kind="tcp"}}"#,
        http.addr()
    );
    assert_eq!(sample(&m, &http_series), Some(3.0), "{m}");
    assert_eq!(sample(&m, &tcp_series), Some(1.5), "{m}");
    promtool_check(&m);
}

/// `/metrics` answers promptly while a round of thousands of probes is in
/// flight; prints the scrape latencies.
#[test]
fn scrapes_are_answered_during_a_large_round() {
    let hole = Blackhole::start();
    let http = HttpFixture::start();
    let mut lines: Vec<String> = (0..2500)
        .map(|i| format!("tcp://{} timeout={}s", hole.addr(), 2 + i % 2))
        .collect();
    lines.extend((0..2500).map(|i| http.url(&format!("/delay/{}", 100 + i % 400))));
    let file = targets_file(&lines);
    let serve = Serve::start(
        "tokio",
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "1h",
            "--workers",
            "1000",
            "--spread",
            "0",
        ],
    );
    let mut latencies = Vec::new();
    let start = Instant::now();
    while latencies.len() < 20 && start.elapsed() < Duration::from_secs(30) {
        let t = Instant::now();
        let m = serve.metrics();
        let took = t.elapsed();
        if sample(&m, "pulse_round_running") == Some(1.0)
            && sample(&m, "pulse_probes_in_flight").unwrap() > 100.0
        {
            latencies.push(took);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        latencies.len(),
        20,
        "20 scrapes while the round ran: {}",
        serve.log()
    );
    latencies.sort();
    println!(
        "scrape latency during a 5000-probe round (1000 in flight): median {:?}, max {:?}",
        latencies[10], latencies[19]
    );
    // Generous: a scrape blocked by the round would take the round's
    // seconds; an unblocked one takes milliseconds even on a loaded machine.
    assert!(latencies[19] < Duration::from_secs(1), "{latencies:?}");
}

/// The server's bounds: methods, bodies, oversized heads, unknown paths.
#[test]
fn http_bounds() {
    let http = HttpFixture::start();
    let file = targets_file(&[http.url("/ok")]);
    let serve = Serve::start(
        "tokio",
        &["-t", file.path().to_str().unwrap(), "--interval", "1h"],
    );
    let a = serve.addr;
    assert_eq!(
        raw(a, "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0,
        405
    );
    assert_eq!(
        raw(a, "GET /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi").0,
        413
    );
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    assert_eq!(raw(a, &huge).0, 431);
    assert_eq!(raw(a, "NOT HTTP\r\n\r\n").0, 400);
    let (status, body) = serve.get("/nope");
    assert_eq!(status, 404);
    assert!(body.contains("/metrics"), "{body}");
    // Keep-alive: two requests on one connection, as Prometheus scrapes.
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("ok\n"),
            "{text}"
        );
    }
    // HEAD: headers only.
    let (status, body) = raw(a, "HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, ""));
}

/// Bad input is refused at start, saying what and where.
#[test]
fn bad_input_is_refused_at_start() {
    let file = targets_file(&["tcp://127.0.0.1:1".into(), "nope://x".into()]);
    let path = file.path().to_str().unwrap();
    let o = run(&["serve", "-t", path, "--listen", "127.0.0.1:0"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("{path}:2:1: unsupported scheme")),
        "{}",
        stderr(&o)
    );

    let good = targets_file(&["tcp://127.0.0.1:1".into()]);
    let good = good.path().to_str().unwrap();
    let o = run(&["serve", "-t", good, "--shard", "2/2"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("0 to 1"), "{}", stderr(&o));
    let o = run(&["serve", "-t", good, "--interval", "1s", "--spread", "2s"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("must be shorter than --interval"),
        "{}",
        stderr(&o)
    );

    let o = run(&["serve", "-t", good, "--listen", "nonsense"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--listen nonsense: "), "{}", stderr(&o));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(&["serve", "-t", good, "--listen", &addr]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains(&format!("cannot listen on {addr}")),
        "{}",
        stderr(&o)
    );
}

/// `--check-config` loads the file as serving would, then exits without
/// probing or binding: 0 and a one-line summary, or 2 and every error.
#[test]
fn check_config_validates_without_serving() {
    // Nothing listens on these: a probe would fail, and the check must not
    // try one (it exits 0 whatever the targets' state).
    let closed = closed_port();
    let good = targets_file(&[
        format!("http://{closed}/"),
        format!("http://{closed}/other expect=200-299,301"),
        format!("tcp://{closed}"),
        "icmp://127.0.0.1".into(),
    ]);
    let path = good.path().to_str().unwrap();
    // A port in use proves nothing is bound: serving would fail with 3.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(&["serve", "-t", path, "--check-config", "--listen", &addr]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out,
        format!("{path}: valid: 4 targets (http 2, tcp 1, icmp 1)\n")
    );

    // With --shard, the shard is applied and its share stated; the two
    // shards' shares add up to the file.
    let share = |i: u32| {
        let o = run(&[
            "serve",
            "-t",
            path,
            "--check-config",
            "--shard",
            &format!("{i}/2"),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let n: usize = out
            .split(&format!("; shard {i}/2 probes "))
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        n
    };
    assert_eq!(share(0) + share(1), 4);

    // Every error, FILE:LINE:COL, exit 2; a missing CA bundle too.
    let bad = targets_file(&[
        format!("tcp://{closed}"),
        "nope://x".into(),
        format!("http://{closed}/ bogus=1"),
    ]);
    let bad_path = bad.path().to_str().unwrap();
    let o = run(&["serve", "-t", bad_path, "--check-config"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{bad_path}:2:1: unsupported scheme")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{bad_path}:3:")) && err.contains("unknown option `bogus`"),
        "{err}"
    );
    assert!(err.contains(&format!("{bad_path} is not valid")), "{err}");
    assert!(o.stdout.is_empty());

    let no_ca = targets_file(&[format!("https://{closed}/ ca=missing.pem")]);
    let no_ca_path = no_ca.path().to_str().unwrap();
    let o = run(&["serve", "-t", no_ca_path, "--check-config"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(&format!("{no_ca_path}:1:1: ca=missing.pem")),
        "{}",
        stderr(&o)
    );
}

/// The whole response to `request`, head included.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /-/reload`: refused (403, naming the flag) unless
/// `--enable-reload`; with it, a reload like SIGHUP's whose answer says how
/// it went, counted in `pulse_config_reloads_total`. Other methods are 405.
#[test]
fn post_reload_is_off_by_default_and_reloads_like_sighup() {
    let http = HttpFixture::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("targets.txt");
    let p = path.to_str().unwrap();
    std::fs::write(
        &path,
        format!("{}\ntcp://{}\n", http.url("/ok"), http.addr()),
    )
    .unwrap();
    let post = "POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    let off = Serve::start("tokio", &["-t", p, "--interval", "1h"]);
    let (status, body) = raw(off.addr, post);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--enable-reload"), "{body}");
    let m = off.metrics();
    assert_eq!(
        sample(&m, r#"pulse_config_reloads_total{result="success"}"#),
        Some(0.0),
        "a refused reload is no reload"
    );
    drop(off);

    let serve = Serve::start("threads", &["-t", p, "--interval", "1h", "--enable-reload"]);
    let a = serve.addr;
    let got = exchange(
        a,
        "GET /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 405 "), "{got}");
    assert!(got.contains("\r\nAllow: POST\r\n"), "{got}");
    let got = exchange(
        a,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(got.starts_with("HTTP/1.1 405 "), "{got}");
    assert!(got.contains("\r\nAllow: GET, HEAD\r\n"), "{got}");

    // A bad file: 500 with every FILE:LINE:COL error, the old targets kept.
    std::fs::write(
        &path,
        format!("{}\nbogus://x\ntcp://127.0.0.1\n", http.url("/ok")),
    )
    .unwrap();
    let (status, body) = raw(a, post);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains(&format!("{p}:2:1: unsupported scheme")),
        "{body}"
    );
    assert!(body.contains(&format!("{p}:3:")), "{body}");
    assert!(
        body.contains("not reloaded; still probing the 2 targets loaded before"),
        "{body}"
    );
    // The answer comes after the state changed: no wait needed.
    let m = serve.metrics();
    assert_eq!(
        sample(&m, r#"pulse_config_reloads_total{result="failure"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&m, "pulse_config_last_reload_successful"), Some(0.0));
    assert_eq!(sample(&m, "pulse_targets"), Some(2.0));

    // A good file: 200, in force at once.
    std::fs::write(
        &path,
        format!(
            "{}\n{}\ntcp://{}\n",
            http.url("/ok"),
            http.url("/status/404"),
            closed_port()
        ),
    )
    .unwrap();
    let (status, body) = raw(a, post);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!("reloaded {p}: 3 of 3 targets, from the next round on\n")
    );
    let m = serve.metrics();
    assert_eq!(
        sample(&m, r#"pulse_config_reloads_total{result="success"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&m, "pulse_config_last_reload_successful"), Some(1.0));
    assert_eq!(sample(&m, "pulse_targets"), Some(3.0));
    serve.wait_log(Duration::from_secs(10), "POST /-/reload: reloaded");
}

/// `--resolve` pins a name for the rounds and for `/probe`, and the TLS
/// facts of an https target are in `/metrics`.
#[test]
fn serve_resolves_pinned_names_and_reports_certificates() {
    let http = HttpFixture::start();
    let (https, _) = HttpFixture::start_tls();
    let name = format!("http://app.test:{}/ok", http.addr().port());
    let tls_target = format!("{} insecure", https.url("/ok"));
    let file = targets_file(&[name.clone(), tls_target]);
    let path = file.path().to_str().unwrap();
    let serve = Serve::start(
        "tokio",
        &[
            "-t",
            path,
            "--interval",
            "1h",
            "--spread",
            "0",
            "--resolve",
            "app.test=127.0.0.1",
        ],
    );
    let target = name.replace(':', "%3A").replace('/', "%2F");
    let (status, body) = serve.get(&format!("/probe?target={target}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    assert!(
        http.request_heads()
            .iter()
            .all(|h| h.to_ascii_lowercase().contains("\r\nhost: app.test:")),
        "{:?}",
        http.request_heads()
    );
    let start = Instant::now();
    loop {
        let m = serve.metrics();
        if m.contains("probe_ssl_earliest_cert_expiry{") {
            promtool_check(&m);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
