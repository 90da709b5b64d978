//! A lean HTTP/1.1 client for upstream connections.
//!
//! The downstream connection's task drives its upstream connection directly: the request
//! is written, the response head parsed and the body decoded in the same task, with no
//! channel or second task per connection. A connection goes back to its downstream
//! connection (or the pool) when a response body completes on a reusable connection.
//!
//! hyper's client costs about a third of the proxy's user-space instructions per request;
//! this path does the same work in about half of that.

mod body;
mod decode;
mod encode;
#[cfg(test)]
mod fuzz;
mod head;
#[cfg(test)]
mod tests;

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{Method, Request, StatusCode};
use hyper::body::{Body, Frame, Incoming};
use tokio::io::AsyncReadExt;

pub use super::pace::{BodyPace, MIN_PROGRESS};
pub use body::H1Body;
pub use decode::{Decoded, Decoder, Framing, Head, parse_head};
pub use encode::chunk_size_line;
use encode::{ReqFraming, encode_head, encode_trailers};
pub use head::{
    FinalResponse, PlainRequest, RequestHead, ResponseContext, is_allowed_trailer, parse_request,
};

use super::h2::H2Body;
use crate::connect::Connection;
use crate::io::ProxyIo;
use crate::metrics::Tls;
use crate::target::Logical;

/// Reads are at least this large, so a typical response arrives in one read.
const READ_CHUNK: usize = 4 * 1024;

/// Why an upstream HTTP/1 exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// The response head is larger than the header limit.
    #[error("upstream response headers are too large")]
    HeadTooLarge,
    /// The response is not valid HTTP/1.
    #[error("malformed upstream response: {0}")]
    Malformed(&'static str),
    /// The upstream closed the connection before a response.
    #[error("upstream closed the connection before responding")]
    Closed,
    /// The upstream closed the connection before the body's end.
    #[error("upstream closed the connection before the end of the response body")]
    Truncated,
    /// A socket error.
    #[error("upstream connection: {0}")]
    Io(io::Error),
    /// The client's request body was malformed, or the client went away mid-body.
    #[error("reading the request body: {0}")]
    RequestBody(String),
    /// The client sent its request body too slowly (see `pace`).
    #[error(
        "request body too slow: less than {MIN_PROGRESS} bytes in {}ms",
        .0.as_millis()
    )]
    RequestBodyTimeout(Duration),
}

impl H1Error {
    /// Whether the client, not the upstream, caused the failure.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            H1Error::RequestBody(_) | H1Error::RequestBodyTimeout(_)
        )
    }
}

impl From<io::Error> for H1Error {
    fn from(e: io::Error) -> Self {
        H1Error::Io(e)
    }
}

/// Where a finished connection goes: back to the downstream connection that used it.
pub trait Checkin: Send + Sync {
    fn checkin(&self, endpoint: SocketAddr, conn: Box<H1Conn>);
}

/// An upstream HTTP/1.1 connection with its buffers.
#[derive(Debug)]
pub struct H1Conn {
    pub(in crate::http) io: ProxyIo,
    /// Bytes read and not yet consumed: the rest of a response, or nothing when idle.
    pub(in crate::http) read_buf: BytesMut,
    peer: SocketAddr,
    tls: Tls,
    pub(in crate::http) max_head: usize,
}

/// The result of sending a request.
pub enum Outcome {
    /// A response whose body streams from the connection.
    Response(Head, H1Body),
    /// `101 Switching Protocols`, or a successful `CONNECT`: the connection is now a tunnel.
    Upgrade(Head, Box<H1Conn>),
}

/// Why `send` gave up.
pub enum SendError {
    /// The connection was stale (closed before answering) and the request has no body, so
    /// it can be sent again on another connection.
    Stale,
    Failed(H1Error),
}

/// A request encoded for HTTP/1, ready to send (and, without a body, to send again).
///
/// Encoding first lets the request's header map go at once: its values share hyper's read
/// buffer, which hyper would otherwise have to reallocate for the next read.
pub struct Prepared {
    head: Vec<u8>,
    framing: ReqFraming,
    head_request: bool,
    connect: bool,
    body: RequestBody,
    /// See `pace`.
    body_timeout: Duration,
}

impl Prepared {
    /// Whether the request can be sent again: it has no body.
    pub fn resendable(&self) -> bool {
        matches!(self.framing, ReqFraming::None)
    }

