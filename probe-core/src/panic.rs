//! Panic isolation: a panic inside one probe becomes that target's result.
//!
//! Thread models wrap the probe call in `std::panic::catch_unwind`; async
//! models wrap the probe future in [`CatchUnwind`], which catches a panic
//! raised by any `poll` of the future. Either way the worker survives and the
//! scan goes on; the target is reported with `error.kind = "panicked"`.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The text of a panic payload (`&str` or `String` payloads; others say so).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// A future that turns a panic in `F::poll` into `Err(panic message)`.
///
/// The inner future is boxed so that no unsafe pin projection is needed
/// (the crate forbids `unsafe`); one allocation per probe is noise next to a
/// TCP connection.
pub struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

/// Wrap `fut` so that a panic while polling it becomes `Err(message)`.
pub fn catch_unwind_future<F: Future>(fut: F) -> CatchUnwind<F> {
    CatchUnwind {
        inner: Box::pin(fut),
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // AssertUnwindSafe: after a panic the inner future is never polled
        // again (we return Ready), so no broken invariant can be observed.
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(message(payload.as_ref()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn a_panicking_future_becomes_err() {
        let mut f = std::pin::pin!(catch_unwind_future(async {
            if true {
                panic!("probe exploded");
            }
            1
        }));
        let mut cx = Context::from_waker(Waker::noop());
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = f.as_mut().poll(&mut cx);
        std::panic::set_hook(prev);
        assert_eq!(r, Poll::Ready(Err("probe exploded".to_string())));
    }

    #[test]
    fn a_normal_future_passes_through() {
        let mut f = std::pin::pin!(catch_unwind_future(async { 7 }));
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(7)));
    }
}
