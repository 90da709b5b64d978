//! Raw HTTP/1 heads for the lean server path (`http::lean`): a request head is checked and
//! rewritten for the upstream, and a response head for the client, straight from the
//! bytes, without building a header map for either.
//!
//! Only plain requests qualify: HTTP/1.1, origin-form, no body, no upgrade, no
//! `Expect`, and no `Connection` option other than `keep-alive` or `close`. Anything
//! else is left in the buffer for hyper, so every unusual case keeps hyper's behaviour.

use std::fmt::Display;
use std::io::Write as _;
use std::mem::MaybeUninit;
use std::ops::Range;

use http::header::HeaderName;
use http::{StatusCode, Version};

use super::H1Error;
use super::decode::{Framing, FramingScan};

#[cfg(test)]
mod tests;

/// The most headers a request or response may have on this path; more go to hyper (or
/// are a 502 from an upstream), as hyper's limit is the same.
use crate::http::MAX_HEADERS;
use crate::http::headers::{Name, classify};

/// A plain request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainRequest {
    /// The length of the head at the start of the buffer.
    pub len: usize,
    /// Where the `Host` value is in the buffer, if the request has one.
    pub host: Option<Range<usize>>,
    /// A `HEAD` request: the response has no body whatever its headers say.
    pub head: bool,
    /// The client asked to close the connection after this response.
    pub close: bool,
    /// The client accepts trailer fields (`TE: trailers`).
    pub trailers: bool,
}

/// What the start of a client's buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestHead {
    Plain(PlainRequest),
    /// The head is not complete yet.
    Partial,
    /// Not a plain request (or not a valid one): hyper takes it from here.
    Other,
}

