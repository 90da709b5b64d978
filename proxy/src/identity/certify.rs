//! Linkerd's identity client: the proxy's certificate from the control plane's
//! `io.linkerd.proxy.identity.Identity/Certify`.
//!
//! At start-up [`Certify::new`] makes an ECDSA P-256 key and a certificate signing request
//! for `LINKERD2_PROXY_IDENTITY_LOCAL_NAME` (the name as the only DNS name and as the common
//! name) in memory. The key is never written anywhere. Linkerd's proxy container writes its
//! key and CSR into `LINKERD2_PROXY_IDENTITY_DIR`, an in-memory volume, before the proxy
//! starts; mesh-proxy accepts that variable and ignores it. As in Linkerd, one key and one
//! CSR serve every renewal for the life of the process.
//!
//! [`Certify::run`] then loops:
//!
//! 1. read the token file again (the kubelet rotates the token);
//! 2. connect to `LINKERD2_PROXY_IDENTITY_SVC_ADDR` (the name looked up again) over TLS,
//!    requiring the service to present `LINKERD2_PROXY_IDENTITY_SVC_NAME` chained to the
//!    trust anchors, and call `Certify`;
//! 3. check the answer: not expired, the leaf valid for our name and chained to the same
//!    anchors, and made for our key; then send it into the [`CredentialsTx`];
//! 4. sleep until 70 % of the time left on the certificate has passed, never less than
//!    `LINKERD2_PROXY_IDENTITY_MIN_REFRESH` (10 s) nor more than `…_MAX_REFRESH` (24 h),
//!    as Linkerd does ([`refresh_delay`]).
//!
//! An attempt has [`Timing::attempt_timeout`] (10 s) to finish. A failed attempt keeps the
//! current certificate and is logged as an error; the next one follows a jittered exponential
//! backoff from 1 s to 60 s ([`Timing`]). Linkerd waits `MIN_REFRESH` after every failure;
//! mesh-proxy starts sooner, so a pod whose token was not yet valid becomes ready within
//! seconds, and backs off further, so a refusing control plane is not asked six times a
//! minute by every proxy. Each attempt opens its own connection and closes it: calls are
//! hours apart.

mod connect;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SigningKey};

use super::{Credentials, CredentialsRx, CredentialsTx};
use crate::backoff::Backoff;
use crate::config::{CertifyConfig, read_token};

/// The largest answer accepted: a leaf and its intermediates, with room to spare.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Timers of the client. [`Timing::default`] is what the proxy runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The first delay after a failure (1 s); each further failure doubles it, up to
    /// `backoff_max` (60 s). Each delay is jittered down by up to half.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Time allowed for one attempt: token, connection, TLS, call (10 s).
    pub attempt_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the client cannot start, or why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    /// The key or the certificate signing request could not be made.
    #[error("making the key and certificate signing request: {0}")]
    Key(String),
    /// The TLS client could not be configured.
    #[error("configuring TLS to the identity service: {0}")]
    Tls(String),
    /// The token file could not be read, or holds no token.
    #[error("reading the token {path}: {reason}")]
    Token { path: String, reason: String },
    /// No connection (TCP or TLS, the service's certificate included) could be made.
    #[error("connecting to the identity service at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The service answered the call with an error status.
    #[error("the identity service at {addr} refused: {message} ({code:?})")]
    Refused {
        addr: String,
        code: tonic::Code,
        message: String,
    },
    /// The attempt did not finish in time.
    #[error("no answer from the identity service at {addr} within {after:?}")]
    Timeout { addr: String, after: Duration },
    /// The answer cannot be our certificate.
    #[error("the identity service's answer cannot be used: {0}")]
    Response(String),
}

