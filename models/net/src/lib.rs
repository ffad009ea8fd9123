//! Socket set-up that is the same for every model.
//!
//! Opening the ICMP socket, starting a connect and closing a TCP socket with
//! a reset involve no
//! scheduling at all: they are plain `socket2` calls, identical whichever
//! model runs the scan. They live here, once, so that each model's `io.rs`
//! shows only what differs: how the model waits on a socket. The core
//! (`pulse-core`) stays free of socket calls; this crate is the only other
//! place that makes them outside the models.

use std::io;
use std::net::SocketAddr;

use pulse_core::icmp::{Denied, Framing, OpenError};
use pulse_core::model::SetupError;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// An opened ICMP socket, not yet handed to a runtime.
#[derive(Debug)]
pub struct IcmpSocket {
    /// The socket, non-blocking, as a `UdpSocket` so every runtime can wrap
    /// it (raw and ping sockets use the same send_to/recv_from calls).
    pub socket: std::net::UdpSocket,
    /// How received packets are framed (raw IPv4 has the IP header).
    pub framing: Framing,
    /// The identifier replies will carry: the scan's own for raw sockets,
    /// the kernel-assigned one for ping sockets.
    pub ident: u16,
    /// IPv6 (ICMPv6) rather than IPv4.
    pub v6: bool,
}

/// Open an ICMP socket for one address family: a raw socket first (root or
/// CAP_NET_RAW), else an unprivileged ping socket (where
/// `net.ipv4.ping_group_range` covers our group). When neither is permitted
/// the family is [`OpenError::Denied`]: the scan goes on and its echoes fail
/// as `permission`, with both fixes in the message ([`denied`]). Any other
/// failure is a setup error. `blocking` leaves the socket in blocking mode
/// (thread models); async models want it non-blocking.
pub fn open_icmp(v6: bool, ident: u16, blocking: bool) -> Result<IcmpSocket, OpenError> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let (socket, framing, ident) = match Socket::new(domain, Type::RAW, Some(proto)) {
        Ok(s) => (s, if v6 { Framing::V6 } else { Framing::RawV4 }, ident),
        Err(raw_err) => match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => {
                // A ping socket's identifier is its local "port", chosen by
                // the kernel at bind; replies carry that one, not ours.
                let any: SocketAddr = if v6 {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                };
                s.bind(&any.into()).map_err(|e| setup_error(v6, &e))?;
                let port = s
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .map_or(ident, |a| a.port());
                (s, if v6 { Framing::V6 } else { Framing::DgramV4 }, port)
            }
            Err(ping_err) => return Err(open_failed(v6, &raw_err, &ping_err)),
        },
    };
    socket
        .set_nonblocking(!blocking)
        .map_err(|e| setup_error(v6, &e))?;
    Ok(IcmpSocket {
        socket: socket.into(),
        framing,
        ident,
        v6,
    })
}

/// Neither a raw socket (`raw`) nor a ping socket (`ping`) of this family
/// would open: denied when both were refused for privilege (EPERM from the
/// raw socket, EACCES from a ping socket outside `ping_group_range`), a
/// setup error otherwise (the family is off, no descriptors left), named by
/// the raw socket's error (also for a native stack's ICMP client).
pub fn open_failed(v6: bool, raw: &io::Error, ping: &io::Error) -> OpenError {
    let refused = |e: &io::Error| e.kind() == io::ErrorKind::PermissionDenied;
    if refused(raw) && refused(ping) {
        OpenError::Denied(denied(v6, raw))
    } else {
        OpenError::Setup(setup_error(v6, raw))
    }
}

/// No privilege for an ICMP socket of this family: the message each of its
/// echoes fails with, naming both fixes, the `setcap` one with the path of
/// the binary that runs (a `$(command -v pulse)` would expand to nothing
/// when pulse is run by path, as `cargo run` and the tests do).
pub fn denied(v6: bool, e: &io::Error) -> Denied {
    let family = if v6 { "ICMPv6" } else { "ICMP" };
    let exe = std::env::current_exe()
        .map(|p| shell_word(&p.to_string_lossy()))
        .unwrap_or_else(|_| "\"$(command -v pulse)\"".into());
    Denied::new(format!(
        "no permission to open an {family} socket ({e}). Fix: give pulse CAP_NET_RAW \
         (sudo setcap cap_net_raw+ep {exe}) or run it as root, or allow unprivileged ping \
         sockets for your group (sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\")"
    ))
}

/// `s` as one shell word: as it is when it has nothing a shell would
/// split or expand, else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._+-,:@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// An ICMP socket of this family failed for a reason other than privilege:
/// the scan's setup error (exit 3).
pub fn setup_error(v6: bool, e: &io::Error) -> SetupError {
    let family = if v6 { "ICMPv6" } else { "ICMP" };
    SetupError {
        message: format!("cannot open an {family} socket: {e}"),
    }
}

