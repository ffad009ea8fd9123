//! Probe sessions: one probe's protocol logic as a sans-IO state machine.
//!
//! A model drives a [`Session`] with a loop of the same shape in every model:
//!
//! ```text
//! loop {
//!     match session.step() {
//!         Step::Resolve { host, port } => session.resolved(dns_lookup(host, port), now()),
//!         Step::Connect(addr)          => session.connected(open_tcp(addr), now()),
//!         Step::Write(bytes)           => session.wrote(socket.write(bytes), now()),
//!         Step::Read                   => session.received(socket.read(buf).map(|n| &buf[..n]), now()),
//!         Step::Ping(ip)               => session.pinged(echo(ip), now()),
//!         Step::Echo { to, of }        => session.echoed(send_echo(to), now()),
//!         Step::Collect { until }      => session.collected(next_reply(until), now()),
//!         Step::Done                   => break,
//!     }
//! }
//! let outcome = session.finish();          // or session.timed_out(now, limit) when the deadline fired
//! ```
//!
//! An ICMP target with `count=` above 1 sends an echo train: `Echo` asks for
//! one request (the model registers its sequence number in the probe's
//! reply table and sends), `Collect` for the next reply to any of the
//! probe's requests, or nothing once `until` (the next request's send time)
//! passes. The train ends when every request is answered or at the deadline;
//! before its result, the model hands over the duplicates its reply table
//! counted ([`Session::duplicates`]). A single echo keeps the one `Ping` step.
//!
//! The session decides everything else: which address to try next, the TLS
//! records (rustls), the HTTP/1.1 exchange (ureq-proto), redirects, the body
//! cap, status and content checks, phase times, and the classification of
//! every failure into an [`ErrorKind`]. Time is passed in, so tests drive a
//! session with plain buffers and invented instants.

use std::collections::HashMap;
use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use crate::redact::redact_password;
use crate::redirect::RedirectPolicy;
use crate::request::RequestParts;
use crate::result::{
    ErrorKind, HttpDetails, IcmpDetails, IcmpPackets, Kind, Outcome, Phases, ProbeError,
};
use crate::target::{IpFamily, Target};

/// Largest response head (status line + headers) accepted. ureq-proto has no
/// limit of its own; 64 KiB is far above any real server's (nginx's default
/// for requests is 8 KiB) and stops a server that sends headers forever.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Default cap on response body bytes read (1 MiB). Past it the
/// probe stops reading and marks the body truncated; it never buffers more.
pub const DEFAULT_BODY_CAP: usize = 1024 * 1024;

/// The `User-Agent` pulse sends, so operators can find probes in their logs
/// (a native stack sends it too).
pub const USER_AGENT: &str = concat!("pulse/", env!("CARGO_PKG_VERSION"));

/// Why a redirect hop was refused, and how to allow it. The flags are
/// `pulse serve`'s, the only command that narrows the policy.
const REFUSED_HOP: &str = "not a configured target (pulse serve follows redirects only to the \
     hosts and ports of its configured targets; allow more with --allow-redirect-host \
     HOST[:PORT] or --allow-any-redirect)";

/// How long a connection attempt has before the next address's starts
/// (RFC 8305's Connection Attempt Delay, whose recommended value is 250 ms:
/// long enough that a healthy first address almost always wins, short
/// enough that a dead one costs a quarter second, not the deadline).
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Names pinned to addresses (`--resolve NAME=ADDR,...`), by lowercased
/// name: probes of them skip the resolver, as curl's `--resolve` does.
pub type Pins = std::collections::HashMap<String, Vec<IpAddr>>;

/// What the model must do next for this session.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Resolve `host` (a DNS name, never an IP literal); call [`Session::resolved`].
    Resolve {
        /// The name to resolve.
        host: &'a str,
        /// The port to pair with each address.
        port: u16,
    },
    /// Open a new TCP connection to this address, dropping any previous one;
    /// call [`Session::connected`].
    Connect(SocketAddr),
    /// Happy eyeballs (RFC 8305): a name has several addresses. Connect to
    /// the first; whenever `stagger` passes without a connection, or an
    /// attempt fails, start the next one too, keeping the earlier attempts
    /// going. The first to connect wins and the others are dropped; call
    /// [`Session::raced`] with the winner's address (keeping its
    /// connection), or with the first error when all failed.
    /// The addresses alternate between families, the first family first.
    Race {
        /// The addresses, in the order to try them.
        addrs: &'a [SocketAddr],
        /// How long an attempt has before the next one starts.
        stagger: Duration,
    },
    /// Write (some of) these bytes to the connection; call [`Session::wrote`].
    Write(&'a [u8]),
    /// Read from the connection; call [`Session::received`] (empty slice = EOF).
    Read,
    /// Send an ICMP echo request to this address and wait for its reply; call
    /// [`Session::pinged`].
    Ping(IpAddr),
    /// Send the next echo request of the train to `to`, registered for
    /// this probe's replies; call [`Session::echoed`] with its sequence
    /// number.
    Echo {
        /// The address to ping.
        to: IpAddr,
        /// Requests in the whole train: at most this many replies are ever
        /// handed over, so a reply channel of this size never fills.
        of: u16,
    },
    /// Wait for the next reply to one of this probe's echo requests, or
    /// until `until` (the next request is due); with `None`, until a reply
    /// or the deadline. Call [`Session::collected`].
    Collect {
        /// When to give up waiting and call back with no reply.
        until: Option<Instant>,
    },
    /// The probe is over; take the result with [`Session::finish`].
    Done,
}

