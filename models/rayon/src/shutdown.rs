//! The core's `Shutdown`, as the threads model observes it (see its
//! shutdown.rs), plus what rayon changes.
//!
//! A parallel iterator cannot be stopped halfway: every index of `0..n` is
//! handed to the closure whatever happens. So dispatch "stops" by each index
//! looking at the flag before its probe and returning at once when it is
//! set (scan.rs); the skipped targets are reported `cancelled` by the core's
//! ledger. Probes already in flight are cut off at the end of the grace
//! period by the threads model's watchdog, which here gets a thread of its
//! own (scan.rs): there is no dispatcher thread to lend it, and a pool
//! thread lent to it would be a worker lost.

pub(crate) use pulse_threads::Stop;
