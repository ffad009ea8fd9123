//! TLS client configurations (rustls, `ring` provider, no IO).
//!
//! Three flavours exist, built once per scan and shared by every probe:
//! verified against the webpki roots, verified against the roots plus a CA
//! bundle named by a target's `ca=FILE`, and `insecure` (any certificate is
//! accepted, but the handshake signatures are still checked, so a broken peer
//! still fails). Reading the CA file is the caller's job: the core does no IO.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The crypto provider every config uses. `ring` is chosen explicitly so the
/// build never pulls in aws-lc-rs (a C build that would dominate build time).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Protocol versions offered: TLS 1.3 and 1.2, as browsers and blackbox do.
fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        // The ring provider supports every version in ALL_VERSIONS; this
        // cannot fail (rustls only errors for versions the provider lacks).
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
}

fn finish(mut config: ClientConfig) -> Arc<ClientConfig> {
    // We speak HTTP/1.1 only; say so, so an h2-only server fails clearly.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A config that verifies certificates against the Mozilla roots (webpki-roots).
pub fn verified() -> Arc<ClientConfig> {
    finish(
        builder()
            .with_root_certificates(webpki_roots())
            .with_no_client_auth(),
    )
}

/// A config that trusts the webpki roots plus every certificate in `pem`.
/// Errors say what is wrong with the bundle (no certificate, bad PEM, bad cert).
pub fn with_ca(pem: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = webpki_roots();
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("certificate rejected: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err("no certificate found in the PEM bundle".into());
    }
    Ok(finish(
        builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A config that accepts any server certificate (the `insecure` option).
pub fn insecure() -> Arc<ClientConfig> {
    let algs = provider().signature_verification_algorithms;
    finish(
        builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(algs)))
            .with_no_client_auth(),
    )
}

/// Accepts every certificate chain but still checks handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_bundle_errors_are_clear() {
        assert_eq!(
            with_ca(b"").err().as_deref(),
            Some("no certificate found in the PEM bundle")
        );
        let garbage = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(with_ca(garbage).unwrap_err().starts_with("not a PEM"));
    }

    #[test]
    fn configs_offer_http11_only() {
        for c in [verified(), insecure()] {
            assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
        }
    }
}
