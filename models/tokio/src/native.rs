//! `--stack native` on tokio: the probe written with the crates a tokio
//! programmer reaches for. reqwest for HTTP(S), surge-ping for ICMP,
//! tokio's own `TcpStream::connect` for TCP.
//!
//! The model around the probe does not change: the same worker tasks pull
//! the same targets (scan.rs), under the same absolute deadline and the
//! same shutdown race ([`with_deadline`]). What changes is who does the
//! exchange. Each client reports failures its own way; this module maps
//! them onto pulse's error kinds (see `pulse_core::native` for the shared
//! part, and `tests/conformance/native.rs` for every case that still
//! classifies differently, and why).
//!
//! What reqwest is asked to do, so the exchange matches the core's:
//! no connection reuse (`pool_max_idle_per_host(0)` and `Connection:
//! close`, as the core sends), no retries, no proxies, no decompression,
//! HTTP/1.1 only, the core's own rustls config per target (so `ca=` and
//! `insecure` mean the same), and redirects followed here, one hop at a
//! time, with the core's [`join_location`] and the target's `redirects=`
//! limit, so the hop count and the final URL are known.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use pulse_core::icmp::{Families, OpenError};
use pulse_core::model::SetupError;
use pulse_core::native::{Response, chain_message, http_outcome, kind_in_chain, timed_out};
use pulse_core::plan::Plan;
use pulse_core::redact::redact_password;
use pulse_core::request::RequestParts;
use pulse_core::result::{ErrorKind, IcmpDetails, Kind, Outcome, Phases, millis};
use pulse_core::session::{Checks, USER_AGENT, classify_io, is_redirect, join_location};
use pulse_core::target::Target;
use pulse_core::time::deadline;
use surge_ping::{ICMP, PingIdentifier, PingSequence, SurgeError};

use crate::shutdown::Stop;

/// The clients one scan shares: a reqwest `Client` per distinct TLS config
/// (verified, each `ca=` bundle, insecure), a surge-ping client per address
/// family in use.
pub(crate) struct Native {
    /// The client for each target index (http targets only).
    http: Vec<Option<reqwest::Client>>,
    /// A surge-ping client per address family in use, or why the family
    /// was denied (its echoes then fail as `permission`, as the core's do).
    ping: Families<surge_ping::Client>,
    /// The next echo sequence number: surge-ping matches replies by
    /// (host, identifier, sequence), so two pings in flight to one host
    /// need two numbers.
    seq: AtomicU16,
    ident: u16,
}

impl Native {
    /// Build the clients the plan needs. Called inside the runtime:
    /// surge-ping spawns its reader task when its client is made.
    pub(crate) fn open(plan: &Plan) -> Result<Native, SetupError> {
        let mut by_config: HashMap<*const rustls::ClientConfig, reqwest::Client> = HashMap::new();
        let mut http = Vec::with_capacity(plan.len());
        for index in 0..plan.len() {
            let Some(config) = plan.tls_config(index) else {
                http.push(None);
                continue;
            };
            let client = match by_config.get(&Arc::as_ptr(config)) {
                Some(c) => c.clone(),
                None => {
                    let c = http_client(config)?;
                    by_config.insert(Arc::as_ptr(config), c.clone());
                    c
                }
            };
            http.push(Some(client));
        }
        let mut ping = Families::default();
        for v6 in [false, true] {
            if plan.needs_icmp(v6) {
                ping.keep(v6, ping_client(v6))?;
            }
        }
        Ok(Native {
            http,
            ping,
            seq: AtomicU16::new(0),
            ident: plan.icmp_ident,
        })
    }

    /// Probe target `index`, started at `start`, under its deadline and
    /// the shutdown race.
    pub(crate) async fn probe(
        &self,
        plan: &Plan,
        index: usize,
        start: Instant,
        stop: &Stop,
    ) -> Outcome {
        plan.start_native(index);
        let limit = plan.timeout(index);
        let target = &plan.targets[index];
        let exchange = async {
            match target.kind {
                Kind::Tcp => tcp(target).await,
                Kind::Icmp => Box::pin(self.icmp(target)).await,
                Kind::Http => {
                    let client = self.http[index]
                        .as_ref()
                        .unwrap_or_else(|| unreachable!("every http target has a client"));
                    Box::pin(http(client, target, plan.options.body_cap)).await
                }
            }
        };
        with_deadline(exchange, target, start, limit, stop).await
    }