    pub fn new(req: Request<Incoming>, host: &Logical, body_timeout: Duration) -> Self {
        Self::with_body(req, host, body_timeout, RequestBody::Hyper)
    }

    /// A request whose body was read whole (to retry it): sent, and sent again, with its
    /// head as one write. The request has its `Content-Length`.
    pub fn buffered(req: Request<Bytes>, host: &Logical, body_timeout: Duration) -> Self {
        let mut head = Vec::with_capacity(256 + req.body().len());
        encode_head(&req, host, ReqFraming::Length, &mut head);
        head.extend_from_slice(req.body());
        Prepared {
            head,
            framing: ReqFraming::None,
            head_request: req.method() == Method::HEAD,
            connect: false,
            body: RequestBody::Done,
            body_timeout,
        }
    }

    /// A request that came over HTTP/2 (an `l5d-orig-proto` downgrade).
    pub fn from_h2(req: Request<H2Body>, host: &Logical, body_timeout: Duration) -> Self {
        Self::with_body(req, host, body_timeout, RequestBody::H2)
    }

    fn with_body<B: Body>(
        req: Request<B>,
        host: &Logical,
        body_timeout: Duration,
        wrap: impl FnOnce(B) -> RequestBody,
    ) -> Self {
        let framing = if req.body().is_end_stream() {
            ReqFraming::None
        } else if req.headers().contains_key(CONTENT_LENGTH)
            && (req.body().size_hint().exact().is_some() || req.version() == http::Version::HTTP_2)
        {
            ReqFraming::Length
        } else {
            ReqFraming::Chunked
        };
        let mut head = Vec::with_capacity(256);
        encode_head(&req, host, framing, &mut head);
        let head_request = req.method() == Method::HEAD;
        let connect = req.method() == Method::CONNECT;
        Prepared {
            head,
            framing,
            head_request,
            connect,
            body: wrap(req.into_body()),
            body_timeout,
        }
    }
}

impl From<H1Error> for SendError {
    fn from(e: H1Error) -> Self {
        SendError::Failed(e)
    }
}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::Failed(H1Error::Io(e))
    }
}

