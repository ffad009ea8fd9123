//! Hostile input, property-tested: a session fed arbitrary byte streams, cut
//! at arbitrary points, never panics, never loops, and always ends in a
//! classified result (success, or an error with a kind).
//!
//! The streams are random bytes, and real responses (HTTP, and a real TLS
//! server's handshake flight) with a byte corrupted and the stream cut
//! short, which reach much deeper into the state machines than noise does.
//! Shrinking makes a failure readable: proptest reports the smallest stream
//! and cuts it found that still fail.

use proptest::prelude::*;

use super::*;

/// Random cases per property. Each session is microseconds (the TLS ones a
/// few hundred: one ECDHE handshake each), so this keeps the whole file
/// under a couple of seconds in a debug build.
const CASES: u32 = 512;
/// Cases for the properties that run a TLS handshake per case.
const TLS_CASES: u32 = 128;

/// Steps a session may take on one stream before we call it a loop: every
/// step either consumes a piece of the stream, writes, or ends the probe,
/// so a few per piece is plenty.
const MAX_STEPS: usize = 10_000;

/// Cut `bytes` at the given points (each taken modulo the length): the
/// pieces a socket might deliver it in.
fn cut<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// Drive the session of `text` against a server that sends `pieces` (then
/// closes), whatever the session asks for. Panics (failing the property) if
/// the session loops or ends unclassified.
fn hostile(text: &str, client: Arc<rustls::ClientConfig>, pieces: &[&[u8]]) -> Outcome {
    let t0 = Instant::now();
    let mut s = Session::new(&target(text), Some(client), DEFAULT_BODY_CAP, t0);
    let mut next = pieces.iter().filter(|p| !p.is_empty());
    for n in 0..MAX_STEPS as u64 {
        let now = at(t0, n);
        match s.step() {
            Step::Resolve { port, .. } => {
                s.resolved(Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]), now);
            }
            Step::Connect(_) => s.connected(Ok(()), now),
            Step::Race { addrs, .. } => {
                let first = addrs[0];
                s.raced(Ok(first), now);
            }
            Step::Write(bytes) => {
                let n = bytes.len();
                s.wrote(Ok(n), now);
            }
            // After the last piece the server has closed: every further read
            // is end of stream.
            Step::Read => s.received(Ok(next.next().copied().unwrap_or(&[])), now),
            Step::Ping(_) | Step::Echo { .. } | Step::Collect { .. } => {
                panic!("{text} asked to ping")
            }
            Step::Done => {
                let o = s.finish(now);
                assert_eq!(
                    o.success,
                    o.error.is_none(),
                    "classified: success, or an error with a kind: {o:?}"
                );
                return o;
            }
        }
    }
    panic!("the session did not finish within {MAX_STEPS} steps");
}

/// A well-formed response with a body of `body`, framed by Content-Length
/// or by chunks of `chunk` bytes.
fn response(status: u16, body: &[u8], chunked: Option<usize>) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status} X\r\n").into_bytes();
    match chunked {
        None => {
            r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            r.extend_from_slice(body);
        }
        Some(size) => {
            r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for c in body.chunks(size.max(1)) {
                r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                r.extend_from_slice(c);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
        }
    }
    r
}

/// The server's first flight (ServerHello up to its Finished) answering
/// this session's ClientHello, from a real in-memory rustls server.
fn server_flight(s: &mut Session, now: Instant) -> Vec<u8> {
    let mut server = rustls::ServerConnection::new(server_config(&[
        &rustls::version::TLS13,
        &rustls::version::TLS12,
    ]))
    .unwrap();
    let hello = drain(s, now);
    let mut rd = &hello[..];
    while !rd.is_empty() {
        server.read_tls(&mut rd).unwrap();
    }
    server.process_new_packets().unwrap();
    let mut flight = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut flight).unwrap();
    }
    flight
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Random bytes as the HTTP response, cut anywhere.
    #[test]
    fn http_survives_any_byte_stream(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        hostile("http://127.0.0.1:80/", insecure(), &cut(&bytes, &cuts));
    }

    /// A real status line, then random header and body bytes.
    #[test]
    fn http_survives_a_good_status_line_then_anything(
        rest in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut bytes = b"HTTP/1.1 200 OK\r\n".to_vec();
        bytes.extend_from_slice(&rest);
        hostile("http://127.0.0.1:80/", insecure(), &cut(&bytes, &cuts));
    }

    /// A valid response, its bytes cut anywhere: the same result as in one
    /// piece (the split tests do every cut of a few fixed responses; this
    /// does random cuts of random ones).
    #[test]
    fn a_valid_response_gives_the_same_result_however_it_is_cut(
        status in 100u16..600,
        body in prop::collection::vec(any::<u8>(), 0..300),
        chunked in prop::option::of(1usize..64),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let r = response(status, &body, chunked);
        let text = "http://127.0.0.1:80/ expect=100-599";
        let whole = hostile(text, insecure(), &[&r]);
        let pieces = hostile(text, insecure(), &cut(&r, &cuts));
        prop_assert_eq!(essence(&whole), essence(&pieces));
    }

    /// A valid response with one byte corrupted and cut short anywhere.
    #[test]
    fn http_survives_a_corrupted_truncated_response(
        body in prop::collection::vec(any::<u8>(), 0..200),
        chunked in prop::option::of(1usize..16),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..,
        end in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut r = response(200, &body, chunked);
        let i = flip.index(r.len());
        r[i] ^= mask;
        r.truncate(end.index(r.len() + 1));
        hostile("http://127.0.0.1:80/", insecure(), &cut(&r, &cuts));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(TLS_CASES))]

    /// Random bytes where the TLS server's handshake should be.
    #[test]
    fn tls_survives_any_byte_stream(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let o = hostile("https://localhost:443/", with_test_ca(), &cut(&bytes, &cuts));
        prop_assert!(!o.success, "noise is not a TLS server");
    }

    /// A real server's handshake flight with one byte corrupted, cut short
    /// anywhere, and cut into pieces: never a success (the transcript is
    /// authenticated), never a panic.
    #[test]
    fn tls_survives_a_corrupted_truncated_handshake(
        flip in any::<prop::sample::Index>(),
        mask in 1u8..,
        end in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let t0 = Instant::now();
        let text = "https://localhost:443/";
        let mut s = Session::new(&target(text), Some(with_test_ca()), DEFAULT_BODY_CAP, t0);
        let Step::Resolve { port, .. } = s.step() else { panic!("a name resolves first") };
        s.resolved(Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]), at(t0, 1));
        s.connected(Ok(()), at(t0, 2));
        let mut flight = server_flight(&mut s, at(t0, 3));
        let i = flip.index(flight.len());
        flight[i] ^= mask;
        flight.truncate(end.index(flight.len() + 1));
        // Go on from where the ClientHello left the session.
        let mut pieces = cut(&flight, &cuts).into_iter().filter(|p| !p.is_empty());
        for n in 4..MAX_STEPS as u64 {
            let now = at(t0, n);
            match s.step() {
                Step::Write(b) => {
                    let len = b.len();
                    s.wrote(Ok(len), now);
                }
                Step::Read => s.received(Ok(pieces.next().unwrap_or(&[])), now),
                Step::Done => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        prop_assert_eq!(s.step(), Step::Done, "the session finished");
        let o = s.finish(at(t0, MAX_STEPS as u64));
        prop_assert!(!o.success);
        prop_assert!(o.error.is_some());
    }
}
