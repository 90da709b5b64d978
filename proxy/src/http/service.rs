//! The per-connection HTTP service: routes each request, forwards it, and records metrics.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::{ProxyBody, Recorder};
use super::client::{H1Conn, Pool};
use super::errors::ProxyError;
use super::headers::{authority, is_grpc, is_upgrade, strip_hop_by_hop, to_origin_form};
use super::{Http, Version, upgrade};
use crate::connect::{Connection, Upstream};
use crate::metrics::{HttpKey, HttpMetrics};
use crate::target::{ConnTarget, Logical};

pub struct ProxyService<U> {
    http: Arc<Http<U>>,
    conn: Arc<ConnState>,
}

impl<U> Clone for ProxyService<U> {
    fn clone(&self) -> Self {
        ProxyService {
            http: self.http.clone(),
            conn: self.conn.clone(),
        }
    }
}

/// State of one downstream connection.
struct ConnState {
    version: Version,
    target: ConnTarget,
    pool: Arc<Pool>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The HTTP/1 upstream connection this downstream connection used last.
    sticky: Option<(Logical, H1Conn)>,
    /// A connection opened during detection, used before opening another.
    preconnected: Option<Connection>,
    /// The metrics of the last label set, reused while authority and target stay the same.
    labels: Option<(Box<str>, SocketAddr, Arc<HttpMetrics>)>,
}

impl Drop for ConnState {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some((target, conn)) = inner.sticky.take() {
            self.pool.checkin_h1(&target, conn);
        }
    }
}

/// An upstream HTTP/1 connection and whether it served requests before.
struct Checkout {
    conn: H1Conn,
    reused: bool,
}

impl<U: Upstream> ProxyService<U> {
    pub fn new(
        http: Arc<Http<U>>,
        version: Version,
        target: ConnTarget,
        preconnected: Option<Connection>,
    ) -> Self {
        let conn = Arc::new(ConnState {
            version,
            target,
            pool: http.pool.clone(),
            inner: Mutex::new(Inner {
                preconnected,
                ..Inner::default()
            }),
        });
        ProxyService { http, conn }
    }

    async fn proxy(self, mut req: Request<Incoming>) -> Response<ProxyBody> {
        let start = Instant::now();
        let grpc = is_grpc(&req);
        let target = match self.route(&req) {
            Ok(t) => t,
            Err(e) => {
                let label = authority(&req).unwrap_or("").to_owned();
                return self.fail(e, &label, None, start, grpc);
            }
        };
        let label_target = match &*target {
            Logical::Addr(a) => Some(*a),
            Logical::Name(..) => None,
        };
        let auth = authority(&req).unwrap_or("");
        let metrics = label_target.map(|addr| self.metrics_for(auth, addr));
        let auth_owned: Option<Box<str>> = metrics.is_none().then(|| auth.into());

        let tunnel = req.method() == Method::CONNECT;
        if tunnel && self.conn.target == ConnTarget::ProxyMode {
            let label = auth_owned.as_deref().unwrap_or(auth).to_owned();
            return self.tunnel(req, &target, &label, metrics, start).await;
        }
        let upgrading = self.conn.version == Version::Http1 && (tunnel || is_upgrade(&req));
        let on_downstream_upgrade = upgrading.then(|| hyper::upgrade::on(&mut req));
        if self.conn.version == Version::Http1 {
            strip_hop_by_hop(req.headers_mut(), upgrading);
            to_origin_form(&mut req);
        }

        let sent = match self.http.settings.limits.response_timeout {
            Some(t) => match tokio::time::timeout(t, self.send(&target, req, upgrading)).await {
                Ok(r) => r,
                Err(_) => Err(ProxyError::ResponseTimeout(t)),
            },
            None => self.send(&target, req, upgrading).await,
        };
        let (mut res, peer) = match sent {
            Ok(r) => r,
            Err(e) => {
                let label = auth_owned.as_deref().unwrap_or("");
                return self.fail(e, label, metrics, start, grpc);
            }
        };
        let metrics = match metrics {
            Some(m) => m,
            None => self.metrics_for(auth_owned.as_deref().unwrap_or(""), peer),
        };
        metrics.request();
        let status = res.status();
        if let Some(downstream) = on_downstream_upgrade
            && (status == StatusCode::SWITCHING_PROTOCOLS || (tunnel && status.is_success()))
        {
            upgrade::splice(downstream, hyper::upgrade::on(&mut res));
        }
        if self.conn.version == Version::Http1 {
            strip_hop_by_hop(res.headers_mut(), status == StatusCode::SWITCHING_PROTOCOLS);
        }
        let (parts, body) = res.into_parts();
        let recorder = Recorder::new(metrics, start, status.as_u16());
        let body = ProxyBody::upstream(body).record(recorder, &parts.headers);
        Response::from_parts(parts, body)
    }

