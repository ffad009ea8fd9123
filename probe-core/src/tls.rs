//! TLS client configurations (rustls, `ring` provider, no IO).
//!
//! Three flavours exist, built once per scan and shared by every probe:
//! verified against the webpki roots, verified against the roots plus a CA
//! bundle named by a target's `ca=FILE`, and `insecure` (any certificate is
//! accepted, but the handshake signatures are still checked, so a broken peer
//! still fails). Reading the CA file is the caller's job: the core does no IO.
//!
//! # What the handshake showed
//!
//! Every config's certificate verifier is a `Recorder`: it hands the
//! certificates to the real verifier (webpki, or none for `insecure`) and,
//! when a session asked for it with [`watch`], keeps a copy of the chain as
//! the server sent it, the chain verification built (leaf, intermediates,
//! and the root when its certificate is known), and the time rustls checked
//! them at. That is how a probe reports a certificate's expiry even when
//! verification failed: an expired certificate is exactly what an operator
//! wants to see, and rustls says only "invalid" and drops the chain.
//!
//! rustls gives a verifier no per-connection context, and one config is
//! shared by every probe. But verification runs synchronously inside
//! `ClientConnection::process_new_packets`, on the thread that calls it, so
//! a slot armed on that thread just before the call and emptied just after
//! belongs to exactly one session, whichever model drives it. A native
//! client that is handed the same config never arms the slot, and nothing is
//! kept for it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
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
    // Every probe does a full handshake, as a new client would (and as
    // blackbox_exporter does: Go keeps no session cache unless asked). A
    // resumed session sends no certificate, so a probe would report no
    // expiry and could not check `cert_expiry_warn=`; and it would time a
    // shorter handshake than a first visitor gets.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A config that verifies certificates against the Mozilla roots (webpki-roots).
pub fn verified() -> Arc<ClientConfig> {
    verifying(webpki_roots(), HashMap::new())
}

/// A config whose verifier checks against `roots` (webpki, as rustls's own
/// `with_root_certificates` would) and records what it saw. `root_certs`
/// holds the DER of the roots whose certificate we have (a `ca=` bundle),
/// by subject, so a verified chain that ends there includes the root.
fn verifying(
    roots: RootCertStore,
    root_certs: HashMap<Vec<u8>, CertificateDer<'static>>,
) -> Arc<ClientConfig> {
    let roots = Arc::new(roots);
    let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        // build() fails only for an empty root store or bad CRLs; the store
        // always holds the webpki roots and no CRL is given.
        .unwrap_or_else(|e| unreachable!("webpki verifier over the webpki roots: {e}"));
    let algs = provider().signature_verification_algorithms;
    let recorder = Recorder {
        check: Check::WebPki {
            inner,
            roots,
            root_certs,
        },
        algs,
    };
    finish(
        builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(recorder))
            .with_no_client_auth(),
    )
}

/// A config that trusts the webpki roots plus every certificate in `pem`.
/// Errors say what is wrong with the bundle (no certificate, bad PEM, bad cert).
pub fn with_ca(pem: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = webpki_roots();
    let mut root_certs = HashMap::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
        let anchor = webpki::anchor_from_trusted_cert(&cert)
            .map_err(|e| format!("certificate rejected: {e}"))?;
        root_certs.insert(anchor.subject.as_ref().to_vec(), cert.clone());
        roots
            .add(cert)
            .map_err(|e| format!("certificate rejected: {e}"))?;
    }
    if root_certs.is_empty() {
        return Err("no certificate found in the PEM bundle".into());
    }
    Ok(verifying(roots, root_certs))
}

/// A config that accepts any server certificate (the `insecure` option).
pub fn insecure() -> Arc<ClientConfig> {
    let algs = provider().signature_verification_algorithms;
    let recorder = Recorder {
        check: Check::AcceptAny,
        algs,
    };
    finish(
        builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(recorder))
            .with_no_client_auth(),
    )
}

