//! The admin server: metrics, probes, log level, and shutdown.
//!
//! | path | method | |
//! |---|---|---|
//! | `/metrics` | GET | Prometheus text |
//! | `/ready` | GET | 200 once serving and, with an identity configured (files or the identity service), holding its first certificate; 503 before and while shutting down |
//! | `/live` | GET | 200 while the process runs |
//! | `/proxy-log-level` | GET, PUT | read or replace the log filter; loopback clients only |
//! | `/shutdown` | POST | start a graceful shutdown; loopback clients only |
//! | `/dtab` | GET, PUT | print or replace the namer's dtab; loopback clients only (see below) |
//! | `/tap` | GET | live request metadata as NDJSON, when `MESH_PROXY_TAP_ENABLED=true` (see `tap`) |
//!
//! Injected pods listen on `0.0.0.0:4191` so that Prometheus and the kubelet can reach
//! `/metrics` and the probes, so anything in the cluster can connect. As in Linkerd, the
//! log level, shutdown and dtab answer a client whose address is not loopback with 403 and
//! `Requests are only permitted from localhost.`, before reading any body.
//!
//! `PUT /dtab` takes a dtab (at most 64 KiB, Linkerd 1's syntax) as its body, re-evaluates every
//! name being watched with it, and answers 200 with the dtab as it now reads; a dtab that does
//! not parse gets 400 with the line and column. `GET /dtab` prints the current one. Both answer
//! 404 when the proxy runs without a namer (`MESH_PROXY_FS_NAMER_DIR` unset). A replaced dtab
//! lasts until the process exits. Linkerd 1 changed dtabs through namerd; mesh-proxy has no
//! namerd, so its own admin server takes them.
//!
//! The server runs on its own thread and runtime (see [`Admin::spawn`]), so a slow or
//! expensive request here never delays proxied traffic.

pub mod tap;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::ShutdownEndpoint;
use crate::drain::Trigger;
use crate::dtab::{Dtab, MAX_DTAB_LEN};
use crate::identity::CredentialsRx;
use crate::log::LogHandle;
use crate::metrics::Metrics;
use crate::outbound::discover::namer::Namer;

/// How long an admin connection may take to finish its response once the drain starts (a
/// `/tap` stream is cut after it).
const DRAIN_RESPONSE: Duration = Duration::from_secs(1);

/// The largest `PUT /proxy-log-level` body read; the filter itself is checked by `log`.
const MAX_FILTER_BYTES: usize = crate::log::MAX_FILTER_BYTES;

pub struct Admin {
    metrics: Arc<Metrics>,
    log: Arc<LogHandle>,
    ready: AtomicBool,
    shutdown: Trigger,
    shutdown_endpoint: ShutdownEndpoint,
    /// Connections being served, and a wake-up when one ends: the process waits for them
    /// before it exits, so that the answer to `POST /shutdown` is not cut off.
    open: AtomicUsize,
    closed: Notify,
    /// The dtab's owner, when discovery uses one.
    namer: Option<Arc<Namer>>,
    /// The proxy's credentials, when it has an identity: `/ready` waits for the first, and
    /// `/metrics` shows when the current one expires.
    identity: Option<CredentialsRx>,
}

/// Counts one open admin connection.
struct Open(Arc<Admin>);

impl Open {
    fn new(admin: &Arc<Admin>) -> Open {
        admin.open.fetch_add(1, Relaxed);
        Open(admin.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
        self.0.closed.notify_waiters();
    }
}

impl Admin {
    pub fn new(
        metrics: Arc<Metrics>,
        log: Arc<LogHandle>,
        shutdown: Trigger,
        shutdown_endpoint: ShutdownEndpoint,
    ) -> Self {
        Admin {
            metrics,
            log,
            ready: AtomicBool::new(false),
            shutdown,
            shutdown_endpoint,
            open: AtomicUsize::new(0),
            closed: Notify::new(),
            namer: None,
            identity: None,
        }
    }

