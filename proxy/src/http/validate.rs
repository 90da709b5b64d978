//! Request checks: the first request head of an HTTP/1 connection, read and checked before
//! the HTTP server takes over, so a malformed request gets an error response that names
//! the problem; and the request target and `Host` rules every path applies.
//!
//! Later requests on a keep-alive connection are parsed by the lean path or by hyper:
//! hyper answers a malformed one with a bare 400 and closes the connection, and it strips
//! `Content-Length` from a request that also has `Transfer-Encoding` and closes the
//! connection after it. The target and `Host` rules hold on every path: the first head is
//! checked here, the lean path keeps only requests [`is_valid_host`] accepts (others go
//! to hyper), and hyper's path and HTTP/2 call [`request_target`].

use std::time::Duration;

use bytes::BytesMut;
use http::header::{HOST, HeaderValue};
use http::{Request, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::http::MAX_HEADERS;

/// Why a first request head was rejected.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Larger than the header limit, or too many headers.
    #[error("request headers exceed the limit of {0} bytes or 100 headers")]
    TooLarge(usize),
    /// Not valid HTTP/1 syntax.
    #[error("malformed HTTP request: {0}")]
    Malformed(&'static str),
    /// Both framing headers: a request smuggling attempt or a broken client.
    #[error("request has both Content-Length and Transfer-Encoding")]
    ConflictingLength,
    /// Content-Length values that are not one number.
    #[error("request has an invalid Content-Length")]
    BadContentLength,
    /// More than one `Host` field (RFC 9112 section 3.2): which one names the target?
    #[error("request has more than one Host header field")]
    DuplicateHost,
    /// A `Host` that is not `host[:port]`, such as one with userinfo (`user@host`).
    #[error("request has an invalid Host: not host[:port]")]
    InvalidHost,
    /// An absolute-form or authority-form target with userinfo, which HTTP forbids
    /// (RFC 9110 section 4.2.4).
    #[error("request target has userinfo")]
    TargetUserinfo,
    /// The head did not arrive within the header read timeout.
    #[error("request headers not received within {}ms", .0.as_millis())]
    Timeout(Duration),
    /// The client closed the connection or failed mid-head.
    #[error("client closed the connection before sending a complete request head")]
    Closed,
}

impl HeadError {
    pub fn status(&self) -> StatusCode {
        match self {
            HeadError::TooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HeadError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads until `buf` holds a complete request head, then validates it. `buf` keeps every
/// byte read, to be replayed to the HTTP server. The head is due at `deadline`, which the
/// header read timeout `timeout` set when the connection opened.
pub async fn read_first_head<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    max: usize,
    (deadline, timeout): (tokio::time::Instant, Duration),
) -> Result<(), HeadError> {
    loop {
        match check(buf, max)? {
            true => return Ok(()),
            false => {
                buf.reserve(4096);
                match tokio::time::timeout_at(deadline, io.read_buf(buf)).await {
                    Err(_) => return Err(HeadError::Timeout(timeout)),
                    Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadError::Closed),
                    Ok(Ok(_)) => {}
                }
            }
        }
    }
}

/// Returns whether the head is complete and valid, `false` if more bytes are needed.
pub fn check(buf: &[u8], max: usize) -> Result<bool, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max => return Err(HeadError::TooLarge(max)),
        Ok(httparse::Status::Partial) => return Ok(false),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge(max)),
        Err(e) => return Err(HeadError::Malformed(parse_error(e))),
    };
    if len > max {
        return Err(HeadError::TooLarge(max));
    }
    if req
        .path
        .and_then(target_authority)
        .is_some_and(|a| a.contains('@'))
    {
        return Err(HeadError::TargetUserinfo);
    }
    let mut has_te = false;
    let mut has_host = false;
    let mut content_length: Option<&[u8]> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") {
            if has_host {
                return Err(HeadError::DuplicateHost);
            }
            if !is_valid_host(h.value) {
                return Err(HeadError::InvalidHost);
            }
            has_host = true;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            has_te = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = h.value.trim_ascii();
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                return Err(HeadError::BadContentLength);
            }
            if content_length.is_some_and(|prev| prev != v) {
                return Err(HeadError::BadContentLength);
            }
            content_length = Some(v);
        }
    }
    if has_te && content_length.is_some() {
        return Err(HeadError::ConflictingLength);
    }
    Ok(true)
}

