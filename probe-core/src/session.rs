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
use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Uri;
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use ureq_proto::BodyMode;
use ureq_proto::client::{
    Call, RecvBodyResult, RecvResponseResult, SendRequestResult,
    state::{RecvBody, RecvResponse},
};

use crate::certs::{CertDetails, fmt_span};
use crate::percent::encode_url;
use crate::redact::redact_password;
use crate::redirect::RedirectPolicy;
use crate::request::RequestParts;
use crate::result::{
    ErrorKind, HttpDetails, IcmpDetails, IcmpPackets, Kind, Outcome, Phases, ProbeError,
};
use crate::target::{HttpTarget, StatusSet, Target};

/// Largest response head (status line + headers) accepted. ureq-proto has no
/// limit of its own; 64 KiB is far above any real server's (nginx's default
/// for requests is 8 KiB) and stops a server that sends headers forever.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Default cap on response body bytes read (DESIGN.md: 1 MiB). Past it the
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
    /// (SO_LINGER 0) rather than leave TIME_WAIT behind (DESIGN.md facts).
    peer_closed: bool,
    /// Set when a TLS failure queued an alert that should still go out.
    flush_alert: bool,
}

/// The HTTP(S) side of a session.
struct HttpExchange {
    uri: Uri,
    /// The target's own URI: the redirect policy always lets a hop stay on
    /// its host and port, wherever earlier hops went.
    origin: Uri,
    /// Where redirects may lead (serve narrows it; scan follows any).
    redirect_policy: RedirectPolicy,
    tls_config: Arc<rustls::ClientConfig>,
    /// The status and content checks (shared with the native stacks).
    checks: Checks,
    body_cap: usize,
    /// Body bytes are kept only when a content check needs them.
    keep_body: bool,
    redirects: u32,
    /// What the request carries beyond the URI (method, headers, body,
    /// credentials); the method and body change on a 301/302/303. An
    /// error when a file the target names was not read.
    request: Result<RequestParts, String>,
    /// TLS state of the current connection (https only).
    tls: Option<Box<ClientConnection>>,
    handshake_done: bool,
    call: CallState,
    head: Vec<u8>,
    first_byte: bool,
    status: Option<u16>,
    version: Option<String>,
    body: Vec<u8>,
    /// Body input the decoder could not use yet: ureq-proto's dechunker does
    /// not buffer a partial chunk-size line or CRLF, it answers `(0, 0)` and
    /// wants those bytes again together with the next read.
    body_pending: Vec<u8>,
    body_bytes: u64,
    truncated: bool,
    tls_version: Option<String>,
    /// The certificates of the current connection, as the handshake saw
    /// them (https only; kept when verification failed).
    cert: Option<CertDetails>,
}

enum CallState {
    Idle,
    RecvHead(Call<RecvResponse>),
    RecvBody(Call<RecvBody>),
}

