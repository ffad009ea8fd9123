//! Sockets, DNS and ICMP for the threads model: the bytes pump between
//! blocking std sockets and the core's session. No protocol logic lives here.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs as _, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use pulse_core::icmp::{
    Families, Framing, OpenError, ReplyTable, echo_request, sequences_exhausted,
};
use pulse_core::model::SetupError;
use pulse_core::plan::Plan;
use pulse_core::readbuf::with_read_buf;
use pulse_core::session::{Pong, Session, Step};
use pulse_core::sync::{Arc, AtomicBool, Ordering};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::shutdown::{Stop, Tracked};
use crate::timeout::{Cut, Deadline};

/// How long an ICMP reader with no traffic sleeps before it looks whether
/// the scan is over. Only a fallback: `Icmp::close` wakes it at once on
/// Linux. Short, because `run` joins the readers before it returns.
const ICMP_READ_TICK: Duration = Duration::from_millis(100);

/// The longest an echo request may wait for room in the ICMP socket's send
/// buffer. The socket is shared by every probe, so its send timeout cannot
/// be set per probe (another thread would overwrite it between our set and
/// our send); a full send buffer drains in microseconds, so this is only a
/// bound on how far a pathological send can overrun a probe's deadline.
const ICMP_SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// Pump bytes for `session` until it says it is done, or until the deadline
/// or the drain cuts it off (`Err`). The connection is kept in `conn`, owned
/// by the caller (see timeout.rs).
pub(crate) fn drive<'a>(
    session: &mut Session,
    conn: &mut Option<Conn<'a>>,
    icmp: Option<&Icmp>,
    train: &mut Option<Train>,
    deadline: &Deadline<'a>,
) -> Result<(), Cut> {
    loop {
        match session.step() {
            Step::Resolve { host, port } => {
                let r = resolve(host, port, deadline)?;
                session.resolved(r, Instant::now());
            }
            Step::Connect(addr) => {
                // A redirect opens a new connection; the old one is done.
                close(conn.take(), false);
                let r = deadline.call(|left| Conn::open(addr, left, deadline.stop))?;
                session.connected(r.map(|c| *conn = Some(c)), Instant::now());
            }
            Step::Race { addrs, stagger } => {
                close(conn.take(), false);
                let r = Conn::race(addrs, stagger, deadline)?;
                session.raced(
                    r.map(|(addr, c)| {
                        *conn = Some(c);
                        addr
                    }),
                    Instant::now(),
                );
            }
            Step::Write(bytes) => {
                let r = match conn.as_ref() {
                    Some(c) => deadline.call(|left| {
                        c.stream.set_write_timeout(Some(left))?;
                        (&*c.stream).write(bytes)
                    })?,
                    None => Err(io::ErrorKind::NotConnected.into()),
                };
                session.wrote(r, Instant::now());
            }
            // This thread's buffer, lent for the blocking read: every worker
            // is a thread, so each has one (see `pulse_core::readbuf`).
            Step::Read => with_read_buf(|buf| {
                let r = match conn.as_ref() {
                    Some(c) => deadline.call(|left| {
                        c.stream.set_read_timeout(Some(left))?;
                        (&*c.stream).read(buf)
                    })?,
                    None => Err(io::ErrorKind::NotConnected.into()),
                };
                session.received(r.map(|n| &buf[..n]), Instant::now());
                Ok(())
            })?,
            Step::Ping(ip) => {
                let r = match icmp {
                    Some(icmp) => icmp.ping(ip, deadline)?,
                    None => Err(io::Error::other("no ICMP socket was opened for this scan")),
                };
                session.pinged(r, Instant::now());
            }
            Step::Echo { to, of } => {
                let r = match icmp {
                    Some(icmp) => icmp.echo(to, of, train, deadline)?,
                    None => Err(io::Error::other("no ICMP socket was opened for this scan")),
                };
                session.echoed(r, Instant::now());
            }
            Step::Collect { until } => {
                let r = match train.as_mut() {
                    Some(t) => t.collect(until, deadline)?,
                    None => Err(io::Error::other("no echo request was sent")),
                };
                session.collected(r, Instant::now());
            }
            Step::Done => return Ok(()),
        }
    }
}

