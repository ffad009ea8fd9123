//! The bodies of the conformance tests, parameterised by the model's `run`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_core::model::{Collect, RunReport, SetupError, Sink};
use pulse_core::plan::{Options, Plan};
use pulse_core::result::{ErrorKind, ProbeResult};
use pulse_core::shutdown::Shutdown;
use pulse_core::target::parse_targets;
use pulse_fixtures::{Blackhole, HttpFixture, SilentTcp, closed_port};

use crate::cli::util::{icmp_available, normalise};

/// A model's entry point.
pub type RunFn = fn(Arc<Plan>, Shutdown, &mut dyn Sink) -> Result<RunReport, SetupError>;

/// A plan from target lines; `ca=` paths are read relative to `dir`.
pub(crate) fn plan(lines: &[String], options: Options, dir: Option<&std::path::Path>) -> Arc<Plan> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let targets = parse_targets("conformance", text.as_bytes()).expect("valid targets");
    let base = dir.map(|d| d.to_path_buf()).unwrap_or_default();
    let mut read = |p: &std::path::Path| std::fs::read(base.join(p));
    Arc::new(Plan::new("conformance", targets, options, &mut read).expect("valid plan"))
}

pub(crate) fn options(workers: usize, timeout: Duration) -> Options {
    Options {
        workers,
        timeout,
        ..Options::default()
    }
}

/// Run to completion and return the report and the results in input order.
pub(crate) fn run(
    model: RunFn,
    plan: &Arc<Plan>,
    shutdown: Shutdown,
) -> (RunReport, Vec<ProbeResult>) {
    let mut sink = Collect::new(plan.len());
    let report = model(plan.clone(), shutdown, &mut sink).expect("the scan sets up");
    (report, sink.into_ordered())
}

pub(crate) fn kind(r: &ProbeResult) -> Option<ErrorKind> {
    r.error.as_ref().map(|e| e.kind)
}

