//! Results: one type for every probe kind, and the scan summary.
//!
//! A probe's failure is data: it ends as a [`ProbeResult`] whose `error` says
//! what went wrong ([`ErrorKind`]), never as an `Err` up the stack. The same
//! type is what every encoder writes and what every model returns, so the
//! conformance suite can compare models field by field.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The protocol a target is probed with; the `kind` label in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// HTTP or HTTPS GET (the URL's scheme says which).
    Http,
    /// A TCP connect, nothing sent.
    Tcp,
    /// An ICMP echo request and its reply.
    Icmp,
}

impl Kind {
    /// The lowercase name used in outputs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Tcp => "tcp",
            Kind::Icmp => "icmp",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed. The list is closed and shared by every model (README,
/// "Output schema", says what each kind means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The probe's deadline passed before it finished.
    Timeout,
    /// The connection was refused (nothing listens there).
    Refused,
    /// The peer reset the connection, or closed it before a full response.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol, alert).
    Tls,
    /// The HTTP status was not one the target expects.
    Status,
    /// The body did not contain / match what the target expects.
    Body,
    /// The peer spoke something that is not the expected protocol.
    Protocol,
    /// No permission for the socket the probe needs (ICMP).
    Permission,
    /// The probe panicked; the panic message is in `message`.
    Panicked,
    /// The scan was interrupted before or while this probe ran.
    Cancelled,
    /// Any other socket error.
    Io,
}

impl ErrorKind {
    /// Every kind, in a stable order (for summaries and metrics).
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Timeout,
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Dns,
        ErrorKind::Tls,
        ErrorKind::Status,
        ErrorKind::Body,
        ErrorKind::Protocol,
        ErrorKind::Permission,
        ErrorKind::Panicked,
        ErrorKind::Cancelled,
        ErrorKind::Io,
    ];

    /// The lowercase name used in outputs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Status => "status",
            ErrorKind::Body => "body",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Permission => "permission",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probe failure: the kind (for machines) and a message (for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeError {
    /// What class of failure this is.
    pub kind: ErrorKind,
    /// What happened, in words, e.g. `connect to 127.0.0.1:81: connection refused`.
    pub message: String,
}

impl ProbeError {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProbeError {
            kind,
            message: message.into(),
        }
    }
}

/// Time spent in each phase of a probe, in milliseconds. A phase the probe
/// never reached is absent. Names follow blackbox_exporter's `phase` label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Name resolution (0 for IP literals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<f64>,
    /// TCP connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<f64>,
    /// TLS handshake (https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<f64>,
    /// From request written to the first response byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<f64>,
    /// From first response byte to the end of the (capped) body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<f64>,
    /// ICMP echo round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
}

impl Phases {
    /// The phases that are present, as `(name, milliseconds)`, in probe order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        [
            ("resolve", self.resolve),
            ("connect", self.connect),
            ("tls", self.tls),
            ("processing", self.processing),
            ("transfer", self.transfer),
            ("rtt", self.rtt),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
    }
}

/// What an HTTP(S) probe saw, beyond success.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpDetails {
    /// Final status code (after redirects); absent if no response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// HTTP version of the final response, e.g. `HTTP/1.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Redirects followed.
    pub redirects: u32,
    /// Body bytes read (never more than the cap).
    pub body_bytes: u64,
    /// True when the body was longer than the cap and reading stopped there.
    pub body_truncated: bool,
    /// TLS version negotiated (https only), e.g. `TLSv1.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// The server's certificates as the last TLS handshake saw them:
    /// subject, issuer, serial and expiry dates (https only; present also
    /// when verification failed, so an expired certificate shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<crate::certs::CertDetails>,
    /// The URL of the last request (differs from the target after redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_url: Option<String>,
}

/// What an ICMP probe saw, beyond success.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IcmpDetails {
    /// Echo sequence number used.
    pub sequence: u16,
    /// IP TTL of the reply, when the socket shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_ttl: Option<u8>,
    /// The echo train of a multi-packet probe (`count=` above 1); absent
    /// for a single echo, whose result is as it always was. There,
    /// `sequence` is the first echo's and `reply_ttl` the first reply's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<IcmpPackets>,
}

/// What a multi-packet ICMP probe counted (smokeping's view of a host).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IcmpPackets {
    /// Echo requests sent.
    pub sent: u32,
    /// Distinct echo requests answered (a duplicate counts once).
    pub received: u32,
    /// Replies beyond the first to the same request (a duplicating path).
    pub duplicates: u32,
    /// `1 - received / sent`; 1 when nothing was sent.
    pub loss_ratio: f64,
    /// Fastest round trip, ms (absent when nothing was answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    /// Mean round trip, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    /// Slowest round trip, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
    /// Population standard deviation of the round trips, ms (`ping`'s
    /// mdev is the same figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_stddev_ms: Option<f64>,
    /// Every request's round trip in send order, `null` for one never
    /// answered: which packets were lost, as `fping -C` shows.
    pub rtts_ms: Vec<Option<f64>>,
}

impl IcmpPackets {
    /// The counts and statistics of a train: `rtts` holds each request's
    /// round trip in send order (`None`: unanswered).
    pub fn of(rtts: &[Option<Duration>], duplicates: u32) -> IcmpPackets {
        let got: Vec<f64> = rtts.iter().flatten().map(|d| millis(*d)).collect();
        // At most MAX_ICMP_COUNT (1000) requests: the counts fit a u32 and
        // an f64 exactly.
        let sent = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
        let received = u32::try_from(got.len()).unwrap_or(u32::MAX);
        let loss_ratio = if sent == 0 {
            1.0
        } else {
            1.0 - f64::from(received) / f64::from(sent)
        };
        let n = got.len() as f64;
        let avg = (!got.is_empty()).then(|| got.iter().sum::<f64>() / n);
        let stddev = avg.map(|a| {
            let var = got.iter().map(|x| (x - a) * (x - a)).sum::<f64>() / n;
            (var.sqrt() * 1000.0).round() / 1000.0
        });
        IcmpPackets {
            sent,
            received,
            duplicates,
            loss_ratio,
            rtt_min_ms: got.iter().copied().reduce(f64::min),
            rtt_avg_ms: avg.map(|a| (a * 1000.0).round() / 1000.0),
            rtt_max_ms: got.iter().copied().reduce(f64::max),
            rtt_stddev_ms: stddev,
            rtts_ms: rtts.iter().map(|d| d.map(millis)).collect(),
        }
    }
}

