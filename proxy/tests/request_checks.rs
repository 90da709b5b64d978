//! Requests that are the client's error: an ambiguous `Host`, and a malformed chunked
//! body. Each is refused with a 400 on every serving path (the first request on a
//! connection, a later one on the lean path, one handed to hyper), and none counts as a
//! failure of the upstream.

// Test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::backend::Backend;
use support::{Proxy, RawResponse, closed_port, read_response};

/// Sends `raw` on a new connection and returns every response until the proxy closes it.
fn responses(addr: SocketAddr, raw: &str) -> Vec<RawResponse> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    while out.len() < 8 {
        match read_response(&mut r) {
            Ok(res) => out.push(res),
            Err(_) => break,
        }
    }
    out
}

/// The last response to `raw`, sent first on a connection and again after a plain
/// keep-alive request to `host` (the lean path), and after one with a body (hyper's path).
fn on_every_path(addr: SocketAddr, host: impl std::fmt::Display, raw: &str) -> Vec<RawResponse> {
    let lean = format!("GET /first HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let hyper = format!("POST /first HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\n\r\nx");
    [String::new(), lean, hyper]
        .iter()
        .map(|before| {
            let mut all = responses(addr, &format!("{before}{raw}"));
            assert_eq!(
                all.len(),
                1 + usize::from(!before.is_empty()),
                "{raw:?} after {before:?}"
            );
            all.pop().unwrap()
        })
        .collect()
}

#[test]
fn ambiguous_hosts_are_refused_and_the_uri_authority_wins() {
    let backend = Backend::start();
    let b = backend.addr;
    let fwd = b.to_string();
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd)]);
    let tail = "Connection: close\r\n\r\n";
    // As an HTTP proxy (the outbound port, not redirected) and as a reverse proxy (inbound).
    for addr in [proxy.outbound, proxy.inbound] {
        let refused = [
            (
                format!("GET /two HTTP/1.1\r\nHost: {b}\r\nHost: evil.test\r\n{tail}"),
                "more than one Host",
            ),
            (
                format!("GET /userinfo HTTP/1.1\r\nHost: evil@{b}\r\n{tail}"),
                "invalid Host",
            ),
            (
                format!("GET http://evil@{b}/uri-userinfo HTTP/1.1\r\nHost: {b}\r\n{tail}"),
                "userinfo",
            ),
        ];
        for (raw, reason) in &refused {
            for res in on_every_path(addr, b, raw) {
                assert_eq!(res.status, 400, "{raw:?}: {}", res.head);
                let why = res.header("l5d-proxy-error").unwrap_or_default();
                assert!(why.contains(reason), "{raw:?}: {why:?}");
            }
        }
    }
    for path in ["/two", "/userinfo", "/uri-userinfo"] {
        assert_eq!(backend.saw(path), 0, "{path} reached the backend");
    }

    // An absolute-form URI names the target; a different Host is replaced, not forwarded.
    let raw = format!("GET http://{b}/uri-wins HTTP/1.1\r\nHost: evil.test\r\n{tail}");
    for res in on_every_path(proxy.outbound, b, &raw) {
        assert_eq!(res.status, 200, "{}", res.head);
        assert!(
            res.body_string().contains(&format!("host={b} ")),
            "the backend saw another Host: {}",
            res.body_string()
        );
    }
    let closed = closed_port();
    let raw = format!("GET http://{closed}/host-loses HTTP/1.1\r\nHost: {b}\r\n{tail}");
    for res in on_every_path(proxy.outbound, b, &raw) {
        assert_eq!(
            res.status, 502,
            "routed by Host, not by the URI: {}",
            res.head
        );
    }
    assert_eq!(backend.saw("/host-loses"), 0);
}

#[test]
fn a_malformed_chunked_body_is_the_clients_400_not_an_upstream_failure() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd)]);
    let head = "POST /echo HTTP/1.1\r\nHost: checks.test\r\nTransfer-Encoding: chunked\r\n\r\n";
    let bodies = [
        "zz\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
    ];
    for body in bodies {
        for res in on_every_path(proxy.inbound, "checks.test", &format!("{head}{body}")) {
            assert_eq!(res.status, 400, "{body:?}: {}", res.head);
            assert!(res.closes(), "{body:?}: {}", res.head);
            let why = res.header("l5d-proxy-error").unwrap_or_default();
            assert!(why.contains("request body"), "{body:?}: {why:?}");
        }
    }
    let m = proxy.metrics();
    assert!(!m.contains("error=\"upstream\""), "{m}");
    // The client's mistake is not the backend's failure: the answers count as successes,
    // as Linkerd counts a 4xx, and nothing on this backend counts as a failure.
    assert!(
        m.lines().any(|l| l.starts_with("response_total{")
            && l.contains(
                "status_code=\"400\",classification=\"success\",grpc_status=\"\",error=\"bad_request\"}"
            )
            && l.ends_with(" 9")),
        "{m}"
    );
    assert!(
        !m.lines()
            .any(|l| l.starts_with("response_total{") && l.contains("classification=\"failure\"")),
        "{m}"
    );
}
