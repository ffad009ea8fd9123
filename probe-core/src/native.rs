//! The native stacks (`--stack native`): what an ecosystem client reports,
//! turned into the same outcome the core's session gives.
//!
//! With `--stack core` (the default) every model drives the core's sans-IO
//! [`Session`](crate::session::Session), so the executor is the only
//! difference between two models' runs. `--stack native` swaps the session
//! for the client a Rust programmer would reach for on that executor
//! (reqwest and surge-ping on tokio, ureq on threads and rayon), so the
//! reports can show what a full client costs on top of the model. The
//! model keeps its fan-out, its deadline and its shutdown; only the
//! exchange inside one probe changes.
//!
//! What must not differ is what a result *means*. This module is the part
//! of that job every native stack shares: the status and content checks
//! (the very [`Checks`] the session runs), the wording of a
//! timeout, and the walk down an error's `source()` chain that finds the
//! socket or TLS error inside a client's error. What a client cannot tell
//! apart (reqwest reports a response cut off inside its head the same way
//! as one cut off before it) is listed by the conformance suite
//! (`tests/conformance/native.rs`), case by case.

use std::error::Error;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::time::Duration;

use crate::result::{ErrorKind, HttpDetails, Outcome, Phases};
use crate::session::{Checks, classify_io, fmt_duration};
use crate::target::HttpTarget;

/// Which code does the exchange inside one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stack {
    /// The core's sans-IO session, the same for every model (the default).
    #[default]
    Core,
    /// The ecosystem's client for this executor (see the module docs).
    Native,
}

impl Stack {
    /// The name `--stack` takes and reports print.
    pub fn as_str(self) -> &'static str {
        match self {
            Stack::Core => "core",
            Stack::Native => "native",
        }
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stack {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "core" => Ok(Stack::Core),
            "native" => Ok(Stack::Native),
            other => Err(format!("unknown stack {other:?} (core or native)")),
        }
    }
}

/// What an HTTP exchange ended with, as any client can tell it.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// Status of the last response (after redirects).
    pub status: u16,
    /// HTTP version of the last response, as the core writes it (`HTTP/1.1`).
    pub version: String,
    /// Redirects followed.
    pub redirects: u32,
    /// Body bytes read (at most the cap).
    pub body_bytes: u64,
    /// Whether the body went past the cap and reading stopped there.
    pub truncated: bool,
    /// The body bytes read, kept only when a content check needs them
    /// ([`Checks::keeps_body`](crate::session::Checks::keeps_body)).
    pub body: Vec<u8>,
    /// TLS version of the last connection, when the client says.
    pub tls_version: Option<String>,
    /// The final URL, when redirects were followed (password redacted).
    pub final_url: Option<String>,
}

/// The outcome of a completed exchange: the checks decide success.
pub fn http_outcome(
    target: &HttpTarget,
    response: Response,
    address: Option<String>,
    duration: Duration,
) -> Outcome {
    let error = Checks::of(target)
        .check(
            response.status,
            response.redirects,
            &response.body,
            response.body_bytes,
            response.truncated,
        )
        .err();
    Outcome {
        success: error.is_none(),
        duration,
        phases: Phases::default(),
        address,
        http: Some(HttpDetails {
            status_code: Some(response.status),
            version: Some(response.version),
            redirects: response.redirects,
            body_bytes: response.body_bytes,
            body_truncated: response.truncated,
            tls_version: response.tls_version,
            // No native client hands over the certificate chain it
            // verified, so the native stacks report no certificate facts
            // (and refuse `cert_expiry_warn=`, which needs them).
            certificate: None,
            final_url: response.final_url,
        }),
        icmp: None,
        error,
        addresses: Vec::new(),
    }
}

/// The outcome of a probe its deadline cut off. A native client does not
/// say which phase it was in, so the message says only how long it had.
pub fn timed_out(limit: Duration, duration: Duration) -> Outcome {
    Outcome::failed(
        ErrorKind::Timeout,
        format!("timed out after {}", fmt_duration(limit)),
        duration,
    )
}