/// Resolve with the system resolver, on a thread of its own.
///
/// getaddrinfo blocks with no timeout we can set, so the probe does not call
/// it: a helper thread does and sends the answer back, and the probe waits
/// for it only until its deadline or the drain. A helper whose probe gave up
/// is abandoned: it cannot be interrupted, it holds nothing of the scan (its
/// own copy of the name, and a sender nobody listens to), and it ends when
/// getaddrinfo gives up. That is the one kind of thread that can outlive
/// `run` (see the crate doc).
fn resolve(
    host: &str,
    port: u16,
    deadline: &Deadline<'_>,
) -> Result<io::Result<Vec<SocketAddr>>, Cut> {
    let (tx, rx) = bounded(1);
    let name = host.to_string();
    let spawned = std::thread::Builder::new()
        .name("pulse-dns".into())
        .spawn(move || {
            let r = (name.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect);
            // Capacity 1 and one send: never blocks, even if nobody waits.
            let _ = tx.try_send(r);
        });
    if let Err(e) = spawned {
        return Ok(Err(e));
    }
    let answer = deadline.wait(&rx)?;
    Ok(answer.unwrap_or_else(|| {
        Err(io::Error::other(
            "the lookup thread stopped without an answer",
        ))
    }))
}

/// A probe's TCP connection, registered with the shutdown watchdog for as
/// long as it is open (shutdown.rs), so that the end of the grace period can
/// wake a thread blocked on it.
pub(crate) struct Conn<'a> {
    /// Shared with the watchdog's registry: one socket, two references. Not
    /// a `try_clone`, which would cost a second file descriptor per probe
    /// (the CLI sizes `--workers` to the open-files limit, one per probe).
    stream: Arc<TcpStream>,
    _tracked: Tracked<'a>,
}

impl<'a> Conn<'a> {
    /// Connect to `addr` within `timeout`. The socket is made, and
    /// registered, before the connect starts (socket2, not
    /// `TcpStream::connect_timeout`, which makes its own socket inside), so
    /// that a connect stuck waiting for a SYN-ACK can be aborted too.
    fn open(addr: SocketAddr, timeout: Duration, stop: &'a Stop) -> io::Result<Conn<'a>> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        let stream = Arc::new(TcpStream::from(socket));
        let tracked = stop.track(&stream)?;
        // One more millisecond: socket2 takes off the time spent before it
        // polls and then truncates to whole milliseconds, so with the exact
        // time left it would give up just short of the deadline.
        let timeout = timeout + Duration::from_millis(1);
        SockRef::from(&*stream).connect_timeout(&addr.into(), timeout)?;
        Ok(Conn {
            stream,
            _tracked: tracked,
        })
    }
}

impl<'a> Conn<'a> {
    /// Happy eyeballs on this one thread (the core's `Step::Race`, RFC
    /// 8305): non-blocking connects started `stagger` apart (or at once
    /// after a failure), all waited for in one poll(2), the first to
    /// connect kept and made blocking again; the others are dropped, which
    /// closes them. Every attempt is registered with the watchdog like any
    /// connection, so a drain wakes the poll. The async models run the same
    /// race with `pulse_net::race`.
    fn race(
        addrs: &[SocketAddr],
        stagger: Duration,
        deadline: &Deadline<'a>,
    ) -> Result<io::Result<(SocketAddr, Conn<'a>)>, Cut> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut attempts: Vec<(SocketAddr, Conn<'a>)> = Vec::new();
        let mut next = 0;
        let mut next_start = Instant::now();
        let mut first_error: Option<io::Error> = None;
        loop {
            let now = Instant::now();
            if let Some(&addr) = addrs.get(next)
                && (attempts.is_empty() || now >= next_start)
            {
                next += 1;
                next_start = now + stagger;
                let started = pulse_net::start_connect(addr).and_then(|s| {
                    let stream = Arc::new(s);
                    let tracked = deadline.stop.track(&stream)?;
                    Ok(Conn {
                        stream,
                        _tracked: tracked,
                    })
                });
                match started {
                    Ok(c) => attempts.push((addr, c)),
                    Err(e) => {
                        first_error.get_or_insert(e);
                        next_start = now;
                    }
                }
                continue;
            }
            if attempts.is_empty() {
                let e = first_error
                    .take()
                    .unwrap_or_else(|| io::Error::other("no address to connect to"));
                return Ok(Err(e));
            }
            // Until the next attempt is due, or the deadline.
            let waited = deadline.call(|left| {
                let wait = match addrs.get(next) {
                    Some(_) => left.min(next_start.saturating_duration_since(now)),
                    None => left,
                };
                let timeout = Timespec {
                    tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(wait.subsec_nanos()),
                };
                let mut fds: Vec<PollFd<'_>> = attempts
                    .iter()
                    .map(|(_, c)| PollFd::new(&*c.stream, PollFlags::OUT))
                    .collect();
                poll(&mut fds, Some(&timeout)).map_err(io::Error::from)?;
                Ok(fds
                    .iter()
                    .map(|f| !f.revents().is_empty())
                    .collect::<Vec<bool>>())
            })?;
            let ready = match waited {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            if !ready.iter().any(|r| *r) && Instant::now() >= deadline.at() {
                return Err(Cut::Timeout);
            }
            // Newest first, so removing one keeps the earlier indexes valid.
            for i in (0..attempts.len()).rev() {
                if !ready[i] {
                    continue;
                }
                let outcome = match SockRef::from(&*attempts[i].1.stream).take_error() {
                    Ok(None) => attempts[i].1.stream.peer_addr().map(|_| ()),
                    Ok(Some(e)) | Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => {
                        let (addr, won) = attempts.swap_remove(i);
                        return Ok(won.stream.set_nonblocking(false).map(|()| (addr, won)));
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                        drop(attempts.swap_remove(i));
                        next_start = Instant::now();
                    }
                }
            }
        }
    }
}