/// The fixture behaviours, with the result every model must give.
pub(crate) fn fixture_cases(
    http: &HttpFixture,
    https: &HttpFixture,
    blackhole: &Blackhole,
    silent: &SilentTcp,
) -> Vec<(String, Option<ErrorKind>)> {
    let u = |p: &str| http.url(p);
    let closed = closed_port();
    vec![
        (u("/ok"), None),
        (u("/status/503"), Some(ErrorKind::Status)),
        (format!("{} expect=500-599", u("/status/503")), None),
        (format!("{} contains=\"hello\"", u("/body/hello")), None),
        (
            format!("{} contains=nope", u("/body/hello")),
            Some(ErrorKind::Body),
        ),
        (
            format!("{} timeout=400ms", u("/stall")),
            Some(ErrorKind::Timeout),
        ),
        (
            format!("{} timeout=500ms", u("/drip/50")),
            Some(ErrorKind::Timeout),
        ),
        (u("/garbage"), Some(ErrorKind::Protocol)),
        (u("/reset"), Some(ErrorKind::Reset)),
        (u("/huge/3000000"), None),
        (u("/redirect/2"), None),
        (u("/chunked"), None),
        (u("/close-delimited"), None),
        (
            format!("{} timeout=3s", u("/headers-forever")),
            Some(ErrorKind::Protocol),
        ),
        (format!("tcp://{closed}"), Some(ErrorKind::Refused)),
        (format!("http://{closed}/"), Some(ErrorKind::Refused)),
        (
            format!("{} timeout=300ms", blackhole.addr()),
            Some(ErrorKind::Timeout),
        ),
        (format!("{}", silent.addr()), None),
        ("http://name.invalid/".into(), Some(ErrorKind::Dns)),
        (https.url("/ok"), Some(ErrorKind::Tls)),
        (format!("{} insecure", https.url("/ok")), None),
        (format!("{} ca=ca.pem", https.url("/chunked")), None),
        (
            format!("{} insecure", https.url("/reset")),
            Some(ErrorKind::Reset),
        ),
        // Request options: /echo answers with the request as received.
        (
            format!(
                r#"{} method=POST header="X-Probe: yes" body=ping matches="(?is)^POST /echo HTTP/1\.1\r\n(?:.*\r\n)?(?:x-probe: yes\r\n(?:.*\r\n)?content-length: 4|content-length: 4\r\n(?:.*\r\n)?x-probe: yes)\r\n(?:.*\r\n)?\r\nping$""#,
                u("/echo")
            ),
            None,
        ),
        (format!("{} method=HEAD", u("/echo")), None),
        (
            format!(r#"{} matches="(?i)accept-encoding""#, u("/echo")),
            Some(ErrorKind::Body),
        ),
        (
            format!(
                r#"{} header="Accept-Encoding: identity" header="Host: probe.example" matches="(?is)accept-encoding: identity.*host: probe\.example|host: probe\.example.*accept-encoding: identity""#,
                u("/echo")
            ),
            None,
        ),
        (
            format!(
                r#"{} auth_file=token.txt matches="(?i)\r\nauthorization: bearer t0ken\r\n""#,
                u("/echo")
            ),
            None,
        ),
        // A 302 turns the POST into a GET without its body.
        (
            format!(
                r#"{} body=gone matches="^GET /echo HTTP/1\.1\r\n(?s:.*)\r\n\r\n$""#,
                u("/location/%2Fecho")
            ),
            None,
        ),
        (
            format!("{} no_follow", u("/redirect/1")),
            Some(ErrorKind::Status),
        ),
    ]
}

/// The files the fixture table's targets name, written into `dir`: the
/// HTTPS fixture's CA bundle (`ca=ca.pem`) and a bearer token
/// (`auth_file=token.txt`).
pub(crate) fn fixture_files(dir: &std::path::Path, tls: &pulse_fixtures::TlsMaterial) {
    std::fs::write(dir.join("ca.pem"), &tls.ca_pem).unwrap();
    std::fs::write(dir.join("token.txt"), "bearer t0ken\n").unwrap();
}

pub fn fixture_behaviours(model: RunFn) {
    let http = HttpFixture::start();
    let (https, tls) = HttpFixture::start_tls();
    let blackhole = Blackhole::start();
    let silent = SilentTcp::start();
    let dir = tempfile::tempdir().unwrap();
    fixture_files(dir.path(), &tls);
    let cases = fixture_cases(&http, &https, &blackhole, &silent);
    let lines: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let p = plan(&lines, options(8, Duration::from_secs(5)), Some(dir.path()));
    let (report, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    assert_eq!(results.len(), cases.len());
    for (i, ((line, expect), r)) in cases.iter().zip(&results).enumerate() {
        assert_eq!(r.line, i + 1);
        assert_eq!(kind(r), *expect, "{line}: {:?}", r.error);
    }
    let huge = results[9].http.as_ref().unwrap();
    assert_eq!((huge.body_bytes, huge.body_truncated), (1024 * 1024, true));
    assert_eq!(results[10].http.as_ref().unwrap().redirects, 3);
    assert_eq!(report.summary.targets, cases.len());
    assert!(!report.summary.interrupted);
    assert!(report.runtime_threads >= 1);
}

/// Certificate facts and `cert_expiry_warn=` against a leaf that expires in
/// three days and one that expired yesterday: the expiry is reported
/// whether or not the chain verified, and a certificate inside its window
/// fails as `tls`, saying when it expires.
pub fn certificate_expiry(model: RunFn) {
    const DAY: Duration = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    };
    let (soon, soon_tls) = HttpFixture::start_tls_valid(now - DAY, now + 3 * DAY);
    let (expired, expired_tls) = HttpFixture::start_tls_valid(now - 30 * DAY, now - DAY);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("soon.pem"), &soon_tls.ca_pem).unwrap();
    std::fs::write(dir.path().join("expired.pem"), &expired_tls.ca_pem).unwrap();
    let cases: Vec<(String, Option<ErrorKind>)> = vec![
        (format!("{} ca=soon.pem", soon.url("/ok")), None),
        (
            format!("{} ca=soon.pem cert_expiry_warn=14d", soon.url("/ok")),
            Some(ErrorKind::Tls),
        ),
        (
            format!("{} ca=soon.pem cert_expiry_warn=2d", soon.url("/ok")),
            None,
        ),
        (
            format!("{} ca=expired.pem", expired.url("/ok")),
            Some(ErrorKind::Tls),
        ),
        (format!("{} insecure", expired.url("/ok")), None),
        (
            format!("{} insecure cert_expiry_warn=1h", expired.url("/ok")),
            Some(ErrorKind::Tls),
        ),
    ];
    let lines: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let p = plan(&lines, options(4, Duration::from_secs(5)), Some(dir.path()));
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    for ((line, expect), r) in cases.iter().zip(&results) {
        assert_eq!(kind(r), *expect, "{line}: {:?}", r.error);
    }
    let cert = |i: usize| {
        results[i]
            .http
            .as_ref()
            .and_then(|h| h.certificate.clone())
            .unwrap_or_else(|| panic!("{}: no certificate facts", lines[i]))
    };
    // X.509 times are whole seconds; rcgen writes the ones it is given.
    let near = |a: i64, b: i64| (a - b).abs() <= 2;
    let c = cert(0);
    assert!(near(c.earliest_expiry_unix, unix(now + 3 * DAY)), "{c:?}");
    assert_eq!(c.subject, "CN=pulse fixture");
    assert_eq!(c.issuer, "CN=pulse fixture test CA");
    assert_eq!(
        c.chain_expiry_unix,
        Some(c.earliest_expiry_unix),
        "the verified chain ends at the bundle's CA, which outlives the leaf"
    );
    let warn = &results[1].error.as_ref().unwrap().message;
    // Three days less the moments since the fixture started, in whole
    // seconds on both sides: 3d 0h or 2d 23h.
    assert!(
        ["expires in 3d 0h,", "expires in 2d 23h,"]
            .iter()
            .any(|w| warn.starts_with(&format!(
                "certificate CN=pulse fixture {w} within cert_expiry_warn=14d"
            ))),
        "{warn}"
    );
    // An expired leaf fails verification, and still shows its expiry.
    let c = cert(3);
    assert!(near(c.earliest_expiry_unix, unix(now - DAY)), "{c:?}");
    assert_eq!(c.chain_expiry_unix, None, "not verified");
    assert!(
        results[3]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("expired")
    );
    assert_eq!(cert(4).chain_expiry_unix, None, "insecure verifies nothing");
    let gone = &results[5].error.as_ref().unwrap().message;
    assert!(
        gone.starts_with(
            "certificate CN=pulse fixture expired 1d 0h ago, within cert_expiry_warn=1h"
        ),
        "{gone}"
    );
}

