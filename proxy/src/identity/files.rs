//! Credentials from files: `MESH_PROXY_IDENTITY_CERT_FILE` (a PEM chain, leaf first) and
//! `MESH_PROXY_IDENTITY_KEY_FILE` (a PKCS#8 or SEC1 PEM key), for running without a
//! control plane.
//!
//! The files are read and checked when the configuration is read (a bad one exits 64), then
//! polled every [`POLL_INTERVAL`] on a thread of their own: new contents that pass the
//! checks replace the credentials, and anything else (a half-written pair, a certificate
//! from another CA, an expired one, one for another identity) keeps the current
//! credentials, with one warning per change. The identity is the one the process started
//! with (`LINKERD2_PROXY_IDENTITY_LOCAL_NAME`, else the first certificate's DNS name). Contents are compared, not modification times, so a Kubernetes Secret mount's
//! symlink swap is seen as well.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Credentials, CredentialsTx, IdentityError, TrustAnchors};

/// How often the files are read again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The largest certificate or key file read.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The files, and the credentials read from them at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME`: the name the certificate must carry.
    pub expected: Option<String>,
    pub initial: Arc<Credentials>,
}

/// Why the files cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesError {
    /// A file cannot be read.
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    /// The files' contents are not usable credentials.
    #[error("{0}")]
    Identity(#[from] IdentityError),
}

/// Reads both files and checks them (see [`Credentials::from_pem`]).
pub fn load(
    cert: &Path,
    key: &Path,
    anchors: &TrustAnchors,
    expected: Option<&str>,
) -> Result<Credentials, FilesError> {
    let (cert_pem, key_pem) = read_pair(cert, key)?;
    Ok(Credentials::from_pem(
        &cert_pem,
        &key_pem,
        anchors,
        expected,
        SystemTime::now(),
    )?)
}

/// Publishes the start-up credentials, then polls the files on a thread until every
/// receiver is gone.
pub fn spawn(config: FilesConfig, anchors: TrustAnchors, tx: CredentialsTx) -> std::io::Result<()> {
    tx.send_replace(Some(config.initial.clone()));
    // The identity is fixed for the process: peers and discovery know the proxy by it.
    let expected = config
        .expected
        .clone()
        .unwrap_or_else(|| config.initial.name.clone());
    std::thread::Builder::new()
        .name("identity-files".into())
        .spawn(move || {
            let mut last = read_pair(&config.cert, &config.key);
            while !tx.is_closed() {
                std::thread::sleep(POLL_INTERVAL);
                let now = read_pair(&config.cert, &config.key);
                if now == last {
                    continue;
                }
                last = now;
                let loaded = match &last {
                    Ok((cert, key)) => Credentials::from_pem(
                        cert,
                        key,
                        &anchors,
                        Some(&expected),
                        SystemTime::now(),
                    )
                    .map_err(FilesError::from),
                    Err(e) => Err(e.clone()),
                };
                match loaded {
                    Ok(c) => {
                        let unchanged = tx.borrow().as_deref() == Some(&c);
                        if !unchanged {
                            tracing::info!(
                                name = %c.name,
                                not_after = ?c.not_after,
                                "identity certificate reloaded from its files"
                            );
                            tx.send_replace(Some(Arc::new(c)));
                        }
                    }
                    Err(error) => tracing::warn!(
                        %error,
                        "the identity files changed but cannot be used; keeping the current certificate"
                    ),
                }
            }
        })?;
    Ok(())
}

type Pair = (Vec<u8>, Vec<u8>);

fn read_pair(cert: &Path, key: &Path) -> Result<Pair, FilesError> {
    Ok((read(cert)?, read(key)?))
}

/// Reads a whole file of at most [`MAX_FILE_BYTES`].
fn read(path: &Path) -> Result<Vec<u8>, FilesError> {
    let failed = |reason: String| FilesError::Read {
        path: path.display().to_string(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| failed(e.to_string()))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(failed(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}
