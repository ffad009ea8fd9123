//! One absolute deadline per probe, and the shutdown cut-off.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use pulse_core::result::Outcome;
use pulse_core::session::Session;
use smol::future;
use smol::{Async, Timer};

use crate::io::{Icmp, close, drive};
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
pub(crate) async fn with_timeout(
    mut session: Session,
    start: Instant,
    limit: Duration,
    stop: &Stop,
    icmp: Option<&Icmp>,
    buf: &mut [u8],
) -> Outcome {
    let deadline = pulse_core::time::deadline(start, limit);
    // The connection lives out here, not inside `drive`, so that after a
    // timeout or cancel we still hold it and can close it with a reset.
    let mut stream: Option<Async<TcpStream>> = None;
    let end = {
        // The exchange first: one that finishes as the deadline passes is
        // done, not timed out (as with tokio's `timeout_at`).
        let exchange = future::or(
            async {
                drive(&mut session, &mut stream, icmp, buf).await;
                End::Done
            },
            async {
                Timer::at(deadline).await;
                End::Timeout
            },
        );
        future::or(
            // Checked first: once the grace period is over, cancel even a
            // probe whose exchange is also ready.
            async {
                stop.drained().await;
                End::Cancelled
            },
            exchange,
        )
        .await
    };
    let now = Instant::now();
    let reset = !matches!(end, End::Done) || session.close_with_reset();
    close(stream.take(), reset);
    match end {
        End::Done => session.finish(now),
        End::Timeout => session.timed_out(now, limit),
        End::Cancelled => session.cancelled(now, stop.cancel_message()),
    }
}
