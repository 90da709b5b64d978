//! The proxy's identity: the certificate it presents to its peers, and the trust anchors it
//! checks theirs against.
//!
//! An identity source sends [`Credentials`] into a [`CredentialsTx`]; everything that speaks
//! mesh TLS reads a [`CredentialsRx`] and follows its changes (see `crate::tls`). The sources:
//!
//! - files ([`files`]): `MESH_PROXY_IDENTITY_CERT_FILE` and `MESH_PROXY_IDENTITY_KEY_FILE`,
//!   polled, for running without a control plane;
//! - the control plane's `Identity` service ([`certify`]), when
//!   `LINKERD2_PROXY_IDENTITY_SVC_ADDR` is set: asked with the pod's service-account token
//!   for a certificate for a key made in memory.
//!
//! [`start`] runs the file source; the app starts [`certify::Certify`] for the identity
//! service. [`export_metrics`] keeps Linkerd's identity metrics in step with either. Before the first credentials arrive
//! the channel holds `None`: the admin server's `/ready` answers 503, inbound connections
//! meant for this identity are closed, and outbound mesh TLS presents no client
//! certificate (as linkerd2-proxy does).

pub mod certify;
pub mod files;
mod pem;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tokio::sync::watch;

pub use pem::{leaf_dns_names, leaf_not_after};

use crate::config::{IdentityConfig, IdentitySource};

/// One certificate the proxy holds, from files or from the identity service.
pub struct Credentials {
    /// Our identity (DNS-like, e.g.
    /// `web.ns.serviceaccount.identity.linkerd.cluster.local`).
    pub name: String,
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub not_after: SystemTime,
}

/// Where an identity source publishes the credentials it obtains.
pub type CredentialsTx = watch::Sender<Option<Arc<Credentials>>>;
/// The latest credentials; `None` until the source has obtained any.
pub type CredentialsRx = watch::Receiver<Option<Arc<Credentials>>>;

/// The key is never printed.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("name", &self.name)
            .field("chain", &self.chain.len())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Two credentials are equal when they hold the same certificates and key.
impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.chain == other.chain
            && self.key.secret_pkcs8_der() == other.key.secret_pkcs8_der()
            && self.not_after == other.not_after
    }
}

impl Eq for Credentials {}

/// Why certificates or keys cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The text is not PEM, or a block in it is not valid base64.
    #[error("not PEM: {0}")]
    Pem(String),
    /// No `CERTIFICATE` block.
    #[error("no CERTIFICATE block")]
    NoCertificate,
    /// No `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1) block.
    #[error("no PRIVATE KEY or EC PRIVATE KEY block")]
    NoKey,
    /// A key in a form the proxy does not take (RSA's PKCS#1).
    #[error("an RSA PRIVATE KEY block; use a PKCS#8 or SEC1 ECDSA P-256 key")]
    KeyForm,
    /// A trust anchor that is not a usable CA certificate.
    #[error("trust anchor {index}: {reason}")]
    TrustAnchor { index: usize, reason: String },
    /// A certificate that does not parse as X.509.
    #[error("certificate {index}: {reason}")]
    Certificate { index: usize, reason: String },
    /// The leaf certificate names no DNS identity.
    #[error("the certificate has no DNS name (subjectAltName dNSName) to serve as the identity")]
    NoDnsName,
    /// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME` is not among the leaf's names.
    #[error("the certificate is for {names}, not {expected}")]
    NameMismatch { expected: String, names: String },
    /// The key cannot sign, or is not the leaf's.
    #[error("the private key: {0}")]
    Key(String),
    /// The chain does not lead to a trust anchor, has expired, or does not name the identity.
    #[error("the certificate is not valid for {name} under the trust anchors: {reason}")]
    Untrusted { name: String, reason: String },
}

/// The CA certificates peers' certificates must chain to
/// (`LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`).
#[derive(Clone)]
pub struct TrustAnchors {
    certs: Arc<[CertificateDer<'static>]>,
    roots: Arc<RootCertStore>,
}

impl TrustAnchors {
    /// Reads one or more PEM `CERTIFICATE` blocks; each must be a usable trust anchor.
    pub fn from_pem(pem: &[u8]) -> Result<TrustAnchors, IdentityError> {
        let certs = pem::certificates(pem)?;
        let mut roots = RootCertStore::empty();
        for (index, cert) in certs.iter().enumerate() {
            roots
                .add(cert.clone())
                .map_err(|e| IdentityError::TrustAnchor {
                    index,
                    reason: e.to_string(),
                })?;
        }
        Ok(TrustAnchors {
            certs: certs.into(),
            roots: Arc::new(roots),
        })
    }

    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

impl fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustAnchors({} certificates)", self.certs.len())
    }
}

impl PartialEq for TrustAnchors {
    fn eq(&self, other: &Self) -> bool {
        self.certs == other.certs
    }
}

impl Eq for TrustAnchors {}

impl Credentials {
    /// Reads a PEM chain (leaf first) and its key, and checks them as the proxy will use
    /// them: the key is the leaf's, the chain leads to a trust anchor at `now`, and the leaf
    /// names `expected` (without it, the leaf's first DNS name is the identity).
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        anchors: &TrustAnchors,
        expected: Option<&str>,
        now: SystemTime,
    ) -> Result<Credentials, IdentityError> {
        let chain = pem::certificates(chain_pem)?;
        let key = pem::pkcs8_key(key_pem)?;
        let leaf = &chain[0];
        let names = leaf_dns_names(leaf)?;
        let name = match expected {
            Some(want) if names.iter().any(|n| n.eq_ignore_ascii_case(want)) => want.to_owned(),
            Some(want) => {
                return Err(IdentityError::NameMismatch {
                    expected: want.to_owned(),
                    names: if names.is_empty() {
                        "no DNS name".to_owned()
                    } else {
                        names.join(", ")
                    },
                });
            }
            None => names.into_iter().next().ok_or(IdentityError::NoDnsName)?,
        };
        let not_after = leaf_not_after(leaf)?;
        let credentials = Credentials {
            name,
            chain,
            key,
            not_after,
        };
        crate::tls::check_credentials(&credentials, anchors, now)?;
        Ok(credentials)
    }
}

/// Runs the identity source `config` names and returns where its credentials appear.
pub fn start(config: &IdentityConfig) -> std::io::Result<CredentialsRx> {
    let (tx, rx) = watch::channel(None);
    match &config.source {
        IdentitySource::Files(files) => {
            files::spawn(files.clone(), config.trust_anchors.clone(), tx)?;
        } // The control plane's source (`Certify`) is started here, from its own variant.
    }
    Ok(rx)
}

/// Keeps Linkerd's identity metrics (`identity_cert_expiration_timestamp_seconds`,
/// `identity_cert_refresh_count`) in step with `rx`, whichever source feeds it, until the
/// source is gone.
pub async fn export_metrics(mut rx: CredentialsRx, metrics: Arc<crate::metrics::Metrics>) {
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
