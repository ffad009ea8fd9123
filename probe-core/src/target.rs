//! The targets file format: one target per line, parsed into [`Target`]s,
//! with `FILE:LINE:COL` errors.
//!
//! # Format
//!
//! ```text
//! # a comment; blank lines are skipped
//! https://example.com/health expect=200-299,301 contains="ok" timeout=2s
//! http://[::1]:8080/ matches="^up$" redirects=0
//! https://internal.example/ insecure ca=certs/ca.pem
//! tcp://db.internal:5432        # a comment may follow a target
//! db.internal:5432              # host:port is tcp too
//! icmp://10.0.0.1
//! 10.0.0.2                      # a bare host is icmp
//! ```
//!
//! The first field of a line is the target; the fields after it are options,
//! `key=value` or the bare flag `insecure`. A `#` starts a comment only at the
//! start of a field, so `https://host/#anchor` and `contains="a # b"` keep
//! their `#`.
//!
//! A quoted value is read like a POSIX shell's double quotes: `\"` and `\\`
//! are escapes, and a backslash before any other character is kept as it is,
//! so a quoted regex such as `matches="\d+ ok"` means what it says.
//!
//! # Why every error is collected
//!
//! Fixing a 500-line file one typo per run is miserable, so
//! [`parse_targets`] checks every line and returns every bad one at once.
//! Within a line only the first problem is reported: after, say, an
//! unterminated quote the rest of the line cannot be read reliably, and a
//! second message about it would be noise.
//!
//! Like the rest of the core the parser does no IO: it takes bytes, resolves
//! no names, and reads no files (`ca=` paths come back as written).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use regex::bytes::Regex;

use crate::request::{self, Auth, MAX_HEADERS, MAX_REQUEST_BODY, Payload};
use crate::result::Kind;

/// One parsed target line.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target as written (first whitespace-separated field of its line), used as the `target` label.
    pub text: String,
    /// 1-based line number in its source.
    pub line: usize,
    /// The protocol the target is probed with.
    pub kind: Kind,
    /// Host without IPv6 brackets: a DNS name, or an IPv4/IPv6 literal.
    pub host: String,
    /// Port (tcp: required; http: from URL or 80/443; icmp: 0).
    pub port: u16,
    /// Per-target timeout from `timeout=`, overrides the scan default.
    pub timeout: Option<Duration>,
    /// Which address family to probe (`ip=4|6|any`): only that family's
    /// addresses of a name, where `--ip` only prefers one.
    pub ip: IpFamily,
    /// Probe every address the name resolves to, each its own verdict
    /// (`all_addresses`, tcp and http(s)): up only when all are.
    pub all_addresses: bool,
    /// HTTP(S) settings; Some exactly when kind == Kind::Http.
    pub http: Option<HttpTarget>,
    /// ICMP echo train settings (`count=`, `interval=`); empty unless the
    /// line gives them (icmp targets only).
    pub icmp: IcmpOptions,
}

/// An address family a target may be limited to, or a scan may prefer.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    /// Whatever the name resolves to, in the resolver's order.
    #[default]
    Any,
    /// IPv4 (A records).
    #[serde(rename = "4")]
    V4,
    /// IPv6 (AAAA records).
    #[serde(rename = "6")]
    V6,
}

impl IpFamily {
    /// Whether `ip` is of this family (every address is of `Any`).
    pub fn admits(self, ip: std::net::IpAddr) -> bool {
        match self {
            IpFamily::Any => true,
            IpFamily::V4 => ip.is_ipv4(),
            IpFamily::V6 => ip.is_ipv6(),
        }
    }

    /// `IPv4`, `IPv6` or `any`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            IpFamily::Any => "any",
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }
}

impl std::str::FromStr for IpFamily {
    type Err = String;

    /// `4`, `6` or `any` (also `ip4`/`ipv4` and the like, as people write it).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "4" | "ip4" | "ipv4" => Ok(IpFamily::V4),
            "6" | "ip6" | "ipv6" => Ok(IpFamily::V6),
            "any" => Ok(IpFamily::Any),
            _ => Err(format!("invalid address family `{s}` (4, 6 or any)")),
        }
    }
}

/// `count=` and `interval=` as a line gives them. What is not given comes
/// from the scan (`--icmp-count`, [`DEFAULT_ICMP_INTERVAL`]), resolved by
/// [`crate::plan::Plan::new`], which also checks that the train fits the
/// deadline when `timeout=` did not say it here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IcmpOptions {
    /// Echo requests per probe (`count=N`, 1..=[`MAX_ICMP_COUNT`]).
    pub count: Option<u16>,
    /// Time between two echo requests' sends (`interval=D`, at least
    /// [`MIN_ICMP_INTERVAL`]).
    pub interval: Option<Duration>,
    /// Column of the first of `count=` / `interval=` on the line, for an
    /// error found once the scan's timeout is known (0 when neither).
    pub column: usize,
}

/// The most echo requests one probe may send. Every echo of a probe keeps
/// one of the scan's 65,536 sequence numbers for the whole probe (that is
/// how duplicates are told apart), so 1000 still leaves room for 65 such
/// probes in flight at once; and no loss figure needs more than 1000
/// samples (0.1 % resolution): past that a longer train only delays the
/// result. It is also far inside `u16`, so `count=100000` is an error,
/// not a wrap.
pub const MAX_ICMP_COUNT: u16 = 1000;

/// The shortest `interval=`. Below a millisecond a train is a flood, and
/// the blocking models' timers have millisecond resolution anyway (std
/// rejects a zero socket timeout, so they clamp what is left to 1 ms).
pub const MIN_ICMP_INTERVAL: Duration = Duration::from_millis(1);

/// The spacing of a train's echo requests when `interval=` is not given:
/// one second, as `ping` and `fping -C` use. Routers commonly rate-limit the
/// ICMP they answer to about one per second per source; a faster default
/// would measure the limiter, not the path. Tests and fast links set
/// `interval=` themselves.
pub const DEFAULT_ICMP_INTERVAL: Duration = Duration::from_secs(1);

/// What an HTTP(S) target sends and what it accepts as "up".
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// The URL (scheme http or https, with authority and path-and-query; path "/" when none given).
    ///
    /// A `#fragment` is dropped: a client never sends it to the server.
    pub uri: http::Uri,
    /// True for https.
    pub tls: bool,
    /// Accepted status codes (default 200-299).
    pub expect: StatusSet,
    /// Body must contain these bytes (`contains="..."`).
    pub contains: Option<String>,
    /// Body must match this regex (`matches=...`).
    pub matches: Option<Regex>,
    /// Skip certificate verification (`insecure` flag, or `insecure=true|false`).
    pub insecure: bool,
    /// Extra CA bundle (PEM) to trust (`ca=FILE`), path as written; relative paths are resolved by the caller.
    pub ca: Option<PathBuf>,
    /// Redirects to follow (`redirects=N`, default 10, 0 = do not follow;
    /// `no_follow` is `redirects=0`).
    pub max_redirects: u32,
    /// The request method (`method=`): GET, or POST when a body is given
    /// and no method is.
    pub method: http::Method,
    /// Extra request headers (`header="Name: value"`, repeatable), in the
    /// order written. `Host` replaces the URL's host in the request (the
    /// TLS server name stays the URL's).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The request body (`body="..."` or `body_file=FILE`), at most
    /// [`MAX_REQUEST_BODY`] bytes.
    pub body: Option<Payload>,
    /// Credentials for the `Authorization` header (`auth_file=FILE`).
    pub auth: Option<Auth>,
    /// Fail the probe when a certificate the server sends expires within
    /// this long (`cert_expiry_warn=14d`).
    pub cert_expiry_warn: Option<Duration>,
}

/// How many redirects an HTTP target follows unless `redirects=` says
/// otherwise. Ten is reqwest's default policy too: real sites need two or
/// three hops (http → https → canonical host), and a chain longer than ten is
/// almost always a loop.
const DEFAULT_REDIRECTS: u32 = 10;

/// A set of accepted HTTP status codes, as inclusive ranges in the order
/// written (`expect=200-299,301` is `[(200, 299), (301, 301)]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    /// True when `code` falls in one of the ranges.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    /// The default: any 2xx.
    pub fn default_success() -> Self {
        StatusSet(vec![(200, 299)])
    }
}

impl fmt::Display for StatusSet {
    /// The same syntax `expect=` takes, so a set round-trips: `200-299,301`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// One problem in a targets file, pointing at where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    /// The file name as the user gave it (`<stdin>`, `<argument>` for the CLI).
    pub file: String,
    /// 1-based line; 0 when the error is about the whole file.
    pub line: usize,
    /// 1-based column in characters (not bytes), as an editor counts.
    pub column: usize,
    /// What is wrong, and where it helps, how to write it instead.
    pub message: String,
}

