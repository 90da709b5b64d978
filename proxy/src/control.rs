//! What the proxy's clients of the control plane share: the gRPC endpoint of a service's
//! `host:port`, the channel of the watching clients with its timeouts, message limit and
//! [`Transport`], and the loop that reopens a watch stream after a jittered backoff
//! ([`Backoff`]).
//!
//! The Destination and policy clients keep long-lived streams on one channel each
//! ([`watch_channel`]); the identity client opens a TLS connection per call over
//! [`endpoint`] with a connector of its own.
//!
//! The watching clients speak HTTP/2 over mesh TLS when the proxy has an identity and the
//! service's name is configured (`LINKERD2_PROXY_DESTINATION_SVC_NAME`,
//! `LINKERD2_PROXY_POLICY_SVC_NAME`), as Linkerd's proxy does: TLS 1.3, SNI the service's
//! name, the proxy's current certificate as the client certificate, the server's chain
//! checked against the trust anchors and that name, no ALPN. A failed handshake is a failed
//! connection, logged and tried again after the backoff; it never falls back to plaintext.
//! An address on loopback (`localhost.:8086`, the destination pod's own proxy) stays
//! plaintext, as in Linkerd, and so does every connection of a proxy without an identity.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use crate::backoff::Backoff;
use crate::config::ControlAddr;
use crate::tls::{MeshTls, TlsStream};

#[cfg(test)]
mod tests;

/// Largest message the watching clients accept (tonic's default, stated).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Time allowed to open a TCP connection to the control plane.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A control plane that vanished without closing the connection is noticed within
/// `KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT` (13 s), rather than when the kernel gives up.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for the mesh TLS handshake with the control plane, once connected.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A service address that does not make a URI. `ControlAddr` is checked when the
/// configuration is read, so this is not expected.
#[derive(Debug, thiserror::Error)]
#[error("address {addr}: {source}")]
pub struct AddrError {
    addr: String,
    #[source]
    source: tonic::transport::Error,
}

/// The endpoint of the service at `addr`, with `TCP_NODELAY`. Its URI also gives every
/// request its `:authority`.
pub fn endpoint(addr: &ControlAddr) -> Result<Endpoint, AddrError> {
    let addr = addr.to_string();
    match Endpoint::from_shared(format!("http://{addr}")) {
        Ok(endpoint) => Ok(endpoint.tcp_nodelay(true)),
        Err(source) => Err(AddrError { addr, source }),
    }
}

/// How a watching client's connections to its service are made.
#[derive(Clone)]
pub enum Transport {
    /// Plaintext HTTP/2, and why.
    Plain(Plaintext),
    /// Mesh TLS to a server that must present `server_id`.
    MeshTls {
        tls: Arc<MeshTls>,
        server_id: Arc<str>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plain(why) => f.debug_tuple("Plain").field(why).finish(),
            Transport::MeshTls { server_id, .. } => {
                f.debug_tuple("MeshTls").field(server_id).finish()
            }
        }
    }
}

/// Why a connection to the control plane is plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plaintext {
    /// The address is on loopback (the controller beside the proxy), as Linkerd decides.
    Loopback,
    /// The proxy has no identity: nothing to present, and no trust anchors to verify with.
    NoIdentity,
    /// The proxy has an identity, but the service's `…_SVC_NAME` is unset, so there is no
    /// name to verify (Linkerd refuses to start instead).
    NoName,
}

/// The identity to expect from the service at `addr` named `name`, or why its connection is
/// plaintext: loopback first, then a proxy without an identity, then a missing name.
pub fn decide<'a>(
    addr: &ControlAddr,
    name: Option<&'a str>,
    has_identity: bool,
) -> Result<&'a str, Plaintext> {
    if addr.is_loopback() {
        Err(Plaintext::Loopback)
    } else if !has_identity {
        Err(Plaintext::NoIdentity)
    } else {
        name.ok_or(Plaintext::NoName)
    }
}

