//! Reads and checks the first request head of an HTTP/1 connection before the HTTP server
//! takes over, so a malformed request gets an error response that names the problem.
//!
//! Later requests on a keep-alive connection are parsed by hyper alone: it answers a
//! malformed one with a bare 400 and closes the connection, and it strips `Content-Length`
//! from a request that also has `Transfer-Encoding` and closes the connection after it.

use std::time::Duration;

use bytes::BytesMut;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most headers a request may have; as hyper's default.
pub const MAX_HEADERS: usize = 100;

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
    let mut has_te = false;
    let mut content_length: Option<&[u8]> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
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
