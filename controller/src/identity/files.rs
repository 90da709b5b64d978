//! The issuer's files: read, verified, and re-read when they change.
//!
//! Kubernetes updates a mounted Secret or ConfigMap by swapping a symlink to a new directory, so
//! the files' contents are polled rather than watched with inotify (which would follow the old
//! inode). A new issuer that fails the checks is logged and the current one kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use mesh_pki::{IdentityFiles, Issuer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::IdentityMetrics;

/// Files larger than this are not certificates or keys.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where the trust anchors and the issuer's certificate and key are.
#[derive(Debug, Clone)]
pub struct IssuerPaths {
    pub trust_anchors: PathBuf,
    pub crt: PathBuf,
    pub key: PathBuf,
}

/// The three files' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    anchors: String,
    crt: String,
    key: String,
}

impl IssuerPaths {
    /// `--trust-anchors` and the `crt.pem` and `key.pem` of `--issuer-dir`.
    pub fn new(trust_anchors: &Path, issuer_dir: &Path) -> IssuerPaths {
        IssuerPaths {
            trust_anchors: trust_anchors.to_path_buf(),
            crt: issuer_dir.join(mesh_names::identity::ISSUER_CRT_FILE),
            key: issuer_dir.join(mesh_names::identity::ISSUER_KEY_FILE),
        }
    }

    pub async fn read(&self) -> anyhow::Result<Contents> {
        Ok(Contents {
            anchors: read(&self.trust_anchors, "--trust-anchors").await?,
            crt: read(&self.crt, "--issuer-dir").await?,
            key: read(&self.key, "--issuer-dir").await?,
        })
    }

    /// Verifies the contents as `mesh install` does and builds the issuer.
    pub fn load(&self, contents: &Contents, now: SystemTime) -> anyhow::Result<Issuer> {
        let names = [
            self.trust_anchors.display().to_string(),
            self.crt.display().to_string(),
            self.key.display().to_string(),
        ];
        let files = IdentityFiles {
            trust_anchors: (&names[0], &contents.anchors),
            issuer_certificate: (&names[1], &contents.crt),
            issuer_key: (&names[2], &contents.key),
        };
        Ok(Issuer::load(files, now)?)
    }
}

async fn read(path: &Path, flag: &str) -> anyhow::Result<String> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("{flag}: cannot read {}", path.display()))?;
    let mut text = String::new();
    use tokio::io::AsyncReadExt as _;
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .await
        .with_context(|| format!("{flag}: cannot read {}", path.display()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        anyhow::bail!(
            "{flag}: {} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        );
    }
    Ok(text)
}

/// Polls the files every `interval` and publishes each new issuer that passes the checks.
pub async fn watch(
    paths: IssuerPaths,
    mut current: Contents,
    issuer: watch::Sender<Arc<Issuer>>,
    metrics: IdentityMetrics,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        let contents = match paths.read().await {
            Ok(contents) => contents,
            Err(err) => {
                // Mid-swap or removed: try again next round, keep serving.
                tracing::debug!(error = %format!("{err:#}"), "cannot read the issuer files");
                continue;
            }
        };
        if contents == current {
            continue;
        }
        match paths.load(&contents, SystemTime::now()) {
            Ok(new) => {
                metrics.issuer_loaded(new.not_after());
                metrics.reload("ok");
                tracing::info!(not_after = ?new.not_after(), "issuer updated");
                issuer.send_replace(Arc::new(new));
            }
            Err(err) => {
                metrics.reload("error");
                tracing::warn!(
                    error = %format!("{err:#}"),
                    "the new issuer is not usable; keeping the current one"
                );
            }
        }
        current = contents;
    }
}