/// What one handshake's certificate check saw, for the session that armed
/// the slot with [`watch`].
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The chain as the server sent it, leaf first.
    pub presented: Vec<CertificateDer<'static>>,
    /// The chain verification built, leaf first, ending with the root when
    /// its certificate is known (a `ca=` bundle; the webpki roots carry no
    /// certificate, only a key and a name). Empty when the chain was not
    /// verified (`insecure`) or verification failed.
    pub verified: Vec<CertificateDer<'static>>,
    /// When rustls checked the certificates (its clock, not ours: the core
    /// reads none).
    pub now: Option<UnixTime>,
}

thread_local! {
    /// The slot [`Recorder`] fills: `Some` while a session on this thread
    /// is inside [`watch`].
    static SLOT: RefCell<Option<Seen>> = const { RefCell::new(None) };
}

/// Run `f` (a call into rustls that may verify the server's certificates)
/// with the recording slot armed, and return what the verifier saw, if it
/// ran. Nested calls are not made: a session watches one connection at a
/// time.
pub fn watch<T>(f: impl FnOnce() -> T) -> (T, Option<Seen>) {
    SLOT.with(|s| *s.borrow_mut() = Some(Seen::default()));
    let out = f();
    let seen = SLOT.with(|s| s.borrow_mut().take());
    (out, seen.filter(|s| !s.presented.is_empty()))
}

/// How a [`Recorder`] decides whether to trust a chain.
#[derive(Debug)]
enum Check {
    /// rustls's webpki verifier over these roots (the default, `ca=`).
    WebPki {
        inner: Arc<WebPkiServerVerifier>,
        /// The same roots, to rebuild the verified path for the record.
        roots: Arc<RootCertStore>,
        /// Certificates of roots we have them for, by subject (DER).
        root_certs: HashMap<Vec<u8>, CertificateDer<'static>>,
    },
    /// Any chain (`insecure`); handshake signatures are still checked.
    AcceptAny,
}

/// The verifier of every config: checks the chain as [`Check`] says, and
/// records it when a session is watching (module docs).
#[derive(Debug)]
struct Recorder {
    check: Check,
    algs: WebPkiSupportedAlgorithms,
}

impl Recorder {
    /// The verified path for the record: the leaf, the intermediates
    /// webpki chose, the root when we hold its certificate. Verification
    /// already succeeded, so this only repeats the path building.
    fn verified_path(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Vec<CertificateDer<'static>> {
        let Check::WebPki {
            roots, root_certs, ..
        } = &self.check
        else {
            return Vec::new();
        };
        let Ok(ee) = webpki::EndEntityCert::try_from(end_entity) else {
            return Vec::new();
        };
        let path = RefCell::new(Vec::new());
        let record = |p: &webpki::VerifiedPath<'_>| {
            let mut path = path.borrow_mut();
            path.push(end_entity.clone().into_owned());
            path.extend(p.intermediate_certificates().map(|c| c.der().into_owned()));
            if let Some(root) = root_certs.get(p.anchor().subject.as_ref()) {
                path.push(root.clone());
            }
            Ok(())
        };
        let built = ee.verify_for_usage(
            self.algs.all,
            &roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&record),
        );
        match built {
            Ok(_) => path.into_inner(),
            Err(_) => Vec::new(),
        }
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.check {
            Check::WebPki { inner, .. } => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Check::AcceptAny => Ok(ServerCertVerified::assertion()),
        };
        let watching = SLOT.with(|s| s.borrow().is_some());
        if watching {
            let verified = match verdict {
                Ok(_) => self.verified_path(end_entity, intermediates, now),
                Err(_) => Vec::new(),
            };
            let mut presented = vec![end_entity.clone().into_owned()];
            presented.extend(intermediates.iter().map(|c| c.clone().into_owned()));
            SLOT.with(|s| {
                *s.borrow_mut() = Some(Seen {
                    presented,
                    verified,
                    now: Some(now),
                });
            });
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
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
