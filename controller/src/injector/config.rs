//! The files the injector reads at start-up: the install values and the trust anchors.

use std::path::Path;

use anyhow::Context as _;
use mesh_inject::values::{Values, ValuesBuilder};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// What every injected proxy is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub values: Values,
    pub trust_anchors_pem: String,
}

impl Settings {
    /// Reads `--config` (the `values` key of `linkerd-config`, as `mesh install` renders it from
    /// `mesh_inject::values::to_tree`) over the shipped defaults, and `--trust-anchors`.
    pub fn load(config: &Path, trust_anchors: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(config)
            .with_context(|| format!("--config: cannot read {}", config.display()))?;
        let mut builder = ValuesBuilder::new().context("the shipped values are invalid")?;
        builder
            .merge_file(&format!("--config {}", config.display()), &text)
            .context("--config")?;
        let values = builder.build().context("--config")?;
        let trust_anchors_pem = std::fs::read_to_string(trust_anchors)
            .with_context(|| format!("--trust-anchors: cannot read {}", trust_anchors.display()))?;
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(trust_anchors_pem.as_bytes()) {
            cert.with_context(|| format!("--trust-anchors {}: bad PEM", trust_anchors.display()))?;
            count += 1;
        }
        if count == 0 {
            anyhow::bail!(
                "--trust-anchors {}: no PEM certificate",
                trust_anchors.display()
            );
        }
        Ok(Settings {
            values,
            trust_anchors_pem,
        })
    }
}