/// Where the session is. Kept coarse: the HTTP exchange has its own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Resolve,
    Connect,
    Exchange,
    Ping,
    /// `all_addresses`: inner sessions probe the addresses in turn
    /// (session/every.rs).
    Every,
    /// An echo train (`count=` above 1) in flight.
    Train,
    Done,
}

/// Accumulated phase times (redirects add to them, as blackbox does).
#[derive(Debug, Default, Clone, Copy)]
struct PhaseTimes {
    resolve: Option<Duration>,
    connect: Option<Duration>,
    tls: Option<Duration>,
    processing: Option<Duration>,
    transfer: Option<Duration>,
    rtt: Option<Duration>,
}

fn add(slot: &mut Option<Duration>, d: Duration) {
    *slot = Some(slot.unwrap_or_default() + d);
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(crate::result::millis)
}

/// One probe of one target.
pub struct Session {
    kind: Kind,
    /// Host of the current request (changes on a redirect to another host).
    host: String,
    port: u16,
    state: State,
    started: Instant,
    /// When the phase in progress began; each transition closes one phase.
    phase_start: Instant,
    phases: PhaseTimes,
    /// The target's `ip=`: only this family's addresses are probed.
    only: IpFamily,
    /// The scan's `--ip`: this family's addresses are tried first, the
    /// other's after them (blackbox_exporter's `preferred_ip_protocol`
    /// with its fallback).
    prefer: IpFamily,
    /// Names pinned to addresses (`--resolve`): looked up here, never
    /// through the model's resolver.
    pinned: Option<Arc<Pins>>,
    /// `all_addresses`: the per-address sessions, once the name resolved.
    every: Option<Box<Every>>,
    /// Resolved addresses, tried in order while connects are refused.
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    /// The address of the current connection (or ping).
    address: Option<SocketAddr>,
    /// Bytes for the wire (TLS records or plain HTTP) not yet written.
    out: Vec<u8>,
    out_pos: usize,
    http: Option<Box<HttpExchange>>,
    icmp: Option<IcmpDetails>,
    /// The echo train of an icmp target with `count=` above 1; boxed, as
    /// `http` is, so that other probes do not carry it.
    train: Option<Box<Train>>,
    error: Option<ProbeError>,
    /// Whether the peer ended the exchange (EOF seen). When false at the end,
    /// we are the side closing first and the model should reset the socket
    /// (SO_LINGER 0) rather than leave TIME_WAIT behind: a prober that closes
    /// first piles up TIME_WAIT entries and its connect rate halves.
    peer_closed: bool,
    /// Set when a TLS failure queued an alert that should still go out.
    flush_alert: bool,
}

/// A multi-packet ICMP probe's requests and what came back.
struct Train {
    /// Requests to send.
    count: u16,
    /// Send spacing: request `k` is due `k × interval` after the first, a
    /// fixed schedule, so a late wake-up does not push the rest back.
    interval: Duration,
    /// When the first request went out.
    first: Option<Instant>,
    /// One per request sent, in send order.
    echoes: Vec<Echo>,
    /// Index in `echoes` by sequence number.
    by_seq: HashMap<u16, usize>,
    /// Distinct requests answered.
    received: u16,
    /// Replies beyond the first to one request.
    duplicates: u32,
    /// TTL of the first reply.
    ttl: Option<u8>,
    /// The wait for the next send time is over: send now.
    send_now: bool,
}

/// One request of a train.
struct Echo {
    seq: u16,
    sent: Instant,
    rtt: Option<Duration>,
}

impl Train {
    /// When the next request is due, `None` once all are sent.
    fn next_due(&self) -> Option<Instant> {
        let k = u32::try_from(self.echoes.len()).ok()?;
        if self.echoes.len() >= usize::from(self.count) {
            return None;
        }
        // k < count <= 1000 and interval <= 24 h: no overflow.
        Some(crate::time::deadline(self.first?, self.interval * k))
    }

