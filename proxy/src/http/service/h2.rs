//! HTTP/2 streams: each request forwarded on a shared upstream HTTP/2 connection, with
//! its body, response and trailers piped through, in one task per stream.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::{Connection as ServerConn, SendResponse};
use h2::{RecvStream, SendStream};
use http::header::DATE;
use http::{Request, Response};

use super::super::body::{ProxyBody, Recorder};
use super::super::conn::Graceful;
use super::super::date;
use super::super::errors::ProxyError;
use super::super::h2::{H2Conn, KeepAlive, PipeError, pipe, unprocessed};
use super::super::headers::{L5D_ORIG_PROTO, authority, is_grpc};
use super::super::pace::BodyPace;
use super::super::validate;
use super::{MAX_REPICKS, MAX_RETRIES, ProxyService};
use crate::admin::tap::{TapRequest, Tapping};
use crate::connect::Upstream;
use crate::io::ProxyIo;
use crate::metrics::{Direction, HttpMetrics};
use crate::outbound::discover::Endpoint;

type Io = ProxyIo;

/// A served HTTP/2 connection: accepts streams and starts a task for each, until the
/// client goes away or a graceful shutdown has finished the streams in flight.
pub struct H2Server<U> {
    conn: ServerConn<Io, Bytes>,
    svc: ProxyService<U>,
    keepalive: Option<KeepAlive>,
}

impl<U: Upstream> H2Server<U> {
    pub fn new(
        mut conn: ServerConn<Io, Bytes>,
        svc: ProxyService<U>,
        settings: crate::config::H2KeepAlive,
    ) -> Self {
        let pings = settings.interval.and_then(|_| conn.ping_pong());
        H2Server {
            keepalive: KeepAlive::new(settings, pings),
            conn,
            svc,
        }
    }
}

