//! The exporter's HTTP server: HTTP/1.1 on plain std threads, small and
//! bounded, separate from the model that runs the probes.
//!
//! Why its own threads and not the chosen model's runtime: the exporter must
//! answer `/metrics` while a round of thousands of probes is in flight, and
//! the comparison must not change with the HTTP side. On its own threads the
//! server is the same code for all five models, and a scrape never waits
//! behind probes in a run queue (the kernel schedules these threads like
//! any other). One thread per connection is plenty: a few Prometheus
//! servers keep a connection each, and [`MAX_CONNECTIONS`] caps the rest.
//!
//! Requests are parsed with `httparse` (already in the build through
//! ureq-proto) and bounded everywhere a client could make us hold memory or
//! a thread: the request head ([`MAX_HEAD`] bytes, [`MAX_HEADERS`] headers),
//! the time to send it ([`HEAD_TIMEOUT`]), idle keep-alive
//! ([`IDLE_TIMEOUT`]), writes ([`WRITE_TIMEOUT`]) and connections. Bodies are
//! refused: every endpoint is a GET, but for the bodiless POSTs of
//! [`POST_PATHS`].
//!
//! # The connection cap cannot lock out a scrape
//!
//! At most [`MAX_CONNECTIONS`] connections are served at once. When one more
//! arrives at the cap, the connection that has waited longest for its next
//! request (an idle keep-alive connection, or a slowloris client that has
//! been dribbling a head since it connected) is closed to make room, and
//! only when every connection is busy answering a request is the newcomer
//! answered 503. Before this, 64 idle keep-alive connections, or 64 clients
//! each sending a head one byte at a time, made every scrape a 503 for as
//! long as they were held. A newcomer is always the youngest waiter, so a
//! scraper's request is answered however many idle or slow clients there
//! are; closing an idle keep-alive connection is what servers do anyway,
//! and Prometheus (Go's HTTP client) retries a GET on a fresh connection
//! when a kept-alive one was closed before it answered.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::disconnect::Watch;

/// Bytes of request line plus headers a request may have (nginx's default
/// `client_header_buffer_size` is 1 KiB, growing to 8 KiB).
pub(crate) const MAX_HEAD: usize = 8 * 1024;
/// Headers a request may have.
pub(crate) const MAX_HEADERS: usize = 32;
/// Connections served at once. One more evicts the connection that has
/// waited longest for a request, or, if all are busy answering, is
/// answered 503 and closed. 64 threads is little for a machine and far more
/// than the few Prometheus servers that scrape an exporter.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long a client has to send a whole request head once it started.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may sit idle between requests. Longer
/// than Prometheus's default scrape interval (1 m), so a scraper keeps its
/// connection.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long writing a response may block on a client that does not read.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The only paths that take POST (with no body: `/-/reload` is an action,
/// not an upload). POST anywhere else is answered 405 here, before a
/// handler sees it, as bodies are refused here.
pub(crate) const POST_PATHS: &[&str] = &["/-/reload"];

/// A parsed request: what the handlers need of it.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `HEAD`, or `POST` on one of [`POST_PATHS`] (others are
    /// answered 405 before a handler sees them).
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
    /// The raw query string, without `?`.
    pub(crate) query: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The first header with this name (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter with this name, percent-decoded (`+` is a
    /// space, as in a form).
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

/// A response to write.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    /// Extra headers (e.g. `Allow`).
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Response {
    /// A plain-text response.
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
            headers: Vec::new(),
        }
    }
}

/// What the server calls for every request.
pub(crate) type Handler = Arc<dyn Fn(&Request, &Client<'_>) -> Response + Send + Sync>;

/// The connection a request came on, as far as a handler may use it: to
/// learn that the client has gone, not to read or write.
pub(crate) struct Client<'a> {
    stream: &'a TcpStream,
}

