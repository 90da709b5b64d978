//! Opening connections to endpoints: the innermost stage of both directions.
//!
//! This is where mesh TLS wraps outbound connections: to an endpoint discovery gave an
//! identity, when the proxy has an identity of its own, the connection is TLS (see
//! [`crate::tls`]) and its `tls` label names the server; any other is plaintext, labelled
//! with its direction's reason. A failed handshake is a connection error
//! ([`ConnectError::Tls`]); the connection is never retried in plaintext.
//!
//! It also holds the one connection opened before a client connection's protocol is known:
//! the server-speaks-first check ([`Upstream::preconnect`]) opens it, and the server caches
//! it for that client connection with [`with_preconnected`]. The first connect made while
//! serving that client connection takes it, whichever stage (HTTP or opaque TCP) makes it,
//! so no stage between detection and here carries it.

mod preconnect;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::balance::{BalanceSettings, Balancer};
use crate::config::{ConnectTimeout, SocketOptions};
use crate::io::{MeteredIo, ProxyIo, Stream, sockopt};
use crate::metrics::{Direction, Metrics, Peer, TcpKey, Tls};
use crate::outbound::discover::Endpoint;
use crate::target::Logical;
use crate::tls::{MeshTls, TransportHeader};

pub use preconnect::{spawn_in_connection, with_preconnected};

/// An open upstream connection.
#[derive(Debug)]
pub struct Connection {
    pub io: ProxyIo,
    pub peer: SocketAddr,
    /// Its `tls` label: whether it is mesh TLS, and to which identity. A pooled connection
    /// is reused only for an endpoint that would get the same label now, so a change of an
    /// endpoint's identity never leaves requests on a connection made for the old one.
    pub tls: Tls,
}

/// Reading a `Connection` reads its socket; detection uses this to see whether a server
/// speaks first.
impl tokio::io::AsyncRead for Connection {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

/// Why an upstream connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The endpoint did not accept within the connect timeout.
    #[error("connect to {addr} timed out after {}ms", timeout.as_millis())]
    Timeout {
        addr: SocketAddr,
        timeout: std::time::Duration,
    },
    /// The endpoint refused the connection, or the network failed.
    #[error("connect to {addr}: {error}")]
    Io { addr: SocketAddr, error: io::Error },
    /// The destination is one of the proxy's own listeners.
    #[error("{addr} is this proxy's own listener; refusing to loop")]
    Loop { addr: SocketAddr },
    /// Mesh TLS with the endpoint failed: it presented no certificate for the identity
    /// discovery gave it, or none under the trust anchors, or the handshake broke off.
    #[error("mesh TLS to {addr} expecting identity {identity}: {error}")]
    Tls {
        addr: SocketAddr,
        identity: Arc<str>,
        error: crate::tls::TlsError,
    },
}

impl ConnectError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout { .. })
    }

    /// Whether the endpoint answered but failed mesh TLS. Such a failure is reported to the
    /// client as it is, not hidden by moving the request to another endpoint: it says the
    /// endpoint is not who discovery said it is.
    pub fn is_tls(&self) -> bool {
        matches!(self, ConnectError::Tls { .. })
    }
}

