//! One absolute deadline per probe, and the shutdown cut-off: the threads
//! model's, unchanged (see io.rs for why).
//!
//! Before every blocking call the socket's timeout is set to what is left
//! until the probe's fixed deadline, so a drip-feeding server cannot extend
//! it; DNS and ICMP waits are channel receives with the same deadline. rayon
//! adds nothing here: it has no timers, and a pool thread blocked in a
//! socket call is invisible to its scheduler.

pub(crate) use pulse_threads::with_timeout;
