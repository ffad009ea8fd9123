//! Hostile and careless input: each case an exact reproduction of a defect
//! found by trying the release binary as an attacker would (loopback only),
//! and the bounded, clear behaviour that replaced it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use pulse_fixtures::{HttpFixture, SilentTcp, closed_port};

use super::serve::{Serve, get, raw, sample};
use super::util::*;

/// `--targets /dev/zero` once grew to 13 GB and never ended: now it stops at
/// the cap, names it and the flag that raises it.
#[test]
fn an_endless_targets_file_stops_at_the_cap() {
    let started = Instant::now();
    let out = run(&["scan", "--targets", "/dev/zero"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("targets file /dev/zero is larger than 16MiB")
            && err.contains("--max-targets-size"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // Reading 16 MiB is milliseconds; the bound is for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(30));

    // A regular file one byte over a lowered cap, and exactly at it.
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let line = "tcp://127.0.0.1:1\n";
    f.write_all(line.repeat(1024 / line.len()).as_bytes())
        .unwrap();
    let len = f.as_file().metadata().unwrap().len();
    let p = f.path().to_str().unwrap();
    let over = (len - 1).to_string();
    let out = run(&["scan", "-t", p, "--max-targets-size", &over]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(&format!("is larger than {} bytes", len - 1)),
        "{}",
        stderr(&out)
    );
    let out = run(&["scan", "-t", p, "--max-targets-size", "nonsense"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a size"), "{}", stderr(&out));

    // A scenario file is capped too.
    for command in ["farm", "compare"] {
        let out = run(&[command, "--scenario", "/dev/zero"]);
        assert_eq!(code(&out), 2, "{command}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("scenario /dev/zero is larger than 1024 KiB"),
            "{command}: {}",
            stderr(&out)
        );
    }
}

/// `yes '#c' | pulse scan --targets -` (an endless pipe of comments) and
/// `--targets - < /dev/zero`: stdin is read with the same cap.
#[test]
fn an_endless_pipe_on_stdin_stops_at_the_cap() {
    for chunk in [&b"#c\n"[..], &[0u8; 4096][..]] {
        let mut child = pulse()
            .args(["scan", "--targets", "-", "--max-targets-size", "1MiB"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Like `yes`: write until the reader goes away.
        let writer = std::thread::spawn(move || {
            let mut sent = 0usize;
            while stdin.write_all(chunk).is_ok() {
                sent += chunk.len();
            }
            sent
        });
        let out = child.wait_with_output().unwrap();
        let sent = writer.join().unwrap();
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("targets file <stdin> is larger than 1MiB"),
            "{}",
            stderr(&out)
        );
        assert!(
            sent < 8 << 20,
            "pulse stopped reading at the cap: {sent} bytes sent"
        );
    }
}

/// 200,000 bad lines once printed 200,000 errors: now the first 20, and the
/// total.
#[test]
fn a_file_of_bad_lines_prints_the_first_errors_and_the_total() {
    let text = "bogus://x\n".repeat(200_000);
    let out = run_with_stdin(&["scan", "-t", "-"], text.as_bytes());
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.lines().count() <= 24, "{err}");
    assert!(err.starts_with("<stdin>:1:1: unsupported scheme"), "{err}");
    assert!(
        err.contains("... and 199980 more error(s) not shown (200000 in all)"),
        "{err}"
    );
    assert!(
        err.contains("pulse: 200000 bad target line(s) in <stdin>; nothing was probed"),
        "{err}"
    );
}

/// An empty file is one problem with the file, not "1 bad target line".
#[test]
fn an_empty_file_is_not_counted_as_a_bad_line() {
    let out = run_with_stdin(&["scan", "-t", "-"], b"# nothing\n");
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("<stdin>: no targets"), "{err}");
    assert!(!err.contains("bad target line"), "{err}");
}

/// ESC and NUL in a targets file (or its name) never reach the terminal raw.
#[test]
fn control_characters_are_escaped_in_errors() {
    let out = run_with_stdin(
        &["scan", "-t", "-"],
        b"http://127.0.0.1:1/\x1b[2J\x1b]0;owned\x07\nh:1 contains=\"a\0b\"\n",
    );
    assert_eq!(code(&out), 2);
    assert!(
        !out.stderr.iter().any(|&b| b == 0x1b || b == 0 || b == 7),
        "raw control bytes on stderr: {:?}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("<stdin>:1:20: control character U+001B is not allowed"),
        "{err}"
    );
    assert!(
        err.contains("<stdin>:2:16: control character U+0000"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("t\x1b[31m.txt");
    std::fs::write(&evil, "nope://x\n").unwrap();
    let out = run(&["scan", "-t", evil.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(!out.stderr.contains(&0x1b), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("t\\u{1b}[31m.txt:1:1: "),
        "{}",
        stderr(&out)
    );
}

/// Every duration has a stated maximum (24h) and a clear error: a huge
/// value once panicked (`timeout=`: every probe `panicked`; `--grace`:
/// exit 101 on some models and `panicked` results on others).
#[test]
fn durations_beyond_the_maximum_are_usage_errors() {
    let f = targets_file(&[format!("tcp://{}", closed_port())]);
    let p = f.path().to_str().unwrap();
    let huge = "18446744073709551615s";
    for args in [
        vec!["scan", "-t", p, "--timeout", huge],
        vec!["scan", "-t", p, "--grace", huge],
        vec!["scan", "-t", p, "--timeout", "25h"],
        vec!["check", "tcp://127.0.0.1:1", "--timeout", huge],
        vec!["serve", "-t", p, "--interval", huge],
        vec!["serve", "-t", p, "--grace", huge],
        vec!["serve", "-t", p, "--timeout", huge],
        vec!["serve", "-t", p, "--spread", huge],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("longer than the maximum, 24h") || err.contains("too large"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let t = targets_file(&[format!("tcp://{} timeout={huge}", closed_port())]);
    let tp = t.path().to_str().unwrap();
    for runtime in ["tokio", "smol", "async-std", "threads", "rayon"] {
        let out = run(&["--runtime", runtime, "scan", "-t", tp]);
        assert_eq!(code(&out), 2, "{runtime}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{tp}:1:"))
                && stderr(&out).contains("is longer than the maximum, 24h"),
            "{runtime}: {}",
            stderr(&out)
        );
    }
}

/// `/probe` with `X-Prometheus-Scrape-Timeout-Seconds: 1e20` once panicked
/// the connection thread (an empty reply, and 110 MB for the backtrace):
/// now a 400 that says why, and the exporter goes on.
#[test]
fn a_huge_scrape_timeout_header_is_a_400() {
    let http = HttpFixture::start();
    let target = http.url("/ok");
    let file = targets_file(std::slice::from_ref(&target));
    let serve = Serve::start(
        "tokio",
        &["-t", file.path().to_str().unwrap(), "--interval", "1h"],
    );
    let query = format!(
        "/probe?target={}",
        target.replace(':', "%3A").replace('/', "%2F")
    );
    for value in ["1e20", "-1", "NaN", "inf", "soon"] {
        let (status, body) = raw(
            serve.addr,
            &format!(
                "GET {query} HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: {value}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(status, 400, "{value}: {body}");
        assert!(
            body.contains("X-Prometheus-Scrape-Timeout-Seconds"),
            "{body}"
        );
    }
    let (status, body) = raw(
        serve.addr,
        &format!(
            "GET {query} HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
}

/// A write that fails (`> /dev/full`) exits 3 in every format, jsonl
/// included (it once logged the error and exited 0).
#[test]
fn a_failed_write_exits_3_in_every_format() {
    let f = targets_file(&[format!("tcp://{}", closed_port())]);
    let p = f.path().to_str().unwrap();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for format in ["jsonl", "json", "yaml", "table", "prom"] {
        for args in [
            vec!["scan", "-t", p, "-o", format],
            vec!["check", "tcp://127.0.0.1:1", "-o", format],
        ] {
            let out = pulse().args(&args).stdout(full()).output().unwrap();
            assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("writing the results to stdout: No space left"),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
}

/// A stdout closed before pulse writes (`| head -1` that has gone) exits
/// 141 quietly, in every format, on every model (jsonl stops the scan).
#[test]
fn a_closed_stdout_exits_141_in_every_format() {
    let lines: Vec<String> = (0..200)
        .map(|_| format!("tcp://{}", closed_port()))
        .collect();
    let f = targets_file(&lines);
    let p = f.path().to_str().unwrap();
    for runtime in ["tokio", "smol", "async-std", "threads", "rayon"] {
        for format in ["jsonl", "json", "yaml", "table", "prom"] {
            let mut child = pulse()
                .args(["--runtime", runtime, "scan", "-t", p, "-o", format])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            assert_eq!(code(&out), 141, "{runtime} {format}: {}", stderr(&out));
            assert_eq!(stderr(&out), "", "{runtime} {format}: quiet");
        }
    }
}

/// A request with bare-LF line endings is answered at once, not after the
/// 10 s head timeout.
#[test]
fn bare_lf_requests_are_answered_at_once() {
    let file = targets_file(&[format!("tcp://{}", closed_port())]);
    let serve = Serve::start(
        "tokio",
        &["-t", file.path().to_str().unwrap(), "--interval", "1h"],
    );
    let started = Instant::now();
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\nHost: x\n\n").unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

/// A client that sends part of a request head, then a byte now and then.
pub(crate) fn slowloris(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").unwrap();
    s
}

/// A client that made one keep-alive request, read the answer and went
/// silent, holding the connection.
pub(crate) fn idle_keep_alive(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    s
}

/// 64 idle keep-alive connections, or 64 slowloris clients, once made every
/// scrape a 503 for as long as they were held. Now the longest-waiting
/// connection is evicted for a newcomer, so scrapes are answered while
/// twice the cap of such clients are connected; and a connection that is
/// answering a request is never evicted: with every slot busy, a newcomer
/// gets 503.
#[test]
fn idle_and_slow_clients_cannot_lock_out_scrapes() {
    let silent = SilentTcp::start();
    let slow_target = format!("http://{}/", silent.addr());
    let file = targets_file(&[format!("{slow_target} timeout=4s")]);
    let serve = Serve::start(
        "tokio",
        &["-t", file.path().to_str().unwrap(), "--interval", "1h"],
    );
    let addr = serve.addr;
    let mut held = Vec::new();
    for i in 0..128 {
        held.push(if i % 2 == 0 {
            idle_keep_alive(addr)
        } else {
            slowloris(addr)
        });
    }
    let mut answered = 0;
    for round in 0..20 {
        // The slow clients keep dribbling, so they never time out.
        for s in held.iter_mut().skip(1).step_by(2) {
            let _ = s.write_all(b"a");
        }
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200, "scrape {round}: {body}");
        assert!(sample(&body, "pulse_targets") == Some(1.0), "{body}");
        answered += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(answered, 20);
    let m = serve.metrics();
    assert_eq!(sample(&m, "pulse_http_connections_open"), Some(64.0), "{m}");
    // 128 clients through 64 slots, and the first scrape made room too
    // (later ones took the slot the one before left, Connection: close).
    let evicted = sample(&m, "pulse_http_connections_evicted_total").unwrap();
    assert!(evicted >= 65.0, "{m}");
    drop(held);

    // Fill every slot with a request being answered: /probe of a target
    // that never answers, for its 4 s deadline.
    let query = format!(
        "/probe?target={}",
        slow_target.replace(':', "%3A").replace('/', "%2F")
    );
    let busy: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(format!("GET {query} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .unwrap();
            s
        })
        .collect();
    // Let every one of them reach its handler.
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 503, "all 64 are busy answering: {body}");
    drop(busy);
    // The busy slots free up when their probes end (4 s; a client that
    // goes away does not cancel its probe yet), and the refusal is counted.
    let start = Instant::now();
    let m = loop {
        match get(addr, "/metrics") {
            (200, m) => break m,
            (503, _) if start.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(200));
            }
            (status, body) => panic!("{status}: {body}"),
        }
    };
    assert!(
        sample(&m, "pulse_http_connections_refused_total") >= Some(1.0),
        "{m}"
    );
    promtool_check(&m);
}

/// Replacing the targets file by a symlink to /dev/zero and sending SIGHUP
/// once grew the exporter to 12 GB; a FIFO with no writer blocked the
/// reload, and with it SIGTERM, until SIGKILL. Now the first is refused at
/// the cap (the old targets kept), the second waits on its own thread, and
/// SIGTERM still stops the exporter within its grace period.
#[test]
fn a_reload_cannot_grow_without_bound_or_block_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("targets.txt");
    std::fs::write(&path, format!("tcp://{}\n", closed_port())).unwrap();
    let p = path.to_str().unwrap();
    let mut serve = Serve::start(
        "threads",
        &["-t", p, "--interval", "200ms", "--grace", "300ms"],
    );
    serve.wait_for(Duration::from_secs(20), |m| {
        sample(m, "pulse_rounds_total").unwrap_or(0.0) >= 1.0
    });

    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    serve.signal("HUP");
    let m = serve.wait_for(Duration::from_secs(20), |m| {
        sample(m, r#"pulse_config_reloads_total{result="failure"}"#) == Some(1.0)
    });
    assert_eq!(sample(&m, "pulse_targets"), Some(1.0), "old targets kept");
    let rss = sample(&m, "process_resident_memory_bytes").unwrap();
    assert!(rss < 512.0 * 1048576.0, "resident {rss} bytes");
    serve.wait_log(
        Duration::from_secs(10),
        &format!("targets file {p} is larger than 16MiB"),
    );

    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    serve.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    // The reload is stuck opening the FIFO; the rest goes on, and a SIGHUP
    // is told that a reload is already waiting. Two SIGHUPs sent before the
    // signal thread runs arrive as one (the kernel keeps one pending signal
    // of a kind), so keep sending until one is told.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !serve.log().contains("a reload is already waiting") {
        assert!(
            std::time::Instant::now() < deadline,
            "no SIGHUP was told a reload is already waiting:\n{}",
            serve.log()
        );
        serve.signal("HUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = sample(&serve.metrics(), "pulse_rounds_total").unwrap();
    serve.wait_for(Duration::from_secs(10), |m| {
        sample(m, "pulse_rounds_total").unwrap() >= before + 2.0
    });
    let log = serve.log();
    assert!(log.contains("a reload is already waiting"), "{log}");
    assert!(log.contains("FIFO with no writer"), "{log}");
    let took = serve.terminate();
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM to exit took {took:?}"
    );
    println!("SIGTERM during a stuck reload: exit after {took:?} (grace 300ms)");
}