    /// Becomes ready only once `credentials` holds a certificate, and exports its expiry.
    pub fn with_identity(mut self, credentials: Option<CredentialsRx>) -> Self {
        self.identity = credentials;
        self
    }

    /// Serves `GET` and `PUT /dtab` for this namer (without one they answer 404).
    pub fn with_namer(mut self, namer: Option<Arc<Namer>>) -> Self {
        self.namer = namer;
        self
    }

    /// Once the drain has started: waits until every admin connection has finished its
    /// response and closed, or `limit` has passed.
    pub async fn closed(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let closed = self.closed.notified();
                if self.open.load(Relaxed) == 0 {
                    return;
                }
                closed.await;
            }
        })
        .await;
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Relaxed);
    }

    /// Serves on a thread of its own, with a current-thread runtime of its own, until the
    /// process exits. The data plane may run on a single thread; sharing it would let one
    /// admin request (a large scrape, a filter that is slow to build) stall every proxied
    /// connection for as long as it takes.
    pub fn spawn(self: Arc<Self>, listener: std::net::TcpListener) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(sweep(self.metrics.clone()));
                    match TcpListener::from_std(listener) {
                        Ok(listener) => self.serve(listener).await,
                        Err(error) => tracing::error!(%error, "admin listener unusable"),
                    }
                });
            })?;
        Ok(())
    }

    /// Serves until the process exits; it keeps answering during a drain, so metrics can
    /// still be scraped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new());
        loop {
            let (sock, client) = match listener.accept().await {
                Ok(a) => a,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let admin = self.clone();
            let conn = builder.serve_connection(
                TokioIo::new(sock),
                service_fn(move |req: Request<Incoming>| {
                    let admin = admin.clone();
                    async move {
                        // The tap stream is the one response that is not a whole body.
                        let res = if req.uri().path() == "/tap" && req.method() == Method::GET {
                            tap::respond(&admin.metrics, req.uri().query()).map(Either::Right)
                        } else {
                            admin.handle(req, client).await.map(Either::Left)
                        };
                        Ok::<_, std::convert::Infallible>(res)
                    }
                }),
            );
            let open = Open::new(&self);
            tokio::spawn(async move {
                tokio::pin!(conn);
                // Keep-alive connections (scrapers) close when the drain starts, after the
                // response in progress; new ones are still answered, one request each.
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    () = open.0.shutdown.fired() => {
                        conn.as_mut().graceful_shutdown();
                        tokio::time::timeout(DRAIN_RESPONSE, conn).await.unwrap_or(Ok(()))
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%error, "admin connection failed");
                }
                drop(open);
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>, client: SocketAddr) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        if local_only(req.uri().path()) && !is_loopback(client) {
            return text(
                StatusCode::FORBIDDEN,
                "Requests are only permitted from localhost.\n",
            );
        }
        match (req.uri().path(), method) {
            ("/metrics", Method::GET) => {
                self.metrics.sweep(std::time::Instant::now());
                let page = self.metrics.render();
                let mut res = text(StatusCode::OK, page);
                res.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                res
            }
            ("/ready", Method::GET) => {
                if self.shutdown.is_fired() {
                    text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
                } else if !self.has_credentials() {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "waiting for an identity certificate\n",
                    )
                } else if self.ready.load(Relaxed) {
                    text(StatusCode::OK, "ready\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }
            ("/live", Method::GET) => text(StatusCode::OK, "live\n"),
            ("/proxy-log-level", Method::GET) => {
                text(StatusCode::OK, format!("{}\n", self.log.get()))
            }
            ("/proxy-log-level", Method::PUT) => self.set_log_level(req).await,
            ("/shutdown", Method::POST) => self.shutdown(),
            ("/dtab", Method::GET) => match &self.namer {
                Some(namer) => text(StatusCode::OK, format!("{}\n", namer.dtab())),
                None => no_namer(),
            },
            ("/dtab", Method::PUT) => self.set_dtab(req).await,
            ("/tap", _) => not_allowed("GET"),
            ("/metrics" | "/ready" | "/live", _) => not_allowed("GET"),
            ("/proxy-log-level", _) => not_allowed("GET, PUT"),
            ("/shutdown", _) => not_allowed("POST"),
            ("/dtab", _) => not_allowed("GET, PUT"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Whether the proxy holds its identity's certificate, or needs none.
    fn has_credentials(&self) -> bool {
        self.identity
            .as_ref()
            .is_none_or(|rx| rx.borrow().is_some())
    }

    async fn set_log_level(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let body = match Limited::new(req.into_body(), MAX_FILTER_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading the body: {e}\n")),
        };
        let Ok(filter) = std::str::from_utf8(&body) else {
            return text(StatusCode::BAD_REQUEST, "the log filter is not UTF-8\n");
        };
        match self.log.set(filter) {
            Ok(()) => {
                tracing::info!(filter = filter.trim(), "log filter changed");
                text(StatusCode::NO_CONTENT, "")
            }
            Err(e) => text(
                StatusCode::BAD_REQUEST,
                format!("invalid log filter: {e}\n"),
            ),
        }
    }

    async fn set_dtab(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(namer) = self.namer.clone() else {
            return no_namer();
        };
        let body = match Limited::new(req.into_body(), MAX_DTAB_LEN).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("a dtab is at most {MAX_DTAB_LEN} bytes\n"),
                );
            }
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading the body: {e}\n")),
        };
        let Ok(body) = std::str::from_utf8(&body) else {
            return text(StatusCode::BAD_REQUEST, "the dtab is not UTF-8\n");
        };
        let dtab = match Dtab::parse(body) {
            Ok(dtab) => dtab,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("invalid dtab: {e}\n")),
        };
        let shown = dtab.to_string();
        // Re-evaluating reads files: off this runtime's only thread.
        match tokio::task::spawn_blocking(move || namer.set_dtab(dtab)).await {
            Ok(()) => {
                tracing::info!(dtab = %shown, "dtab replaced");
                text(StatusCode::OK, format!("{shown}\n"))
            }
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("replacing the dtab: {e}\n"),
            ),
        }
    }

    fn shutdown(&self) -> Response<Full<Bytes>> {
        if self.shutdown_endpoint == ShutdownEndpoint::Disabled {
            return text(
                StatusCode::NOT_FOUND,
                "the shutdown endpoint is disabled (LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=false)\n",
            );
        }
        tracing::info!("shutdown requested on the admin server");
        self.shutdown.fire();
        text(StatusCode::OK, "shutdown\n")
    }
}