/// Outcome of feeding bytes to the HTTP layer.
enum Fed {
    /// Need more bytes.
    More,
    /// The exchange is over (success or check failure decided at finish).
    Finished,
    /// Follow a redirect to this URI.
    Redirect(Uri),
    /// The exchange failed.
    Failed(ProbeError),
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
        if let Some(h) = self.http.as_mut() {
            h.redirect_policy = policy;
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
            State::Done => Step::Done,
        }
    }

    /// True when the model should close the socket with a reset (SO_LINGER 0)
    /// instead of a FIN: a TCP-connect probe, or any probe that ends before the
    /// server closed. This keeps TIME_WAIT off the prober (DESIGN.md facts).
    pub fn close_with_reset(&self) -> bool {
        self.kind == Kind::Tcp || !self.peer_closed
    }

    /// Start resolving (or connecting, for IP literals) the current host.
    fn begin_connection(&mut self, now: Instant) {
        self.phase_start = now;
        self.addrs.clear();
        self.next_addr = 0;
        let literal = self.host.parse::<IpAddr>().ok();
        match literal {
            Some(ip) => {
                add(&mut self.phases.resolve, Duration::ZERO);
                self.addrs.push(SocketAddr::new(ip, self.port));
                self.after_resolve();
            }
            None => self.state = State::Resolve,
        }
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
            Ok(addrs) if !addrs.is_empty() => {
                self.addrs = addrs;
                self.after_resolve();
            }
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
                let refused = e.kind() == io::ErrorKind::ConnectionRefused;
                if refused && self.next_addr + 1 < self.addrs.len() {
                    // Try the next address the name resolved to, like any client.
                    self.next_addr += 1;
                    return;
                }
                let d = self.lap(now);
                add(&mut self.phases.connect, d);
                let addr = addr.map(|a| a.to_string()).unwrap_or_default();
                self.address = self.addrs.get(self.next_addr).copied();
                let (kind, what) = classify_io(&e);
                self.fail(kind, format!("connect to {addr}: {what}"));
            }
        }
    }

    /// Some bytes of the last [`Step::Write`] were written.
    pub fn wrote(&mut self, result: io::Result<usize>, now: Instant) {
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
            // A train's rtt phase is its mean round trip (see `outcome`).
            State::Train | State::Done => return,
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
        if self.state != State::Done {
            self.fail(ErrorKind::Io, "probe ended before it was done");
        }
        self.outcome(now)
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

/// Move every pending TLS record into `out`.
fn flush_tls(conn: &mut ClientConnection, out: &mut Vec<u8>) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(out)?;
    }
    Ok(())
}

impl HttpExchange {
    /// The request bytes for the current URI: the target's method, headers
    /// and body, with `Connection: close`, since a prober measures what a
    /// new client sees (one connection per probe). No `Accept-Encoding`
    /// unless the target's `header=` asks: the body checks read what the
    /// server sends, and pulse decompresses nothing.
    fn build_request(&mut self) -> Result<Vec<u8>, String> {
        let parts = self.request.as_ref().map_err(Clone::clone)?;
        let body = &parts.body[..];
        let mut req = http::Request::builder()
            .method(parts.method.clone())
            .uri(self.uri.clone())
            .header("user-agent", USER_AGENT)
            .header("accept", "*/*")
            .header("connection", "close");
        if let Some(headers) = req.headers_mut() {
            // A target's `Accept` or `User-Agent` replaces pulse's rather
            // than adding a second; a name given twice is sent twice.
            for (name, _) in &parts.headers {
                headers.remove(name);
            }
            for (name, value) in &parts.headers {
                headers.append(name.clone(), value.clone());
            }
            if let Some(v) = &parts.authorization {
                headers.insert(http::header::AUTHORIZATION, v.clone());
            }
            if parts.sends_body() {
                headers.insert(
                    http::header::CONTENT_LENGTH,
                    http::HeaderValue::from(body.len()),
                );
            }
        }
        let req = req.body(()).map_err(|e| e.to_string())?;
        let call = Call::new(req).map_err(|e| e.to_string())?;
        let mut send = call.proceed();
        let mut buf = vec![0u8; 16 * 1024];
        let mut out = Vec::new();
        while !send.can_proceed() {
            let n = send.write(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("request head does not fit in 16 KiB".into());
            }
            out.extend_from_slice(&buf[..n]);
        }
        let mut next = send.proceed().map_err(|e| e.to_string())?;
        if let Some(SendRequestResult::SendBody(mut send_body)) = next {
            let mut input = body;
            loop {
                let (used, n) = send_body
                    .write(input, &mut buf)
                    .map_err(|e| e.to_string())?;
                out.extend_from_slice(&buf[..n]);
                input = &input[used..];
                if input.is_empty() && send_body.can_proceed() {
                    break;
                }
                if used == 0 && n == 0 {
                    return Err("the request body could not be written".into());
                }
            }
            next = send_body.proceed().map(SendRequestResult::RecvResponse);
        }
        match next {
            Some(SendRequestResult::RecvResponse(c)) => {
                self.call = CallState::RecvHead(c);
                self.head.clear();
                self.first_byte = false;
                self.status = None;
                self.version = None;
                self.body.clear();
                self.body_pending.clear();
                self.body_bytes = 0;
                self.truncated = false;
                // A redirect from https to http must not report TLS.
                self.tls_version = None;
                self.cert = None;
                Ok(out)
            }
            Some(SendRequestResult::Await100(_)) => {
                Err("the request waits for 100-continue, which pulse does not send".into())
            }
            Some(SendRequestResult::SendBody(_)) | None => {
                Err("the request could not be completed".into())
            }
        }
    }

