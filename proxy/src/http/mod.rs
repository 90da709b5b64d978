//! HTTP proxying: serves a detected HTTP/1 or HTTP/2 connection and forwards each request
//! upstream over a pooled connection of the same version.

mod body;
mod client;
mod conn;
mod errors;
mod h1;
mod headers;
mod service;
mod upgrade;
pub mod validate;

use std::sync::Arc;

use bytes::BytesMut;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

pub use body::{ProxyBody, Recorder};
pub use client::Pool;
pub use errors::{L5D_PROXY_ERROR, ProxyError, error_response, raw_error_response};

use crate::config::{H2KeepAlive, H2Windows, Limits};
use crate::connect::{Connection, Upstream};
use crate::drain::Drain;
use crate::io::MeteredIo;
use crate::metrics::{Direction, Metrics, Tls};
use crate::target::ConnTarget;
use conn::{ConnControl, Graceful};
use service::ProxyService;
use service::lean::{LeanConn, LeanEnd};

/// Which HTTP version a downstream connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http1,
    Http2,
}

/// Per-direction HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub direction: Direction,
    /// The `tls` label of this direction's HTTP metrics.
    pub tls: Tls,
    pub limits: Limits,
    pub h2_keepalive: H2KeepAlive,
    pub h2_windows: H2Windows,
}

/// The HTTP stage of one direction's stack, over its `Upstream`.
#[derive(Debug)]
pub struct Http<U> {
    upstream: Arc<U>,
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    settings: HttpSettings,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl<U: Upstream> Http<U> {
    pub fn new(
        upstream: Arc<U>,
        pool: Arc<Pool>,
        metrics: Arc<Metrics>,
        settings: HttpSettings,
    ) -> Self {
        let limits = &settings.limits;
        let mut h1 = http1::Builder::new();
        // Header-read and idle timeouts are enforced per connection by `conn::drive`.
        h1.timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_header_size(limits.max_header_bytes);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .max_pending_accept_reset_streams(limits.h2_max_pending_accept_resets)
            .max_local_error_reset_streams(limits.h2_max_local_error_resets)
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .initial_stream_window_size(settings.h2_windows.stream)
            .initial_connection_window_size(settings.h2_windows.connection)
            .keep_alive_interval(settings.h2_keepalive.interval);
        if let Some(timeout) = settings.h2_keepalive.timeout {
            h2.keep_alive_timeout(timeout);
        }
        Http {
            upstream,
            pool,
            metrics,
            settings,
            h1,
            h2,
        }
    }

    pub fn upstream(&self) -> &Arc<U> {
        &self.upstream
    }

    /// Serves one HTTP/1 connection until it closes, or until a drain finishes its
    /// request in flight. `first` holds the bytes read so far: at least one request head.
    ///
    /// Plain requests take the lean path (`service::lean`); from the first request that
    /// is not plain, hyper serves the connection.
    pub async fn serve_h1(
        self: Arc<Self>,
        io: MeteredIo<TcpStream>,
        first: BytesMut,
        client: std::net::SocketAddr,
        target: ConnTarget,
        preconnected: Option<Connection>,
        drain: Drain,
    ) {
        let control = Arc::new(ConnControl::default());
        let svc = ProxyService::new(
            self.clone(),
            Version::Http1,
            client,
            target,
            preconnected,
            control.clone(),
        );
        let idle = Some(self.settings.limits.header_read_timeout);
        let ended = {
            let lean = svc.serve_lean(io, first, &drain);
            tokio::pin!(lean);
            let conn = LeanConn::new(lean, control.clone());
            tokio::pin!(conn);
            conn::drive(conn, control.clone(), &drain, idle).await
        };
        let Some(LeanEnd::Handoff(io, rest)) = ended else {
            return;
        };
        let io = TokioIo::new(io.with_prefix(rest.freeze()));
        let conn = self.h1.serve_connection(io, svc).with_upgrades();
        tokio::pin!(conn);
        // The watchdog started with the lean loop keeps watching the same connection.
        if let Some(Err(error)) = conn::drive(conn, control, &drain, None).await {
            tracing::debug!(%error, "HTTP connection ended with an error");
        }
    }

    /// Serves one HTTP/2 connection until it closes, or until a drain finishes its
    /// streams in flight.
    pub async fn serve_h2(
        self: Arc<Self>,
        io: MeteredIo<TcpStream>,
        client: std::net::SocketAddr,
        target: ConnTarget,
        preconnected: Option<Connection>,
        drain: Drain,
    ) {
        let control = Arc::new(ConnControl::default());
        let svc = ProxyService::new(
            self.clone(),
            Version::Http2,
            client,
            target,
            preconnected,
            control.clone(),
        );
        let conn = self.h2.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        if let Some(Err(error)) = conn::drive(conn, control, &drain, None).await {
            tracing::debug!(%error, "HTTP connection ended with an error");
        }
    }
}

type ServedIo = TokioIo<MeteredIo<TcpStream>>;

impl<U: Upstream> Graceful for http1::UpgradeableConnection<ServedIo, ProxyService<U>> {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<U: Upstream> Graceful for http2::Connection<ServedIo, ProxyService<U>, TokioExecutor> {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}
