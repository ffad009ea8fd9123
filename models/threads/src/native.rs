//! `--stack native` on blocking threads (and rayon, which runs this file
//! unchanged): HTTP(S) with ureq 3, the blocking client a threads
//! programmer reaches for. TCP and ICMP stay on the core's session: a
//! blocking `TcpStream::connect_timeout` is what the core's driver already
//! does, and the std ecosystem has no maintained blocking ping crate
//! (surge-ping is tokio-only, and `ping` crates shell out or are abandoned).
//!
//! What ureq is asked to do, so the exchange matches the core's: no
//! connection reuse (`max_idle_connections(0)` and `Connection: close`),
//! no proxy, no `Accept-Encoding`, status codes returned rather than made
//! errors, one absolute deadline per probe (`timeout_global`, set to what
//! is left of it), and redirects followed here with the core's
//! [`join_location`] and the target's `redirects=` limit.
//!
//! What ureq cannot do, and what that changes (`tests/conformance/native.rs`
//! lists each case):
//!
//! - It takes no rustls config, only its own [`TlsConfig`]. `ca=FILE` becomes
//!   "trust only this bundle" (ureq's roots are the bundle *or* the webpki
//!   roots, never both, where the core trusts both); `insecure` is ureq's
//!   `disable_verification`.
//! - It owns its sockets, so the watchdog that shuts down in-flight sockets
//!   at the end of the grace period (shutdown.rs) cannot reach them: a ureq
//!   probe still running then ends at its own deadline, and is reported
//!   `cancelled` (the report's SIGINT figures show what that costs).

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Arc;
use std::time::Instant;

use pulse_core::native::{Response, chain_message, http_outcome, kind_in_chain, timed_out};
use pulse_core::plan::Plan;
use pulse_core::redact::redact_password;
use pulse_core::request::RequestParts;
use pulse_core::result::{ErrorKind, Kind, Outcome};
use pulse_core::session::{Checks, USER_AGENT, classify_io, is_redirect, join_location};
use pulse_core::target::HttpTarget;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::shutdown::Stop;

/// The ureq agents one scan shares, one per distinct TLS setting
/// (verified, each `ca=` bundle, insecure), and which target uses which.
pub struct Native {
    agents: Vec<Option<ureq::Agent>>,
}

impl Native {
    /// The agents the plan's http targets need. A `ca=` bundle that ureq
    /// cannot read is an error here (the core read it already, so this is
    /// a bundle rustls took and ureq did not).
    pub fn open(plan: &Plan) -> Result<Native, pulse_core::model::SetupError> {
        let mut by_setting: HashMap<(bool, Option<*const u8>), ureq::Agent> = HashMap::new();
        let mut agents = Vec::with_capacity(plan.len());
        for (index, t) in plan.targets.iter().enumerate() {
            let Some(h) = &t.http else {
                agents.push(None);
                continue;
            };
            let pem = plan.ca_pem(index);
            let key = (h.insecure, pem.map(|p| p.as_ptr()));
            let agent = match by_setting.get(&key) {
                Some(a) => a.clone(),
                None => {
                    let a = agent(h.insecure, pem.map(|p| &p[..])).map_err(|message| {
                        pulse_core::model::SetupError {
                            message: format!("line {}: {message}", t.line),
                        }
                    })?;
                    by_setting.insert(key, a.clone());
                    a
                }
            };
            agents.push(Some(agent));
        }
        Ok(Native { agents })
    }

    /// Probe target `index` with ureq if it is an http target; `None` for
    /// the others, which the caller runs on the core's session.
    pub fn probe(&self, plan: &Plan, index: usize, start: Instant, stop: &Stop) -> Option<Outcome> {
        let t = &plan.targets[index];
        let (Kind::Http, Some(h), Some(agent)) = (t.kind, &t.http, &self.agents[index]) else {
            return None;
        };
        plan.start_native(index);
        let limit = plan.timeout(index);
        let deadline = pulse_core::time::deadline(start, limit);
        let end = exchange(agent, h, deadline, plan.options.body_cap);
        let duration = start.elapsed();
        // As the core's blocking driver does: once the grace period is
        // over, whatever the call returned, the probe was cancelled.
        if stop.is_drained() {
            return Some(Outcome::failed(
                ErrorKind::Cancelled,
                stop.shutdown().cancel_message(),
                duration,
            ));
        }
        Some(match end {
            Ok((response, address)) => http_outcome(h, response, address, duration),
            Err(Failure::Timeout) => timed_out(limit, duration),
            Err(Failure::Failed(kind, message)) => Outcome::failed(kind, message, duration),
        })
    }
}

/// A ureq agent that does what the core's session does (module docs).
fn agent(insecure: bool, ca_pem: Option<&[u8]>) -> Result<ureq::Agent, String> {
    let mut tls = TlsConfig::builder().disable_verification(insecure);
    if let Some(pem) = ca_pem {
        let certs = ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<Certificate<'static>>, _>>()
            .map_err(|e| format!("ca=: ureq cannot read the bundle: {e}"))?;
        tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .user_agent(USER_AGENT)
        .accept("*/*")
        .accept_encoding("")
        .proxy(None)
        .tls_config(tls.build())
        .build()
        .into())
}