/// Expires idle series even when nobody scrapes, so their slots come free.
async fn sweep(metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(metrics.sweep_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        metrics.sweep(std::time::Instant::now());
    }
}

/// Paths that change the proxy or reveal its configuration: Linkerd serves them to loopback
/// clients only, whatever the method.
fn local_only(path: &str) -> bool {
    matches!(path, "/proxy-log-level" | "/shutdown" | "/dtab")
}

/// Whether a client connected from this host. An IPv4-mapped IPv6 loopback address counts,
/// for a dual-stack listener.
fn is_loopback(client: SocketAddr) -> bool {
    match client.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        res.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    res
}

fn no_namer() -> Response<Full<Bytes>> {
    text(
        StatusCode::NOT_FOUND,
        "no dtab: the proxy runs without a namer (MESH_PROXY_FS_NAMER_DIR is unset)\n",
    )
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_clients_may_use_local_only_paths() {
        for client in [
            "127.0.0.1:1",
            "127.9.9.9:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_loopback(client.parse().unwrap()), "{client}");
        }
        for client in [
            "10.0.0.1:1",
            "0.0.0.0:1",
            "[::ffff:10.0.0.1]:1",
            "[fe80::1]:1",
        ] {
            assert!(!is_loopback(client.parse().unwrap()), "{client}");
        }
        assert!(local_only("/proxy-log-level") && local_only("/shutdown") && local_only("/dtab"));
        for open in ["/metrics", "/ready", "/live", "/tap"] {
            assert!(!local_only(open), "{open}");
        }
    }
}
