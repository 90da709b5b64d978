//! The identity service's own TLS: a certificate for its identity name, issued by the current
//! issuer and renewed before it expires or when the issuer changes, and the accept loop that
//! hands finished handshakes to the gRPC server.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use mesh_pki::{Issuer, Validity};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many connections at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 10_000;
/// How soon to try again when renewing fails (the issuer expired, say).
const RETRY: Duration = Duration::from_secs(10);

/// The current serving certificate, swapped on renewal.
#[derive(Debug)]
pub struct ServingCert {
    name: String,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServingCert {
    /// A certificate for `name` from `issuer`, and when it expires.
    pub fn issue(
        name: &str,
        issuer: &Issuer,
        validity: Validity,
    ) -> anyhow::Result<(ServingCert, SystemTime)> {
        let (key, expires) = certified_key(name, issuer, validity)?;
        let cert = ServingCert {
            name: name.to_owned(),
            current: RwLock::new(key),
        };
        Ok((cert, expires))
    }

    fn replace(&self, key: Arc<CertifiedKey>) {
        match self.current.write() {
            Ok(mut current) => *current = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }

    fn get(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// A certified key and when its certificate expires.
fn certified_key(
    name: &str,
    issuer: &Issuer,
    validity: Validity,
) -> anyhow::Result<(Arc<CertifiedKey>, SystemTime)> {
    let now = SystemTime::now();
    let (leaf, key) = issuer.issue_with_key(name, validity, now)?;
    let provider = rustls::crypto::ring::default_provider();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let signing = provider.key_provider.load_private_key(key)?;
    let chain = std::iter::once(leaf.der)
        .chain(leaf.chain)
        .map(CertificateDer::from)
        .collect();
    Ok((Arc::new(CertifiedKey::new(chain, signing)), leaf.not_after))
}

/// The server configuration: TLS 1.2 and 1.3 with ring, ALPN h2, no client certificates (proxies
/// authenticate with their token).
pub fn server_config(cert: Arc<ServingCert>) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Renews the serving certificate two thirds into its life, and whenever the issuer changes.
pub async fn renew(
    cert: Arc<ServingCert>,
    mut issuer: watch::Receiver<Arc<Issuer>>,
    validity: Validity,
    mut expires: SystemTime,
    shutdown: CancellationToken,
) {
    let mut issued = SystemTime::now();
    loop {
        let life = expires.duration_since(issued).unwrap_or_default();
        let wait = (issued + life * 2 / 3)
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = issuer.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        let current = issuer.borrow_and_update().clone();
        match certified_key(&cert.name, &current, validity) {
            Ok((key, not_after)) => {
                cert.replace(key);
                (issued, expires) = (SystemTime::now(), not_after);
                tracing::info!(name = %cert.name, ?not_after, "serving certificate renewed");
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot renew the serving certificate");
                issued = SystemTime::now();
                expires = issued + RETRY * 3 / 2;
            }
        }
    }
}

/// A TLS connection, holding its place among [`MAX_CONNECTIONS`].
pub struct TlsConn {
    io: TlsStream<TcpStream>,
    remote: SocketAddr,
    _permit: OwnedSemaphorePermit,
}

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = SocketAddr;
    fn connect_info(&self) -> SocketAddr {
        self.remote
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts until `shutdown`, handshaking each connection in its own task, and yields finished
/// connections as a stream for the gRPC server.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(128);
    tokio::spawn(accept(listener, acceptor, tx, shutdown));
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|conn| (Ok(conn), rx))
    })
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<TlsConn>,
    shutdown: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::debug!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(io)) => {
                    let conn = TlsConn {
                        io,
                        remote,
                        _permit: permit,
                    };
                    let _ = tx.send(conn).await;
                }
                Ok(Err(err)) => tracing::debug!(%remote, %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
}
