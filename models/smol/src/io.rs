//! Sockets, DNS and ICMP for the smol model: the bytes pump between
//! async-io's sockets and the core's session. No protocol logic lives here.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use pulse_core::icmp::{
    Families, Framing, OpenError, ReplyTable, echo_request, sequences_exhausted,
};
use pulse_core::model::SetupError;
use pulse_core::plan::Plan;
use pulse_core::readbuf::with_read_buf;
use pulse_core::session::{Pong, Session, Step};
use pulse_core::sync::Mutex;
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncRead, AsyncWriteExt};
use smol::{Async, Executor, Task, Timer};

/// Pump bytes for `session` until it says it is done. The connection is
/// kept in `stream`, owned by the caller (see timeout.rs).
///
/// The connection is async-io's `Async<TcpStream>` itself rather than
/// `smol::net::TcpStream`, which is the same thing behind an `Arc` so that it
/// can be cloned: one probe, one owner, no `Arc` needed.
pub(crate) async fn drive(
    session: &mut Session,
    stream: &mut Option<Async<TcpStream>>,
    icmp: Option<&Icmp>,
    train: &mut Option<Train>,
) {
    loop {
        match session.step() {
            // Boxed, as is the ping below: these futures are most of this
            // function's state, and a probe's state is what it holds in
            // memory for as long as it waits. Boxed, they cost only the
            // probes that look a name up or ping, and only then.
            Step::Resolve { host, port } => {
                let r = Box::pin(resolve(host, port)).await;
                session.resolved(r, Instant::now());
            }
            Step::Connect(addr) => {
                // A redirect opens a new connection; the old one is done.
                close(stream.take(), false);
                let r = Async::<TcpStream>::connect(addr)
                    .await
                    .map(|s| *stream = Some(s));
                session.connected(r, Instant::now());
            }
            Step::Race { addrs, stagger } => {
                close(stream.take(), false);
                let race = pulse_net::race(
                    addrs,
                    stagger,
                    Async::<TcpStream>::connect,
                    |d| async move {
                        smol::Timer::after(d).await;
                    },
                );
                let r = Box::pin(race).await.map(|(addr, s)| {
                    *stream = Some(s);
                    addr
                });
                session.raced(r, Instant::now());
            }
            Step::Write(bytes) => {
                let r = match stream.as_mut() {
                    Some(s) => s.write(bytes).await,
                    None => Err(io::ErrorKind::NotConnected.into()),
                };
                session.wrote(r, Instant::now());
            }
            Step::Read => match stream.as_mut() {
                Some(s) => read(s, session).await,
                None => session.received(Err(io::ErrorKind::NotConnected.into()), Instant::now()),
            },
            Step::Ping(ip) => {
                let r = match icmp {
                    Some(icmp) => Box::pin(icmp.ping(ip)).await,
                    None => Err(io::Error::other("no ICMP socket was opened for this scan")),
                };
                session.pinged(r, Instant::now());
            }
            Step::Echo { to, of } => {
                let r = match icmp {
                    Some(icmp) => Box::pin(icmp.echo(to, of, train)).await,
                    None => Err(io::Error::other("no ICMP socket was opened for this scan")),
                };
                session.echoed(r, Instant::now());
            }
            Step::Collect { until } => {
                let r = match train.as_mut() {
                    Some(t) => Box::pin(t.collect(until)).await,
                    None => Err(io::Error::other("no echo request was sent")),
                };
                session.collected(r, Instant::now());
            }
            Step::Done => return,
        }
    }
}

/// Wait until `s` has bytes (or its end, or an error), then read them into
/// this thread's buffer and hand them to the session. The buffer is lent
/// only inside `poll_read`, which never waits, so a probe waiting for its
/// answer holds none (see `pulse_core::readbuf`).
async fn read(s: &mut Async<TcpStream>, session: &mut Session) {
    std::future::poll_fn(|cx| {
        with_read_buf(|buf| match Pin::new(&mut *s).poll_read(cx, buf) {
            Poll::Ready(r) => {
                session.received(r.map(|n| &buf[..n]), Instant::now());
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        })
    })
    .await;
}

/// Resolve with the system resolver (getaddrinfo on the `blocking` crate's
/// thread pool, through `smol::unblock`).
async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    smol::net::resolve((host, port)).await
}