    fn details(&self) -> IcmpDetails {
        let rtts: Vec<Option<Duration>> = self.echoes.iter().map(|e| e.rtt).collect();
        IcmpDetails {
            sequence: self.echoes.first().map_or(0, |e| e.seq),
            reply_ttl: self.ttl,
            packets: Some(IcmpPackets::of(&rtts, self.duplicates)),
        }
    }
}

/// An echo reply as the model's ICMP reader saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// Sequence number of the echo.
    pub sequence: u16,
    /// IP TTL of the reply, when the socket exposes it.
    pub ttl: Option<u8>,
}

impl Session {
    /// Start a probe of `target` at `now`. `tls` is the client config for
    /// http targets (also used if an http target redirects to https);
    /// `body_cap` bounds the body bytes read.
    pub fn new(
        target: &Target,
        tls: Option<Arc<rustls::ClientConfig>>,
        body_cap: usize,
        now: Instant,
    ) -> Session {
        let http = target.http.as_ref().map(|h| {
            let checks = Checks::of(h);
            let keep_body = checks.keeps_body();
            Box::new(HttpExchange {
                uri: h.uri.clone(),
                origin: h.uri.clone(),
                redirect_policy: RedirectPolicy::Any,
                tls_config: tls.clone().unwrap_or_else(crate::tls::verified),
                checks,
                body_cap,
                keep_body,
                redirects: 0,
                request: RequestParts::of(h),
                tls: None,
                handshake_done: false,
                call: CallState::Idle,
                head: Vec::new(),
                first_byte: false,
                status: None,
                version: None,
                body: Vec::new(),
                body_pending: Vec::new(),
                body_bytes: 0,
                truncated: false,
                tls_version: None,
                cert: None,
            })
        });
        let mut s = Session {
            kind: target.kind,
            host: target.host.clone(),
            port: target.port,
            state: State::Resolve,
            started: now,
            phase_start: now,
            phases: PhaseTimes::default(),
            only: target.ip,
            prefer: IpFamily::Any,
            pinned: None,
            every: (target.all_addresses && target.kind != Kind::Icmp)
                .then(|| Box::new(Every::new(target, tls.clone(), body_cap))),
            addrs: Vec::new(),
            next_addr: 0,
            address: None,
            out: Vec::new(),
            out_pos: 0,
            http,
            icmp: None,
            train: None,
            error: None,
            peer_closed: false,
            flush_alert: false,
        };
        s.begin_connection(now);
        s
    }

    /// Check every redirect hop against `policy` before following it; a
    /// session follows any http(s) redirect until told otherwise. A refused
    /// hop ends the probe as `protocol`, without connecting to it.
    pub fn with_redirects(mut self, policy: RedirectPolicy) -> Session {
        if let Some(e) = self.every.as_deref_mut() {
            e.policy = policy.clone();
        }
        if let Some(h) = self.http.as_mut() {
            h.redirect_policy = policy;
        }
        self
    }

    /// Try addresses of `family` first when a name resolves to both
    /// (`--ip`); a target's own `ip=` still limits it to one.
    pub fn with_preferred_ip(mut self, family: IpFamily) -> Session {
        self.prefer = family;
        if let Some(e) = self.every.as_deref_mut() {
            e.prefer = family;
        }
        self
    }

    /// Take the addresses of the names in `pins` from there instead of
    /// asking the model to resolve them (`--resolve`), on every hop.
    pub fn with_pins(mut self, pins: Option<Arc<Pins>>, now: Instant) -> Session {
        if let Some(e) = self.every.as_deref_mut() {
            e.pins = pins.clone();
        }
        self.pinned = pins;
        if self.state == State::Resolve {
            self.begin_connection(now);
        }
        self
    }

    /// Send `count` echo requests `interval` apart instead of one (icmp
    /// targets; a count of 1 leaves the single echo as it always was).
    pub fn with_echoes(mut self, count: u16, interval: Duration) -> Session {
        if self.kind != Kind::Icmp || count <= 1 {
            return self;
        }
        self.train = Some(Box::new(Train {
            count,
            interval,
            first: None,
            echoes: Vec::with_capacity(usize::from(count)),
            by_seq: HashMap::with_capacity(usize::from(count)),
            received: 0,
            duplicates: 0,
            ttl: None,
            send_now: true,
        }));
        // An IP literal was "resolved" in `new`, before the train existed.
        if self.state == State::Ping {
            self.state = State::Train;
        }
        self
    }

