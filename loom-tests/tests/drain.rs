//! The end of the grace period: the drain of the in-flight registry racing
//! a probe that registers its socket and blocks on it.

#![cfg(pulse_loom)]

use pulse_core::pool::InFlight;
use pulse_core::sync::{Arc, Bug, Condvar, Mutex};
use pulse_loom_tests::{check, expect_failure, spawn, step};

/// Preemption bound: one registry lock and one socket condvar per probe.
/// Bound 3 with two probes finishes in about a second.
const BOUND: usize = 3;

/// A socket whose peer never sends (a stalled server): a read blocks until
/// the socket is shut down, as `shutdown(2)` wakes a thread in `read(2)`.
#[derive(Default)]
struct Socket {
    shut: Mutex<bool>,
    wake: Condvar,
}

impl Socket {
    fn read(&self) {
        let mut shut = self.shut.lock();
        while !*shut {
            shut = self.wake.wait(shut);
        }
    }

    fn shutdown(&self) {
        *self.shut.lock() = true;
        self.wake.notify_all();
    }
}

/// What a probe does (threads model, io.rs `Conn::open` and `Tracked`):
/// register the socket, block on it, deregister; or, if the registry is
/// already drained, never block at all.
fn probe(inflight: &InFlight<Arc<Socket>>) {
    let socket = Arc::new(Socket::default());
    step("track");
    match inflight.track(socket.clone()) {
        Ok(ticket) => {
            step("tracked; blocking read");
            socket.read();
            step("read returned");
            inflight.untrack(ticket);
        }
        Err(_) => step("refused: the grace period is over"),
    }
}

/// Two probes against the drain (a thread standing in for the watchdog at
/// the end of the grace period, which may come at any point): every probe
/// that blocked is woken, so the scan ends, and nothing stays registered.
#[test]
fn the_drain_wakes_every_probe_that_tracked_a_socket() {
    check(BOUND, || {
        let inflight = Arc::new(InFlight::new());
        let probes: Vec<_> = (0..2)
            .map(|i| {
                let r = inflight.clone();
                spawn(&format!("probe{i}"), move || probe(&r))
            })
            .collect();
        inflight.drain(|s: &Arc<Socket>| s.shutdown());
        for p in probes {
            p.join().unwrap();
        }
        assert!(inflight.is_empty());
        assert!(inflight.is_drained());
    });
}

/// Broken: `track` checks `drained` and inserts under two separate locks.
/// The drain can run in between: the socket is registered after the drain
/// cut everything, nobody shuts it down, and the probe blocks for ever
/// (loom reports the deadlock).
#[test]
fn broken_track_check_then_insert_leaves_a_probe_blocked() {
    let message = expect_failure(
        "broken_track_check_then_insert_leaves_a_probe_blocked",
        BOUND,
        || {
            let inflight = Arc::new(InFlight::with_bug(Bug::TrackCheckThenInsert));
            let r = inflight.clone();
            let p = spawn("probe", move || probe(&r));
            step("drain: cut every tracked socket");
            inflight.drain(|s: &Arc<Socket>| s.shutdown());
            step("drained");
            p.join().unwrap();
        },
    );
    assert!(message.to_lowercase().contains("deadlock"), "{message}");
}