/// Close a connection; with `reset`, send RST instead of FIN (SO_LINGER 0),
/// so the side that closes first does not keep a TIME_WAIT entry.
pub(crate) fn close(stream: Option<Async<TcpStream>>, reset: bool) {
    if let Some(s) = stream
        && reset
    {
        pulse_net::reset_on_close(&s);
    }
}

/// The scan's ICMP sockets (one per address family in use), each with the
/// reader task that hands replies to waiting probes.
pub(crate) struct Icmp {
    /// Each family's socket, or why it was denied (its echoes then fail
    /// as `permission` and the rest of the scan goes on).
    sockets: Families<Arc<Pinger>>,
    /// The reader tasks. Dropping a smol `Task` cancels it, so stopping them
    /// means dropping them; the lock is there only so that `close(&self)`,
    /// called through the shared `Ctx`, can take them out.
    readers: Mutex<Vec<Task<()>>>,
}

/// One ICMP socket and its table of waiting probes.
struct Pinger {
    socket: Async<UdpSocket>,
    framing: Framing,
    v6: bool,
    table: ReplyTable<Sender<Pong>>,
}

/// One probe's echo train: the requests it registered in its socket's
/// table and the channel their replies come down (one clone of the sender
/// per request). Held by `with_timeout`, outside `drive`, so that after the
/// deadline it can still close the requests and count their duplicates;
/// dropped any other way (a cancel, a panic), it closes them too: nothing
/// leaks.
pub(crate) struct Train {
    pinger: Arc<Pinger>,
    /// Cloned into the table once per request.
    tx: Sender<Pong>,
    rx: Receiver<Pong>,
    /// The sequence numbers registered, to close at the end.
    seqs: Vec<u16>,
}

impl Icmp {
    /// Open the sockets the plan needs, or none. A family this process may
    /// not open is kept as denied: its echoes fail as `permission`, naming
    /// both fixes, and the rest of the scan goes on.
    pub(crate) fn open(plan: &Plan, executor: &Executor<'_>) -> Result<Option<Icmp>, SetupError> {
        let (need4, need6) = (plan.needs_icmp(false), plan.needs_icmp(true));
        if !need4 && !need6 {
            return Ok(None);
        }
        let mut icmp = Icmp {
            sockets: Families::default(),
            readers: Mutex::new(Vec::new()),
        };
        for (need, v6) in [(need4, false), (need6, true)] {
            if !need {
                continue;
            }
            let opened = Pinger::open(v6, plan.icmp_ident).map(Arc::new);
            let Some(pinger) = icmp.sockets.keep(v6, opened)? else {
                continue;
            };
            icmp.readers
                .lock()
                .push(executor.spawn(read_replies(pinger.clone())));
        }
        Ok(Some(icmp))
    }

    /// Send one echo request to `ip` and wait for its reply (no deadline
    /// here: the probe's deadline wraps the whole exchange).
    pub(crate) async fn ping(&self, ip: IpAddr) -> io::Result<Pong> {
        let pinger = self.sockets.get(ip)?;
        // smol has no oneshot channel; a bounded channel of one carries the
        // single reply the reader will ever hand over.
        let (tx, rx) = channel::bounded(1);
        let seq = pinger
            .table
            .register(ip, tx)
            .ok_or_else(sequences_exhausted)?;
        // Dropped on every exit path (reply, send error, timeout, cancel):
        // removes our entry unless the reader already took it. Never leaks.
        let _registered = pinger.table.cancel_on_drop(seq);
        let packet = echo_request(pinger.v6, pinger.table.ident(), seq);
        pinger
            .socket
            .send_to(&packet, SocketAddr::new(ip, 0))
            .await?;
        rx.recv()
            .await
            .map_err(|_| io::Error::other("the ICMP reader stopped before the reply came"))
    }

