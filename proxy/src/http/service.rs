//! The per-connection HTTP service: routes each request, forwards it, and records metrics.

pub(super) mod h2;
pub(super) mod lean;
mod orig_proto;

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::{ProxyBody, Recorder};
use super::client::Pool;
use super::conn::ConnControl;
use super::errors::ProxyError;
use super::h1::{Checkin, H1Conn, H1Error, Outcome, Prepared, SendError};
use super::headers::{authority, is_upgrade, strip_hop_by_hop, to_origin_form};
use super::{Client, Http, upgrade, validate};
use crate::admin::tap::{TapRequest, Tapping};
use crate::balance::{Balancer, Picked, RouteRef, View};
use crate::connect::{Connection, Upstream};
use crate::metrics::{Direction, DstLabels, HttpKey, HttpMetrics, RouteKey, RouteMetrics, Tls};
use crate::outbound::discover::Endpoint;
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
    /// The downstream client's address, for tap events.
    client: SocketAddr,
    /// The `tls` label of the downstream connection.
    client_tls: Tls,
    /// Inbound: the port's authorization policy, checked per request.
    policy: Option<crate::inbound::policy::ConnPolicy>,
    control: Arc<ConnControl>,
    target: ConnTarget,
    pool: Arc<Pool>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The HTTP/1 upstream connection this downstream connection used last, and its
    /// endpoint.
    sticky: Option<(SocketAddr, Box<H1Conn>)>,
    /// The metrics of the last label set, reused while authority and endpoint stay the
    /// same.
    labels: Option<(Box<str>, SocketAddr, DstLabels, Arc<HttpMetrics>)>,
    /// In HTTP proxy mode, the last authority and the target it named.
    route: Option<(Box<str>, Logical)>,
    /// The balancer of the last target and authority.
    balancer: Option<(Logical, Box<str>, Arc<Balancer>)>,
}

impl Checkin for ConnState {
    fn checkin(&self, endpoint: SocketAddr, conn: Box<H1Conn>) {
        let previous = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.sticky.replace((endpoint, conn))
        };
        if let Some((e, c)) = previous {
            self.pool.checkin_h1(&e, c);
        }
    }
}

/// What the upstream answered.
enum Answer {
    H1(super::h1::Head, super::h1::H1Body),
    H1Upgrade(super::h1::Head, Box<H1Conn>),
}

impl Drop for ConnState {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some((endpoint, conn)) = inner.sticky.take() {
            self.pool.checkin_h1(&endpoint, conn);
        }
    }
}

impl<U: Upstream> ProxyService<U> {
    pub fn new(
        http: Arc<Http<U>>,
        client: Client,
        target: ConnTarget,
        control: Arc<ConnControl>,
    ) -> Self {
        let conn = Arc::new(ConnState {
            client: client.addr,
            client_tls: client.tls,
            policy: client.policy,
            control,
            target,
            pool: http.pool.clone(),
            inner: Mutex::new(Inner::default()),
        });
        ProxyService { http, conn }
    }

    /// The synchronous half of a request, run inside `call`: route, label, rewrite, and for
    /// HTTP/1 encode. Done before hyper reads again, so the request's header map (which
    /// shares hyper's read buffer) is gone by then.
    fn prepare(&self, mut req: Request<Incoming>) -> Result<Job, Box<Response<ProxyBody>>> {
        let start = Instant::now();
        if let Err(e) = validate::request_target(&mut req) {
            let label = authority(&req).unwrap_or("").to_owned();
            return Err(Box::new(self.fail(
                ProxyError::Request(e),
                &label,
                None,
                start,
                false,
            )));
        }
        if let Err(e) = self.authorize(&req) {
            let label = authority(&req).unwrap_or("").to_owned();
            return Err(Box::new(self.fail(e, &label, None, start, false)));
        }
        let target = match self.route(&req) {
            Ok(t) => t.into_owned(),
            Err(e) => {
                let label = authority(&req).unwrap_or("").to_owned();
                return Err(Box::new(self.fail(e, &label, None, start, false)));
            }
        };
        let auth = authority(&req).unwrap_or("");
        // The one cost of tap when nobody taps: a relaxed load.
        let tap = self.http.metrics.tap().is_active().then(|| {
            let s = &self.http.settings;
            TapRequest::new(&req, auth, s.direction, &self.tls(None), self.conn.client)
        });
        let balancer = self.balancer_for(&target, auth);
        let view = balancer.view();
        let route = view
            .route(req.method(), req.uri().path())
            .map(|r| self.route_call(r, auth));
        let auth_owned = Box::<str>::from(auth);
        let tunnel = req.method() == Method::CONNECT;
        let kind = if tunnel && self.conn.target == ConnTarget::ProxyMode {
            JobKind::Tunnel(hyper::upgrade::on(&mut req))
        } else {
            let upgrading = tunnel || is_upgrade(&req);
            let on_upgrade = upgrading.then(|| hyper::upgrade::on(&mut req));
            strip_hop_by_hop(req.headers_mut(), upgrading);
            to_origin_form(&mut req);
            let retryable = route.as_ref().is_some_and(|c| c.route.is_retryable());
            if !upgrading && retryable && bufferable(&req) {
                // Read whole, so that a retry can send it again.
                JobKind::Buffer(req, target)
            } else if !upgrading && view.h2_hinted() {
                // Encoded once the pick says whether its endpoint takes HTTP/2.
                JobKind::Orig(req, target)
            } else {
                let body_timeout = self.http.settings.limits.request_body_timeout;
                JobKind::H1(Prepared::new(req, &target, body_timeout), on_upgrade)
            }
        };
        Ok(Job {
            start,
            balancer,
            auth_owned,
            kind,
            tap,
            route,
            view: Some(view),
        })
    }

