//! Sockets, DNS and ICMP for the tokio model: the bytes pump between tokio's
//! sockets and the core's session. No protocol logic lives here.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use pulse_core::icmp::{
    Families, Framing, OpenError, ReplyTable, echo_request, sequences_exhausted,
};
use pulse_core::model::SetupError;
use pulse_core::plan::Plan;
use pulse_core::readbuf::with_read_buf;
use pulse_core::session::{Pong, Session, Step};
use tokio::io::{AsyncRead, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Pump bytes for `session` until it says it is done. The connection is
/// kept in `stream`, owned by the caller (see timeout.rs).
pub(crate) async fn drive(
    session: &mut Session,
    stream: &mut Option<TcpStream>,
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
                let r = connect(addr).await.map(|s| *stream = Some(s));
                session.connected(r, Instant::now());
            }
            Step::Race { addrs, stagger } => {
                close(stream.take(), false);
                // Boxed like the lookup: only a name with several addresses
                // pays for the race's state.
                let r = Box::pin(pulse_net::race(addrs, stagger, connect, tokio::time::sleep))
                    .await
                    .map(|(addr, s)| {
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

/// Connect to `addr`: start the connect, register the socket, and wait for
/// it to become writable. tokio reports a refused or failed connect as
/// error or hang-up readiness, so `SO_ERROR` (a `getsockopt`) is read only
/// then, for the reason; a connect that succeeds costs `socket`, `connect`
/// and the registration, nothing more.
async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::from_std(pulse_net::start_connect(addr)?)?;
    let ready = stream.ready(Interest::WRITABLE).await?;
    if ready.is_error() || ready.is_write_closed() {
        return Err(stream
            .take_error()?
            .unwrap_or_else(|| io::Error::other("connect failed with no error reported")));
    }
    Ok(stream)
}

/// Wait until `s` has bytes (or its end, or an error), then read them into
/// this thread's buffer and hand them to the session. The buffer is lent
/// only inside `poll_read`, which never waits, so a probe waiting for its
/// answer holds none (see `pulse_core::readbuf`).
async fn read(s: &mut TcpStream, session: &mut Session) {
    std::future::poll_fn(|cx| {
        with_read_buf(|buf| {
            let mut filled = ReadBuf::new(buf);
            match Pin::new(&mut *s).poll_read(cx, &mut filled) {
                Poll::Ready(r) => {
                    session.received(r.map(|()| filled.filled()), Instant::now());
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await;
}

/// Resolve with the system resolver (getaddrinfo on tokio's blocking pool).
async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

/// Close a connection; with `reset`, send RST instead of FIN (SO_LINGER 0),
/// so the side that closes first does not keep a TIME_WAIT entry.
pub(crate) fn close(stream: Option<TcpStream>, reset: bool) {
    if let Some(s) = stream
        && reset
        && !peer_closed(&s)
    {
        pulse_net::reset_on_close(&s);
    }
}

/// Whether tokio has already seen the peer's FIN (read-closed readiness,
/// from the `EPOLLRDHUP` its registration asks for). Then the peer closed
/// first, our close leaves no TIME_WAIT behind, and the reset, a
/// `setsockopt`, is not needed. Asked without waiting: a `ready` future
/// polled once, with a waker that does nothing.
fn peer_closed(s: &TcpStream) -> bool {
    let mut ready = std::pin::pin!(s.ready(Interest::READABLE));
    let mut cx = Context::from_waker(Waker::noop());
    matches!(ready.as_mut().poll(&mut cx), Poll::Ready(Ok(r)) if r.is_read_closed())
}

/// The scan's ICMP sockets (one per address family in use), each with the
/// reader task that hands replies to waiting probes.
pub(crate) struct Icmp {
    /// Each family's socket, or why it was denied (its echoes then fail
    /// as `permission` and the rest of the scan goes on).
    sockets: Families<Arc<Pinger>>,
    readers: Vec<JoinHandle<()>>,
}

/// One ICMP socket and its table of waiting probes.
struct Pinger {
    socket: UdpSocket,
    framing: Framing,
    v6: bool,
    table: ReplyTable<Waiter>,
}

/// Who waits for a reply. A single echo keeps its oneshot, the cheapest
/// hand-off tokio has (and what it always used: a count=1 probe costs what
/// it did). An echo train registers one clone of its probe's channel
/// sender per request, so every reply of the train comes down one channel.
enum Waiter {
    One(oneshot::Sender<Pong>),
    Train(mpsc::Sender<Pong>),
}

/// One probe's echo train: the requests it registered in its socket's
/// table and the channel their replies come down. Held by `with_timeout`,
/// outside `drive`, so that after the deadline it can still close the
/// requests and count their duplicates; dropped any other way (a cancel,
/// a panic), it closes them too: nothing leaks.
pub(crate) struct Train {
    pinger: Arc<Pinger>,
    /// Cloned into the table once per request.
    tx: mpsc::Sender<Pong>,
    rx: mpsc::Receiver<Pong>,
    /// The sequence numbers registered, to close at the end.
    seqs: Vec<u16>,
}

impl Icmp {
    /// Open the sockets the plan needs, or none. A family this process may
    /// not open is kept as denied: its echoes fail as `permission`, naming
    /// both fixes, and the rest of the scan goes on.
    pub(crate) fn open(plan: &Plan) -> Result<Option<Icmp>, SetupError> {
        let (need4, need6) = (plan.needs_icmp(false), plan.needs_icmp(true));
        if !need4 && !need6 {
            return Ok(None);
        }
        let mut icmp = Icmp {
            sockets: Families::default(),
            readers: Vec::new(),
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
                .push(tokio::spawn(read_replies(pinger.clone())));
        }
        Ok(Some(icmp))
    }

    /// Send one echo request to `ip` and wait for its reply (no deadline
    /// here: the probe's deadline wraps the whole exchange).
    pub(crate) async fn ping(&self, ip: IpAddr) -> io::Result<Pong> {
        let pinger = self.sockets.get(ip)?;
        let (tx, rx) = oneshot::channel();
        let seq = pinger
            .table
            .register(ip, Waiter::One(tx))
            .ok_or_else(sequences_exhausted)?;
        // Dropped on every exit path (reply, send error, timeout, cancel):
        // removes our entry unless the reader already took it. Never leaks.
        let _registered = pinger.table.cancel_on_drop(seq);
        let packet = echo_request(pinger.v6, pinger.table.ident(), seq);
        pinger
            .socket
            .send_to(&packet, SocketAddr::new(ip, 0))
            .await?;
        rx.await
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
                let (tx, rx) = mpsc::channel(usize::from(of.max(1)));
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
            .register(ip, Waiter::Train(t.tx.clone()))
            .ok_or_else(sequences_exhausted)?;
        t.seqs.push(seq);
        let packet = echo_request(t.pinger.v6, t.pinger.table.ident(), seq);
        t.pinger
            .socket
            .send_to(&packet, SocketAddr::new(ip, 0))
            .await?;
        Ok(seq)
    }

    /// Stop the reader tasks (at the end of the scan).
    pub(crate) fn close(&self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

impl Train {
    /// The next reply to one of this train's requests, or `None` once
    /// `until` passes (with no `until`, the probe's deadline cuts the wait).
    async fn collect(&mut self, until: Option<Instant>) -> io::Result<Option<Pong>> {
        let next = match until {
            Some(at) => {
                let at = tokio::time::Instant::from_std(at);
                match tokio::time::timeout_at(at, self.rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(None),
                }
            }
            None => self.rx.recv().await,
        };
        // `self.tx` keeps the channel open, so `None` cannot come while the
        // train lives; said as an error rather than assumed.
        next.map(Some)
            .ok_or_else(|| io::Error::other("the ICMP reply channel closed"))
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
        let socket = UdpSocket::from_std(icmp.socket).map_err(|e| SetupError {
            message: format!("cannot register the ICMP socket with tokio: {e}"),
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
            // The probe may have just given up; then nobody wants this. A
            // train's channel has room for every reply it can be handed.
            let _ = match waiter {
                Waiter::One(tx) => tx.send(pong).ok(),
                Waiter::Train(tx) => tx.try_send(pong).ok(),
            };
        }
    }
}