impl fmt::Display for TargetError {
    /// Control characters in the file name or the message (which may quote
    /// the line) are written as escapes, so that a targets file cannot drive
    /// the terminal the errors are printed on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, message) = (escape_controls(&self.file), escape_controls(&self.message));
        if self.line == 0 {
            write!(f, "{file}: {message}")
        } else {
            write!(f, "{file}:{}:{}: {message}", self.line, self.column)
        }
    }
}

/// `s` with every control character (ESC, NUL, CR, ...; tab included)
/// written as a Rust-style escape (`\u{1b}`, `\0`, `\r`, `\t`), and
/// everything else, non-ASCII included, as it is.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl std::error::Error for TargetError {}

/// Every problem found in a targets file, in line order: the first
/// [`TargetErrors::KEPT`] in full, and a count of all of them.
///
/// Only the first few are kept because a file of 200,000 bad lines (a
/// binary, the wrong file) would otherwise print 200,000 messages and hold
/// them all in memory; the first screenful says what is wrong, and the
/// total says how much.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetErrors {
    /// The first errors, in line order, at most [`TargetErrors::KEPT`].
    pub errors: Vec<TargetError>,
    /// How many errors there were in all (at least `errors.len()`).
    pub total: usize,
}

impl TargetErrors {
    /// Errors kept (and printed) in full; the rest are only counted.
    pub const KEPT: usize = 20;

    /// These errors (all kept, even beyond [`TargetErrors::KEPT`]).
    pub fn from_vec(errors: Vec<TargetError>) -> Self {
        TargetErrors {
            total: errors.len(),
            errors,
        }
    }

