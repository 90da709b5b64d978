//! The lean HTTP/1 path: a server loop for plain requests that forwards heads as bytes.
//!
//! Through hyper, a request is parsed into a header map, encoded again for the upstream,
//! and its response parsed into another map that hyper encodes once more. For a plain
//! request (see `h1::head`: HTTP/1.1, origin-form, no body, no upgrade) this loop does
//! the same work on the bytes: it checks the request head and rewrites it for the
//! upstream, rewrites the response head for the client, and copies the body through. The
//! first request that is not plain hands the connection, with every byte not yet
//! handled, to hyper for the rest of its life, so unusual traffic keeps hyper's
//! behaviour. Tap also goes through hyper.

use std::fmt::Display;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::body::Recorder;
use super::super::conn::Graceful;
use super::super::date::DateCache;
use super::super::errors::ProxyError;
use super::super::h1::{
    self, Decoded, Decoder, FinalResponse, Framing, H1Conn, PlainRequest, RequestHead,
    ResponseContext,
};
use super::{MAX_REPICKS, ProxyService, Resend, within};
use crate::connect::Upstream;
use crate::drain::Drain;
use crate::io::ProxyIo;
use crate::metrics::HttpMetrics;
use crate::outbound::discover::Endpoint;
use crate::target::ConnTarget;

/// Reads from the client are at least this large.
const READ_CHUNK: usize = 4 * 1024;

/// How the lean loop ended.
#[derive(Debug)]
pub enum LeanEnd {
    /// The connection is finished.
    Closed,
    /// hyper serves the rest: the connection, and the bytes read but not handled.
    Handoff(ProxyIo, BytesMut),
}

/// The lean loop as a connection that `conn::drive` runs. The loop watches the drain
/// itself: between requests it closes the connection, and a response it sends while
/// draining says `Connection: close`, so a keep-alive client sends nothing more on it.
pub struct LeanConn<'a, F> {
    fut: Pin<&'a mut F>,
}

impl<'a, F: Future<Output = LeanEnd>> LeanConn<'a, F> {
    pub fn new(fut: Pin<&'a mut F>) -> Self {
        LeanConn { fut }
    }
}

impl<F: Future<Output = LeanEnd>> Future for LeanConn<'_, F> {
    type Output = LeanEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LeanEnd> {
        self.get_mut().fut.as_mut().poll(cx)
    }
}

impl<F: Future<Output = LeanEnd>> Graceful for LeanConn<'_, F> {
    /// Nothing to do: `drive` wakes the task when the drain starts, and the loop sees it.
    fn graceful_shutdown(self: Pin<&mut Self>) {}
}

/// Why a response could not be relayed to the end.
enum RelayError {
    /// The upstream failed or closed mid-body.
    Upstream,
    /// The client went away.
    Client,
}