    /// The probe kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// What to do next.
    pub fn step(&self) -> Step<'_> {
        match self.state {
            State::Resolve => Step::Resolve {
                host: &self.host,
                port: self.port,
            },
            State::Connect if self.addrs.len() > 1 => Step::Race {
                addrs: &self.addrs,
                stagger: CONNECTION_ATTEMPT_DELAY,
            },
            State::Connect => match self.addrs.get(self.next_addr) {
                Some(a) => Step::Connect(*a),
                // Unreachable by construction (we move to Done when the list
                // runs out); Done is the safe answer if it ever happened.
                None => Step::Done,
            },
            State::Exchange if self.out_pos < self.out.len() => {
                Step::Write(&self.out[self.out_pos..])
            }
            State::Exchange => Step::Read,
            State::Ping => match self.address {
                Some(a) => Step::Ping(a.ip()),
                None => Step::Done,
            },
            State::Train => match (self.address, self.train.as_deref()) {
                (Some(a), Some(t)) if t.send_now => Step::Echo {
                    to: a.ip(),
                    of: t.count,
                },
                (Some(_), Some(t)) => Step::Collect {
                    until: t.next_due(),
                },
                _ => Step::Done,
            },
            // A TLS failure leaves an alert in `out`: send it (the peer
            // learns why we hang up), then stop.
            State::Done if self.flush_alert && self.out_pos < self.out.len() => {
                Step::Write(&self.out[self.out_pos..])
            }
            State::Every => match self.every.as_deref().and_then(Every::current) {
                Some(inner) => inner.step(),
                None => Step::Done,
            },
            State::Done => Step::Done,
        }
    }

    /// True when the model should close the socket with a reset (SO_LINGER 0)
    /// instead of a FIN: a TCP-connect probe, or any probe that ends before the
    /// server closed. This keeps TIME_WAIT off the prober (see
    /// [`Session`]'s `peer_closed` field for why).
    pub fn close_with_reset(&self) -> bool {
        if let Some(e) = self.every.as_deref()
            && self.state == State::Every
        {
            return e.close_with_reset();
        }
        self.kind == Kind::Tcp || !self.peer_closed
    }

    /// Hand what the model did to the inner session of an `all_addresses`
    /// probe (in [`State::Every`]), and start the next address when that
    /// one is done.
    fn hand_to_every(&mut self, now: Instant, report: impl FnOnce(&mut Session)) {
        if let Some(e) = self.every.as_deref_mut() {
            if let Some(inner) = e.current_mut() {
                report(inner);
            }
            e.advance(now);
        }
    }

    /// Start resolving (or connecting, for IP literals) the current host.
    fn begin_connection(&mut self, now: Instant) {
        self.phase_start = now;
        self.addrs.clear();
        self.next_addr = 0;
        let literal = self.host.parse::<IpAddr>().ok();
        let pinned = self
            .pinned
            .as_ref()
            .and_then(|p| p.get(&self.host.to_ascii_lowercase()))
            .cloned();
        match (literal, pinned) {
            (Some(ip), _) => {
                add(&mut self.phases.resolve, Duration::ZERO);
                self.take_addresses(vec![SocketAddr::new(ip, self.port)], now);
            }
            (None, Some(ips)) => {
                add(&mut self.phases.resolve, Duration::ZERO);
                let port = self.port;
                let addrs = ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
                self.take_addresses(addrs, now);
            }
            (None, None) => self.state = State::Resolve,
        }
    }

    /// Use the addresses a name has: only the target's family, the
    /// preferred family first (stable: within a family the resolver's
    /// order stands), or a `dns` failure that says which family is missing.
    fn take_addresses(&mut self, addrs: Vec<SocketAddr>, now: Instant) {
        let mut addrs: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| self.only.admits(a.ip()))
            .collect();
        if addrs.is_empty() {
            let n = if self.only == IpFamily::V4 { 4 } else { 6 };
            return self.fail(
                ErrorKind::Dns,
                format!(
                    "{}: no {} address (ip={n}); it resolves only to the other family",
                    self.host,
                    self.only.name()
                ),
            );
        }
        addrs.sort_by_key(|a| !self.prefer.admits(a.ip()));
        interleave_families(&mut addrs);
        // Every address of the target's own name, each in an inner session
        // (a redirect there is that session's, probed as any host is).
        if let Some(e) = self.every.as_deref_mut() {
            self.state = State::Every;
            return e.begin(addrs, now);
        }
        self.addrs = addrs;
        self.after_resolve();
    }

    fn after_resolve(&mut self) {
        if self.kind == Kind::Icmp {
            self.address = self.addrs.first().copied();
            self.state = if self.train.is_some() {
                State::Train
            } else {
                State::Ping
            };
        } else {
            self.state = State::Connect;
        }
    }

    /// Close the phase in progress at `now`, returning its length.
    fn lap(&mut self, now: Instant) -> Duration {
        let d = now.saturating_duration_since(self.phase_start);
        self.phase_start = now;
        d
    }

    fn fail(&mut self, kind: ErrorKind, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(ProbeError::new(kind, message));
        }
        self.state = State::Done;
    }

    /// The name lookup finished.
    pub fn resolved(&mut self, result: io::Result<Vec<SocketAddr>>, now: Instant) {
        if self.state != State::Resolve {
            return;
        }
        let d = self.lap(now);
        add(&mut self.phases.resolve, d);
        match result {
            Ok(addrs) if !addrs.is_empty() => self.take_addresses(addrs, now),
            Ok(_) => self.fail(
                ErrorKind::Dns,
                format!("{}: name has no addresses", self.host),
            ),
            Err(e) => self.fail(
                ErrorKind::Dns,
                format!("resolve {}: {}", self.host, resolver_message(&e)),
            ),
        }
    }

    /// The TCP connect finished.
    pub fn connected(&mut self, result: io::Result<()>, now: Instant) {
        if self.state == State::Every {
            return self.hand_to_every(now, |inner| inner.connected(result, now));
        }
        if self.state != State::Connect {
            return;
        }
        let addr = self.addrs.get(self.next_addr).copied();
        match result {
            Ok(()) => {
                let d = self.lap(now);
                add(&mut self.phases.connect, d);
                self.address = addr;
                self.peer_closed = false;
                if self.kind == Kind::Tcp {
                    self.state = State::Done;
                } else {
                    self.state = State::Exchange;
                    self.start_request();
                }
            }
            Err(e) => {
                // One address, or a race's winner: several addresses are
                // raced (Step::Race), never tried here one by one.
                let d = self.lap(now);
                add(&mut self.phases.connect, d);
                let addr = addr.map(|a| a.to_string()).unwrap_or_default();
                self.address = self.addrs.get(self.next_addr).copied();
                let (kind, what) = classify_io(&e);
                self.fail(kind, format!("connect to {addr}: {what}"));
            }
        }
    }

    /// The race of [`Step::Race`] ended: `Ok(addr)`, the address whose
    /// connection won (the model keeps it), or the first error when every
    /// attempt failed.
    pub fn raced(&mut self, result: io::Result<SocketAddr>, now: Instant) {
        if self.state == State::Every {
            return self.hand_to_every(now, |inner| inner.raced(result, now));
        }
        if self.state != State::Connect {
            return;
        }
        match result {
            Ok(addr) => {
                // The winner's place, so `connected` reports it.
                self.next_addr = self.addrs.iter().position(|a| *a == addr).unwrap_or(0);
                self.connected(Ok(()), now);
            }
            Err(e) => {
                let d = self.lap(now);
                add(&mut self.phases.connect, d);
                self.address = self.addrs.first().copied();
                let (kind, what) = classify_io(&e);
                let first = self
                    .addrs
                    .first()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let others = self.addrs.len().saturating_sub(1);
                self.fail(
                    kind,
                    format!(
                        "connect to {first} and {others} more address{} (raced): {what}",
                        if others > 1 { "es" } else { "" }
                    ),
                );
            }
        }
    }

    /// Some bytes of the last [`Step::Write`] were written.
    pub fn wrote(&mut self, result: io::Result<usize>, now: Instant) {
        if self.state == State::Every {
            return self.hand_to_every(now, |inner| inner.wrote(result, now));
        }
        let _ = now;
        match result {
            Ok(0) => self.fail(
                ErrorKind::Reset,
                "connection closed while sending the request",
            ),
            Ok(n) => {
                self.out_pos = (self.out_pos + n).min(self.out.len());
                if self.out_pos == self.out.len() {
                    self.out.clear();
                    self.out_pos = 0;
                }
            }
            Err(e) => {
                let (kind, what) = classify_io(&e);
                self.fail(kind, format!("send request: {what}"));
            }
        }
    }

    /// Bytes arrived (an empty slice means the peer closed), or the read failed.
    pub fn received(&mut self, result: io::Result<&[u8]>, now: Instant) {
        if self.state == State::Every {
            return self.hand_to_every(now, |inner| inner.received(result, now));
        }
        if self.state != State::Exchange {
            return;
        }
        let data = match result {
            Ok(d) => d,
            Err(e) => {
                let (kind, what) = classify_io(&e);
                let doing = self.doing();
                // Count the phase that was in progress up to the failure,
                // as a timeout does.
                self.close_open_phase(now);
                return self.fail(kind, format!("{what} while {doing}"));
            }
        };
        if data.is_empty() {
            self.peer_closed = true;
        }
        let fed = match self.http.as_mut() {
            Some(h) => h.input(
                data,
                now,
                &mut self.phase_start,
                &mut self.phases,
                &mut self.out,
            ),
            None => Fed::Finished,
        };
        self.after_fed(fed, now);
    }

    fn after_fed(&mut self, fed: Fed, now: Instant) {
        match fed {
            Fed::More => {}
            Fed::Finished => {
                let d = self.lap(now);
                add(&mut self.phases.transfer, d);
                self.state = State::Done;
            }
            Fed::Failed(e) => {
                self.close_open_phase(now);
                self.flush_alert = e.kind == ErrorKind::Tls && !self.peer_closed;
                self.fail(e.kind, e.message);
            }
            Fed::Redirect(uri) => {
                let d = self.lap(now);
                add(&mut self.phases.transfer, d);
                let Some(h) = self.http.as_mut() else { return };
                h.redirects += 1;
                h.uri = uri;
                self.host = host_of(&h.uri);
                self.port = port_of(&h.uri);
                self.out.clear();
                self.out_pos = 0;
                self.begin_connection(now);
            }
        }
    }

    /// The echo reply for [`Step::Ping`] arrived, or sending failed.
    pub fn pinged(&mut self, result: io::Result<Pong>, now: Instant) {
        if self.state != State::Ping {
            return;
        }
        let d = self.lap(now);
        match result {
            Ok(p) => {
                add(&mut self.phases.rtt, d);
                self.icmp = Some(IcmpDetails {
                    sequence: p.sequence,
                    reply_ttl: p.ttl,
                    packets: None,
                });
                self.state = State::Done;
            }
            Err(e) => {
                let (kind, what) = classify_io(&e);
                self.fail(kind, format!("echo request: {what}"));
            }
        }
    }

    /// The train's next echo request went out with sequence number `seq`
    /// (or sending it failed, which ends the probe like a single echo's).
    pub fn echoed(&mut self, result: io::Result<u16>, now: Instant) {
        if self.state != State::Train {
            return;
        }
        let Some(t) = self.train.as_deref_mut() else {
            return;
        };
        match result {
            Ok(seq) => {
                t.first.get_or_insert(now);
                t.by_seq.insert(seq, t.echoes.len());
                t.echoes.push(Echo {
                    seq,
                    sent: now,
                    rtt: None,
                });
                t.send_now = false;
            }
            Err(e) => {
                let n = t.echoes.len() + 1;
                let count = t.count;
                let (kind, what) = classify_io(&e);
                self.fail(kind, format!("echo request {n} of {count}: {what}"));
            }
        }
    }

    /// What the wait of [`Step::Collect`] brought: a reply, or `None` when
    /// its `until` passed (an `Err` when the model's ICMP reader is gone).
    pub fn collected(&mut self, result: io::Result<Option<Pong>>, now: Instant) {
        if self.state != State::Train {
            return;
        }
        let Some(t) = self.train.as_deref_mut() else {
            return;
        };
        match result {
            Ok(Some(p)) => {
                // The table hands over only this probe's own sequence
                // numbers, once each; anything else is ignored.
                if let Some(e) = t.by_seq.get(&p.sequence).and_then(|&i| t.echoes.get_mut(i)) {
                    if e.rtt.is_none() {
                        e.rtt = Some(now.saturating_duration_since(e.sent));
                        t.received += 1;
                        t.ttl = t.ttl.or(p.ttl);
                    } else {
                        t.duplicates = t.duplicates.saturating_add(1);
                    }
                }
                if t.received >= t.count {
                    self.state = State::Done;
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                let (kind, what) = classify_io(&e);
                return self.fail(kind, format!("echo replies: {what}"));
            }
        }
        // Time for the next request (a reply may come just after the
        // wait's `until` passed, and then it is time too).
        t.send_now = t.next_due().is_some_and(|due| due <= now);
    }

    /// Replies that duplicated an already answered request, as the
    /// model's reply table counted them for this probe's train (given
    /// when the probe's requests are closed, before its result).
    pub fn duplicates(&mut self, n: u32) {
        if let Some(t) = self.train.as_deref_mut() {
            t.duplicates = t.duplicates.saturating_add(n);
        }
    }

    /// A phrase for what the probe was doing, for error messages.
    fn doing(&self) -> String {
        match self.state {
            State::Resolve => format!("resolving {}", self.host),
            State::Connect if self.addrs.len() > 1 => format!(
                "connecting to {} and {} more address{} (raced)",
                self.addrs[0],
                self.addrs.len() - 1,
                if self.addrs.len() > 2 { "es" } else { "" }
            ),
            State::Connect => match self.addrs.get(self.next_addr) {
                Some(a) => format!("connecting to {a}"),
                None => "connecting".into(),
            },
            State::Ping => "waiting for the echo reply".into(),
            State::Train => match self.train.as_deref() {
                Some(t) if t.received == 0 => format!(
                    "waiting for echo replies (none of {} answered)",
                    t.echoes.len()
                ),
                Some(t) => format!(
                    "waiting for echo replies ({} of {} answered)",
                    t.received,
                    t.echoes.len()
                ),
                None => "waiting for echo replies".into(),
            },
            State::Done => "finishing".into(),
            State::Every => "probing every address".into(),
            State::Exchange => match self.http.as_deref() {
                Some(h) if h.tls.is_some() && !h.handshake_done => "in the TLS handshake".into(),
                Some(_) if self.out_pos < self.out.len() => "sending the request".into(),
                Some(h) => match h.call {
                    CallState::RecvBody(_) => {
                        format!("reading the body ({} bytes so far)", h.body_bytes)
                    }
                    _ if h.head.is_empty() && !h.first_byte => "waiting for the response".into(),
                    _ => "reading the response headers".into(),
                },
                None => "exchanging".into(),
            },
        }
    }

    /// The deadline passed at `now`; `limit` is the probe's timeout. The phase
    /// in progress is counted up to `now`.
    pub fn timed_out(mut self, now: Instant, limit: Duration) -> Outcome {
        if let Some(every) = self.every_running() {
            let unreached = (
                ErrorKind::Timeout,
                "not probed: the deadline passed while earlier addresses were probed",
            );
            return self.every_outcome(every, |inner| inner.timed_out(now, limit), unreached, now);
        }
        // An echo train ends at its deadline: up when any request was
        // answered (smokeping's and blackbox's meaning of an ICMP probe
        // that saw some loss), its loss in the result.
        if self.state == State::Train && self.train.as_ref().is_some_and(|t| t.received > 0) {
            self.state = State::Done;
            return self.outcome(now);
        }
        let doing = self.doing();
        self.close_open_phase(now);
        self.error = Some(ProbeError::new(
            ErrorKind::Timeout,
            format!("timed out after {} while {doing}", fmt_duration(limit)),
        ));
        self.state = State::Done;
        self.outcome(now)
    }

    /// The scan's shutdown cut this probe off at `now`.
    pub fn cancelled(mut self, now: Instant, message: impl Into<String>) -> Outcome {
        let message = message.into();
        if let Some(every) = self.every_running() {
            let unreached = (ErrorKind::Cancelled, message.as_str());
            return self.every_outcome(
                every,
                |inner| inner.cancelled(now, message.clone()),
                unreached,
                now,
            );
        }
        self.close_open_phase(now);
        self.error = Some(ProbeError::new(ErrorKind::Cancelled, message));
        self.state = State::Done;
        self.outcome(now)
    }

    fn close_open_phase(&mut self, now: Instant) {
        let d = self.lap(now);
        let slot = match self.state {
            State::Resolve => &mut self.phases.resolve,
            State::Connect => &mut self.phases.connect,
            State::Ping => &mut self.phases.rtt,
            State::Train | State::Done | State::Every => return,
            State::Exchange => match self.http.as_deref() {
                Some(h) if h.tls.is_some() && !h.handshake_done => &mut self.phases.tls,
                Some(h) if h.first_byte => &mut self.phases.transfer,
                _ => &mut self.phases.processing,
            },
        };
        add(slot, d);
    }

    /// The result once [`Step::Done`] was reached, with `now` as the end time.
    pub fn finish(mut self, now: Instant) -> Outcome {
        if let Some(every) = self.every_running() {
            let unreached = (ErrorKind::Io, "not probed: the probe ended first");
            return self.every_outcome(every, |inner| inner.finish(now), unreached, now);
        }
        if self.state != State::Done {
            self.fail(ErrorKind::Io, "probe ended before it was done");
        }
        self.outcome(now)
    }

    /// The per-address sessions, when this is an `all_addresses` probe
    /// past its name lookup.
    fn every_running(&mut self) -> Option<Box<Every>> {
        if self.state == State::Every {
            self.every.take()
        } else {
            None
        }
    }

    /// The outcome of an `all_addresses` probe (session/every.rs).
    fn every_outcome(
        &self,
        every: Box<Every>,
        end: impl FnOnce(Session) -> Outcome,
        unreached: (ErrorKind, &str),
        now: Instant,
    ) -> Outcome {
        every.outcome(end, unreached, self.started, ms(self.phases.resolve), now)
    }

    fn outcome(mut self, now: Instant) -> Outcome {
        if self.error.is_none()
            && let Some(h) = self.http.as_deref()
            && let Err(e) = h.check()
        {
            self.error = Some(e);
        }
        let train = self.train.as_deref().map(Train::details);
        let p = &self.phases;
        let phases = Phases {
            resolve: ms(p.resolve),
            connect: ms(p.connect),
            tls: ms(p.tls),
            processing: ms(p.processing),
            transfer: ms(p.transfer),
            rtt: match &train {
                Some(d) => d.packets.as_ref().and_then(|p| p.rtt_avg_ms),
                None => ms(p.rtt),
            },
        };
        let address = self.address.map(|a| match self.kind {
            Kind::Icmp => a.ip().to_string(),
            _ => a.to_string(),
        });
        let http = self.http.as_deref().map(|h| HttpDetails {
            status_code: h.status,
            version: h.version.clone(),
            redirects: h.redirects,
            body_bytes: h.body_bytes,
            body_truncated: h.truncated,
            tls_version: h.tls_version.clone(),
            certificate: h.cert.clone(),
            final_url: (h.redirects > 0).then(|| redact_password(&h.uri.to_string()).into_owned()),
        });
        let icmp = match self.kind {
            Kind::Icmp => Some(train.unwrap_or_else(|| self.icmp.clone().unwrap_or_default())),
            _ => None,
        };
        Outcome {
            success: self.error.is_none(),
            duration: now.saturating_duration_since(self.started),
            phases,
            address,
            http,
            icmp,
            error: self.error,
            addresses: Vec::new(),
        }
    }

    /// Queue the HTTP request for the new connection (through TLS for https).
    fn start_request(&mut self) {
        let host = self.host.clone();
        let Some(h) = self.http.as_mut() else { return };
        let plain = match h.build_request() {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    ErrorKind::Protocol,
                    format!("cannot build the request: {e}"),
                );
            }
        };
        h.tls = None;
        h.handshake_done = false;
        if h.uri.scheme_str() == Some("https") {
            let name = match ServerName::try_from(host.clone()) {
                Ok(n) => n,
                Err(e) => {
                    return self.fail(
                        ErrorKind::Tls,
                        format!("{host} is not a valid TLS server name: {e}"),
                    );
                }
            };
            let mut conn = match ClientConnection::new(h.tls_config.clone(), name) {
                Ok(c) => c,
                Err(e) => return self.fail(ErrorKind::Tls, format!("TLS setup: {e}")),
            };
            // rustls buffers plaintext written before the handshake ends and
            // sends it right after, so the request goes out without another
            // round trip through the model.
            if let Err(e) = conn.writer().write_all(&plain) {
                return self.fail(ErrorKind::Tls, format!("TLS setup: {e}"));
            }
            if let Err(e) = flush_tls(&mut conn, &mut self.out) {
                return self.fail(ErrorKind::Tls, format!("TLS setup: {e}"));
            }
            h.tls = Some(Box::new(conn));
        } else {
            self.out.extend_from_slice(&plain);
        }
    }
}