    /// Count `e`, and keep it if fewer than [`TargetErrors::KEPT`] are kept.
    pub fn push(&mut self, e: TargetError) {
        self.total += 1;
        if self.errors.len() < Self::KEPT {
            self.errors.push(e);
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl fmt::Display for TargetErrors {
    /// One error per line, no trailing newline, like a compiler's output;
    /// then, if some were only counted, a line saying how many.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        let more = self.total.saturating_sub(self.errors.len());
        if more > 0 {
            write!(
                f,
                "\n... and {more} more error(s) not shown ({} in all)",
                self.total
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for TargetErrors {}

/// The file name errors use for the CLI's `pulse check TARGET`.
const ARGUMENT: &str = "<argument>";

/// The UTF-8 byte order mark some Windows editors put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parse a whole targets file. `file` is the name used in errors (`-` → use `<stdin>`).
/// Returns every target in input order, or ALL the errors (every bad line, not just the first).
pub fn parse_targets(file: &str, input: &[u8]) -> Result<Vec<Target>, TargetErrors> {
    let file = if file == "-" { "<stdin>" } else { file };
    let input = input.strip_prefix(BOM).unwrap_or(input);
    let mut targets = Vec::new();
    let mut errors = TargetErrors::default();
    let error = |line, column, message| TargetError {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match std::str::from_utf8(raw) {
            Ok(line) => line,
            Err(e) => {
                // The prefix up to `valid_up_to` is valid UTF-8 by definition,
                // so the fallback of 0 characters is never taken.
                let before =
                    std::str::from_utf8(&raw[..e.valid_up_to()]).map_or(0, |s| s.chars().count());
                errors.push(error(number, before + 1, "invalid UTF-8".to_owned()));
                continue;
            }
        };
        match parse_line(number, line) {
            Ok(Some(target)) => targets.push(target),
            Ok(None) => {}
            Err(e) => errors.push(error(number, e.column, e.message)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if targets.is_empty() {
        let message = "no targets (the file is empty or holds only comments)".to_owned();
        return Err(TargetErrors::from_vec(vec![error(0, 0, message)]));
    }
    Ok(targets)
}

/// Parse one target given on the command line (`pulse check TARGET`); errors use file `<argument>`, line 1.
///
/// The argument may carry options, as a line of a file would:
/// `pulse check 'https://example.com expect=200'`.
pub fn parse_target(text: &str) -> Result<Target, TargetError> {
    let error = |column, message| TargetError {
        file: ARGUMENT.to_owned(),
        line: 1,
        column,
        message,
    };
    match parse_line(1, text) {
        Ok(Some(target)) => Ok(target),
        Ok(None) => Err(error(1, "no target given".to_owned())),
        Err(e) => Err(error(e.column, e.message)),
    }
}

/// Most addresses one `--resolve` may pin a name to: more than any real
/// name has, few enough that a typo cannot make a probe try thousands.
pub const MAX_PINNED: usize = 16;

/// `--resolve NAME=ADDR[,ADDR...]`: a host name and the addresses probes of
/// it use instead of the resolver's (IPv6 with or without brackets), as
/// curl's `--resolve`. The name is lowercased, as names compare.
pub fn parse_pin(s: &str) -> Result<(String, Vec<std::net::IpAddr>), String> {
    const FORM: &str = "write NAME=ADDR[,ADDR...], like app.example=127.0.0.1,::1";
    let (name, addrs) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` has no `=`; {FORM}"))?;
    let name = name.trim();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("`{name}` is an address, not a name; {FORM}"));
    }
    validate_host(name, false).map_err(|e| format!("{e}; {FORM}"))?;
    let ips = addrs
        .split(',')
        .map(|a| {
            let a = a.trim();
            let bare = a
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(a);
            bare.parse::<std::net::IpAddr>()
                .map_err(|_| format!("`{a}` is not an IP address; {FORM}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ips.len() > MAX_PINNED {
        return Err(format!(
            "{} addresses for {name}, more than the maximum of {MAX_PINNED}",
            ips.len()
        ));
    }
    Ok((name.to_ascii_lowercase(), ips))
}

/// The longest duration pulse accepts from any source: `timeout=`, every
/// duration flag (`--timeout`, `--grace`, `--interval`, `--spread`) and
/// serve's `X-Prometheus-Scrape-Timeout-Seconds`.
///
/// One day is longer than any probe, grace period or scrape interval an
/// operator would set, and far enough below what `Instant + Duration` can
/// hold that no deadline computed from it can overflow (an overflow
/// panics: `timeout=18446744073709551615s` once made every probe
/// `panicked`).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Parse a duration like "2s", "500ms", "1m30s", "1.5s" (humantime plus
/// decimal seconds). Zero is an error, and so is anything longer than
/// [`MAX_DURATION`]. Used by the CLI for every duration flag too.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const EXAMPLES: &str = "examples: 2s, 500ms, 1m30s, 1.5s";
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("empty duration ({EXAMPLES})"));
    }
    // Decimal seconds are parsed here, exactly, rather than left to humantime:
    // only recent humantime 2.x releases read fractions, and `timeout=1.5s`
    // must not depend on which one the lock file picked.
    let duration = match decimal_seconds(s) {
        Some(d) => d?,
        None => humantime::parse_duration(s)
            .map_err(|e| format!("invalid duration `{s}`: {e} ({EXAMPLES})"))?,
    };
    if duration.is_zero() {
        return Err(format!("duration `{s}` must be greater than zero"));
    }
    if duration > MAX_DURATION {
        return Err(format!("duration `{s}` is longer than the maximum, 24h"));
    }
    Ok(duration)
}

/// `12.345s` → `Some(Ok(12.345s))`; anything not of that shape → `None`, so
/// humantime gets to read it.
fn decimal_seconds(s: &str) -> Option<Result<Duration, String>> {
    let (whole, frac) = s.strip_suffix('s')?.split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return None;
    }
    if frac.len() > 9 {
        return Some(Err(format!(
            "invalid duration `{s}`: at most 9 decimal places (1ns)"
        )));
    }
    let Ok(secs) = whole.parse::<u64>() else {
        return Some(Err(format!("invalid duration `{s}`: too large")));
    };
    // `frac` is 1-9 ASCII digits, so padded to 9 it always fits in a u32;
    // the fallback of 0 is never taken.
    let nanos = format!("{frac:0<9}").parse::<u32>().unwrap_or(0);
    Some(Ok(Duration::new(secs, nanos)))
}

/// A problem on one line, before the file name and line number are attached.
#[derive(Debug)]
struct LineError {
    column: usize,
    message: String,
}

/// A cursor over one line that counts 1-based character columns, because
/// errors point at columns as a user counts them in an editor, not at bytes.
struct Cursor<'a> {
    line: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// Column of the next character.
    col: usize,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a str) -> Self {
        Cursor {
            line,
            pos: 0,
            col: 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.line[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        self.col += 1;
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// True at the end of the line, or at a `#` starting a field: a comment.
    /// Only meaningful at the start of a field (after `skip_whitespace`).
    fn at_end(&self) -> bool {
        matches!(self.peek(), None | Some('#'))
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        &self.line[start..self.pos]
    }

    /// Reads a `"..."` value, the cursor at its opening quote.
    fn quoted(&mut self) -> Result<String, LineError> {
        let open = self.col;
        let unterminated = || LineError {
            column: open,
            message: "unterminated quote (no closing `\"` on this line)".to_owned(),
        };
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump().ok_or_else(unterminated)? {
                '"' => break,
                '\\' => match self.bump().ok_or_else(unterminated)? {
                    c @ ('"' | '\\') => value.push(c),
                    c => {
                        value.push('\\');
                        value.push(c);
                    }
                },
                c => value.push(c),
            }
        }
        match self.peek() {
            Some(c) if !c.is_whitespace() => Err(LineError {
                column: self.col,
                message: format!(
                    "unexpected `{c}` after the closing quote (separate options with spaces)"
                ),
            }),
            _ => Ok(value),
        }
    }
}

/// One option as written, before its key is checked.
struct RawOption<'a> {
    /// Column of the key: option errors point here.
    col: usize,
    key: &'a str,
    /// None for a bare flag (`insecure`).
    value: Option<String>,
}

fn lex_option<'a>(cur: &mut Cursor<'a>) -> Result<RawOption<'a>, LineError> {
    let col = cur.col;
    let key = cur.take_while(|c| !c.is_whitespace() && c != '=');
    if cur.peek() != Some('=') {
        return Ok(RawOption {
            col,
            key,
            value: None,
        });
    }
    cur.bump();
    let value = if cur.peek() == Some('"') {
        cur.quoted()?
    } else {
        cur.take_while(|c| !c.is_whitespace()).to_owned()
    };
    Ok(RawOption {
        col,
        key,
        value: Some(value),
    })
}

/// The options a line may carry: name, whether only HTTP targets take it,
/// and an example for error messages.
const OPTIONS: [(&str, bool, &str); 18] = [
    ("expect", true, "expect=200-299,301"),
    ("contains", true, "contains=\"ok\""),
    ("matches", true, "matches=\"^ok$\""),
    ("timeout", false, "timeout=2s"),
    ("ip", false, "ip=6"),
    ("all_addresses", false, "all_addresses"),
    ("insecure", true, "insecure"),
    ("ca", true, "ca=certs/ca.pem"),
    ("redirects", true, "redirects=5"),
    ("no_follow", true, "no_follow"),
    ("method", true, "method=POST"),
    ("header", true, "header=\"Host: a.example\""),
    ("body", true, "body=\"{}\""),
    ("body_file", true, "body_file=request.json"),
    ("auth_file", true, "auth_file=secrets/token"),
    ("cert_expiry_warn", true, "cert_expiry_warn=14d"),
    ("count", false, "count=5"),
    ("interval", false, "interval=100ms"),
];

/// Options only ICMP targets take (the echo train). Kept apart from the
/// `OPTIONS` table's http-only flag so that the table stays one line per
/// option.
const ICMP_ONLY: [&str; 2] = ["count", "interval"];

/// Options a line may give more than once.
const REPEATABLE: [&str; 1] = ["header"];

/// Flags that may stand alone (`insecure` is `insecure=true`).
const FLAGS: [&str; 3] = ["insecure", "no_follow", "all_addresses"];

/// The longest `cert_expiry_warn=`: ten years is longer than any
/// certificate is issued for, so a longer window could only be a typo.
const MAX_CERT_WARN: Duration = Duration::from_secs(3650 * 86_400);

/// Option values as they accumulate over a line.
#[derive(Default)]
struct Options {
    timeout: Option<Duration>,
    ip: Option<(IpFamily, usize)>,
    all_addresses: Option<(bool, usize)>,
    expect: Option<StatusSet>,
    contains: Option<String>,
    matches: Option<Regex>,
    insecure: bool,
    ca: Option<PathBuf>,
    redirects: Option<u32>,
    /// Each value with the column of its option, for the checks across
    /// options at the end of the line.
    method: Option<(http::Method, usize)>,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: Option<(Payload, usize)>,
    auth: Option<(PathBuf, usize)>,
    cert_expiry_warn: Option<(Duration, usize)>,
    icmp: IcmpOptions,
}

/// Parses one line; `Ok(None)` for a blank or comment-only line.
fn parse_line(number: usize, line: &str) -> Result<Option<Target>, LineError> {
    // A control character has no business in a target, and one that got
    // into a label, a message or a terminal could drive it (ESC) or cut a
    // line short (NUL, CR). Tab is whitespace, a field separator.
    if let Some((column, c)) = (1..)
        .zip(line.chars())
        .find(|&(_, c)| c.is_control() && c != '\t')
    {
        return Err(LineError {
            column,
            message: format!(
                "control character U+{:04X} is not allowed in a targets file",
                u32::from(c)
            ),
        });
    }
    let mut cur = Cursor::new(line);
    cur.skip_whitespace();
    if cur.at_end() {
        return Ok(None);
    }
    let target_col = cur.col;
    let text = cur.take_while(|c| !c.is_whitespace());
    let address = parse_address(text).map_err(|message| LineError {
        column: target_col,
        message,
    })?;

    let mut options = Options::default();
    // Key and column of each option seen, to name the first on a duplicate.
    let mut seen: Vec<(&str, usize)> = Vec::new();
    loop {
        cur.skip_whitespace();
        if cur.at_end() {
            break;
        }
        let raw = lex_option(&mut cur)?;
        apply_option(&raw, address.kind, &mut options, &seen).map_err(|message| LineError {
            column: raw.col,
            message,
        })?;
        seen.push((raw.key, raw.col));
    }

    if let Some(http) = &address.http {
        check_request(&options, http)?;
    }
    // An address written as a literal has its family already.
    if let (Some((family, col)), Ok(ip)) = (options.ip, address.host.parse::<std::net::IpAddr>())
        && !family.admits(ip)
    {
        return Err(LineError {
            column: col,
            message: format!(
                "ip={} but {} is an {} address",
                if family == IpFamily::V4 { "4" } else { "6" },
                address.host,
                if ip.is_ipv4() { "IPv4" } else { "IPv6" }
            ),
        });
    }
    check_train(&options)?;
    let http = address.http.map(|(uri, tls)| HttpTarget {
        uri,
        tls,
        expect: options.expect.unwrap_or_else(StatusSet::default_success),
        contains: options.contains,
        matches: options.matches,
        insecure: options.insecure,
        ca: options.ca,
        max_redirects: options.redirects.unwrap_or(DEFAULT_REDIRECTS),
        method: match (options.method, &options.body) {
            (Some((m, _)), _) => m,
            // A body and no method: POST, as curl's -d does.
            (None, Some(_)) => http::Method::POST,
            (None, None) => http::Method::GET,
        },
        headers: options.headers,
        body: options.body.map(|(b, _)| b),
        auth: options.auth.map(|(p, _)| Auth::File(p)),
        cert_expiry_warn: options.cert_expiry_warn.map(|(d, _)| d),
    });
    Ok(Some(Target {
        text: text.to_owned(),
        line: number,
        kind: address.kind,
        host: address.host,
        port: address.port,
        timeout: options.timeout,
        ip: options.ip.map(|(f, _)| f).unwrap_or_default(),
        all_addresses: options.all_addresses.is_some_and(|(on, _)| on),
        http,
        icmp: options.icmp,
    }))
}

fn apply_option(
    raw: &RawOption<'_>,
    kind: Kind,
    options: &mut Options,
    seen: &[(&str, usize)],
) -> Result<(), String> {
    let key = raw.key;
    if key.is_empty() {
        return Err("missing option name before `=`".to_owned());
    }
    let Some(&(_, http_only, example)) = OPTIONS.iter().find(|(name, ..)| *name == key) else {
        let known: Vec<&str> = OPTIONS.iter().map(|(name, ..)| *name).collect();
        return Err(format!(
            "unknown option `{key}`; known options: {}",
            known.join(", ")
        ));
    };
    if let Some((_, col)) = seen
        .iter()
        .find(|(name, _)| *name == key && !REPEATABLE.contains(name))
    {
        return Err(format!(
            "duplicate option `{key}` (first given at column {col})"
        ));
    }
    // Options that say the same thing two ways.
    for (a, b) in [("redirects", "no_follow"), ("body", "body_file")] {
        let other = if key == a {
            b
        } else if key == b {
            a
        } else {
            continue;
        };
        if let Some((_, col)) = seen.iter().find(|(name, _)| *name == other) {
            return Err(format!(
                "option `{key}` cannot be combined with `{other}` (given at column {col})"
            ));
        }
    }
    if http_only && kind != Kind::Http {
        return Err(format!("option `{key}` applies only to http(s) targets"));
    }
    if ICMP_ONLY.contains(&key) && kind != Kind::Icmp {
        return Err(format!("option `{key}` applies only to icmp targets"));
    }
    let value = match (key, raw.value.as_deref()) {
        // A flag alone is `flag=true`; every other option needs a value.
        (flag, None) if FLAGS.contains(&flag) => "true",
        (_, None | Some("")) => {
            return Err(format!("option `{key}` needs a value, like {example}"));
        }
        (_, Some(value)) => value,
    };
    if ICMP_ONLY.contains(&key) && options.icmp.column == 0 {
        options.icmp.column = raw.col;
    }
    match key {
        "expect" => options.expect = Some(parse_status_set(value)?),
        "contains" => options.contains = Some(value.to_owned()),
        "matches" => options.matches = Some(Regex::new(value).map_err(regex_message)?),
        "timeout" => {
            options.timeout =
                Some(parse_duration(value).map_err(|e| format!("option `timeout`: {e}"))?);
        }
        "insecure" => options.insecure = boolean(key, value)?,
        "no_follow" => {
            if boolean(key, value)? {
                options.redirects = Some(0);
            }
        }
        "ca" => options.ca = Some(PathBuf::from(value)),
        "ip" => options.ip = Some((value.parse::<IpFamily>()?, raw.col)),
        "all_addresses" => {
            if kind == Kind::Icmp {
                return Err(
                    "option `all_addresses` applies to tcp and http(s) targets (an icmp target \
                     pings one address)"
                        .into(),
                );
            }
            options.all_addresses = Some((boolean(key, value)?, raw.col));
        }
        "method" => options.method = Some((request::parse_method(value)?, raw.col)),
        "header" => {
            if options.headers.len() == MAX_HEADERS {
                return Err(format!(
                    "more than {MAX_HEADERS} header= options on one target"
                ));
            }
            options.headers.push(request::parse_header(value)?);
        }
        "body" => {
            if value.len() > MAX_REQUEST_BODY {
                return Err(format!(
                    "body is {} bytes, more than the maximum of {} KiB (use body_file= for \
                     anything long, still within the maximum)",
                    value.len(),
                    MAX_REQUEST_BODY / 1024
                ));
            }
            let bytes: std::sync::Arc<[u8]> = value.as_bytes().into();
            options.body = Some((Payload::Bytes(bytes), raw.col));
        }
        "body_file" => options.body = Some((Payload::File(PathBuf::from(value)), raw.col)),
        "auth_file" => options.auth = Some((PathBuf::from(value), raw.col)),
        "cert_expiry_warn" => {
            options.cert_expiry_warn = Some((parse_cert_warn(value)?, raw.col));
        }
        "count" => options.icmp.count = Some(parse_icmp_count(value)?),
        "interval" => {
            let d = parse_duration(value).map_err(|e| format!("option `interval`: {e}"))?;
            if d < MIN_ICMP_INTERVAL {
                return Err(format!(
                    "option `interval`: `{value}` is shorter than the minimum, 1ms"
                ));
            }
            options.icmp.interval = Some(d);
        }
        "redirects" => {
            let n = value
                .parse::<u32>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("invalid redirects `{value}` (a count, like 0, 5 or 10)"))?;
            options.redirects = Some(n);
        }
        // Every name in OPTIONS has an arm above; the lookup already
        // rejected anything else.
        _ => return Err(format!("unknown option `{key}`")),
    }
    Ok(())
}

/// A flag's value: `true` or `false`.
fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("option `{key}` takes true or false, not `{value}`")),
    }
}

/// `cert_expiry_warn=`: a duration in days, hours or minutes (`14d`,
/// `36h`), longer than zero and at most [`MAX_CERT_WARN`]. Not
/// [`parse_duration`], whose 24 h cap is for deadlines.
fn parse_cert_warn(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value).map_err(|e| {
        format!("option `cert_expiry_warn`: invalid duration `{value}`: {e} (examples: 14d, 36h)")
    })?;
    if d.is_zero() {
        return Err("option `cert_expiry_warn` must be longer than zero".into());
    }
    if d > MAX_CERT_WARN {
        return Err(format!(
            "option `cert_expiry_warn`: `{value}` is longer than the maximum, 3650d"
        ));
    }
    Ok(d)
}

