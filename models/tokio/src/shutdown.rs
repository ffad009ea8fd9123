//! The core's `Shutdown`, seen through a tokio `watch` channel.
//!
//! `Shutdown::on_trigger` runs our callback once, on whatever thread
//! triggered (the signal thread, a test); the callback flips the watch
//! channel, which wakes every probe waiting in [`Stop::drained`]. A watch
//! channel rather than `Notify` because a late subscriber must still see
//! that the trigger already happened.

use pulse_core::shutdown::Shutdown;
use tokio::sync::watch;

/// Shutdown as tokio tasks observe it.
pub(crate) struct Stop {
    /// The core's handle: the flag, the grace period and its cancel message.
    pub(crate) shutdown: Shutdown,
    rx: watch::Receiver<bool>,
}

impl Stop {
    pub(crate) fn new(shutdown: &Shutdown) -> Self {
        let (tx, rx) = watch::channel(false);
        shutdown.on_trigger(move || {
            // No receiver left means the scan is over; nothing to tell.
            let _ = tx.send(true);
        });
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
    pub(crate) async fn until(&self, at: std::time::Instant) -> bool {
        let mut rx = self.rx.clone();
        let triggered = async {
            if rx.wait_for(|triggered| *triggered).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => !self.is_triggered(),
            () = triggered => false,
        }
    }

    /// Resolves when shutdown was triggered and the grace period has passed.
    pub(crate) async fn drained(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|triggered| *triggered).await.is_err() {
            // The sender lives in the Shutdown, which outlives the scan; if
            // it is gone, no trigger can come: never resolve.
            std::future::pending::<()>().await;
        }
        if let Some(at) = self.shutdown.drain_deadline() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        }
    }
}
