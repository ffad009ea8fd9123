//! The synchronization primitives the core's hand-written concurrency uses.
//!
//! Every lock, condvar and atomic in pulse's own code comes from here, never
//! from `std::sync` directly, so that building with `--cfg pulse_loom` swaps
//! in loom's model-checked versions (tokio does the same in `crate::loom`).
//! The cfg is `pulse_loom`, not `loom`, because smol's dependencies read
//! plain `loom` and would switch too.
//!
//! Both halves have the same signatures. `lock()` returns the guard directly:
//! a poisoned lock means a thread panicked while holding it, and every
//! critical section here only moves plain data, so the data is still
//! consistent and we carry on (as parking_lot does).

#[cfg(not(pulse_loom))]
pub use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

#[cfg(pulse_loom)]
pub use loom::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

#[cfg(not(pulse_loom))]
use std::sync as imp;

#[cfg(pulse_loom)]
use loom::sync as imp;

/// A mutex whose `lock` never reports poisoning (see the module doc).
#[derive(Debug, Default)]
pub struct Mutex<T>(imp::Mutex<T>);

/// The guard [`Mutex::lock`] returns.
pub type MutexGuard<'a, T> = imp::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// A new mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex(imp::Mutex::new(value))
    }

    /// Lock, recovering the data if a panicking thread poisoned the lock.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A condition variable paired with [`Mutex`].
#[derive(Debug, Default)]
pub struct Condvar(imp::Condvar);

impl Condvar {
    /// A new condition variable.
    pub fn new() -> Self {
        Condvar(imp::Condvar::new())
    }

    /// Wait until notified (spurious wake-ups possible: re-check the condition).
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until notified or `timeout` passes.
    #[cfg(not(pulse_loom))]
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        match self.0.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Under loom there is no time: a timed wait is a wait that may end at
    /// any point, which loom explores as a spurious wake-up.
    #[cfg(pulse_loom)]
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        _timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        self.wait(guard)
    }

    /// Wake one waiter.
    pub fn notify_one(&self) {
        self.0.notify_one();
    }

    /// Wake every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// The deliberately broken variants of pulse's primitives, for teaching.
///
/// Only under `--cfg pulse_loom`: each primitive built `with_bug` runs one
/// small, realistic mistake in place of its correct code, and a test in
/// `loom-tests/` expects loom to find the interleaving that breaks it. A
/// normal build has no such switch, and no trace of the broken code paths.
#[cfg(pulse_loom)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// [`crate::shutdown::Shutdown::on_trigger`] reads the fast-path flag
    /// instead of the state under the lock: a callback registered while a
    /// trigger runs can be stored after the trigger took the list, and
    /// never runs.
    FlagCheckedOutsideLock,
    /// [`crate::pool::Queue::close`] sets `closed` but wakes nobody: a
    /// worker already asleep on an empty queue sleeps for ever.
    MissingWakeOnClose,
    /// [`crate::pool::InFlight::track`] checks `drained` under the lock,
    /// lets go, and inserts under a second lock: a socket registered just
    /// after the drain is never shut down, and its probe blocks for ever.
    TrackCheckThenInsert,
    /// [`crate::icmp::ReplyTable::deliver`] takes the entry out, checks the
    /// sender's address with the lock released, and puts a mismatch back:
    /// a cancel in that window finds nothing, and the entry put back leaks.
    TakeCheckPutBack,
}