impl<U: Upstream> ProxyService<U> {
    /// Serves plain requests until the client closes, or hands the connection to hyper.
    /// `buf` holds bytes already read from the client.
    pub async fn serve_lean(&self, mut io: ProxyIo, mut buf: BytesMut, drain: &Drain) -> LeanEnd {
        let max_head = self.http.settings.limits.max_header_bytes;
        let fixed = match &self.conn.target {
            ConnTarget::Fixed(t) => Some(t.clone()),
            ConnTarget::ProxyMode => None,
        };
        let mut upstream_head = Vec::with_capacity(256);
        let mut client_head = Vec::with_capacity(256);
        let mut dates = DateCache::default();
        loop {
            let request = loop {
                if self.http.metrics.tap().is_active() {
                    return LeanEnd::Handoff(io, buf);
                }
                let host = fixed.as_ref().map(|t| t as &dyn Display);
                match h1::parse_request(&buf, max_head, host, &mut upstream_head) {
                    RequestHead::Plain(r) => break r,
                    RequestHead::Other => return LeanEnd::Handoff(io, buf),
                    RequestHead::Partial => {}
                }
                if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                    buf.reserve(READ_CHUNK);
                }
                match read_request(&io, &mut buf, drain).await {
                    Ok(0) | Err(_) => return LeanEnd::Closed,
                    Ok(_) => {}
                }
            };
            let in_flight = self.conn.control.start();
            let start = Instant::now();
            let date = *dates.now();
            let exchange = Exchange {
                request: &request,
                authority: request
                    .host
                    .clone()
                    .and_then(|r| std::str::from_utf8(&buf[r]).ok())
                    .unwrap_or(""),
                head: &upstream_head,
                start,
                close: request.close,
                drain,
                date: &date,
            };
            let next = self.forward_lean(&io, exchange, &mut client_head).await;
            drop(in_flight);
            match next {
                Next::Request => buf.advance(request.len),
                Next::Close => {
                    let _ = io.shutdown().await;
                    return LeanEnd::Closed;
                }
                // Nothing was sent: hyper reads the request again.
                Next::Handoff => return LeanEnd::Handoff(io, buf),
            }
        }
    }

    /// Forwards one plain request and relays its response. Returns what the client
    /// connection does next. A request to a target with profile routes (retries,
    /// timeouts) goes to the hyper path, which applies them.
    async fn forward_lean(&self, io: &ProxyIo, x: Exchange<'_>, client_head: &mut Vec<u8>) -> Next {
        // A policy with routes needs the parsed request: hyper's path checks it.
        if let Some(policy) = &self.conn.policy {
            match policy.check_http_unrouted() {
                None => return Next::Handoff,
                Some(Ok(())) => {}
                Some(Err(denied)) => {
                    let client = self.conn.client;
                    match crate::throttle::POLICY_DENY.admit() {
                        Some(skipped) => {
                            tracing::info!(%client, %denied, skipped, "request refused by policy")
                        }
                        None => tracing::debug!(%client, %denied, "request refused by policy"),
                    }
                    return self
                        .lean_error(io, ProxyError::Forbidden(denied), None, &x)
                        .await;
                }
            }
        }
        let target = match &self.conn.target {
            ConnTarget::Fixed(t) => t.clone(),
            ConnTarget::ProxyMode => match self.route_authority(Some(x.authority), false) {
                Ok(t) => t,
                Err(e) => return self.lean_error(io, e, None, &x).await,
            },
        };
        let balancer = self.balancer_for(&target, x.authority);
        let cx = ResponseContext {
            head_request: x.request.head,
            trailers: x.request.trailers,
            close: x.close || x.drain.is_draining(),
            date: x.date,
        };
        let mut repicks = 0;
        let (mut picked, metrics, mut conn, response) = loop {
            let mut picked = match balancer.pick().await {
                // Profile routes and HTTP/2 upgrades are the hyper path's.
                Ok(p) if p.routed() || p.endpoint().h2_hint => return Next::Handoff,
                Ok(p) => p,
                Err(e) => {
                    return self
                        .lean_error(io, ProxyError::Unavailable(e), None, &x)
                        .await;
                }
            };
            let metrics = self.metrics_for(x.authority, picked.endpoint());
            let limit = self.http.settings.limits.response_timeout;
            let exchange = self.exchange_lean(picked.endpoint(), x.head, cx, client_head);
            let sent = within(limit, exchange).await;
            match sent {
                Ok((conn, response)) => break (picked, metrics, conn, response),
                // Nothing was sent: another endpoint may take it.
                Err(ProxyError::Connect(e))
                    if !e.is_tls() && repicks < MAX_REPICKS && picked.is_discovered() =>
                {
                    picked.unreachable();
                    repicks += 1;
                }
                Err(e) => {
                    if e.is_upstream() {
                        picked.failed();
                    }
                    return self.lean_error(io, e, Some(metrics), &x).await;
                }
            }
        };
        picked.responded(response.status, x.start.elapsed());
        drop(picked);
        // Decided as the head leaves, not when the request came: a drain that started
        // meanwhile must close the connection, and the client must hear it from this head.
        let close = cx.close || x.drain.is_draining();
        if close && !cx.close {
            say_close(client_head);
        }
        metrics.request();
        let recorder = Recorder::new(metrics, x.start, response.status);
        match relay_body(io, &mut conn, &response, client_head).await {
            Ok(trailer_status) => {
                recorder
                    .grpc_status(trailer_status.or(response.grpc_status))
                    .finish(None);
                if response.keep_alive && conn.read_buf.is_empty() {
                    let peer = conn.peer();
                    h1::Checkin::checkin(&*self.conn, peer, conn);
                }
                Next::from_reusable(!close)
            }
            Err(e) => {
                let label = match e {
                    RelayError::Upstream => "stream",
                    RelayError::Client => "cancel",
                };
                recorder
                    .grpc_status(response.grpc_status)
                    .finish(Some(label));
                Next::Close
            }
        }
    }

    /// Sends on a connection to `endpoint`, by the HTTP/1 paths' resend rule ([`Resend`]).
    async fn exchange_lean(
        &self,
        endpoint: &Endpoint,
        head: &[u8],
        cx: ResponseContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(Box<H1Conn>, FinalResponse), ProxyError> {
        let mut resend = Resend::default();
        loop {
            let (mut conn, reused) = self.checkout_h1(endpoint, resend.fresh_only()).await?;
            match conn.exchange(head, reused, cx, out).await {
                Ok(response) => return Ok((conn, response)),
                Err(e) => resend.after(e)?,
            }
        }
    }

    /// Answers with the proxy's error response for `error`, recording it as the hyper
    /// path does. Returns what the client connection does next.
    async fn lean_error(
        &self,
        io: &ProxyIo,
        error: ProxyError,
        metrics: Option<Arc<HttpMetrics>>,
        x: &Exchange<'_>,
    ) -> Next {
        let res = self.fail(error, x.authority, metrics, x.start, false);
        let (parts, mut body) = res.into_parts();
        let mut head = Vec::with_capacity(256);
        let status = parts.status;
        head.extend_from_slice(b"HTTP/1.1 ");
        head.extend_from_slice(status.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        head.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"date: ");
        head.extend_from_slice(x.date);
        head.extend_from_slice(b"\r\n");
        let close = x.close || x.drain.is_draining();
        if close {
            head.extend_from_slice(b"connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        // The body is the proxy's own: whole, and ready at once. Reading it to its end
        // records the response.
        let data = body.take_ready();
        let mut slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&head))
            .chain(data.iter().map(|d| IoSlice::new(d)))
            .collect();
        Next::from_reusable(write_all(io, &mut slices).await.is_ok() && !close)
    }
}

