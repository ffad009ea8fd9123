//! core: the sans-IO probe session alone, no socket and no executor, so a
//! reader can see how much of a probe's cost is the core (the same for
//! every model) and how much is the model (`overhead` minus this).
//!
//! - `core/http-exchange`: a session for an http target with a `contains=`
//!   check asks to connect, writes its request, is fed a 200 response and
//!   its end, and classifies it: the request formatting, ureq-proto's
//!   parsing and the body check.
//! - `core/https-exchange`: the same over TLS against a rustls server in
//!   memory (the farm's certificate, ring): a full TLS 1.3 handshake on
//!   both sides, then the exchange. The server's half is inside the
//!   figure too, as the farm's half is inside `overhead/https`.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use pulse_core::session::{DEFAULT_BODY_CAP, Session, Step};
use pulse_core::target::parse_target;

mod common;

/// What the server sends: a complete response whose body passes the check.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\nconnection: close\r\n\r\npulse-farm-ok";

/// The server side of one exchange.
trait Peer {
    /// The session wrote these bytes.
    fn take(&mut self, bytes: &[u8]);
    /// The next bytes for the session, empty for end of stream.
    fn give(&mut self) -> Vec<u8>;
}

/// A plain HTTP server: answers once the request has arrived.
struct Plain {
    request: Vec<u8>,
    sent: bool,
}

impl Peer for Plain {
    fn take(&mut self, bytes: &[u8]) {
        self.request.extend_from_slice(bytes);
    }
    fn give(&mut self) -> Vec<u8> {
        if self.sent || !self.request.ends_with(b"\r\n\r\n") {
            return Vec::new();
        }
        self.sent = true;
        RESPONSE.to_vec()
    }
}

/// A rustls server in memory.
struct Tls {
    server: rustls::ServerConnection,
    responded: bool,
}

impl Peer for Tls {
    fn take(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.server.read_tls(&mut bytes).is_err() {
                return;
            }
        }
        if self.server.process_new_packets().is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        let mut request = Vec::new();
        while let Ok(n) = self.server.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        if !self.responded && request.ends_with(b"\r\n\r\n") {
            self.responded = true;
            let _ = self.server.writer().write_all(RESPONSE);
            self.server.send_close_notify();
        }
    }
    fn give(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.server.wants_write() {
            if self.server.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }
}

/// Drive one session against `peer` to its end; panics if it fails, since
/// a bench of a failing exchange would measure the wrong thing.
fn exchange(session: &mut Session, peer: &mut dyn Peer) {
    let addr = SocketAddr::from(([127, 0, 0, 1], 443));
    loop {
        let now = Instant::now();
        match session.step() {
            Step::Resolve { .. } => session.resolved(Ok(vec![addr]), now),
            Step::Connect(_) => session.connected(Ok(()), now),
            Step::Write(bytes) => {
                let bytes = bytes.to_vec();
                peer.take(&bytes);
                session.wrote(Ok(bytes.len()), now);
            }
            Step::Read => {
                let bytes = peer.give();
                session.received(Ok(&bytes), now);
            }
            // One address is resolved above, so no race; a ping or the
            // end stops the exchange.
            Step::Race { .. }
            | Step::Ping(_)
            | Step::Echo { .. }
            | Step::Collect { .. }
            | Step::Done => return,
        }
    }
}

fn core(c: &mut Criterion) {
    let mut group = common::group(c, "core", 1, false);

    let http = parse_target("http://127.0.0.1:80/ contains=\"pulse-farm-ok\"").expect("valid");
    group.bench_function("http-exchange", |b| {
        b.iter(|| {
            let mut s = Session::new(&http, None, DEFAULT_BODY_CAP, Instant::now());
            let mut peer = Plain {
                request: Vec::new(),
                sent: false,
            };
            exchange(&mut s, &mut peer);
            let outcome = s.finish(Instant::now());
            assert!(outcome.success, "{:?}", outcome.error);
        });
    });

    let https =
        parse_target("https://127.0.0.1:443/ contains=\"pulse-farm-ok\" insecure").expect("valid");
    let client = pulse_core::tls::insecure();
    let (server, _) = pulse_fixtures::server_config().expect("a certificate");
    group.bench_function("https-exchange", |b| {
        b.iter(|| {
            let mut s = Session::new(
                &https,
                Some(Arc::clone(&client)),
                DEFAULT_BODY_CAP,
                Instant::now(),
            );
            let mut peer = Tls {
                server: rustls::ServerConnection::new(Arc::clone(&server)).expect("a server"),
                responded: false,
            };
            exchange(&mut s, &mut peer);
            let outcome = s.finish(Instant::now());
            assert!(outcome.success, "{:?}", outcome.error);
        });
    });
    group.finish();
}

criterion_group!(benches, core);
criterion_main!(benches);