/// Order addresses for happy eyeballs (RFC 8305 §4, First Address Family
/// Count 1): the first address's family, then the other's, alternately,
/// each family in its own order. A single family is left as it is.
fn interleave_families(addrs: &mut Vec<SocketAddr>) {
    let Some(first) = addrs.first().map(SocketAddr::is_ipv6) else {
        return;
    };
    let (mut same, mut other): (Vec<_>, Vec<_>) =
        addrs.drain(..).partition(|a| a.is_ipv6() == first);
    same.reverse();
    other.reverse();
    while let Some(a) = same.pop() {
        addrs.push(a);
        if let Some(b) = other.pop() {
            addrs.push(b);
        }
    }
    addrs.extend(other.into_iter().rev());
}

/// A failed lookup's message as the resolver gave it. Some runtimes wrap
/// the resolver's error in their own context (async-std: "could not resolve
/// address `(\"host\", 80)`", with the resolver's error as its source);
/// the innermost cause is the message every model reports, so results
/// compare equal whichever runtime looked the name up.
fn resolver_message(e: &io::Error) -> String {
    match e.get_ref().and_then(|context| context.source()) {
        Some(cause) => cause.to_string(),
        None => e.to_string(),
    }
}

/// Map a socket error to an error kind and a short description.
pub fn classify_io(e: &io::Error) -> (ErrorKind, String) {
    use io::ErrorKind as K;
    let kind = match e.kind() {
        K::ConnectionRefused => ErrorKind::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
        K::PermissionDenied => ErrorKind::Permission,
        _ => ErrorKind::Io,
    };
    (kind, e.to_string())
}

/// A `cert_expiry_warn=` window as it is usually written: `14d`, `36h`,
/// `90m` when whole, humantime's words otherwise.
fn fmt_window(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if d.subsec_nanos() != 0 => humantime::format_duration(d).to_string(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A duration the way people write it: `5s`, `250ms`, `1.5s`.
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        let secs = format!("{:.3}", d.as_secs_f64());
        format!("{}s", secs.trim_end_matches('0').trim_end_matches('.'))
    }
}

mod checks;
mod every;
mod exchange;
mod uri;

pub use checks::Checks;
use every::Every;
use exchange::{CallState, Fed, HttpExchange, flush_tls};
pub use uri::{host_of, is_redirect, join_location, port_of};

#[cfg(test)]
mod tests;
