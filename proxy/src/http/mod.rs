//! HTTP proxying: serves a detected HTTP/1 or HTTP/2 connection and forwards each request
//! upstream over a pooled connection of the same version.
//!
//! HTTP/1: plain requests take the lean path (`service::lean`), everything else hyper's
//! server; upstream, the proxy's own client (`h1`). HTTP/2: the h2 crate on both sides
//! (`h2`, `service::h2`).

mod body;
mod client;
mod conn;
mod date;
mod errors;
mod h1;
mod h2;
mod headers;
mod pace;
mod service;
mod upgrade;
pub mod validate;

use std::sync::Arc;

use bytes::BytesMut;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};

pub use body::{ProxyBody, Recorder};
pub use client::Pool;
pub(crate) use date::imf_fixdate;
pub use errors::{L5D_PROXY_ERROR, ProxyError, error_response, raw_error_response};

use crate::config::{H2KeepAlive, H2Windows, Limits};
use crate::connect::Upstream;
use crate::drain::Drain;
use crate::io::ProxyIo;
use crate::metrics::{Direction, Metrics, Tls};
use crate::target::ConnTarget;
use conn::{ConnControl, Graceful, IdleTimer};
use service::ProxyService;
use service::h2::H2Server;
use service::lean::{LeanConn, LeanEnd};

/// The most headers a request may have; as hyper's default.
pub const MAX_HEADERS: usize = 100;

/// Per-direction HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub direction: Direction,
    pub limits: Limits,
    pub h2_keepalive: H2KeepAlive,
    pub h2_windows: H2Windows,
}

/// The accepted connection HTTP is served on: who the client is, the `tls` label of its
/// connection (inbound HTTP metrics carry it), and inbound, the port's authorization
/// policy, checked per request (it holds the client's mesh TLS and identity).
#[derive(Debug)]
pub struct Client {
    pub addr: std::net::SocketAddr,
    pub tls: Tls,
    pub policy: Option<crate::inbound::policy::ConnPolicy>,
}

/// The HTTP stage of one direction's stack, over its `Upstream`.
#[derive(Debug)]
pub struct Http<U> {
    upstream: Arc<U>,
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    settings: HttpSettings,
    h1: http1::Builder,
    h2: ::h2::server::Builder,
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
        let h2 = h2::server_builder(limits, &settings.h2_windows);
        Http {
            upstream,
            pool,
            metrics,
            settings,
            h1,
            h2,
        }
    }

    /// Serves one HTTP/1 connection until it closes, or until a drain finishes its
    /// request in flight. `first` holds the bytes read so far: at least one request head.
    ///
    /// Plain requests take the lean path (`service::lean`); from the first request that
    /// is not plain, hyper serves the connection.
    pub async fn serve_h1(
        self: Arc<Self>,
        io: ProxyIo,
        first: BytesMut,
        client: Client,
        target: ConnTarget,
        drain: Drain,
    ) {
        let control = Arc::new(ConnControl::default());
        let svc = ProxyService::new(self.clone(), client, target, control.clone());
        let mut idle = IdleTimer::new(self.settings.limits.header_read_timeout);
        let ended = {
            let lean = svc.serve_lean(io, first, &drain);
            tokio::pin!(lean);
            let conn = LeanConn::new(lean);
            tokio::pin!(conn);
            conn::drive(conn, control.clone(), &drain, Some(&mut idle)).await
        };
        let Some(LeanEnd::Handoff(io, rest)) = ended else {
            return;
        };
        let io = TokioIo::new(io.with_prefix(rest.freeze()));
        let conn = self.h1.serve_connection(io, svc).with_upgrades();
        tokio::pin!(conn);
        // The idle timer of the lean loop keeps watching the same connection.
        if let Some(Err(error)) = conn::drive(conn, control, &drain, Some(&mut idle)).await {
            tracing::debug!(%error, "HTTP connection ended with an error");
        }
    }

    /// Serves one HTTP/2 connection until it closes, or until a drain finishes its
    /// streams in flight.
    pub async fn serve_h2(
        self: Arc<Self>,
        io: ProxyIo,
        client: Client,
        target: ConnTarget,
        drain: Drain,
    ) {
        let control = Arc::new(ConnControl::default());
        let svc = ProxyService::new(self.clone(), client, target, control.clone());
        let handshake = tokio::select! {
            r = self.h2.handshake(io) => r,
            () = drain.signaled() => return,
        };
        let conn = match handshake {
            Ok(c) => c,
            Err(error) => {
                tracing::debug!(%error, "HTTP/2 handshake failed");
                return;
            }
        };
        let conn = H2Server::new(conn, svc, self.settings.h2_keepalive);
        tokio::pin!(conn);
        if let Some(Err(error)) = conn::drive(conn, control, &drain, None).await {
            tracing::debug!(%error, "HTTP/2 connection ended with an error");
        }
    }
}

type ServedIo = TokioIo<ProxyIo>;

impl<U: Upstream> Graceful for http1::UpgradeableConnection<ServedIo, ProxyService<U>> {
    fn graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}