/// Close a connection; with `reset`, send RST instead of FIN (SO_LINGER 0),
/// so the side that closes first does not keep a TIME_WAIT entry.
pub(crate) fn close(conn: Option<Conn<'_>>, reset: bool) {
    if let Some(c) = conn
        && reset
    {
        pulse_net::reset_on_close(&*c.stream);
    }
}

/// The scan's ICMP sockets (one per address family in use), each with the
/// reader thread that hands replies to waiting probes.
pub struct Icmp {
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
    table: ReplyTable<Sender<Pong>>,
    /// Set by `Icmp::close`; the reader looks at it after every receive.
    closing: AtomicBool,
}

/// One probe's echo train: the requests it registered in its socket's
/// table and the channel their replies come down (one clone of the sender
/// per request). Held by `with_timeout`, outside `drive`, so that after the
/// deadline it can still close the requests and count their duplicates;
/// dropped any other way (a cancel, a panic unwinding), it closes them
/// too: nothing leaks.
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
    pub fn open(plan: &Plan) -> Result<Option<Icmp>, SetupError> {
        let (need4, need6) = (plan.needs_icmp(false), plan.needs_icmp(true));
        if !need4 && !need6 {
            return Ok(None);
        }
        // On an early return below, dropping `icmp` stops the readers
        // already started (see `Drop`).
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
            let reader = pinger.clone();
            let name = if v6 { "pulse-icmp6" } else { "pulse-icmp4" };
            let handle = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || read_replies(&reader))
                .map_err(|e| SetupError {
                    message: format!("cannot start the ICMP reader thread: {e}"),
                })?;
            icmp.readers.push(handle);
        }
        Ok(Some(icmp))
    }

    /// Send one echo request to `ip` and wait for its reply, until the
    /// probe's deadline or the drain.
    pub(crate) fn ping(
        &self,
        ip: IpAddr,
        deadline: &Deadline<'_>,
    ) -> Result<io::Result<Pong>, Cut> {
        let pinger = match self.sockets.get(ip) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        // Capacity 1: the reader sends exactly one reply and must never
        // block on a probe that has just given up.
        let (tx, rx) = bounded(1);
        let Some(seq) = pinger.table.register(ip, tx) else {
            let e = sequences_exhausted();
            return Ok(Err(e));
        };
        // Dropped on every exit path (reply, send error, timeout, cancel,
        // panic): removes our entry unless the reader already took it.
        let _registered = pinger.table.cancel_on_drop(seq);
        let packet = echo_request(pinger.v6, pinger.table.ident(), seq);
        // The send timeout is the socket's fixed one (ICMP_SEND_TIMEOUT),
        // not the time left: see there why.
        let sent = deadline.call(|_| pinger.socket.send_to(&packet, SocketAddr::new(ip, 0)))?;
        if let Err(e) = sent {
            return Ok(Err(e));
        }
        let reply = deadline.wait(&rx)?;
        Ok(reply.ok_or_else(|| io::Error::other("the ICMP reader stopped before the reply came")))
    }

    /// Send the next echo request of a train of `of` to `ip`, starting the
    /// train at its first request; gives the sequence number sent.
    fn echo(
        &self,
        ip: IpAddr,
        of: u16,
        train: &mut Option<Train>,
        deadline: &Deadline<'_>,
    ) -> Result<io::Result<u16>, Cut> {
        let t = match train {
            Some(t) => t,
            None => {
                let pinger = match self.sockets.get(ip) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                // Room for every reply the table can hand over (one per
                // request), so the reader's `try_send` never finds it full.
                let (tx, rx) = bounded(usize::from(of.max(1)));
                train.insert(Train {
                    pinger: pinger.clone(),
                    tx,
                    rx,
                    seqs: Vec::with_capacity(usize::from(of)),
                })
            }
        };
        let Some(seq) = t.pinger.table.register(ip, t.tx.clone()) else {
            let e = sequences_exhausted();
            return Ok(Err(e));
        };
        t.seqs.push(seq);
        let packet = echo_request(t.pinger.v6, t.pinger.table.ident(), seq);
        // The socket's fixed send timeout, as in `ping`.
        let sent = deadline.call(|_| t.pinger.socket.send_to(&packet, SocketAddr::new(ip, 0)))?;
        Ok(sent.map(|_| seq))
    }

    /// Stop the reader threads and join them (at the end of the scan).
    pub fn close(&mut self) {
        for pinger in self.sockets.open() {
            pinger.closing.store(true, Ordering::Release);
            // Wake a reader blocked in recv_from now rather than at its next
            // tick. On Linux, shutdown(2) of an unconnected datagram socket
            // reports ENOTCONN yet still wakes its readers ("a hack to wake
            // up other listeners", says net/ipv4/af_inet.c); elsewhere the
            // tick does it.
            let _ = SockRef::from(&pinger.socket).shutdown(std::net::Shutdown::Read);
        }
        for reader in self.readers.drain(..) {
            // A reader that panicked has nothing left to clean up.
            let _ = reader.join();
        }
    }
}

