//! ICMP echo: the packet codec and the table that matches replies to probes.
//!
//! One ICMP socket serves a whole scan. A raw ICMP socket sees *every* echo
//! reply that reaches the host (other scans', `ping`'s), so replies are
//! matched by an identifier unique to this scan plus the sequence number, and
//! checked against the address the probe pinged; anything else is ignored.
//!
//! The [`ReplyTable`] is the hand-off point between the model's single socket
//! reader and the probes waiting for replies. It is generic over the waiter
//! (`T`): a oneshot sender in async models, a channel sender in thread models.
//! A probe that times out [`ReplyTable::cancel`]s its entry; a reply racing
//! that cancel is either delivered (the reader took the waiter first) or
//! dropped (the probe did), never both and never leaked.
//!
//! An answered entry stays in the table, without its waiter, until its
//! probe removes it ([`ReplyTable::close`]): a second reply to the same
//! request then finds it and is counted as a duplicate instead of being
//! handed over again, so a duplicating path can never make one echo count
//! twice. A reply that comes after its probe has ended finds nothing and is
//! dropped: its probe's result is already out.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::SetupError;
use crate::session::Pong;
#[cfg(pulse_loom)]
use crate::sync::Bug;
use crate::sync::Mutex;

/// ICMPv4 echo request type.
pub const V4_ECHO_REQUEST: u8 = 8;
/// ICMPv4 echo reply type.
pub const V4_ECHO_REPLY: u8 = 0;
/// ICMPv6 echo request type.
pub const V6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply type.
pub const V6_ECHO_REPLY: u8 = 129;

/// Payload carried by pulse's echo requests: recognisable in a capture, and
/// long enough (24 bytes) to look like a normal ping to middleboxes.
pub const PAYLOAD: &[u8; 24] = b"pulse echo probe........";

/// The internet checksum (RFC 1071) over `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request packet (ICMP header + payload). For IPv6 the checksum is
/// left zero: the kernel fills it in for ICMPv6 sockets (it needs the
/// pseudo-header, which only the kernel knows).
pub fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let ty = if v6 { V6_ECHO_REQUEST } else { V4_ECHO_REQUEST };
    let mut p = Vec::with_capacity(8 + PAYLOAD.len());
    p.extend_from_slice(&[ty, 0, 0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// An echo reply as parsed off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    /// Identifier field.
    pub ident: u16,
    /// Sequence field.
    pub seq: u16,
    /// TTL from the IPv4 header, when the packet carried one.
    pub ttl: Option<u8>,
}

/// How the socket delivers packets, which decides how to parse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Raw IPv4 socket: packets start with the IPv4 header.
    RawV4,
    /// IPv4 ping (datagram) socket: ICMP header first, no IP header.
    DgramV4,
    /// IPv6 (raw or datagram): ICMPv6 header first.
    V6,
}

/// Parse an echo reply. Returns `None` for anything else: other ICMP types,
/// truncated packets, a bad IPv4 checksum (ICMPv6 checksums are verified by
/// the kernel), so a corrupted or foreign packet never reaches a probe.
pub fn parse_reply(packet: &[u8], framing: Framing) -> Option<EchoReply> {
    let (icmp, ttl) = match framing {
        Framing::RawV4 => {
            let first = *packet.first()?;
            if first >> 4 != 4 {
                return None;
            }
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || packet.len() < ihl + 8 {
                return None;
            }
            (&packet[ihl..], Some(packet[8]))
        }
        Framing::DgramV4 | Framing::V6 => (packet, None),
    };
    if icmp.len() < 8 {
        return None;
    }
    let want = match framing {
        Framing::V6 => V6_ECHO_REPLY,
        _ => V4_ECHO_REPLY,
    };
    if icmp[0] != want || icmp[1] != 0 {
        return None;
    }
    if framing != Framing::V6 && checksum(icmp) != 0 {
        return None;
    }
    Some(EchoReply {
        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        ttl,
    })
}