/// `ip=` on every model, through each model's own resolver: a listener on
/// both `127.0.0.1:P` and `[::1]:P`, and `localhost`, which resolves to
/// 127.0.0.1 (and, on machines whose hosts file says so, to ::1 too).
pub fn address_families(model: RunFn) {
    let (v4, v6) = dual_stack_listeners();
    let port = v4.local_addr().unwrap().port();
    let lines = vec![
        format!("tcp://localhost:{port} ip=4"),
        format!("tcp://localhost:{port} ip=6"),
        format!("tcp://[::1]:{port}"),
        format!("http://localhost:{port}/ ip=4 timeout=300ms"),
    ];
    let p = plan(&lines, options(4, Duration::from_secs(5)), None);
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    assert!(results[0].success, "{:?}", results[0].error);
    assert_eq!(
        results[0].address.as_deref(),
        Some(&*format!("127.0.0.1:{port}"))
    );
    match &results[1].error {
        // This machine's resolver has no IPv6 address for localhost.
        Some(e) => {
            assert_eq!(e.kind, ErrorKind::Dns);
            assert_eq!(
                e.message,
                "localhost: no IPv6 address (ip=6); it resolves only to the other family"
            );
        }
        None => assert_eq!(
            results[1].address.as_deref(),
            Some(&*format!("[::1]:{port}"))
        ),
    }
    assert!(results[2].success, "{:?}", results[2].error);
    assert_eq!(
        results[2].address.as_deref(),
        Some(&*format!("[::1]:{port}"))
    );
    // The listener never answers HTTP: the probe reached it over IPv4 and
    // timed out there.
    assert_eq!(kind(&results[3]), Some(ErrorKind::Timeout));
    assert_eq!(
        results[3].address.as_deref(),
        Some(&*format!("127.0.0.1:{port}"))
    );
    drop((v4, v6));
}