    /// The asynchronous half: send, and turn the answer into the response. A profile
    /// route's timeout bounds the whole request, retries included.
    async fn run(self, job: Job) -> Response<ProxyBody> {
        let Some(t) = job.route.as_ref().and_then(|c| c.route.timeout()) else {
            return self.attempt(job).await;
        };
        let (label, start, call) = (job.auth_owned.clone(), job.start, job.route.clone());
        let attempt = async { Ok(self.clone().attempt(job).await) };
        match within(Some(t), attempt).await {
            Ok(res) => res,
            Err(e) => {
                if let Some(call) = &call {
                    call.failed(e.status().as_u16(), start.elapsed());
                }
                self.fail(e, &label, None, start, false)
            }
        }
    }

    /// Sends the request to a picked endpoint, again to another pick while its route
    /// allows retries and the answer is a failure (a bodiless request only, at most
    /// [`MAX_RETRIES`] times, within the target's budget).
    async fn attempt(self, job: Job) -> Response<ProxyBody> {
        let Job {
            start,
            balancer,
            auth_owned,
            kind,
            tap,
            route,
            mut view,
        } = job;
        let label = &*auth_owned;
        let retryable = route.as_ref().is_some_and(|c| c.route.is_retryable());
        if retryable {
            balancer.budget().deposit(Instant::now());
        }
        if let Some(call) = &route {
            call.metrics.request();
        }
        let failed = |e: &ProxyError| {
            if let Some(call) = &route {
                call.failed(e.status().as_u16(), start.elapsed());
            }
        };
        // A pick made before the request was encoded, used by the first attempt.
        let mut first = None;
        let (mut prepared, on_downstream_upgrade) = match kind {
            JobKind::Tunnel(on_upgrade) => {
                let picked = match balancer.pick_in(view).await {
                    Ok(p) => p,
                    Err(e) => {
                        let e = ProxyError::Unavailable(e);
                        failed(&e);
                        return self.fail_tapped(e, label, None, start, false, tap);
                    }
                };
                let metrics = self.metrics_for(label, picked.endpoint());
                return self.tunnel(on_upgrade, picked, label, metrics, start).await;
            }
            JobKind::H1(prepared, on_upgrade) => (prepared, on_upgrade),
            JobKind::Buffer(req, target) => {
                use http_body_util::BodyExt as _;
                let body_timeout = self.http.settings.limits.request_body_timeout;
                let (parts, body) = req.into_parts();
                let limited = http_body_util::Limited::new(body, MAX_BUFFERED_BODY);
                let read = match body_timeout.is_zero() {
                    true => Ok(limited.collect().await),
                    false => tokio::time::timeout(body_timeout, limited.collect()).await,
                };
                match read {
                    Ok(Ok(body)) => {
                        let req = Request::from_parts(parts, body.to_bytes());
                        (Prepared::buffered(req, &target, body_timeout), None)
                    }
                    Ok(Err(e)) => {
                        let e = ProxyError::RequestBody(H1Error::RequestBody(e.to_string()));
                        failed(&e);
                        return self.fail_tapped(e, label, None, start, false, tap);
                    }
                    Err(_) => {
                        let e = ProxyError::RequestBody(H1Error::RequestBodyTimeout(body_timeout));
                        failed(&e);
                        return self.fail_tapped(e, label, None, start, false, tap);
                    }
                }
            }
            JobKind::Orig(req, target) => {
                let picked = match balancer.pick_in(view.take()).await {
                    Ok(p) => p,
                    Err(e) => {
                        let e = ProxyError::Unavailable(e);
                        failed(&e);
                        return self.fail_tapped(e, label, None, start, false, tap);
                    }
                };
                if picked.endpoint().h2_hint {
                    return self.upgrade_h2(req, picked, label, start, tap).await;
                }
                first = Some(picked);
                let body_timeout = self.http.settings.limits.request_body_timeout;
                (Prepared::new(req, &target, body_timeout), None)
            }
        };
        let (mut retries, mut repicks) = (0, 0);
        let (answer, mut picked, metrics) = loop {
            let picked = match first.take() {
                Some(p) => Ok(p),
                None => balancer.pick_in(view.take()).await,
            };
            let mut picked = match picked {
                Ok(p) => p,
                Err(e) => {
                    let e = ProxyError::Unavailable(e);
                    failed(&e);
                    return self.fail_tapped(e, label, None, start, false, tap);
                }
            };
            let metrics = self.metrics_for(label, picked.endpoint());
            let answer = match self.send_h1(picked.endpoint(), &mut prepared).await {
                Ok(r) => r,
                // Nothing was sent: another endpoint may take it.
                Err(ProxyError::Connect(e))
                    if !e.is_tls() && repicks < MAX_REPICKS && picked.is_discovered() =>
                {
                    picked.unreachable();
                    repicks += 1;
                    continue;
                }
                Err(e) => {
                    if e.is_upstream() {
                        picked.failed();
                    }
                    failed(&e);
                    return self.fail_tapped(e, label, Some(metrics), start, false, tap);
                }
            };
            let retry = match (&answer, &route) {
                (Answer::H1(head, _), Some(call)) => {
                    let status = head.status.as_u16();
                    call.attempt(status);
                    retryable
                        && retries < MAX_RETRIES
                        && prepared.resendable()
                        && call.route.is_failure(status)
                        && self.may_retry(&balancer, call)
                }
                _ => false,
            };
            if !retry {
                break (answer, picked, metrics);
            }
            // The failed attempt is an exchange with the endpoint: it counts there.
            if let Answer::H1(head, _) = &answer {
                picked.responded(head.status.as_u16(), start.elapsed());
                metrics.request();
                Recorder::new(metrics, start, head.status.as_u16()).finish(None);
            }
            drop(answer);
            retries += 1;
        };
        let peer = picked.addr();
        metrics.request();
        if let (Some(call), Answer::H1(head, _)) = (&route, &answer) {
            call.answered(head.status.as_u16(), start.elapsed());
        }
        let (status, mut headers, body) = match answer {
            Answer::H1(head, body) => {
                picked.responded(head.status.as_u16(), start.elapsed());
                let body = body.checkin(self.conn.clone(), peer);
                (head.status, head.headers, ProxyBody::h1(body))
            }
            Answer::H1Upgrade(head, conn) => {
                picked.responded(head.status.as_u16(), start.elapsed());
                match on_downstream_upgrade {
                    Some(downstream) => upgrade::splice_h1(downstream, conn),
                    None => drop(conn),
                }
                (head.status, head.headers, ProxyBody::empty())
            }
        };
        strip_hop_by_hop(&mut headers, status == StatusCode::SWITCHING_PROTOCOLS);
        let tapping = tap.map(|t| Tapping::response(&self.http.metrics, t, peer, start));
        let recorder = Recorder::new(metrics, start, status.as_u16()).tap(tapping);
        let body = body.record(recorder, &headers);
        let mut res = Response::new(body);
        *res.status_mut() = status;
        *res.headers_mut() = headers;
        res
    }

