//! HTTP/1 carried over HTTP/2 between meshed proxies (`l5d-orig-proto`): the inbound side.

mod support;

use support::backend::Backend;
use support::{Proxy, curl};

fn inbound_to(backend: &Backend) -> Proxy {
    let fwd = backend.addr.to_string();
    Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", fwd.as_str())])
}

#[test]
fn inbound_sends_an_upgraded_request_on_as_http1_and_marks_the_response() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend);
    let url = format!("http://{}/hello", proxy.inbound);
    let (code, out, err) = curl(&[
        "-s",
        "-i",
        "--http2-prior-knowledge",
        "-H",
        "l5d-orig-proto: HTTP/1.1",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(out.contains("l5d-orig-proto: HTTP/1.1"), "{out}");
    assert!(
        out.contains("version=HTTP/1.1"),
        "the backend saw HTTP/1.1: {out}"
    );
    assert!(
        out.contains(&format!("host={}", proxy.inbound)),
        "the authority became Host: {out}"
    );

    // A body streams through both ways.
    let body = "x".repeat(200_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, &body).unwrap();
    let (code, out, err) = curl(&[
        "-s",
        "--http2-prior-knowledge",
        "-H",
        "l5d-orig-proto: HTTP/1.1",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("http://{}/echo", proxy.inbound),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, body);

    // Without the header, HTTP/2 stays HTTP/2.
    let (code, out, err) = curl(&["-s", "--http2-prior-knowledge", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("version=HTTP/2.0"), "{out}");
}