/// `count=`: a whole number of echo requests, 1..=[`MAX_ICMP_COUNT`]. Also
/// the reading of `--icmp-count`.
pub fn parse_icmp_count(value: &str) -> Result<u16, String> {
    let n = value
        .parse::<u64>()
        .ok()
        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("invalid count `{value}` (a number of echo requests, like 5)"))?;
    if n == 0 || n > u64::from(MAX_ICMP_COUNT) {
        return Err(format!(
            "count {n} is out of range: 1 to {MAX_ICMP_COUNT} echo requests per probe"
        ));
    }
    // In range, so it fits: MAX_ICMP_COUNT is a u16.
    Ok(u16::try_from(n).unwrap_or(MAX_ICMP_COUNT))
}

/// The time an echo train of `count` requests `interval` apart needs
/// inside its deadline: the last request is sent `(count - 1) × interval`
/// after the first, and gets one more interval for its reply, as every
/// other request does. `None` for a single echo, which has no train.
pub fn train_length(count: u16, interval: Duration) -> Option<Duration> {
    (count > 1).then(|| interval * u32::from(count))
}

/// The train must fit the line's own `timeout=`, when it gives one (the
/// scan's `--timeout` is checked by `Plan::new`).
fn check_train(options: &Options) -> Result<(), LineError> {
    let (Some(timeout), Some(count)) = (options.timeout, options.icmp.count) else {
        return Ok(());
    };
    let interval = options.icmp.interval.unwrap_or(DEFAULT_ICMP_INTERVAL);
    match train_length(count, interval) {
        Some(needs) if needs > timeout => Err(LineError {
            column: options.icmp.column,
            message: train_message(count, interval, needs, timeout, "timeout="),
        }),
        _ => Ok(()),
    }
}

/// The error for an echo train longer than its deadline, `source` naming
/// where the deadline came from.
pub fn train_message(
    count: u16,
    interval: Duration,
    needs: Duration,
    timeout: Duration,
    source: &str,
) -> String {
    use crate::session::fmt_duration;
    format!(
        "count={count} × interval={} needs {} but the deadline ({source}) is {}; lower count \
         or interval, or raise the timeout",
        fmt_duration(interval),
        fmt_duration(needs),
        fmt_duration(timeout)
    )
}

/// The checks across one line's request options, once all are read.
fn check_request(options: &Options, (uri, tls): &(http::Uri, bool)) -> Result<(), LineError> {
    if let (Some((method, col)), Some(_)) = (&options.method, &options.body)
        && !request::takes_body(method)
    {
        return Err(LineError {
            column: *col,
            message: format!(
                "method={method} sends no body; a body needs method=POST, PUT or PATCH"
            ),
        });
    }
    if let Some((_, col)) = &options.auth
        && uri.authority().is_some_and(|a| a.as_str().contains('@'))
    {
        return Err(LineError {
            column: *col,
            message: "auth_file= and a user:password@ in the URL both give credentials; keep \
                      only auth_file="
                .into(),
        });
    }
    if let Some((_, col)) = &options.cert_expiry_warn
        && !tls
    {
        return Err(LineError {
            column: *col,
            message: "option `cert_expiry_warn` applies only to https:// targets".into(),
        });
    }
    Ok(())
}

/// The regex crate's message, on one line: its syntax errors span several
/// lines (the pattern, a caret line, then `error: ...`), which would break
/// the one-error-per-line output. The last line is the part that explains.
fn regex_message(e: regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    let reason = last.strip_prefix("error: ").unwrap_or(last);
    format!("invalid regex in `matches`: {reason}")
}

/// Parses `expect=`: comma-separated codes and `lo-hi` ranges.
fn parse_status_set(value: &str) -> Result<StatusSet, String> {
    let code = |s: &str| -> Result<u16, String> {
        let n = s
            .parse::<u16>()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("invalid status `{s}` in expect (like 200-299,301)"))?;
        if (100..=599).contains(&n) {
            Ok(n)
        } else {
            Err(format!("status {n} is out of range (100-599)"))
        }
    };
    let mut ranges = Vec::new();
    for item in value.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((lo, hi)) => (code(lo)?, code(hi)?),
            None => {
                let n = code(item)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!(
                "status range {lo}-{hi} is reversed (write the low code first)"
            ));
        }
        ranges.push((lo, hi));
    }
    Ok(StatusSet(ranges))
}