/// The error of an echo to an address family the scan opened no ICMP
/// socket for, worded once for every model.
pub fn no_socket_for(ip: std::net::IpAddr) -> std::io::Error {
    std::io::Error::other(format!("no ICMP socket for {ip}'s address family"))
}

/// Why a scan has no ICMP socket for an address family its plan needs:
/// the process may open neither a raw socket (root, `CAP_NET_RAW`) nor an
/// unprivileged ping socket (`net.ipv4.ping_group_range`). That is no
/// reason to probe nothing: the scan goes on, and each echo to the family
/// fails with this message as a `PermissionDenied` error, which the session
/// classifies as kind `permission`. The socket set-up that makes it
/// (`pulse-net`) words the fix, with this binary's path for `setcap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// What was denied and how to fix it; shared by every echo that fails.
    message: std::sync::Arc<str>,
}

impl Denied {
    /// A denial with its message (which should name the fix).
    pub fn new(message: impl Into<std::sync::Arc<str>>) -> Denied {
        Denied {
            message: message.into(),
        }
    }

    /// What was denied and how to fix it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error each echo to the denied family fails with.
    pub fn error(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            self.message.to_string(),
        )
    }
}

/// Why opening an ICMP socket failed: denied (the scan goes on, its echoes
/// to that family fail as `permission`), or any other failure, which is
/// the scan's setup error (exit 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// No privilege for either kind of ICMP socket.
    Denied(Denied),
    /// Anything else (no such family, out of descriptors, a runtime that
    /// would not take the socket).
    Setup(SetupError),
}

impl From<SetupError> for OpenError {
    fn from(e: SetupError) -> OpenError {
        OpenError::Setup(e)
    }
}

/// A scan's ICMP sockets by address family, for every model: for each
/// family the plan needs, the model's socket (`P`) or why it was denied.
/// One lookup for all five, so that an echo to a family with no socket
/// fails with the same words and kind whichever model runs it.
#[derive(Debug)]
pub struct Families<P> {
    v4: Option<Result<P, Denied>>,
    v6: Option<Result<P, Denied>>,
}

impl<P> Default for Families<P> {
    fn default() -> Families<P> {
        Families { v4: None, v6: None }
    }
}

impl<P> Families<P> {
    /// Keep what opening the family's socket gave: the socket, returned so
    /// the model can start its reader, or a denial, kept for the echoes
    /// (`Ok(None)`). Any other failure is passed up as the setup error.
    pub fn keep(
        &mut self,
        v6: bool,
        opened: Result<P, OpenError>,
    ) -> Result<Option<&P>, SetupError> {
        let slot = if v6 { &mut self.v6 } else { &mut self.v4 };
        match opened {
            Ok(p) => Ok(slot.insert(Ok(p)).as_ref().ok()),
            Err(OpenError::Denied(d)) => {
                *slot = Some(Err(d));
                Ok(None)
            }
            Err(OpenError::Setup(e)) => Err(e),
        }
    }

    /// The socket for an echo to `ip`, or the error the echo fails with:
    /// the denial's (`permission`), or [`no_socket_for`] when the plan
    /// needed no socket of that family (a name resolved to an unexpected
    /// family).
    pub fn get(&self, ip: IpAddr) -> std::io::Result<&P> {
        let slot = match ip {
            IpAddr::V4(_) => &self.v4,
            IpAddr::V6(_) => &self.v6,
        };
        match slot {
            Some(Ok(p)) => Ok(p),
            Some(Err(denied)) => Err(denied.error()),
            None => Err(no_socket_for(ip)),
        }
    }

    /// The sockets that opened (to stop their readers).
    pub fn open(&self) -> impl Iterator<Item = &P> {
        [&self.v4, &self.v6]
            .into_iter()
            .filter_map(|slot| slot.as_ref().and_then(|r| r.as_ref().ok()))
    }
}

/// The error of an echo when every sequence number of the scan's
/// identifier is in flight, worded once for every model.
pub fn sequences_exhausted() -> std::io::Error {
    std::io::Error::other("all 65536 ICMP sequence numbers are in flight")
}