impl Drop for Icmp {
    fn drop(&mut self) {
        // No-op after an explicit `close` (the readers are already joined).
        self.close();
    }
}

impl Train {
    /// The next reply to one of this train's requests, or `None` once
    /// `until` passes; the deadline and the drain cut the wait (`Err`).
    fn collect(
        &mut self,
        until: Option<Instant>,
        deadline: &Deadline<'_>,
    ) -> Result<io::Result<Option<Pong>>, Cut> {
        Ok(match deadline.wait_until(&self.rx, until)? {
            Some(Some(pong)) => Ok(Some(pong)),
            // `self.tx` keeps the channel open, so this cannot come while
            // the train lives; said as an error rather than assumed.
            Some(None) => Err(io::Error::other("the ICMP reply channel closed")),
            None => Ok(None),
        })
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
        let icmp = pulse_net::open_icmp(v6, ident, true)?;
        let timeouts = icmp
            .socket
            .set_read_timeout(Some(ICMP_READ_TICK))
            .and_then(|()| icmp.socket.set_write_timeout(Some(ICMP_SEND_TIMEOUT)));
        timeouts.map_err(|e| SetupError {
            message: format!("cannot set the ICMP socket's timeouts: {e}"),
        })?;
        Ok(Pinger {
            socket: icmp.socket,
            framing: icmp.framing,
            v6,
            table: ReplyTable::new(icmp.ident),
            closing: AtomicBool::new(false),
        })
    }
}

/// The one reader per socket: parse every packet, hand matching replies to
/// their probes, ignore everything else (other programs' pings, our own
/// requests seen on loopback, corrupt packets).
///
/// It peeks at the sender and then reads the datagram, rather than one
/// `recv_from`: `Icmp::close` wakes this thread with `shutdown(2)`, and the
/// wake-up returns no datagram and a truncated address, which std's
/// `recv_from` turns into a panic (an assertion on the address length)
/// where socket2's `peek_sender` returns an address that is not a socket
/// address. Only this thread reads the socket, so the datagram `recv`
/// takes is the one whose sender was peeked.
fn read_replies(pinger: &Pinger) {
    let mut buf = vec![0u8; 2048];
    let socket = SockRef::from(&pinger.socket);
    while !pinger.closing.load(Ordering::Acquire) {
        let from = match socket.peek_sender() {
            Ok(addr) => match addr.as_socket() {
                Some(from) => from,
                // The wake-up from `close`: look at `closing` again.
                None => continue,
            },
            // The tick: nothing arrived; look at `closing` again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::debug!("ICMP recv: {e}");
                continue;
            }
        };
        let n = match pinger.socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("ICMP recv: {e}");
                continue;
            }
        };
        if let Some((waiter, pong)) = pinger.table.dispatch(&buf[..n], pinger.framing, from.ip()) {
            // The probe may have just given up; then nobody wants this.
            let _ = waiter.try_send(pong);
        }
    }
}