    /// Whether a failed request on a route may be sent again: the target's budget decides,
    /// and the route's counters record the decision.
    pub(super) fn may_retry(&self, balancer: &Balancer, call: &RouteCall) -> bool {
        if balancer.budget().withdraw(Instant::now()) {
            call.metrics.retried();
            true
        } else {
            call.metrics.budget_exhausted();
            false
        }
    }

    /// A request on `route` to `dst`, with the route's metrics.
    pub(super) fn route_call(&self, route: RouteRef, dst: &str) -> RouteCall {
        let metrics = self.http.metrics.route(RouteKey {
            direction: self.http.settings.direction,
            dst: dst.into(),
            route: route.name().into(),
        });
        RouteCall { route, metrics }
    }

    /// Inbound: whether the port's policy lets the client send this request.
    pub(super) fn authorize<B>(&self, req: &Request<B>) -> Result<(), ProxyError> {
        let Some(policy) = &self.conn.policy else {
            return Ok(());
        };
        policy.check_http(req).map_err(|denied| {
            let (client, method, path) = (self.conn.client, req.method(), req.uri().path());
            match crate::throttle::POLICY_DENY.admit() {
                Some(skipped) => tracing::info!(
                    %client, %method, path, %denied, skipped, "request refused by policy"
                ),
                None => {
                    tracing::debug!(%client, %method, path, %denied, "request refused by policy")
                }
            }
            ProxyError::Forbidden(denied)
        })
    }