/// What a direction's stack offers the HTTP and TCP stages: a balancer for each logical
/// target, and connections to the endpoints it picks. Inbound has one fixed endpoint per
/// target; outbound discovers and balances.
pub trait Upstream: Send + Sync + 'static {
    /// The balancer of `target`. `authority` is the request's `Host` or `:authority`
    /// (`None` for opaque TCP), which outbound may route by. Callers keep the balancer for
    /// as long as the connection's requests share a target.
    fn balancer(&self, target: &Logical, authority: Option<&str>) -> Arc<Balancer>;

    /// The `tls` label of connections to `endpoint` (outbound HTTP metrics carry it).
    fn tls(&self, endpoint: &Endpoint) -> Tls;

    /// Opens a connection to a picked endpoint.
    fn connect(
        &self,
        endpoint: &Endpoint,
    ) -> impl Future<Output = Result<Connection, ConnectError>> + Send;

    /// Opens a connection for opaque TCP to a picked endpoint: outbound, through the
    /// transport header when the endpoint has an opaque-transport hint and an identity.
    fn connect_opaque(
        &self,
        endpoint: &Endpoint,
    ) -> impl Future<Output = Result<Connection, ConnectError>> + Send {
        self.connect(endpoint)
    }

    /// Opens a connection to an endpoint of `target` before the client has sent anything,
    /// for the server-speaks-first check. `None` when there is no endpoint or it cannot be
    /// reached: the check is skipped, and the stage that serves the connection fails it
    /// the usual way.
    fn preconnect(&self, target: &Logical) -> impl Future<Output = Option<Connection>> + Send {
        async move {
            let picked = self.balancer(target, None).pick().await.ok()?;
            self.connect(picked.endpoint()).await.ok()
        }
    }
}

/// Opens connections to endpoints, with the direction's timeout and socket options, and
/// mesh TLS where the endpoint has an identity.
#[derive(Debug, Clone)]
pub struct Connect {
    direction: Direction,
    timeout: ConnectTimeout,
    options: SocketOptions,
    /// The `tls` label of plaintext connections.
    tls: Tls,
    metrics: Arc<Metrics>,
    own_listeners: Arc<[SocketAddr]>,
    /// Set when this side originates mesh TLS and the proxy has an identity.
    mesh_tls: Option<Arc<MeshTls>>,
}

impl Connect {
    pub fn new(
        direction: Direction,
        timeout: ConnectTimeout,
        options: SocketOptions,
        tls: Tls,
        metrics: Arc<Metrics>,
        own_listeners: Arc<[SocketAddr]>,
    ) -> Self {
        Connect {
            direction,
            timeout,
            options,
            tls,
            metrics,
            own_listeners,
            mesh_tls: None,
        }
    }

    /// Connects with mesh TLS to endpoints that have an identity.
    pub fn with_mesh_tls(mut self, mesh_tls: Option<Arc<MeshTls>>) -> Self {
        self.mesh_tls = mesh_tls;
        self
    }

    /// The `tls` label of connections to `endpoint`: the identity it must present when the
    /// connection is mesh TLS, else this direction's reason for plaintext.
    pub fn tls_for(&self, endpoint: &Endpoint) -> Tls {
        match (&self.mesh_tls, &endpoint.identity) {
            (Some(_), Some(id)) => Tls::Connected {
                server_id: id.clone(),
            },
            _ => self.tls.clone(),
        }
    }

    /// Connects to one endpoint address in plaintext (see [`Connect::connect_endpoint`]).
    pub async fn connect_addr(&self, addr: SocketAddr) -> Result<Connection, ConnectError> {
        self.connect_endpoint(&Endpoint::bare(addr)).await
    }

    /// Connects to a picked endpoint, with mesh TLS if it has an identity and this side
    /// speaks it, or hands out the connection the client connection being served
    /// preconnected to it (see [`with_preconnected`]). The connect timeout bounds the TCP
    /// connect and the TLS handshake together.
    pub async fn connect_endpoint(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        self.connect_with(endpoint, false).await
    }

    /// Connects for opaque TCP: as [`Connect::connect_endpoint`], except that an endpoint
    /// with an opaque-transport hint reached over mesh TLS is dialled on its proxy's inbound
    /// port, with the transport header naming the endpoint's port, as linkerd2-proxy does.
    pub async fn connect_opaque_endpoint(
        &self,
        endpoint: &Endpoint,
    ) -> Result<Connection, ConnectError> {
        self.connect_with(endpoint, true).await
    }