/// Parses the request at the start of `buf` and, for a plain one, writes the head to
/// send upstream into `out`: origin-form, hop-by-hop fields removed, and `host: {host}`
/// when the request has no `Host` (without `host`, such a request is not plain).
pub fn parse_request(
    buf: &[u8],
    max: usize,
    host: Option<&dyn Display>,
    out: &mut Vec<u8>,
) -> RequestHead {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) if len <= max => len,
        Ok(httparse::Status::Partial) if buf.len() < max => return RequestHead::Partial,
        _ => return RequestHead::Other,
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return RequestHead::Other;
    };
    if method == "CONNECT" || !is_plain_origin_form(path.as_bytes()) {
        return RequestHead::Other;
    }
    let base = buf.as_ptr() as usize;
    let mut plain = PlainRequest {
        len,
        host: None,
        head: method == "HEAD",
        close: false,
        trailers: false,
    };
    // One pass: checked and written together, and abandoned for hyper on anything unusual.
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in req.headers.iter() {
        match classify(h.name.as_bytes()) {
            Name::TransferEncoding | Name::Upgrade | Name::Expect => return RequestHead::Other,
            Name::ContentLength if h.value.trim_ascii() != b"0" => return RequestHead::Other,
            Name::Host => {
                // Two of them, or one that is not an authority: hyper's path refuses it.
                if plain.host.is_some() || !crate::http::validate::is_valid_host(h.value) {
                    return RequestHead::Other;
                }
                let start = h.value.as_ptr() as usize - base;
                plain.host = Some(start..start + h.value.len());
            }
            Name::Connection => {
                for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    if token.eq_ignore_ascii_case(b"close") {
                        plain.close = true;
                    } else if !token.is_empty() && !token.eq_ignore_ascii_case(b"keep-alive") {
                        // It names another hop-by-hop field to remove: hyper's path does it.
                        return RequestHead::Other;
                    }
                }
                continue;
            }
            Name::KeepAlive | Name::ProxyConnection => continue,
            Name::Te => {
                plain.trailers = h.value.trim_ascii().eq_ignore_ascii_case(b"trailers");
                if !plain.trailers {
                    continue;
                }
            }
            _ => {}
        }
        put_field(out, h.name.as_bytes(), h.value);
    }
    if plain.host.is_none() {
        let Some(host) = host else {
            return RequestHead::Other;
        };
        let _ = write!(out, "host: {host}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    RequestHead::Plain(plain)
}

/// Origin-form made only of bytes that every parser on the way accepts as they are (the
/// RFC 3986 path and query characters and `%`); anything else, such as a fragment or raw
/// UTF-8, goes through hyper, which normalizes it.
fn is_plain_origin_form(path: &[u8]) -> bool {
    path.first() == Some(&b'/')
        && path.len() < usize::from(u16::MAX) - 1
        && path
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What the client's request means for the response head.
#[derive(Clone, Copy, Debug)]
pub struct ResponseContext<'a> {
    /// The request was `HEAD`.
    pub head_request: bool,
    /// The client accepts trailer fields.
    pub trailers: bool,
    /// The client connection closes after this response.
    pub close: bool,
    /// The current `Date` value, for a response that has none.
    pub date: &'a [u8],
}

/// A response head, parsed from the upstream's bytes.
#[derive(Debug)]
pub enum ResponseHead {
    /// The head is not complete yet.
    Partial,
    /// An interim (1xx) response of this length, which the proxy drops.
    Interim(usize),
    Final(FinalResponse),
}

/// A final response whose head for the client is in the output buffer.
#[derive(Debug)]
pub struct FinalResponse {
    /// The head's length in the upstream's buffer.
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// Whether the upstream connection can carry another request.
    pub keep_alive: bool,
    /// The body goes to the client chunked (it has no length, or came chunked).
    pub chunked: bool,
    pub grpc_status: Option<u32>,
    /// Trailer fields the client may get, as the response's `Trailer` declared them.
    pub trailer_names: Vec<HeaderName>,
}

/// Parses the response head at the start of `buf` and writes the client's head into
/// `out`: an HTTP/1.1 status line, the upstream's fields without hop-by-hop ones, the
/// framing the client needs, `date` when missing, and `connection: close` when closing.
pub fn parse_response(
    buf: &[u8],
    max: usize,
    cx: ResponseContext<'_>,
    out: &mut Vec<u8>,
) -> Result<ResponseHead, H1Error> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) if len <= max => len,
        Ok(httparse::Status::Partial) if buf.len() < max => return Ok(ResponseHead::Partial),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(H1Error::HeadTooLarge),
        Err(_) => return Err(H1Error::Malformed("invalid response head")),
    };
    let code = res.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| H1Error::Malformed("invalid status code"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(H1Error::Malformed("switching protocols without an upgrade"));
    }
    if status.is_informational() {
        return Ok(ResponseHead::Interim(len));
    }
    let version = if res.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut scan = FramingScan::new(version);
    let mut named_by_connection = false;
    let mut has_date = false;
    let mut has_length = false;
    let mut response = FinalResponse {
        len,
        status: code,
        framing: Framing::Eof,
        keep_alive: false,
        chunked: false,
        grpc_status: None,
        trailer_names: Vec::new(),
    };
    out.clear();
    if code == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        let _ = write!(
            out,
            "HTTP/1.1 {code} {}\r\n",
            status.canonical_reason().unwrap_or("<none>")
        );
    }
    let status_line = out.len();
    // One pass that writes as it checks; the rare heads it gets wrong are written again.
    for h in res.headers.iter() {
        match classify(h.name.as_bytes()) {
            Name::ContentLength => {
                scan.content_length(h.value)?;
                has_length = true;
            }
            Name::TransferEncoding => {
                scan.transfer_encoding(h.value);
                continue;
            }
            Name::Connection => {
                scan.connection(h.value);
                named_by_connection |= h.value.split(|b| *b == b',').any(|t| {
                    let t = t.trim_ascii();
                    !t.is_empty()
                        && !t.eq_ignore_ascii_case(b"close")
                        && !t.eq_ignore_ascii_case(b"keep-alive")
                });
                continue;
            }
            Name::KeepAlive | Name::ProxyConnection | Name::Upgrade => continue,
            Name::Te if !h.value.trim_ascii().eq_ignore_ascii_case(b"trailers") => continue,
            Name::Date => has_date = true,
            Name::GrpcStatus if response.grpc_status.is_none() => {
                response.grpc_status = crate::http::headers::grpc_code(h.value);
            }
            Name::Trailer if cx.trailers => {
                let names = h.value.split(|b| *b == b',');
                response
                    .trailer_names
                    .extend(names.filter_map(|n| HeaderName::from_bytes(n.trim_ascii()).ok()));
            }
            _ => {}
        }
        put_field(out, h.name.as_bytes(), h.value);
    }
    let (framing, keep_alive) = scan.finish(code, cx.head_request);
    response.framing = framing;
    response.keep_alive = keep_alive;
    // As hyper's server: a body of unknown length goes chunked, where a body may be.
    let may_have_body = !cx.head_request && code != 204 && code != 304;
    response.chunked = may_have_body && matches!(framing, Framing::Chunked | Framing::Eof);
    if named_by_connection || (response.chunked && has_length) {
        // Fields named by `Connection` are hop-by-hop too, and a chunked body's length is
        // the chunks'.
        out.truncate(status_line);
        for h in res.headers.iter() {
            let name = h.name.as_bytes();
            let forward = match classify(name) {
                Name::Connection
                | Name::KeepAlive
                | Name::ProxyConnection
                | Name::TransferEncoding
                | Name::Upgrade => false,
                Name::Te => h.value.trim_ascii().eq_ignore_ascii_case(b"trailers"),
                Name::ContentLength => !response.chunked,
                _ => !is_named_by_connection(&res, name),
            };
            if forward {
                put_field(out, name, h.value);
            }
        }
    }
    if response.chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    } else if framing == Framing::Empty && !has_length && may_have_body {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(cx.date);
        out.extend_from_slice(b"\r\n");
    }
    if cx.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(ResponseHead::Final(response))
}

/// Whether a `Connection` field of the response lists `name`, making it hop-by-hop.
fn is_named_by_connection(res: &httparse::Response<'_, '_>, name: &[u8]) -> bool {
    res.headers
        .iter()
        .filter(|h| classify(h.name.as_bytes()) == Name::Connection)
        .flat_map(|h| h.value.split(|b| *b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
}

/// Trailer fields a client may receive (hyper's rule): declared in the response's
/// `Trailer` field, and not one that must never be a trailer.
pub fn is_allowed_trailer(name: &HeaderName, declared: &[HeaderName]) -> bool {
    use http::header::*;
    declared.contains(name)
        && !matches!(
            *name,
            AUTHORIZATION
                | CACHE_CONTROL
                | CONTENT_ENCODING
                | CONTENT_LENGTH
                | CONTENT_RANGE
                | CONTENT_TYPE
                | HOST
                | MAX_FORWARDS
                | SET_COOKIE
                | TRAILER
                | TRANSFER_ENCODING
                | TE
        )
}