/// `--resolve` pins and `all_addresses` on every model: a name pinned to
/// an address that answers and one that refuses is up when probed as
/// usual (the first address answers) and down under `all_addresses`, with
/// each address's verdict; an HTTP name pinned twice to the fixture is
/// asked twice, by name.
pub fn every_address(model: RunFn) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let http = HttpFixture::start();
    let web = http.addr().port();
    let mut pins = pulse_core::session::Pins::new();
    pins.insert(
        "dual.test".into(),
        vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
    );
    pins.insert("web.test".into(), vec!["127.0.0.1".parse().unwrap(); 2]);
    let opts = Options {
        resolve: Some(Arc::new(pins)),
        ..options(4, Duration::from_secs(5))
    };
    let lines = vec![
        format!("tcp://dual.test:{port}"),
        format!("tcp://dual.test:{port} all_addresses"),
        format!("http://web.test:{web}/ok all_addresses"),
        format!("tcp://dual.test:{port} ip=6"),
    ];
    let p = plan(&lines, opts, None);
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    assert!(results[0].success, "{:?}", results[0].error);
    assert_eq!(
        results[0].address.as_deref(),
        Some(&*format!("127.0.0.1:{port}"))
    );
    assert!(results[0].addresses.is_empty());
    let r = &results[1];
    assert_eq!(kind(r), Some(ErrorKind::Refused), "{:?}", r.error);
    let verdicts: Vec<(String, bool)> = r
        .addresses
        .iter()
        .map(|a| (a.address.clone(), a.success))
        .collect();
    assert_eq!(
        verdicts,
        [
            (format!("127.0.0.1:{port}"), true),
            (format!("[::1]:{port}"), false)
        ]
    );
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message
            .starts_with(&format!("1 of 2 addresses down; [::1]:{port}: ")),
        "{:?}",
        r.error
    );
    let r = &results[2];
    assert!(r.success, "{:?}", r.error);
    assert_eq!(r.addresses.len(), 2);
    let heads = http.request_heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for h in &heads {
        assert!(
            h.to_ascii_lowercase()
                .contains(&format!("\r\nhost: web.test:{web}\r\n")),
            "{h}"
        );
    }
    assert_eq!(
        kind(&results[3]),
        Some(ErrorKind::Refused),
        "ip=6 keeps only ::1"
    );
    drop(listener);
}

/// Happy eyeballs (RFC 8305) on every model: a name pinned to a dead
/// address (SYNs dropped) and a live one connects through the live one
/// after one connection-attempt delay, not after the deadline; an HTTP
/// exchange goes on over the winner, by name; when every address refuses,
/// the probe says it raced them.
pub fn happy_eyeballs(model: RunFn) {
    use std::net::{Ipv4Addr, SocketAddrV4};
    let http = HttpFixture::start();
    let web = http.addr().port();
    let dead_web = Blackhole::start_at(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), web));
    let dead = Blackhole::start_at(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 0));
    let port = dead.addr().port();
    let live = std::net::TcpListener::bind(("127.0.0.1", port)).expect("127.0.0.1:P is free");
    let closed = closed_port().port();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let mut pins = pulse_core::session::Pins::new();
    pins.insert("he.test".into(), vec![ip("127.0.0.2"), ip("127.0.0.1")]);
    pins.insert(
        "refused.test".into(),
        vec![ip("127.0.0.3"), ip("127.0.0.4")],
    );
    let opts = Options {
        resolve: Some(Arc::new(pins)),
        ..options(4, Duration::from_secs(3))
    };
    let lines = vec![
        format!("tcp://he.test:{port}"),
        format!("http://he.test:{web}/ok"),
        format!("tcp://refused.test:{closed}"),
    ];
    let p = plan(&lines, opts, None);
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    for (r, live_addr) in results[..2].iter().zip([port, web]) {
        assert!(r.success, "{:?}", r.error);
        assert_eq!(
            r.address.as_deref(),
            Some(&*format!("127.0.0.1:{live_addr}"))
        );
        println!(
            "happy eyeballs past a dead address: {} in {} ms",
            r.target, r.duration_ms
        );
        // The dead address held the race up for one attempt delay (250 ms),
        // and no longer: far from the 3 s deadline.
        assert!(
            (240.0..2000.0).contains(&r.duration_ms),
            "{} ms for {}",
            r.duration_ms,
            r.target
        );
    }
    let heads = http.request_heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains(&format!("\r\nhost: he.test:{web}\r\n"))
    );
    let r = &results[2];
    assert_eq!(kind(r), Some(ErrorKind::Refused), "{:?}", r.error);
    let message = &r.error.as_ref().unwrap().message;
    assert!(
        message.contains(" and 1 more address (raced): "),
        "{message}"
    );
    drop((live, dead, dead_web));
}

