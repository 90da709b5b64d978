//! Protocol detection on a new connection, including server-speaks-first protocols.
//!
//! The client's first bytes decide: an HTTP/1 request line, the HTTP/2 preface (h2c prior
//! knowledge, gRPC), a TLS ClientHello (passed through untouched), or anything else
//! (opaque TCP). A client that stays silent for the server-speaks-first window makes the
//! proxy connect upstream at once; if the server then speaks first (SMTP, MySQL), the
//! connection becomes opaque immediately instead of waiting out the detect timeout. That
//! upstream connection is returned with the result; the server caches it for the client
//! connection in the connect step (`crate::connect::with_preconnected`), so whichever
//! stage serves the connection reuses it without being handed it.
//!
//! When the detect timeout passes (or the buffer fills) before the bytes decide, Linkerd
//! forwards whatever arrived as opaque TCP ("Continuing after timeout"). mesh-proxy does
//! that only for bytes that cannot begin an HTTP/1 request. Bytes that can (a known method,
//! or a prefix of one, then a plausible request line) are a request still arriving: they
//! go to HTTP, where the header read timeout and size limit answer 408 or 431. Otherwise a
//! client dribbling its request line escapes both limits into an opaque connection that
//! holds an upstream connection for as long as it likes.

#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::config::{DetectTimeout, ServerSpeaksFirst};

/// The HTTP/2 connection preface.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The longest HTTP method detection accepts; longer tokens are not HTTP.
const MAX_METHOD: usize = 24;

/// The methods whose start makes undecided bytes an HTTP/1 request still arriving.
const METHODS: &[&[u8]] = &[
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH",
];

/// What the first bytes of a connection are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
    /// A TLS record (the ClientHello of a TLS the proxy does not terminate).
    Tls,
    Opaque,
}

/// Classifies a connection's first bytes, or returns `None` if more are needed.
pub fn classify(buf: &[u8]) -> Option<Protocol> {
    let first = *buf.first()?;
    if H2_PREFACE.starts_with(&buf[..buf.len().min(H2_PREFACE.len())]) {
        return (buf.len() >= H2_PREFACE.len()).then_some(Protocol::Http2);
    }
    if first == 0x16 {
        return Some(Protocol::Tls);
    }
    classify_http1(buf)
}

/// Matches `METHOD SP target SP HTTP/1.x CRLF`, deciding as early as the bytes allow.
fn classify_http1(buf: &[u8]) -> Option<Protocol> {
    let method_len = buf.iter().take_while(|b| is_tchar(**b)).count();
    if method_len > MAX_METHOD {
        return Some(Protocol::Opaque);
    }
    match buf.get(method_len) {
        None => return None,
        Some(b' ') if method_len > 0 => {}
        Some(_) => return Some(Protocol::Opaque),
    }
    let rest = &buf[method_len + 1..];
    let target_len = rest
        .iter()
        .take_while(|b| **b != b' ' && **b > 0x20 && **b != 0x7f)
        .count();
    match rest.get(target_len) {
        None => return None,
        Some(b' ') if target_len > 0 => {}
        Some(_) => return Some(Protocol::Opaque),
    }
    let version = &rest[target_len + 1..];
    const V: &[u8] = b"HTTP/1.";
    let n = version.len().min(V.len());
    if version[..n] != V[..n] {
        return Some(Protocol::Opaque);
    }
    match version.get(V.len()) {
        None => None,
        Some(d) if d.is_ascii_digit() => match version.get(V.len() + 1) {
            None => None,
            Some(b'\r' | b'\n') => Some(Protocol::Http1),
            Some(_) => Some(Protocol::Opaque),
        },
        Some(_) => Some(Protocol::Opaque),
    }
}

