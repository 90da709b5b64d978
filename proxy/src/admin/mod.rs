//! The admin server: metrics, probes, log level, and shutdown.
//!
//! | path | method | |
//! |---|---|---|
//! | `/metrics` | GET | Prometheus text |
//! | `/ready` | GET | 200 once listening, 503 while shutting down |
//! | `/live` | GET | 200 while the process runs |
//! | `/proxy-log-level` | GET, PUT | read or replace the log filter |
//! | `/shutdown` | POST | start a graceful shutdown; loopback clients only |
//! | `/tap` | GET | live request metadata as NDJSON, when `MESH_PROXY_TAP_ENABLED=true` (see `tap`) |

pub mod tap;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::config::ShutdownEndpoint;
use crate::drain::Trigger;
use crate::log::LogHandle;
use crate::metrics::Metrics;

/// The largest log filter `PUT /proxy-log-level` accepts.
const MAX_FILTER_BYTES: usize = 64 * 1024;

pub struct Admin {
    metrics: Arc<Metrics>,
    log: Arc<LogHandle>,
    ready: AtomicBool,
    shutdown: Trigger,
    shutdown_endpoint: ShutdownEndpoint,
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
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Relaxed);
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
            tokio::spawn(async move {
                if let Err(error) = conn.await {
                    tracing::debug!(%error, "admin connection failed");
                }
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>, client: SocketAddr) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        match (req.uri().path(), method) {
            ("/metrics", Method::GET) => {
                let mut res = text(StatusCode::OK, self.metrics.render());
                res.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                res
            }
            ("/ready", Method::GET) => {
                if self.shutdown.is_fired() {
                    text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
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
            ("/shutdown", Method::POST) => self.shutdown(client),
            ("/tap", _) => not_allowed("GET"),
            ("/metrics" | "/ready" | "/live", _) => not_allowed("GET"),
            ("/proxy-log-level", _) => not_allowed("GET, PUT"),
            ("/shutdown", _) => not_allowed("POST"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
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

    fn shutdown(&self, client: SocketAddr) -> Response<Full<Bytes>> {
        if self.shutdown_endpoint == ShutdownEndpoint::Disabled {
            return text(
                StatusCode::NOT_FOUND,
                "the shutdown endpoint is disabled (LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED=false)\n",
            );
        }
        let loopback = match client.ip() {
            std::net::IpAddr::V4(ip) => ip.is_loopback(),
            std::net::IpAddr::V6(ip) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        if !loopback {
            return text(
                StatusCode::FORBIDDEN,
                "shutdown is only accepted from localhost\n",
            );
        }
        tracing::info!("shutdown requested on the admin server");
        self.shutdown.fire();
        text(StatusCode::OK, "shutdown\n")
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

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}
