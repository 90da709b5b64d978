//! HTTP/2 on the h2 crate directly, on both sides of the proxy.
//!
//! hyper wraps h2 in a service, a body type, a dispatch channel and two spawned tasks
//! per request; forwarding a stream needs none of that. The proxy's HTTP/2 streams are
//! served in `service::h2`; this module holds what does not need the service: the
//! connection settings, upstream connections, body piping and keep-alive pings.

mod body;
mod keepalive;
mod pipe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use bytes::Bytes;

pub use body::H2Body;
pub use keepalive::KeepAlive;
pub use pipe::{PipeError, pipe, pipe_body};

use crate::config::{H2Windows, Limits};
use crate::connect::Connection;

/// hyper's defaults, kept: the largest frame, and how much a stream may buffer unsent.
const MAX_FRAME_SIZE: u32 = 16 * 1024;
const MAX_SEND_BUFFER: usize = 400 * 1024;
/// The largest header list the proxy accepts from an upstream.
const UPSTREAM_MAX_HEADER_LIST: u32 = 16 * 1024 * 1024;

/// The builder for served HTTP/2 connections.
pub fn server_builder(limits: &Limits, windows: &H2Windows) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.initial_window_size(windows.stream)
        .initial_connection_window_size(windows.connection)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_resets)
        .max_local_error_reset_streams(Some(limits.h2_max_local_error_resets));
    b
}

/// A shared HTTP/2 upstream connection.
#[derive(Clone, Debug)]
pub struct H2Conn {
    pub sender: h2::client::SendRequest<Bytes>,
    pub peer: SocketAddr,
    /// The `tls` label the connection was made with (see `Connection::tls`).
    pub tls: crate::metrics::Tls,
    /// Set when the connection's task ends, so the pool stops handing it out.
    closed: Arc<AtomicBool>,
}

impl H2Conn {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Stops the pool handing this connection out, as when the upstream sent GOAWAY.
    /// Streams already open on it run to their end.
    pub fn retire(&self) {
        self.closed.store(true, Relaxed);
    }
}

/// Whether a stream failed without the upstream having processed it, so that sending the
/// request again cannot repeat its effect: refused, or above the last stream id of the
/// upstream's GOAWAY (RFC 9113, section 8.7). h2 gives a stream the peer's GOAWAY as its
/// error only in that case; streams at or below the last id fail, if at all, otherwise.
pub fn unprocessed(e: &h2::Error) -> bool {
    e.reason() == Some(h2::Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote())
}

/// Starts HTTP/2 (prior knowledge) on a new upstream connection; a task drives it.
pub async fn handshake(conn: Connection, windows: &H2Windows) -> Result<H2Conn, h2::Error> {
    let (peer, tls) = (conn.peer, conn.tls);
    let (sender, driver) = h2::client::Builder::new()
        .enable_push(false)
        .initial_window_size(windows.stream)
        .initial_connection_window_size(windows.connection)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .max_header_list_size(UPSTREAM_MAX_HEADER_LIST)
        .handshake(conn.io)
        .await?;
    let closed = Arc::new(AtomicBool::new(false));
    let done = closed.clone();
    tokio::spawn(async move {
        if let Err(error) = driver.await {
            tracing::debug!(%error, %peer, "upstream HTTP/2 connection failed");
        }
        done.store(true, Relaxed);
    });
    Ok(H2Conn {
        sender,
        peer,
        tls,
        closed,
    })
}
