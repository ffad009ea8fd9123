//! The checks an HTTP exchange must pass once complete: status, content,
//! and the certificate's expiry window. The session and every native stack
//! run the same ones.

use std::time::Duration;

use super::fmt_window;
use super::uri::is_redirect;
use crate::certs::{CertDetails, fmt_span};
use crate::result::{ErrorKind, ProbeError};
use crate::target::{HttpTarget, StatusSet};

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