/// Pending echo requests of one scan, keyed by sequence number.
pub struct ReplyTable<T> {
    /// The identifier this scan's requests carry (for ping sockets, the one
    /// the kernel assigned).
    ident: u16,
    inner: Mutex<Pending<T>>,
    #[cfg(pulse_loom)]
    bug: Option<Bug>,
}

struct Pending<T> {
    /// Entries by sequence number.
    waiting: HashMap<u16, Entry<T>>,
    /// Next sequence number to hand out; wraps at 65536.
    next_seq: u16,
}

/// One echo request in flight.
struct Entry<T> {
    /// The address pinged: a reply from anywhere else is not this echo's.
    addr: IpAddr,
    /// The probe's waiter until the first reply takes it; `None` after.
    waiter: Option<T>,
    /// Replies after the first, counted until the probe closes the entry.
    duplicates: u32,
}

/// What [`ReplyTable::close`] found for one sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed<T> {
    /// The waiter, when no reply took it (the echo was not answered).
    pub waiter: Option<T>,
    /// Replies after the first one (0 when unanswered).
    pub duplicates: u32,
}

impl<T> ReplyTable<T> {
    /// An empty table for identifier `ident`.
    pub fn new(ident: u16) -> Self {
        ReplyTable {
            ident,
            inner: Mutex::new(Pending {
                waiting: HashMap::new(),
                next_seq: 0,
            }),
            #[cfg(pulse_loom)]
            bug: None,
        }
    }

    /// A table that runs the broken code of `bug` (see [`Bug`]).
    #[cfg(pulse_loom)]
    pub fn with_bug(ident: u16, bug: Bug) -> Self {
        ReplyTable {
            bug: Some(bug),
            ..ReplyTable::new(ident)
        }
    }

    /// This scan's identifier.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// Register a waiter for a reply from `addr`, returning the sequence number
    /// to send, or `None` when all 65,536 numbers are in use (more probes in
    /// flight than ICMP can tell apart; the open-files limit keeps us far below).
    pub fn register(&self, addr: IpAddr, waiter: T) -> Option<u16> {
        let mut p = self.inner.lock();
        if p.waiting.len() > usize::from(u16::MAX) {
            return None;
        }
        // Skip numbers still in use (a very slow probe from 65,536 ago).
        loop {
            let seq = p.next_seq;
            p.next_seq = p.next_seq.wrapping_add(1);
            if let std::collections::hash_map::Entry::Vacant(slot) = p.waiting.entry(seq) {
                slot.insert(Entry {
                    addr,
                    waiter: Some(waiter),
                    duplicates: 0,
                });
                return Some(seq);
            }
        }
    }

    /// Hand a reply from `from` to its waiter: returns the waiter (taken out
    /// of its entry) when identifier, sequence and address all match and no
    /// earlier reply took it. A later matching reply is counted as a
    /// duplicate of that entry and gives `None`.
    pub fn deliver(&self, reply: &EchoReply, from: IpAddr) -> Option<T> {
        if reply.ident != self.ident {
            return None;
        }
        #[cfg(pulse_loom)]
        if self.bug == Some(Bug::TakeCheckPutBack) {
            let entry = self.inner.lock().waiting.remove(&reply.seq)?;
            if entry.addr == from {
                return entry.waiter;
            }
            self.inner.lock().waiting.insert(reply.seq, entry);
            return None;
        }
        let mut p = self.inner.lock();
        let entry = p.waiting.get_mut(&reply.seq).filter(|e| e.addr == from)?;
        let waiter = entry.waiter.take();
        if waiter.is_none() {
            entry.duplicates = entry.duplicates.saturating_add(1);
        }
        waiter
    }