/// The identity client of one proxy: its key, its CSR and how it reaches the service.
pub struct Certify {
    config: CertifyConfig,
    timing: Timing,
    key_pair: rcgen::KeyPair,
    signing_key: Arc<dyn SigningKey>,
    csr: Vec<u8>,
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    local_name: ServerName<'static>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for Certify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certify")
            .field("config", &self.config)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Certify {
    /// A client for `config` with [`Timing::default`]: makes the key and the CSR.
    pub fn new(config: CertifyConfig) -> Result<Certify, CertifyError> {
        Certify::with_timing(config, Timing::default())
    }

    /// [`Certify::new`] with other timers (tests use short ones).
    pub fn with_timing(config: CertifyConfig, timing: Timing) -> Result<Certify, CertifyError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CertifyError::Key(e.to_string()))?;
        let csr = csr(&config.local_name, &key_pair)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertifyError::Key(e.to_string()))?;
        let roots = config.trust_anchors.roots();
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| CertifyError::Tls(e.to_string()))?;
        let tls = connect::client_config(provider, (*roots).clone())
            .map_err(|e| CertifyError::Tls(e.to_string()))?;
        let name = |name: &str| {
            ServerName::try_from(name.to_owned())
                .map_err(|e| CertifyError::Tls(format!("{name:?}: {e}")))
        };
        Ok(Certify {
            server_name: name(&config.server_name)?,
            local_name: name(&config.local_name)?,
            config,
            timing,
            key_pair,
            signing_key,
            csr,
            tls: Arc::new(tls),
            verifier,
        })
    }

    /// Runs the client on a task of its own; the receiver sees each certificate.
    pub fn spawn(self) -> CredentialsRx {
        let (tx, rx) = tokio::sync::watch::channel(None);
        tokio::spawn(self.run(tx));
        rx
    }

    /// Asks for a certificate, then renews it, until every receiver of `tx` is gone.
    pub async fn run(self, tx: CredentialsTx) {
        let mut backoff = Backoff::new(self.timing.backoff_min, self.timing.backoff_max);
        loop {
            let attempt = tokio::time::timeout(self.timing.attempt_timeout, self.certify()).await;
            let result = attempt.unwrap_or_else(|_| {
                Err(CertifyError::Timeout {
                    addr: self.config.addr.to_string(),
                    after: self.timing.attempt_timeout,
                })
            });
            let delay = match result {
                Ok(credentials) => {
                    backoff.reset();
                    let delay = refresh_delay(
                        SystemTime::now(),
                        credentials.not_after,
                        self.config.min_refresh,
                        self.config.max_refresh,
                    );
                    tracing::info!(
                        "identity: certified {}, valid until {}",
                        credentials.name,
                        http_date(credentials.not_after)
                    );
                    tracing::debug!(renew_in = ?delay, "identity: certificate received");
                    tx.send_replace(Some(Arc::new(credentials)));
                    delay
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::error!(
                        "identity: certification failed: {error}; trying again in {:.1}s",
                        delay.as_secs_f64()
                    );
                    delay
                }
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = tx.closed() => return,
            }
        }
    }

    /// One attempt: the token, a connection, the call, the answer checked.
    async fn certify(&self) -> Result<Credentials, CertifyError> {
        let path = self.config.token_file.clone();
        let token = tokio::task::spawn_blocking(move || read_token(&path))
            .await
            .map_err(|e| e.to_string())
            .and_then(|read| read)
            .map_err(|reason| CertifyError::Token {
                path: self.config.token_file.display().to_string(),
                reason,
            })?;
        let addr = self.config.addr.to_string();
        let channel = connect::channel(
            &self.config.addr,
            self.server_name.clone(),
            self.tls.clone(),
        )
        .await
        .map_err(|reason| CertifyError::Connect {
            addr: addr.clone(),
            reason,
        })?;
        let mut client = IdentityClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let request = CertifyRequest {
            identity: self.config.local_name.clone(),
            token,
            certificate_signing_request: self.csr.clone(),
        };
        let response = client
            .certify(request)
            .await
            .map_err(|status| CertifyError::Refused {
                addr,
                code: status.code(),
                message: status.message().to_owned(),
            })?
            .into_inner();
        self.accept(response, SystemTime::now())
    }

    /// The credentials in `response`, if they are a certificate for us that is valid `now`.
    fn accept(
        &self,
        response: CertifyResponse,
        now: SystemTime,
    ) -> Result<Credentials, CertifyError> {
        let bad = |reason: String| CertifyError::Response(reason);
        let valid_until = response
            .valid_until
            .ok_or_else(|| bad("it has no valid_until".into()))?;
        let not_after = u64::try_from(valid_until.seconds)
            .ok()
            .and_then(|secs| {
                let nanos = u32::try_from(valid_until.nanos)
                    .unwrap_or(0)
                    .min(999_999_999);
                UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
            })
            .ok_or_else(|| bad(format!("valid_until {valid_until:?} is not a time")))?;
        if not_after <= now {
            return Err(bad(format!("it expired on {}", http_date(not_after))));
        }
        if response.leaf_certificate.is_empty() {
            return Err(bad("it has no certificate".into()));
        }
        let chain: Vec<CertificateDer<'static>> = std::iter::once(response.leaf_certificate)
            .chain(response.intermediate_certificates)
            .map(CertificateDer::from)
            .collect();
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| bad("it has no certificate".into()))?;
        let now_unix =
            UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        self.verifier
            .verify_server_cert(leaf, intermediates, &self.local_name, &[], now_unix)
            .map_err(|e| {
                bad(format!(
                    "the certificate is not valid for {}: {e}",
                    self.config.local_name
                ))
            })?;
        CertifiedKey::new(chain.clone(), self.signing_key.clone())
            .keys_match()
            .map_err(|e| bad(format!("the certificate is not for our key: {e}")))?;
        Ok(Credentials {
            name: self.config.local_name.clone(),
            chain,
            key: PrivatePkcs8KeyDer::from(self.key_pair.serialize_der()),
            not_after,
        })
    }
}

/// When to renew a certificate that expires at `not_after`, as Linkerd does: after 70 % of
/// the time it has left, but never sooner than `min` nor later than `max` (a certificate
/// already expired is renewed after `min`).
pub fn refresh_delay(
    now: SystemTime,
    not_after: SystemTime,
    min: Duration,
    max: Duration,
) -> Duration {
    match not_after.duration_since(now) {
        Ok(left) if !left.is_zero() => {
            let delay = left.mul_f64(0.7);
            if delay < min {
                min
            } else if delay > max {
                max
            } else {
                delay
            }
        }
        _ => min,
    }
}

/// A DER PKCS#10 request for `name` (the one DNS name, and the common name, as Linkerd's
/// proxies ask).
fn csr(name: &str, key_pair: &rcgen::KeyPair) -> Result<Vec<u8>, CertifyError> {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| CertifyError::Key(e.to_string()))?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, name);
    params.distinguished_name = subject;
    let request = params
        .serialize_request(key_pair)
        .map_err(|e| CertifyError::Key(e.to_string()))?;
    Ok(request.der().to_vec())
}

/// An error and its causes, `: `-separated (tonic's transport errors say little at the top).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    let mut depth = 0;
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    text
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    String::from_utf8_lossy(&crate::http::imf_fixdate(secs)).into_owned()
}
