//! The proxy's identity: `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`,
//! `LINKERD2_PROXY_IDENTITY_LOCAL_NAME`, and where certificates come from.
//!
//! Identity is on when a source is configured: certificate and key files
//! (`MESH_PROXY_IDENTITY_CERT_FILE`, `MESH_PROXY_IDENTITY_KEY_FILE`) or the control plane's
//! identity service (`LINKERD2_PROXY_IDENTITY_SVC_ADDR`, read where that source lives).
//! Files win when both are set. Without a source the other identity variables are
//! ignored, as before identity existed, and the proxy runs plaintext.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use super::{ConfigError, Env};
use crate::identity::TrustAnchors;
use crate::identity::files::{self, FilesConfig};

pub const TRUST_ANCHORS: &str = "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS";
pub const LOCAL_NAME: &str = "LINKERD2_PROXY_IDENTITY_LOCAL_NAME";
pub const CERT_FILE: &str = "MESH_PROXY_IDENTITY_CERT_FILE";
pub const KEY_FILE: &str = "MESH_PROXY_IDENTITY_KEY_FILE";

/// Identity settings, present when a source is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConfig {
    pub trust_anchors: TrustAnchors,
    /// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME`, when set: the identity the proxy must hold.
    pub local_name: Option<String>,
    pub source: IdentitySource,
}

/// Where the proxy's certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// Certificate and key files, polled for changes.
    Files(FilesConfig),
}

/// Reads the identity variables; malformed ones are pushed onto `errors`.
pub(super) fn read(env: &dyn Env, errors: &mut Vec<ConfigError>) -> Option<IdentityConfig> {
    let set = |name| env.var(name).filter(|v| !v.trim().is_empty());
    let (cert, key) = match (set(CERT_FILE), set(KEY_FILE)) {
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            errors.push(ConfigError::Requires {
                name: CERT_FILE,
                needs: KEY_FILE,
            });
            return None;
        }
        (None, Some(_)) => {
            errors.push(ConfigError::Requires {
                name: KEY_FILE,
                needs: CERT_FILE,
            });
            return None;
        }
        // The control plane's source (LINKERD2_PROXY_IDENTITY_SVC_ADDR) is read here.
        (None, None) => return None,
    };
    let local_name = local_name(env, errors);
    let Some(pem) = set(TRUST_ANCHORS) else {
        errors.push(ConfigError::Requires {
            name: CERT_FILE,
            needs: TRUST_ANCHORS,
        });
        return None;
    };
    let trust_anchors = match TrustAnchors::from_pem(pem.as_bytes()) {
        Ok(a) => a,
        Err(e) => {
            errors.push(ConfigError::TrustAnchors {
                name: TRUST_ANCHORS,
                reason: e.to_string(),
            });
            return None;
        }
    };
    let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
    let initial = match files::load(&cert, &key, &trust_anchors, local_name.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            errors.push(ConfigError::IdentityFiles {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
                reason: e.to_string(),
            });
            return None;
        }
    };
    Some(IdentityConfig {
        trust_anchors,
        local_name: local_name.clone(),
        source: IdentitySource::Files(FilesConfig {
            cert,
            key,
            expected: local_name,
            initial: Arc::new(initial),
        }),
    })
}

/// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME`, which must be a DNS name: it is the TLS server
/// name peers ask for.
fn local_name(env: &dyn Env, errors: &mut Vec<ConfigError>) -> Option<String> {
    let value = env.var(LOCAL_NAME)?;
    let name = value.trim();
    if name.is_empty() {
        return None;
    }
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(_)) => Some(name.to_owned()),
        _ => {
            errors.push(ConfigError::IdentityName {
                name: LOCAL_NAME,
                value,
            });
            None
        }
    }
}

#[cfg(test)]
mod tests;
