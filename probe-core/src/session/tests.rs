//! Session tests: every probe is driven by hand, with plain buffers and
//! invented instants. No socket is opened and no clock is read (the TLS
//! tests at the end run a rustls server in memory, from embedded PEMs).

use super::*;

use std::io::Read as _;
use std::sync::OnceLock;

use http::Uri;

use crate::result::HttpDetails;
use crate::target::parse_target;

// ---------------------------------------------------------------- helpers --

/// `t0 + n` milliseconds.
fn at(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

/// A phase value of `n` milliseconds, as [`Outcome::phases`] holds it.
fn msf(n: u64) -> Option<f64> {
    Some(n as f64)
}

/// The insecure client config, built once (building one is not free and the
/// split tests create thousands of sessions).
fn insecure() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(crate::tls::insecure).clone()
}

fn target(text: &str) -> Target {
    parse_target(text).unwrap()
}

fn session_cap(text: &str, cap: usize, t0: Instant) -> Session {
    Session::new(&target(text), Some(insecure()), cap, t0)
}

fn session(text: &str, t0: Instant) -> Session {
    session_cap(text, DEFAULT_BODY_CAP, t0)
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Asserts the session asks to connect to `addr`, and completes the connect.
fn connect(s: &mut Session, addr: &str, now: Instant) {
    assert_eq!(s.step(), Step::Connect(sock(addr)));
    s.connected(Ok(()), now);
}

/// Writes everything the session wants written, in one go per step; returns it.
fn drain(s: &mut Session, now: Instant) -> Vec<u8> {
    let mut all = Vec::new();
    while let Step::Write(b) = s.step() {
        let bytes = b.to_vec();
        assert!(!bytes.is_empty(), "Step::Write with nothing to write");
        s.wrote(Ok(bytes.len()), now);
        all.extend_from_slice(&bytes);
    }
    all
}

/// Feeds one read result after asserting the session asked for a read.
fn feed(s: &mut Session, bytes: &[u8], now: Instant) {
    assert_eq!(s.step(), Step::Read);
    s.received(Ok(bytes), now);
}

fn error_kind(o: &Outcome) -> Option<ErrorKind> {
    o.error.as_ref().map(|e| e.kind)
}

fn message(o: &Outcome) -> &str {
    o.error.as_ref().map_or("", |e| e.message.as_str())
}

fn http(o: &Outcome) -> &HttpDetails {
    o.http.as_ref().expect("an http outcome has http details")
}

/// The sum of all phases, in ms; equals the duration when phases are
/// contiguous and the probe ended at the close of the last phase.
fn phase_sum(o: &Outcome) -> f64 {
    o.phases.iter().map(|(_, v)| v).sum()
}

fn assert_close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

/// What a scripted exchange saw.
#[derive(Debug)]
struct Run {
    outcome: Outcome,
    /// Every byte the session wrote (all requests, redirects included).
    request: Vec<u8>,
    /// Non-empty chunks the session took before it said Done.
    fed: usize,
    /// Whether the session needed the EOF to finish.
    saw_eof: bool,
    /// `close_with_reset()` at the end.
    reset: bool,
}

/// A scripted server for one connection: the connect completes at 2 ms, the
/// request is written at 3 ms, chunk k (0-based, empty chunks skipped) is
/// read at 10 + 10k ms, then EOF 10 ms after the last chunk if the session
/// still reads. The probe is finished at the last event.
fn run(text: &str, cap: usize, chunks: &[&[u8]]) -> Run {
    let t0 = Instant::now();
    let mut s = session_cap(text, cap, t0);
    let Step::Connect(_) = s.step() else {
        panic!("expected a connect first, got {:?}", s.step())
    };
    s.connected(Ok(()), at(t0, 2));
    let request = drain(&mut s, at(t0, 3));
    let mut now = at(t0, 3);
    let mut fed = 0u64;
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        if s.step() == Step::Done {
            break;
        }
        now = at(t0, 10 + 10 * fed);
        feed(&mut s, chunk, now);
        fed += 1;
    }
    let mut saw_eof = false;
    if s.step() == Step::Read {
        now = at(t0, 10 + 10 * fed);
        s.received(Ok(&[]), now);
        saw_eof = true;
    }
    assert_eq!(s.step(), Step::Done);
    let reset = s.close_with_reset();
    Run {
        outcome: s.finish(now),
        request,
        fed: fed as usize,
        saw_eof,
        reset,
    }
}

/// [`run`] with the default body cap, outcome only.
fn exchange(text: &str, responses: &[&[u8]]) -> Outcome {
    run(text, DEFAULT_BODY_CAP, responses).outcome
}

/// The parts of an outcome that must not depend on how the bytes were split.
fn essence(o: &Outcome) -> (bool, Option<ProbeError>, Option<HttpDetails>) {
    (o.success, o.error.clone(), o.http.clone())
}

/// Every way to cut `resp` into two and three pieces, and byte by byte.
fn splits(resp: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut all = vec![vec![resp], resp.chunks(1).collect()];
    for i in 1..resp.len() {
        all.push(vec![&resp[..i], &resp[i..]]);
        for j in i + 1..resp.len() {
            all.push(vec![&resp[..i], &resp[i..j], &resp[j..]]);
        }
    }
    all
}

/// Asserts that every split of `resp` gives the same outcome as one read.
fn assert_split_independent(text: &str, resp: &[u8]) -> Outcome {
    let whole = exchange(text, &[resp]);
    for pieces in splits(resp) {
        let o = exchange(text, &pieces);
        assert_eq!(
            essence(&o),
            essence(&whole),
            "split {:?}",
            pieces
                .iter()
                .map(|p| String::from_utf8_lossy(p))
                .collect::<Vec<_>>()
        );
    }
    whole
}

const OK_5: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

// ------------------------------------------------------- steps and request --

#[test]
fn ip_literal_targets_skip_resolution() {
    let t0 = Instant::now();
    let s = session("http://127.0.0.1:8080/ok", t0);
    assert_eq!(s.kind(), Kind::Http);
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:8080")));
    let s = session("http://[::1]:8080/", t0);
    assert_eq!(s.step(), Step::Connect(sock("[::1]:8080")));
    let s = session("https://127.0.0.1/", t0);
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:443")));
    let s = session("tcp://127.0.0.1:22", t0);
    assert_eq!(s.kind(), Kind::Tcp);
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:22")));
}

#[test]
fn names_are_resolved_first() {
    let t0 = Instant::now();
    let s = session("http://example.test:8080/ok", t0);
    assert_eq!(
        s.step(),
        Step::Resolve {
            host: "example.test",
            port: 8080
        }
    );
    let s = session("https://example.test/", t0);
    assert_eq!(
        s.step(),
        Step::Resolve {
            host: "example.test",
            port: 443
        }
    );
    let s = session("example.test:22", t0);
    assert_eq!(
        s.step(),
        Step::Resolve {
            host: "example.test",
            port: 22
        }
    );
}

#[test]
fn request_is_a_get_with_connection_close() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok?x=1", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 1));
    let req = drain(&mut s, at(t0, 2));
    let text = String::from_utf8(req).unwrap();
    assert!(text.starts_with("GET /ok?x=1 HTTP/1.1\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("\r\nhost: 127.0.0.1:8080\r\n"), "{text}");
    assert!(lower.contains("\r\nconnection: close\r\n"), "{text}");
    let ua = format!("\r\nuser-agent: pulse/{}\r\n", env!("CARGO_PKG_VERSION"));
    assert!(lower.contains(&ua), "{text}");
    assert!(lower.contains("\r\naccept: */*\r\n"), "{text}");
    // A GET has no body and no body framing.
    assert!(!lower.contains("content-length"), "{text}");
    assert!(!lower.contains("transfer-encoding"), "{text}");
    assert_eq!(s.step(), Step::Read);
}

#[test]
fn request_to_an_ipv6_literal_keeps_brackets_in_host() {
    let t0 = Instant::now();
    let mut s = session("http://[::1]:8080/", t0);
    connect(&mut s, "[::1]:8080", t0);
    let text = String::from_utf8(drain(&mut s, t0)).unwrap();
    assert!(text.starts_with("GET / HTTP/1.1\r\n"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nhost: [::1]:8080\r\n"),
        "{text}"
    );
}

#[test]
fn partial_writes_resume_where_they_stopped() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    let Step::Write(all) = s.step() else {
        panic!("expected a write")
    };
    let all = all.to_vec();
    s.wrote(Ok(5), t0);
    assert_eq!(s.step(), Step::Write(&all[5..]));
    s.wrote(Ok(1), t0);
    assert_eq!(s.step(), Step::Write(&all[6..]));
    // A model that reports more than asked is clamped, not trusted.
    s.wrote(Ok(all.len() * 2), t0);
    assert_eq!(s.step(), Step::Read);
}

#[test]
fn write_of_zero_bytes_is_reset() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    s.wrote(Ok(0), at(t0, 1));
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 1));
    assert_eq!(error_kind(&o), Some(ErrorKind::Reset));
    assert!(message(&o).contains("while sending the request"), "{o:?}");
}

#[test]
fn write_errors_are_classified() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    s.wrote(Err(io::Error::from(io::ErrorKind::BrokenPipe)), at(t0, 1));
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 1));
    assert_eq!(error_kind(&o), Some(ErrorKind::Reset));
    assert_eq!(message(&o), "send request: broken pipe");
}

#[test]
fn events_for_another_state_are_ignored() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    // A read or a ping result while connecting changes nothing.
    s.received(Ok(b"HTTP/1.1 200 OK\r\n\r\n"), t0);
    s.pinged(
        Ok(Pong {
            sequence: 1,
            ttl: None,
        }),
        t0,
    );
    s.resolved(Ok(vec![sock("10.0.0.1:1")]), t0);
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:8080")));
    connect(&mut s, "127.0.0.1:8080", at(t0, 1));
    // A late connect result while exchanging changes nothing either.
    s.connected(Err(io::Error::from(io::ErrorKind::ConnectionRefused)), t0);
    assert!(matches!(s.step(), Step::Write(_)));
}

#[test]
fn finish_before_done_is_an_io_error() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 1));
    let o = s.finish(at(t0, 2));
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Io));
    assert!(message(&o).contains("before it was done"), "{o:?}");
}

// -------------------------------------------------------------------- tcp --