impl Client<'_> {
    /// Call `gone` at once if the client goes away before the returned
    /// watch is finished (see [`super::disconnect`]).
    pub(crate) fn watch(&self, gone: impl FnOnce() + Send + 'static) -> io::Result<Watch> {
        Watch::start(self.stream, gone)
    }
}

/// The connection figures `/metrics` shows, so an operator can see a
/// server under connection pressure before a scrape ever fails.
#[derive(Default)]
pub(crate) struct Stats {
    /// Connections open now.
    pub(crate) open: AtomicU64,
    /// Waiting connections closed at the cap to make room for a newcomer.
    pub(crate) evicted: AtomicU64,
    /// Newcomers answered 503 because every connection was busy.
    pub(crate) refused: AtomicU64,
}

/// Serve `listener` on a thread of its own, one more thread per
/// connection; runs until the process exits.
pub(crate) fn spawn(listener: TcpListener, handler: Handler, stats: Arc<Stats>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("pulse-http".into())
        .spawn(move || accept_loop(&listener, &handler, stats))?;
    Ok(())
}

fn accept_loop(listener: &TcpListener, handler: &Handler, stats: Arc<Stats>) {
    let conns = Arc::new(Conns {
        slots: Mutex::default(),
        next: AtomicU64::new(0),
        stats,
    });
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE) or a connection reset before
                // accept: not fatal. Pause so a persistent error does not spin.
                tracing::warn!("accepting a connection: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(id) = conns.admit(&stream) else {
            conns.stats.refused.fetch_add(1, Ordering::Relaxed);
            refuse_busy(stream);
            continue;
        };
        let guard = Registered {
            conns: conns.clone(),
            id,
        };
        let handler = handler.clone();
        let spawned = std::thread::Builder::new()
            .name("pulse-http-conn".into())
            .spawn(move || {
                connection(stream, &handler, &guard);
            });
        if let Err(e) = spawned {
            // The guard went down with the closure: the slot is freed.
            tracing::warn!("cannot start a thread for a connection: {e}");
        }
    }
}

/// The open connections, by id: the cap, and whom to evict at it.
struct Conns {
    slots: Mutex<BTreeMap<u64, Slot>>,
    /// The id for the next connection (ids are never reused, so a late
    /// `release` of an evicted connection cannot free a newer one's slot).
    next: AtomicU64,
    /// What `/metrics` reports of them.
    stats: Arc<Stats>,
}

/// One open connection.
struct Slot {
    /// A second handle on the socket, to shut it down on eviction: that
    /// ends the blocked read in the connection's thread, which then exits.
    stream: TcpStream,
    /// Since when the connection has been waiting for a request (accepted,
    /// or its last response written); `None` while it is answering one.
    /// Only waiting connections are evicted, the longest-waiting first.
    waiting_since: Option<Instant>,
}

impl Conns {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register a new connection, evicting the longest-waiting one at the
    /// cap; `None` when all [`MAX_CONNECTIONS`] are busy answering.
    fn admit(&self, stream: &TcpStream) -> Option<u64> {
        let handle = stream.try_clone().ok()?;
        let mut slots = self.lock();
        if slots.len() >= MAX_CONNECTIONS {
            let (_, victim) = slots
                .iter()
                .filter_map(|(id, s)| s.waiting_since.map(|t| (t, *id)))
                .min()?;
            if let Some(evicted) = slots.remove(&victim) {
                let _ = evicted.stream.shutdown(Shutdown::Both);
                self.stats.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        slots.insert(
            id,
            Slot {
                stream: handle,
                waiting_since: Some(Instant::now()),
            },
        );
        self.stats.open.store(slots.len() as u64, Ordering::Relaxed);
        Some(id)
    }

    /// Mark connection `id` as answering a request (`busy`) or waiting
    /// for the next one. An evicted connection has no slot any more.
    fn set_busy(&self, id: u64, busy: bool) {
        if let Some(slot) = self.lock().get_mut(&id) {
            slot.waiting_since = (!busy).then(Instant::now);
        }
    }
}

/// Frees the connection's slot when its thread ends.
struct Registered {
    conns: Arc<Conns>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut slots = self.conns.lock();
        slots.remove(&self.id);
        self.conns
            .stats
            .open
            .store(slots.len() as u64, Ordering::Relaxed);
    }
}

/// Over the connection limit: say so, briefly, and close.
fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let mut r = Response::text(503, "too many connections\n");
    r.headers.push(("Retry-After", "1".into()));
    let _ = write_response(&mut stream, &r, false, false);
}

