//! The core's `Shutdown`, seen through a closed async-std channel.
//!
//! `Shutdown::on_trigger` runs our callback once, on whatever thread
//! triggered (the signal thread, a test); the callback drops the channel's
//! only sender. Nothing is ever sent: the channel exists to be closed. A
//! closed channel is a broadcast, because closing wakes every receiver
//! waiting in `recv` (each gets `Err`), and it is a lasting one, because a
//! receiver that arrives later sees the channel already closed and returns
//! at once. That is what [`Stop::drained`] needs: every in-flight probe
//! waits on it, and a probe may start waiting after the trigger. (A message
//! would not do: it is received by one receiver, not all.)

use std::time::Instant;

use async_std::channel::{self, Receiver};
use pulse_core::shutdown::Shutdown;

/// Shutdown as async-std tasks observe it.
pub(crate) struct Stop {
    /// The core's handle: the flag, the grace period and its cancel message.
    pub(crate) shutdown: Shutdown,
    /// Closed at the trigger, never written to.
    rx: Receiver<()>,
}

impl Stop {
    pub(crate) fn new(shutdown: &Shutdown) -> Self {
        let (tx, rx) = channel::bounded::<()>(1);
        // Dropping the last sender closes the channel, which wakes every
        // receiver. If the trigger already happened, this runs at once.
        shutdown.on_trigger(move || drop(tx));
        Stop {
            shutdown: shutdown.clone(),
            rx,
        }
    }

    /// Whether dispatch must stop.
    pub(crate) fn is_triggered(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// Wait until `at` (a spread probe's start time); false if shutdown
    /// was triggered first, and the probe must not start.
    pub(crate) async fn until(&self, at: Instant) -> bool {
        let wait = at.saturating_duration_since(Instant::now());
        // `recv` returns only when the channel closes, i.e. at the trigger.
        match async_std::future::timeout(wait, self.rx.recv()).await {
            Ok(_closed) => false,
            Err(_timed_out) => !self.is_triggered(),
        }
    }

    /// Resolves when shutdown was triggered and the grace period has passed.
    pub(crate) async fn drained(&self) {
        // Returns only once the channel is closed, i.e. at the trigger: the
        // sender lives in the Shutdown's callback list, and `self.shutdown`
        // keeps that alive, so it cannot be dropped any other way.
        let _closed = self.rx.recv().await;
        if let Some(at) = self.shutdown.drain_deadline() {
            // async-std sleeps for a duration, not until an instant.
            async_std::task::sleep(at.saturating_duration_since(Instant::now())).await;
        }
    }
}