#[test]
fn tcp_connect_success() {
    let t0 = Instant::now();
    let mut s = session("tcp://127.0.0.1:22", t0);
    connect(&mut s, "127.0.0.1:22", at(t0, 4));
    assert_eq!(s.step(), Step::Done);
    // A TCP probe always closes with a reset (no TIME_WAIT on the prober).
    assert!(s.close_with_reset());
    let o = s.finish(at(t0, 4));
    assert!(o.success, "{o:?}");
    assert_eq!(o.error, None);
    assert_eq!(o.duration, Duration::from_millis(4));
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:22"));
    assert_eq!(o.phases.resolve, msf(0));
    assert_eq!(o.phases.connect, msf(4));
    assert_eq!(
        o.phases.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        ["resolve", "connect"]
    );
    assert_eq!(o.http, None);
    assert_eq!(o.icmp, None);
}

#[test]
fn tcp_connect_refused() {
    let t0 = Instant::now();
    let mut s = session("127.0.0.1:22", t0);
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:22")));
    s.connected(
        Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
        at(t0, 3),
    );
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 3));
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Refused));
    assert_eq!(message(&o), "connect to 127.0.0.1:22: connection refused");
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:22"));
    assert_eq!(o.phases.connect, msf(3));
    assert_eq!(o.phases.processing, None);
}

#[test]
fn http_connect_refused_has_no_http_status() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    s.connected(
        Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
        at(t0, 1),
    );
    let o = s.finish(at(t0, 1));
    assert_eq!(error_kind(&o), Some(ErrorKind::Refused));
    assert_eq!(http(&o).status_code, None);
    assert_eq!(http(&o).version, None);
    assert_eq!(http(&o).body_bytes, 0);
}

#[test]
fn several_addresses_race_for_the_connection() {
    let t0 = Instant::now();
    let mut s = session("tcp://localhost:22", t0);
    assert_eq!(
        s.step(),
        Step::Resolve {
            host: "localhost",
            port: 22
        }
    );
    s.resolved(Ok(vec![sock("[::1]:22"), sock("127.0.0.1:22")]), at(t0, 3));
    assert_eq!(
        s.step(),
        Step::Race {
            addrs: &[sock("[::1]:22"), sock("127.0.0.1:22")],
            stagger: CONNECTION_ATTEMPT_DELAY
        }
    );
    s.raced(Ok(sock("127.0.0.1:22")), at(t0, 6));
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 6));
    assert!(o.success, "{o:?}");
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:22"), "the winner");
    assert_eq!(o.phases.resolve, msf(3));
    // The whole race counts as connect time.
    assert_eq!(o.phases.connect, msf(3));
}

#[test]
fn the_race_winner_carries_the_request_by_name() {
    let t0 = Instant::now();
    let mut s = session("http://localhost:8080/ok", t0);
    s.resolved(
        Ok(vec![sock("127.0.0.1:8080"), sock("127.0.0.2:8080")]),
        at(t0, 1),
    );
    s.raced(Ok(sock("127.0.0.2:8080")), at(t0, 3));
    let req = String::from_utf8(drain(&mut s, at(t0, 3))).unwrap();
    // The Host header names the host, not the address.
    assert!(
        req.to_ascii_lowercase()
            .contains("\r\nhost: localhost:8080\r\n"),
        "{req}"
    );
    feed(&mut s, OK_5, at(t0, 5));
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 5));
    assert!(o.success, "{o:?}");
    assert_eq!(o.address.as_deref(), Some("127.0.0.2:8080"));
    assert_eq!(o.phases.resolve, msf(1));
    assert_eq!(o.phases.connect, msf(2));
    assert_eq!(o.phases.processing, msf(2));
    assert_eq!(o.phases.transfer, msf(0));
}

#[test]
fn a_lost_race_reports_the_first_attempts_error() {
    let t0 = Instant::now();
    let mut s = session("tcp://localhost:22", t0);
    s.resolved(Ok(vec![sock("[::1]:22"), sock("127.0.0.1:22")]), at(t0, 1));
    s.raced(
        Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
        at(t0, 5),
    );
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 5));
    assert_eq!(error_kind(&o), Some(ErrorKind::Refused));
    assert_eq!(
        message(&o),
        "connect to [::1]:22 and 1 more address (raced): connection refused"
    );
    assert_eq!(o.address.as_deref(), Some("[::1]:22"));
    assert_eq!(o.phases.connect, msf(4));
}

#[test]
fn the_race_alternates_families_starting_with_the_first() {
    let t0 = Instant::now();
    let v6a = sock("[::1]:22");
    let v6b = sock("[::2]:22");
    let v4a = sock("127.0.0.1:22");
    let v4b = sock("127.0.0.2:22");
    let mut s = session("tcp://localhost:22", t0);
    s.resolved(Ok(vec![v6a, v6b, v4a, v4b]), t0);
    let Step::Race { addrs, .. } = s.step() else {
        panic!("{:?}", s.step())
    };
    assert_eq!(addrs, [v6a, v4a, v6b, v4b]);
    let mut s = session("tcp://localhost:22", t0).with_preferred_ip(IpFamily::V4);
    s.resolved(Ok(vec![v6a, v6b, v4a]), t0);
    let Step::Race { addrs, .. } = s.step() else {
        panic!("{:?}", s.step())
    };
    assert_eq!(addrs, [v4a, v6a, v6b], "--ip 4 puts IPv4 first");
}

#[test]
fn connect_errors_are_classified() {
    let cases = [
        (io::ErrorKind::TimedOut, ErrorKind::Timeout),
        (io::ErrorKind::PermissionDenied, ErrorKind::Permission),
        (io::ErrorKind::ConnectionReset, ErrorKind::Reset),
        (io::ErrorKind::AddrNotAvailable, ErrorKind::Io),
    ];
    for (io_kind, kind) in cases {
        let t0 = Instant::now();
        let mut s = session("tcp://127.0.0.1:22", t0);
        s.connected(Err(io::Error::from(io_kind)), at(t0, 1));
        let o = s.finish(at(t0, 1));
        assert_eq!(error_kind(&o), Some(kind), "{io_kind:?}");
        assert!(message(&o).starts_with("connect to 127.0.0.1:22: "));
    }
}

// -------------------------------------------------------------------- dns --

#[test]
fn dns_error_is_dns() {
    let t0 = Instant::now();
    let mut s = session("http://example.test:8080/ok", t0);
    s.resolved(Err(io::Error::other("no such host")), at(t0, 7));
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 7));
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Dns));
    assert_eq!(message(&o), "resolve example.test: no such host");
    assert_eq!(o.phases.resolve, msf(7));
    assert_eq!(o.phases.connect, None);
    assert_eq!(o.address, None);
    assert_eq!(http(&o).status_code, None);
}

#[test]
fn empty_address_list_is_dns() {
    let t0 = Instant::now();
    let mut s = session("tcp://example.test:22", t0);
    s.resolved(Ok(Vec::new()), at(t0, 2));
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 2));
    assert_eq!(error_kind(&o), Some(ErrorKind::Dns));
    assert_eq!(message(&o), "example.test: name has no addresses");
    assert_eq!(o.phases.resolve, msf(2));
}

// ------------------------------------------------------------------- http --

#[test]
fn http_200_with_content_length() {
    let r = run("http://127.0.0.1:8080/ok", DEFAULT_BODY_CAP, &[OK_5]);
    let o = &r.outcome;
    assert!(o.success, "{o:?}");
    assert_eq!(o.error, None);
    // The body's length says the response is complete: no EOF needed, and
    // since the server has not closed yet, we close with a reset.
    assert!(!r.saw_eof);
    assert!(r.reset);
    assert_eq!(
        http(o),
        &HttpDetails {
            status_code: Some(200),
            version: Some("HTTP/1.1".into()),
            redirects: 0,
            body_bytes: 5,
            body_truncated: false,
            tls_version: None,
            certificate: None,
            final_url: None,
        }
    );
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(o.duration, Duration::from_millis(10));
    assert_eq!(o.phases.resolve, msf(0));
    assert_eq!(o.phases.connect, msf(2));
    assert_eq!(o.phases.tls, None);
    assert_eq!(o.phases.processing, msf(8));
    assert_eq!(o.phases.transfer, msf(0));
    assert_eq!(o.phases.rtt, None);
    assert_eq!(o.icmp, None);
}

#[test]
fn phase_times_follow_the_reads() {
    // Head at 10 ms, body in two more reads at 20 and 30 ms.
    let r = run(
        "http://127.0.0.1:8080/ok",
        DEFAULT_BODY_CAP,
        &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            b"he",
            b"llo",
        ],
    );
    let o = &r.outcome;
    assert!(o.success, "{o:?}");
    assert_eq!(r.fed, 3);
    assert_eq!(o.phases.processing, msf(8));
    assert_eq!(o.phases.transfer, msf(20));
    assert_eq!(o.duration, Duration::from_millis(30));
    assert_close(phase_sum(o), 30.0);
}

#[test]
fn content_length_result_does_not_depend_on_chunking() {
    let o = assert_split_independent("http://127.0.0.1:8080/ok", OK_5);
    assert!(o.success);
    assert_eq!(http(&o).body_bytes, 5);
}

#[test]
fn bytes_after_the_body_are_ignored() {
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA BYTES"],
    );
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).body_bytes, 2);
    assert!(!http(&o).body_truncated);
}

const CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

#[test]
fn chunked_body() {
    let r = run(
        "http://127.0.0.1:8080/ok contains=\"hello world\"",
        DEFAULT_BODY_CAP,
        &[CHUNKED],
    );
    assert!(r.outcome.success, "{:?}", r.outcome);
    assert!(!r.saw_eof, "the last chunk ends the body");
    assert_eq!(http(&r.outcome).body_bytes, 11);
    assert!(!http(&r.outcome).body_truncated);
}

#[test]
fn chunked_body_split_inside_chunk_data() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let r = run(
        "http://127.0.0.1:8080/ok contains=\"hello world\"",
        DEFAULT_BODY_CAP,
        &[head, b"5\r\nhel", b"lo\r\n6\r\n wo", b"rld\r\n0\r\n\r\n"],
    );
    assert!(r.outcome.success, "{:?}", r.outcome);
    assert_eq!(r.fed, 4);
    assert_eq!(http(&r.outcome).body_bytes, 11);
}

#[test]
fn chunked_body_with_trailer() {
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"],
    );
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).body_bytes, 2);
}