/// The kind of an error from a client, found by walking its `source()`
/// chain: a rustls error is `tls`; the first `io::Error` that is not just
/// a wrapper decides as it would in the core ([`classify_io`]), except
/// that `InvalidData` (a decoder's error) is `protocol`. `None` when the chain has
/// neither, and the caller decides from what the client itself says.
pub fn kind_in_chain(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    let mut next = Some(e);
    while let Some(err) = next {
        next = err.source();
        if err.is::<rustls::Error>() {
            return Some(ErrorKind::Tls);
        }
        let Some(io) = err.downcast_ref::<io::Error>() else {
            continue;
        };
        if let Some(inner) = io.get_ref() {
            // An io::Error that wraps another error: its `source()` skips
            // the wrapped error and goes to *its* source, so step into the
            // wrapped one itself (rustls's stream adapters wrap a TLS error
            // this way; hyper wraps its decoder's errors).
            let inner: &(dyn Error + 'static) = inner;
            if inner.is::<rustls::Error>() {
                return Some(ErrorKind::Tls);
            }
            if io.kind() == io::ErrorKind::Other {
                next = Some(inner);
                continue;
            }
        }
        return Some(match io.kind() {
            // No socket returns InvalidData: it is a decoder's verdict on
            // the bytes (a bad chunk size), which the core calls protocol.
            io::ErrorKind::InvalidData => ErrorKind::Protocol,
            io::ErrorKind::Other => continue,
            _ => classify_io(io).0,
        });
    }
    None
}

/// An error and its causes in one line (`a: b: c`), without the repeats
/// that wrapped errors often have (a wrapper that prints its cause).
pub fn chain_message(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse_target;

    fn http(line: &str) -> HttpTarget {
        parse_target(line).unwrap().http.unwrap()
    }

    #[test]
    fn checks_are_the_sessions() {
        let t = http("http://h/ expect=200 contains=ok");
        let ok = Response {
            status: 200,
            version: "HTTP/1.1".into(),
            body: b"is ok".to_vec(),
            body_bytes: 5,
            ..Response::default()
        };
        let o = http_outcome(&t, ok.clone(), None, Duration::ZERO);
        assert!(o.success, "{:?}", o.error);
        let o = http_outcome(
            &t,
            Response {
                status: 503,
                ..ok.clone()
            },
            None,
            Duration::ZERO,
        );
        let e = o.error.unwrap();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Status, "status 503, expected 200")
        );
        let cut = Response {
            body: b"nope".to_vec(),
            body_bytes: 4,
            truncated: true,
            ..ok
        };
        let e = http_outcome(&t, cut, None, Duration::ZERO).error.unwrap();
        assert_eq!(e.kind, ErrorKind::Body);
        assert!(
            e.message.ends_with("(in the first 4 bytes)"),
            "{}",
            e.message
        );
        let t = http("http://h/ redirects=1");
        let e = Checks::of(&t).check(302, 1, b"", 0, false).unwrap_err();
        assert!(
            e.message.contains("after 1 redirects (limit 1)"),
            "{}",
            e.message
        );
        let t = timed_out(Duration::from_secs(5), Duration::from_secs(5));
        assert_eq!(t.error.unwrap().message, "timed out after 5s");
    }

    #[test]
    fn the_chain_finds_the_socket_or_tls_error() {
        #[derive(Debug)]
        struct Wrap(Box<dyn Error + Send + Sync>);
        impl fmt::Display for Wrap {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "client error")
            }
        }
        impl Error for Wrap {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&*self.0)
            }
        }
        let refused = Wrap(Box::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(kind_in_chain(&refused), Some(ErrorKind::Refused));
        let tls = Wrap(Box::new(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::DecryptError,
        )));
        assert_eq!(kind_in_chain(&tls), Some(ErrorKind::Tls));
        let opaque = Wrap(Box::new(io::Error::other("dns failed")));
        assert_eq!(kind_in_chain(&opaque), None);
        assert!(chain_message(&opaque).starts_with("client error: dns failed"));
        assert_eq!("native".parse::<Stack>(), Ok(Stack::Native));
        assert!("fast".parse::<Stack>().is_err());
    }
}