/// Listeners on `127.0.0.1:P` and `[::1]:P`, the same port P.
fn dual_stack_listeners() -> (std::net::TcpListener, std::net::TcpListener) {
    for _ in 0..50 {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        if let Ok(v6) = std::net::TcpListener::bind(("::1", port)) {
            return (v4, v6);
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1 in 50 tries");
}

pub fn absolute_deadline(model: RunFn) {
    let r = drip_fed_probe_times_out(model);
    assert!(r.http.as_ref().unwrap().body_bytes > 5, "bytes did arrive");
}

/// A probe of a server that drips its body one byte every 20 ms times out
/// at its 500 ms deadline (the result, for the caller's further checks).
pub(crate) fn drip_fed_probe_times_out(model: RunFn) -> ProbeResult {
    let http = HttpFixture::start();
    // One byte every 20 ms: a deadline that reset on every read would never fire.
    let p = plan(
        &[http.url("/drip/20")],
        options(1, Duration::from_millis(500)),
        None,
    );
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    let r = &results[0];
    assert_eq!(kind(r), Some(ErrorKind::Timeout));
    assert!(
        r.duration_ms >= 500.0 && r.duration_ms < 800.0,
        "the 500 ms deadline held: {} ms",
        r.duration_ms
    );
    r.clone()
}

pub fn one_result_per_target(model: RunFn) {
    let http = HttpFixture::start();
    let closed = closed_port();
    // Mixed speeds so completion order differs from input order.
    let lines: Vec<String> = (0..300)
        .map(|i| match i % 4 {
            0 => http.url(&format!("/delay/{}?{i}", (i * 7) % 40)),
            1 => format!("tcp://{closed}"),
            2 => http.url(&format!("/status/{}", 200 + i % 3)),
            _ => http.url(&format!("/ok?{i}")),
        })
        .collect();
    let p = plan(&lines, options(16, Duration::from_secs(5)), None);
    let (report, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    assert_eq!(results.len(), 300);
    let lines_seen: Vec<usize> = results.iter().map(|r| r.line).collect();
    assert_eq!(
        lines_seen,
        (1..=300).collect::<Vec<_>>(),
        "input order, no gaps"
    );
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.target, lines[i]);
    }
    assert_eq!(report.summary.targets, 300);
    assert_eq!(report.summary.up + report.summary.down, 300);
    assert_eq!(
        http.stats().requests,
        225,
        "each http target requested exactly once"
    );
}

pub fn fan_out_bound(model: RunFn) {
    let http = HttpFixture::start();
    let lines: Vec<String> = (0..400)
        .map(|i| http.url(&format!("/delay/10?{i}")))
        .collect();
    let p = plan(&lines, options(20, Duration::from_secs(5)), None);
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    assert!(results.iter().all(|r| r.success));
    let s = http.stats();
    assert!(
        s.max_open <= 20,
        "{} connections open at once with 20 workers",
        s.max_open
    );
    assert!(
        s.max_open >= 5,
        "only {} at once: the workers did not run concurrently",
        s.max_open
    );
}

pub fn panic_isolation(model: RunFn) {
    let http = HttpFixture::start();
    let lines: Vec<String> = (0..20).map(|i| http.url(&format!("/ok?{i}"))).collect();
    let opts = Options {
        panic_on_lines: BTreeSet::from([3, 11, 20]),
        ..options(4, Duration::from_secs(5))
    };
    let p = plan(&lines, opts, None);
    let (report, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    for r in &results {
        if [3, 11, 20].contains(&r.line) {
            assert_eq!(kind(r), Some(ErrorKind::Panicked), "line {}", r.line);
            assert!(r.error.as_ref().unwrap().message.contains("injected fault"));
        } else {
            assert!(
                r.success,
                "line {} after a panic elsewhere: {:?}",
                r.line, r.error
            );
        }
    }
    assert_eq!(report.summary.up, 17);
}

/// Threads of this process (Linux).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

pub fn cancellation(model: RunFn) {
    let http = HttpFixture::start();
    // Warm up: models with a process-wide runtime (async-std) start it here,
    // so the thread count below compares steady states.
    let warm = plan(&[http.url("/ok")], options(1, Duration::from_secs(5)), None);
    run(model, &warm, Shutdown::new(Duration::from_secs(1)));
    let before = threads();
    http.reset_stats();

    let lines: Vec<String> = (0..500)
        .map(|i| {
            if i % 2 == 0 {
                http.url(&format!("/delay/100?{i}"))
            } else {
                http.url(&format!("/delay/20000?{i}"))
            }
        })
        .collect();
    let p = plan(&lines, options(10, Duration::from_secs(60)), None);
    let grace = Duration::from_millis(300);
    let shutdown = Shutdown::new(grace);
    let trigger = shutdown.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        trigger.trigger(Instant::now());
        Instant::now()
    });
    let (report, results) = run(model, &p, shutdown);
    let returned = Instant::now();
    let triggered = t.join().unwrap();
    let took = returned.duration_since(triggered);
    assert!(
        took < grace + Duration::from_millis(400),
        "run returned {took:?} after the trigger (grace {grace:?})"
    );
    assert_eq!(results.len(), 500, "every target accounted for");
    assert!(report.summary.interrupted);
    let cut = results
        .iter()
        .filter(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.message.contains("grace period ended"))
        })
        .count();
    let never = results
        .iter()
        .filter(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.message.contains("before this probe started"))
        })
        .count();
    let up = results.iter().filter(|r| r.success).count();
    assert_eq!(
        up + cut + never,
        500,
        "only up, cut at grace, or never started: {:?}",
        report.summary
    );
    assert!(
        (1..=10).contains(&cut),
        "{cut} probes cut at the grace period (10 workers)"
    );
    assert!(never > 300, "{never} never started");
    let started = up + cut;
    assert_eq!(
        http.stats().requests as usize,
        started,
        "no probe started after the trigger went unreported"
    );
    // No thread left behind (poll briefly: runtimes join their threads on the way out).
    let t0 = Instant::now();
    while threads() > before && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        threads() <= before,
        "{} threads now, {before} before the scan",
        threads()
    );
}