#[test]
fn bad_chunk_size_is_protocol() {
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"],
    );
    assert_eq!(error_kind(&o), Some(ErrorKind::Protocol));
    assert!(message(&o).starts_with("bad response body"), "{o:?}");
}

/// ureq-proto's dechunker does not buffer a partial chunk-size line or a
/// partial CRLF: it answers `(0, 0)` and expects the caller to offer those
/// bytes again with more. `http_input` treats `(0, 0)` as "the body ended"
/// and drops them, so a chunked body split inside `5\r\n`, inside the CRLF
/// after a chunk, or inside `0\r\n\r\n` fails (Protocol or Reset) depending
/// only on where the TCP reads happened to cut.
#[test]

fn chunked_body_does_not_depend_on_chunking() {
    let o = assert_split_independent("http://127.0.0.1:8080/ok contains=\"hello world\"", CHUNKED);
    assert!(o.success);
}

/// The smallest case of the bug above, for the report.
#[test]

fn chunked_body_split_inside_chunk_size_line() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[head, b"5\r", b"\nhello\r\n0\r\n\r\n"],
    );
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).body_bytes, 5);
}

#[test]
fn close_delimited_http10_body_ends_at_eof() {
    let resp: &[u8] = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nhello";
    let r = run("http://127.0.0.1:8080/ok", DEFAULT_BODY_CAP, &[resp]);
    let o = &r.outcome;
    assert!(o.success, "{o:?}");
    assert!(r.saw_eof, "only the EOF ends a close-delimited body");
    // The server closed first: a normal close, no reset.
    assert!(!r.reset);
    assert_eq!(http(o).version.as_deref(), Some("HTTP/1.0"));
    assert_eq!(http(o).body_bytes, 5);
    // First byte at 10 ms, EOF at 20 ms.
    assert_eq!(o.phases.processing, msf(8));
    assert_eq!(o.phases.transfer, msf(10));
    assert_eq!(o.duration, Duration::from_millis(20));
    let split = assert_split_independent("http://127.0.0.1:8080/ok", resp);
    assert_eq!(essence(&split), essence(o));
}

#[test]
fn close_delimited_http11_body_without_length() {
    let o = exchange(
        "http://127.0.0.1:8080/ok matches=\"^hel+o$\"",
        &[b"HTTP/1.1 200 OK\r\n\r\nhel", b"lo"],
    );
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).body_bytes, 5);
}

#[test]
fn responses_without_a_body_finish_at_the_head() {
    for resp in [
        &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\n\r\n",
    ] {
        let r = run(
            "http://127.0.0.1:8080/ok expect=200-399",
            DEFAULT_BODY_CAP,
            &[resp],
        );
        assert!(r.outcome.success, "{:?}", r.outcome);
        assert!(!r.saw_eof, "{}", String::from_utf8_lossy(resp));
        assert_eq!(http(&r.outcome).body_bytes, 0);
    }
}

#[test]
fn informational_responses_are_skipped() {
    let resp: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let o = assert_split_independent("http://127.0.0.1:8080/ok", resp);
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).status_code, Some(200));
    assert_eq!(http(&o).body_bytes, 2);
}

// ----------------------------------------------------------------- checks --

#[test]
fn status_503_fails_the_default_expect() {
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"],
    );
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Status));
    assert_eq!(message(&o), "status 503, expected 200-299");
    assert_eq!(http(&o).status_code, Some(503));
    assert_eq!(http(&o).body_bytes, 4);
}

#[test]
fn expect_range_makes_503_a_success() {
    let o = exchange(
        "http://127.0.0.1:8080/ok expect=500-599",
        &[b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"],
    );
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).status_code, Some(503));
    // ...and the default 200 is then a failure.
    let o = exchange("http://127.0.0.1:8080/ok expect=500-599", &[OK_5]);
    assert_eq!(error_kind(&o), Some(ErrorKind::Status));
    assert_eq!(message(&o), "status 200, expected 500-599");
}

#[test]
fn contains_success_and_failure() {
    let o = exchange("http://127.0.0.1:8080/ok contains=\"ell\"", &[OK_5]);
    assert!(o.success, "{o:?}");
    let o = exchange("http://127.0.0.1:8080/ok contains=\"bye\"", &[OK_5]);
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Body));
    assert_eq!(message(&o), "body does not contain \"bye\"");
    // The status is checked first.
    let o = exchange(
        "http://127.0.0.1:8080/ok contains=\"bye\"",
        &[b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"],
    );
    assert_eq!(error_kind(&o), Some(ErrorKind::Status));
}

#[test]
fn contains_finds_a_needle_cut_between_reads() {
    let o = assert_split_independent("http://127.0.0.1:8080/ok contains=\"hello\"", OK_5);
    assert!(o.success, "{o:?}");
}

#[test]
fn matches_success_and_failure() {
    let o = exchange("http://127.0.0.1:8080/ok matches=\"^h.l+o$\"", &[OK_5]);
    assert!(o.success, "{o:?}");
    let o = exchange("http://127.0.0.1:8080/ok matches=\"^bye\"", &[OK_5]);
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Body));
    assert_eq!(message(&o), "body does not match /^bye/");
}

// --------------------------------------------------------------- body cap --

#[test]
fn body_cap_truncates_and_stops_without_eof() {
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    resp.extend_from_slice(&[b'x'; 100]);
    let r = run("http://127.0.0.1:8080/ok", 10, &[&resp]);
    assert!(r.outcome.success, "{:?}", r.outcome);
    assert!(!r.saw_eof);
    assert!(r.reset, "we stop first: reset, no TIME_WAIT");
    assert!(http(&r.outcome).body_truncated);
    assert_eq!(http(&r.outcome).body_bytes, 10);

    // Fed in 4-byte pieces after the head, it stops at the third piece
    // (12 bytes offered > cap 10), long before the 100 bytes or the EOF.
    let (head, body) = resp.split_at(resp.len() - 100);
    let mut pieces = vec![head];
    pieces.extend(body.chunks(4));
    let r = run("http://127.0.0.1:8080/ok", 10, &pieces);
    assert!(r.outcome.success, "{:?}", r.outcome);
    assert_eq!(r.fed, 4);
    assert!(!r.saw_eof);
    assert!(http(&r.outcome).body_truncated);
    assert_eq!(http(&r.outcome).body_bytes, 10);
    // Transfer ends when the cap is hit: first byte 10 ms, third piece 40 ms.
    assert_eq!(r.outcome.phases.transfer, msf(30));
}

#[test]
fn body_cap_on_a_close_delimited_body_stops_without_eof() {
    let r = run(
        "http://127.0.0.1:8080/ok",
        8,
        &[b"HTTP/1.0 200 OK\r\n\r\n", &[b'y'; 20]],
    );
    assert!(r.outcome.success, "{:?}", r.outcome);
    assert!(!r.saw_eof);
    assert!(http(&r.outcome).body_truncated);
    assert_eq!(http(&r.outcome).body_bytes, 8);
}

#[test]
fn body_exactly_at_the_cap_is_not_truncated() {
    let r = run("http://127.0.0.1:8080/ok", 5, &[OK_5]);
    assert!(r.outcome.success, "{:?}", r.outcome);
    assert!(!http(&r.outcome).body_truncated);
    assert_eq!(http(&r.outcome).body_bytes, 5);
}

#[test]
fn content_check_past_the_cap_says_so() {
    let r = run("http://127.0.0.1:8080/ok contains=\"lo\"", 4, &[OK_5]);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Body));
    assert_eq!(
        message(&r.outcome),
        "body does not contain \"lo\" (in the first 4 bytes)"
    );
    assert!(http(&r.outcome).body_truncated);
    // Within the cap, the check passes.
    let r = run("http://127.0.0.1:8080/ok contains=\"hell\"", 4, &[OK_5]);
    assert!(r.outcome.success, "{:?}", r.outcome);
}

#[test]
fn body_is_not_kept_without_a_content_check() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    drain(&mut s, t0);
    feed(&mut s, OK_5, t0);
    let h = s.http.as_deref().unwrap();
    assert!(h.body.is_empty());
    assert_eq!(h.body_bytes, 5);
}

// ------------------------------------------------------ broken responses --

#[test]
fn garbage_is_protocol() {
    let r = run(
        "http://127.0.0.1:8080/ok",
        DEFAULT_BODY_CAP,
        &[b"SSH-2.0-OpenSSH_9.6\r\n"],
    );
    assert!(!r.saw_eof, "garbage is recognised at once");
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Protocol));
    assert!(
        message(&r.outcome).starts_with("not an HTTP response"),
        "{:?}",
        r.outcome
    );
    assert_eq!(http(&r.outcome).status_code, None);
}

#[test]
fn eof_before_any_byte_is_reset() {
    let r = run("http://127.0.0.1:8080/ok", DEFAULT_BODY_CAP, &[]);
    assert!(r.saw_eof);
    assert!(!r.reset);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Reset));
    assert_eq!(message(&r.outcome), "connection closed before any response");
    // The wait for the response (connected at 2 ms, EOF at 10 ms) is counted.
    assert_eq!(r.outcome.phases.processing, Some(8.0));
}

#[test]
fn eof_mid_headers_is_protocol() {
    let r = run(
        "http://127.0.0.1:8080/ok",
        DEFAULT_BODY_CAP,
        &[b"HTTP/1.1 200 OK\r\nContent-Le"],
    );
    assert!(r.saw_eof);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Protocol));
    assert_eq!(
        message(&r.outcome),
        "connection closed inside the response head (27 bytes, no complete header)"
    );
}

#[test]
fn eof_mid_body_is_reset() {
    let r = run(
        "http://127.0.0.1:8080/ok",
        DEFAULT_BODY_CAP,
        &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            b"1234567",
        ],
    );
    assert!(r.saw_eof);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Reset));
    assert_eq!(
        message(&r.outcome),
        "connection closed after 7 body bytes, before the end of the body"
    );
    assert_eq!(http(&r.outcome).status_code, Some(200));
    assert_eq!(http(&r.outcome).body_bytes, 7);
}

#[test]
fn eof_after_last_chunk_size_but_before_final_crlf_is_reset() {
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"],
    );
    assert_eq!(error_kind(&o), Some(ErrorKind::Reset), "{o:?}");
}

