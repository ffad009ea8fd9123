//! Hostile input, property-tested, through the core's public API: the
//! targets file parser and the ICMP codec and reply table. (The probe
//! session's properties live next to its other tests, in
//! `src/session/tests/proptests.rs`, to share their scripted servers.)

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;
use pulse_core::icmp::{Framing, ReplyTable, checksum, echo_request, parse_reply};
use pulse_core::result::Kind;
use pulse_core::target::{parse_target, parse_targets};

/// Random cases per property: each is microseconds.
const CASES: u32 = 1024;

// ------------------------------------------------------------ the parser --

/// One valid target line, and what parsing it must give.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    kind: Kind,
    host: String,
    port: u16,
    timeout: Option<Duration>,
    options: String,
}

fn host() -> impl Strategy<Value = (String, String)> {
    // (as written in a URL, as parsed: IPv6 loses its brackets)
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| {
            let s = std::net::Ipv4Addr::from(o).to_string();
            (s.clone(), s)
        }),
        "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z][a-z0-9]{0,8}){0,2}".prop_map(|s| (s.clone(), s)),
        any::<[u16; 8]>().prop_map(|w| {
            let s = std::net::Ipv6Addr::from(w).to_string();
            (format!("[{s}]"), s)
        }),
    ]
}

fn line() -> impl Strategy<Value = Line> {
    let timeout = prop::option::of(1u64..100_000);
    let http = (
        any::<bool>(),
        host(),
        prop::option::of(1u16..),
        "(/[a-zA-Z0-9._~-]{0,10}){0,3}",
        timeout.clone(),
        prop::option::of((100u16..600, 0u16..50)),
        prop::option::of("[a-zA-Z0-9 ]{1,12}"),
        any::<bool>(),
    )
        .prop_map(
            |(tls, (url_host, host), port, path, timeout, expect, contains, insecure)| {
                let scheme = if tls { "https" } else { "http" };
                let port_part = port.map_or(String::new(), |p| format!(":{p}"));
                let text = format!("{scheme}://{url_host}{port_part}{path}");
                let mut options = String::new();
                if let Some((lo, span)) = expect {
                    let hi = (lo + span).min(599);
                    options += &format!(" expect={lo}-{hi}");
                }
                if let Some(c) = contains {
                    options += &format!(" contains=\"{c}\"");
                }
                if insecure {
                    options += " insecure";
                }
                Line {
                    text,
                    kind: Kind::Http,
                    host,
                    port: port.unwrap_or(if tls { 443 } else { 80 }),
                    timeout: timeout.map(Duration::from_millis),
                    options,
                }
            },
        );
    let tcp = (any::<bool>(), host(), 1u16.., timeout.clone()).prop_map(
        |(scheme, (url_host, host), port, timeout)| Line {
            text: if scheme {
                format!("tcp://{url_host}:{port}")
            } else {
                format!("{url_host}:{port}")
            },
            kind: Kind::Tcp,
            host,
            port,
            timeout: timeout.map(Duration::from_millis),
            options: String::new(),
        },
    );
    let icmp = (any::<bool>(), host(), timeout).prop_map(|(scheme, (url_host, host), timeout)| {
        // A bare IPv6 literal is written without brackets.
        let bare = if url_host.starts_with('[') {
            host.clone()
        } else {
            url_host.clone()
        };
        Line {
            text: if scheme {
                format!("icmp://{url_host}")
            } else {
                bare
            },
            kind: Kind::Icmp,
            host,
            port: 0,
            timeout: timeout.map(Duration::from_millis),
            options: String::new(),
        }
    });
    prop_oneof![http, tcp, icmp]
}

