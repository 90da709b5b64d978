//! Mesh TLS between proxies: TLS 1.3 (rustls with ring), both sides authenticated by
//! certificates under the trust anchors, each identity the certificate's DNS name.
//!
//! - **Outbound** ([`MeshTls::connect`]): to an endpoint discovery gave an identity, the
//!   proxy connects with TLS, SNI the endpoint's identity, its own certificate as the client
//!   certificate (none before it has one, as linkerd2-proxy), and the server's chain checked
//!   against the anchors and the expected name. A handshake that fails is a connection error;
//!   nothing is ever sent in plaintext instead. The destination and policy clients connect to
//!   their services the same way (`control::Transport`), after the first certificate.
//! - **Inbound** ([`MeshTls::accept`]): a connection whose first bytes are a ClientHello for
//!   this proxy's identity is terminated here, and protocol detection runs on the decrypted
//!   stream; a client certificate is verified if sent, and optional ([`ClientTls`]). A
//!   ClientHello for another name (or none) is passed through as opaque TCP, bytes intact.
//!
//! The rustls configurations are built from the current credentials the first time a
//! connection needs them after they change, and shared by every connection until the next
//! change. [`TlsStream`] carries the decrypted bytes with the same readiness-based `&self`
//! I/O a TCP stream offers, so the lean HTTP/1 paths work over it unchanged.
//!
//! The server offers one ALPN protocol, Linkerd's `transport.l5d.io/v1`: a client that
//! negotiates it sends a [`TransportHeader`] naming the port the connection is for, read
//! here ([`MeshTls::accept`], bounded in size and by the handshake's deadline) and acted on
//! by the inbound server. Clients that offer no ALPN protocol negotiate none. The client
//! offers no ALPN protocol ([`MeshTls::connect`]), except on connections that will carry
//! the header ([`MeshTls::connect_for_header`], used for opaque TCP to an endpoint with an
//! opaque-transport hint, see `connect`).

mod accept;
mod client_hello;
mod stream;
#[cfg(test)]
mod tests;
pub mod transport_header;

use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig};
use tokio::net::TcpStream;

pub use accept::{Accepted, MAX_CLIENT_HELLO};
pub use client_hello::{ClientHello, parse_client_hello};
pub use stream::TlsStream;
pub use transport_header::{HeaderError, TransportHeader};

use crate::identity::{Credentials, CredentialsRx, IdentityError, TrustAnchors};
use crate::metrics::Tls;

/// What the inbound side knows of a client connection's mesh TLS, for what authorizes it
/// (`inbound::policy`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientTls {
    /// Not mesh TLS: plaintext, or TLS for another name passed through untouched.
    Plain,
    /// Mesh TLS terminated here; the client presented no certificate.
    Unauthenticated,
    /// Mesh TLS terminated here; the client's identity, from its certificate.
    Authenticated(String),
}

impl ClientTls {
    /// The `tls` label of the connection: `plain` when it is not mesh TLS.
    pub fn label(&self, plain: Tls) -> Tls {
        match self {
            ClientTls::Plain => plain,
            ClientTls::Unauthenticated => Tls::Accepted { client_id: None },
            ClientTls::Authenticated(id) => Tls::Accepted {
                client_id: Some(id.as_str().into()),
            },
        }
    }
}

/// The one crypto provider: ring, passed explicitly to every builder.
static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

/// TLS 1.3 only, as linkerd2-proxy.
static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// Why a mesh TLS connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The identity is not a DNS name, so it cannot be a TLS server name.
    #[error("{0:?} is not a DNS name")]
    Name(String),
    /// The handshake failed (a certificate was refused, the peer closed, a timeout).
    #[error("{0}")]
    Handshake(std::io::Error),
    /// The client negotiated the transport header and sent no valid one.
    #[error("{0}")]
    Header(#[from] HeaderError),
    /// No TLS configuration can be built (the trust anchors or credentials are unusable).
    #[error("{0}")]
    Config(String),
}