    /// The reader's whole job for one received packet: parse it, and if it is
    /// a reply some probe of this scan waits for, take that waiter out of the
    /// table and return it with the reply to hand over. Anything else (other
    /// programs' pings, our own requests seen on loopback, corrupt packets)
    /// gives `None` and is ignored.
    pub fn dispatch(&self, packet: &[u8], framing: Framing, from: IpAddr) -> Option<(T, Pong)> {
        let reply = parse_reply(packet, framing)?;
        let waiter = self.deliver(&reply, from)?;
        Some((
            waiter,
            Pong {
                sequence: reply.seq,
                ttl: reply.ttl,
            },
        ))
    }

    /// Remove a waiter whose probe gave up (timeout, cancel). Returns it if it
    /// was still there, i.e. no reply was delivered first.
    pub fn cancel(&self, seq: u16) -> Option<T> {
        self.close(seq).and_then(|c| c.waiter)
    }

    /// Remove the entry of `seq` when its probe is over, answered or not,
    /// with the duplicates counted for it; `None` when there was none.
    pub fn close(&self, seq: u16) -> Option<Closed<T>> {
        let e = self.inner.lock().waiting.remove(&seq)?;
        Some(Closed {
            waiter: e.waiter,
            duplicates: e.duplicates,
        })
    }

    /// Close every request of an echo train (the sequence numbers in
    /// `seqs`, which are taken), returning the duplicate replies counted
    /// for them: what every model does when a train ends, however it ends.
    pub fn close_train(&self, seqs: &mut Vec<u16>) -> u32 {
        seqs.drain(..)
            .filter_map(|seq| self.close(seq))
            .fold(0, |n, c| n.saturating_add(c.duplicates))
    }

    /// A guard that [`cancel`](Self::cancel)s `seq` when dropped. A probe
    /// holds it from registration on, so every way out of the probe (reply,
    /// send error, timeout, shutdown, a panic unwinding) removes its entry
    /// unless the reader already took it: nothing leaks.
    pub fn cancel_on_drop(&self, seq: u16) -> CancelOnDrop<'_, T> {
        CancelOnDrop { table: self, seq }
    }

    /// Waiters still registered (zero at the end of a clean scan).
    pub fn len(&self) -> usize {
        self.inner.lock().waiting.len()
    }

    /// True when no waiter is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes one waiter from its table when dropped; see
/// [`ReplyTable::cancel_on_drop`].
pub struct CancelOnDrop<'a, T> {
    table: &'a ReplyTable<T>,
    seq: u16,
}

