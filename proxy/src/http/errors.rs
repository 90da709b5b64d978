//! Failures become responses: the proxy never leaves a request hanging, and says what went
//! wrong in an `l5d-proxy-error` header, as Linkerd does.

use std::time::Duration;

use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use super::body::ProxyBody;
use super::h1::{H1Error, SendError};
use super::validate::HeadError;
use crate::connect::ConnectError;
use crate::inbound::policy::HttpDenied;
use crate::metrics::{ERROR_BAD_REQUEST, ERROR_FORBIDDEN, ERROR_REQUEST_TIMEOUT};

/// The header that carries the proxy's reason for an error response.
pub const L5D_PROXY_ERROR: &str = "l5d-proxy-error";

/// Why the proxy answered a request itself.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No connection to the upstream: refused, unreachable, timed out, or unresolvable.
    #[error("{0}")]
    Connect(ConnectError),
    /// The balancer had no endpoint to offer: none discovered, or all ejected. Answered at
    /// once, never queued.
    #[error("{0}")]
    Unavailable(crate::balance::PickError),
    /// The upstream did not send response headers in time.
    #[error("upstream sent no response within {}ms", .0.as_millis())]
    ResponseTimeout(Duration),
    /// The upstream HTTP/2 connection or stream failed before the response head.
    #[error("upstream connection failed: {0}")]
    UpstreamH2(h2::Error),
    /// The upstream HTTP/1 exchange failed.
    #[error("{0}")]
    UpstreamHttp1(H1Error),
    /// The request cannot be proxied as sent.
    #[error("{0}")]
    BadRequest(&'static str),
    /// The request's target or `Host` is ambiguous or invalid (see `validate`).
    #[error("{0}")]
    Request(HeadError),
    /// The client's request body was malformed or too slow: the client's error, not the
    /// upstream's. The rest of the body is not read, so the connection closes.
    #[error("{0}")]
    RequestBody(H1Error),
    /// The client's HTTP/2 request body kept the proxy waiting too long before any
    /// response (see `pace`). Only the stream ends; the connection stays.
    #[error(
        "request body too slow: less than {} bytes in {}ms",
        super::pace::MIN_PROGRESS,
        .0.as_millis()
    )]
    RequestBodyStalled(Duration),
    /// Inbound authorization policy refused the request (403, or 404 when it matches no
    /// route of the policy).
    #[error("{0}")]
    Forbidden(HttpDenied),
}

/// A stale connection only ever comes back from a reused connection, and the resend rule
/// (`service::ProxyService::on_h1_conn`) then sends on a new one; should a new one report it,
/// the upstream closed before responding.
impl From<SendError> for ProxyError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Stale => ProxyError::UpstreamHttp1(H1Error::Closed),
            SendError::Failed(e) => e.into(),
        }
    }
}

impl From<H1Error> for ProxyError {
    fn from(e: H1Error) -> Self {
        if e.is_client_error() {
            ProxyError::RequestBody(e)
        } else {
            ProxyError::UpstreamHttp1(e)
        }
    }
}

impl ProxyError {
    /// Whether the upstream failed (rather than the client or the request).
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            ProxyError::Connect(_)
                | ProxyError::Unavailable(_)
                | ProxyError::ResponseTimeout(_)
                | ProxyError::UpstreamH2(_)
                | ProxyError::UpstreamHttp1(_)
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Connect(e) if e.is_timeout() => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Connect(_) | ProxyError::UpstreamH2(_) | ProxyError::UpstreamHttp1(_) => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::ResponseTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Request(e) => e.status(),
            ProxyError::RequestBody(H1Error::RequestBodyTimeout(_))
            | ProxyError::RequestBodyStalled(_) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::RequestBody(_) => StatusCode::BAD_REQUEST,
            ProxyError::Forbidden(HttpDenied::Unauthorized) => StatusCode::FORBIDDEN,
            ProxyError::Forbidden(HttpDenied::NoRoute) => StatusCode::NOT_FOUND,
        }
    }

    /// Whether the client connection must close after the response.
    pub fn closes_connection(&self) -> bool {
        matches!(self, ProxyError::RequestBody(_))
    }

    /// The `error` label of `response_total`.
    pub fn label(&self) -> &'static str {
        match self {
            ProxyError::Connect(e) if e.is_timeout() => "connect_timeout",
            ProxyError::Connect(_) => "connect",
            ProxyError::Unavailable(_) => "unavailable",
            ProxyError::ResponseTimeout(_) => "response_timeout",
            ProxyError::UpstreamH2(_) | ProxyError::UpstreamHttp1(_) => "upstream",
            ProxyError::Request(HeadError::Timeout(_))
            | ProxyError::RequestBody(H1Error::RequestBodyTimeout(_))
            | ProxyError::RequestBodyStalled(_) => ERROR_REQUEST_TIMEOUT,
            ProxyError::BadRequest(_) | ProxyError::Request(_) | ProxyError::RequestBody(_) => {
                ERROR_BAD_REQUEST
            }
            ProxyError::Forbidden(_) => ERROR_FORBIDDEN,
        }
    }

    /// The gRPC status a gRPC client gets instead of an HTTP error status.
    fn grpc_code(&self) -> u32 {
        match self {
            ProxyError::Connect(e) if e.is_timeout() => 4,
            ProxyError::ResponseTimeout(_) => 4,
            ProxyError::Connect(_)
            | ProxyError::Unavailable(_)
            | ProxyError::UpstreamH2(_)
            | ProxyError::UpstreamHttp1(_) => 14,
            ProxyError::BadRequest(_) | ProxyError::Request(_) => 13,
            ProxyError::RequestBody(H1Error::RequestBodyTimeout(_))
            | ProxyError::RequestBodyStalled(_) => 4,
            ProxyError::RequestBody(_) => 13,
            // PERMISSION_DENIED and NOT_FOUND, as Linkerd answers gRPC clients.
            ProxyError::Forbidden(HttpDenied::Unauthorized) => 7,
            ProxyError::Forbidden(HttpDenied::NoRoute) => 5,
        }
    }

    /// The response for this error. gRPC requests get a trailers-only gRPC error, so gRPC
    /// clients see a status instead of a protocol error.
    pub fn to_response(&self, grpc: bool) -> Response<ProxyBody> {
        let message = header_safe(&self.to_string());
        if grpc {
            let mut res = Response::new(ProxyBody::empty());
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            h.insert("grpc-status", HeaderValue::from(self.grpc_code()));
            if let Ok(v) = HeaderValue::from_str(&message) {
                h.insert("grpc-message", v.clone());
                h.insert(L5D_PROXY_ERROR, v);
            }
            return res;
        }
        let mut res = error_response(self.status(), &message);
        if self.closes_connection() {
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

/// A plain-text error response with the `l5d-proxy-error` header.
pub fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let message = header_safe(message);
    let body = format!("{message}\n");
    let len = body.len();
    let mut res = Response::new(ProxyBody::full(body.into()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    let v =
        HeaderValue::from_str(&message).unwrap_or_else(|_| HeaderValue::from_static("proxy error"));
    h.insert(L5D_PROXY_ERROR, v);
    res
}

/// An HTTP/1.1 error response written straight to a socket, for requests rejected before
/// an HTTP server is running on the connection. It always closes the connection.
pub fn raw_error_response(status: StatusCode, message: &str) -> Vec<u8> {
    let message = header_safe(message);
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\n{L5D_PROXY_ERROR}: {message}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        message.len() + 1,
    )
    .into_bytes()
}

/// Header values may not hold control characters; replace them.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || !c.is_ascii() {
                ' '
            } else {
                c
            }
        })
        .collect()
}