/// The proxy's mesh TLS: trust anchors, the credentials channel, and the rustls
/// configurations built from the current credentials.
pub struct MeshTls {
    credentials: CredentialsRx,
    server_verifier: Arc<WebPkiServerVerifier>,
    client_verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    /// How long the inbound side waits for a client's first bytes before deciding the
    /// connection is not mesh TLS.
    first_bytes: Duration,
    /// `LINKERD2_PROXY_IDENTITY_LOCAL_NAME`: recognises a ClientHello for this proxy before
    /// it has credentials.
    local_name: Option<String>,
    configs: Mutex<Option<Arc<Configs>>>,
}

impl std::fmt::Debug for MeshTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshTls").finish_non_exhaustive()
    }
}

/// The configurations for one set of credentials.
struct Configs {
    credentials: Option<Arc<Credentials>>,
    /// Unusable only if the anchors are (then no outbound mesh TLS is possible).
    client: Result<Arc<ClientConfig>, String>,
    /// `client`, offering the transport header's ALPN protocol.
    client_header: Result<Arc<ClientConfig>, String>,
    /// `None` until there are credentials: nothing can be served without a certificate.
    server: Option<Arc<ServerConfig>>,
}

impl MeshTls {
    /// `first_bytes` bounds the inbound wait for a ClientHello (see [`MeshTls::accept`]);
    /// `local_name` is the identity the proxy will hold, if configured.
    pub fn new(
        anchors: &TrustAnchors,
        credentials: CredentialsRx,
        local_name: Option<String>,
        first_bytes: Duration,
    ) -> Result<Arc<MeshTls>, TlsError> {
        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(anchors.roots(), PROVIDER.clone())
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(anchors.roots(), PROVIDER.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Arc::new(MeshTls {
            credentials,
            server_verifier,
            client_verifier,
            first_bytes,
            local_name,
            configs: Mutex::new(None),
        }))
    }

    /// Opens mesh TLS over `tcp` to a server that must present `server_id`: the SNI, and
    /// the name its certificate must carry.
    pub async fn connect(&self, tcp: TcpStream, server_id: &str) -> Result<TlsStream, TlsError> {
        let name = ServerName::try_from(server_id.to_owned())
            .map_err(|_| TlsError::Name(server_id.to_owned()))?;
        let config = self.configs().client.clone().map_err(TlsError::Config)?;
        let conn =
            ClientConnection::new(config, name).map_err(|e| TlsError::Config(e.to_string()))?;
        TlsStream::handshake(tcp, Connection::Client(conn), &[])
            .await
            .map_err(TlsError::Handshake)
    }

    /// Opens mesh TLS as [`MeshTls::connect`] does, offering the transport header's ALPN
    /// protocol; a server that does not negotiate it fails the connection, since the header
    /// cannot be sent.
    pub async fn connect_for_header(
        &self,
        tcp: TcpStream,
        server_id: &str,
    ) -> Result<TlsStream, TlsError> {
        let name = ServerName::try_from(server_id.to_owned())
            .map_err(|_| TlsError::Name(server_id.to_owned()))?;
        let config = self
            .configs()
            .client_header
            .clone()
            .map_err(TlsError::Config)?;
        let conn =
            ClientConnection::new(config, name).map_err(|e| TlsError::Config(e.to_string()))?;
        let stream = TlsStream::handshake(tcp, Connection::Client(conn), &[])
            .await
            .map_err(TlsError::Handshake)?;
        if stream.alpn_protocol().as_deref() != Some(transport_header::ALPN) {
            return Err(TlsError::Handshake(std::io::Error::other(
                "the server did not negotiate the transport header (transport.l5d.io/v1)",
            )));
        }
        Ok(stream)
    }

    /// Waits until the proxy holds credentials (at once if it does), or until their source
    /// is gone.
    pub async fn credentials_ready(&self) {
        let mut credentials = self.credentials.clone();
        let _ = credentials.wait_for(Option::is_some).await;
    }

    /// Whether the proxy holds credentials now.
    pub fn has_credentials(&self) -> bool {
        self.credentials.borrow().is_some()
    }

