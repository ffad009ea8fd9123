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
    assert_eq!(s.step(), Step::Connect(sock("[::1]:80")));
    let mut s = resolving("tcp://dual.example:80 ip=4", IpFamily::V6, &BOTH);
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.1:80")));
    // Refused on the first IPv4 address: the next is IPv4 too, never ::1.
    s.connected(Err(io::ErrorKind::ConnectionRefused.into()), Instant::now());
    assert_eq!(s.step(), Step::Connect(sock("127.0.0.2:80")));
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
    let mut s = resolving("tcp://dual.example:80", IpFamily::V6, &BOTH);
    assert_eq!(s.step(), Step::Connect(sock("[::1]:80")));
    s.connected(Err(io::ErrorKind::ConnectionRefused.into()), Instant::now());
    assert_eq!(
        s.step(),
        Step::Connect(sock("127.0.0.1:80")),
        "fallback, in resolver order"
    );
    let s = resolving("tcp://dual.example:80", IpFamily::Any, &BOTH);
    assert_eq!(
        s.step(),
        Step::Connect(sock("127.0.0.1:80")),
        "any: the resolver's order"
    );
    let s = resolving("tcp://v4only.example:80", IpFamily::V6, &["127.0.0.1:80"]);
    assert_eq!(
        s.step(),
        Step::Connect(sock("127.0.0.1:80")),
        "a preference is no limit"
    );
}