#[test]
fn connection_reset_on_read_names_what_was_going_on() {
    let reset = || Err(io::Error::from(io::ErrorKind::ConnectionReset));
    let cases: [(&[u8], &str); 3] = [
        (b"", "connection reset while waiting for the response"),
        (
            b"HTTP/1.1 200 OK\r\n",
            "connection reset while reading the response headers",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n1234567",
            "connection reset while reading the body (7 bytes so far)",
        ),
    ];
    for (before, want) in cases {
        let t0 = Instant::now();
        let mut s = session("http://127.0.0.1:8080/ok", t0);
        connect(&mut s, "127.0.0.1:8080", at(t0, 1));
        drain(&mut s, at(t0, 1));
        if !before.is_empty() {
            feed(&mut s, before, at(t0, 2));
        }
        assert_eq!(s.step(), Step::Read);
        s.received(reset(), at(t0, 3));
        assert_eq!(s.step(), Step::Done);
        let o = s.finish(at(t0, 3));
        assert_eq!(error_kind(&o), Some(ErrorKind::Reset));
        assert_eq!(message(&o), want);
    }
}

#[test]
fn endless_headers_fail_without_waiting_for_eof() {
    // 70 header lines of 1 KiB each, fed one line per read.
    let mut lines: Vec<Vec<u8>> = vec![b"HTTP/1.1 200 OK\r\n".to_vec()];
    for i in 0..70 {
        let mut line = format!("x-pad-{i:02}: ").into_bytes();
        line.resize(1022, b'a');
        line.extend_from_slice(b"\r\n");
        lines.push(line);
    }
    let pieces: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let r = run("http://127.0.0.1:8080/ok", DEFAULT_BODY_CAP, &pieces);
    assert!(!r.saw_eof);
    assert!(r.fed < pieces.len(), "stopped at the limit, not at the end");
    assert_eq!(r.fed, 1 + 64, "the read that crosses 64 KiB ends it");
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Protocol));
    assert_eq!(message(&r.outcome), "response headers exceed 64 KiB");
}

#[test]
fn one_endless_header_line_fails_without_waiting_for_eof() {
    let mut head = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    head.resize(70 * 1024, b'b');
    let pieces: Vec<&[u8]> = head.chunks(4096).collect();
    let r = run("http://127.0.0.1:8080/ok", DEFAULT_BODY_CAP, &pieces);
    assert!(!r.saw_eof);
    assert!(r.fed < pieces.len());
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Protocol));
    assert!(message(&r.outcome).contains("exceed"), "{:?}", r.outcome);
}

#[test]
fn many_short_header_lines_fail_early_too() {
    // Short lines trip ureq-proto's header count (128) long before 64 KiB.
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    while head.len() < 70 * 1024 {
        head.extend_from_slice(b"x: y\r\n");
    }
    let pieces: Vec<&[u8]> = head.chunks(1024).collect();
    let r = run("http://127.0.0.1:8080/ok", DEFAULT_BODY_CAP, &pieces);
    assert!(!r.saw_eof);
    assert!(r.fed <= 2, "fed {}", r.fed);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Protocol));
    assert!(
        message(&r.outcome).starts_with("not an HTTP response"),
        "{:?}",
        r.outcome
    );
}

// -------------------------------------------------------------- redirects --

/// Answers the current request with `resp` at `now` (the session must be
/// connected and have written its request); returns the request text.
fn answer(s: &mut Session, resp: &[u8], now: Instant) -> String {
    let req = String::from_utf8(drain(s, now)).unwrap();
    feed(s, resp, now);
    req
}

#[test]
fn relative_redirects_reconnect_and_count() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/a/b", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 2));
    let req = answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 3\r\n\r\nbye",
        at(t0, 10),
    );
    assert!(req.starts_with("GET /a/b HTTP/1.1\r\n"));
    // A fresh connection for the next hop, same address.
    connect(&mut s, "127.0.0.1:8080", at(t0, 15));
    let req = answer(
        &mut s,
        b"HTTP/1.1 301 Moved\r\nLocation: c?d=1\r\nContent-Length: 0\r\n\r\n",
        at(t0, 20),
    );
    assert!(req.starts_with("GET /next HTTP/1.1\r\n"), "{req}");
    connect(&mut s, "127.0.0.1:8080", at(t0, 21));
    let req = answer(&mut s, OK_5, at(t0, 30));
    assert!(req.starts_with("GET /c?d=1 HTTP/1.1\r\n"), "{req}");
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 30));
    assert!(o.success, "{o:?}");
    let h = http(&o);
    assert_eq!(h.redirects, 2);
    assert_eq!(h.status_code, Some(200));
    assert_eq!(h.body_bytes, 5);
    assert_eq!(h.final_url.as_deref(), Some("http://127.0.0.1:8080/c?d=1"));
    // Phases add up over the hops: connect 2+5+1, processing 8+5+9.
    assert_eq!(o.phases.resolve, msf(0));
    assert_eq!(o.phases.connect, msf(8));
    assert_eq!(o.phases.processing, msf(22));
    assert_eq!(o.phases.transfer, msf(0));
    assert_eq!(o.duration, Duration::from_millis(30));
    assert_close(phase_sum(&o), 30.0);
}

#[test]
fn absolute_redirect_to_another_port() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9090/there\r\n\r\n",
        at(t0, 1),
    );
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:9090")));
    s.connected(Ok(()), at(t0, 2));
    let req = answer(&mut s, OK_5, at(t0, 3));
    assert!(req.starts_with("GET /there HTTP/1.1\r\n"), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains("\r\nhost: 127.0.0.1:9090\r\n"),
        "{req}"
    );
    let o = s.finish(at(t0, 3));
    assert!(o.success, "{o:?}");
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:9090"));
    assert_eq!(http(&o).redirects, 1);
    assert_eq!(
        http(&o).final_url.as_deref(),
        Some("http://127.0.0.1:9090/there")
    );
}

#[test]
fn redirect_to_a_name_resolves_it() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: http://localhost:9090/x\r\n\r\n",
        at(t0, 1),
    );
    assert_eq!(
        s.step(),
        Step::Resolve {
            host: "localhost",
            port: 9090
        }
    );
    s.resolved(Ok(vec![sock("127.0.0.1:9090")]), at(t0, 4));
    connect(&mut s, "127.0.0.1:9090", at(t0, 5));
    answer(&mut s, OK_5, at(t0, 6));
    let o = s.finish(at(t0, 6));
    assert!(o.success, "{o:?}");
    assert_eq!(o.phases.resolve, msf(3));
}

#[test]
fn redirect_to_an_ipv6_literal_strips_brackets() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: http://[::1]:9090/x\r\n\r\n",
        t0,
    );
    assert_eq!(s.step(), Step::Connect(sock("[::1]:9090")));
}

#[test]
fn redirect_to_https_starts_tls() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 301 Moved\r\nLocation: https://127.0.0.1/ok\r\n\r\n",
        t0,
    );
    connect(&mut s, "127.0.0.1:443", t0);
    let Step::Write(hello) = s.step() else {
        panic!("expected a ClientHello")
    };
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
}

#[test]
fn redirect_limit_reports_the_last_status() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/loop redirects=2", t0);
    let mut hops = 0;
    loop {
        match s.step() {
            Step::Connect(addr) => {
                assert_eq!(addr, sock("127.0.0.1:8080"));
                s.connected(Ok(()), t0);
            }
            Step::Write(_) => {
                drain(&mut s, t0);
            }
            Step::Read => {
                hops += 1;
                assert!(hops <= 3, "the session must stop following");
                s.received(
                    Ok(b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"),
                    t0,
                );
            }
            Step::Done => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(hops, 3);
    let o = s.finish(t0);
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Status));
    assert!(message(&o).contains("limit 2"), "{o:?}");
    assert_eq!(
        message(&o),
        "status 302 after 2 redirects (limit 2), expected 200-299"
    );
    assert_eq!(http(&o).redirects, 2);
    assert_eq!(http(&o).status_code, Some(302));
    assert_eq!(
        http(&o).final_url.as_deref(),
        Some("http://127.0.0.1:8080/loop")
    );
}

#[test]
fn redirects_zero_with_expect_302_is_a_success() {
    let r = run(
        "http://127.0.0.1:8080/ok redirects=0 expect=302",
        DEFAULT_BODY_CAP,
        &[b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 3\r\n\r\nbye"],
    );
    let o = &r.outcome;
    assert!(o.success, "{o:?}");
    assert!(!r.saw_eof);
    assert_eq!(http(o).status_code, Some(302));
    assert_eq!(http(o).redirects, 0);
    assert_eq!(http(o).final_url, None);
    assert_eq!(http(o).body_bytes, 3);
    // Only one request went out.
    assert_eq!(
        String::from_utf8_lossy(&r.request).matches("GET ").count(),
        1
    );
}

#[test]
fn redirect_without_location_is_the_final_response() {
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"],
    );
    assert_eq!(error_kind(&o), Some(ErrorKind::Status));
    assert_eq!(message(&o), "status 302, expected 200-299");
    assert_eq!(http(&o).redirects, 0);
}

#[test]
fn redirect_to_an_unusable_location_is_protocol() {
    let o = exchange(
        "http://127.0.0.1:8080/ok",
        &[b"HTTP/1.1 302 Found\r\nLocation: ftp://files.test/x\r\n\r\n"],
    );
    assert_eq!(error_kind(&o), Some(ErrorKind::Protocol));
    assert!(
        message(&o).starts_with("redirect to an unusable location"),
        "{o:?}"
    );
}

/// A `Location` with a scheme other than http(s) (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`, then `:`), or one that does not parse,
/// names nothing pulse can fetch: the probe ends as `protocol` with the one
/// request it sent, instead of asking the same server for
/// `GET /file:///etc/passwd`.
#[test]
fn redirect_to_a_non_http_scheme_is_protocol_and_sends_nothing_more() {
    for location in [
        "file:///etc/passwd",
        "mailto:x@y",
        "javascript:alert(1)",
        "http://[::1",
        "foo:bar",
        "FILE:///etc/passwd",
        "a+b.c-d:x",
    ] {
        let t0 = Instant::now();
        let mut s = session("http://127.0.0.1:8080/a/b", t0);
        connect(&mut s, "127.0.0.1:8080", t0);
        let resp =
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
        let req = answer(&mut s, resp.as_bytes(), at(t0, 1));
        assert_eq!(req.matches("GET ").count(), 1, "{location}: {req}");
        assert_eq!(s.step(), Step::Done, "{location}: no second request");
        let o = s.finish(at(t0, 1));
        assert_eq!(
            error_kind(&o),
            Some(ErrorKind::Protocol),
            "{location}: {o:?}"
        );
        assert_eq!(
            message(&o),
            format!("redirect to an unusable location {location:?}"),
            "{location}"
        );
        assert_eq!(http(&o).redirects, 0, "{location}");
        assert_eq!(http(&o).status_code, Some(302), "{location}");
    }
}