/// What a client connection does after a request.
enum Next {
    /// Reads the next request.
    Request,
    Close,
    /// Hands the request, unsent, and the connection to hyper.
    Handoff,
}

impl Next {
    fn from_reusable(reusable: bool) -> Next {
        if reusable { Next::Request } else { Next::Close }
    }
}

/// One request's facts, as the lean loop hands them to `forward_lean`.
struct Exchange<'a> {
    request: &'a PlainRequest,
    /// The `Host` value, for routing (HTTP proxy mode) and the metrics' `authority`.
    authority: &'a str,
    /// The head to send upstream.
    head: &'a [u8],
    start: Instant,
    /// The client asked to close the connection after this response.
    close: bool,
    /// A drain closes it too, if it has started by the time the response head is sent.
    drain: &'a Drain,
    date: &'a [u8],
}

/// Adds `connection: close` to a response head that ends in its blank line.
fn say_close(head: &mut Vec<u8>) {
    head.truncate(head.len().saturating_sub(2));
    head.extend_from_slice(b"connection: close\r\n\r\n");
}

/// Reads more of the next request. Between requests (nothing buffered), a drain ends the
/// connection instead (`Ok(0)`), unless a request has arrived already: that one is served,
/// and its response says the connection closes.
async fn read_request(io: &ProxyIo, buf: &mut BytesMut, drain: &Drain) -> io::Result<usize> {
    let between = buf.is_empty();
    loop {
        match io.try_read_buf(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            read => return read,
        }
        // Nothing had arrived when the read above looked.
        if between && drain.is_draining() {
            return Ok(0);
        }
        std::future::poll_fn(|cx| {
            if between && drain.is_draining() {
                return Poll::Ready(Ok(()));
            }
            io.poll_read_ready(cx)
        })
        .await?;
    }
}