/// Checks a request's target and `Host` for the paths that parse into a header map, and
/// makes the target's authority the `Host` when they differ: a proxy must replace `Host`
/// by an absolute-form target's authority rather than forward it (RFC 9112 section 3.2.2),
/// and for HTTP/2 `:authority` wins the same way.
pub fn request_target<B>(req: &mut Request<B>) -> Result<(), HeadError> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(HeadError::DuplicateHost);
    }
    if host.is_some_and(|h| !is_valid_host(h.as_bytes())) {
        return Err(HeadError::InvalidHost);
    }
    let Some(authority) = req.uri().authority() else {
        return Ok(());
    };
    if authority.as_str().contains('@') {
        return Err(HeadError::TargetUserinfo);
    }
    if host.is_some_and(|h| h.as_bytes() != authority.as_str().as_bytes()) {
        let value =
            HeaderValue::from_str(authority.as_str()).map_err(|_| HeadError::InvalidHost)?;
        req.headers_mut().insert(HOST, value);
    }
    Ok(())
}

/// Whether a `Host` value is `host[:port]` as RFC 3986 spells an authority without
/// userinfo: a registered name (unreserved characters, percent-encodings, sub-delimiters),
/// an IPv4 address or a bracketed IP literal, then an optional port. Empty is valid: it is
/// what a client sends for a target without an authority.
pub fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|b| *b == b']') {
            Some(end) => {
                let literal = &value[1..end];
                let ok = !literal.is_empty()
                    && literal.iter().all(|b| is_reg_name_char(*b) || *b == b':');
                if !ok {
                    return false;
                }
                (&[][..], &value[end + 1..])
            }
            None => return false,
        },
        _ => match value.iter().position(|b| *b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &[][..]),
        },
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    port_ok && host.iter().all(|b| is_reg_name_char(*b))
}

/// RFC 3986 `unreserved`, `sub-delims` and `%` (of a percent-encoding).
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=".contains(&b)
}

/// The authority of an absolute-form (`http://a/x`) or authority-form (`a:443`) target.
fn target_authority(target: &str) -> Option<&str> {
    if target.starts_with('/') || target == "*" {
        return None;
    }
    match target.split_once("://") {
        Some((_, rest)) => Some(rest.split(['/', '?', '#']).next().unwrap_or(rest)),
        None => Some(target),
    }
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token in the request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_normal_head_and_waits_for_a_partial_one() {
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 8192), Ok(true));
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: a\r\n", 8192), Ok(false));
        assert_eq!(
            check(
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
                8192
            ),
            Ok(true)
        );
    }

    #[test]
    fn rejects_conflicting_framing() {
        let req = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(check(req, 8192), Err(HeadError::ConflictingLength));
        let req = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(check(req, 8192), Err(HeadError::BadContentLength));
        let req = b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(check(req, 8192), Err(HeadError::BadContentLength));
    }

    #[test]
    fn host_is_one_authority_without_userinfo() {
        for ok in [
            &b"a"[..],
            b"",
            b"svc.ns.svc.cluster.local:8080",
            b"10.0.0.1:80",
            b"[::1]:9",
            b"[fe80::1%25eth0]",
            b"xn--bcher-kva.example",
        ] {
            assert!(is_valid_host(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"evil@127.0.0.1:9090"[..],
            b"a b",
            b"a:80:80",
            b"a:http",
            b"[::1",
            b"[]:80",
            b"a/b",
            b"a:123456",
        ] {
            assert!(!is_valid_host(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        let two = b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n";
        assert_eq!(check(two, 8192), Err(HeadError::DuplicateHost));
        let userinfo = b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n";
        assert_eq!(check(userinfo, 8192), Err(HeadError::InvalidHost));
        let target = b"GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(check(target, 8192), Err(HeadError::TargetUserinfo));
        let connect = b"CONNECT u@a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n";
        assert_eq!(check(connect, 8192), Err(HeadError::TargetUserinfo));
    }

    #[test]
    fn the_target_authority_replaces_a_different_host() {
        let mut req = Request::get("http://b.example/x")
            .header(HOST, "evil.example")
            .body(())
            .unwrap();
        assert_eq!(request_target(&mut req), Ok(()));
        assert_eq!(req.headers()[HOST], "b.example");
        let mut req = Request::get("/x")
            .header(HOST, "a")
            .header(HOST, "b")
            .body(())
            .unwrap();
        assert_eq!(request_target(&mut req), Err(HeadError::DuplicateHost));
        let mut req = Request::get("http://u@b.example/").body(()).unwrap();
        assert_eq!(request_target(&mut req), Err(HeadError::TargetUserinfo));
    }

    #[test]
    fn rejects_oversized_and_malformed_heads() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(check(&big, 8192), Err(HeadError::TooLarge(8192)));
        assert!(matches!(
            check(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 8192),
            Err(HeadError::Malformed(_))
        ));
    }
}