/// Why reading a request head stopped.
enum Head {
    /// A complete head of this many bytes is at the front of the buffer.
    Complete(usize),
    /// The client closed (or went idle) between requests: nothing to answer.
    Closed,
    /// The client sent part of a head and then stalled.
    TimedOut,
    /// More than [`MAX_HEAD`] bytes without the end of the head.
    TooLarge,
}

/// Serve requests on one connection until either side closes it (or the
/// connection is evicted at the cap).
fn connection(mut stream: TcpStream, handler: &Handler, slot: &Registered) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    loop {
        let len = match read_head(&mut stream, &mut buf) {
            Ok(Head::Complete(len)) => len,
            Ok(Head::Closed) | Err(_) => return,
            Ok(Head::TimedOut) => {
                let _ = write_response(
                    &mut stream,
                    &Response::text(408, "request timeout\n"),
                    false,
                    false,
                );
                return;
            }
            Ok(Head::TooLarge) => {
                let body = format!("request head larger than {MAX_HEAD} bytes\n");
                let _ = write_response(&mut stream, &Response::text(431, body), false, false);
                return;
            }
        };
        let parsed = parse(&buf[..len]);
        buf.drain(..len);
        let (request, keep_alive) = match parsed {
            Ok(v) => v,
            Err(response) => {
                let _ = write_response(&mut stream, &response, false, false);
                return;
            }
        };
        let head_only = request.method == "HEAD";
        slot.conns.set_busy(slot.id, true);
        let started = Instant::now();
        let response = handler(&request, &Client { stream: &stream });
        // -vv: each request answered (the query may name a /probe target;
        // it is the scraper's own, not a secret of the exporter's).
        tracing::debug!(
            "{} {}{}{} {} in {:.1}ms",
            request.method,
            request.path,
            if request.query.is_empty() { "" } else { "?" },
            request.query,
            response.status,
            started.elapsed().as_secs_f64() * 1e3
        );
        if write_response(&mut stream, &response, keep_alive, head_only).is_err() || !keep_alive {
            return;
        }
        slot.conns.set_busy(slot.id, false);
    }
}

/// Read until `buf` holds a whole request head (it may already), within the
/// time and size bounds.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Head> {
    // The head's clock starts with its first byte; before that the
    // connection is merely idle.
    let mut deadline = (!buf.is_empty()).then(|| Instant::now() + HEAD_TIMEOUT);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = find_head_end(buf) {
            return Ok(Head::Complete(end));
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        let wait = match deadline {
            None => IDLE_TIMEOUT,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(w) if !w.is_zero() => w,
                _ => return Ok(Head::TimedOut),
            },
        };
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Ok(if buf.is_empty() {
                    Head::Closed
                } else {
                    Head::TimedOut
                });
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(if buf.is_empty() {
                    Head::Closed
                } else {
                    Head::TimedOut
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The length of the head (through its blank line), if `buf` holds it all.
///
/// A line may end in CRLF or in a bare LF, as RFC 9112 section 2.2 lets a
/// server accept (and httparse does): a client that sends bare LFs (`nc`,
/// a hand-written script) is answered at once rather than left waiting for
/// a CRLF CRLF that never comes until the head timeout.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n') {
        let after = from + i + 1;
        match &buf[after..] {
            [b'\n', ..] => return Some(after + 1),
            [b'\r', b'\n', ..] => return Some(after + 2),
            _ => from = after,
        }
    }
    None
}

