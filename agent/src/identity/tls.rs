//! TLS for the look-ups: rustls with the ring provider, the image's roots, and a clock floor.
//!
//! A Raspberry Pi has no real-time clock and QEMU's `virt` may start at 1970, so at first boot
//! the device's time is often decades behind and every certificate would be "not valid yet".
//! Like systemd's build-time epoch, a clock earlier than [`CLOCK_FLOOR`] is taken as unknown:
//! certificates are checked at the floor instead, and one that starts after the floor (issued
//! after this agent was written) is checked at its own start. Signatures, the chain to the
//! roots and the host name are always checked; only "not valid yet" is forgiven, and only
//! while the clock is known to be wrong.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// 2026-11-25T00:00:00Z: no device running this agent can be earlier.
pub const CLOCK_FLOOR: u64 = 1_795_564_800;

/// Why the TLS set-up failed (the roots file, not a connection).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootsError {
    /// No certificate in the PEM bundle.
    #[error("no certificate in the TLS roots {0}: rebuild the image with `coreforge build-image --tls-roots FILE`")]
    Empty(String),
    /// A block that is not PEM, or a certificate rustls refuses.
    #[error("the TLS roots {path} are damaged ({detail}): rebuild the image with `coreforge build-image --tls-roots FILE`")]
    Damaged {
        /// The bundle's path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// rustls refused the set-up.
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// Builds the client configuration from a PEM bundle (`label` names it in errors).
pub fn client_config(roots_pem: &[u8], label: &str) -> Result<Arc<ClientConfig>, RootsError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem) {
        let cert = cert.map_err(|e| RootsError::Damaged {
            path: label.to_owned(),
            detail: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| RootsError::Damaged {
            path: label.to_owned(),
            detail: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(RootsError::Empty(label.to_owned()));
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| RootsError::Setup(e.to_string()))?;
    let verifier = FloorVerifier {
        inner,
        floor: UnixTime::since_unix_epoch(Duration::from_secs(CLOCK_FLOOR)),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RootsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The webpki verifier, with the clock raised to a floor (see the module docs).
#[derive(Debug)]
struct FloorVerifier {
    inner: Arc<WebPkiServerVerifier>,
    floor: UnixTime,
}

impl ServerCertVerifier for FloorVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let clock_unknown = now.as_secs() < self.floor.as_secs();
        let at = if clock_unknown { self.floor } else { now };
        let verify = |at| {
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, at)
        };
        match verify(at) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
                not_before,
                ..
            })) if clock_unknown => verify(not_before),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The crypto provider the agent uses everywhere (ring), for tests' servers too.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::testserver::Pki;

    fn verifier(pki: &Pki) -> FloorVerifier {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der()).unwrap();
        FloorVerifier {
            inner: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap(),
            floor: UnixTime::since_unix_epoch(Duration::from_secs(CLOCK_FLOOR)),
        }
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn check(pki: &Pki, now: u64) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from("127.0.0.1").unwrap();
        verifier(pki).verify_server_cert(&pki.server_der(), &[], &name, &[], at(now))
    }

    #[test]
    fn a_1970_clock_still_verifies_a_current_certificate() {
        // Valid from a year after the floor: at a 1970 clock, checked at its own start.
        let pki = Pki::with_validity((2027, 12, 1), (2029, 12, 1));
        assert!(check(&pki, 0).is_ok());
        // With a real clock that is still before the certificate, it is not valid yet.
        let err = check(&pki, CLOCK_FLOOR + 10).unwrap_err();
        assert!(matches!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
        ));
    }

    #[test]
    fn expiry_is_checked_at_the_floor_when_the_clock_is_unknown() {
        let pki = Pki::with_validity((2023, 1, 1), (2025, 11, 1));
        let err = check(&pki, 0).unwrap_err();
        assert!(matches!(
            err,
            rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
        ));
    }

    #[test]
    fn the_chain_is_checked_whatever_the_clock() {
        let pki = Pki::with_validity((2027, 12, 1), (2029, 12, 1));
        let other = Pki::with_validity((2025, 1, 1), (2027, 1, 1));
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let err = verifier(&other)
            .verify_server_cert(&pki.server_der(), &[], &name, &[], at(0))
            .unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn roots_bundles_are_checked() {
        let pki = Pki::new();
        assert!(client_config(pki.ca_pem().as_bytes(), "roots.pem").is_ok());
        assert!(matches!(
            client_config(b"", "roots.pem"),
            Err(RootsError::Empty(_))
        ));
        let damaged = pki.ca_pem().replace("MII", "M!I");
        let err = client_config(damaged.as_bytes(), "roots.pem").unwrap_err();
        assert!(matches!(err, RootsError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("--tls-roots"), "{err}");
    }
}