/// What undecided bytes become when detection runs out of time or room: HTTP/1 if they
/// can only be the start of a request (see the module docs), opaque otherwise.
fn undecided(buf: &[u8]) -> Protocol {
    let token_end = buf.iter().position(|b| *b == b' ');
    let token = &buf[..token_end.unwrap_or(buf.len())];
    let method = !token.is_empty()
        && METHODS.iter().any(|m| match token_end {
            Some(_) => *m == token,
            None => m.starts_with(token),
        });
    if method && classify_http1(buf).is_none() {
        Protocol::Http1
    } else {
        Protocol::Opaque
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Settings for one detection.
#[derive(Clone, Copy, Debug)]
pub struct DetectSettings {
    pub timeout: DetectTimeout,
    pub server_speaks_first: ServerSpeaksFirst,
    /// Stop reading once this many bytes are buffered without a decision.
    pub max_bytes: usize,
}

/// How detection ended.
#[derive(Debug)]
pub enum Detected {
    Protocol(Protocol),
    /// The client sent nothing before the detect timeout.
    Timeout,
    /// The server sent these bytes before the client sent any.
    ServerFirst(Bytes),
    /// The client closed the connection without sending anything.
    Eof,
}

/// The outcome: what was detected, the client bytes read so far (to be replayed), and the
/// upstream connection if the server-speaks-first check opened one.
#[derive(Debug)]
pub struct Detection<U> {
    pub detected: Detected,
    pub client_bytes: BytesMut,
    pub upstream: Option<U>,
}

/// Reads from `client` until its protocol is known.
///
/// `connect` opens the upstream connection for the server-speaks-first check; pass `None`
/// when the destination is not known yet (HTTP proxy mode) or the check is off.
pub async fn detect<I, U, C, F>(
    client: &mut I,
    settings: DetectSettings,
    connect: Option<C>,
) -> io::Result<Detection<U>>
where
    I: AsyncRead + Unpin,
    U: AsyncRead + Unpin,
    C: FnOnce() -> F,
    F: Future<Output = Option<U>>,
{
    let deadline = Instant::now() + settings.timeout.0;
    let mut buf = BytesMut::with_capacity(1024);
    let mut upstream = None;
    if let (Some(window), Some(connect)) = (settings.server_speaks_first.0, connect) {
        match silent_for(client, &mut buf, window).await? {
            Silence::Spoke => {}
            Silence::Eof => return Ok(done(Detected::Eof, buf, None)),
            Silence::Silent => {
                if let Some(mut up) = connect().await {
                    match race(client, &mut buf, &mut up, deadline).await? {
                        Race::Client => upstream = Some(up),
                        Race::ClientEof => return Ok(done(Detected::Eof, buf, None)),
                        Race::Server(bytes) => {
                            return Ok(done(Detected::ServerFirst(bytes), buf, Some(up)));
                        }
                        Race::ServerClosed => {}
                        Race::Timeout => return Ok(done(Detected::Timeout, buf, Some(up))),
                    }
                }
            }
        }
    }
    loop {
        if let Some(p) = classify(&buf) {
            return Ok(done(Detected::Protocol(p), buf, upstream));
        }
        if buf.len() >= settings.max_bytes {
            // Undecided after this much: a request head over the limit, or not a protocol
            // we can parse.
            return Ok(done(Detected::Protocol(undecided(&buf)), buf, upstream));
        }
        buf.reserve(1024);
        match timeout_at(deadline, client.read_buf(&mut buf)).await {
            Err(_) if buf.is_empty() => return Ok(done(Detected::Timeout, buf, upstream)),
            Err(_) => return Ok(done(Detected::Protocol(undecided(&buf)), buf, upstream)),
            Ok(Ok(0)) if buf.is_empty() => return Ok(done(Detected::Eof, buf, upstream)),
            Ok(Ok(0)) => return Ok(done(Detected::Protocol(Protocol::Opaque), buf, upstream)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

fn done<U>(detected: Detected, buf: BytesMut, upstream: Option<U>) -> Detection<U> {
    Detection {
        detected,
        client_bytes: buf,
        upstream,
    }
}

enum Silence {
    Spoke,
    Silent,
    Eof,
}

async fn silent_for<I: AsyncRead + Unpin>(
    client: &mut I,
    buf: &mut BytesMut,
    window: Duration,
) -> io::Result<Silence> {
    match timeout(window, client.read_buf(buf)).await {
        Err(_) => Ok(Silence::Silent),
        Ok(Ok(0)) => Ok(Silence::Eof),
        Ok(Ok(_)) => Ok(Silence::Spoke),
        Ok(Err(e)) => Err(e),
    }
}

enum Race {
    Client,
    ClientEof,
    Server(Bytes),
    ServerClosed,
    Timeout,
}

/// Waits for whichever side speaks first.
async fn race<I, U>(
    client: &mut I,
    buf: &mut BytesMut,
    upstream: &mut U,
    deadline: Instant,
) -> io::Result<Race>
where
    I: AsyncRead + Unpin,
    U: AsyncRead + Unpin,
{
    let mut server = BytesMut::with_capacity(4096);
    tokio::select! {
        r = client.read_buf(buf) => match r? {
            0 => Ok(Race::ClientEof),
            _ => Ok(Race::Client),
        },
        r = upstream.read_buf(&mut server) => match r {
            Ok(n) if n > 0 => Ok(Race::Server(server.freeze())),
            _ => Ok(Race::ServerClosed),
        },
        _ = sleep_until(deadline) => Ok(Race::Timeout),
    }
}