impl H1Conn {
    /// Boxed: the connection moves between the downstream connection, the request future
    /// and the response body, and a pointer moves cheaply.
    pub fn new(conn: Connection, max_head: usize) -> Box<Self> {
        Box::new(H1Conn {
            io: conn.io,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            peer: conn.peer,
            tls: conn.tls,
            max_head,
        })
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The `tls` label the connection was made with (see `Connection::tls`).
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// Whether an idle connection can take a request: the server has sent nothing since
    /// the last response, not even a close.
    pub fn is_usable(&self) -> bool {
        if !self.read_buf.is_empty() {
            return false;
        }
        if !self.io.is_read_ready() {
            return true;
        }
        // Readiness may be left over from the last read; only a read can tell.
        let mut probe = BytesMut::with_capacity(64);
        matches!(self.io.try_read_buf(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    pub fn into_parts(self) -> (ProxyIo, BytesMut) {
        (self.io, self.read_buf)
    }

    /// Sends a prepared request and reads the response head. `reused` says whether the
    /// connection served requests before, which makes a silent close retryable.
    pub async fn send(
        mut self: Box<Self>,
        req: &mut Prepared,
        reused: bool,
    ) -> Result<Outcome, SendError> {
        let head_request = req.head_request;
        let mut early: Option<Head> = None;
        if req.framing == ReqFraming::None {
            match self.write_all(&req.head).await {
                Ok(()) => {}
                Err(_) if reused => return Err(SendError::Stale),
                Err(e) => return Err(e.into()),
            }
        } else {
            let head = Bytes::from(std::mem::take(&mut req.head));
            let pace = BodyPace::new(req.body_timeout);
            early = self
                .send_body(head, &mut req.body, req.framing, head_request, pace)
                .await?;
        }
        // Nothing of a bodiless request was consumed: a close before any response byte
        // means a stale connection, and the request can go on another one.
        let retryable = req.framing == ReqFraming::None && reused;
        let (head, interrupted) = match early {
            Some(head) => (head, true),
            None => loop {
                match parse_head(&mut self.read_buf, head_request, self.max_head)? {
                    Some(h)
                        if h.status.is_informational()
                            && h.status != StatusCode::SWITCHING_PROTOCOLS =>
                    {
                        continue;
                    }
                    Some(h) => break (h, false),
                    None => {}
                }
                reserve(&mut self.read_buf);
                let n = match self.io.read_buf(&mut self.read_buf).await {
                    Ok(n) => n,
                    Err(_) if retryable && self.read_buf.is_empty() => {
                        return Err(SendError::Stale);
                    }
                    Err(e) => return Err(e.into()),
                };
                if n == 0 {
                    return if retryable && self.read_buf.is_empty() {
                        Err(SendError::Stale)
                    } else {
                        Err(H1Error::Closed.into())
                    };
                }
            },
        };
        if head.status == StatusCode::SWITCHING_PROTOCOLS
            || (req.connect && head.status.is_success())
        {
            return Ok(Outcome::Upgrade(head, self));
        }
        let keep_alive = head.keep_alive && !interrupted;
        let decoder = Decoder::new(head.framing);
        Ok(Outcome::Response(
            head,
            H1Body {
                conn: Some(self),
                decoder,
                keep_alive,
                checkin: None,
            },
        ))
    }

    /// The lean path's exchange: sends a bodiless request head and reads the response
    /// head, writing the client's version of it into `out`. The body stays in the
    /// connection's buffer. A close before any response byte on a reused connection is
    /// `Stale`: nothing was consumed, and the request can go again on a new connection.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        reused: bool,
        cx: ResponseContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<FinalResponse, SendError> {
        match self.write_all(request).await {
            Ok(()) => {}
            Err(_) if reused => return Err(SendError::Stale),
            Err(e) => return Err(e.into()),
        }
        loop {
            match head::parse_response(&self.read_buf, self.max_head, cx, out)? {
                head::ResponseHead::Final(response) => {
                    self.read_buf.advance(response.len);
                    return Ok(response);
                }
                head::ResponseHead::Interim(len) => {
                    self.read_buf.advance(len);
                    continue;
                }
                head::ResponseHead::Partial => {}
            }
            reserve(&mut self.read_buf);
            match self.io.read_buf(&mut self.read_buf).await {
                Ok(0) | Err(_) if reused && self.read_buf.is_empty() => {
                    return Err(SendError::Stale);
                }
                Ok(0) => return Err(H1Error::Closed.into()),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Streams the request body. Returns a final response the server sent before the body
    /// was complete; interim (1xx) responses are skipped.
    async fn send_body(
        &mut self,
        head: Bytes,
        body: &mut RequestBody,
        framing: ReqFraming,
        head_request: bool,
        mut pace: BodyPace,
    ) -> Result<Option<Head>, SendError> {
        let mut pending: Vec<Bytes> = vec![head];
        let mut ended = false;
        let mut size_line = String::new();
        loop {
            // Take the frames that are already here, so a small body leaves with the head.
            while !ended {
                let polled = std::future::poll_fn(|cx| Poll::Ready(body.poll_frame(cx))).await;
                match polled {
                    Poll::Ready(frame) => {
                        pace.arrived(data_len(&frame));
                        ended = push_frame(frame, framing, &mut pending, &mut size_line)?
                    }
                    Poll::Pending => break,
                }
            }
            if let Some(head) = self.flush(&mut pending, head_request).await? {
                return Ok(Some(head));
            }
            if ended {
                return Ok(None);
            }
            let waiting = tokio::time::Instant::now();
            tokio::select! {
                biased;
                frame = std::future::poll_fn(|cx| body.poll_frame(cx)) => {
                    pace.waited(waiting.elapsed());
                    pace.arrived(data_len(&frame));
                    ended = push_frame(frame, framing, &mut pending, &mut size_line)?;
                }
                r = self.io.readable() => {
                    pace.waited(waiting.elapsed());
                    r?;
                    if let Some(head) = self.read_interim(head_request).await? {
                        return Ok(Some(head));
                    }
                }
                () = tokio::time::sleep(pace.left()), if !pace.timeout().is_zero() => {
                    return Err(H1Error::RequestBodyTimeout(pace.timeout()).into());
                }
            }
        }
    }

    /// Writes `pending` out, watching for a response that arrives meanwhile.
    async fn flush(
        &mut self,
        pending: &mut Vec<Bytes>,
        head_request: bool,
    ) -> Result<Option<Head>, SendError> {
        {
            let mut iov: Vec<IoSlice<'_>> = pending.iter().map(|b| IoSlice::new(b)).collect();
            let mut slices = &mut iov[..];
            while !slices.is_empty() {
                match self.io.try_write_vectored(slices) {
                    Ok(0) => return Err(H1Error::Io(io::ErrorKind::WriteZero.into()).into()),
                    Ok(n) => IoSlice::advance_slices(&mut slices, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let readable = tokio::select! {
                            r = self.io.writable() => { r?; false }
                            r = self.io.readable() => { r?; true }
                        };
                        if readable {
                            let found = read_interim_into(
                                &self.io,
                                &mut self.read_buf,
                                head_request,
                                self.max_head,
                            )?;
                            if found.is_some() {
                                return Ok(found);
                            }
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // Ciphertext still waiting (TLS) goes out while the next wait, on the body or for
        // readability, runs.
        pending.clear();
        Ok(None)
    }

    /// Reads what the server sent while the request was still being written.
    async fn read_interim(&mut self, head_request: bool) -> Result<Option<Head>, SendError> {
        read_interim_into(&self.io, &mut self.read_buf, head_request, self.max_head)
    }

    async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.io.try_write_vectored(&[IoSlice::new(buf)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.writable().await?,
                Err(e) => return Err(e),
            }
        }
        // The response is awaited next: the request must be on its way, all of it.
        self.io.flushed().await
    }
}

/// Makes room for a read. Only when little room is left: the buffer's memory is shared
/// with frozen slices of earlier responses, and asking for more each time would allocate.
pub(in crate::http) fn reserve(buf: &mut BytesMut) {
    if buf.capacity() - buf.len() < READ_CHUNK / 8 {
        buf.reserve(READ_CHUNK);
    }
}

/// Reads what is available; returns a final response head if one arrived, consuming
/// interim (1xx) responses.
fn read_interim_into(
    io: &ProxyIo,
    read_buf: &mut BytesMut,
    head_request: bool,
    max_head: usize,
) -> Result<Option<Head>, SendError> {
    reserve(read_buf);
    match io.try_read_buf(read_buf) {
        Ok(0) => return Err(H1Error::Closed.into()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    loop {
        match parse_head(read_buf, head_request, max_head)? {
            Some(h)
                if h.status.is_informational() && h.status != StatusCode::SWITCHING_PROTOCOLS => {}
            Some(h) => return Ok(Some(h)),
            None => return Ok(None),
        }
    }
}

/// The data bytes in a polled request body frame.
fn data_len(frame: &Option<Result<Frame<Bytes>, String>>) -> usize {
    match frame {
        Some(Ok(f)) => f.data_ref().map_or(0, Bytes::len),
        _ => 0,
    }
}

/// Queues one request body frame for writing. Returns whether the body has ended.
fn push_frame(
    frame: Option<Result<Frame<Bytes>, String>>,
    framing: ReqFraming,
    pending: &mut Vec<Bytes>,
    size_line: &mut String,
) -> Result<bool, SendError> {
    match frame {
        None => {
            if framing == ReqFraming::Chunked {
                pending.push(Bytes::from_static(b"0\r\n\r\n"));
            }
            Ok(true)
        }
        Some(Err(why)) => Err(H1Error::RequestBody(why).into()),
        Some(Ok(frame)) => match frame.into_data() {
            Ok(data) if data.is_empty() => Ok(false),
            Ok(data) => {
                if framing == ReqFraming::Chunked {
                    chunk_size_line(data.len(), size_line);
                    pending.push(Bytes::copy_from_slice(size_line.as_bytes()));
                    pending.push(data);
                    pending.push(Bytes::from_static(b"\r\n"));
                } else {
                    pending.push(data);
                }
                Ok(false)
            }
            Err(frame) => match frame.into_trailers() {
                // Trailers end the body; a length-delimited body cannot carry them.
                Ok(trailers) if framing == ReqFraming::Chunked => {
                    let mut out = Vec::new();
                    encode_trailers(&trailers, &mut out);
                    pending.push(Bytes::from(out));
                    Ok(true)
                }
                _ => Ok(false),
            },
        },
    }
}

/// A request body as the client sent it: hyper's HTTP/1, or an HTTP/2 stream.
#[derive(Debug)]
pub enum RequestBody {
    Hyper(Incoming),
    H2(H2Body),
    /// Sent with the head already.
    Done,
}

impl RequestBody {
    /// The next frame; an error says what failed, with its cause.
    fn poll_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, String>>> {
        fn why(e: &dyn std::error::Error) -> String {
            // hyper's error says where; its cause says what.
            match e.source() {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }
        }
        match self {
            RequestBody::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| why(&e)))),
            RequestBody::H2(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| why(&e)))),
            RequestBody::Done => Poll::Ready(None),
        }
    }
}
