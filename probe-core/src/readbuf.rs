//! The read buffer: one per OS thread, lent out only while bytes are read.
//!
//! A probe spends nearly all its life waiting: for a connect, for the
//! server's first byte, for a timeout. A buffer it owned for that whole time
//! would be 16 KiB per probe in flight (on this machine that was most of the
//! ~13 KB of resident memory an idle blackholed TCP probe cost the async
//! models, where a task alone is a few hundred bytes), and it would hide the
//! one advantage the async models exist to show. So no probe owns one:
//! every model reads through [`with_read_buf`], which lends the calling
//! thread's buffer for the length of one read and the session's copy of
//! what arrived. The async models call it inside `poll_read`, which never
//! waits, so a probe waiting for bytes holds no buffer; the blocking models
//! call it around their blocking read, so each of their threads has one,
//! which is the same rule applied to a model whose every probe is a thread.

use std::cell::RefCell;

/// Bytes one read may take: 16 KiB, the most a TLS record can carry, so a
/// record never needs two reads because the buffer was short.
pub const READ_BUF_LEN: usize = 16 * 1024;

thread_local! {
    /// Allocated on a thread's first read, freed when the thread ends.
    static BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF_LEN].into_boxed_slice());
}

/// Run `f` with this thread's read buffer. `f` must not wait: it reads
/// (without blocking, for the async models) and hands the bytes to the
/// session, and the buffer goes back to the thread when it returns.
///
/// If `f` calls this again (nothing in pulse does), the inner call gets a
/// fresh buffer of its own instead of panicking on the borrowed one.
pub fn with_read_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut vec![0; READ_BUF_LEN]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_buffer_per_thread_and_reentry_does_not_panic() {
        let first = with_read_buf(|b| {
            b[0] = 7;
            b.as_ptr() as usize
        });
        let again = with_read_buf(|b| (b.as_ptr() as usize, b[0]));
        assert_eq!(again, (first, 7), "the same buffer, lent again");
        let nested = with_read_buf(|outer| {
            let inner = with_read_buf(|inner| inner.as_ptr() as usize);
            (outer.as_ptr() as usize, inner)
        });
        assert_ne!(nested.0, nested.1, "a nested call gets its own buffer");
        let other = std::thread::spawn(|| with_read_buf(|b| (b.len(), b[0])))
            .join()
            .unwrap();
        assert_eq!(other, (READ_BUF_LEN, 0), "another thread has its own");
    }
}
