//! The scan's stop signal, shared by the signal handler, tests and the model.
//!
//! Stopping a scan is a protocol, the same in every model (README, `--grace`;
//! docs/guide.md, "4. Graceful shutdown", shows it in each model):
//! 1. [`Shutdown::trigger`] (first SIGINT/SIGTERM, or a test) flips the flag;
//!    dispatch checks it before starting each probe, so no new probe starts.
//! 2. Probes already in flight may go on until
//!    min(their own deadline, trigger time + grace) ([`Shutdown::drain_deadline`]).
//! 3. Whatever has not finished then is reported `cancelled`.
//!
//! Every model reads [`Shutdown::is_triggered`] before each dispatch and
//! registers a callback with [`Shutdown::on_trigger`] that wakes its own way
//! of waiting (a watch channel, an event, a channel dropped, the job queue
//! closed); [`Shutdown::wait_timeout`] is for a thread with nothing else to
//! wait on (`pulse serve` between rounds). The trigger time is kept, not just
//! a flag, because the grace period is counted from it.

use std::time::{Duration, Instant};

#[cfg(pulse_loom)]
use crate::sync::Bug;
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering};

type Callback = Box<dyn FnOnce() + Send>;

/// A cloneable handle; every clone sees the same trigger.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    /// Fast path for `is_triggered`, read before every dispatch.
    flag: AtomicBool,
    /// How long in-flight probes may go on after the trigger.
    grace: Duration,
    state: Mutex<State>,
    /// Wakes threads blocked in `wait_timeout`.
    cond: Condvar,
    #[cfg(pulse_loom)]
    bug: Option<Bug>,
}

struct State {
    triggered_at: Option<Instant>,
    callbacks: Vec<Callback>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .field("grace", &self.inner.grace)
            .finish()
    }
}

impl Shutdown {
    /// A handle not yet triggered, with `grace` for in-flight probes.
    pub fn new(grace: Duration) -> Self {
        Shutdown {
            inner: Arc::new(Inner {
                flag: AtomicBool::new(false),
                grace,
                state: Mutex::new(State {
                    triggered_at: None,
                    callbacks: Vec::new(),
                }),
                cond: Condvar::new(),
                #[cfg(pulse_loom)]
                bug: None,
            }),
        }
    }

    /// A handle that runs the broken code of `bug` (see [`Bug`]).
    #[cfg(pulse_loom)]
    pub fn with_bug(grace: Duration, bug: Bug) -> Self {
        let mut s = Shutdown::new(grace);
        if let Some(inner) = Arc::get_mut(&mut s.inner) {
            inner.bug = Some(bug);
        }
        s
    }

    /// The grace period in-flight probes get after the trigger.
    pub fn grace(&self) -> Duration {
        self.inner.grace
    }

    /// Why a probe cut off by the end of the grace period was cancelled:
    /// the one wording every model reports.
    pub fn cancel_message(&self) -> String {
        format!(
            "scan interrupted: probe still running when the {} grace period ended",
            crate::session::fmt_duration(self.inner.grace)
        )
    }

    /// Stop the scan as of `now`. Returns true for the first trigger; later
    /// calls change nothing (the grace period counts from the first).
    pub fn trigger(&self, now: Instant) -> bool {
        let callbacks = {
            let mut s = self.inner.state.lock();
            if s.triggered_at.is_some() {
                return false;
            }
            s.triggered_at = Some(now);
            // Set under the lock so that `on_trigger`, which checks the state
            // under the same lock, can never miss the transition.
            self.inner.flag.store(true, Ordering::Release);
            std::mem::take(&mut s.callbacks)
        };
        self.inner.cond.notify_all();
        // Run callbacks outside the lock: they may take locks of their own.
        for cb in callbacks {
            cb();
        }
        true
    }

    /// Whether the scan is stopping.
    pub fn is_triggered(&self) -> bool {
        self.inner.flag.load(Ordering::Acquire)
    }

    /// When the trigger happened, if it has.
    pub fn triggered_at(&self) -> Option<Instant> {
        self.inner.state.lock().triggered_at
    }

    /// The instant in-flight probes must be finished by, once triggered.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.triggered_at()
            .map(|t| crate::time::deadline(t, self.inner.grace))
    }

    /// Run `cb` once, when the trigger happens (at once if it already has).
    pub fn on_trigger(&self, cb: impl FnOnce() + Send + 'static) {
        #[cfg(pulse_loom)]
        if self.inner.bug == Some(Bug::FlagCheckedOutsideLock) {
            if self.is_triggered() {
                return cb();
            }
            self.inner.state.lock().callbacks.push(Box::new(cb));
            return;
        }
        {
            let mut s = self.inner.state.lock();
            if s.triggered_at.is_none() {
                s.callbacks.push(Box::new(cb));
                return;
            }
        }
        cb();
    }

    /// Block the calling thread until triggered or `timeout` passes. Returns
    /// whether it is triggered.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let s = self.inner.state.lock();
        if s.triggered_at.is_some() {
            return true;
        }
        let s = self.inner.cond.wait_timeout(s, timeout);
        s.triggered_at.is_some()
    }
}

#[cfg(all(test, not(pulse_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn first_trigger_wins_and_sets_the_drain_deadline() {
        let s = Shutdown::new(Duration::from_secs(2));
        assert!(!s.is_triggered());
        assert_eq!(s.drain_deadline(), None);
        let t0 = Instant::now();
        assert!(s.trigger(t0));
        assert!(!s.trigger(t0 + Duration::from_secs(5)));
        assert!(s.is_triggered());
        assert_eq!(s.drain_deadline(), Some(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn callbacks_run_once_before_or_after_trigger() {
        let s = Shutdown::new(Duration::ZERO);
        let n = Arc::new(AtomicUsize::new(0));
        let n1 = n.clone();
        s.on_trigger(move || {
            n1.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 0);
        s.trigger(Instant::now());
        s.trigger(Instant::now());
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let n2 = n.clone();
        s.on_trigger(move || {
            n2.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(
            n.load(Ordering::SeqCst),
            11,
            "late registration runs at once"
        );
    }

    #[test]
    fn a_blocked_thread_wakes_on_trigger() {
        let s = Shutdown::new(Duration::ZERO);
        let s2 = s.clone();
        let h = std::thread::spawn(move || s2.wait_timeout(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        s.trigger(Instant::now());
        assert!(h.join().unwrap());
        assert!(!Shutdown::new(Duration::ZERO).wait_timeout(Duration::from_millis(1)));
    }
}