/// The line as a file would hold it, with its options.
fn written(l: &Line) -> String {
    let timeout = l
        .timeout
        .map_or(String::new(), |t| format!(" timeout={}ms", t.as_millis()));
    format!("{}{}{timeout}", l.text, l.options)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any bytes at all: an answer, never a panic, and every error points
    /// into the input (or at the whole file, line 0).
    #[test]
    fn the_parser_never_panics_on_any_bytes(input in prop::collection::vec(any::<u8>(), 0..400)) {
        let lines = input.split(|&b| b == b'\n').count();
        if let Err(errors) = parse_targets("fuzz", &input) {
            prop_assert!(!errors.is_empty());
            for e in &errors.errors {
                prop_assert!(e.line <= lines, "{e}");
                prop_assert!(e.line == 0 || e.column >= 1, "{e}");
            }
        }
    }

    /// Text that looks like targets (schemes, options, quotes, brackets)
    /// reaches further into the parser than random bytes do.
    #[test]
    fn the_parser_never_panics_on_target_like_text(
        text in "((https?|tcp|icmp|ftp)://)?[a-z0-9.:\\[\\]/@%-]{0,30}( [a-z]{0,9}=?[\"a-z0-9.,-]{0,12}){0,4}",
    ) {
        let _ = parse_target(&text);
        let _ = parse_targets("fuzz", text.as_bytes());
    }

    /// Valid lines round-trip: each parses to what it says, in a file with
    /// comments and blank lines, at its own line number.
    #[test]
    fn valid_lines_round_trip(lines in prop::collection::vec(line(), 1..12)) {
        let mut file = String::from("# generated\n");
        for l in &lines {
            file += &written(l);
            file += "   # a comment\n\n";
        }
        let targets = parse_targets("gen", file.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(targets.len(), lines.len());
        for (i, (t, l)) in targets.iter().zip(&lines).enumerate() {
            prop_assert_eq!(t.line, 2 + 2 * i);
            prop_assert_eq!(&t.text, &l.text);
            prop_assert_eq!(t.kind, l.kind);
            prop_assert_eq!(&t.host, &l.host);
            prop_assert_eq!(t.port, l.port);
            prop_assert_eq!(t.timeout, l.timeout);
            prop_assert_eq!(t.http.is_some(), l.kind == Kind::Http);
            // The same line alone, as `pulse check` takes it.
            let alone = parse_target(&written(l)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&alone.text, &t.text);
        }
    }
}

// -------------------------------------------------------------- the ICMP --

fn as_reply(mut p: Vec<u8>) -> Vec<u8> {
    p[0] = 0;
    p[2] = 0;
    p[3] = 0;
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

fn with_ipv4_header(icmp: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    p.extend_from_slice(icmp);
    p
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::RawV4),
        Just(Framing::DgramV4),
        Just(Framing::V6)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any packet, any framing: parsed or ignored, never a panic.
    #[test]
    fn the_icmp_parser_never_panics(
        packet in prop::collection::vec(any::<u8>(), 0..128),
        framing in framing(),
    ) {
        let _ = parse_reply(&packet, framing);
    }

    /// A reply round-trips its identifier and sequence; any single
    /// corrupted byte (the checksum catches every one) makes it ignored.
    #[test]
    fn replies_round_trip_and_any_corrupted_byte_is_ignored(
        ident in any::<u16>(),
        seq in any::<u16>(),
        raw in any::<bool>(),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let icmp = as_reply(echo_request(false, ident, seq));
        let (packet, framing, header) = if raw {
            (with_ipv4_header(&icmp), Framing::RawV4, 20)
        } else {
            (icmp, Framing::DgramV4, 0)
        };
        let r = parse_reply(&packet, framing).unwrap();
        prop_assert_eq!((r.ident, r.seq), (ident, seq));
        let mut bad = packet.clone();
        // Corrupt the ICMP part (the IPv4 header's own checksum is the
        // kernel's business: it drops such packets before we see them).
        let i = header + flip.index(bad.len() - header);
        bad[i] ^= mask;
        prop_assert_eq!(parse_reply(&bad, framing), None);
    }

    /// Whatever packets arrive, from wherever: a waiter is handed over only
    /// for a parseable reply with this scan's identifier, its sequence
    /// number and its address, exactly once; the table keeps the rest.
    #[test]
    fn the_reply_table_hands_over_only_exact_matches(
        packets in prop::collection::vec(
            (any::<u16>(), any::<u16>(), 1u8..4, prop::option::of(any::<prop::sample::Index>())),
            0..20,
        ),
    ) {
        let ident = 7;
        let table = ReplyTable::new(ident);
        let addr = |last: u8| IpAddr::from([127, 0, 0, last]);
        let mut waiting = Vec::new();
        for last in 1..=2 {
            let seq = table.register(addr(last), last).unwrap();
            waiting.push((seq, last));
        }
        let mut delivered = Vec::new();
        for (id, seq, from, corrupt) in packets {
            // Bias toward near-misses: half the packets use a real sequence.
            let seq = if seq % 2 == 0 { waiting[usize::from(seq / 2) % 2].0 } else { seq };
            let id = if id % 3 == 0 { id } else { ident };
            let mut p = as_reply(echo_request(false, id, seq));
            if let Some(i) = corrupt {
                let i = i.index(p.len());
                p[i] ^= 0x5a;
            }
            if let Some((waiter, pong)) = table.dispatch(&p, Framing::DgramV4, addr(from)) {
                prop_assert!(corrupt.is_none() && id == ident);
                prop_assert!(waiting.contains(&(pong.sequence, waiter)));
                prop_assert_eq!(addr(waiter), addr(from));
                prop_assert!(!delivered.contains(&waiter), "handed over twice");
                delivered.push(waiter);
            }
        }
        // Answered entries stay (to count duplicates) until their probe
        // closes them; closing gives back exactly the waiters not handed over.
        prop_assert_eq!(table.len(), 2);
        for (seq, last) in waiting {
            let closed = table.close(seq).unwrap();
            prop_assert_eq!(closed.waiter.is_some(), !delivered.contains(&last));
        }
        prop_assert!(table.is_empty());
    }
}