    /// Where a request goes: the connection's fixed target, or in HTTP proxy mode, the
    /// authority the request names.
    fn route<B>(&self, req: &Request<B>) -> Result<Cow<'_, Logical>, ProxyError> {
        match &self.conn.target {
            ConnTarget::Fixed(t) => Ok(Cow::Borrowed(t)),
            ConnTarget::ProxyMode => {
                let https = req.uri().scheme_str() == Some("https");
                self.route_authority(authority(req), https).map(Cow::Owned)
            }
        }
    }

    /// In HTTP proxy mode, the target a request's authority names; the last one is
    /// remembered, since a connection's requests usually name the same.
    fn route_authority(&self, auth: Option<&str>, https: bool) -> Result<Logical, ProxyError> {
        let auth = auth.ok_or(ProxyError::BadRequest("request names no host to proxy to"))?;
        let mut inner = self.lock();
        if let Some((cached, target)) = &inner.route
            && **cached == *auth
            && !https
        {
            return Ok(target.clone());
        }
        let target = Logical::from_authority(auth, if https { 443 } else { 80 }).ok_or(
            ProxyError::BadRequest("request host is not a valid authority"),
        )?;
        if !https {
            inner.route = Some((auth.into(), target.clone()));
        }
        Ok(target)
    }

    /// The balancer for `target`, kept while a connection's requests name the same target
    /// and authority.
    fn balancer_for(&self, target: &Logical, authority: &str) -> Arc<Balancer> {
        let mut inner = self.lock();
        if let Some((t, a, b)) = &inner.balancer
            && t == target
            && **a == *authority
        {
            return b.clone();
        }
        let b = self.http.upstream.balancer(target, Some(authority));
        inner.balancer = Some((target.clone(), authority.into(), b.clone()));
        b
    }

    /// Sends a prepared request to `endpoint`, within the proxy's response timeout.
    async fn send_h1(
        &self,
        endpoint: &Endpoint,
        prepared: &mut Prepared,
    ) -> Result<Answer, ProxyError> {
        let limit = self.http.settings.limits.response_timeout;
        within(limit, self.send_h1_prepared(endpoint, prepared)).await
    }

    async fn send_h1_prepared(
        &self,
        endpoint: &Endpoint,
        prepared: &mut Prepared,
    ) -> Result<Answer, ProxyError> {
        let mut resend = Resend::default();
        loop {
            let (conn, reused) = self.checkout_h1(endpoint, resend.fresh_only()).await?;
            match conn.send(prepared, reused).await {
                Ok(Outcome::Response(head, body)) => return Ok(Answer::H1(head, body)),
                Ok(Outcome::Upgrade(head, conn)) => return Ok(Answer::H1Upgrade(head, conn)),
                Err(e) => resend.after(e)?,
            }
        }
    }

    /// A connection to `endpoint`: the one this connection used last, an idle one from the
    /// endpoint's pool, or a new one.
    async fn checkout_h1(
        &self,
        endpoint: &Endpoint,
        fresh_only: bool,
    ) -> Result<(Box<H1Conn>, bool), ProxyError> {
        let addr = endpoint.addr;
        if !fresh_only {
            let tls = self.http.upstream.tls(endpoint);
            let mut inner = self.lock();
            match inner.sticky.take() {
                Some((e, conn)) if e == addr && *conn.tls() == tls && conn.is_usable() => {
                    return Ok((conn, true));
                }
                Some((e, conn)) if e != addr => self.conn.pool.checkin_h1(&e, conn),
                // Stale, or made for another identity: closed.
                _ => {}
            }
            if let Some(conn) = self.conn.pool.checkout_h1(&addr, &tls) {
                return Ok((conn, true));
            }
        }
        let conn = self.connect(endpoint).await?;
        Ok((
            H1Conn::new(conn, self.http.settings.limits.max_header_bytes),
            false,
        ))
    }

    /// A new connection to `endpoint`.
    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ProxyError> {
        self.http
            .upstream
            .connect(endpoint)
            .await
            .map_err(ProxyError::Connect)
    }

    /// `CONNECT host:port` in HTTP proxy mode: a TCP tunnel to the named destination,
    /// connected as opaque TCP is (through the transport header where the endpoint asks).
    async fn tunnel(
        &self,
        on_upgrade: hyper::upgrade::OnUpgrade,
        mut picked: Picked,
        label: &str,
        metrics: Arc<HttpMetrics>,
        start: Instant,
    ) -> Response<ProxyBody> {
        let conn = match self.http.upstream.connect_opaque(picked.endpoint()).await {
            Ok(c) => c,
            Err(e) => {
                picked.failed();
                return self.fail(ProxyError::Connect(e), label, Some(metrics), start, false);
            }
        };
        picked.connected(start.elapsed());
        metrics.request();
        upgrade::tunnel(on_upgrade, conn);
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
        self.fail_tapped(error, authority, metrics, start, grpc, None)
    }

    /// [`Self::fail`] for a request someone taps: the event has no upstream address.
    fn fail_tapped(
        &self,
        error: ProxyError,
        authority: &str,
        metrics: Option<Arc<HttpMetrics>>,
        start: Instant,
        grpc: bool,
        tap: Option<Box<TapRequest>>,
    ) -> Response<ProxyBody> {
        // Failures of the upstream are the operator's to see at the default level (a few a
        // second at most); a client's own mistakes stay at debug.
        match error
            .is_upstream()
            .then(|| crate::throttle::HTTP_UPSTREAM.admit())
        {
            Some(Some(skipped)) => {
                tracing::warn!(%error, authority, skipped, "request failed upstream")
            }
            _ => tracing::debug!(%error, authority, "request failed in the proxy"),
        }
        let metrics = metrics.unwrap_or_else(|| {
            let nowhere = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
            self.metrics_for(authority, &Endpoint::bare(nowhere))
        });
        metrics.request();
        let res = error.to_response(grpc);
        let nowhere = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let tapping = tap.map(|t| Tapping::response(&self.http.metrics, t, nowhere, start));
        let recorder = Recorder::new(metrics, start, res.status().as_u16())
            .proxy_error(error.label())
            .tap(tapping);
        let (parts, body) = res.into_parts();
        let body = body.record(recorder, &parts.headers);
        Response::from_parts(parts, body)
    }

    /// The metrics for (authority, endpoint), from the connection's cache when unchanged.
    fn metrics_for(&self, authority: &str, endpoint: &Endpoint) -> Arc<HttpMetrics> {
        let mut inner = self.lock();
        if let Some((a, t, d, m)) = &inner.labels
            && **a == *authority
            && *t == endpoint.addr
            && Arc::ptr_eq(d, &endpoint.labels)
        {
            return m.clone();
        }
        let m = self.http.metrics.http(HttpKey {
            direction: self.http.settings.direction,
            authority: authority.into(),
            target: endpoint.addr,
            tls: self.tls(Some(endpoint)),
            dst: endpoint.labels.clone(),
        });
        inner.labels = Some((
            authority.into(),
            endpoint.addr,
            endpoint.labels.clone(),
            m.clone(),
        ));
        m
    }

    /// The `tls` label of HTTP metrics: as Linkerd's, the client connection's inbound, and
    /// the connection to the endpoint outbound.
    fn tls(&self, endpoint: Option<&Endpoint>) -> Tls {
        match (self.http.settings.direction, endpoint) {
            (Direction::Inbound, _) => self.conn.client_tls.clone(),
            (Direction::Outbound, Some(e)) => self.http.upstream.tls(e),
            (Direction::Outbound, None) => {
                let nowhere = Endpoint::bare(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
                self.http.upstream.tls(&nowhere)
            }
        }
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
        let in_flight = self.conn.control.start();
        match self.prepare(req) {
            Ok(job) => {
                let this = self.clone();
                Box::pin(async move {
                    let mut res = this.run(job).await;
                    res.body_mut().hold(in_flight);
                    Ok(res)
                })
            }
            Err(mut res) => {
                res.body_mut().hold(in_flight);
                Box::pin(std::future::ready(Ok(*res)))
            }
        }
    }
}