pub fn shutdown_before_start(model: RunFn) {
    let http = HttpFixture::start();
    let lines: Vec<String> = (0..50).map(|i| http.url(&format!("/ok?{i}"))).collect();
    let p = plan(&lines, options(5, Duration::from_secs(5)), None);
    let shutdown = Shutdown::new(Duration::from_millis(100));
    shutdown.trigger(Instant::now());
    let (report, results) = run(model, &p, shutdown);
    assert_eq!(results.len(), 50);
    assert!(
        results
            .iter()
            .all(|r| kind(r) == Some(ErrorKind::Cancelled))
    );
    assert_eq!(report.summary.cancelled, 50);
    assert_eq!(http.stats().requests, 0);
}

pub fn icmp(model: RunFn) {
    if !icmp_available() {
        eprintln!("skipped: no raw or ping ICMP socket (run as root, or widen ping_group_range)");
        return;
    }
    let lines: Vec<String> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                "icmp://127.0.0.1".into()
            } else {
                "127.0.0.2".into()
            }
        })
        .collect();
    let p = plan(&lines, options(8, Duration::from_secs(2)), None);
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    for r in &results {
        assert!(r.success, "{}: {:?}", r.target, r.error);
        assert!(r.phases.rtt.is_some());
    }
    let seqs: BTreeSet<u16> = results
        .iter()
        .map(|r| r.icmp.as_ref().unwrap().sequence)
        .collect();
    assert_eq!(seqs.len(), 40, "every echo had its own sequence number");
}

