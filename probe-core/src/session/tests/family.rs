//! `ip=4|6|any` limits a name's addresses to one family; `--ip` (the
//! plan's `prefer_ip`) only orders them.

use super::*;

fn resolving(text: &str, prefer: IpFamily, addrs: &[&str]) -> Session {
    let t0 = Instant::now();
    let mut s = session(text, t0).with_preferred_ip(prefer);
    assert!(matches!(s.step(), Step::Resolve { .. }), "{:?}", s.step());
    s.resolved(Ok(addrs.iter().map(|a| sock(a)).collect()), at(t0, 1));
    s
}

const BOTH: [&str; 3] = ["127.0.0.1:80", "[::1]:80", "127.0.0.2:80"];

#[test]
fn ip_limits_the_addresses_to_one_family() {
    let s = resolving("tcp://dual.example:80 ip=6", IpFamily::Any, &BOTH);
    assert_eq!(
        s.step(),
        Step::Connect(sock("[::1]:80")),
        "one address: no race"
    );
    // Both IPv4 addresses race; ::1 never does.
    let s = resolving("tcp://dual.example:80 ip=4", IpFamily::V6, &BOTH);
    assert_eq!(race(&s), [sock("127.0.0.1:80"), sock("127.0.0.2:80")]);
}

/// The addresses of the race `s` asks for.
fn race(s: &Session) -> Vec<SocketAddr> {
    match s.step() {
        Step::Race { addrs, .. } => addrs.to_vec(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_name_without_the_family_asked_for_is_a_dns_failure_that_says_so() {
    let s = resolving(
        "tcp://v4only.example:80 ip=6",
        IpFamily::Any,
        &["127.0.0.1:80"],
    );
    let o = s.finish(Instant::now());
    assert_eq!(error_kind(&o), Some(ErrorKind::Dns));
    assert_eq!(
        message(&o),
        "v4only.example: no IPv6 address (ip=6); it resolves only to the other family"
    );
}

#[test]
fn the_preferred_family_goes_first_and_the_other_stays_as_fallback() {
    let s = resolving("tcp://dual.example:80", IpFamily::V6, &BOTH);
    assert_eq!(
        race(&s),
        [sock("[::1]:80"), sock("127.0.0.1:80"), sock("127.0.0.2:80")],
        "IPv6 first, IPv4 raced after it"
    );
    let s = resolving("tcp://dual.example:80", IpFamily::Any, &BOTH);
    assert_eq!(
        race(&s),
        [sock("127.0.0.1:80"), sock("[::1]:80"), sock("127.0.0.2:80")],
        "any: the resolver's first family first, then alternating"
    );
    let s = resolving("tcp://v4only.example:80", IpFamily::V6, &["127.0.0.1:80"]);
    assert_eq!(
        s.step(),
        Step::Connect(sock("127.0.0.1:80")),
        "a preference is no limit"
    );
}

#[test]
fn all_addresses_probes_each_in_turn_and_is_up_only_when_all_are() {
    let t0 = Instant::now();
    let mut s = resolving("tcp://dual.example:80 all_addresses", IpFamily::Any, &BOTH);
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:80")));
    s.connected(Ok(()), at(t0, 2));
    assert_eq!(
        s.step(),
        Step::Connect(sock("[::1]:80")),
        "the next address, not Done"
    );
    s.connected(Err(io::ErrorKind::ConnectionRefused.into()), at(t0, 3));
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.2:80")));
    s.connected(Ok(()), at(t0, 5));
    assert_eq!(s.step(), Step::Done);
    assert!(
        s.close_with_reset(),
        "a TCP probe's last connection is reset"
    );
    let o = s.finish(at(t0, 5));
    assert!(!o.success);
    assert_eq!(error_kind(&o), Some(ErrorKind::Refused));
    assert!(
        message(&o).starts_with("1 of 3 addresses down; [::1]:80: connect to [::1]:80: "),
        "{}",
        message(&o)
    );
    let verdicts: Vec<(&str, bool)> = o
        .addresses
        .iter()
        .map(|a| (a.address.as_str(), a.success))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("127.0.0.1:80", true),
            ("[::1]:80", false),
            ("127.0.0.2:80", true)
        ]
    );
    assert_eq!(
        o.address.as_deref(),
        Some("[::1]:80"),
        "the failing address speaks"
    );
}

#[test]
fn all_addresses_over_http_sends_the_name_to_each_address() {
    let t0 = Instant::now();
    let mut s = resolving(
        "http://dual.example:8080/ all_addresses",
        IpFamily::Any,
        &["127.0.0.1:8080", "[::1]:8080"],
    );
    for (i, addr) in ["127.0.0.1:8080", "[::1]:8080"].into_iter().enumerate() {
        let base = 10 * i as u64;
        connect(&mut s, addr, at(t0, base + 1));
        let req = answer(&mut s, OK_5, at(t0, base + 2));
        assert!(
            req.to_ascii_lowercase()
                .contains("\r\nhost: dual.example:8080\r\n"),
            "{req}"
        );
    }
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 30));
    assert!(o.success, "{o:?}");
    assert_eq!(o.addresses.len(), 2);
    assert!(
        o.addresses
            .iter()
            .all(|a| a.success && a.status_code == Some(200))
    );
    assert_eq!(http(&o).status_code, Some(200));
}

#[test]
fn the_deadline_reports_the_addresses_it_left_unprobed() {
    let t0 = Instant::now();
    let mut s = resolving("tcp://dual.example:80 all_addresses", IpFamily::Any, &BOTH);
    s.connected(Ok(()), at(t0, 2));
    assert_eq!(s.step(), Step::Connect(sock("[::1]:80")));
    let o = s.timed_out(at(t0, 1000), Duration::from_secs(1));
    let kinds: Vec<Option<ErrorKind>> = o
        .addresses
        .iter()
        .map(|a| a.error.as_ref().map(|e| e.kind))
        .collect();
    assert_eq!(
        kinds,
        [None, Some(ErrorKind::Timeout), Some(ErrorKind::Timeout)]
    );
    assert_eq!(
        o.addresses[2].error.as_ref().unwrap().message,
        "not probed: the deadline passed while earlier addresses were probed"
    );
    // From the session's own start (a moment before this test's t0).
    assert!(o.duration >= Duration::from_millis(999), "{:?}", o.duration);
}
