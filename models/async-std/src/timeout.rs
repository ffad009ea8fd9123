//! One absolute deadline per probe, and the shutdown cut-off.

use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use futures_lite::future;
use pulse_core::result::Outcome;
use pulse_core::session::Session;
use pulse_core::time::deadline;

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
/// The deadline is set once: async-std's `timeout` takes a duration, so the
/// time left until `start + limit` is computed here, once, and one timer
/// wraps the whole exchange (resolve, connect, TLS, request, body). The timer
/// is armed at the first poll, microseconds later, and nothing re-arms it, so
/// it fires at `start + limit` however the bytes arrive: no read or write can
/// extend it.
pub(crate) async fn with_timeout(
    mut session: Session,
    start: Instant,
    limit: Duration,
    stop: &Stop,
    icmp: Option<&Icmp>,
    buf: &mut [u8],
) -> Outcome {
    let remaining = deadline(start, limit).saturating_duration_since(Instant::now());
    // The connection lives out here, not inside `drive`, so that after a
    // timeout or cancel we still hold it and can close it with a reset.
    let mut stream: Option<TcpStream> = None;
    let end = {
        let exchange =
            async_std::future::timeout(remaining, drive(&mut session, &mut stream, icmp, buf));
        // `or` polls its first future first: once the grace period is over,
        // cancel even a probe whose exchange is also ready.
        future::or(
            async {
                stop.drained().await;
                End::Cancelled
            },
            async {
                if exchange.await.is_ok() {
                    End::Done
                } else {
                    End::Timeout
                }
            },
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
