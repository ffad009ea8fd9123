//! `pulse serve`: a `/probe` whose client goes away (a Prometheus scrape
//! that timed out) is cancelled at once, on every model.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::serve::{Serve, sample};
use super::util::*;

/// The bound the issue states: the target's server sees the probe's
/// connection close within this long of the client closing its own.
const CLOSE_WITHIN: Duration = Duration::from_millis(100);

/// A server that accepts connections and never answers. For each
/// connection it reports when the request head arrived, then when the
/// connection ended (EOF or reset), as instants.
struct Stall {
    addr: SocketAddr,
    events: mpsc::Receiver<(&'static str, Instant)>,
}

impl Stall {
    fn start() -> Stall {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    let mut told = false;
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                let _ = tx.send(("closed", Instant::now()));
                                return;
                            }
                            Ok(n) => {
                                head.extend_from_slice(&buf[..n]);
                                if !told && head.windows(4).any(|w| w == b"\r\n\r\n") {
                                    told = true;
                                    let _ = tx.send(("request", Instant::now()));
                                }
                            }
                        }
                    }
                });
            }
        });
        Stall { addr, events }
    }

    fn next(&self, what: &str) -> Instant {
        let (got, at) = self
            .events
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the stalling server saw no {what} in 20 s"));
        assert_eq!(got, what);
        at
    }
}

fn cancels_when_the_client_goes(runtime: &str) {
    let stall = Stall::start();
    // The probe's own deadline is far away: only the cancel can end it in time.
    let target = format!("http://{}/slow", stall.addr);
    // The round starts its first target at once and the second half the
    // spread later (50 minutes): the stalling server sees only the /probe.
    let file = targets_file(&[
        format!("tcp://{}", pulse_fixtures::closed_port()),
        format!("{target} timeout=60s"),
    ]);
    let serve = Serve::start(
        runtime,
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "1h",
            "--spread",
            "50m",
        ],
    );

    let mut client = TcpStream::connect(serve.addr).unwrap();
    let query = target.replace(':', "%3A").replace('/', "%2F");
    client
        .write_all(format!("GET /probe?target={query} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    stall.next("request");
    drop(client);
    let closed_client = Instant::now();
    let closed_probe = stall.next("closed");
    let took = closed_probe.saturating_duration_since(closed_client);
    println!("{runtime}: client closed -> probe's connection closed in {took:?}");
    assert!(
        took < CLOSE_WITHIN,
        "{runtime}: the probe's connection closed {took:?} after the client's (bound {CLOSE_WITHIN:?})\n{}",
        serve.log()
    );

    let m = serve.wait_for(Duration::from_secs(10), |m| {
        sample(
            m,
            r#"pulse_probe_requests_total{kind="http",result="cancelled"}"#,
        ) == Some(1.0)
    });
    assert!(
        !m.contains(r#"pulse_probes_total{kind="http""#),
        "no round probe of the target ran: {m}"
    );
    // The exporter goes on answering.
    assert_eq!(serve.get("/healthz"), (200, "ok\n".into()));
}

#[test]
fn a_probe_is_cancelled_when_its_client_goes_tokio() {
    cancels_when_the_client_goes("tokio");
}

#[test]
fn a_probe_is_cancelled_when_its_client_goes_smol() {
    cancels_when_the_client_goes("smol");
}

#[test]
fn a_probe_is_cancelled_when_its_client_goes_async_std() {
    cancels_when_the_client_goes("async-std");
}

#[test]
fn a_probe_is_cancelled_when_its_client_goes_threads() {
    cancels_when_the_client_goes("threads");
}

#[test]
fn a_probe_is_cancelled_when_its_client_goes_rayon() {
    cancels_when_the_client_goes("rayon");
}