enum Failure {
    Timeout,
    Failed(ErrorKind, String),
}

/// One request of the exchange: the hop's method, the target's headers
/// and credentials, `Connection: close`, and the body for the methods that
/// carry one, within `left` of the probe's deadline.
fn send(
    agent: &ureq::Agent,
    uri: &ureq::http::Uri,
    parts: &RequestParts,
    left: std::time::Duration,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    let mut builder = ureq::http::Request::builder()
        .method(parts.method.clone())
        .uri(uri.clone())
        .header("connection", "close");
    if let Some(headers) = builder.headers_mut() {
        for (name, _) in &parts.headers {
            headers.remove(name);
        }
        for (name, value) in &parts.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(v) = &parts.authorization {
            headers.insert(ureq::http::header::AUTHORIZATION, v.clone());
        }
    }
    fn run<S: ureq::AsSendBody>(
        agent: &ureq::Agent,
        request: ureq::http::Request<S>,
        left: std::time::Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let request = agent
            .configure_request(request)
            .timeout_global(Some(left))
            .build();
        agent.run(request)
    }
    if parts.sends_body() {
        run(agent, builder.body(&parts.body[..])?, left)
    } else {
        run(agent, builder.body(())?, left)
    }
}

/// One request per hop until a response that is not a followed redirect,
/// then its body up to the cap; every call gets what is left of `deadline`.
fn exchange(
    agent: &ureq::Agent,
    h: &HttpTarget,
    deadline: Instant,
    body_cap: usize,
) -> Result<(Response, Option<String>), Failure> {
    let checks = Checks::of(h);
    let mut parts = RequestParts::of(h).map_err(|e| {
        Failure::Failed(
            ErrorKind::Protocol,
            format!("cannot build the request: {e}"),
        )
    })?;
    let mut uri = h.uri.clone();
    let mut redirects = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        let response = send(agent, &uri, &parts, left).map_err(|e| from_ureq(&e))?;
        let status = response.status().as_u16();
        if is_redirect(status) && redirects < checks.max_redirects {
            let location = response
                .headers()
                .get(ureq::http::header::LOCATION)
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
            if let Some(loc) = location {
                uri = join_location(&uri, loc).ok_or_else(|| {
                    Failure::Failed(
                        ErrorKind::Protocol,
                        format!(
                            "redirect to an unusable location {:?}",
                            redact_password(loc)
                        ),
                    )
                })?;
                redirects += 1;
                parts.follow(status);
                continue;
            }
        }
        let mut out = Response {
            status,
            version: format!("{:?}", response.version()),
            redirects,
            final_url: (redirects > 0).then(|| redact_password(&uri.to_string()).into_owned()),
            ..Response::default()
        };
        let keep = checks.keeps_body();
        let mut reader = response.into_body().into_reader();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(from_io(&e)),
            };
            let room = body_cap.saturating_sub(out.body_bytes as usize);
            let take = n.min(room);
            if keep {
                out.body.extend_from_slice(&buf[..take]);
            }
            out.body_bytes += take as u64;
            if n > room {
                out.truncated = true;
                break;
            }
        }
        // ureq does not say which address it connected to.
        return Ok((out, None));
    }
}

/// A body read error: ureq hands its own errors back wrapped in io::Error.
fn from_io(e: &std::io::Error) -> Failure {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    {
        Some(inner) => from_ureq(inner),
        None => {
            let (kind, what) = classify_io(e);
            Failure::Failed(kind, format!("reading the body: {what}"))
        }
    }
}

/// A ureq error as pulse's kind (module docs; the conformance suite lists
/// what still differs).
fn from_ureq(e: &ureq::Error) -> Failure {
    use ureq::Error as E;
    let message = chain_message(e);
    let kind = match e {
        E::Timeout(_) => return Failure::Timeout,
        E::HostNotFound => ErrorKind::Dns,
        // std's own wording for a failed getaddrinfo (ureq resolves with
        // `ToSocketAddrs`, whose error has no kind of its own).
        E::Io(io)
            if io
                .to_string()
                .starts_with("failed to lookup address information") =>
        {
            ErrorKind::Dns
        }
        E::Io(io) => kind_in_chain(io).unwrap_or_else(|| classify_io(io).0),
        E::Protocol(_) | E::LargeResponseHeader(..) | E::BadUri(_) | E::Http(_) => {
            ErrorKind::Protocol
        }
        E::Tls(_) | E::Pem(_) | E::Rustls(_) | E::TlsRequired => ErrorKind::Tls,
        E::ConnectionFailed => ErrorKind::Refused,
        E::BodyStalled => ErrorKind::Timeout,
        other => kind_in_chain(other).unwrap_or(ErrorKind::Io),
    };
    Failure::Failed(kind, message)
}
