//! Header handling shared by both HTTP versions.

use http::header::{CONNECTION, HOST, HeaderMap, HeaderName, TE, TRANSFER_ENCODING, UPGRADE};
use http::{Request, Uri};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The header names the proxy acts on: the one table both the byte-level HTTP/1 parser
/// and [`strip_hop_by_hop`] consult.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Upgrade,
    Host,
    Expect,
    Date,
    Trailer,
    GrpcStatus,
    Other,
}

/// Classifies a header name, whatever its case. Lengths first: most names match none.
pub fn classify(name: &[u8]) -> Name {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    match name.len() {
        2 if is("te") => Name::Te,
        4 if is("host") => Name::Host,
        4 if is("date") => Name::Date,
        6 if is("expect") => Name::Expect,
        7 if is("upgrade") => Name::Upgrade,
        7 if is("trailer") => Name::Trailer,
        10 if is("connection") => Name::Connection,
        10 if is("keep-alive") => Name::KeepAlive,
        11 if is("grpc-status") => Name::GrpcStatus,
        14 if is("content-length") => Name::ContentLength,
        16 if is("proxy-connection") => Name::ProxyConnection,
        17 if is("transfer-encoding") => Name::TransferEncoding,
        _ => Name::Other,
    }
}

/// A `grpc-status` value's code: digits, surrounding whitespace allowed.
pub fn grpc_code(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Linkerd's marker of an HTTP/1 request carried over HTTP/2 between two meshed proxies,
/// and of its response: its value is the original version (`HTTP/1.1`, `HTTP/1.0`).
pub const L5D_ORIG_PROTO: &str = "l5d-orig-proto";

/// Removes hop-by-hop headers (RFC 9110 section 7.6.1), which describe one connection
/// and must not be forwarded. With `upgrade`, the `Connection: upgrade` and `Upgrade`
/// headers stay, because the upgrade is what is being forwarded.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most messages carry none of these, or only `Connection: keep-alive`; one pass over
    // the (few) header names is cheaper than a hash lookup per hop-by-hop name.
    let mut found = Found::default();
    for name in headers.keys() {
        match classify(name.as_str().as_bytes()) {
            Name::Te => found.te = true,
            Name::Upgrade => found.upgrade = true,
            Name::Connection => found.connection = true,
            Name::KeepAlive => found.keep_alive = true,
            Name::ProxyConnection => found.proxy_connection = true,
            Name::TransferEncoding => found.transfer_encoding = true,
            _ => {}
        }
    }
    if found.connection {
        let conn = headers.remove(CONNECTION);
        for value in conn.iter() {
            let Ok(list) = value.to_str() else { continue };
            for token in list.split(',').map(str::trim) {
                if token.is_empty()
                    || token.eq_ignore_ascii_case("keep-alive")
                    || token.eq_ignore_ascii_case("close")
                    || token.eq_ignore_ascii_case("upgrade")
                {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    headers.remove(name);
                }
            }
        }
        if upgrade {
            headers.insert(CONNECTION, http::HeaderValue::from_static("upgrade"));
        }
    }
    if found.keep_alive {
        headers.remove(KEEP_ALIVE);
    }
    if found.proxy_connection {
        headers.remove(PROXY_CONNECTION);
    }
    if found.transfer_encoding {
        headers.remove(TRANSFER_ENCODING);
    }
    if found.upgrade && !upgrade {
        headers.remove(UPGRADE);
    }
    if found.te
        && let Some(te) = headers.get(TE)
        && !te.as_bytes().eq_ignore_ascii_case(b"trailers")
    {
        headers.remove(TE);
    }
}

#[derive(Default)]
struct Found {
    connection: bool,
    transfer_encoding: bool,
    te: bool,
    upgrade: bool,
    keep_alive: bool,
    proxy_connection: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_headers_and_connection_tokens() {
        let mut h = map(&[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("upgrade", "websocket"),
            ("x-end", "kept"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-end"]);
    }

    #[test]
    fn keeps_upgrade_headers_and_te_trailers() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
        ]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get(CONNECTION).unwrap(), "upgrade");
        assert_eq!(h.get(UPGRADE).unwrap(), "websocket");
        assert_eq!(h.get(TE).unwrap(), "trailers");
    }
}