impl<T> Drop for CancelOnDrop<'_, T> {
    fn drop(&mut self) {
        self.table.cancel(self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_reply(mut req: Vec<u8>) -> Vec<u8> {
        req[0] = V4_ECHO_REPLY;
        req[2] = 0;
        req[3] = 0;
        let c = checksum(&req);
        req[2..4].copy_from_slice(&c.to_be_bytes());
        req
    }

    fn with_ipv4_header(icmp: &[u8], ttl: u8) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, ttl, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        p.extend_from_slice(icmp);
        p
    }

    #[test]
    fn request_checksum_verifies() {
        let req = echo_request(false, 0x1234, 7);
        assert_eq!(req[0], V4_ECHO_REQUEST);
        assert_eq!(checksum(&req), 0, "a packet with its checksum sums to zero");
        assert_eq!(&req[4..8], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn parses_raw_and_dgram_replies() {
        let reply = as_reply(echo_request(false, 42, 9));
        let raw = with_ipv4_header(&reply, 61);
        assert_eq!(
            parse_reply(&raw, Framing::RawV4),
            Some(EchoReply {
                ident: 42,
                seq: 9,
                ttl: Some(61)
            })
        );
        assert_eq!(
            parse_reply(&reply, Framing::DgramV4),
            Some(EchoReply {
                ident: 42,
                seq: 9,
                ttl: None
            })
        );
    }

    #[test]
    fn rejects_requests_bad_checksums_and_short_packets() {
        let req = echo_request(false, 42, 9);
        assert_eq!(
            parse_reply(&req, Framing::DgramV4),
            None,
            "our own request is not a reply"
        );
        let mut bad = as_reply(echo_request(false, 42, 9));
        bad[10] ^= 0xff;
        assert_eq!(
            parse_reply(&bad, Framing::DgramV4),
            None,
            "checksum mismatch"
        );
        assert_eq!(parse_reply(&[0, 0, 0], Framing::DgramV4), None);
        assert_eq!(parse_reply(&[0x45, 0, 0], Framing::RawV4), None);
        assert_eq!(parse_reply(&[0x60; 40], Framing::RawV4), None, "not IPv4");
    }

    #[test]
    fn table_matches_ident_seq_and_address() {
        let t = ReplyTable::new(7);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = t.register(a, "one").unwrap();
        let s2 = t.register(b, "two").unwrap();
        assert_ne!(s1, s2);
        let r = |ident, seq| EchoReply {
            ident,
            seq,
            ttl: None,
        };
        assert_eq!(t.deliver(&r(8, s1), a), None, "other scan's identifier");
        assert_eq!(t.deliver(&r(7, s1), b), None, "reply from the wrong host");
        assert_eq!(t.deliver(&r(7, s1), a), Some("one"));
        assert_eq!(
            t.deliver(&r(7, s1), a),
            None,
            "a duplicate reply finds nobody"
        );
        assert_eq!(
            t.close(s1),
            Some(Closed {
                waiter: None,
                duplicates: 1
            }),
            "but it is counted, once"
        );
        assert_eq!(t.cancel(s2), Some("two"));
        assert_eq!(
            t.deliver(&r(7, s2), b),
            None,
            "late reply after timeout is dropped"
        );
        assert!(t.is_empty());
    }

    #[test]
    fn the_drop_guard_removes_a_waiter_nobody_answered() {
        let t = ReplyTable::new(7);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let answered = t.register(a, 1).unwrap();
        let unanswered = t.register(a, 2).unwrap();
        {
            let _g1 = t.cancel_on_drop(answered);
            let _g2 = t.cancel_on_drop(unanswered);
            let reply = EchoReply {
                ident: 7,
                seq: answered,
                ttl: None,
            };
            assert_eq!(t.deliver(&reply, a), Some(1));
        }
        assert!(t.is_empty(), "the unanswered waiter left with its guard");
    }

    #[test]
    fn sequence_numbers_wrap_and_skip_busy_ones() {
        let t = ReplyTable::new(1);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let first = t.register(a, 0u32).unwrap();
        for i in 1..=u32::from(u16::MAX) {
            let s = t.register(a, i).unwrap();
            assert!(t.cancel(s).is_some());
        }
        // The counter wrapped to `first`, which is still busy: it is skipped.
        let next = t.register(a, 99).unwrap();
        assert_ne!(next, first);
        assert_eq!(t.len(), 2);
    }

    /// A denied family answers each echo with its message as a
    /// `PermissionDenied` error (kind `permission`); an opened one gives its
    /// socket; a family the plan never needed keeps the old wording; any
    /// other open failure is the scan's setup error.
    #[test]
    fn families_keep_denials_for_the_echoes() {
        let mut f: Families<&str> = Families::default();
        let denied = Denied::new("no ICMP socket; fix: setcap");
        assert_eq!(f.keep(false, Err(OpenError::Denied(denied))), Ok(None));
        assert_eq!(f.keep(true, Ok("v6 socket")), Ok(Some(&"v6 socket")));
        let e = f.get("127.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(e.to_string(), "no ICMP socket; fix: setcap");
        assert_eq!(f.get("::1".parse().unwrap()).unwrap(), &"v6 socket");
        assert_eq!(f.open().collect::<Vec<_>>(), [&"v6 socket"]);

        let mut only6: Families<&str> = Families::default();
        only6.keep(true, Ok("v6")).unwrap();
        let e = only6.get("127.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            no_socket_for("127.0.0.1".parse().unwrap()).to_string()
        );
        let setup = SetupError {
            message: "too many open files".into(),
        };
        assert_eq!(
            only6.keep(false, Err(OpenError::Setup(setup.clone()))),
            Err(setup)
        );
    }
}
