//! Writing requests to an upstream HTTP/1 connection.

use std::fmt::{Display, Write as _};
use std::io::Write as _;

use http::header::HOST;
use http::{Method, Request};

/// How the request body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqFraming {
    /// No body.
    None,
    /// The request's own `Content-Length`, which is forwarded.
    Length,
    /// Unknown length: chunked encoding.
    Chunked,
}

/// Appends the request line and headers to `out`. Hop-by-hop headers were already removed.
pub fn encode_head<B>(
    req: &Request<B>,
    host: &impl Display,
    framing: ReqFraming,
    out: &mut Vec<u8>,
) {
    let method = req.method();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    if method == Method::CONNECT {
        match req.uri().authority() {
            Some(a) => out.extend_from_slice(a.as_str().as_bytes()),
            None => {
                let _ = write!(out, "{host}");
            }
        }
    } else {
        let target = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        out.extend_from_slice(target.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !req.headers().contains_key(HOST) {
        let _ = write!(out, "host: {host}\r\n");
    }
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if framing == ReqFraming::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The size line that precedes a chunk of `len` bytes.
pub fn chunk_size_line(len: usize, out: &mut String) {
    out.clear();
    let _ = write!(out, "{len:x}\r\n");
}

/// The end of a chunked body with trailer fields.
pub fn encode_trailers(trailers: &http::HeaderMap, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
