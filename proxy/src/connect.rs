//! Opening connections to endpoints: the innermost stage of both directions.
//!
//! This is where mesh TLS will wrap outbound connections: a `Connection` carries the `tls`
//! label its metrics use, and today that is always "no identity".
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

use tokio::net::TcpStream;

use crate::balance::{BalanceSettings, Balancer};
use crate::config::{ConnectTimeout, SocketOptions};
use crate::io::{MeteredIo, ProxyIo, Stream, sockopt};
use crate::metrics::{Direction, Metrics, Peer, TcpKey, Tls};
use crate::outbound::discover::Endpoint;
use crate::target::Logical;

pub use preconnect::{spawn_in_connection, with_preconnected};

/// An open upstream connection.
#[derive(Debug)]
pub struct Connection {
    pub io: ProxyIo,
    pub peer: SocketAddr,
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
}

impl ConnectError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout { .. })
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

/// Opens TCP connections to endpoints, with the direction's timeout and socket options.
#[derive(Debug, Clone)]
pub struct Connect {
    direction: Direction,
    timeout: ConnectTimeout,
    options: SocketOptions,
    tls: Tls,
    metrics: Arc<Metrics>,
    own_listeners: Arc<[SocketAddr]>,
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
        }
    }

    /// The `tls` label of connections to `endpoint`: this direction's until mesh TLS, which
    /// will decide it from the endpoint's identity.
    pub fn tls_for(&self, _endpoint: &Endpoint) -> Tls {
        self.tls
    }

    /// Connects to one endpoint address, or hands out the connection the client
    /// connection being served preconnected to it (see [`with_preconnected`]).
    pub async fn connect_addr(&self, addr: SocketAddr) -> Result<Connection, ConnectError> {
        if let Some(conn) = preconnect::take(addr) {
            return Ok(conn);
        }
        if self.is_own_listener(addr) {
            return Err(ConnectError::Loop { addr });
        }
        tracing::debug!(%addr, direction = self.direction.as_str(), "connecting");
        let stream = match tokio::time::timeout(self.timeout.0, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(ConnectError::Timeout {
                    addr,
                    timeout: self.timeout.0,
                });
            }
            Ok(Err(error)) => return Err(ConnectError::Io { addr, error }),
            Ok(Ok(s)) => s,
        };
        sockopt::apply(&stream, self.options);
        let metrics = self.metrics.tcp(TcpKey {
            direction: self.direction,
            peer: Peer::Dst,
            target: addr,
            tls: self.tls,
        });
        Ok(Connection {
            io: MeteredIo::new(Stream::from(stream), metrics.open()),
            peer: addr,
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
