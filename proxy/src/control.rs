//! What the proxy's clients of the control plane share: the gRPC endpoint of a service's
//! `host:port`, the channel of the watching clients with its timeouts and message limit,
//! and the loop that reopens a watch stream after a jittered backoff ([`Backoff`]).
//!
//! The Destination and policy clients keep long-lived streams on one channel each
//! ([`watch_channel`]); the identity client opens a TLS connection per call over
//! [`endpoint`] with a connector of its own. The watching clients' connections are
//! plaintext HTTP/2: mesh TLS to the control plane is not done yet.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::backoff::Backoff;
use crate::config::ControlAddr;

/// Largest message the watching clients accept (tonic's default, stated).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Time allowed to open a TCP connection to the control plane.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A control plane that vanished without closing the connection is noticed within
/// `KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT` (13 s), rather than when the kernel gives up.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);

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

/// The channel of a watching client: connected lazily, on the first call, and again (the
/// name looked up again) whenever the connection is lost. Call it within the Tokio runtime.
pub fn watch_channel(addr: &ControlAddr) -> Result<Channel, AddrError> {
    Ok(endpoint(addr)?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_lazy())
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