/// A colon later in a relative reference is not a scheme: `/a:b` and
/// `./a:b` are paths on the same server (RFC 3986 §4.2).
#[test]
fn colons_in_relative_paths_are_still_paths() {
    let base = "http://127.0.0.1:8080/d/e";
    assert_eq!(
        joined(base, "/a:b").as_deref(),
        Some("http://127.0.0.1:8080/a:b")
    );
    assert_eq!(
        joined(base, "./a:b").as_deref(),
        Some("http://127.0.0.1:8080/d/a:b")
    );
    assert_eq!(
        joined(base, "x/a:b").as_deref(),
        Some("http://127.0.0.1:8080/d/x/a:b")
    );
    assert_eq!(joined(base, "file:///etc/passwd"), None);
    assert_eq!(joined(base, "mailto:x@y"), None);
    assert_eq!(joined(base, "http://[::1"), None);
}

/// A session with serve's policy: only the configured targets' hosts.
fn serve_session(text: &str, configured: &[&str], t0: Instant) -> Session {
    let targets: Vec<Target> = configured.iter().map(|t| target(t)).collect();
    session(text, t0).with_redirects(crate::redirect::RedirectPolicy::configured(&targets, &[]))
}

/// Under serve's policy, a hop to a host and port that no configured target
/// names is refused before any connection: the probe ends as `protocol`
/// with the one request it sent, and says how to allow the hop.
#[test]
fn a_refused_hop_is_protocol_and_never_a_connection() {
    let t0 = Instant::now();
    let origin = "http://127.0.0.1:8080/a";
    let mut s = serve_session(origin, &[origin, "http://127.0.0.1:7070/"], t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9090/other\r\nContent-Length: 0\r\n\r\n",
        at(t0, 1),
    );
    assert_eq!(s.step(), Step::Done, "no connection to the refused hop");
    let o = s.finish(at(t0, 1));
    assert_eq!(error_kind(&o), Some(ErrorKind::Protocol), "{o:?}");
    assert_eq!(
        message(&o),
        "redirect to http://127.0.0.1:9090/other refused: not a configured target (pulse serve \
         follows redirects only to the hosts and ports of its configured targets; allow more \
         with --allow-redirect-host HOST[:PORT] or --allow-any-redirect)"
    );
    assert_eq!(http(&o).redirects, 0);
    assert_eq!(http(&o).status_code, Some(302));
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:8080"));
}

/// Under serve's policy, a hop to the same server, then to another
/// configured target, is followed; a later hop is still checked against the
/// probe's own target and the list, not against the hop before it.
#[test]
fn allowed_hops_are_followed_and_each_hop_is_checked() {
    let t0 = Instant::now();
    let origin = "http://127.0.0.1:8080/a";
    let mut s = serve_session(origin, &[origin, "http://127.0.0.1:7070/"], t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
        t0,
    );
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:7070/c\r\nContent-Length: 0\r\n\r\n",
        t0,
    );
    connect(&mut s, "127.0.0.1:7070", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: //127.0.0.1:9090/d\r\nContent-Length: 0\r\n\r\n",
        t0,
    );
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(t0);
    assert_eq!(error_kind(&o), Some(ErrorKind::Protocol), "{o:?}");
    assert!(message(&o).starts_with("redirect to http://127.0.0.1:9090/d refused"));
    assert_eq!(http(&o).redirects, 2);
}

/// Credentials in the target are sent as Basic auth on every hop to the
/// same server, and never on the wire as text; `final_url` shows the user
/// but not the password.
#[test]
fn credentials_are_sent_but_final_url_hides_the_password() {
    let t0 = Instant::now();
    let mut s = session("http://user:s3cret@127.0.0.1:8080/a", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    let first = answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n",
        t0,
    );
    connect(&mut s, "127.0.0.1:8080", t0);
    let second = answer(&mut s, OK_5, t0);
    for req in [&first, &second] {
        let lower = req.to_ascii_lowercase();
        // base64("user:s3cret")
        assert!(
            lower.contains("\r\nauthorization: basic dxnlcjpzm2nyzxq=\r\n"),
            "{req}"
        );
        assert!(!req.contains("s3cret"), "{req}");
    }
    let o = s.finish(t0);
    assert!(o.success, "{o:?}");
    assert_eq!(
        http(&o).final_url.as_deref(),
        Some("http://user:<redacted>@127.0.0.1:8080/ok")
    );
}

/// A refused or unusable hop's message never shows a password either.
#[test]
fn redirect_messages_hide_passwords() {
    let t0 = Instant::now();
    let origin = "http://127.0.0.1:8080/a";
    let mut s = serve_session(origin, &[origin], t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: http://u:pw@127.0.0.1:9090/x\r\n\r\n",
        t0,
    );
    let o = s.finish(t0);
    assert!(
        message(&o).starts_with("redirect to http://u:<redacted>@127.0.0.1:9090/x refused"),
        "{o:?}"
    );
    let o = exchange(
        origin,
        &[b"HTTP/1.1 302 Found\r\nLocation: http://u:pw@[::1\r\n\r\n"],
    );
    assert_eq!(
        message(&o),
        "redirect to an unusable location \"http://u:<redacted>@[::1\""
    );
}

// --------------------------------------------------- timeouts and cancels --

#[test]
fn timeout_while_resolving() {
    let t0 = Instant::now();
    let s = session("http://example.test/ok", t0);
    let o = s.timed_out(at(t0, 2000), Duration::from_secs(2));
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Timeout));
    assert_eq!(
        message(&o),
        "timed out after 2s while resolving example.test"
    );
    assert_eq!(o.phases.resolve, msf(2000));
    assert_eq!(o.phases.connect, None);
    assert_eq!(o.duration, Duration::from_secs(2));
}

#[test]
fn timeout_while_connecting() {
    let t0 = Instant::now();
    let s = session("http://127.0.0.1:8080/ok", t0);
    let o = s.timed_out(at(t0, 5000), Duration::from_secs(5));
    assert_eq!(error_kind(&o), Some(ErrorKind::Timeout));
    assert_eq!(
        message(&o),
        "timed out after 5s while connecting to 127.0.0.1:8080"
    );
    assert_eq!(o.phases.resolve, msf(0));
    assert_eq!(o.phases.connect, msf(5000));
    assert_eq!(o.phases.processing, None);
    assert_eq!(o.address, None, "no connection was made");
}

#[test]
fn timeout_while_racing_the_addresses() {
    let t0 = Instant::now();
    let mut s = session("tcp://localhost:22", t0);
    s.resolved(Ok(vec![sock("[::1]:22"), sock("127.0.0.1:22")]), at(t0, 1));
    let o = s.timed_out(at(t0, 250), Duration::from_millis(250));
    assert_eq!(
        message(&o),
        "timed out after 250ms while connecting to [::1]:22 and 1 more address (raced)"
    );
    assert_eq!(o.phases.connect, msf(249));
}

#[test]
fn timeout_waiting_for_the_response() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 3));
    drain(&mut s, at(t0, 4));
    let o = s.timed_out(at(t0, 2000), Duration::from_secs(2));
    assert_eq!(error_kind(&o), Some(ErrorKind::Timeout));
    assert_eq!(
        message(&o),
        "timed out after 2s while waiting for the response"
    );
    assert_eq!(o.phases.connect, msf(3));
    assert_eq!(o.phases.processing, msf(1997));
    assert_eq!(o.phases.transfer, None);
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:8080"));
    assert_close(phase_sum(&o), 2000.0);
}

#[test]
fn timeout_reading_the_headers() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 3));
    drain(&mut s, at(t0, 3));
    feed(&mut s, b"HTTP/1.1 200 OK\r\nX-Slow: 1\r\n", at(t0, 10));
    let o = s.timed_out(at(t0, 1000), Duration::from_secs(1));
    assert_eq!(
        message(&o),
        "timed out after 1s while reading the response headers"
    );
    assert_eq!(o.phases.processing, msf(7));
    assert_eq!(o.phases.transfer, msf(990));
    assert_eq!(http(&o).status_code, None);
}

#[test]
fn timeout_reading_the_body() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 3));
    drain(&mut s, at(t0, 3));
    feed(
        &mut s,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n1234567",
        at(t0, 10),
    );
    // A server dripping bytes does not move the deadline.
    feed(&mut s, b"8", at(t0, 900));
    let o = s.timed_out(at(t0, 1000), Duration::from_secs(1));
    assert_eq!(error_kind(&o), Some(ErrorKind::Timeout));
    assert_eq!(
        message(&o),
        "timed out after 1s while reading the body (8 bytes so far)"
    );
    assert_eq!(o.phases.processing, msf(7));
    assert_eq!(o.phases.transfer, msf(990));
    assert_eq!(http(&o).status_code, Some(200));
    assert_eq!(http(&o).body_bytes, 8);
    assert_close(phase_sum(&o), 1000.0);
}

#[test]
fn timeout_in_the_tls_handshake() {
    let t0 = Instant::now();
    let mut s = session("https://127.0.0.1:8443/ok", t0);
    connect(&mut s, "127.0.0.1:8443", at(t0, 3));
    drain(&mut s, at(t0, 3));
    let o = s.timed_out(at(t0, 2000), Duration::from_secs(2));
    assert_eq!(message(&o), "timed out after 2s while in the TLS handshake");
    assert_eq!(o.phases.tls, msf(1997));
    assert_eq!(o.phases.processing, None);
}