    /// Send the next echo request of a train of `of` to `ip`, starting
    /// the train at its first request; returns the sequence number sent.
    async fn echo(&self, ip: IpAddr, of: u16, train: &mut Option<Train>) -> io::Result<u16> {
        let t = match train {
            Some(t) => t,
            None => {
                let pinger = self.sockets.get(ip)?;
                // Room for every reply the table can hand over (one per
                // request), so the reader's `try_send` never finds it full.
                let (tx, rx) = channel::bounded(usize::from(of.max(1)));
                train.insert(Train {
                    pinger: pinger.clone(),
                    tx,
                    rx,
                    seqs: Vec::with_capacity(usize::from(of)),
                })
            }
        };
        let seq = t
            .pinger
            .table
            .register(ip, t.tx.clone())
            .ok_or_else(sequences_exhausted)?;
        t.seqs.push(seq);
        let packet = echo_request(t.pinger.v6, t.pinger.table.ident(), seq);
        t.pinger
            .socket
            .send_to(&packet, SocketAddr::new(ip, 0))
            .await?;
        Ok(seq)
    }

    /// Stop the reader tasks (at the end of the scan): dropping each `Task`
    /// cancels it. Its future (and the socket it holds) is dropped the next
    /// time the executor looks at it, or at the latest when `run` drops the
    /// executor.
    pub(crate) fn close(&self) {
        self.readers.lock().clear();
    }
}

impl Train {
    /// The next reply to one of this train's requests, or `None` once
    /// `until` passes (with no `until`, the probe's deadline cuts the wait).
    async fn collect(&mut self, until: Option<Instant>) -> io::Result<Option<Pong>> {
        let next = match until {
            Some(at) => {
                // The reply, or `None` when the timer wins; `or` polls the
                // reply first, so one already queued is never passed over.
                let next = smol::future::or(async { Some(self.rx.recv().await) }, async {
                    Timer::at(at).await;
                    None
                });
                match next.await {
                    Some(next) => next,
                    None => return Ok(None),
                }
            }
            None => self.rx.recv().await,
        };
        // `self.tx` keeps the channel open, so it cannot close while the
        // train lives; said as an error rather than assumed.
        next.map(Some)
            .map_err(|_| io::Error::other("the ICMP reply channel closed"))
    }

    /// Close every request of the train in its table, returning the
    /// duplicate replies counted for them.
    pub(crate) fn close(&mut self) -> u32 {
        self.pinger.table.close_train(&mut self.seqs)
    }
}

impl Drop for Train {
    fn drop(&mut self) {
        self.close();
    }
}

impl Pinger {
    fn open(v6: bool, ident: u16) -> Result<Pinger, OpenError> {
        let icmp = pulse_net::open_icmp(v6, ident, false)?;
        let socket = Async::new(icmp.socket).map_err(|e| SetupError {
            message: format!("cannot register the ICMP socket with smol's reactor: {e}"),
        })?;
        Ok(Pinger {
            socket,
            framing: icmp.framing,
            v6,
            table: ReplyTable::new(icmp.ident),
        })
    }
}

/// The one reader per socket: parse every packet, hand matching replies to
/// their probes, ignore everything else (other programs' pings, our own
/// requests seen on loopback, corrupt packets).
async fn read_replies(pinger: Arc<Pinger>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match pinger.socket.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!("ICMP recv: {e}");
                continue;
            }
        };
        if let Some((waiter, pong)) = pinger.table.dispatch(&buf[..n], pinger.framing, from.ip()) {
            // The table hands each waiter out once, into a channel of one,
            // so it is never full; it fails only when the probe has just
            // given up, and then nobody wants this.
            let _ = waiter.try_send(pong);
        }
    }
}
