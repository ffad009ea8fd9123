//! One absolute deadline per probe, and the shutdown cut-off.

use std::future::Future;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pulse_core::result::Outcome;
use pulse_core::session::Session;
use smol::future;
use smol::{Async, Timer};

use crate::io::{Icmp, Train, close, drive};
use crate::shutdown::Stop;

/// How a probe's exchange ended.
enum End {
    Done,
    Timeout,
    Cancelled,
}

/// Drive `session` until it is done, its deadline (`start + limit`) passes, or
/// the shutdown grace period ends, whichever comes first.
///
/// The deadline is set once: one `Timer::at` races the whole exchange
/// (resolve, connect, TLS, request, body), so no read or write can extend it.
/// `future::or` polls its first future first, so the order of the arms is
/// the tie-break, like tokio's `biased` select.
///
/// A plain `fn` returning an `async move` block rather than an `async fn`:
/// an `async fn` keeps its arguments twice in its state (once as passed,
/// once as locals; rust-lang/rust#62958), and the session is 300 bytes that
/// every waiting probe would hold twice. The block captures it once.
// Not an `async fn`, on purpose: see the last paragraph above.
#[allow(clippy::manual_async_fn)]
pub(crate) fn with_timeout<'a>(
    mut session: Session,
    start: Instant,
    limit: Duration,
    stop: &'a Stop,
    icmp: Option<&'a Icmp>,
) -> impl Future<Output = Outcome> + 'a {
    async move {
        let deadline = pulse_core::time::deadline(start, limit);
        // The connection lives out here, not inside `drive`, so that after a
        // timeout or cancel we still hold it and can close it with a reset.
        let mut stream: Option<Async<TcpStream>> = None;
        // An echo train's requests, likewise: closed after the end, so
        // their duplicates are counted whichever way the probe ended.
        let mut train: Option<Train> = None;
        // One expression, no named futures: a future bound to a name stays
        // in the state while the whole expression waits, even after it was
        // moved on.
        let end = future::or(
            // Checked first: once the grace period is over, cancel even a
            // probe whose exchange is also ready.
            async {
                stop.drained().await;
                End::Cancelled
            },
            // The exchange before the deadline: one that finishes as the
            // deadline passes is done, not timed out (as with tokio's
            // `timeout_at`).
            future::or(
                async {
                    drive(&mut session, &mut stream, icmp, &mut train).await;
                    End::Done
                },
                async {
                    Timer::at(deadline).await;
                    End::Timeout
                },
            ),
        )
        .await;
        let now = Instant::now();
        let reset = !matches!(end, End::Done) || session.close_with_reset();
        close(stream.take(), reset);
        if let Some(mut t) = train.take() {
            session.duplicates(t.close());
        }
        match end {
            End::Done => session.finish(now),
            End::Timeout => session.timed_out(now, limit),
            End::Cancelled => session.cancelled(now, stop.shutdown.cancel_message()),
        }
    }
}