#[test]
fn timeout_waiting_for_the_echo_reply() {
    let t0 = Instant::now();
    let s = session("icmp://127.0.0.1", t0);
    let o = s.timed_out(at(t0, 1000), Duration::from_secs(1));
    assert_eq!(error_kind(&o), Some(ErrorKind::Timeout));
    assert_eq!(
        message(&o),
        "timed out after 1s while waiting for the echo reply"
    );
    assert_eq!(o.phases.rtt, msf(1000));
    assert_eq!(o.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(o.icmp, Some(IcmpDetails::default()));
}

/// `fmt_duration` promises `1.5s` but trims zeros from a string that ends in
/// `s`, so a fractional timeout reads `1.500s` in every timeout message.
#[test]

fn timeout_message_with_a_fractional_limit() {
    let t0 = Instant::now();
    let s = session("http://127.0.0.1:8080/ok", t0);
    let o = s.timed_out(at(t0, 1500), Duration::from_millis(1500));
    assert_eq!(
        message(&o),
        "timed out after 1.5s while connecting to 127.0.0.1:8080"
    );
}

#[test]
fn cancelled_mid_exchange() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 3));
    drain(&mut s, at(t0, 3));
    let o = s.cancelled(at(t0, 50), "cancelled by shutdown (grace period over)");
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Cancelled));
    assert_eq!(message(&o), "cancelled by shutdown (grace period over)");
    assert_eq!(o.phases.processing, msf(47));
    assert_eq!(o.duration, Duration::from_millis(50));
}

#[test]
fn cancelled_while_resolving() {
    let t0 = Instant::now();
    let s = session("http://example.test/ok", t0);
    let o = s.cancelled(at(t0, 5), "interrupted");
    assert_eq!(error_kind(&o), Some(ErrorKind::Cancelled));
    assert_eq!(o.phases.resolve, msf(5));
    assert_eq!(o.address, None);
}

// ------------------------------------------------------------------- icmp --

#[test]
fn icmp_ping_success() {
    let t0 = Instant::now();
    let mut s = session("icmp://127.0.0.1", t0);
    assert_eq!(s.kind(), Kind::Icmp);
    assert_eq!(s.step(), Step::Ping("127.0.0.1".parse().unwrap()));
    s.pinged(
        Ok(Pong {
            sequence: 7,
            ttl: Some(64),
        }),
        at(t0, 3),
    );
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 3));
    assert!(o.success, "{o:?}");
    assert_eq!(o.phases.resolve, msf(0));
    assert_eq!(o.phases.rtt, msf(3));
    assert_eq!(o.phases.connect, None);
    assert_eq!(
        o.icmp,
        Some(IcmpDetails {
            sequence: 7,
            reply_ttl: Some(64),
            packets: None,
        })
    );
    assert_eq!(o.address.as_deref(), Some("127.0.0.1"), "an ip, no port");
    assert_eq!(o.http, None);
}

#[test]
fn bare_host_is_icmp_and_names_are_resolved() {
    let t0 = Instant::now();
    let s = session("127.0.0.1", t0);
    assert_eq!(s.step(), Step::Ping("127.0.0.1".parse().unwrap()));
    let mut s = session("icmp://localhost", t0);
    assert_eq!(
        s.step(),
        Step::Resolve {
            host: "localhost",
            port: 0
        }
    );
    s.resolved(Ok(vec![sock("[::1]:0"), sock("127.0.0.1:0")]), at(t0, 1));
    assert_eq!(s.step(), Step::Ping("::1".parse().unwrap()));
    s.pinged(
        Ok(Pong {
            sequence: 1,
            ttl: None,
        }),
        at(t0, 4),
    );
    let o = s.finish(at(t0, 4));
    assert!(o.success);
    assert_eq!(o.phases.resolve, msf(1));
    assert_eq!(o.phases.rtt, msf(3));
    assert_eq!(o.address.as_deref(), Some("::1"));
}

#[test]
fn icmp_errors_are_classified() {
    let t0 = Instant::now();
    let mut s = session("icmp://127.0.0.1", t0);
    s.pinged(
        Err(io::Error::from(io::ErrorKind::PermissionDenied)),
        at(t0, 1),
    );
    let o = s.finish(at(t0, 1));
    assert_eq!(error_kind(&o), Some(ErrorKind::Permission));
    assert_eq!(message(&o), "echo request: permission denied");
    assert_eq!(o.icmp, Some(IcmpDetails::default()));
}

// ---------------------------------------------------------- https (no peer) --

#[test]
fn https_first_write_is_a_client_hello() {
    let t0 = Instant::now();
    let mut s = session("https://127.0.0.1:8443/ok", t0);
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    let Step::Write(bytes) = s.step() else {
        panic!("expected a write, got {:?}", s.step())
    };
    assert_eq!(bytes[0], 0x16, "handshake record");
    assert_eq!(bytes[1], 0x03, "TLS record version");
    assert_eq!(bytes[5], 0x01, "ClientHello");
    let record_len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
    assert_eq!(bytes.len(), 5 + record_len, "exactly one record");
    // The request is not on the wire in clear.
    assert!(!bytes.windows(4).any(|w| w == b"GET "));
    drain(&mut s, at(t0, 1));
    assert_eq!(s.step(), Step::Read);
}

#[test]
fn https_to_a_plain_http_server_is_tls() {
    let t0 = Instant::now();
    let mut s = session("https://127.0.0.1:8443/ok", t0);
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    drain(&mut s, at(t0, 1));
    feed(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n", at(t0, 2));
    // The client says why it hangs up: one alert record (type 21), then done.
    match s.step() {
        Step::Write(alert) => assert_eq!(alert[0], 21, "TLS alert record"),
        other => panic!("expected the alert write, got {other:?}"),
    }
    drain(&mut s, at(t0, 2));
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 2));
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Tls));
    assert!(message(&o).starts_with("TLS handshake failed: "), "{o:?}");
    assert_eq!(http(&o).status_code, None);
    assert_eq!(http(&o).tls_version, None);
}

#[test]
fn https_eof_during_the_handshake_is_tls() {
    let t0 = Instant::now();
    let mut s = session("https://127.0.0.1:8443/ok", t0);
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    drain(&mut s, at(t0, 1));
    feed(&mut s, b"", at(t0, 2));
    assert_eq!(s.step(), Step::Done);
    assert!(!s.close_with_reset(), "the peer closed");
    let o = s.finish(at(t0, 2));
    assert_eq!(error_kind(&o), Some(ErrorKind::Tls));
    assert_eq!(message(&o), "connection closed during the TLS handshake");
}

#[test]
fn https_reset_during_the_handshake_is_reset() {
    let t0 = Instant::now();
    let mut s = session("https://127.0.0.1:8443/ok", t0);
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    drain(&mut s, at(t0, 1));
    s.received(
        Err(io::Error::from(io::ErrorKind::ConnectionReset)),
        at(t0, 2),
    );
    let o = s.finish(at(t0, 2));
    assert_eq!(error_kind(&o), Some(ErrorKind::Reset));
    assert_eq!(message(&o), "connection reset while in the TLS handshake");
}

#[test]
fn https_to_an_invalid_server_name_is_tls() {
    // A redirect can name a host http::Uri accepts but rustls cannot use as
    // a server name.
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/ok", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        b"HTTP/1.1 302 Found\r\nLocation: https://bad_name!/\r\n\r\n",
        t0,
    );
    assert_eq!(
        s.step(),
        Step::Resolve {
            host: "bad_name!",
            port: 443
        }
    );
    s.resolved(Ok(vec![sock("127.0.0.1:443")]), t0);
    connect(&mut s, "127.0.0.1:443", t0);
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(t0);
    assert_eq!(error_kind(&o), Some(ErrorKind::Tls), "{o:?}");
    assert!(
        message(&o).starts_with("bad_name! is not a valid TLS server name"),
        "{o:?}"
    );
}

/// `input` flushes the TLS alert rustls queues on a handshake failure into
/// `out` ("Tell the peer why (an alert), as a polite client does"), but
/// `fail` sets the state to Done and `step()` answers Done in that state
/// whatever `out` holds, so the alert is never offered to the model.
#[test]

fn https_handshake_failure_sends_the_alert() {
    let t0 = Instant::now();
    let mut s = session("https://127.0.0.1:8443/ok", t0);
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    drain(&mut s, at(t0, 1));
    feed(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n", at(t0, 2));
    // The alert is there...
    assert!(s.out_pos < s.out.len());
    assert_eq!(s.out[s.out_pos], 0x15, "an alert record");
    // ...and should be written before the session is done.
    let Step::Write(alert) = s.step() else {
        panic!("alert not offered: {:?}", s.step())
    };
    assert_eq!(alert[0], 0x15);
}

// ------------------------------------------------------- free functions --

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

fn joined(base: &str, location: &str) -> Option<String> {
    join_location(&uri(base), location).map(|u| u.to_string())
}

#[test]
fn join_location_cases() {
    let base = "http://127.0.0.1:8080/a/b?q=1";
    let j = |loc| joined(base, loc);
    assert_eq!(j("/x").as_deref(), Some("http://127.0.0.1:8080/x"));
    assert_eq!(j("  /x  ").as_deref(), Some("http://127.0.0.1:8080/x"));
    assert_eq!(j("c").as_deref(), Some("http://127.0.0.1:8080/a/c"));
    assert_eq!(
        j("c/d?e=f").as_deref(),
        Some("http://127.0.0.1:8080/a/c/d?e=f")
    );
    assert_eq!(j("//other:81/p").as_deref(), Some("http://other:81/p"));
    assert_eq!(
        j("https://example.test/p").as_deref(),
        Some("https://example.test/p")
    );
    assert_eq!(
        j("HTTP://example.test:81/").as_deref(),
        Some("http://example.test:81/")
    );
    // A fragment is never sent.
    assert_eq!(j("/x#frag").as_deref(), Some("http://127.0.0.1:8080/x"));
    // Only http(s) with an authority can be followed.
    assert_eq!(j("ftp://example.test/p"), None);
    // Relative to a base whose path is the root or has no slash.
    assert_eq!(
        joined("http://h/", "next").as_deref(),
        Some("http://h/next")
    );
    assert_eq!(
        joined("https://h:8443", "next").as_deref(),
        Some("https://h:8443/next")
    );
    // The scheme-relative form keeps the base's scheme.
    assert_eq!(
        joined("https://h/a", "//g/x").as_deref(),
        Some("https://g/x")
    );
}

/// A Location's `"`, space, backslash or non-ASCII text is sent encoded;
/// the base's own escapes are not encoded twice.
#[test]
fn join_location_percent_encodes_the_location() {
    let base = "http://127.0.0.1:8080/d%20e/f";
    assert_eq!(
        joined(base, "r/a b\"c\\é?q=<x>").as_deref(),
        Some("http://127.0.0.1:8080/d%20e/r/a%20b%22c%5C%C3%A9?q=%3Cx%3E")
    );
    assert_eq!(
        joined(base, "http://h/a b").as_deref(),
        Some("http://h/a%20b")
    );
    assert_eq!(
        joined(base, "/%41%zz").as_deref(),
        Some("http://127.0.0.1:8080/%41%25zz")
    );
}

/// A Location sent as raw UTF-8 (not the visible ASCII RFC 9110 asks for,
/// but servers do) is followed, encoded, rather than taken as no Location.
#[test]
fn a_raw_utf8_location_is_followed_encoded() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/a", t0);
    connect(&mut s, "127.0.0.1:8080", t0);
    answer(
        &mut s,
        "HTTP/1.1 302 Found\r\nLocation: /é\r\nContent-Length: 0\r\n\r\n".as_bytes(),
        t0,
    );
    connect(&mut s, "127.0.0.1:8080", t0);
    let req = answer(&mut s, OK_5, t0);
    assert!(req.starts_with("GET /%C3%A9 HTTP/1.1\r\n"), "{req}");
}