/// A routed, rewritten request waiting to be sent.
struct Job {
    start: Instant,
    balancer: Arc<Balancer>,
    auth_owned: Box<str>,
    kind: JobKind,
    /// The request's metadata, kept only while someone taps.
    tap: Option<Box<TapRequest>>,
    /// The target's profile route the request takes, if any.
    route: Option<RouteCall>,
    /// The balancer's answer the route was read from, for the first pick.
    view: Option<View>,
}

/// A request on a profile route, and the route's metrics.
#[derive(Clone)]
pub(super) struct RouteCall {
    pub(super) route: RouteRef,
    pub(super) metrics: Arc<RouteMetrics>,
}

impl RouteCall {
    /// One attempt's answer, retries included.
    pub(super) fn attempt(&self, status: u16) {
        self.metrics.attempt(status, self.route.is_failure(status));
    }

    /// The answer the client gets.
    pub(super) fn answered(&self, status: u16, latency: std::time::Duration) {
        self.metrics
            .response(status, self.route.is_failure(status), latency);
    }

    /// The proxy's own answer (502, 503, 504): a failed attempt and a failed response.
    pub(super) fn failed(&self, status: u16, latency: std::time::Duration) {
        self.metrics.attempt(status, true);
        self.metrics.response(status, true, latency);
    }
}

