//! The proxy's identity: the certificate it presents and the key it holds.
//!
//! A source sends [`Credentials`] into a [`CredentialsTx`]; everything that speaks TLS reads
//! the latest from a [`CredentialsRx`]. The source here is [`certify`]: Linkerd's identity
//! service, asked with the pod's service-account token for a certificate for a key made in
//! memory. With no identity source the channel does not exist and the proxy is plaintext.

pub mod certify;

use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::metrics::Metrics;

/// One certificate the proxy holds, from files or from the identity service.
#[derive(Debug)]
pub struct Credentials {
    /// Our identity (DNS-like, e.g. web.ns.serviceaccount.identity.linkerd.cluster.local).
    pub name: String,
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub not_after: SystemTime,
}

pub type CredentialsTx = tokio::sync::watch::Sender<Option<Arc<Credentials>>>;
pub type CredentialsRx = tokio::sync::watch::Receiver<Option<Arc<Credentials>>>;

/// Why a PEM bundle of trust anchors cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustAnchorsError {
    /// The text is not PEM, or a certificate in it is not base64.
    #[error("not a PEM bundle: {0}")]
    Pem(String),
    /// The bundle holds no certificate.
    #[error("no CERTIFICATE block")]
    Empty,
    /// A certificate cannot be a trust anchor (not X.509, or unsupported).
    #[error("certificate {index} cannot be a trust anchor: {reason}")]
    Unusable { index: usize, reason: String },
}

/// The certificates of a PEM bundle (blocks other than `CERTIFICATE` are skipped), each
/// checked to be usable as a trust anchor.
pub fn parse_trust_anchors(pem: &str) -> Result<Vec<CertificateDer<'static>>, TrustAnchorsError> {
    let mut anchors = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        anchors.push(cert.map_err(|e| TrustAnchorsError::Pem(e.to_string()))?);
    }
    if anchors.is_empty() {
        return Err(TrustAnchorsError::Empty);
    }
    for (index, cert) in anchors.iter().enumerate() {
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| TrustAnchorsError::Unusable {
                index: index + 1,
                reason: e.to_string(),
            })?;
    }
    Ok(anchors)
}

/// The trust anchors as a root store (each was checked by [`parse_trust_anchors`]).
pub fn root_store(anchors: &[CertificateDer<'static>]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(anchors.iter().cloned());
    roots
}

/// Keeps Linkerd's identity metrics (`identity_cert_expiration_timestamp_seconds`,
/// `identity_cert_refresh_count`) in step with `rx`, whichever source feeds it, until the
/// source is gone.
pub async fn export_metrics(mut rx: CredentialsRx, metrics: Arc<Metrics>) {
    metrics.identity().enable();
    loop {
        if let Some(credentials) = rx.borrow_and_update().as_ref() {
            metrics.identity().certified(credentials.not_after);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