/// What the first field of a line says: where to probe and how.
#[derive(Debug)]
struct Address {
    kind: Kind,
    host: String,
    port: u16,
    /// The URL and whether it is https, for http targets.
    http: Option<(http::Uri, bool)>,
}

const SCHEMES: &str =
    "http://, https://, tcp://, icmp://, or host:port (tcp) and a bare host (icmp)";

fn parse_address(text: &str) -> Result<Address, String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return parse_bare(text);
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => parse_http(rest, false),
        "https" => parse_http(rest, true),
        "tcp" => {
            let (host, port) = plain_authority(rest, "tcp://host:port")?;
            let Some(port) = port else {
                return Err("a tcp target needs a port (tcp://host:port)".to_owned());
            };
            Ok(Address {
                kind: Kind::Tcp,
                host,
                port: parse_port(port)?,
                http: None,
            })
        }
        "icmp" => {
            let (host, port) = plain_authority(rest, "icmp://host")?;
            if port.is_some() {
                return Err("an icmp target takes no port (icmp://host)".to_owned());
            }
            Ok(Address {
                kind: Kind::Icmp,
                host,
                port: 0,
                http: None,
            })
        }
        "" => Err(format!("missing scheme before `://`; supported: {SCHEMES}")),
        _ => Err(format!(
            "unsupported scheme `{scheme}://`; supported: {SCHEMES}"
        )),
    }
}

/// The authority of a `tcp://` or `icmp://` target: host and port only.
/// A single trailing `/` is tolerated, as URLs pasted from elsewhere have one.
fn plain_authority<'a>(rest: &'a str, form: &str) -> Result<(String, Option<&'a str>), String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(format!("no path or query allowed here (write {form})"));
    }
    if rest.contains('@') {
        return Err(format!("no user name allowed here (write {form})"));
    }
    let (host, port, bracketed) = split_host_port(rest)?;
    validate_host(host, bracketed)?;
    Ok((host.to_owned(), port))
}

fn parse_http(rest: &str, tls: bool) -> Result<Address, String> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // Userinfo (`user:pw@`) stays in the URI for the prober to send; the host
    // is what follows the last `@`.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port, bracketed) = split_host_port(host_port)?;
    validate_host(host, bracketed)?;
    let port = match port {
        Some(port) => parse_port(port)?,
        None if tls => 443,
        None => 80,
    };
    // A fragment is never sent to the server, so it is dropped here.
    let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
    // `"`, `\`, non-ASCII and the like are sent percent-encoded, not raw.
    let tail = crate::percent::encode_path_query(tail);
    let slash = if tail.starts_with('/') { "" } else { "/" };
    let scheme = if tls { "https" } else { "http" };
    let uri = format!("{scheme}://{authority}{slash}{tail}")
        .parse::<http::Uri>()
        .map_err(|e| format!("invalid URL: {e}"))?;
    Ok(Address {
        kind: Kind::Http,
        host: host.to_owned(),
        port,
        http: Some((uri, tls)),
    })
}

/// A target without a scheme: `host:port` or `[v6]:port` (tcp), or a bare
/// host, `[v6]` or an unbracketed IPv6 literal (icmp).
fn parse_bare(text: &str) -> Result<Address, String> {
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http:") || lower.starts_with("https:") {
        return Err("a URL needs `//` after its scheme, like https://host/".to_owned());
    }
    if text.contains('=') {
        return Err(format!(
            "a line must start with its target, not the option `{text}`"
        ));
    }
    let icmp = |host: &str| Address {
        kind: Kind::Icmp,
        host: host.to_owned(),
        port: 0,
        http: None,
    };
    if !text.starts_with('[') && text.matches(':').count() > 1 {
        return match text.parse::<Ipv6Addr>() {
            Ok(_) => Ok(icmp(text)),
            Err(_) => Err(format!(
                "`{text}` is not a valid IPv6 address (with a port, write [addr]:port)"
            )),
        };
    }
    let (host, port, bracketed) = split_host_port(text)?;
    validate_host(host, bracketed)?;
    match port {
        None => Ok(icmp(host)),
        Some(port) => Ok(Address {
            kind: Kind::Tcp,
            host: host.to_owned(),
            port: parse_port(port)?,
            http: None,
        }),
    }
}

/// Splits `host[:port]` or `[v6][:port]` into the host (brackets removed),
/// the port text if a `:` was there, and whether the host was bracketed.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>, bool), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err("missing `]` after the IPv6 address".to_owned());
        };
        return match after {
            "" => Ok((host, None, true)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port), true)),
                None => Err(format!("unexpected `{after}` after `]` (expected `:port`)")),
            },
        };
    }
    match s.split_once(':') {
        Some((_, port)) if port.contains(':') => {
            Err("an IPv6 address needs brackets here, like [::1]:8080".to_owned())
        }
        Some((host, port)) => Ok((host, Some(port), false)),
        None => Ok((s, None, false)),
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err("missing port after `:`".to_owned());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port `{port}` (ports are 1-65535)"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 is not allowed (ports are 1-65535)".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("port {port} is out of range (ports are 1-65535)")),
    }
}