impl Transport {
    /// How the client of `service` ("destination", "policy") reaches `addr`, whose identity
    /// is `name`, given the proxy's mesh TLS if it has an identity. Says once, in the log,
    /// what it decided.
    pub fn new(
        service: &'static str,
        addr: &ControlAddr,
        name: Option<&str>,
        mesh_tls: Option<&Arc<MeshTls>>,
    ) -> Transport {
        match (decide(addr, name, mesh_tls.is_some()), mesh_tls) {
            (Ok(name), Some(tls)) => {
                tracing::info!(
                    "the {service} service at {addr} is reached over mesh TLS as {name}"
                );
                Transport::MeshTls {
                    tls: tls.clone(),
                    server_id: name.into(),
                }
            }
            (Err(Plaintext::Loopback), _) => {
                tracing::info!("the {service} service at {addr} is on loopback: plaintext");
                Transport::Plain(Plaintext::Loopback)
            }
            (Err(Plaintext::NoName), _) => {
                tracing::warn!(
                    "the {service} service at {addr} has no identity name (…_SVC_NAME): plaintext"
                );
                Transport::Plain(Plaintext::NoName)
            }
            (Err(Plaintext::NoIdentity), _) | (Ok(_), None) => {
                tracing::info!(
                    "the proxy has no identity: the {service} service at {addr} is reached in plaintext"
                );
                Transport::Plain(Plaintext::NoIdentity)
            }
        }
    }
}

/// The channel of a watching client of `service` at `addr`: connected lazily, on the first
/// call, and again (the name looked up again, and for mesh TLS the current certificate
/// presented) whenever the connection is lost. Call it within the Tokio runtime.
pub fn watch_channel(
    service: &'static str,
    addr: &ControlAddr,
    transport: Transport,
) -> Result<Channel, AddrError> {
    let endpoint = endpoint(addr)?
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    Ok(match transport {
        Transport::Plain(_) => endpoint.connect_timeout(CONNECT_TIMEOUT).connect_lazy(),
        // The connector bounds each step itself: waiting for a first certificate is not
        // part of the connection's time.
        Transport::MeshTls { tls, server_id } => {
            endpoint.connect_with_connector_lazy(MeshConnector {
                service,
                addr: addr.clone(),
                tls,
                server_id,
            })
        }
    })
}

/// Connects to a control-plane service over mesh TLS: TCP, then the handshake.
#[derive(Clone)]
struct MeshConnector {
    service: &'static str,
    addr: ControlAddr,
    tls: Arc<MeshTls>,
    server_id: Arc<str>,
}

impl tonic::codegen::Service<http::Uri> for MeshConnector {
    type Response = TokioIo<TlsStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            // Before the first certificate there is nothing to present; a proxy with an
            // identity service serves nothing until then either.
            me.tls.credentials_ready().await;
            let tcp = tcp(&me.addr).await?;
            let handshake =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, me.tls.connect(tcp, &me.server_id));
            let error = match handshake.await {
                Ok(Ok(stream)) => return Ok(TokioIo::new(stream)),
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
            };
            let (service, addr, id) = (me.service, &me.addr, &me.server_id);
            tracing::warn!(
                "mesh TLS to the {service} service at {addr} failed (expecting identity {id}): {error}"
            );
            Err(std::io::Error::other(format!(
                "mesh TLS to {addr} expecting identity {id}: {error}"
            )))
        })
    }
}

/// Connects to the first address of `addr` that accepts, each within [`CONNECT_TIMEOUT`],
/// looking the name up again each time so that a headless service's pods can come and go.
pub async fn tcp(addr: &ControlAddr) -> std::io::Result<TcpStream> {
    let host = addr
        .host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&addr.host);
    let mut last = None;
    for ip in tokio::net::lookup_host((host, addr.port)).await? {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ip)).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(std::io::Error::new(e.kind(), format!("{ip}: {e}"))),
            Err(_) => {
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{ip}: no connection within {CONNECT_TIMEOUT:?}"),
                ))
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}

/// What a watch stream tells its owner.
#[derive(Debug)]
pub enum Event<T> {
    /// A message, and whether it is the stream's first (the control plane starts every
    /// stream with the whole current state).
    Message(T, bool),
    /// The stream failed (`Some`: the call or a later message) or ended (`None`); it is
    /// opened again after the next backoff delay.
    Ended(Option<tonic::Status>),
}

/// Opens a stream with `open` and hands `on` each of its messages and its end, again and
/// again: each stream after a delay from `backoff`, which a stream's first message resets.
/// Never returns: the caller aborts its task, or drops the future.
pub async fn watch<T, Open, Opened>(
    mut backoff: Backoff,
    mut open: Open,
    mut on: impl FnMut(Event<T>),
) where
    Open: FnMut() -> Opened,
    Opened: Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>,
{
    loop {
        let failure = match open().await {
            Ok(response) => {
                let mut messages = response.into_inner();
                let mut first = true;
                loop {
                    match messages.message().await {
                        Ok(Some(message)) => {
                            if first {
                                backoff.reset();
                            }
                            on(Event::Message(message, first));
                            first = false;
                        }
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
            Err(status) => Some(status),
        };
        on(Event::Ended(failure));
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