/// Parse a complete head; an error is the response to send before closing.
fn parse(head: &[u8]) -> Result<(Request, bool), Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Response::text(400, "incomplete request\n")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::text(
                431,
                format!("more than {MAX_HEADERS} headers\n"),
            ));
        }
        Err(e) => return Err(Response::text(400, format!("bad request: {e}\n"))),
    }
    let method = req.method.unwrap_or_default().to_owned();
    let target = req.path.unwrap_or_default();
    let version = req.version.unwrap_or(1);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
    };
    let takes_post = POST_PATHS.contains(&request.path.as_str());
    let allowed = match request.method.as_str() {
        "GET" | "HEAD" => true,
        "POST" => takes_post,
        _ => false,
    };
    if !allowed {
        let mut r = Response::text(
            405,
            format!(
                "method {} not allowed on {}\n",
                request.method, request.path
            ),
        );
        // The handler answers GET on a POST path with its own 405.
        let allow = if takes_post { "POST" } else { "GET, HEAD" };
        r.headers.push(("Allow", allow.into()));
        return Err(r);
    }
    // No endpoint takes a body, and reading one would be one more thing to
    // bound: refuse it rather than leave it in the stream.
    let has_body = request.header("transfer-encoding").is_some()
        || request
            .header("content-length")
            .is_some_and(|v| v.trim() != "0");
    if has_body {
        return Err(Response::text(413, "request bodies are not accepted\n"));
    }
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let keep_alive = if version == 0 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    Ok((request, keep_alive))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_response(
    stream: &mut TcpStream,
    r: &Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    )
    .into_bytes();
    for (name, value) in &r.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&r.body);
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// `%XX` escapes and `+` decoded; a malformed escape is kept as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) << 4 | hex(bytes[i + 2]));
                i += 3;
                continue;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(
            percent_decode("http%3A%2F%2Fx%2Fy%3Fq%3D1"),
            "http://x/y?q=1"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(
            percent_decode("%+1"),
            "% 1",
            "not a hex escape: kept, and + is a space"
        );
        assert_eq!(percent_decode("%e2%9c%93"), "✓");
    }

    #[test]
    fn params_and_headers() {
        let (r, keep) = parse(
            b"GET /probe?x=1&target=tcp%3A%2F%2F127.0.0.1%3A22 HTTP/1.1\r\nHost: a\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
        )
        .unwrap();
        assert!(keep);
        assert_eq!(r.path, "/probe");
        assert_eq!(r.param("target").as_deref(), Some("tcp://127.0.0.1:22"));
        assert_eq!(r.param("missing"), None);
        assert_eq!(r.header("x-prometheus-scrape-timeout-seconds"), Some("10"));
    }

    #[test]
    fn heads_end_with_crlf_or_bare_lf() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest"),
            Some(27)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nHost: a\n\nrest"), Some(24));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nHost: a\n\r\n"), Some(25));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n"), None);
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nHost: a\r"), None);
        let (r, _) = parse(b"GET /healthz HTTP/1.1\nHost: a\n\n").unwrap();
        assert_eq!(r.path, "/healthz");
    }

    #[test]
    fn refusals() {
        let status = |head: &[u8]| parse(head).err().map(|r| r.status);
        assert_eq!(status(b"POST / HTTP/1.1\r\n\r\n"), Some(405));
        assert_eq!(status(b"DELETE /-/reload HTTP/1.1\r\n\r\n"), Some(405));
        assert_eq!(status(b"POST /-/reload HTTP/1.1\r\n\r\n"), None);
        assert_eq!(
            status(b"POST /-/reload HTTP/1.1\r\nContent-Length: 3\r\n\r\n"),
            Some(413),
            "a POST path still takes no body"
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Some(413)
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(413)
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), None);
        assert_eq!(status(b"GARBAGE\r\n\r\n"), Some(400));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        assert_eq!(
            status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Some(431)
        );
        let (_, keep) = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!keep, "HTTP/1.0 closes unless asked not to");
        let (_, keep) = parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!keep);
    }
}
