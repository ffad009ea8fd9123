//! The core's `Shutdown`, as blocking threads observe it: two channels that
//! never carry a message and one registry of in-flight sockets.
//!
//! A future can be dropped mid-read; a thread blocked in `read(2)` cannot be
//! told anything until the call returns. So the end of the grace period has
//! to reach it through the kernel: the watchdog ([`Stop::watch`]) keeps a
//! second reference to every open probe socket (registered with
//! [`Stop::track`]) and, when the grace period ends, shuts them all down,
//! which makes the blocked call return at once. Waits that are not socket
//! calls (DNS, ICMP replies) are `select!`s that include [`Stop::drained`].
//!
//! The registry is the core's [`InFlight`], which `loom-tests/` checks:
//! a socket registered and the drain cannot cross, so no probe is left
//! blocked on a socket nobody will shut down.
//!
//! The channels are crossbeam channels used as broadcast signals: nothing is
//! ever sent on them, and dropping the sender disconnects the channel, which
//! every receiver sees, at once and for good, whenever it looks. A late
//! receiver still sees it, which a one-off notification would not give.

use std::io;
use std::net::TcpStream;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, select};
use pulse_core::pool::InFlight;
use pulse_core::shutdown::Shutdown;
use pulse_core::sync::{Arc, Mutex};

/// Shutdown as the scan's threads observe it.
pub struct Stop {
    /// The core's handle: the flag, the grace period and its cancel message.
    pub(crate) shutdown: Shutdown,
    /// Disconnects when the shutdown triggers: the watchdog selects on it.
    triggered: Receiver<()>,
    /// Disconnects when the grace period ends: every probe waiting in a
    /// `select!` (DNS, ICMP) wakes and reports itself cancelled.
    drained: Receiver<()>,
    /// The sending half of `drained`, dropped at the drain.
    drain: Mutex<Option<Sender<()>>>,
    /// A second reference to each open probe socket. Registering a socket
    /// and the drain take one lock, so they cannot cross: either the socket
    /// is registered first and gets shut down, or the registration sees the
    /// drain and the probe stops before connecting.
    inflight: InFlight<Arc<TcpStream>>,
}

/// A socket's place in the registry; leaving it on drop, so that no path
/// out of a probe (an error, a timeout, a panic unwinding) forgets it.
pub(crate) struct Tracked<'a> {
    stop: &'a Stop,
    ticket: u64,
}

impl Stop {
    /// Shutdown as seen by one scan.
    pub fn new(shutdown: &Shutdown) -> Self {
        let (trigger, triggered) = bounded(1);
        // Runs once, on whatever thread triggers (the signal thread, a
        // test): dropping the sender is the whole message.
        shutdown.on_trigger(move || drop(trigger));
        let (drain, drained) = bounded(1);
        Stop {
            shutdown: shutdown.clone(),
            triggered,
            drained,
            drain: Mutex::new(Some(drain)),
            inflight: InFlight::new(),
        }
    }

    /// The core's shutdown handle this scan answers to.
    pub(crate) fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Whether dispatch must stop.
    pub fn is_triggered(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// Block until `at` (a spread probe's start time); false if shutdown
    /// was triggered first, and the probe must not start.
    pub fn until(&self, at: std::time::Instant) -> bool {
        // Nothing is ever sent: `recv_deadline` returns only with a
        // timeout, or with a disconnect, which is the trigger.
        match self.triggered.recv_deadline(at) {
            Err(RecvTimeoutError::Timeout) => !self.is_triggered(),
            _ => false,
        }
    }

    /// Disconnects when shutdown was triggered and the grace period has
    /// passed (for `select!`).
    pub(crate) fn drained(&self) -> &Receiver<()> {
        &self.drained
    }

    /// Whether the grace period is over: in-flight probes must stop.
    pub(crate) fn is_drained(&self) -> bool {
        self.inflight.is_drained()
    }

    /// The watchdog: sleep until the trigger, then until the end of the
    /// grace period, then cut off every probe still in flight. Returns early
    /// when `done` disconnects (every worker has finished), so a scan that
    /// ends normally is not held up; nothing is ever sent on `done`.
    pub fn watch(&self, done: &Receiver<()>) {
        select! {
            recv(self.triggered) -> _ => {}
            recv(done) -> _ => return,
        }
        let Some(at) = self.shutdown.drain_deadline() else {
            return;
        };
        if let Err(RecvTimeoutError::Timeout) = done.recv_deadline(at) {
            self.drain();
        }
    }

    /// End the grace period now.
    fn drain(&self) {
        // First the broadcast (probes waiting in a `select!` wake), then the
        // registry: it sets the flag `is_drained` reads before it shuts any
        // socket down, so a probe woken by the shutdown finds the flag set
        // and reports `cancelled` instead of whatever error (or early end of
        // stream) the dead socket gave it.
        drop(self.drain.lock().take());
        self.inflight.drain(|stream| {
            // Wakes the thread blocked on this socket at once: a read sees
            // end of stream, a write fails, and a connect still waiting for
            // the SYN-ACK is aborted (Linux). The probe still owns its
            // reference and closes the socket as usual.
            let _ = stream.shutdown(std::net::Shutdown::Both);
        });
    }

    /// Register a probe socket so the watchdog can reach it, before the
    /// first blocking call on it. Fails once the grace period is over: the
    /// probe must not start a connect nobody would cut off.
    pub(crate) fn track(&self, stream: &Arc<TcpStream>) -> io::Result<Tracked<'_>> {
        match self.inflight.track(stream.clone()) {
            Ok(ticket) => Ok(Tracked { stop: self, ticket }),
            Err(_) => Err(io::Error::other("the shutdown grace period is over")),
        }
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        // Our reference is dropped here, outside the registry's lock: if it
        // is the last one, dropping it closes the socket, a system call.
        drop(self.stop.inflight.untrack(self.ticket));
    }
}
