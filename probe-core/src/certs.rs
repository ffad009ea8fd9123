//! What a server's certificates say, for results and metrics: the leaf's
//! subject, issuer and serial, and the expiry dates operators alert on.
//!
//! The names follow blackbox_exporter, where the meaning is the same:
//!
//! - `earliest_expiry_unix` is `probe_ssl_earliest_cert_expiry`: the first
//!   `notAfter` among the certificates the server *sent* (leaf and chain as
//!   sent), whether or not they verified. A server that still sends an
//!   expired intermediate shows up here.
//! - `chain_expiry_unix` is `probe_ssl_last_chain_expiry_timestamp_seconds`:
//!   the first `notAfter` along the chain *verification built* (leaf,
//!   intermediates, and the root when its certificate is known). Absent when
//!   nothing was verified (`insecure`, or verification failed). blackbox
//!   takes the latest over every verified chain; webpki builds one, so this
//!   is that one's.
//!
//! The certificates come from [`crate::tls::watch`]; parsing them is done
//! here, once per handshake, with x509-parser.

use rustls::pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::tls::Seen;

/// The certificate facts of one TLS connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertDetails {
    /// The leaf's subject, RFC 4514 style (`CN=example.com, O=...`).
    pub subject: String,
    /// The leaf's issuer, same form.
    pub issuer: String,
    /// The leaf's serial number, hex bytes separated by `:`.
    pub serial: String,
    /// The leaf's `notBefore`, Unix seconds.
    pub not_before_unix: i64,
    /// The leaf's `notAfter`, Unix seconds.
    pub not_after_unix: i64,
    /// The earliest `notAfter` among the certificates the server sent.
    pub earliest_expiry_unix: i64,
    /// The earliest `notAfter` along the verified chain; absent when the
    /// chain was not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_expiry_unix: Option<i64>,
    /// When the handshake checked the certificates (rustls's clock), Unix
    /// seconds: what "expires in" is measured from.
    pub checked_at_unix: i64,
}

impl CertDetails {
    /// The facts in `seen`, or `None` when the leaf cannot be parsed (a
    /// server whose leaf is not X.509 failed the handshake anyway, and the
    /// result says so).
    pub fn from_seen(seen: &Seen) -> Option<CertDetails> {
        let leaf = X509Certificate::from_der(seen.presented.first()?.as_ref())
            .ok()?
            .1;
        let earliest = earliest_expiry(&seen.presented)?;
        let chain_expiry = if seen.verified.is_empty() {
            None
        } else {
            earliest_expiry(&seen.verified)
        };
        let validity = leaf.validity();
        Some(CertDetails {
            subject: leaf.subject().to_string(),
            issuer: leaf.issuer().to_string(),
            serial: leaf.raw_serial_as_string(),
            not_before_unix: validity.not_before.timestamp(),
            not_after_unix: validity.not_after.timestamp(),
            earliest_expiry_unix: earliest,
            chain_expiry_unix: chain_expiry,
            checked_at_unix: seen
                .now
                .map_or(0, |t: UnixTime| t.as_secs().min(i64::MAX as u64) as i64),
        })
    }

    /// Seconds from the check until the first certificate sent expires
    /// (negative once one has).
    pub fn expires_in(&self) -> i64 {
        self.earliest_expiry_unix
            .saturating_sub(self.checked_at_unix)
    }
}

/// The first `notAfter` in `chain`; a certificate that does not parse is
/// skipped (its absence cannot make the answer later than the truth for
/// the ones that do).
fn earliest_expiry(chain: &[CertificateDer<'_>]) -> Option<i64> {
    chain
        .iter()
        .filter_map(|der| X509Certificate::from_der(der.as_ref()).ok())
        .map(|(_, c)| c.validity().not_after.timestamp())
        .min()
}

/// `90061` → `1d 1h 1m`: how long until (or since) an expiry, for messages.
pub fn fmt_span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_people_write_them() {
        assert_eq!(fmt_span(90_061), "1d 1h");
        assert_eq!(fmt_span(3_660), "1h 1m");
        assert_eq!(fmt_span(59), "0m");
        assert_eq!(fmt_span(-2 * 86_400), "2d 0h");
    }

    #[test]
    fn nothing_parses_from_garbage() {
        let seen = Seen {
            presented: vec![CertificateDer::from(vec![1u8, 2, 3])],
            verified: Vec::new(),
            now: None,
        };
        assert_eq!(CertDetails::from_seen(&seen), None);
    }
}
