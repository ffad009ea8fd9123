//! The core's `Shutdown`, seen through an `event_listener::Event`.
//!
//! `Shutdown::on_trigger` runs our callback once, on whatever thread
//! triggered (the signal thread, a test); the callback notifies every
//! listener of the event, which wakes every probe waiting in
//! [`Stop::drained`]. An event remembers nothing: a notification with no
//! listener registered is lost. So the fact "triggered" is kept in the core's
//! flag, and the event is only the doorbell that says "look at the flag
//! again"; `drained` checks the flag on both sides of registering its
//! listener so that it can never miss the ring.
//!
//! The price: the event keeps its listeners in one list behind one lock, and
//! every probe's listener takes that lock when it is created, each time it is
//! polled (on every wake-up of its probe) and when it is dropped. An
//! uncontended lock is cheap next to a probe's syscalls, but with many
//! threads it is one more place where they meet.

use std::sync::Arc;
use std::time::Instant;

use event_listener::Event;
use pulse_core::shutdown::Shutdown;
use smol::Timer;

/// Shutdown as smol tasks observe it.
pub(crate) struct Stop {
    /// The core's handle: the flag, the grace period and its cancel message.
    pub(crate) shutdown: Shutdown,
    /// Rung once, for all listeners, when the shutdown triggers. Shared with
    /// the callback, which the `Shutdown` keeps (and may run on any thread).
    event: Arc<Event>,
}

impl Stop {
    pub(crate) fn new(shutdown: &Shutdown) -> Self {
        let event = Arc::new(Event::new());
        let ring = event.clone();
        shutdown.on_trigger(move || {
            // Every waiting probe, not just one: they all must stop.
            ring.notify(usize::MAX);
        });
        Stop {
            shutdown: shutdown.clone(),
            event,
        }
    }

    /// Whether dispatch must stop.
    pub(crate) fn is_triggered(&self) -> bool {
        self.shutdown.is_triggered()
    }

    /// Wait until `at` (a spread probe's start time); false if shutdown
    /// was triggered first, and the probe must not start.
    pub(crate) async fn until(&self, at: Instant) -> bool {
        let timer = async {
            Timer::at(at).await;
            !self.is_triggered()
        };
        let triggered = async {
            self.triggered().await;
            false
        };
        smol::future::or(timer, triggered).await
    }

    /// Resolves when shutdown is triggered.
    async fn triggered(&self) {
        // The classic event-listener pattern. The trigger sets the flag
        // first and rings the event after, so between our first check and
        // `listen()` the trigger may happen and ring for nobody; the check
        // after `listen()` catches exactly that case, and any ring after it
        // reaches our listener. Without it, a probe could sleep through
        // shutdown until its own deadline. The loop is the usual guard in
        // case a wake-up ever arrives with the flag still clear.
        while !self.shutdown.is_triggered() {
            let listener = self.event.listen();
            if self.shutdown.is_triggered() {
                break;
            }
            listener.await;
        }
    }

    /// Resolves when shutdown was triggered and the grace period has passed.
    pub(crate) async fn drained(&self) {
        self.triggered().await;
        if let Some(at) = self.shutdown.drain_deadline() {
            Timer::at(at).await;
        }
    }
}
