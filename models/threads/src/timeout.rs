//! One absolute deadline per probe, and the shutdown cut-off.
//!
//! A blocking call cannot be raced against a timer the way a future can: the
//! only thing that bounds it is its own timeout. So the deadline is fixed
//! once, `start + limit`, and every blocking call is given what is left of
//! it ([`Deadline::call`], [`Deadline::wait`]). A server that drips one byte
//! a second makes each read return early, and each next read gets a smaller
//! timeout: the last one expires at the deadline, not one full limit after
//! the last byte.

use std::io;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use pulse_core::result::Outcome;
use pulse_core::session::Session;

use crate::io::{Conn, Icmp, Train, close, drive};
use crate::shutdown::Stop;

/// Why a probe's exchange stopped before the session was done.
pub(crate) enum Cut {
    /// The probe's own deadline passed.
    Timeout,
    /// The shutdown grace period ended.
    Cancelled,
}

/// One probe's deadline, and the shutdown it also answers to.
pub(crate) struct Deadline<'a> {
    at: Instant,
    pub(crate) stop: &'a Stop,
}

impl Deadline<'_> {
    /// When the probe's deadline is.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// The timeout for the next blocking call: what is left until the
    /// deadline, rounded *up* to whole milliseconds, so that it is never
    /// zero (std rejects a zero timeout) and no call gives up before the
    /// deadline.
    fn left(&self) -> Result<Duration, Cut> {
        if self.stop.is_drained() {
            return Err(Cut::Cancelled);
        }
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Cut::Timeout);
        }
        let ms = u64::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Ok(Duration::from_millis(ms))
    }

    /// Make one blocking socket call, which `op` makes after setting the
    /// socket's timeout to the time it is given. The outer `Err` means the
    /// probe must stop; the inner result is for the session.
    pub(crate) fn call<T>(
        &self,
        op: impl FnOnce(Duration) -> io::Result<T>,
    ) -> Result<io::Result<T>, Cut> {
        let r = op(self.left()?);
        // Checked first, whatever the call returned: a socket shut down by
        // the watchdog gives end-of-stream or an error, which must not be
        // taken for the server's doing.
        if self.stop.is_drained() {
            return Err(Cut::Cancelled);
        }
        match r {
            // std reports an expired socket timeout as WouldBlock (EAGAIN).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && Instant::now() >= self.at =>
            {
                Err(Cut::Timeout)
            }
            r => Ok(r),
        }
    }

    /// Wait for a message from a helper thread (a DNS lookup, the ICMP
    /// reader) until the deadline or the end of the grace period. `None`
    /// means the helper hung up without answering.
    pub(crate) fn wait<T>(&self, rx: &Receiver<T>) -> Result<Option<T>, Cut> {
        let left = self.left()?;
        let r = select! {
            recv(rx) -> r => Ok(r.ok()),
            recv(self.stop.drained()) -> _ => Err(Cut::Cancelled),
            default(left) => Err(Cut::Timeout),
        };
        // `select!` picks at random among ready operations; once the grace
        // period is over, cancel even a probe whose answer is also ready.
        if self.stop.is_drained() {
            return Err(Cut::Cancelled);
        }
        r
    }

    /// [`wait`](Self::wait), but also ending at `until` when that comes
    /// first: `Ok(None)` then (an echo train's next send time). With no
    /// `until`, or one past the deadline, it is `wait` itself.
    pub(crate) fn wait_until<T>(
        &self,
        rx: &Receiver<T>,
        until: Option<Instant>,
    ) -> Result<Option<Option<T>>, Cut> {
        let Some(until) = until.filter(|u| *u < self.at) else {
            return self.wait(rx).map(Some);
        };
        if self.stop.is_drained() {
            return Err(Cut::Cancelled);
        }
        let r = select! {
            recv(rx) -> r => Ok(Some(r.ok())),
            recv(self.stop.drained()) -> _ => Err(Cut::Cancelled),
            default(until.saturating_duration_since(Instant::now())) => Ok(None),
        };
        // As in `wait`: after the grace period, cancel whatever was ready.
        if self.stop.is_drained() {
            return Err(Cut::Cancelled);
        }
        r
    }
}

/// Drive `session` until it is done, its deadline (`start + limit`) passes, or
/// the shutdown grace period ends, whichever comes first.
///
/// This is the whole blocking probe; the rayon model runs it unchanged.
pub fn with_timeout(
    mut session: Session,
    start: Instant,
    limit: Duration,
    stop: &Stop,
    icmp: Option<&Icmp>,
) -> Outcome {
    let deadline = Deadline {
        at: pulse_core::time::deadline(start, limit),
        stop,
    };
    // The connection lives out here, not inside `drive`, so that after a
    // timeout or cancel we still hold it and can close it with a reset.
    let mut conn: Option<Conn<'_>> = None;
    // An echo train's requests, likewise: closed after the end, so their
    // duplicates are counted whichever way the probe ended.
    let mut train: Option<Train> = None;
    let end = drive(&mut session, &mut conn, icmp, &mut train, &deadline);
    let now = Instant::now();
    let reset = end.is_err() || session.close_with_reset();
    close(conn.take(), reset);
    if let Some(mut t) = train.take() {
        session.duplicates(t.close());
    }
    match end {
        Ok(()) => session.finish(now),
        Err(Cut::Timeout) => session.timed_out(now, limit),
        Err(Cut::Cancelled) => session.cancelled(now, stop.shutdown.cancel_message()),
    }
}