    async fn icmp(&self, target: &Target) -> Result<Done, Failure> {
        let ip = match target.host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => resolve(&target.host, 0)
                .await?
                .first()
                .map(SocketAddr::ip)
                .ok_or_else(|| no_addresses(&target.host))?,
        };
        let client = self.ping.get(ip).map_err(|e| {
            let (kind, what) = classify_io(&e);
            Failure::new(kind, format!("echo request: {what}"))
        })?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut pinger = client.pinger(ip, PingIdentifier(self.ident)).await;
        // surge-ping has its own per-ping timeout (2 s by default); the
        // probe's deadline is the one that counts, so make this one longer.
        pinger.timeout(Duration::from_secs(3600));
        match pinger.ping(PingSequence(seq), &[0; 56]).await {
            Ok((packet, rtt)) => Ok(Done::Icmp {
                ip,
                rtt,
                details: IcmpDetails {
                    sequence: seq,
                    reply_ttl: match packet {
                        surge_ping::IcmpPacket::V4(p) => p.get_ttl(),
                        surge_ping::IcmpPacket::V6(_) => None,
                    },
                    packets: None,
                },
            }),
            Err(SurgeError::IOError(e)) => {
                let (kind, what) = classify_io(&e);
                Err(Failure::new(kind, format!("echo request: {what}")))
            }
            Err(e) => Err(Failure::new(ErrorKind::Io, format!("echo request: {e}"))),
        }
    }
}

/// A reqwest client that does what the core's session does (module docs).
fn http_client(tls: &Arc<rustls::ClientConfig>) -> Result<reqwest::Client, SetupError> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::CONNECTION,
        reqwest::header::HeaderValue::from_static("close"),
    );
    headers.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static("*/*"),
    );
    reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(tls))
        .default_headers(headers)
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .no_proxy()
        .http1_only()
        .build()
        .map_err(|e| SetupError {
            message: format!("cannot build the reqwest client: {}", chain_message(&e)),
        })
}

/// A surge-ping client: a ping socket (`SOCK_DGRAM`, no privileges when
/// `ping_group_range` allows) first, a raw socket second, as the core does
/// the other way round. Neither: denied (both fixes named) when both were
/// refused for privilege, as for the core, else a setup error.
fn ping_client(v6: bool) -> Result<surge_ping::Client, OpenError> {
    let kind = if v6 { ICMP::V6 } else { ICMP::V4 };
    let config = |ty| {
        surge_ping::Config::builder()
            .kind(kind)
            .sock_type_hint(ty)
            .build()
    };
    surge_ping::Client::new(&config(socket2::Type::DGRAM)).or_else(|ping_err| {
        surge_ping::Client::new(&config(socket2::Type::RAW))
            .map_err(|raw_err| pulse_net::open_failed(v6, &raw_err, &ping_err))
    })
}

/// What a probe's exchange ended with, before it becomes an [`Outcome`].
enum Done {
    Tcp(SocketAddr),
    Icmp {
        ip: IpAddr,
        rtt: Duration,
        details: IcmpDetails,
    },
    Http {
        address: Option<SocketAddr>,
        response: Response,
    },
}

/// A failed exchange: pulse's kind and the words for it.
struct Failure {
    kind: ErrorKind,
    message: String,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// How the race in [`with_deadline`] ended.
enum End<T> {
    Done(T),
    Timeout,
    Cancelled,
}

/// Run `exchange` until it ends, its deadline (`start + limit`) passes, or
/// the grace period ends: the core stack's `with_timeout` (timeout.rs),
/// around a native exchange. Dropping the exchange closes its socket.
async fn with_deadline(
    exchange: impl Future<Output = Result<Done, Failure>>,
    target: &Target,
    start: Instant,
    limit: Duration,
    stop: &Stop,
) -> Outcome {
    let deadline = tokio::time::Instant::from_std(deadline(start, limit));
    let end = tokio::select! {
        biased;
        () = stop.drained() => End::Cancelled,
        r = tokio::time::timeout_at(deadline, exchange) => match r {
            Ok(done) => End::Done(done),
            Err(_) => End::Timeout,
        },
    };
    let duration = start.elapsed();
    match end {
        End::Done(Ok(done)) => outcome(done, target, duration),
        End::Done(Err(f)) => Outcome::failed(f.kind, f.message, duration),
        End::Timeout => timed_out(limit, duration),
        End::Cancelled => Outcome::failed(
            ErrorKind::Cancelled,
            stop.shutdown.cancel_message(),
            duration,
        ),
    }
}

fn outcome(done: Done, target: &Target, duration: Duration) -> Outcome {
    match done {
        Done::Tcp(addr) => Outcome {
            success: true,
            duration,
            phases: Phases::default(),
            address: Some(addr.to_string()),
            http: None,
            icmp: None,
            error: None,
            addresses: Vec::new(),
        },
        Done::Icmp { ip, rtt, details } => Outcome {
            success: true,
            duration,
            phases: Phases {
                rtt: Some(millis(rtt)),
                ..Phases::default()
            },
            address: Some(ip.to_string()),
            http: None,
            icmp: Some(details),
            error: None,
            addresses: Vec::new(),
        },
        Done::Http { address, response } => match &target.http {
            Some(h) => http_outcome(h, response, address.map(|a| a.to_string()), duration),
            None => unreachable!("only an http target makes an HTTP exchange"),
        },
    }
}

/// TCP: tokio resolves the name and tries each address until one accepts.
async fn tcp(target: &Target) -> Result<Done, Failure> {
    let addrs = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => resolve(&target.host, target.port).await?,
    };
    let mut last = None;
    for addr in &addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => {
                // Closed by the drop, as the core closes a TCP probe's
                // connection once it is up.
                drop(stream);
                return Ok(Done::Tcp(*addr));
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        Some((addr, e)) => {
            let (kind, what) = classify_io(&e);
            Err(Failure::new(kind, format!("connect to {addr}: {what}")))
        }
        None => Err(no_addresses(&target.host)),
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(no_addresses(host))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(Failure::new(ErrorKind::Dns, format!("resolve {host}: {e}"))),
    }
}