/// Multi-packet ICMP (`count=6 interval=20ms`) against farm hosts in a
/// namespace: a clean host, one losing every other request, one losing
/// all, one answering every request twice, and a single echo beside them.
/// Loss is counted, a duplicate is counted once and never received twice,
/// some loss is still up, all loss is a timeout, and a count=1 target's
/// result has no train in it, as before.
pub fn icmp_train(model: RunFn) {
    use pulse_fixtures::farm::netns::{IcmpHost, Mangle, NetnsIcmp};
    if !icmp_available() {
        eprintln!("skipped: no raw or ping ICMP socket (run as root, or widen ping_group_range)");
        return;
    }
    let host = |i: usize, drop: bool, mangle: Mangle| IcmpHost {
        addr: NetnsIcmp::addr_for(i),
        delay: Duration::ZERO,
        drop,
        mangle,
    };
    let hosts = [
        host(0, false, Mangle::None),
        host(1, false, Mangle::LoseEveryOther),
        host(2, true, Mangle::None),
        host(3, false, Mangle::Twice),
        host(4, false, Mangle::None),
    ];
    let responder = [
        std::ffi::OsString::from(env!("CARGO_BIN_EXE_pulse")),
        "farm-icmp-responder".into(),
    ];
    let farm = match NetnsIcmp::start(&hosts, &responder) {
        Ok(farm) => farm,
        Err(e) => {
            eprintln!("skipped: cannot create the ICMP namespace: {e}");
            return;
        }
    };
    let mut lines: Vec<String> = hosts[..4]
        .iter()
        .map(|h| format!("icmp://{} count=6 interval=20ms timeout=600ms", h.addr))
        .collect();
    lines.push(format!("icmp://{} timeout=600ms", hosts[4].addr));
    let p = plan(&lines, options(8, Duration::from_secs(5)), None);
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    drop(farm);
    let packets = |i: usize| {
        let r: &ProbeResult = &results[i];
        let p = r.icmp.as_ref().and_then(|d| d.packets.clone());
        p.unwrap_or_else(|| panic!("{}: no packets in {r:?}", r.target))
    };
    for r in &results {
        assert!(
            r.duration_ms < 900.0,
            "{}: {} ms for a 600 ms deadline",
            r.target,
            r.duration_ms
        );
    }

    let clean = packets(0);
    assert!(results[0].success, "{:?}", results[0].error);
    assert_eq!((clean.sent, clean.received, clean.loss_ratio), (6, 6, 0.0));
    assert!(clean.rtt_min_ms <= clean.rtt_avg_ms && clean.rtt_avg_ms <= clean.rtt_max_ms);
    assert!(clean.rtt_stddev_ms.is_some());
    assert_eq!(
        results[0].phases.rtt, clean.rtt_avg_ms,
        "the rtt phase is the mean"
    );

    let lossy = packets(1);
    assert!(
        results[1].success,
        "some loss is still up: {:?}",
        results[1].error
    );
    assert_eq!((lossy.sent, lossy.received, lossy.loss_ratio), (6, 3, 0.5));
    let answered: Vec<bool> = lossy.rtts_ms.iter().map(Option::is_some).collect();
    assert_eq!(
        answered,
        [true, false, true, false, true, false],
        "which were lost"
    );

    let dead = packets(2);
    assert_eq!(kind(&results[2]), Some(ErrorKind::Timeout));
    assert_eq!((dead.sent, dead.received, dead.loss_ratio), (6, 0, 1.0));
    let message = &results[2].error.as_ref().unwrap().message;
    assert!(message.contains("none of 6 answered"), "{message}");

    let twice = packets(3);
    assert!(results[3].success, "{:?}", results[3].error);
    assert_eq!(
        (twice.sent, twice.received),
        (6, 6),
        "a duplicate is received once"
    );
    // The sixth request's duplicate may come after the train (complete
    // at its sixth reply) has closed: then it is late, not counted.
    assert!(
        (5..=6).contains(&twice.duplicates),
        "duplicates counted: {}",
        twice.duplicates
    );

    let single = results[4].icmp.as_ref().unwrap();
    assert!(results[4].success, "{:?}", results[4].error);
    assert_eq!(single.packets, None, "a single echo's result is as it was");
}

pub fn same_as_tokio(model: RunFn) {
    let http = HttpFixture::start();
    let (https, tls) = HttpFixture::start_tls();
    let blackhole = Blackhole::start();
    let silent = SilentTcp::start();
    let dir = tempfile::tempdir().unwrap();
    fixture_files(dir.path(), &tls);
    let mut lines: Vec<String> = fixture_cases(&http, &https, &blackhole, &silent)
        .into_iter()
        .map(|c| c.0)
        .collect();
    if icmp_available() {
        lines.push("icmp://127.0.0.1".into());
    }
    let p = plan(&lines, options(8, Duration::from_secs(5)), Some(dir.path()));
    let (_, reference) = run(pulse_tokio::run, &p, Shutdown::new(Duration::from_secs(1)));
    let (_, ours) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    for (a, b) in reference.iter().zip(&ours) {
        assert_eq!(normalise(a), normalise(b), "line {}", a.line);
    }
    assert_eq!(reference.len(), ours.len());
}

/// The hostile-server table: servers that break the protocol on purpose,
/// each with the result every model must give, within the probe's deadline.
pub(crate) fn hostile_cases(http: &HttpFixture, tls_stall: &SilentTcp) -> Vec<(String, ErrorKind)> {
    let u = |p: &str| format!("{} timeout=2s", http.url(p));
    vec![
        // A head that never ends: the 64 KiB header cap trips first.
        (u("/headers-forever"), ErrorKind::Protocol),
        // 100 MB promised, 7 bytes sent, then an orderly close.
        (u("/short-body/104857600"), ErrorKind::Reset),
        (u("/bad-chunk/hex"), ErrorKind::Protocol),
        (u("/bad-chunk/overflow"), ErrorKind::Protocol),
        (u("/bad-chunk/negative"), ErrorKind::Protocol),
        // A chunk promised 256 bytes and sent 5 before the close.
        (u("/bad-chunk/short"), ErrorKind::Reset),
        // A TLS server that starts its ServerHello and never finishes it.
        (
            format!("https://{}/ insecure timeout=500ms", tls_stall.addr()),
            ErrorKind::Timeout,
        ),
    ]
}