/// The one home of the HTTP/1 paths' resend rule (lean and hyper alike): a request goes on
/// a reused connection when one is ready, and once more on a new connection when the reused
/// one turns out stale (closed before it read anything, which only the send can tell; only
/// bodiless requests are ever stale). A loop over `checkout_h1(fresh_only())` and the send
/// asks `after` whether to go round again.
#[derive(Default)]
pub(super) struct Resend {
    fresh_only: bool,
}

impl Resend {
    pub(super) fn fresh_only(&self) -> bool {
        self.fresh_only
    }

    /// `Ok` to send again on a new connection; the error to answer with otherwise.
    pub(super) fn after(&mut self, e: SendError) -> Result<(), ProxyError> {
        match e {
            SendError::Stale if !self.fresh_only => {
                self.fresh_only = true;
                Ok(())
            }
            e => Err(e.into()),
        }
    }
}

/// The one home of response timeouts on the HTTP/1 and orig-proto paths: `fut` bounded by
/// `limit`, if any, answering `ResponseTimeout` (504) when it passes. The HTTP/2 path keeps
/// its own deadline, polled beside the client's stream reset (`h2::watch`).
pub(super) async fn within<T>(
    limit: Option<Duration>,
    fut: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    match limit {
        // Boxed: a timer makes the future large and over-aligned; rarely set.
        Some(t) => Box::pin(tokio::time::timeout(t, fut))
            .await
            .unwrap_or(Err(ProxyError::ResponseTimeout(t))),
        None => fut.await,
    }
}

/// How many times one request is sent again on a retryable route, budget permitting.
pub(super) const MAX_RETRIES: u32 = 3;

/// How many other endpoints a request tries when the one picked refuses the connection.
/// Nothing was sent, so any request may go elsewhere, retryable or not; the endpoint is
/// ejected at once. A failed mesh TLS handshake is not moved: the client sees it (see
/// `ConnectError::is_tls`).
pub(super) const MAX_REPICKS: u32 = 3;

enum JobKind {
    H1(Prepared, Option<hyper::upgrade::OnUpgrade>),
    Tunnel(hyper::upgrade::OnUpgrade),
    /// A request to a target with meshed endpoints: to one of them it goes over HTTP/2
    /// (`l5d-orig-proto`), to another as HTTP/1.
    Orig(Request<Incoming>, Logical),
    /// A request on a retryable route with a small body, read whole before it is sent.
    Buffer(Request<Incoming>, Logical),
}

/// The largest request body read whole so that its request can be retried (Linkerd's
/// limit).
pub(super) const MAX_BUFFERED_BODY: usize = 64 * 1024;

/// Whether a request's body is small enough to buffer for retries: it says its length.
fn bufferable(req: &Request<Incoming>) -> bool {
    use hyper::body::Body as _;
    !req.body().is_end_stream()
        && req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .is_some_and(|n| n <= MAX_BUFFERED_BODY)
}
