//! Sockets, DNS and ICMP for the rayon model: the threads model's, unchanged.
//!
//! A rayon pool thread is a plain OS thread, so a probe on it blocks exactly
//! as it does on a threads-model worker. The comparison is only fair if the
//! probe code is the same, so this model runs the threads model's blocking
//! probe as it is (its io.rs and timeout.rs): whatever the benches show
//! between the two comes from how the work is scheduled, not from how a
//! socket is driven.

pub(crate) use pulse_threads::Icmp;