/// RFC 3986 §5.2.2: a reference with only a query keeps the base path
/// (`/a/b` + `?page=2` = `/a/b?page=2`), and §5.2.4: dot segments are
/// removed (`/a/b` + `../x` = `/x`). join_location appends both to the base
/// directory instead, so `Location: ?page=2` requests `/a/?page=2` and
/// `Location: ../x` requests `/a/../x` verbatim.
#[test]

fn join_location_follows_rfc3986_for_query_and_dot_segments() {
    let base = "http://127.0.0.1:8080/a/b?q=1";
    assert_eq!(
        joined(base, "?page=2").as_deref(),
        Some("http://127.0.0.1:8080/a/b?page=2")
    );
    assert_eq!(
        joined(base, "../x").as_deref(),
        Some("http://127.0.0.1:8080/x")
    );
    assert_eq!(
        joined(base, "./y").as_deref(),
        Some("http://127.0.0.1:8080/a/y")
    );
}

#[test]
fn host_of_strips_ipv6_brackets() {
    assert_eq!(host_of(&uri("http://[::1]:8080/")), "::1");
    assert_eq!(host_of(&uri("https://[2001:db8::1]/x")), "2001:db8::1");
    assert_eq!(host_of(&uri("http://127.0.0.1:8080/")), "127.0.0.1");
    assert_eq!(host_of(&uri("http://example.test/")), "example.test");
    assert_eq!(host_of(&uri("/relative")), "");
}

#[test]
fn port_of_defaults_by_scheme() {
    assert_eq!(port_of(&uri("http://h/")), 80);
    assert_eq!(port_of(&uri("https://h/")), 443);
    assert_eq!(port_of(&uri("http://h:8080/")), 8080);
    assert_eq!(port_of(&uri("https://h:80/")), 80);
    assert_eq!(port_of(&uri("http://[::1]:9/")), 9);
    assert_eq!(port_of(&uri("https://[::1]/")), 443);
}

#[test]
fn classify_io_maps_every_kind() {
    use io::ErrorKind as K;
    let cases = [
        (K::ConnectionRefused, ErrorKind::Refused),
        (K::ConnectionReset, ErrorKind::Reset),
        (K::ConnectionAborted, ErrorKind::Reset),
        (K::BrokenPipe, ErrorKind::Reset),
        (K::UnexpectedEof, ErrorKind::Reset),
        (K::TimedOut, ErrorKind::Timeout),
        (K::WouldBlock, ErrorKind::Timeout),
        (K::PermissionDenied, ErrorKind::Permission),
        (K::AddrInUse, ErrorKind::Io),
        (K::Other, ErrorKind::Io),
    ];
    for (io_kind, kind) in cases {
        let e = io::Error::from(io_kind);
        let (got, text) = classify_io(&e);
        assert_eq!(got, kind, "{io_kind:?}");
        assert_eq!(text, e.to_string());
    }
    let (kind, text) = classify_io(&io::Error::other("no route"));
    assert_eq!(kind, ErrorKind::Io);
    assert_eq!(text, "no route");
}

#[test]
fn fmt_duration_cases() {
    assert_eq!(fmt_duration(Duration::from_secs(5)), "5s");
    assert_eq!(fmt_duration(Duration::from_secs(0)), "0s");
    assert_eq!(fmt_duration(Duration::from_secs(90)), "90s");
    assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    assert_eq!(fmt_duration(Duration::from_millis(1)), "1ms");
}

#[test]

fn fmt_duration_fractional_seconds() {
    assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(fmt_duration(Duration::from_millis(2250)), "2.25s");
    assert_eq!(fmt_duration(Duration::from_millis(1001)), "1.001s");
}

#[test]
fn redirect_codes() {
    for c in [301, 302, 303, 307, 308] {
        assert!(is_redirect(c), "{c}");
    }
    for c in [200, 300, 304, 305, 400] {
        assert!(!is_redirect(c), "{c}");
    }
}

// ------------------------------------------- https with an in-memory peer --

/// A test CA (P-256, valid 2000-2100), generated once with openssl.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBYzCCAQmgAwIBAgIBATAKBggqhkjOPQQDAjAYMRYwFAYDVQQDDA1wdWxzZSB0
ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAYMRYwFAYD
VQQDDA1wdWxzZSB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAED1Rx
cNrNMYXO2v+WUWRCrk306VRxPaSORp63qv591uIyrWv5gIj6WWFPgtSmoKemtZfR
bMjlbYdPMbofhCX0aKNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMC
AQYwHQYDVR0OBBYEFFGvX6op5+28mORyQvJyPgLItPAJMAoGCCqGSM49BAMCA0gA
MEUCIQDSYzXFjyvg+kWLsYTB2XFtk9IMsxfbXI7BsEJBY02bGAIgRb/yUjlcy65Z
W2o27r2Otakpt2TPiNUwq0ewb+XCTJk=
-----END CERTIFICATE-----
";

/// A leaf signed by [`CA_PEM`] for `localhost` and `127.0.0.1` (2000-2100).
const LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBsDCCAVagAwIBAgIBAjAKBggqhkjOPQQDAjAYMRYwFAYDVQQDDA1wdWxzZSB0
ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAUMRIwEAYD
VQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATIa9zX58ye
oMEuu22wShNwhGhnCqiDu8/h0KhTmcbbjJ4zPJvrsUHSRkygqIVfH5AA6rWnEVqR
BHvWv86quTWro4GSMIGPMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMG
A1UdJQQMMAoGCCsGAQUFBwMBMBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATAd
BgNVHQ4EFgQU2GmOn736z7bczOXDown6Z5izCwIwHwYDVR0jBBgwFoAUUa9fqinn
7byY5HJC8nI+Asi08AkwCgYIKoZIzj0EAwIDSAAwRQIgQZTt/46fk6fB5wSKj5Le
yk05iK749g8vDl1hcOEo0OECIQCMZNQ1wNro9u7iY7Q0eKaVXiiyN5ehAbN2FcKs
OYifWA==
-----END CERTIFICATE-----
";

/// The leaf's private key (PKCS#8). A test key: it protects nothing.
const LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgP61rZ8jSSz9MbMRg
YYpmay/jzJNYoQgiPoZ7jzWNs1GhRANCAATIa9zX58yeoMEuu22wShNwhGhnCqiD
u8/h0KhTmcbbjJ4zPJvrsUHSRkygqIVfH5AA6rWnEVqRBHvWv86quTWr
-----END PRIVATE KEY-----
";

fn server_config(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(LEAF_PEM.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// How the in-memory TLS server behaves.
struct Peer<'a> {
    config: Arc<rustls::ServerConfig>,
    /// Plaintext HTTP response sent once the request head has arrived.
    response: &'a [u8],
    /// Send close_notify after the response.
    close_notify: bool,
    /// Largest piece of server bytes handed to the session per read.
    piece: usize,
}

/// What the in-memory exchange saw.
struct TlsRun {
    outcome: Outcome,
    /// The plaintext request the server decrypted.
    request: Vec<u8>,
    /// The server's own error, if the client made it fail.
    server_error: Option<rustls::Error>,
}

/// Pumps bytes between the session and an in-memory rustls server while the
/// session writes or reads; returns when it wants anything else. The clock
/// (`t0 + clock` ms) advances 1 ms per step.
fn serve_tls(
    s: &mut Session,
    peer: &Peer<'_>,
    t0: Instant,
    clock: &mut u64,
) -> (Vec<u8>, Option<rustls::Error>) {
    let mut server = rustls::ServerConnection::new(peer.config.clone()).unwrap();
    let mut request = Vec::new();
    let mut server_error = None;
    let mut responded = false;
    let mut pending: Vec<u8> = Vec::new();
    loop {
        assert!(*clock < 1000, "the exchange does not converge");
        let now = at(t0, *clock + 1);
        match s.step() {
            Step::Write(bytes) => {
                let bytes = bytes.to_vec();
                s.wrote(Ok(bytes.len()), now);
                *clock += 1;
                if server_error.is_some() {
                    continue;
                }
                let mut rd = &bytes[..];
                while !rd.is_empty() {
                    server.read_tls(&mut rd).unwrap();
                }
                if let Err(e) = server.process_new_packets() {
                    server_error = Some(e);
                    continue;
                }
                let mut buf = [0u8; 4096];
                loop {
                    match server.reader().read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("server read: {e}"),
                    }
                }
                if !responded && request.windows(4).any(|w| w == b"\r\n\r\n") {
                    responded = true;
                    server.writer().write_all(peer.response).unwrap();
                    if peer.close_notify {
                        server.send_close_notify();
                    }
                }
            }
            Step::Read => {
                while server.wants_write() {
                    server.write_tls(&mut pending).unwrap();
                }
                if pending.is_empty() {
                    // Nothing more to say: the server closes the connection.
                    s.received(Ok(&[]), now);
                } else {
                    let n = pending.len().min(peer.piece);
                    let chunk: Vec<u8> = pending.drain(..n).collect();
                    s.received(Ok(&chunk), now);
                }
                *clock += 1;
            }
            _ => return (request, server_error),
        }
    }
}

