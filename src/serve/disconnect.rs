//! Noticing that an HTTP client has gone while its request is handled.
//!
//! A `/probe` request runs a probe on the connection's thread, and the
//! answer is only worth something to a client that still waits for it.
//! Prometheus gives up on a scrape at its `scrape_timeout` and closes the
//! connection; without this, the probe would go on to its own deadline,
//! holding a connection slot and a socket to the target for nobody. Go's
//! net/http server (blackbox_exporter's) cancels a request's context the
//! same way, when a background read sees the client's EOF.
//!
//! A [`Watch`] is a thread that waits in poll(2) on two descriptors: the
//! client's socket (readable or hung up) and one end of a socket pair whose
//! other end the handler closes when it is done. So it notices a close at
//! once, costs nothing while it waits, and ends at once when the request
//! is answered, with no polling interval on either side. What counts as
//! gone: the client closed its side (EOF, which is what a timed-out scrape
//! sends; a client that half-closes after its request counts too, as in
//! Go), reset it, or the socket reports an error. Bytes from the client
//! (a pipelined next request) mean it is still there: the watch ends
//! without a verdict, since an EOF behind unread bytes cannot be seen
//! without reading them, and the request goes on as before.

use std::io;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

/// A running watch on one client connection; see the module doc.
pub(crate) struct Watch {
    /// Closing this end wakes the watching thread (its end reads EOF).
    wake: Option<UnixStream>,
    /// The watching thread; it returns whether the client had gone.
    thread: Option<JoinHandle<bool>>,
}

impl Watch {
    /// Watch `client` on a thread of its own; call `gone` at once if it
    /// goes away before [`Watch::finish`].
    pub(crate) fn start(
        client: &TcpStream,
        gone: impl FnOnce() + Send + 'static,
    ) -> io::Result<Watch> {
        // A second handle on the same socket: polling it reads nothing
        // and leaves the connection's own reads alone.
        let client = client.try_clone()?;
        let (wake, woken) = UnixStream::pair()?;
        let thread = std::thread::Builder::new()
            .name("pulse-http-watch".into())
            .spawn(move || {
                let left = watch(&client, &woken);
                if left {
                    gone();
                }
                left
            })?;
        Ok(Watch {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Stop watching; whether the client had gone meanwhile.
    pub(crate) fn finish(mut self) -> bool {
        self.stop()
    }

    fn stop(&mut self) -> bool {
        drop(self.wake.take());
        // The thread only returns; a panic in `gone` is reported as gone.
        self.thread.take().is_some_and(|t| t.join().unwrap_or(true))
    }
}

impl Drop for Watch {
    /// A handler that unwinds past its watch still ends the thread.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait until the client goes (true) or the watch is woken, or the client
/// sends more bytes, or the wait cannot be done (false).
fn watch(client: &TcpStream, woken: &UnixStream) -> bool {
    loop {
        let mut fds = [
            PollFd::new(client, PollFlags::IN | PollFlags::RDHUP),
            PollFd::new(woken, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            // No verdict: the request goes on to its own deadline, as it
            // would without a watch.
            Err(_) => return false,
        }
        if !fds[1].revents().is_empty() {
            return false;
        }
        let client_events = fds[0].revents();
        if client_events.is_empty() {
            continue;
        }
        if client_events.intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR) {
            return true;
        }
        // Readable: EOF or a reset reads as gone, bytes as still there.
        return match client.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::Interrupted,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{Shutdown, TcpListener};
    use std::sync::mpsc;
    use std::time::Duration;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (s, c)
    }

    #[test]
    fn a_close_is_seen_and_reported() {
        let (server, client) = pair();
        let (tx, rx) = mpsc::channel();
        let w = Watch::start(&server, move || tx.send(()).unwrap()).unwrap();
        drop(client);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(w.finish());
    }

    #[test]
    fn a_half_close_is_gone_and_more_bytes_are_not() {
        let (server, client) = pair();
        let (tx, rx) = mpsc::channel();
        let w = Watch::start(&server, move || tx.send(()).unwrap()).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(w.finish());

        let (server, mut client) = pair();
        let w = Watch::start(&server, || panic!("not gone")).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        // Whether the watch saw the bytes or was stopped first, it never
        // calls them gone.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!w.finish());
    }

    #[test]
    fn finishing_ends_the_watch_with_the_client_still_there() {
        let (server, _client) = pair();
        let w = Watch::start(&server, || panic!("not gone")).unwrap();
        assert!(!w.finish());
        // Dropped without finish: the thread still ends.
        drop(Watch::start(&server, || panic!("not gone")).unwrap());
    }
}
