//! `LINKERD2_PROXY_IDENTITY_*`: the identity service the proxy asks for its certificate
//! (see `identity::certify`).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use super::destination::{ControlAddr, control_addr};
use super::{ConfigError, Reader};

pub const SVC_ADDR: &str = "LINKERD2_PROXY_IDENTITY_SVC_ADDR";
pub const SVC_NAME: &str = "LINKERD2_PROXY_IDENTITY_SVC_NAME";
pub const LOCAL_NAME: &str = "LINKERD2_PROXY_IDENTITY_LOCAL_NAME";
pub const TOKEN_FILE: &str = "LINKERD2_PROXY_IDENTITY_TOKEN_FILE";
pub const TRUST_ANCHORS: &str = "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS";
pub const MIN_REFRESH: &str = "LINKERD2_PROXY_IDENTITY_MIN_REFRESH";
pub const MAX_REFRESH: &str = "LINKERD2_PROXY_IDENTITY_MAX_REFRESH";
/// Linkerd's certificate files (`MESH_PROXY_IDENTITY_CERT_FILE`); when set, they are the
/// identity and the identity service is not asked.
pub const CERT_FILE: &str = "MESH_PROXY_IDENTITY_CERT_FILE";

/// Linkerd's defaults: a certificate is renewed at 70 % of its life, but never sooner than
/// 10 s nor later than a day after it was received.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);

/// The largest token read from the token file; a service-account token is 1 to 2 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Where the identity service is and what the proxy asks it for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifyConfig {
    /// `LINKERD2_PROXY_IDENTITY_SVC_ADDR`: `host:port`, the host looked up on each attempt.
    pub addr: ControlAddr,
    /// `LINKERD2_PROXY_IDENTITY_SVC_NAME`: the identity the service must present.
    pub server_name: String,
    /// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME`: the identity the proxy asks for.
    pub local_name: String,
    /// `LINKERD2_PROXY_IDENTITY_TOKEN_FILE`: the service-account token, read again for every
    /// request (the kubelet rotates it).
    pub token_file: PathBuf,
    /// `LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS`: the PEM bundle both the service's
    /// certificate and ours must chain to.
    pub trust_anchors: crate::identity::TrustAnchors,
    /// `LINKERD2_PROXY_IDENTITY_MIN_REFRESH`, `…_MAX_REFRESH`: bounds of the renewal delay.
    pub min_refresh: Duration,
    pub max_refresh: Duration,
}

impl Reader<'_> {
    /// The identity service's settings: `None` when `LINKERD2_PROXY_IDENTITY_SVC_ADDR` is
    /// unset or empty, or when certificate files are configured instead.
    pub(super) fn certify(&mut self) -> Option<CertifyConfig> {
        let min_refresh = self.duration(MIN_REFRESH, DEFAULT_MIN_REFRESH);
        let max_refresh = self.duration(MAX_REFRESH, DEFAULT_MAX_REFRESH);
        let value = self.env.var(SVC_ADDR).filter(|v| !v.trim().is_empty())?;
        if self
            .env
            .var(CERT_FILE)
            .is_some_and(|v| !v.trim().is_empty())
        {
            return None;
        }
        let addr = control_addr(&value);
        if addr.is_none() {
            self.errors.push(ConfigError::HostPort {
                name: SVC_ADDR,
                value,
            });
        }
        let server_name = self.identity_name(SVC_NAME);
        let local_name = self.identity_name(LOCAL_NAME);
        let token_file = self.required(TOKEN_FILE).map(PathBuf::from);
        if let Some(path) = &token_file
            && let Err(reason) = read_token(path)
        {
            self.errors.push(ConfigError::File {
                name: TOKEN_FILE,
                value: path.display().to_string(),
                reason,
            });
        }
        let trust_anchors = self.required(TRUST_ANCHORS).and_then(|pem| {
            crate::identity::TrustAnchors::from_pem(pem.as_bytes())
                .map_err(|e| {
                    self.errors.push(ConfigError::TrustAnchors {
                        name: TRUST_ANCHORS,
                        reason: e.to_string(),
                    })
                })
                .ok()
        });
        Some(CertifyConfig {
            addr: addr?,
            server_name: server_name?,
            local_name: local_name?,
            token_file: token_file?,
            trust_anchors: trust_anchors?,
            min_refresh,
            max_refresh,
        })
    }

    /// A variable the identity service needs; its absence is an error.
    fn required(&mut self, name: &'static str) -> Option<String> {
        let value = self.env.var(name).filter(|v| !v.trim().is_empty());
        if value.is_none() {
            self.errors.push(ConfigError::Requires {
                name: SVC_ADDR,
                needs: name,
            });
        }
        value
    }

    /// A required identity name: a DNS name without a trailing dot, as certificates carry it.
    fn identity_name(&mut self, name: &'static str) -> Option<String> {
        let value = self.required(name)?;
        self.check_identity_name(name, value)
    }
}

/// Reads the token as the identity client sends it: at most [`MAX_TOKEN_BYTES`], trailing
/// whitespace (a newline an editor added) removed, and not empty.
pub fn read_token(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let mut token = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_BYTES as u64 + 1).read_to_end(&mut token))
        .map_err(|e| e.to_string())?;
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("longer than {MAX_TOKEN_BYTES} bytes"));
    }
    let end = token
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    token.truncate(end);
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    Ok(token)
}

#[cfg(test)]
mod tests;