/// Runs `text` against an in-memory rustls server (names resolve to
/// 127.0.0.1), 1 ms per step; the probe is finished at its last event.
fn tls_run(text: &str, client: Arc<rustls::ClientConfig>, peer: &Peer<'_>) -> TlsRun {
    let t0 = Instant::now();
    let mut s = Session::new(&target(text), Some(client), DEFAULT_BODY_CAP, t0);
    let mut clock = 0;
    let mut request = Vec::new();
    let mut server_error = None;
    loop {
        match s.step() {
            Step::Resolve { port, .. } => {
                clock += 1;
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                s.resolved(Ok(vec![addr]), at(t0, clock));
            }
            Step::Connect(_) => {
                clock += 1;
                s.connected(Ok(()), at(t0, clock));
                let (req, err) = serve_tls(&mut s, peer, t0, &mut clock);
                request.extend(req);
                server_error = server_error.or(err);
            }
            Step::Done => {
                return TlsRun {
                    outcome: s.finish(at(t0, clock)),
                    request,
                    server_error,
                };
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn with_test_ca() -> Arc<rustls::ClientConfig> {
    crate::tls::with_ca(CA_PEM.as_bytes()).unwrap()
}

#[test]
fn https_full_handshake_tls13_verified_against_a_ca() {
    for piece in [usize::MAX, 1000, 7] {
        let peer = Peer {
            config: server_config(&[&rustls::version::TLS13]),
            response: OK_5,
            close_notify: false,
            piece,
        };
        let r = tls_run(
            "https://127.0.0.1:8443/ok contains=\"hello\"",
            with_test_ca(),
            &peer,
        );
        let o = &r.outcome;
        assert!(o.success, "piece {piece}: {o:?}");
        assert!(r.server_error.is_none(), "{:?}", r.server_error);
        let req = String::from_utf8(r.request).unwrap();
        assert!(req.starts_with("GET /ok HTTP/1.1\r\n"), "{req}");
        assert!(req.to_ascii_lowercase().contains("connection: close"));
        let h = http(o);
        assert_eq!(h.status_code, Some(200));
        assert_eq!(h.tls_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(h.body_bytes, 5);
        assert_eq!(o.phases.connect, msf(1));
        assert!(o.phases.tls.unwrap() > 0.0);
        assert!(o.phases.processing.is_some());
        assert!(o.phases.transfer.is_some());
        assert_close(phase_sum(o), crate::result::millis(o.duration));
    }
}

#[test]
fn https_full_handshake_tls12_to_a_name() {
    let peer = Peer {
        config: server_config(&[&rustls::version::TLS12]),
        response: OK_5,
        close_notify: true,
        piece: 100,
    };
    let r = tls_run("https://localhost:8443/ok", with_test_ca(), &peer);
    let o = &r.outcome;
    assert!(o.success, "{o:?}");
    assert_eq!(http(o).tls_version.as_deref(), Some("TLSv1.2"));
    assert_eq!(o.address.as_deref(), Some("127.0.0.1:8443"));
    let req = String::from_utf8(r.request).unwrap();
    assert!(
        req.to_ascii_lowercase()
            .contains("\r\nhost: localhost:8443\r\n"),
        "{req}"
    );
}

#[test]
fn https_close_delimited_body_with_and_without_close_notify() {
    for close_notify in [true, false] {
        let peer = Peer {
            config: server_config(&[&rustls::version::TLS13]),
            response: b"HTTP/1.0 200 OK\r\n\r\nhello, tls",
            close_notify,
            piece: 64,
        };
        let r = tls_run(
            "https://127.0.0.1:8443/ok contains=\"tls\"",
            with_test_ca(),
            &peer,
        );
        assert!(
            r.outcome.success,
            "close_notify {close_notify}: {:?}",
            r.outcome
        );
        assert_eq!(http(&r.outcome).body_bytes, 10);
    }
}

#[test]
fn https_chunked_body_and_status_checks_through_tls() {
    let peer = Peer {
        config: server_config(&[&rustls::version::TLS13]),
        response: CHUNKED,
        close_notify: false,
        piece: usize::MAX,
    };
    let r = tls_run("https://127.0.0.1:8443/ok", with_test_ca(), &peer);
    assert!(r.outcome.success, "{:?}", r.outcome);
    assert_eq!(http(&r.outcome).body_bytes, 11);
    let peer = Peer {
        response: b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
        ..peer
    };
    let r = tls_run("https://127.0.0.1:8443/ok", with_test_ca(), &peer);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Status));
    assert_eq!(http(&r.outcome).tls_version.as_deref(), Some("TLSv1.3"));
}

#[test]
fn https_unknown_issuer_is_tls() {
    let peer = Peer {
        config: server_config(&[&rustls::version::TLS13]),
        response: OK_5,
        close_notify: false,
        piece: usize::MAX,
    };
    // The webpki roots do not include the test CA.
    let r = tls_run("https://127.0.0.1:8443/ok", crate::tls::verified(), &peer);
    assert!(!r.outcome.success);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Tls));
    assert!(
        message(&r.outcome).starts_with("TLS handshake failed: invalid peer certificate"),
        "{:?}",
        r.outcome
    );
    assert!(
        r.request.is_empty(),
        "no request leaves before the certificate is checked"
    );
    assert!(r.outcome.phases.processing.is_none());
    // `insecure` accepts the same peer.
    let r = tls_run("https://127.0.0.1:8443/ok", insecure(), &peer);
    assert!(r.outcome.success, "{:?}", r.outcome);
}

#[test]
fn https_name_mismatch_is_tls() {
    let peer = Peer {
        config: server_config(&[&rustls::version::TLS13]),
        response: OK_5,
        close_notify: false,
        piece: usize::MAX,
    };
    // The leaf is for localhost and 127.0.0.1, not 127.0.0.2.
    let r = tls_run("https://127.0.0.2:8443/ok", with_test_ca(), &peer);
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Tls));
    assert!(
        message(&r.outcome).contains("certificate"),
        "{:?}",
        r.outcome
    );
}

#[test]
fn https_timeout_after_the_handshake_waits_for_the_response() {
    let t0 = Instant::now();
    let mut s = Session::new(
        &target("https://127.0.0.1:8443/ok"),
        Some(with_test_ca()),
        DEFAULT_BODY_CAP,
        t0,
    );
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    let mut server =
        rustls::ServerConnection::new(server_config(&[&rustls::version::TLS13])).unwrap();
    // ClientHello to the server, its flight back, at 5 ms.
    let hello = drain(&mut s, at(t0, 1));
    server.read_tls(&mut &hello[..]).unwrap();
    server.process_new_packets().unwrap();
    let mut flight = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut flight).unwrap();
    }
    feed(&mut s, &flight, at(t0, 5));
    // Client Finished and the request go out; the server never answers.
    assert!(matches!(s.step(), Step::Write(_)));
    drain(&mut s, at(t0, 6));
    let o = s.timed_out(at(t0, 100), Duration::from_millis(100));
    assert_eq!(
        message(&o),
        "timed out after 100ms while waiting for the response"
    );
    assert_eq!(o.phases.connect, msf(1));
    assert_eq!(o.phases.tls, msf(4));
    assert_eq!(o.phases.processing, msf(95));
    assert_eq!(http(&o).tls_version.as_deref(), Some("TLSv1.3"));
}

#[test]
fn https_eof_after_the_handshake_is_reset() {
    let peer = Peer {
        config: server_config(&[&rustls::version::TLS13]),
        // The server says nothing and closes (without close_notify).
        response: b"",
        close_notify: false,
        piece: usize::MAX,
    };
    let r = tls_run("https://127.0.0.1:8443/ok", with_test_ca(), &peer);
    assert_eq!(
        error_kind(&r.outcome),
        Some(ErrorKind::Reset),
        "{:?}",
        r.outcome
    );
    assert_eq!(message(&r.outcome), "connection closed before any response");
    assert_eq!(http(&r.outcome).tls_version.as_deref(), Some("TLSv1.3"));
    assert!(r.outcome.phases.tls.is_some());
}

#[test]
fn https_redirect_to_https_does_a_new_handshake() {
    // Every hop is served by a fresh server with the same response, so a
    // redirect to itself loops until the limit.
    let peer = Peer {
        config: server_config(&[&rustls::version::TLS13]),
        response: b"HTTP/1.1 302 Found\r\nLocation: https://localhost:8443/next\r\nContent-Length: 0\r\n\r\n",
        close_notify: false,
        piece: usize::MAX,
    };
    let r = tls_run(
        "https://127.0.0.1:8443/ok redirects=1",
        with_test_ca(),
        &peer,
    );
    assert_eq!(
        error_kind(&r.outcome),
        Some(ErrorKind::Status),
        "{:?}",
        r.outcome
    );
    assert_eq!(http(&r.outcome).redirects, 1);
    assert_eq!(
        http(&r.outcome).final_url.as_deref(),
        Some("https://localhost:8443/next")
    );
    let req = String::from_utf8(r.request).unwrap();
    assert!(req.starts_with("GET /ok HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("GET /next HTTP/1.1\r\n"), "{req}");
}

/// build_request resets status, version and body for each hop, but not
/// tls_version, so an https -> http redirect reports the first hop's TLS
/// version for a final response that came over plain HTTP (hiding a
/// downgrade; blackbox's probe_http_ssl describes the final hop).
#[test]

fn https_to_http_redirect_clears_the_tls_version() {
    let peer = Peer {
        config: server_config(&[&rustls::version::TLS13]),
        response: b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:8080/plain\r\nContent-Length: 0\r\n\r\n",
        close_notify: false,
        piece: usize::MAX,
    };
    let t0 = Instant::now();
    let mut s = Session::new(
        &target("https://127.0.0.1:8443/ok"),
        Some(with_test_ca()),
        DEFAULT_BODY_CAP,
        t0,
    );
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    let mut clock = 1;
    serve_tls(&mut s, &peer, t0, &mut clock);
    connect(&mut s, "127.0.0.1:8080", at(t0, 50));
    let req = answer(&mut s, OK_5, at(t0, 60));
    assert!(req.starts_with("GET /plain HTTP/1.1\r\n"), "{req}");
    let o = s.finish(at(t0, 60));
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).redirects, 1);
    assert_eq!(http(&o).tls_version, None, "the final hop was plain http");
}

// Property tests of the same sessions, fed hostile byte streams.
mod proptests;
// What a target sends (method, headers, body, credentials) and the
// certificate facts a handshake leaves in the result.
mod request;
// Which addresses of a name are probed: `ip=` and `--ip`.
mod family;
// Multi-packet ICMP: the echo train's steps, counts and statistics.
mod train;