/// One address of an `all_addresses` probe: each address a name resolved
/// to is probed in turn, and each has its own verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressResult {
    /// The address probed (`ip:port`).
    pub address: String,
    /// Whether this address passed every check.
    pub success: bool,
    /// How long this address's probe took, in milliseconds.
    pub duration_ms: f64,
    /// The final HTTP status from this address, for http targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why this address failed, or null.
    pub error: Option<ProbeError>,
}

/// What the session part of a probe produces: everything except scheduling
/// facts (queue wait, index), which the model adds. Built by the core's
/// sessions; models never construct one except for `cancelled`/`panicked`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the probe succeeded.
    pub success: bool,
    /// Probe time, from probe start to result (not counting queue wait).
    pub duration: Duration,
    /// Per-phase times.
    pub phases: Phases,
    /// The address actually probed, if resolution got that far.
    pub address: Option<String>,
    /// HTTP details (http targets only).
    pub http: Option<HttpDetails>,
    /// ICMP details (icmp targets only).
    pub icmp: Option<IcmpDetails>,
    /// The failure, when `success` is false.
    pub error: Option<ProbeError>,
    /// Each address's verdict, for an `all_addresses` target (else empty).
    pub addresses: Vec<AddressResult>,
}

impl Outcome {
    /// The outcome of a probe that panicked after `duration`: the panic is
    /// that target's result (docs/guide.md, "3. Fault isolation"), worded
    /// the same in every model.
    pub fn panicked(message: &str, duration: Duration) -> Self {
        Outcome::failed(
            ErrorKind::Panicked,
            format!("probe panicked: {message}"),
            duration,
        )
    }

    /// A failed outcome with nothing but an error (e.g. cancelled before start).
    pub fn failed(kind: ErrorKind, message: impl Into<String>, duration: Duration) -> Self {
        Outcome {
            success: false,
            duration,
            phases: Phases::default(),
            address: None,
            http: None,
            icmp: None,
            error: Some(ProbeError::new(kind, message)),
            addresses: Vec::new(),
        }
    }
}

/// One target's result, as written by every encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The target as written in the targets file (first field of its line).
    pub target: String,
    /// Probe kind.
    pub kind: Kind,
    /// Line of the targets file the target came from (1-based).
    pub line: usize,
    /// Whether the probe succeeded.
    pub success: bool,
    /// Probe time in milliseconds, excluding queue wait.
    pub duration_ms: f64,
    /// Time from scan start until this probe started, in milliseconds.
    pub queue_wait_ms: f64,
    /// Per-phase times in milliseconds.
    pub phases: Phases,
    /// The address actually probed (`ip:port` or `ip`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// HTTP details (http targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDetails>,
    /// ICMP details (icmp targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpDetails>,
    /// The failure, or null on success.
    pub error: Option<ProbeError>,
    /// Each address's verdict, for an `all_addresses` target; the result
    /// is up only when every address is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<AddressResult>,
}

/// Milliseconds as an f64 rounded to microseconds, for readable outputs.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Counts over a finished scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Targets in the plan (always equals the number of results).
    pub targets: usize,
    /// Probes that succeeded.
    pub up: usize,
    /// Probes that failed for any reason other than cancellation.
    pub down: usize,
    /// Probes cancelled by shutdown (never started or cut at the grace period).
    pub cancelled: usize,
    /// Failures by error kind (cancelled included), only kinds that occurred.
    pub errors: BTreeMap<ErrorKind, usize>,
    /// True when the scan was interrupted (shutdown triggered).
    pub interrupted: bool,
}

impl Summary {
    /// Count one result into the summary.
    pub fn add(&mut self, r: &ProbeResult) {
        self.targets += 1;
        match &r.error {
            None if r.success => self.up += 1,
            Some(e) if e.kind == ErrorKind::Cancelled => {
                self.cancelled += 1;
                *self.errors.entry(e.kind).or_default() += 1;
            }
            Some(e) => {
                self.down += 1;
                *self.errors.entry(e.kind).or_default() += 1;
            }
            None => self.down += 1,
        }
    }
}

/// Facts about the run, written as the `pulse` header of the json document
/// and as `pulse_*` metrics: the comparison depends on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanInfo {
    /// pulse version.
    pub version: String,
    /// Model name (`tokio`, ...).
    pub runtime: String,
    /// What did each probe's exchange: `core` (the core's session) or
    /// `native` (the model's ecosystem client, see `native`).
    #[serde(default = "core_stack")]
    pub stack: String,
    /// Maximum probes in flight.
    pub workers: usize,
    /// OS threads the model's runtime uses.
    pub runtime_threads: usize,
    /// Scan start, RFC 3339 UTC.
    pub started_at: String,
    /// Wall time of the whole scan in milliseconds.
    pub duration_ms: f64,
}

fn core_stack() -> String {
    "core".into()
}

/// The whole json/yaml document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Run facts.
    pub pulse: ScanInfo,
    /// Counts.
    pub summary: Summary,
    /// One result per target, in input order.
    pub results: Vec<ProbeResult>,
}
