//! The HTTP(S) side of a session: the request bytes, TLS records in and
//! out (rustls), the response head and body (ureq-proto), redirects and
//! the body cap. [`Session`](super::Session) owns one per http target and
//! feeds it what the model read.

use std::io::{self, Read as _};
use std::sync::Arc;
use std::time::Instant;

use http::Uri;
use rustls::ClientConnection;
use ureq_proto::BodyMode;
use ureq_proto::client::{
    Call, RecvBodyResult, RecvResponseResult, SendRequestResult,
    state::{RecvBody, RecvResponse},
};

use super::uri::{is_redirect, join_location};
use super::{Checks, MAX_RESPONSE_HEAD, PhaseTimes, REFUSED_HOP, USER_AGENT, add};
use crate::certs::CertDetails;
use crate::redact::redact_password;
use crate::redirect::RedirectPolicy;
use crate::request::RequestParts;
use crate::result::{ErrorKind, ProbeError};

/// The HTTP(S) side of a session.
pub(super) struct HttpExchange {
    pub(super) uri: Uri,
    /// The target's own URI: the redirect policy always lets a hop stay on
    /// its host and port, wherever earlier hops went.
    pub(super) origin: Uri,
    /// Where redirects may lead (serve narrows it; scan follows any).
    pub(super) redirect_policy: RedirectPolicy,
    pub(super) tls_config: Arc<rustls::ClientConfig>,
    /// The status and content checks (shared with the native stacks).
    pub(super) checks: Checks,
    pub(super) body_cap: usize,
    /// Body bytes are kept only when a content check needs them.
    pub(super) keep_body: bool,
    pub(super) redirects: u32,
    /// What the request carries beyond the URI (method, headers, body,
    /// credentials); the method and body change on a 301/302/303. An
    /// error when a file the target names was not read.
    pub(super) request: Result<RequestParts, String>,
    /// TLS state of the current connection (https only).
    pub(super) tls: Option<Box<ClientConnection>>,
    pub(super) handshake_done: bool,
    pub(super) call: CallState,
    pub(super) head: Vec<u8>,
    pub(super) first_byte: bool,
    pub(super) status: Option<u16>,
    pub(super) version: Option<String>,
    pub(super) body: Vec<u8>,
    /// Body input the decoder could not use yet: ureq-proto's dechunker does
    /// not buffer a partial chunk-size line or CRLF, it answers `(0, 0)` and
    /// wants those bytes again together with the next read.
    pub(super) body_pending: Vec<u8>,
    pub(super) body_bytes: u64,
    pub(super) truncated: bool,
    pub(super) tls_version: Option<String>,
    /// The certificates of the current connection, as the handshake saw
    /// them (https only; kept when verification failed).
    pub(super) cert: Option<CertDetails>,
}

pub(super) enum CallState {
    Idle,
    RecvHead(Call<RecvResponse>),
    RecvBody(Call<RecvBody>),
}

/// Outcome of feeding bytes to the HTTP layer.
pub(super) enum Fed {
    /// Need more bytes.
    More,
    /// The exchange is over (success or check failure decided at finish).
    Finished,
    /// Follow a redirect to this URI.
    Redirect(Uri),
    /// The exchange failed.
    Failed(ProbeError),
}

/// Move every pending TLS record into `out`.
pub(super) fn flush_tls(conn: &mut ClientConnection, out: &mut Vec<u8>) -> io::Result<()> {
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
    pub(super) fn build_request(&mut self) -> Result<Vec<u8>, String> {
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
    pub(super) fn input(
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

    pub(super) fn http_input(&mut self, data: &[u8]) -> Fed {
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
    pub(super) fn take_body(&mut self, bytes: &[u8]) -> bool {
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

    pub(super) fn http_eof(&mut self) -> Fed {
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
    pub(super) fn check(&self) -> Result<(), ProbeError> {
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