    /// Feed wire bytes (empty = EOF). TLS is unwrapped here; `out` receives
    /// any TLS records to send (handshake messages, alerts).
    fn input(
        &mut self,
        data: &[u8],
        now: Instant,
        phase_start: &mut Instant,
        phases: &mut PhaseTimes,
        out: &mut Vec<u8>,
    ) -> Fed {
        let mut plain = Vec::new();
        let mut eof = data.is_empty();
        if let Some(conn) = self.tls.as_mut() {
            let mut rd = data;
            loop {
                if let Err(e) = conn.read_tls(&mut rd) {
                    return Fed::Failed(ProbeError::new(ErrorKind::Tls, format!("TLS: {e}")));
                }
                let (processed, seen) = crate::tls::watch(|| conn.process_new_packets());
                if let Some(seen) = seen {
                    self.cert = CertDetails::from_seen(&seen);
                }
                if let Err(e) = processed {
                    // Tell the peer why (an alert), as a polite client does.
                    let _ = flush_tls(conn, out);
                    let what = if self.handshake_done {
                        "TLS error"
                    } else {
                        "TLS handshake failed"
                    };
                    return Fed::Failed(ProbeError::new(ErrorKind::Tls, format!("{what}: {e}")));
                }
                if !self.handshake_done && !conn.is_handshaking() {
                    self.handshake_done = true;
                    let d = now.saturating_duration_since(*phase_start);
                    *phase_start = now;
                    add(&mut phases.tls, d);
                    self.tls_version = conn.protocol_version().map(|v| match v {
                        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
                        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
                        other => format!("{other:?}"),
                    });
                }
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match conn.reader().read(&mut buf) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => plain.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // Peer closed without close_notify: most servers do,
                        // and the HTTP framing tells whether we got it all.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            eof = true;
                            break;
                        }
                        Err(e) => {
                            return Fed::Failed(ProbeError::new(
                                ErrorKind::Tls,
                                format!("TLS: {e}"),
                            ));
                        }
                    }
                }
                if rd.is_empty() || eof {
                    break;
                }
            }
            if let Err(e) = flush_tls(conn, out) {
                return Fed::Failed(ProbeError::new(ErrorKind::Tls, format!("TLS: {e}")));
            }
            if eof && !self.handshake_done {
                return Fed::Failed(ProbeError::new(
                    ErrorKind::Tls,
                    "connection closed during the TLS handshake",
                ));
            }
        } else {
            plain.extend_from_slice(data);
        }
        if !plain.is_empty() {
            if !self.first_byte {
                self.first_byte = true;
                let d = now.saturating_duration_since(*phase_start);
                *phase_start = now;
                add(&mut phases.processing, d);
            }
            match self.http_input(&plain) {
                Fed::More => {}
                other => return other,
            }
        }
        if eof { self.http_eof() } else { Fed::More }
    }

    fn http_input(&mut self, data: &[u8]) -> Fed {
        match std::mem::replace(&mut self.call, CallState::Idle) {
            CallState::Idle => Fed::More,
            CallState::RecvHead(mut call) => {
                self.head.extend_from_slice(data);
                loop {
                    match call.try_response(&self.head, false) {
                        Err(e) => {
                            return Fed::Failed(ProbeError::new(
                                ErrorKind::Protocol,
                                format!("not an HTTP response: {e}"),
                            ));
                        }
                        // An informational (1xx) response was consumed; parse on.
                        Ok((used, None)) if used > 0 => {
                            self.head.drain(..used);
                        }
                        Ok((_, None)) => {
                            if self.head.len() > MAX_RESPONSE_HEAD {
                                return Fed::Failed(ProbeError::new(
                                    ErrorKind::Protocol,
                                    format!(
                                        "response headers exceed {} KiB",
                                        MAX_RESPONSE_HEAD / 1024
                                    ),
                                ));
                            }
                            self.call = CallState::RecvHead(call);
                            return Fed::More;
                        }
                        Ok((used, Some(resp))) => {
                            let rest = self.head.split_off(used);
                            let status = resp.status().as_u16();
                            self.status = Some(status);
                            self.version = Some(format!("{:?}", resp.version()));
                            if is_redirect(status) && self.redirects < self.checks.max_redirects {
                                let location = resp
                                    .headers()
                                    .get(http::header::LOCATION)
                                    // UTF-8, not `to_str`'s visible ASCII:
                                    // servers do send raw non-ASCII paths,
                                    // which join_location then encodes.
                                    .and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
                                if let Some(loc) = location {
                                    return match join_location(&self.uri, loc) {
                                        Some(uri)
                                            if !self.redirect_policy.allows(&self.origin, &uri) =>
                                        {
                                            Fed::Failed(ProbeError::new(
                                                ErrorKind::Protocol,
                                                format!(
                                                    "redirect to {} refused: {REFUSED_HOP}",
                                                    redact_password(&uri.to_string())
                                                ),
                                            ))
                                        }
                                        Some(uri) => {
                                            if let Ok(parts) = self.request.as_mut() {
                                                parts.follow(status);
                                            }
                                            Fed::Redirect(uri)
                                        }
                                        None => Fed::Failed(ProbeError::new(
                                            ErrorKind::Protocol,
                                            format!(
                                                "redirect to an unusable location {:?}",
                                                redact_password(loc)
                                            ),
                                        )),
                                    };
                                }
                            }
                            return match call.proceed() {
                                Some(RecvResponseResult::RecvBody(body)) => {
                                    self.call = CallState::RecvBody(body);
                                    if rest.is_empty() {
                                        Fed::More
                                    } else {
                                        self.http_input(&rest)
                                    }
                                }
                                Some(RecvResponseResult::Cleanup(_))
                                | Some(RecvResponseResult::Redirect(_)) => Fed::Finished,
                                None => Fed::Failed(ProbeError::new(
                                    ErrorKind::Protocol,
                                    "response head could not be completed",
                                )),
                            };
                        }
                    }
                }
            }
            CallState::RecvBody(mut call) => {
                let mut pending = std::mem::take(&mut self.body_pending);
                pending.extend_from_slice(data);
                let mut input = &pending[..];
                let mut buf = [0u8; 16 * 1024];
                while !input.is_empty() {
                    let (used, n) = match call.read(input, &mut buf) {
                        Ok(v) => v,
                        Err(e) => {
                            return Fed::Failed(ProbeError::new(
                                ErrorKind::Protocol,
                                format!("bad response body: {e}"),
                            ));
                        }
                    };
                    input = &input[used..];
                    if self.take_body(&buf[..n]) {
                        return Fed::Finished;
                    }
                    if used == 0 && n == 0 {
                        // Either the body ended (bytes after it are
                        // ignored) or the decoder needs more bytes to use
                        // these: they are kept for the next read.
                        break;
                    }
                }
                let close_delimited = matches!(call.body_mode(), BodyMode::CloseDelimited);
                if call.can_proceed() && !close_delimited {
                    return match call.proceed() {
                        Some(RecvBodyResult::Cleanup(_)) | Some(RecvBodyResult::Redirect(_)) => {
                            Fed::Finished
                        }
                        None => Fed::Finished,
                    };
                }
                self.body_pending = input.to_vec();
                self.call = CallState::RecvBody(call);
                Fed::More
            }
        }
    }

    /// Count body bytes, keeping them if a check needs them. Returns true when
    /// the cap is reached and reading must stop.
    fn take_body(&mut self, bytes: &[u8]) -> bool {
        let room = (self.body_cap as u64).saturating_sub(self.body_bytes);
        let take = (bytes.len() as u64).min(room) as usize;
        self.body_bytes += take as u64;
        if self.keep_body {
            self.body.extend_from_slice(&bytes[..take]);
        }
        if bytes.len() > take {
            self.truncated = true;
            return true;
        }
        false
    }

    fn http_eof(&mut self) -> Fed {
        match std::mem::replace(&mut self.call, CallState::Idle) {
            CallState::RecvHead(_) if self.head.is_empty() && !self.first_byte => Fed::Failed(
                ProbeError::new(ErrorKind::Reset, "connection closed before any response"),
            ),
            CallState::RecvHead(_) => Fed::Failed(ProbeError::new(
                ErrorKind::Protocol,
                format!(
                    "connection closed inside the response head ({} bytes, no complete header)",
                    self.head.len()
                ),
            )),
            CallState::RecvBody(call) => match call.body_mode() {
                // A body that ends at connection close ends here (ureq-proto
                // leaves that to us).
                BodyMode::CloseDelimited => Fed::Finished,
                _ if call.can_proceed() => Fed::Finished,
                _ => Fed::Failed(ProbeError::new(
                    ErrorKind::Reset,
                    format!(
                        "connection closed after {} body bytes, before the end of the body",
                        self.body_bytes
                    ),
                )),
            },
            CallState::Idle => Fed::Finished,
        }
    }

    /// Certificate, status and content checks, once the exchange is complete.
    fn check(&self) -> Result<(), ProbeError> {
        if let Some(cert) = &self.cert {
            self.checks.check_cert(cert)?;
        }
        self.checks.check(
            self.status.unwrap_or(0),
            self.redirects,
            &self.body,
            self.body_bytes,
            self.truncated,
        )
    }
}

