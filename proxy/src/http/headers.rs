//! Header handling shared by both HTTP versions.

use http::header::{CONNECTION, HOST, HeaderMap, HeaderName, TE, TRANSFER_ENCODING, UPGRADE};
use http::{Request, Uri};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers (RFC 9110 section 7.6.1), which describe one connection
/// and must not be forwarded. With `upgrade`, the `Connection: upgrade` and `Upgrade`
/// headers stay, because the upgrade is what is being forwarded.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    if let Some(conn) = headers.remove(CONNECTION) {
        if let Ok(list) = conn.to_str() {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if upgrade && name.eq_ignore_ascii_case("upgrade") {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                    headers.remove(name);
                }
            }
        }
        if upgrade {
            headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
        }
    }
    headers.remove(KEEP_ALIVE);
    headers.remove(PROXY_CONNECTION);
    headers.remove(TRANSFER_ENCODING);
    if !upgrade {
        headers.remove(UPGRADE);
    }
    if let Some(te) = headers.get(TE)
        && !te.as_bytes().eq_ignore_ascii_case(b"trailers")
    {
        headers.remove(TE);
    }
}

/// Whether an HTTP/1.1 request asks to switch protocols (e.g. WebSocket).
pub fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(UPGRADE)
        && req.headers().get_all(CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// The request's authority: the URI's (HTTP/2, absolute-form, CONNECT) or the Host header.
pub fn authority<B>(req: &Request<B>) -> Option<&str> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str());
    }
    req.headers().get(HOST).and_then(|h| h.to_str().ok())
}

/// Turns an absolute-form URI into origin-form for an HTTP/1 upstream, keeping its
/// authority in the Host header.
pub fn to_origin_form<B>(req: &mut Request<B>) {
    if req.uri().scheme().is_none() {
        return;
    }
    if !req.headers().contains_key(HOST)
        && let Some(a) = req.uri().authority()
        && let Ok(v) = http::HeaderValue::from_str(a.as_str())
    {
        req.headers_mut().insert(HOST, v);
    }
    let pq = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    if let Ok(uri) = pq.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
}

/// Whether a request is gRPC, so errors are reported as gRPC statuses.
pub fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}