pub fn hostile_servers(model: RunFn) {
    let http = HttpFixture::start();
    let tls_stall = SilentTcp::greeting(SilentTcp::TLS_STALL);
    let cases = hostile_cases(&http, &tls_stall);
    let lines: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let p = plan(&lines, options(4, Duration::from_secs(5)), None);
    let started = Instant::now();
    let (report, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    let took = started.elapsed();
    assert_eq!(results.len(), cases.len());
    for ((line, expect), r) in cases.iter().zip(&results) {
        assert_eq!(kind(r), Some(*expect), "{line}: {:?}", r.error);
        let limit = p.timeout(r.line - 1).as_secs_f64() * 1000.0;
        assert!(
            r.duration_ms <= limit + 300.0,
            "{line}: {} ms, over its {limit} ms deadline",
            r.duration_ms
        );
    }
    assert_eq!(report.summary.down, cases.len());
    // Four workers, seven probes of at most 2 s: two rounds at worst.
    assert!(took < Duration::from_secs(5), "the scan took {took:?}");
}

/// ICMP hosts that answer wrongly (bad checksum, another identifier, another
/// sequence number) or too late, in a network namespace whose responder
/// replaces the kernel's replies (fixtures/src/farm/netns.rs). Every bad
/// reply is ignored: the probe times out at its deadline. One good host
/// shows the set-up works.
pub fn hostile_icmp(model: RunFn) {
    hostile_icmp_accepting(model, &[]);
}

/// [`hostile_icmp`], for a client that accepts the replies mangled the
/// `accepted` ways (a listed difference: those hosts must come out up).
pub(crate) fn hostile_icmp_accepting(
    model: RunFn,
    accepted: &[pulse_fixtures::farm::netns::Mangle],
) {
    use pulse_fixtures::farm::netns::{IcmpHost, Mangle, NetnsIcmp};
    if !icmp_available() {
        eprintln!("skipped: no raw or ping ICMP socket (run as root, or widen ping_group_range)");
        return;
    }
    let host = |i: usize, delay_ms: u64, mangle: Mangle| IcmpHost {
        addr: NetnsIcmp::addr_for(i),
        delay: Duration::from_millis(delay_ms),
        drop: false,
        mangle,
    };
    let hosts = [
        host(0, 0, Mangle::None),
        host(1, 0, Mangle::Checksum),
        host(2, 0, Mangle::Ident),
        host(3, 0, Mangle::Sequence),
        // Answers correctly, a second after the 400 ms deadline.
        host(4, 1400, Mangle::None),
    ];
    let responder = [
        std::ffi::OsString::from(env!("CARGO_BIN_EXE_pulse")),
        "farm-icmp-responder".into(),
    ];
    let farm = match NetnsIcmp::start(&hosts, &responder) {
        Ok(farm) => farm,
        Err(e) => {
            eprintln!("skipped: cannot create the ICMP namespace: {e}");
            return;
        }
    };
    let lines: Vec<String> = hosts
        .iter()
        .map(|h| format!("icmp://{} timeout=400ms", h.addr))
        .collect();
    let p = plan(&lines, options(8, Duration::from_secs(5)), None);
    let started = Instant::now();
    let (_, results) = run(model, &p, Shutdown::new(Duration::from_secs(1)));
    let took = started.elapsed();
    assert!(results[0].success, "the good host: {:?}", results[0].error);
    for (h, r) in hosts.iter().zip(&results).skip(1) {
        if accepted.contains(&h.mangle) {
            assert!(r.success, "{:?}: {:?}", h, r.error);
            continue;
        }
        assert_eq!(kind(r), Some(ErrorKind::Timeout), "{:?}: {:?}", h, r.error);
        assert!(
            r.duration_ms < 700.0,
            "{:?}: {} ms for a 400 ms deadline",
            h,
            r.duration_ms
        );
    }
    assert!(took < Duration::from_secs(2), "the scan took {took:?}");
    drop(farm);
}