fn no_addresses(host: &str) -> Failure {
    Failure::new(ErrorKind::Dns, format!("{host}: name has no addresses"))
}

/// The HTTP exchange: one request per hop (the target's method, headers,
/// credentials and body, as [`RequestParts`] says), redirects followed
/// here (module docs), the body read up to the cap.
async fn http(client: &reqwest::Client, target: &Target, body_cap: usize) -> Result<Done, Failure> {
    let h = target
        .http
        .as_ref()
        .unwrap_or_else(|| unreachable!("an http target has its http part"));
    let checks = Checks::of(h);
    let mut parts = RequestParts::of(h).map_err(|e| {
        Failure::new(
            ErrorKind::Protocol,
            format!("cannot build the request: {e}"),
        )
    })?;
    let mut uri = h.uri.clone();
    let mut redirects = 0;
    loop {
        let mut request = client.request(parts.method.clone(), uri.to_string());
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &parts.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(v) = &parts.authorization {
            headers.insert(reqwest::header::AUTHORIZATION, v.clone());
        }
        // `headers` replaces a default of the same name (User-Agent,
        // Accept), as the core's request does.
        request = request.headers(headers);
        if parts.sends_body() {
            request = request.body(parts.body.to_vec());
        }
        let mut response = request.send().await.map_err(|e| from_reqwest(&e))?;
        let status = response.status().as_u16();
        if is_redirect(status) && redirects < checks.max_redirects {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
            if let Some(loc) = location {
                uri = join_location(&uri, loc).ok_or_else(|| {
                    Failure::new(
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
        let keep = checks.keeps_body();
        let mut out = Response {
            status,
            version: format!("{:?}", response.version()),
            redirects,
            final_url: (redirects > 0).then(|| redact_password(&uri.to_string()).into_owned()),
            ..Response::default()
        };
        while let Some(chunk) = response.chunk().await.map_err(|e| from_reqwest(&e))? {
            let room = body_cap.saturating_sub(out.body_bytes as usize);
            let take = chunk.len().min(room);
            if keep {
                out.body.extend_from_slice(&chunk[..take]);
            }
            out.body_bytes += take as u64;
            if chunk.len() > room {
                out.truncated = true;
                break;
            }
        }
        return Ok(Done::Http {
            address: response.remote_addr(),
            response: out,
        });
    }
}

/// A reqwest error as pulse's kind: a name that did not resolve is `dns`;
/// then the socket or TLS error inside it, if any ([`kind_in_chain`]);
/// then hyper's own verdict (a malformed response is `protocol`, one cut
/// off is `reset`); anything else is `io`. The message is the error's
/// chain without the URL (which could carry a password).
fn from_reqwest(e: &reqwest::Error) -> Failure {
    let mut message = chain_message(e);
    if let Some(url) = e.url() {
        message = message.replace(url.as_str(), &redact_password(url.as_str()));
    }
    if e.is_dns() {
        return Failure::new(ErrorKind::Dns, message);
    }
    // hyper's chunk decoder reports a malformed size line as InvalidInput
    // (a socket's EINVAL too, so only inside a body error is it protocol).
    if (e.is_body() || e.is_decode()) && io_kind_in(e) == Some(io::ErrorKind::InvalidInput) {
        return Failure::new(ErrorKind::Protocol, message);
    }
    if let Some(kind) = kind_in_chain(e) {
        return Failure::new(kind, message);
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            let kind = if h.is_incomplete_message() {
                ErrorKind::Reset
            } else if h.is_parse() || h.is_parse_status() {
                ErrorKind::Protocol
            } else {
                ErrorKind::Io
            };
            return Failure::new(kind, message);
        }
        next = err.source();
    }
    Failure::new(ErrorKind::Io, message)
}

/// The kind of the first `io::Error` in `e`'s chain.
fn io_kind_in(e: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        next = err.source();
    }
    None
}
