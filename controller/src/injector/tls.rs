//! The webhook's serving certificate, from the mounted Secret (`tls.crt`, `tls.key`). A Secret
//! mount changes by a symlink swap, so the files are polled by content; a new pair that does not
//! load is logged and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// Why a certificate pair cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM.
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    /// The key does not fit the certificate or is of an unsupported type.
    #[error("{dir}: {source}")]
    Key {
        dir: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// The current certificate, swapped in place when the files change.
#[derive(Clone)]
pub struct Certs {
    dir: PathBuf,
    current: Arc<RwLock<Arc<CertifiedKey>>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs").field("dir", &self.dir).finish()
    }
}

impl Certs {
    /// Loads the pair from `dir`; an error is a configuration error at start-up.
    pub fn load(dir: &Path) -> Result<(Certs, Files), TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = Files::read(dir)?;
        let key = files.certified_key(dir, &provider)?;
        Ok((
            Certs {
                dir: dir.to_owned(),
                current: Arc::new(RwLock::new(Arc::new(key))),
                provider,
            },
            files,
        ))
    }

    /// A rustls server configuration that always serves the current pair, offering HTTP/2 and
    /// HTTP/1.1.
    pub fn server_config(&self) -> Result<ServerConfig, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Polls the files every `interval` until `shutdown`, swapping in a changed pair that loads.
    pub async fn watch(self, mut last: Files, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => return,
            }
            let files = match Files::read(&self.dir) {
                Ok(files) => files,
                Err(err) => {
                    if !last.unreadable {
                        tracing::warn!(%err, "cannot read the serving certificate; keeping the current one");
                    }
                    last.unreadable = true;
                    continue;
                }
            };
            if files.crt == last.crt && files.key == last.key {
                last.unreadable = false;
                continue;
            }
            match files.certified_key(&self.dir, &self.provider) {
                Ok(key) => {
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
                    tracing::info!(dir = %self.dir.display(), "serving certificate reloaded");
                }
                Err(err) => {
                    tracing::warn!(%err, "new serving certificate rejected; keeping the current one")
                }
            }
            last = files;
        }
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// The contents of `tls.crt` and `tls.key`, to tell when they change.
#[derive(Clone)]
pub struct Files {
    crt: Vec<u8>,
    key: Vec<u8>,
    /// The last read failed (to log that once); not part of the content.
    unreadable: bool,
}

impl Files {
    fn read(dir: &Path) -> Result<Files, TlsError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| TlsError::Read { path, source })
        };
        Ok(Files {
            crt: read("tls.crt")?,
            key: read("tls.key")?,
            unreadable: false,
        })
    }

    fn certified_key(
        &self,
        dir: &Path,
        provider: &CryptoProvider,
    ) -> Result<CertifiedKey, TlsError> {
        let pem = |name: &str, reason: String| TlsError::Pem {
            path: dir.join(name),
            reason,
        };
        let chain = CertificateDer::pem_slice_iter(&self.crt)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem("tls.crt", e.to_string()))?;
        if chain.is_empty() {
            return Err(pem("tls.crt", "no PEM certificate".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key)
            .map_err(|e| pem("tls.key", format!("no usable PEM private key: {e}")))?;
        CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Key {
            dir: dir.to_owned(),
            source,
        })
    }
}