/// What an HTTP target checks once its exchange is complete: the expected
/// statuses, the content checks, and the redirect limit (for the message).
/// The session runs it, and so does every native stack
/// ([`crate::native::http_outcome`]), so a check fails with the same kind
/// and the same words whichever client made the exchange.
#[derive(Debug, Clone)]
pub struct Checks {
    expect: StatusSet,
    contains: Option<String>,
    matches: Option<regex::bytes::Regex>,
    /// Redirects the target follows (`redirects=`).
    pub max_redirects: u32,
    /// `cert_expiry_warn=`: how close a certificate's expiry fails the probe.
    pub cert_expiry_warn: Option<Duration>,
}

impl Checks {
    /// The checks `h` asks for.
    pub fn of(h: &HttpTarget) -> Checks {
        Checks {
            expect: h.expect.clone(),
            contains: h.contains.clone(),
            matches: h.matches.clone(),
            max_redirects: h.max_redirects,
            cert_expiry_warn: h.cert_expiry_warn,
        }
    }

    /// `cert_expiry_warn=`: a certificate the server sent that expires
    /// within the window fails the probe as `tls`, naming the certificate
    /// and when it expires. The handshake itself failed already for one
    /// that has expired (unless `insecure`), and says so.
    pub fn check_cert(&self, cert: &CertDetails) -> Result<(), ProbeError> {
        let Some(warn) = self.cert_expiry_warn else {
            return Ok(());
        };
        let left = cert.expires_in();
        if left >= i64::try_from(warn.as_secs()).unwrap_or(i64::MAX) {
            return Ok(());
        }
        let when = if left < 0 {
            format!("expired {} ago", fmt_span(left))
        } else {
            format!("expires in {}", fmt_span(left))
        };
        let whose = if cert.earliest_expiry_unix == cert.not_after_unix {
            format!("certificate {}", cert.subject)
        } else {
            format!("a certificate in the chain of {}", cert.subject)
        };
        Err(ProbeError::new(
            ErrorKind::Tls,
            format!(
                "{whose} {when}, within cert_expiry_warn={}",
                fmt_window(warn)
            ),
        ))
    }