/// Writes the client's head, then the body from the upstream connection, framed as the
/// head said. Returns the `grpc-status` of the trailers, if any came.
async fn relay_body(
    io: &ProxyIo,
    conn: &mut H1Conn,
    response: &FinalResponse,
    head: &[u8],
) -> Result<Option<u32>, RelayError> {
    match response.framing {
        Framing::Empty => {
            let mut slices = [IoSlice::new(head)];
            write_all(io, &mut slices)
                .await
                .map_err(|_| RelayError::Client)?;
            Ok(None)
        }
        Framing::Length(n) => {
            // The common case: the whole body arrived with the head and leaves with it.
            let first = n.min(conn.read_buf.len() as u64) as usize;
            let mut slices = [IoSlice::new(head), IoSlice::new(&conn.read_buf[..first])];
            write_all(io, &mut slices)
                .await
                .map_err(|_| RelayError::Client)?;
            conn.read_buf.advance(first);
            let mut remaining = n - first as u64;
            while remaining > 0 {
                read_upstream(conn).await?;
                let k = remaining.min(conn.read_buf.len() as u64) as usize;
                let mut slices = [IoSlice::new(&conn.read_buf[..k])];
                write_all(io, &mut slices)
                    .await
                    .map_err(|_| RelayError::Client)?;
                conn.read_buf.advance(k);
                remaining -= k as u64;
            }
            Ok(None)
        }
        Framing::Chunked | Framing::Eof => relay_chunked(io, conn, response, head).await,
    }
}

/// A body of unknown length, or a chunked one: decoded, and chunked again for the client.
async fn relay_chunked(
    io: &ProxyIo,
    conn: &mut H1Conn,
    response: &FinalResponse,
    head: &[u8],
) -> Result<Option<u32>, RelayError> {
    let mut decoder = Decoder::new(response.framing);
    let mut pending: Vec<Bytes> = vec![Bytes::copy_from_slice(head)];
    let mut size_line = String::new();
    let mut grpc_status = None;
    loop {
        let decoded = decoder
            .decode(&mut conn.read_buf, conn.max_head)
            .map_err(|_| RelayError::Upstream)?;
        match decoded {
            Decoded::Data(data) => {
                h1::chunk_size_line(data.len(), &mut size_line);
                pending.push(Bytes::copy_from_slice(size_line.as_bytes()));
                pending.push(data);
                pending.push(Bytes::from_static(b"\r\n"));
            }
            Decoded::Trailers(trailers) => {
                grpc_status = super::super::body::grpc_status(&trailers);
                let mut end = b"0\r\n".to_vec();
                for (name, value) in &trailers {
                    if h1::is_allowed_trailer(name, &response.trailer_names) {
                        end.extend_from_slice(name.as_str().as_bytes());
                        end.extend_from_slice(b": ");
                        end.extend_from_slice(value.as_bytes());
                        end.extend_from_slice(b"\r\n");
                    }
                }
                end.extend_from_slice(b"\r\n");
                pending.push(Bytes::from(end));
                break;
            }
            Decoded::End => {
                pending.push(Bytes::from_static(b"0\r\n\r\n"));
                break;
            }
            Decoded::NeedMore => {
                flush(io, &mut pending).await?;
                match read_upstream(conn).await {
                    Ok(()) => {}
                    // A body without a length ends when the upstream closes.
                    Err(RelayError::Upstream) if decoder == Decoder::Eof => {
                        pending.push(Bytes::from_static(b"0\r\n\r\n"));
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    flush(io, &mut pending).await?;
    Ok(grpc_status)
}

async fn flush(io: &ProxyIo, pending: &mut Vec<Bytes>) -> Result<(), RelayError> {
    let mut slices: Vec<IoSlice<'_>> = pending.iter().map(|b| IoSlice::new(b)).collect();
    let written = write_all(io, &mut slices).await;
    drop(slices);
    pending.clear();
    written.map_err(|_| RelayError::Client)
}

/// Reads more of the response; an end of stream or an error is the upstream's failure.
async fn read_upstream(conn: &mut H1Conn) -> Result<(), RelayError> {
    h1::reserve(&mut conn.read_buf);
    match conn.io.read_buf(&mut conn.read_buf).await {
        Ok(0) | Err(_) => Err(RelayError::Upstream),
        Ok(_) => Ok(()),
    }
}

/// Writes every slice, waiting for the socket when it is full.
async fn write_all(io: &ProxyIo, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match io.try_write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable().await?,
            Err(e) => return Err(e),
        }
    }
    // What comes next may be a wait on the upstream: nothing may stay behind meanwhile.
    io.flushed().await
}