    /// The configurations for the current credentials, rebuilt only when they changed.
    fn configs(&self) -> Arc<Configs> {
        let current = self.credentials.borrow().clone();
        let mut cached = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &*cached {
            let same = match (&c.credentials, &current) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if same {
                return c.clone();
            }
        }
        let built = Arc::new(self.build(current));
        *cached = Some(built.clone());
        built
    }

    fn build(&self, credentials: Option<Arc<Credentials>>) -> Configs {
        let client = self.client_config(credentials.as_deref());
        let server = credentials
            .as_deref()
            .and_then(|c| match self.server_config(c) {
                Ok(s) => Some(Arc::new(s)),
                Err(error) => {
                    tracing::warn!(%error, "cannot serve mesh TLS with the current certificate");
                    None
                }
            });
        let client_header = client.clone().map(|mut c| {
            c.alpn_protocols = vec![transport_header::ALPN.to_vec()];
            Arc::new(c)
        });
        Configs {
            credentials,
            client: client.map(Arc::new),
            client_header,
            server,
        }
    }

    /// Our certificate as the client certificate (none without credentials, or if it is
    /// unusable); the server's chain checked against the anchors and the expected name.
    fn client_config(&self, credentials: Option<&Credentials>) -> Result<ClientConfig, String> {
        let builder = || {
            ClientConfig::builder_with_provider(PROVIDER.clone())
                .with_protocol_versions(VERSIONS)
                .map(|b| b.with_webpki_verifier(self.server_verifier.clone()))
                .map_err(|e| e.to_string())
        };
        let with_cert = credentials.map(|c| {
            builder()?
                .with_client_auth_cert(c.chain.clone(), PrivateKeyDer::Pkcs8(c.key.clone_key()))
                .map_err(|e| e.to_string())
        });
        let mut config = match with_cert {
            Some(Ok(c)) => c,
            Some(Err(error)) => {
                tracing::warn!(%error, "cannot present the current certificate to servers");
                builder()?.with_no_client_auth()
            }
            None => builder()?.with_no_client_auth(),
        };
        // Proxies do not resume sessions.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(config)
    }

    /// Our certificate; client certificates requested, verified against the anchors, and
    /// optional.
    fn server_config(&self, c: &Credentials) -> Result<ServerConfig, String> {
        let mut config = ServerConfig::builder_with_provider(PROVIDER.clone())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(self.client_verifier.clone())
            .with_single_cert(c.chain.clone(), PrivateKeyDer::Pkcs8(c.key.clone_key()))
            .map_err(|e| e.to_string())?;
        // Offered so linkerd2-proxy clients can send the transport header; a client that
        // offers no ALPN protocol negotiates none.
        config.alpn_protocols = vec![transport_header::ALPN.to_vec()];
        // Proxies do not resume sessions: no tickets, no cache.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(config)
    }
}

/// Checks credentials as the proxy will use them: the key loads with the provider and is
/// the leaf's, and the chain leads to a trust anchor and names the identity at `now`.
pub fn check_credentials(
    credentials: &Credentials,
    anchors: &TrustAnchors,
    now: SystemTime,
) -> Result<(), IdentityError> {
    let untrusted = |reason: String| IdentityError::Untrusted {
        name: credentials.name.clone(),
        reason,
    };
    let Some((leaf, intermediates)) = credentials.chain.split_first() else {
        return Err(untrusted("the chain is empty".to_owned()));
    };
    let key = PROVIDER
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(credentials.key.clone_key()))
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    match CertifiedKey::new(credentials.chain.clone(), key).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(IdentityError::Key(
                "it is not the certificate's key".to_owned(),
            ));
        }
    }
    let name = ServerName::try_from(credentials.name.as_str())
        .map_err(|e| untrusted(e.to_string()))?
        .to_owned();
    let verifier = WebPkiServerVerifier::builder_with_provider(anchors.roots(), PROVIDER.clone())
        .build()
        .map_err(|e| untrusted(e.to_string()))?;
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    verifier
        .verify_server_cert(
            leaf,
            intermediates,
            &name,
            &[],
            UnixTime::since_unix_epoch(since_epoch),
        )
        .map_err(|e| untrusted(e.to_string()))?;
    Ok(())
}