    /// Where a request goes: the connection's fixed target, or in HTTP proxy mode, the
    /// authority the request names.
    fn route(&self, req: &Request<Incoming>) -> Result<Cow<'_, Logical>, ProxyError> {
        match &self.conn.target {
            ConnTarget::Fixed(t) => Ok(Cow::Borrowed(t)),
            ConnTarget::ProxyMode => {
                let auth = authority(req)
                    .ok_or(ProxyError::BadRequest("request names no host to proxy to"))?;
                let default_port = match req.uri().scheme_str() {
                    Some("https") => 443,
                    _ => 80,
                };
                Logical::from_authority(auth, default_port)
                    .map(Cow::Owned)
                    .ok_or(ProxyError::BadRequest(
                        "request host is not a valid authority",
                    ))
            }
        }
    }

    async fn send(
        &self,
        target: &Logical,
        req: Request<Incoming>,
        dedicated: bool,
    ) -> Result<(Response<Incoming>, SocketAddr), ProxyError> {
        match self.conn.version {
            Version::Http1 => self.send_h1(target, req, dedicated).await,
            Version::Http2 => self.send_h2(target, req).await,
        }
    }

    /// Sends on a reused connection when one is ready. A request that a stale connection
    /// did not accept is retried once on a new connection; nothing was sent, so it is safe.
    async fn send_h1(
        &self,
        target: &Logical,
        mut req: Request<Incoming>,
        dedicated: bool,
    ) -> Result<(Response<Incoming>, SocketAddr), ProxyError> {
        let mut fresh_only = false;
        loop {
            let Checkout { mut conn, reused } = self.checkout_h1(target, fresh_only).await?;
            if let Err(e) = conn.sender.ready().await {
                if reused {
                    fresh_only = true;
                    continue;
                }
                return Err(ProxyError::Upstream(e));
            }
            match conn.sender.try_send_request(req).await {
                Ok(res) => {
                    let peer = conn.peer;
                    if !dedicated {
                        self.keep_sticky(target, conn);
                    }
                    return Ok((res, peer));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        req = unsent;
                        fresh_only = true;
                    }
                    _ => return Err(ProxyError::Upstream(e.into_error())),
                },
            }
        }
    }

    async fn checkout_h1(
        &self,
        target: &Logical,
        fresh_only: bool,
    ) -> Result<Checkout, ProxyError> {
        let preconnected = {
            let mut inner = self.lock();
            if !fresh_only {
                match inner.sticky.take() {
                    Some((t, conn)) if t == *target && !conn.sender.is_closed() => {
                        return Ok(Checkout { conn, reused: true });
                    }
                    Some((t, conn)) => self.conn.pool.checkin_h1(&t, conn),
                    None => {}
                }
                if let Some(conn) = self.conn.pool.checkout_h1(target) {
                    return Ok(Checkout { conn, reused: true });
                }
            }
            inner.preconnected.take()
        };
        let conn = match preconnected {
            Some(c) => c,
            None => self
                .http
                .upstream
                .connect(target)
                .await
                .map_err(ProxyError::Connect)?,
        };
        let conn = Pool::handshake_h1(conn)
            .await
            .map_err(ProxyError::Upstream)?;
        Ok(Checkout {
            conn,
            reused: false,
        })
    }

    fn keep_sticky(&self, target: &Logical, conn: H1Conn) {
        let previous = self.lock().sticky.replace((target.clone(), conn));
        if let Some((t, c)) = previous {
            self.conn.pool.checkin_h1(&t, c);
        }
    }

    async fn send_h2(
        &self,
        target: &Logical,
        req: Request<Incoming>,
    ) -> Result<(Response<Incoming>, SocketAddr), ProxyError> {
        let pool = &self.conn.pool;
        let conn = match pool.h2(target) {
            Some(c) => c,
            None => {
                let preconnected = self.lock().preconnected.take();
                let conn = match preconnected {
                    Some(c) => c,
                    None => self
                        .http
                        .upstream
                        .connect(target)
                        .await
                        .map_err(ProxyError::Connect)?,
                };
                let h2 = pool
                    .handshake_h2(conn)
                    .await
                    .map_err(ProxyError::Upstream)?;
                pool.insert_h2(target, h2.clone());
                h2
            }
        };
        let mut sender = conn.sender;
        sender.ready().await.map_err(ProxyError::Upstream)?;
        let res = sender
            .send_request(req)
            .await
            .map_err(ProxyError::Upstream)?;
        Ok((res, conn.peer))
    }

    /// `CONNECT host:port` in HTTP proxy mode: a TCP tunnel to the named destination.
    async fn tunnel(
        &self,
        mut req: Request<Incoming>,
        target: &Logical,
        label: &str,
        metrics: Option<Arc<HttpMetrics>>,
        start: Instant,
    ) -> Response<ProxyBody> {
        let conn = match self.http.upstream.connect(target).await {
            Ok(c) => c,
            Err(e) => return self.fail(ProxyError::Connect(e), label, metrics, start, false),
        };
        let metrics = metrics.unwrap_or_else(|| self.metrics_for(label, conn.peer));
        metrics.request();
        upgrade::tunnel(hyper::upgrade::on(&mut req), conn);
        let res = Response::new(ProxyBody::empty());
        let recorder = Recorder::new(metrics, start, 200);
        let (parts, body) = res.into_parts();
        let body = body.record(recorder, &parts.headers);
        Response::from_parts(parts, body)
    }

    fn fail(
        &self,
        error: ProxyError,
        authority: &str,
        metrics: Option<Arc<HttpMetrics>>,
        start: Instant,
        grpc: bool,
    ) -> Response<ProxyBody> {
        tracing::debug!(%error, "request failed in the proxy");
        let metrics = metrics.unwrap_or_else(|| {
            self.metrics_for(authority, SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        });
        metrics.request();
        let res = error.to_response(grpc);
        let recorder =
            Recorder::new(metrics, start, res.status().as_u16()).proxy_error(error.label());
        let (parts, body) = res.into_parts();
        let body = body.record(recorder, &parts.headers);
        Response::from_parts(parts, body)
    }

    /// The metrics for (authority, target), from the connection's cache when unchanged.
    fn metrics_for(&self, authority: &str, target: SocketAddr) -> Arc<HttpMetrics> {
        let mut inner = self.lock();
        if let Some((a, t, m)) = &inner.labels
            && **a == *authority
            && *t == target
        {
            return m.clone();
        }
        let m = self.http.metrics.http(HttpKey {
            direction: self.http.settings.direction,
            authority: authority.into(),
            target,
            tls: self.http.settings.tls,
        });
        inner.labels = Some((authority.into(), target, m.clone()));
        m
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.conn.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<U: Upstream> hyper::service::Service<Request<Incoming>> for ProxyService<U> {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.proxy(req).await) })
    }
}