    async fn connect_with(
        &self,
        endpoint: &Endpoint,
        opaque: bool,
    ) -> Result<Connection, ConnectError> {
        let addr = endpoint.addr;
        if let Some(conn) = preconnect::take(addr) {
            return Ok(conn);
        }
        if self.is_own_listener(addr) {
            return Err(ConnectError::Loop { addr });
        }
        let tls = self.tls_for(endpoint);
        // The transport header needs mesh TLS: without an identity the hint is ignored.
        let header_port = match (&self.mesh_tls, &tls, endpoint.opaque_transport) {
            (Some(_), Tls::Connected { .. }, Some(port)) if opaque => Some(port),
            _ => None,
        };
        let dial = header_port.map_or(addr, |p| SocketAddr::new(addr.ip(), p));
        tracing::debug!(%addr, %dial, direction = self.direction.as_str(), "connecting");
        let timeout = self.timeout.0;
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || ConnectError::Timeout {
            addr: dial,
            timeout,
        };
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(dial)).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(error)) => return Err(ConnectError::Io { addr: dial, error }),
            Ok(Ok(s)) => s,
        };
        sockopt::apply(&stream, self.options);
        let stream = match (&self.mesh_tls, &tls) {
            (
                Some(mesh),
                Tls::Connected {
                    server_id: identity,
                },
            ) => {
                // Boxed: the handshake's state is large, and every caller's future (one per
                // HTTP/2 stream) would otherwise carry it, TLS or not.
                let handshake = match header_port {
                    None => Box::pin(mesh.connect(stream, identity)),
                    Some(_) => Box::pin(mesh.connect_for_header(stream, identity))
                        as std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>>,
                };
                match tokio::time::timeout_at(deadline, handshake).await {
                    Err(_) => return Err(timed_out()),
                    Ok(Err(error)) => {
                        return Err(ConnectError::Tls {
                            addr: dial,
                            identity: identity.clone(),
                            error,
                        });
                    }
                    Ok(Ok(s)) => Stream::from(s),
                }
            }
            _ => Stream::from(stream),
        };
        let metrics = self.metrics.tcp(TcpKey {
            direction: self.direction,
            peer: Peer::Dst,
            target: addr,
            tls: tls.clone(),
        });
        let mut io = MeteredIo::new(stream, metrics.open());
        if header_port.is_some() {
            let header = TransportHeader {
                port: addr.port(),
                name: None,
                protocol: None,
            }
            .encode();
            match tokio::time::timeout_at(deadline, io.write_all(&header)).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(error)) => return Err(ConnectError::Io { addr: dial, error }),
                Ok(Ok(())) => {}
            }
        }
        Ok(Connection {
            io,
            peer: addr,
            tls,
        })
    }

    fn is_own_listener(&self, addr: SocketAddr) -> bool {
        self.own_listeners.iter().any(|l| {
            l.port() == addr.port()
                && (l.ip() == addr.ip()
                    || (l.ip().is_unspecified()
                        && (addr.ip().is_loopback() || addr.ip().is_unspecified())))
        })
    }
}

/// Inbound has no discovery: the target is an address on this pod.
impl Upstream for Connect {
    fn balancer(&self, target: &Logical, _: Option<&str>) -> Arc<Balancer> {
        Arc::new(match target {
            Logical::Addr(addr) => Balancer::fixed(*addr, BalanceSettings::default()),
            Logical::Name(..) => Balancer::unknown(&target.to_string()),
        })
    }

    fn tls(&self, endpoint: &Endpoint) -> Tls {
        self.tls_for(endpoint)
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        self.connect_addr(endpoint.addr).await
    }
}

/// The errno name Linkerd puts in `tcp_close_total`'s `errno` label.
pub fn errno_name(error: &io::Error) -> &'static str {
    use nix::errno::Errno;
    match error.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ECONNRESET) => "ECONNRESET",
        Some(Errno::ECONNREFUSED) => "ECONNREFUSED",
        Some(Errno::ECONNABORTED) => "ECONNABORTED",
        Some(Errno::ETIMEDOUT) => "ETIMEDOUT",
        Some(Errno::EPIPE) => "EPIPE",
        Some(Errno::EHOSTUNREACH) => "EHOSTUNREACH",
        Some(Errno::ENETUNREACH) => "ENETUNREACH",
        Some(_) => "EIO",
        None => "",
    }
}