/// Accepts an IP literal or a DNS name (RFC 1123 labels; `_` tolerated
/// because real internal names use it; one trailing dot allowed for a fully
/// qualified name).
fn validate_host(host: &str, bracketed: bool) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    if bracketed {
        return match host.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("`[{host}]` is not a valid IPv6 address")),
        };
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if let Some(c) = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        let hint = if c == '/' {
            " (a URL needs a scheme, like https://)"
        } else if !c.is_ascii() {
            " (write international names in their xn-- form)"
        } else {
            ""
        };
        return Err(format!(
            "invalid character `{c}` in host name `{host}`{hint}"
        ));
    }
    if host.len() > 253 {
        return Err(format!(
            "host name is {} characters long (the limit is 253)",
            host.len()
        ));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("empty label in host name `{host}`"));
        }
        if label.len() > 63 {
            return Err(format!(
                "label `{label}` in host name is {} characters long (the limit is 63)",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "label `{label}` in host name starts or ends with `-`"
            ));
        }
    }
    // No top-level domain is all digits (RFC 3696 section 2), so a name
    // ending in one was meant as an IPv4 address and is a typo.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("`{host}` is not a valid IPv4 address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a file that must be valid.
    fn ok(input: &str) -> Vec<Target> {
        match parse_targets("t.txt", input.as_bytes()) {
            Ok(targets) => targets,
            Err(e) => panic!("unexpected errors:\n{e}"),
        }
    }

    /// Parses a one-target line that must be valid.
    fn one(line: &str) -> Target {
        let mut targets = ok(line);
        assert_eq!(targets.len(), 1);
        targets.remove(0)
    }

    /// The full error output for a file that must be invalid.
    fn errors(input: &[u8]) -> String {
        match parse_targets("t.txt", input) {
            Ok(targets) => panic!("expected errors, got {targets:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn err_line(line: &str) -> String {
        errors(line.as_bytes())
    }

    fn http(t: &Target) -> &HttpTarget {
        t.http.as_ref().expect("an http target")
    }

    #[test]
    fn https_url_with_defaults() {
        let t = one("https://example.com/health");
        assert_eq!(t.text, "https://example.com/health");
        assert_eq!(t.line, 1);
        assert_eq!(t.kind, Kind::Http);
        assert_eq!(t.host, "example.com");
        assert_eq!(t.port, 443);
        assert_eq!(t.timeout, None);
        let h = http(&t);
        assert_eq!(h.uri.to_string(), "https://example.com/health");
        assert!(h.tls);
        assert_eq!(h.expect, StatusSet::default_success());
        assert_eq!(h.contains, None);
        assert!(h.matches.is_none());
        assert!(!h.insecure);
        assert_eq!(h.ca, None);
        assert_eq!(h.max_redirects, 10);
    }

    #[test]
    fn http_url_default_port_and_root_path() {
        let t = one("http://example.com");
        assert_eq!(t.port, 80);
        assert!(!http(&t).tls);
        assert_eq!(http(&t).uri.to_string(), "http://example.com/");
        assert_eq!(http(&t).uri.path(), "/");
    }

    #[test]
    fn http_url_explicit_port_query_and_userinfo() {
        let t = one("HTTP://user:pw@example.com:8080?probe=1");
        assert_eq!(t.text, "HTTP://user:pw@example.com:8080?probe=1");
        assert_eq!(t.host, "example.com");
        assert_eq!(t.port, 8080);
        let uri = &http(&t).uri;
        assert_eq!(uri.to_string(), "http://user:pw@example.com:8080/?probe=1");
        assert_eq!(
            uri.authority().map(|a| a.as_str()),
            Some("user:pw@example.com:8080")
        );
        assert_eq!(uri.path_and_query().map(|p| p.as_str()), Some("/?probe=1"));
    }

    #[test]
    fn http_ipv6_literal() {
        let t = one("http://[::1]:8080/status");
        assert_eq!(t.kind, Kind::Http);
        assert_eq!(t.host, "::1");
        assert_eq!(t.port, 8080);
        assert_eq!(http(&t).uri.to_string(), "http://[::1]:8080/status");
        let t = one("https://[2001:db8::1]/");
        assert_eq!(t.host, "2001:db8::1");
        assert_eq!(t.port, 443);
    }

    #[test]
    fn tcp_forms() {
        let t = one("tcp://db.internal:5432");
        assert_eq!(
            (t.kind, t.host.as_str(), t.port),
            (Kind::Tcp, "db.internal", 5432)
        );
        assert!(t.http.is_none());
        let t = one("db.internal:5432");
        assert_eq!(
            (t.kind, t.host.as_str(), t.port),
            (Kind::Tcp, "db.internal", 5432)
        );
        let t = one("tcp://[::1]:22");
        assert_eq!((t.kind, t.host.as_str(), t.port), (Kind::Tcp, "::1", 22));
        let t = one("[::1]:22");
        assert_eq!((t.kind, t.host.as_str(), t.port), (Kind::Tcp, "::1", 22));
        let t = one("10.0.0.1:65535");
        assert_eq!(
            (t.kind, t.host.as_str(), t.port),
            (Kind::Tcp, "10.0.0.1", 65535)
        );
        let t = one("tcp://my_host.local:1/");
        assert_eq!(
            (t.kind, t.host.as_str(), t.port),
            (Kind::Tcp, "my_host.local", 1)
        );
    }

    #[test]
    fn icmp_forms() {
        for (line, host) in [
            ("icmp://gateway.lan", "gateway.lan"),
            ("gateway.lan", "gateway.lan"),
            ("10.0.0.1", "10.0.0.1"),
            ("icmp://[::1]", "::1"),
            ("[fe80::1]", "fe80::1"),
            ("::1", "::1"),
            ("2001:db8::53", "2001:db8::53"),
            ("example.com.", "example.com."),
        ] {
            let t = one(line);
            assert_eq!(
                (t.kind, t.host.as_str(), t.port),
                (Kind::Icmp, host, 0),
                "{line}"
            );
            assert_eq!(t.text, line);
            assert!(t.http.is_none());
        }
    }

    #[test]
    fn http_options() {
        let t = one(
            r#"https://example.com/ expect=200-299,301 contains="all \"good\" \\ here" matches=^ok\d+$ timeout=1.5s insecure ca="certs/my ca.pem" redirects=0"#,
        );
        assert_eq!(t.timeout, Some(Duration::from_millis(1500)));
        let h = http(&t);
        assert_eq!(h.expect, StatusSet(vec![(200, 299), (301, 301)]));
        assert_eq!(h.contains.as_deref(), Some(r#"all "good" \ here"#));
        assert_eq!(h.matches.as_ref().map(|r| r.as_str()), Some(r"^ok\d+$"));
        assert!(h.insecure);
        assert_eq!(h.ca, Some(PathBuf::from("certs/my ca.pem")));
        assert_eq!(h.max_redirects, 0);
    }

    #[test]
    fn request_options() {
        let t = one(
            r#"https://h/api method=PUT header="Host: a.example" header="X-A: 1" body_file=req.json auth_file="secrets/token" cert_expiry_warn=14d no_follow"#,
        );
        let h = http(&t);
        assert_eq!(h.method, http::Method::PUT);
        let headers: Vec<(&str, &str)> = h
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(headers, [("host", "a.example"), ("x-a", "1")]);
        assert_eq!(h.body, Some(Payload::File(PathBuf::from("req.json"))));
        assert_eq!(h.auth, Some(Auth::File(PathBuf::from("secrets/token"))));
        assert_eq!(h.cert_expiry_warn, Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(h.max_redirects, 0, "no_follow is redirects=0");
        let plain = one("http://h/");
        assert_eq!(http(&plain).method, http::Method::GET);
        assert!(http(&plain).headers.is_empty());
        assert_eq!(http(&one("http://h/ body=x")).method, http::Method::POST);
        assert_eq!(
            http(&one("http://h/ no_follow=false")).max_redirects,
            DEFAULT_REDIRECTS
        );
    }

    #[test]
    fn pins() {
        assert_eq!(
            parse_pin("App.Example=127.0.0.1, [::1],::2"),
            Ok((
                "app.example".to_string(),
                vec![
                    "127.0.0.1".parse().unwrap(),
                    "::1".parse().unwrap(),
                    "::2".parse().unwrap()
                ]
            ))
        );
        for (bad, why) in [
            ("app.example", "has no `=`"),
            ("127.0.0.1=::1", "is an address, not a name"),
            ("app.example=nope", "`nope` is not an IP address"),
            ("app.example=", "`` is not an IP address"),
            ("bad_name!=127.0.0.1", "bad_name!"),
        ] {
            let e = parse_pin(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let many = format!("a.example={}", vec!["127.0.0.1"; 17].join(","));
        assert!(parse_pin(&many).unwrap_err().contains("maximum of 16"));
    }

    #[test]
    fn ip_families() {
        assert_eq!(one("tcp://h:1 ip=6").ip, IpFamily::V6);
        assert_eq!(one("icmp://h ip=ipv4").ip, IpFamily::V4);
        assert_eq!(one("https://h/ ip=any").ip, IpFamily::Any);
        assert_eq!(one("https://h/").ip, IpFamily::Any);
        assert_eq!(one("tcp://[::1]:1 ip=6").ip, IpFamily::V6);
        assert_eq!(
            err_line("tcp://h:1 ip=7"),
            "t.txt:1:11: invalid address family `7` (4, 6 or any)"
        );
        assert_eq!(
            err_line("tcp://127.0.0.1:1 ip=6"),
            "t.txt:1:19: ip=6 but 127.0.0.1 is an IPv4 address"
        );
        assert_eq!(
            err_line("http://[::1]/ ip=4"),
            "t.txt:1:15: ip=4 but ::1 is an IPv6 address"
        );
    }

    #[test]
    fn bad_request_options_point_at_the_option() {
        for (line, message) in [
            (
                "http://h/ method=BREW",
                "t.txt:1:11: unknown method `BREW`; one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
            ),
            (
                "http://h/ method=get",
                "t.txt:1:11: method `get` must be written in upper case: method=GET",
            ),
            (
                "http://h/ header=X-No-Colon",
                "t.txt:1:11: header `X-No-Colon` needs a colon between name and value, like header=\"X-Probe: pulse\"",
            ),
            (
                r#"http://h/ header="Bad Name: x""#,
                "t.txt:1:11: invalid header name `Bad Name` (letters, digits and !#$%&'*+-.^_`|~ only)",
            ),
            (
                r#"http://h/ header="Content-Length: 3""#,
                "t.txt:1:11: header `Content-Length` cannot be set: pulse sets it from the body",
            ),
            (
                "http://h/ method=GET body=x",
                "t.txt:1:11: method=GET sends no body; a body needs method=POST, PUT or PATCH",
            ),
            (
                "http://h/ body=x method=HEAD",
                "t.txt:1:18: method=HEAD sends no body; a body needs method=POST, PUT or PATCH",
            ),
            (
                "http://h/ body=x body_file=f",
                "t.txt:1:18: option `body_file` cannot be combined with `body` (given at column 11)",
            ),
            (
                "http://h/ redirects=2 no_follow",
                "t.txt:1:23: option `no_follow` cannot be combined with `redirects` (given at column 11)",
            ),
            (
                "http://u:p@h/ auth_file=f",
                "t.txt:1:15: auth_file= and a user:password@ in the URL both give credentials; keep only auth_file=",
            ),
            (
                "http://h/ cert_expiry_warn=14d",
                "t.txt:1:11: option `cert_expiry_warn` applies only to https:// targets",
            ),
            (
                "https://h/ cert_expiry_warn=0d",
                "t.txt:1:12: option `cert_expiry_warn` must be longer than zero",
            ),
            (
                "https://h/ cert_expiry_warn=4000d",
                "t.txt:1:12: option `cert_expiry_warn`: `4000d` is longer than the maximum, 3650d",
            ),
            (
                "tcp://h:1 method=POST",
                "t.txt:1:11: option `method` applies only to http(s) targets",
            ),
            (
                "icmp://h body=x",
                "t.txt:1:10: option `body` applies only to http(s) targets",
            ),
            (
                "http://h/ no_follow=yes",
                "t.txt:1:11: option `no_follow` takes true or false, not `yes`",
            ),
        ] {
            assert_eq!(err_line(line), message, "{line}");
        }
        assert!(
            err_line("https://h/ cert_expiry_warn=soon")
                .starts_with("t.txt:1:12: option `cert_expiry_warn`: invalid duration `soon`")
        );
        let big = format!("http://h/ body={}", "x".repeat(MAX_REQUEST_BODY + 1));
        assert!(err_line(&big).contains("more than the maximum of 64 KiB"));
        let many = format!("http://h/{}", " header=\"X-A: 1\"".repeat(MAX_HEADERS + 1));
        assert!(err_line(&many).ends_with("more than 32 header= options on one target"));
    }

    #[test]
    fn quoted_regex_keeps_other_backslashes() {
        let t = one(r#"http://h/ matches="\d+ ok" contains=plain"#);
        let h = http(&t);
        let re = h.matches.as_ref().expect("a regex");
        assert_eq!(re.as_str(), r"\d+ ok");
        assert!(re.is_match(b"42 ok"));
        assert_eq!(h.contains.as_deref(), Some("plain"));
    }

    #[test]
    fn insecure_takes_true_or_false() {
        assert!(http(&one("https://h/ insecure=true")).insecure);
        assert!(!http(&one("https://h/ insecure=false")).insecure);
        assert_eq!(
            err_line("https://h/ insecure=yes"),
            "t.txt:1:12: option `insecure` takes true or false, not `yes`"
        );
    }

    #[test]
    fn timeout_applies_to_every_kind() {
        assert_eq!(
            one("tcp://h:1 timeout=2s").timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            one("h timeout=500ms").timeout,
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            err_line("h timeout=0s"),
            "t.txt:1:3: option `timeout`: duration `0s` must be greater than zero"
        );
    }

    #[test]
    fn comments_blank_lines_and_fragments() {
        let input = "# header comment\n\
                     \n\
                     \t  \n\
                     https://example.com/page#section   # trailing comment\n\
                     \x20 h:22#not-a-comment\n";
        // The second target line is wrong on purpose: `#` inside a field is
        // not a comment, so it stays part of the port.
        assert_eq!(
            errors(input.as_bytes()),
            "t.txt:5:3: invalid port `22#not-a-comment` (ports are 1-65535)"
        );
        let targets = ok("# header\n\nhttps://example.com/page#section   # trailing\n  h2 #c\n");
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].line, 3);
        assert_eq!(targets[0].text, "https://example.com/page#section");
        assert_eq!(
            http(&targets[0]).uri.to_string(),
            "https://example.com/page"
        );
        assert_eq!((targets[1].line, targets[1].host.as_str()), (4, "h2"));
    }

    #[test]
    fn hash_inside_quotes_is_not_a_comment() {
        let t = one(r#"https://h/ contains="a # b" # real comment"#);
        assert_eq!(http(&t).contains.as_deref(), Some("a # b"));
    }

    #[test]
    fn crlf_and_bom() {
        let targets = ok("\u{feff}https://a.example/\r\n# c\r\ntcp://b.example:1 timeout=2s\r\n");
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].host, "a.example");
        assert_eq!(targets[1].timeout, Some(Duration::from_secs(2)));
        assert_eq!(targets[1].line, 3);
        // Columns count from after the BOM.
        assert_eq!(
            errors(b"\xEF\xBB\xBFftp://x\r\n"),
            "t.txt:1:1: unsupported scheme `ftp://`; supported: http://, https://, tcp://, \
             icmp://, or host:port (tcp) and a bare host (icmp)"
        );
    }

    #[test]
    fn several_bad_lines_reported_together() {
        let input = "https://ok.example/\n\
                     ftp://files.example/\n\
                     tcp://db:0\n\
                     \n\
                     https://h/ expect=200-299 nope=1\n\
                     tcp://h:22 expect=200\n\
                     h:99999\n\
                     icmp://ok2\n";
        assert_eq!(
            errors(input.as_bytes()),
            "t.txt:2:1: unsupported scheme `ftp://`; supported: http://, https://, tcp://, \
             icmp://, or host:port (tcp) and a bare host (icmp)\n\
             t.txt:3:1: port 0 is not allowed (ports are 1-65535)\n\
             t.txt:5:27: unknown option `nope`; known options: expect, contains, matches, \
             timeout, ip, all_addresses, insecure, ca, redirects, no_follow, method, header, body, body_file, \
             auth_file, cert_expiry_warn, count, interval\n\
             t.txt:6:12: option `expect` applies only to http(s) targets\n\
             t.txt:7:1: port 99999 is out of range (ports are 1-65535)"
        );
    }

    #[test]
    fn error_values_carry_file_line_and_column() {
        let Err(e) = parse_targets("-", b"ok\n  bad:x\n") else {
            panic!("expected an error");
        };
        assert_eq!(
            e,
            TargetErrors::from_vec(vec![TargetError {
                file: "<stdin>".to_owned(),
                line: 2,
                column: 3,
                message: "invalid port `x` (ports are 1-65535)".to_owned(),
            }])
        );
    }

    #[test]
    fn unknown_option() {
        assert_eq!(
            err_line("icmp://h verbose"),
            "t.txt:1:10: unknown option `verbose`; known options: expect, contains, matches, \
             timeout, ip, all_addresses, insecure, ca, redirects, no_follow, method, header, body, body_file, \
             auth_file, cert_expiry_warn, count, interval"
        );
        assert_eq!(
            err_line("h =2"),
            "t.txt:1:3: missing option name before `=`"
        );
    }

    #[test]
    fn duplicate_option() {
        assert_eq!(
            err_line("https://h/ timeout=1s expect=200 timeout=2s"),
            "t.txt:1:34: duplicate option `timeout` (first given at column 12)"
        );
    }

    #[test]
    fn http_only_options_on_tcp_and_icmp() {
        for key in [
            "expect=200",
            "contains=x",
            "matches=x",
            "insecure",
            "ca=x",
            "redirects=1",
        ] {
            let name = key.split('=').next().unwrap_or(key);
            assert_eq!(
                err_line(&format!("tcp://h:1 {key}")),
                format!("t.txt:1:11: option `{name}` applies only to http(s) targets")
            );
        }
        assert_eq!(
            err_line("icmp://h insecure"),
            "t.txt:1:10: option `insecure` applies only to http(s) targets"
        );
    }

    #[test]
    fn option_without_value() {
        assert_eq!(
            err_line("https://h/ expect"),
            "t.txt:1:12: option `expect` needs a value, like expect=200-299,301"
        );
        assert_eq!(
            err_line("https://h/ ca="),
            "t.txt:1:12: option `ca` needs a value, like ca=certs/ca.pem"
        );
        assert_eq!(
            err_line("https://h/ redirects=-1"),
            "t.txt:1:12: invalid redirects `-1` (a count, like 0, 5 or 10)"
        );
    }

    #[test]
    fn bad_ports() {
        for (line, message) in [
            ("tcp://h:0", "port 0 is not allowed (ports are 1-65535)"),
            ("h:65536", "port 65536 is out of range (ports are 1-65535)"),
            ("http://h:http/", "invalid port `http` (ports are 1-65535)"),
            ("h:", "missing port after `:`"),
            ("tcp://h", "a tcp target needs a port (tcp://host:port)"),
            ("icmp://h:7", "an icmp target takes no port (icmp://host)"),
            ("[::1]:+22", "invalid port `+22` (ports are 1-65535)"),
        ] {
            assert_eq!(err_line(line), format!("t.txt:1:1: {message}"), "{line}");
        }
    }

    #[test]
    fn bad_hosts() {
        for (line, message) in [
            (":80", "missing host"),
            ("https:///x", "missing host"),
            ("bad..name", "empty label in host name `bad..name`"),
            (
                "-bad.example",
                "label `-bad` in host name starts or ends with `-`",
            ),
            ("256.1.1.1", "`256.1.1.1` is not a valid IPv4 address"),
            ("[1.2.3.4]:80", "`[1.2.3.4]` is not a valid IPv6 address"),
            ("[::1", "missing `]` after the IPv6 address"),
            ("[::1]x", "unexpected `x` after `]` (expected `:port`)"),
            (
                "::g",
                "`::g` is not a valid IPv6 address (with a port, write [addr]:port)",
            ),
            (
                "http://::1/",
                "an IPv6 address needs brackets here, like [::1]:8080",
            ),
            (
                "example.com/health",
                "invalid character `/` in host name `example.com/health` \
                 (a URL needs a scheme, like https://)",
            ),
            (
                "café.example",
                "invalid character `é` in host name `café.example` \
                 (write international names in their xn-- form)",
            ),
            (
                "https:example.com",
                "a URL needs `//` after its scheme, like https://host/",
            ),
            (
                "expect=200",
                "a line must start with its target, not the option `expect=200`",
            ),
            (
                "tcp://h:22/x",
                "no path or query allowed here (write tcp://host:port)",
            ),
            (
                "icmp://u@h",
                "no user name allowed here (write icmp://host)",
            ),
        ] {
            assert_eq!(err_line(line), format!("t.txt:1:1: {message}"), "{line}");
        }
        assert_eq!(
            err_line("://h"),
            format!("t.txt:1:1: missing scheme before `://`; supported: {SCHEMES}")
        );
        let label = "a".repeat(64);
        assert_eq!(
            err_line(&format!("{label}.example")),
            format!(
                "t.txt:1:1: label `{label}` in host name is 64 characters long (the limit is 63)"
            )
        );
        // 26 labels of 9 characters and 25 dots: 259 characters.
        let name = ["abcdefghi"; 26].join(".");
        assert_eq!(
            err_line(&name),
            "t.txt:1:1: host name is 259 characters long (the limit is 253)"
        );
    }

    #[test]
    fn invalid_url_character() {
        assert_eq!(
            err_line("  http://h/a b\u{7f}c"),
            "t.txt:1:15: control character U+007F is not allowed in a targets file"
        );
        // What HTTP only forbids raw is sent percent-encoded.
        let t = one(r#"http://h/a<b"c\é?q="x""#);
        assert_eq!(
            http(&t).uri.to_string(),
            "http://h/a%3Cb%22c%5C%C3%A9?q=%22x%22"
        );
        assert_eq!(t.text, r#"http://h/a<b"c\é?q="x""#);
    }

    #[test]
    fn bad_status_sets() {
        for (value, message) in [
            (
                "299-200",
                "status range 299-200 is reversed (write the low code first)",
            ),
            ("99", "status 99 is out of range (100-599)"),
            ("200-600", "status 600 is out of range (100-599)"),
            ("2xx", "invalid status `2xx` in expect (like 200-299,301)"),
            ("200,,300", "invalid status `` in expect (like 200-299,301)"),
        ] {
            assert_eq!(
                err_line(&format!("https://h/ expect={value}")),
                format!("t.txt:1:12: {message}"),
                "{value}"
            );
        }
    }

    #[test]
    fn status_set_contains_and_display() {
        let set = StatusSet(vec![(200, 299), (301, 301), (404, 404)]);
        assert!(set.contains(200) && set.contains(299) && set.contains(301) && set.contains(404));
        assert!(!set.contains(199) && !set.contains(300) && !set.contains(500));
        assert_eq!(set.to_string(), "200-299,301,404");
        assert_eq!(StatusSet::default_success().to_string(), "200-299");
        assert_eq!(http(&one("http://h/ expect=204")).expect.to_string(), "204");
    }

    #[test]
    fn invalid_regex() {
        assert_eq!(
            err_line("https://h/ matches=(unclosed"),
            "t.txt:1:12: invalid regex in `matches`: unclosed group"
        );
    }

    #[test]
    fn unterminated_quote() {
        assert_eq!(
            err_line(r#"https://h/ contains="never closed \" here"#),
            "t.txt:1:21: unterminated quote (no closing `\"` on this line)"
        );
        assert_eq!(
            err_line(r#"https://h/ contains="a"b"#),
            "t.txt:1:24: unexpected `b` after the closing quote (separate options with spaces)"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // `é` is two bytes; the bad option still starts at column 23.
        assert_eq!(
            err_line("https://h/ contains=é bogus"),
            "t.txt:1:23: unknown option `bogus`; known options: expect, contains, matches, \
             timeout, ip, all_addresses, insecure, ca, redirects, no_follow, method, header, body, body_file, \
             auth_file, cert_expiry_warn, count, interval"
        );
    }

    #[test]
    fn non_utf8_line_is_reported_and_others_still_checked() {
        let input = b"good.example\nhttps://h/ contains=\"caf\xE9\"\nftp://x\nalso.good\n";
        assert_eq!(
            errors(input),
            "t.txt:2:25: invalid UTF-8\n\
             t.txt:3:1: unsupported scheme `ftp://`; supported: http://, https://, tcp://, \
             icmp://, or host:port (tcp) and a bare host (icmp)"
        );
    }

    #[test]
    fn empty_and_comment_only_files() {
        let message = "t.txt: no targets (the file is empty or holds only comments)";
        assert_eq!(errors(b""), message);
        assert_eq!(errors(b"\n\r\n   \n"), message);
        assert_eq!(errors(b"# only\n  # comments\r\n"), message);
        assert_eq!(errors(b"\xEF\xBB\xBF"), message);
        let Err(e) = parse_targets("-", b"") else {
            panic!("expected an error");
        };
        assert_eq!(e.errors[0].line, 0);
        assert_eq!(
            e.to_string(),
            "<stdin>: no targets (the file is empty or holds only comments)"
        );
    }

    #[test]
    fn parse_target_for_the_command_line() {
        let t = parse_target("https://example.com/ expect=200").expect("valid");
        assert_eq!((t.kind, t.line, t.port), (Kind::Http, 1, 443));
        assert_eq!(http(&t).expect, StatusSet(vec![(200, 200)]));
        let e = parse_target("tcp://h").expect_err("no port");
        assert_eq!(
            e.to_string(),
            "<argument>:1:1: a tcp target needs a port (tcp://host:port)"
        );
        let e = parse_target("  ").expect_err("empty");
        assert_eq!(e.to_string(), "<argument>:1:1: no target given");
    }

    #[test]
    fn parse_duration_cases() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
        assert_eq!(
            parse_duration("0s"),
            Err("duration `0s` must be greater than zero".to_owned())
        );
        assert_eq!(
            parse_duration("0.0s"),
            Err("duration `0.0s` must be greater than zero".to_owned())
        );
        assert_eq!(
            parse_duration("abc"),
            Err(
                "invalid duration `abc`: expected number at 0 (examples: 2s, 500ms, 1m30s, 1.5s)"
                    .to_owned()
            )
        );
        assert_eq!(
            parse_duration(""),
            Err("empty duration (examples: 2s, 500ms, 1m30s, 1.5s)".to_owned())
        );
        assert_eq!(
            parse_duration("1.0000000001s"),
            Err("invalid duration `1.0000000001s`: at most 9 decimal places (1ns)".to_owned())
        );
    }

    #[test]
    fn durations_have_a_maximum() {
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("86400.0s"), Ok(MAX_DURATION));
        for huge in [
            "24h 1ns",
            "86400.000000001s",
            "18446744073709551615s",
            "18446744073709551615.5s",
            "1000000000years",
        ] {
            let e = parse_duration(huge).unwrap_err();
            assert!(
                e.contains("longer than the maximum, 24h") || e.contains("too large"),
                "{huge}: {e}"
            );
        }
        assert_eq!(
            err_line("tcp://h:1 timeout=18446744073709551615s"),
            "t.txt:1:11: option `timeout`: duration `18446744073709551615s` is longer than \
             the maximum, 24h"
        );
    }

    #[test]
    fn control_characters_are_refused_and_escaped() {
        assert_eq!(
            err_line("http://h/a\u{1b}[2Jb"),
            "t.txt:1:11: control character U+001B is not allowed in a targets file"
        );
        assert_eq!(
            err_line("h:1 contains=\"a\0b\""),
            "t.txt:1:16: control character U+0000 is not allowed in a targets file"
        );
        // Tab is a field separator, not an error.
        assert_eq!(
            one("tcp://h:1\ttimeout=2s").timeout,
            Some(Duration::from_secs(2))
        );
        // Whatever reaches a message is escaped when printed.
        let e = TargetError {
            file: "evil\u{1b}]0;x\u{7}.txt".to_owned(),
            line: 1,
            column: 1,
            message: "bad `\u{1b}[31m`".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "evil\\u{1b}]0;x\\u{7}.txt:1:1: bad `\\u{1b}[31m`"
        );
    }

    #[test]
    fn only_the_first_errors_are_kept_but_all_are_counted() {
        let input = "bogus://x\n".repeat(200_000);
        let Err(e) = parse_targets("t.txt", input.as_bytes()) else {
            panic!("expected errors");
        };
        assert_eq!(e.total, 200_000);
        assert_eq!(e.errors.len(), TargetErrors::KEPT);
        assert_eq!(e.errors[19].line, 20);
        let text = e.to_string();
        assert_eq!(text.lines().count(), TargetErrors::KEPT + 1);
        assert!(
            text.ends_with("... and 199980 more error(s) not shown (200000 in all)"),
            "{text}"
        );
    }
}
