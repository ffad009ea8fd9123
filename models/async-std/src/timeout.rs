//! One absolute deadline per probe, and the shutdown cut-off.

use std::future::Future;
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use async_std::task;
use futures_lite::future;
use pulse_core::result::Outcome;
use pulse_core::session::Session;
use pulse_core::time::deadline;

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
/// The deadline is set once: async-std's timers take a duration, so the
/// time left until `start + limit` is computed here, once, and one
/// `task::sleep` races the whole exchange (resolve, connect, TLS, request,
/// body). The timer is armed at the first poll, microseconds later, and
/// nothing re-arms it, so it fires at `start + limit` however the bytes
/// arrive: no read or write can extend it.
///
/// Not `async_std::future::timeout`, which would say it in one call: it is
/// an `async fn` taking the future it wraps, so (rust-lang/rust#62958,
/// below) it holds the whole exchange twice, 280 bytes more per waiting
/// probe.
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
        let remaining = deadline(start, limit).saturating_duration_since(Instant::now());
        // The connection lives out here, not inside `drive`, so that after a
        // timeout or cancel we still hold it and can close it with a reset.
        let mut stream: Option<TcpStream> = None;
        // An echo train's requests, likewise: closed after the end, so
        // their duplicates are counted whichever way the probe ended.
        let mut train: Option<Train> = None;
        // `or` polls its first future first: once the grace period is over,
        // cancel even a probe whose exchange is also ready. One expression,
        // no named futures: a future bound to a name stays in the state
        // while the whole expression waits, even after it was moved on.
        let end = future::or(
            async {
                stop.drained().await;
                End::Cancelled
            },
            // The exchange before the deadline: one that finishes as the
            // deadline passes is done, not timed out.
            future::or(
                async {
                    drive(&mut session, &mut stream, icmp, &mut train).await;
                    End::Done
                },
                async {
                    task::sleep(remaining).await;
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