impl<U: Upstream> Future for H2Server<U> {
    type Output = Result<(), h2::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(keepalive) = &mut this.keepalive
            && let Poll::Ready(Err(why)) = keepalive.poll(cx)
        {
            tracing::debug!(
                why,
                "closing an HTTP/2 connection whose client stopped answering pings"
            );
            return Poll::Ready(Ok(()));
        }
        loop {
            match ready!(this.conn.poll_accept(cx)) {
                Some(Ok((req, respond))) => {
                    crate::connect::spawn_in_connection(this.svc.clone().forward_h2(req, respond));
                }
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<U: Upstream> Graceful for H2Server<U> {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        self.get_mut().conn.graceful_shutdown();
    }
}

/// How many times a request without a body is sent while upstreams refuse it unprocessed
/// (each GOAWAY of a server recycling its connections refuses the streams in flight).
const MAX_TRIES: u32 = 3;

/// What a stream's response needs once the upstream has answered.
struct Answered {
    metrics: Arc<HttpMetrics>,
    tap: Option<Box<TapRequest>>,
    start: Instant,
}

impl<U: Upstream> ProxyService<U> {
    /// Forwards one stream: routes it, sends it upstream, and pipes both bodies.
    async fn forward_h2(self, mut req: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
        let start = Instant::now();
        if let Err(e) = self.authorize(&req) {
            let label = authority(&req).unwrap_or("").to_owned();
            let res = self.fail(e, &label, None, start, is_grpc(&req));
            send_proxy_response(&mut respond, res);
            return;
        }
        if self.http.settings.direction == Direction::Inbound
            && req
                .headers()
                .get(L5D_ORIG_PROTO)
                .is_some_and(|v| v.as_bytes().starts_with(b"HTTP/1"))
        {
            return self.downgrade_h2(req, respond, start).await;
        }
        let grpc = is_grpc(&req);
        if let Err(e) = validate::request_target(&mut req) {
            let label = authority(&req).unwrap_or("").to_owned();
            let res = self.fail(ProxyError::Request(e), &label, None, start, grpc);
            send_proxy_response(&mut respond, res);
            return;
        }
        let target = match self.route(&req) {
            Ok(t) => t.into_owned(),
            Err(e) => {
                let label = authority(&req).unwrap_or("").to_owned();
                let res = self.fail(e, &label, None, start, grpc);
                send_proxy_response(&mut respond, res);
                return;
            }
        };
        let auth = authority(&req).unwrap_or("");
        let tap = self.http.metrics.tap().is_active().then(|| {
            let s = &self.http.settings;
            TapRequest::new(&req, auth, s.direction, &self.tls(None), self.conn.client)
        });
        let balancer = self.balancer_for(&target, auth);
        let label: Box<str> = auth.into();
        let view = balancer.view();
        let route = view.route(req.method(), req.uri().path());
        let mut picked = match balancer.pick_in(Some(view)).await {
            Ok(p) => p,
            Err(e) => {
                let e = ProxyError::Unavailable(e);
                let res = self.fail_tapped(e, &label, None, start, grpc, tap);
                send_proxy_response(&mut respond, res);
                return;
            }
        };
        let mut metrics = self.metrics_for(&label, picked.endpoint());
        let (parts, mut body) = req.into_parts();
        let end = body.is_end_stream();
        let request = Request::from_parts(parts, ());
        // A request without a body can be sent again if the upstream did not process it.
        // The copy of its head costs a header map per request, a small price next to a
        // 502 each time an upstream recycles its connection.
        let again = end.then(|| head_copy(&request));
        let route = route.map(|r| self.route_call(r, &label));
        let retryable = again.is_some() && route.as_ref().is_some_and(|c| c.route.is_retryable());
        if retryable {
            balancer.budget().deposit(Instant::now());
        }
        if let Some(call) = &route {
            call.metrics.request();
        }
        // A profile route's timeout bounds the whole request, retries included.
        let timeout = match (
            self.http.settings.limits.response_timeout,
            route.as_ref().and_then(|c| c.route.timeout()),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let deadline = timeout.map(|t| (tokio::time::Instant::now() + t, t));

        let mut request = Some(request);
        let mut repicks = 0;
        let (endpoint, opened) = loop {
            let endpoint = picked.endpoint().clone();
            let opened = watch(
                &mut respond,
                deadline,
                self.open_h2(&endpoint, &mut request, end),
            )
            .await;
            match opened {
                // Nothing was sent: another endpoint may take it.
                Err(Some(ProxyError::Connect(e)))
                    if !e.is_tls()
                        && repicks < MAX_REPICKS
                        && picked.is_discovered()
                        && request.is_some() =>
                {
                    picked.unreachable();
                    repicks += 1;
                    picked = match balancer.pick().await {
                        Ok(p) => p,
                        Err(e) => {
                            let e = ProxyError::Unavailable(e);
                            let res = self.fail_tapped(e, &label, None, start, grpc, tap);
                            send_proxy_response(&mut respond, res);
                            return;
                        }
                    };
                    metrics = self.metrics_for(&label, picked.endpoint());
                }
                opened => break (endpoint, opened),
            }
        };
        let (response, upstream_body) = match opened {
            Ok(r) => r,
            // The client reset the stream: nothing to answer or record.
            Err(None) => return,
            Err(Some(e)) => {
                if e.is_upstream() {
                    picked.failed();
                }
                if let Some(call) = &route {
                    call.failed(e.status().as_u16(), start.elapsed());
                }
                let res = self.fail_tapped(e, &label, Some(metrics), start, grpc, tap);
                send_proxy_response(&mut respond, res);
                return;
            }
        };
        // The endpoint a retry went to replaces the first pick here.
        let attempt = std::sync::Mutex::new((picked, metrics, endpoint));
        // The response comes while the request body may still be streaming up.
        let body_timeout = self.http.settings.limits.request_body_timeout;
        let (responded, stalled) = (AtomicBool::new(false), OnceLock::new());
        let (responded, stalled) = (&responded, &stalled);
        let respond_part = async move {
            let (svc, cell, balancer, route, label) = (&self, &attempt, &balancer, &route, &label);
            let response = async move {
                let mut response = response;
                let (mut tries, mut retries) = (1, 0);
                loop {
                    let endpoint = lock(cell).2.clone();
                    let result = response.await;
                    if let (Ok(r), Some(call)) = (&result, route) {
                        call.attempt(r.status().as_u16());
                    }
                    match (result, &again, route) {
                        (Err(e), Some(head), _) if unprocessed(&e) && tries < MAX_TRIES => {
                            tries += 1;
                            let mut again = Some(head_copy(head));
                            (response, _) = svc.open_h2(&endpoint, &mut again, true).await?;
                        }
                        (Ok(r), Some(head), Some(call))
                            if retryable
                                && retries < MAX_RETRIES
                                && call.route.is_failure(r.status().as_u16())
                                && svc.may_retry(balancer, call) =>
                        {
                            retries += 1;
                            let status = r.status().as_u16();
                            drop(r);
                            {
                                // The failed attempt is an exchange with the endpoint.
                                let mut a = lock(cell);
                                a.0.responded(status, start.elapsed());
                                a.1.request();
                                Recorder::new(a.1.clone(), start, status).finish(None);
                            }
                            let picked = balancer.pick().await.map_err(ProxyError::Unavailable)?;
                            let endpoint = picked.endpoint().clone();
                            let metrics = svc.metrics_for(label, &endpoint);
                            *lock(cell) = (picked, metrics, endpoint.clone());
                            let mut again = Some(head_copy(head));
                            (response, _) = svc.open_h2(&endpoint, &mut again, true).await?;
                        }
                        (r, _, _) => return r.map_err(ProxyError::UpstreamH2),
                    }
                }
            };
            let outcome = watch(&mut respond, deadline, response).await;
            let (mut picked, metrics, endpoint) = match attempt.into_inner() {
                Ok(a) => a,
                Err(poisoned) => poisoned.into_inner(),
            };
            let peer = endpoint.addr;
            match outcome {
                Ok(response) => {
                    responded.store(true, Relaxed);
                    picked.responded(response.status().as_u16(), start.elapsed());
                    if let Some(call) = route {
                        call.answered(response.status().as_u16(), start.elapsed());
                    }
                    let answered = Answered {
                        metrics,
                        tap,
                        start,
                    };
                    self.respond_h2(response, answered, peer, respond).await;
                }
                Err(None) => {}
                Err(Some(e)) => {
                    // The upstream stream failed because the client's body stalled: the
                    // client's fault, answered as such.
                    let e = stalled
                        .get()
                        .copied()
                        .map_or(e, ProxyError::RequestBodyStalled);
                    if e.is_upstream() {
                        picked.failed();
                    }
                    if let Some(call) = route {
                        call.failed(e.status().as_u16(), start.elapsed());
                    }
                    let res = self.fail_tapped(e, label, Some(metrics), start, grpc, tap);
                    send_proxy_response(&mut respond, res);
                }
            }
        };
        match upstream_body {
            Some(mut tx) => {
                let request_part = async {
                    // Paced until the upstream answers: from then on the server is engaged,
                    // and a bidirectional stream may rightly stay quiet for long.
                    let mut pace = Some(body_timeout)
                        .filter(|t| !t.is_zero())
                        .map(BodyPace::new);
                    loop {
                        match pipe(&mut body, &mut tx, |_| {}, pace.take()).await {
                            Ok(_) => return,
                            Err(PipeError::Stalled(_)) if responded.load(Relaxed) => continue,
                            Err(e) => {
                                if let PipeError::Stalled(t) = e {
                                    let _ = stalled.set(t);
                                }
                                tx.send_reset(e.reason());
                                return;
                            }
                        }
                    }
                };
                tokio::join!(request_part, respond_part);
            }
            None => respond_part.await,
        }
    }

    /// Opens the upstream stream: the request head goes out, and the response is awaited
    /// by the caller. The request is taken only once a connection is ready for it, so on
    /// a connection error it is still there to send elsewhere.
    pub(super) async fn open_h2(
        &self,
        endpoint: &Endpoint,
        request: &mut Option<Request<()>>,
        end: bool,
    ) -> Result<(h2::client::ResponseFuture, Option<SendStream<Bytes>>), ProxyError> {
        let mut conn = self.h2_conn(endpoint).await?;
        if poll_fn(|cx| conn.sender.poll_ready(cx)).await.is_err() {
            // The connection is closing (a GOAWAY, or it failed) and nothing was sent on
            // it: send on a new one.
            conn.retire();
            conn = self.h2_conn(endpoint).await?;
            poll_fn(|cx| conn.sender.poll_ready(cx))
                .await
                .map_err(ProxyError::UpstreamH2)?;
        }
        let mut sender = conn.sender;
        let Some(request) = request.take() else {
            return Err(ProxyError::BadRequest("request already sent"));
        };
        let (response, tx) = sender
            .send_request(request, end)
            .map_err(ProxyError::UpstreamH2)?;
        Ok((response, (!end).then_some(tx)))
    }

    /// The endpoint's shared upstream connection, opened on first use.
    async fn h2_conn(&self, endpoint: &Endpoint) -> Result<H2Conn, ProxyError> {
        let pool = &self.conn.pool;
        if let Some(c) = pool.h2(&endpoint.addr, &self.http.upstream.tls(endpoint)) {
            return Ok(c);
        }
        // Boxed: a new connection is rare next to a stream on a shared one, and the state of
        // connecting (and of a TLS handshake) would otherwise sit in every stream's task,
        // which tokio copies when it spawns and finishes it.
        Box::pin(self.new_h2_conn(endpoint)).await
    }

    async fn new_h2_conn(&self, endpoint: &Endpoint) -> Result<H2Conn, ProxyError> {
        let pool = &self.conn.pool;
        let conn = self.connect(endpoint).await?;
        let h2 = pool
            .handshake_h2(conn)
            .await
            .map_err(ProxyError::UpstreamH2)?;
        pool.insert_h2(&endpoint.addr, h2.clone());
        Ok(h2)
    }

    /// Sends the response head and pipes the body, then records the response.
    async fn respond_h2(
        &self,
        response: Response<RecvStream>,
        answered: Answered,
        peer: SocketAddr,
        mut respond: SendResponse<Bytes>,
    ) {
        let (mut parts, mut body) = response.into_parts();
        answered.metrics.request();
        let status = parts.status.as_u16();
        let tapping = answered
            .tap
            .map(|t| Tapping::response(&self.http.metrics, t, peer, answered.start));
        let mut recorder = Recorder::new(answered.metrics, answered.start, status)
            .grpc_status(super::super::body::grpc_status(&parts.headers))
            .tap(tapping);
        parts.headers.entry(DATE).or_insert_with(date::header_value);
        let end = body.is_end_stream();
        let mut tx = match respond.send_response(Response::from_parts(parts, ()), end) {
            Ok(tx) => tx,
            Err(_) => {
                recorder.finish(Some("cancel"));
                return;
            }
        };
        if end {
            recorder.finish(None);
            return;
        }
        match pipe(&mut body, &mut tx, |n| recorder.add_bytes(n), None).await {
            Ok(trailers) => {
                if let Some(code) = trailers.as_ref().and_then(super::super::body::grpc_status) {
                    recorder = recorder.grpc_status(Some(code));
                }
                recorder.finish(None);
            }
            Err(e @ PipeError::Recv(_)) => {
                tx.send_reset(e.reason());
                recorder.finish(Some("stream"));
            }
            Err(PipeError::Send(_) | PipeError::Stalled(_)) => recorder.finish(Some("cancel")),
        }
    }
}

/// Runs `fut` unless the client resets the stream first (`Err(None)`) or the response
/// deadline passes (a response timeout).
async fn watch<T>(
    respond: &mut SendResponse<Bytes>,
    deadline: Option<(tokio::time::Instant, Duration)>,
    fut: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, Option<ProxyError>> {
    let mut fut = std::pin::pin!(fut);
    // Boxed: a timer makes the future large, and the timeout is rarely set.
    let mut timer = deadline.map(|(at, t)| (Box::pin(tokio::time::sleep_until(at)), t));
    poll_fn(|cx| {
        if respond.poll_reset(cx).is_ready() {
            return Poll::Ready(Err(None));
        }
        if let Some((sleep, t)) = &mut timer
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(Some(ProxyError::ResponseTimeout(*t))));
        }
        fut.as_mut().poll(cx).map_err(Some)
    })
    .await
}

/// Sends a response the proxy made (an error): its head, then its whole body.
pub(super) fn send_proxy_response(respond: &mut SendResponse<Bytes>, res: Response<ProxyBody>) {
    let (mut parts, mut body) = res.into_parts();
    parts.headers.entry(DATE).or_insert_with(date::header_value);
    let data = body.take_ready();
    let end = data.is_empty();
    let Ok(mut tx) = respond.send_response(Response::from_parts(parts, ()), end) else {
        return;
    };
    let last = data.len().saturating_sub(1);
    for (i, chunk) in data.into_iter().enumerate() {
        tx.reserve_capacity(chunk.len());
        if tx.send_data(chunk, i == last).is_err() {
            return;
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A copy of a request head, to send again.
fn head_copy(req: &Request<()>) -> Request<()> {
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}