    /// Whether the body must be kept for a content check.
    pub fn keeps_body(&self) -> bool {
        self.contains.is_some() || self.matches.is_some()
    }

    /// Check the exchange's end: the last `status` after `redirects`
    /// redirects, the `body` bytes kept (`body_bytes` read, `truncated` when
    /// reading stopped at the cap).
    pub fn check(
        &self,
        status: u16,
        redirects: u32,
        body: &[u8],
        body_bytes: u64,
        truncated: bool,
    ) -> Result<(), ProbeError> {
        if !self.expect.contains(status) {
            let msg = if is_redirect(status) && redirects >= self.max_redirects {
                format!(
                    "status {status} after {redirects} redirects (limit {}), expected {}",
                    self.max_redirects, self.expect
                )
            } else {
                format!("status {status}, expected {}", self.expect)
            };
            return Err(ProbeError::new(ErrorKind::Status, msg));
        }
        let scope = if truncated {
            format!(" (in the first {body_bytes} bytes)")
        } else {
            String::new()
        };
        if let Some(needle) = &self.contains
            && !contains(body, needle.as_bytes())
        {
            return Err(ProbeError::new(
                ErrorKind::Body,
                format!("body does not contain {needle:?}{scope}"),
            ));
        }
        if let Some(re) = &self.matches
            && !re.is_match(body)
        {
            return Err(ProbeError::new(
                ErrorKind::Body,
                format!("body does not match /{}/{scope}", re.as_str()),
            ));
        }
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `status` is a redirect a client follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Resolve a `Location` header against the request URI (RFC 3986, enough of
/// it for redirects: absolute, scheme-relative, absolute-path, relative-path).
///
/// A location that starts with a scheme (RFC 3986 §3.1) is absolute: it is
/// followed only when that scheme is http or https and it parses with an
/// authority. Anything else (`file:`, `mailto:`, `javascript:`, a broken
/// `http://[::1`) is `None`, never retried as a path on the same server.
pub fn join_location(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.trim();
    if let Some(scheme) = scheme_of(location) {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        return encode_url(location)
            .parse::<Uri>()
            .ok()
            .filter(|u| u.authority().is_some());
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let joined = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let (path, query) = location
            .split_once('?')
            .map_or((location, None), |(p, q)| (p, Some(q)));
        let merged = if path.starts_with('/') {
            path.to_string()
        } else {
            let base_path = base.path();
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            let dir = if dir.is_empty() { "/" } else { dir };
            format!("{dir}{path}")
        };
        let path = remove_dot_segments(&merged);
        match query {
            Some(q) => format!("{scheme}://{authority}{path}?{q}"),
            None => format!("{scheme}://{authority}{path}"),
        }
    };
    // The location's own `"`, space or non-ASCII text is sent encoded.
    encode_url(&joined).parse().ok()
}

/// The scheme a URI reference starts with, if any: RFC 3986 §3.1's
/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` followed by `:`. A reference
/// whose first segment has a colon (`foo:bar`) is a scheme by this rule too,
/// as RFC 3986 §4.2 says; `/a:b` and `./a:b` are not, since `/` and `.`
/// cannot start a scheme.
fn scheme_of(reference: &str) -> Option<&str> {
    let (scheme, _) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// RFC 3986 §5.2.4 for an absolute path: drop `.` segments, and let `..`
/// remove the segment before it (never above the root).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // `/a/..` and `/a/.` name a directory: keep the final slash.
                if i == last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

/// The host of a URI without IPv6 brackets (what sockets and TLS need).
pub fn host_of(uri: &Uri) -> String {
    let h = uri.host().unwrap_or_default();
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
        .to_string()
}

/// The port of a URI, defaulting by scheme.
pub fn port_of(uri: &Uri) -> u16 {
    uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    })
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

#[cfg(test)]
mod tests;
