//! Deadline arithmetic that cannot overflow.
//!
//! `Instant + Duration` panics when the sum does not fit. Inside a probe
//! every model turns that panic into a `panicked` result, but the blocking
//! models sum the grace period on their watchdog thread, outside any probe,
//! where it ends the scan: the models would disagree. Every duration pulse
//! accepts is capped at [`crate::target::MAX_DURATION`], so no sum here
//! overflows in practice; this is the second wall, so that a duration that
//! slipped past the first (a new source, a test) is a deadline never reached.

use std::time::{Duration, Instant};

/// How far off a deadline may be: 30 years, which is tokio's own "far
/// future". Not the latest instant std can hold: runtimes add their own
/// small roundings to a deadline (tokio rounds timers up to the next
/// millisecond), and at the very end of the range that addition panics
/// inside them.
pub const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

/// `start + after`, with `after` cut to [`FAR`]: a deadline so far off it
/// never comes is what an absurdly long duration means.
pub fn deadline(start: Instant, after: Duration) -> Instant {
    // Linux's monotonic clock holds 2^63 seconds, so 30 years after any
    // instant always fits; were it not to, the deadline is now, which ends
    // the probe as a timeout rather than a panic.
    start.checked_add(after.min(FAR)).unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_sums_are_exact() {
        let t = Instant::now();
        assert_eq!(
            deadline(t, Duration::from_secs(2)),
            t + Duration::from_secs(2)
        );
    }

    #[test]
    fn an_overflowing_sum_is_cut_to_far_instead_of_panicking() {
        let t = Instant::now();
        assert_eq!(deadline(t, Duration::MAX), t + FAR);
        assert_eq!(
            deadline(t, Duration::from_secs(u64::MAX)),
            t + FAR,
            "timeout=18446744073709551615s"
        );
        // What a runtime adds to round a timer still fits.
        assert!(
            deadline(t, Duration::MAX)
                .checked_add(Duration::from_secs(3600))
                .is_some()
        );
    }
}