/// Make the next close of this socket send RST instead of FIN (SO_LINGER 0),
/// so the side that closes first keeps no TIME_WAIT entry (when the client
/// closes first, TIME_WAIT piles up on it and its connect rate halves).
/// Best effort: if it fails, the socket closes normally.
pub fn reset_on_close<S: std::os::fd::AsFd>(socket: &S) {
    let _ = SockRef::from(socket).set_linger(Some(std::time::Duration::ZERO));
}

/// A non-blocking TCP socket whose connect to `addr` has been started, not
/// finished: two system calls, `socket` and `connect` (which answers
/// `EINPROGRESS`, or at once with an error such as `ENETUNREACH`).
///
/// For a model whose runtime reports a failed connect as error or hang-up
/// readiness (tokio does): it waits for the socket to become writable and
/// asks for `SO_ERROR` only when that readiness says the connect failed, so
/// a connect that succeeds costs no `getsockopt`. tokio's own
/// `TcpStream::connect` asks every time.
pub fn start_connect(addr: SocketAddr) -> io::Result<std::net::TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Linux's "connect in progress" errno (`EINPROGRESS`), which std maps to no
/// `io::ErrorKind` of its own.
const EINPROGRESS: i32 = 115;

/// Happy eyeballs for the async models (RFC 8305, the core's `Step::Race`):
/// connect to `addrs[0]`; whenever `stagger` passes with no connection, or
/// an attempt fails, start the next address's attempt as well, keeping the
/// earlier ones going. The first connection wins, with its address; the
/// other attempts are dropped, which closes their sockets. When every
/// attempt failed, the first error that came back.
///
/// Runtime-agnostic on purpose: each model passes its own `connect` and
/// `sleep`, and the racing itself is this one loop for all of them, so a
/// difference between the models' races can only be their runtimes. The
/// attempts are polled in one future (no task per attempt): a race is part
/// of its probe, and ends with it when the probe's deadline drops it.
pub async fn race<T, Connect, Attempt, Sleep, Timer>(
    addrs: &[SocketAddr],
    stagger: std::time::Duration,
    connect: Connect,
    sleep: Sleep,
) -> io::Result<(SocketAddr, T)>
where
    Connect: Fn(SocketAddr) -> Attempt,
    Attempt: std::future::Future<Output = io::Result<T>>,
    Sleep: Fn(std::time::Duration) -> Timer,
    Timer: std::future::Future<Output = ()>,
{
    use std::pin::Pin;
    use std::task::Poll;
    let mut attempts: Vec<(SocketAddr, Pin<Box<Attempt>>)> = Vec::new();
    let mut timer: Option<Pin<Box<Timer>>> = None;
    let mut next = 0;
    let mut first_error: Option<io::Error> = None;
    // Start the next attempt at once (the first, or after a failure).
    let mut start_now = true;
    std::future::poll_fn(move |cx| {
        loop {
            if let Some(t) = timer.as_mut()
                && t.as_mut().poll(cx).is_ready()
            {
                timer = None;
                start_now = true;
            }
            if start_now && let Some(&addr) = addrs.get(next) {
                start_now = false;
                next += 1;
                attempts.push((addr, Box::pin(connect(addr))));
                timer = (next < addrs.len()).then(|| Box::pin(sleep(stagger)));
                // Poll the new attempt and the new timer right away.
                continue;
            }
            start_now = false;
            let mut i = 0;
            while i < attempts.len() {
                match attempts[i].1.as_mut().poll(cx) {
                    Poll::Ready(Ok(t)) => return Poll::Ready(Ok((attempts[i].0, t))),
                    Poll::Ready(Err(e)) => {
                        first_error.get_or_insert(e);
                        drop(attempts.swap_remove(i));
                        start_now = true;
                    }
                    Poll::Pending => i += 1,
                }
            }
            if start_now && next < addrs.len() {
                continue;
            }
            if attempts.is_empty() {
                let e = first_error
                    .take()
                    .unwrap_or_else(|| io::Error::other("no address to connect to"));
                return Poll::Ready(Err(e));
            }
            return Poll::Pending;
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_quoted_only_when_a_shell_would_split_it() {
        assert_eq!(shell_word("/usr/local/bin/pulse"), "/usr/local/bin/pulse");
        assert_eq!(shell_word("/home/a b/pulse"), "'/home/a b/pulse'");
        assert_eq!(shell_word("/tmp/it's"), "'/tmp/it'\\''s'");
    }

    /// Both refusals for privilege: denied, with both fixes and this
    /// binary's path; anything else is a setup error.
    #[test]
    fn only_two_privilege_refusals_make_a_denial() {
        let perm = io::Error::from(io::ErrorKind::PermissionDenied);
        let off = io::Error::from_raw_os_error(97); // EAFNOSUPPORT
        match open_failed(false, &perm, &perm) {
            OpenError::Denied(d) => {
                let exe = std::env::current_exe().unwrap();
                let m = d.message();
                assert!(
                    m.contains(&format!("setcap cap_net_raw+ep {}", exe.display())),
                    "{m}"
                );
                assert!(m.contains("net.ipv4.ping_group_range"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            open_failed(true, &perm, &off),
            OpenError::Setup(_)
        ));
        assert!(matches!(
            open_failed(true, &off, &perm),
            OpenError::Setup(_)
        ));
    }
}
