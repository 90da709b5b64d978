use super::*;

const MAX: usize = 8 * 1024;

fn request(raw: &str, host: Option<&str>) -> (RequestHead, String) {
    let mut out = Vec::new();
    let host = host.as_ref().map(|h| h as &dyn Display);
    let parsed = parse_request(raw.as_bytes(), MAX, host, &mut out);
    (parsed, String::from_utf8(out).unwrap())
}

fn plain(raw: &str, host: Option<&str>) -> (PlainRequest, String) {
    match request(raw, host) {
        (RequestHead::Plain(p), out) => (p, out),
        (other, _) => panic!("{raw:?} is not plain: {other:?}"),
    }
}

#[test]
fn plain_requests_are_rewritten_for_the_upstream() {
    let raw = "GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: svc:8080\r\nConnection: keep-alive\r\n\
               Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: gzip\r\n\
               User-Agent: x\r\nContent-Length: 0\r\n\r\nNEXT";
    let (p, out) = plain(raw, None);
    assert_eq!(
        out,
        "GET /a/b?c=d&e=%20f HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: x\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(p.len, raw.len() - "NEXT".len());
    assert_eq!(&raw[p.host.clone().unwrap()], "svc:8080");
    assert!(!p.close && !p.head && !p.trailers);

    let (p, out) = plain(
        "HEAD / HTTP/1.1\r\nConnection: Close\r\nTE: trailers\r\n\r\n",
        Some("10.0.0.1:80"),
    );
    assert!(p.head && p.close && p.trailers && p.host.is_none());
    assert_eq!(
        out, "HEAD / HTTP/1.1\r\nTE: trailers\r\nhost: 10.0.0.1:80\r\n\r\n",
        "a missing Host names the fixed target"
    );
}

#[test]
fn anything_unusual_is_left_to_hyper() {
    let cases = [
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            "a body",
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "chunked",
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "upgrade",
        ),
        (
            "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            "expect",
        ),
        ("GET / HTTP/1.0\r\nHost: a\r\n\r\n", "HTTP/1.0"),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "CONNECT"),
        ("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", "absolute-form"),
        ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "asterisk-form"),
        ("GET /x#frag HTTP/1.1\r\nHost: a\r\n\r\n", "a fragment"),
        ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", "raw UTF-8"),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n",
            "a named field",
        ),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "two hosts"),
        (
            "GET / HTTP/1.1\r\nHost: caf\u{e9}\r\n\r\n",
            "a host that is not ASCII",
        ),
        (
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "a malformed head",
        ),
        (
            "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n",
            "no host in proxy mode",
        ),
    ];
    for (raw, why) in cases {
        assert_eq!(request(raw, None).0, RequestHead::Other, "{why}: {raw:?}");
    }
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(MAX)
    );
    assert_eq!(request(&big, None).0, RequestHead::Other, "too large");
}

#[test]
fn partial_heads_wait() {
    assert_eq!(
        request("GET / HTTP/1.1\r\nHost: a\r\n", None).0,
        RequestHead::Partial
    );
    assert_eq!(request("", None).0, RequestHead::Partial);
}

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn cx() -> ResponseContext<'static> {
    ResponseContext {
        head_request: false,
        trailers: false,
        close: false,
        date: DATE,
    }
}

fn response(raw: &str, cx: ResponseContext<'_>) -> (FinalResponse, String) {
    let mut out = Vec::new();
    match parse_response(raw.as_bytes(), MAX, cx, &mut out).unwrap() {
        ResponseHead::Final(r) => (r, String::from_utf8(out).unwrap()),
        other => panic!("{raw:?}: {other:?}"),
    }
}

#[test]
fn responses_are_rewritten_for_the_client() {
    let raw = "HTTP/1.1 200 Fine\r\nServer: s\r\nDate: d\r\nContent-Length: 3\r\n\
               Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nok\n";
    let (r, out) = response(raw, cx());
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nServer: s\r\nDate: d\r\nContent-Length: 3\r\n\r\n"
    );
    assert_eq!((r.len, r.status), (raw.len() - 3, 200));
    assert_eq!(r.framing, Framing::Length(3));
    assert!(r.keep_alive && !r.chunked);

    let (r, out) = response(
        "HTTP/1.0 404 Gone\r\nContent-Type: text/plain\r\n\r\n",
        ResponseContext {
            close: true,
            ..cx()
        },
    );
    assert_eq!(
        out,
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\
         date: Sun, 06 Nov 1994 08:49:37 GMT\r\nconnection: close\r\n\r\n",
        "a body until close goes chunked; the date is added"
    );
    assert_eq!(r.framing, Framing::Eof);
    assert!(r.chunked && !r.keep_alive);
}

#[test]
fn chunked_and_bodiless_responses() {
    let (r, out) = response(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\nDate: d\r\n\r\n",
        cx(),
    );
    assert_eq!(
        out, "HTTP/1.1 200 OK\r\nDate: d\r\ntransfer-encoding: chunked\r\n\r\n",
        "a length beside chunked is dropped"
    );
    assert!(r.chunked && !r.keep_alive);

    let head = ResponseContext {
        head_request: true,
        ..cx()
    };
    let (r, out) = response(
        "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nTransfer-Encoding: chunked\r\nDate: d\r\n\r\n",
        head,
    );
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nDate: d\r\n\r\n"
    );
    assert_eq!(r.framing, Framing::Empty);
    for raw in [
        "HTTP/1.1 204 No Content\r\nDate: d\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nDate: d\r\n\r\n",
    ] {
        let (r, out) = response(raw, cx());
        assert_eq!(out, raw, "no length is added where a body may not be");
        assert_eq!(r.framing, Framing::Empty);
    }
}

#[test]
fn connection_options_and_trailers() {
    let (_, out) = response(
        "HTTP/1.1 200 OK\r\nConnection: x-hop, close\r\nX-Hop: 1\r\nX-End: 2\r\n\
         Content-Length: 0\r\nDate: d\r\n\r\n",
        cx(),
    );
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nX-End: 2\r\nContent-Length: 0\r\nDate: d\r\n\r\n"
    );
    let trailers = ResponseContext {
        trailers: true,
        ..cx()
    };
    let (r, _) = response(
        "HTTP/1.1 200 OK\r\nTrailer: Grpc-Status, x-t\r\ngrpc-status: 3\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        trailers,
    );
    assert_eq!(r.grpc_status, Some(3));
    let declared = r.trailer_names;
    assert!(is_allowed_trailer(
        &HeaderName::from_static("grpc-status"),
        &declared
    ));
    assert!(is_allowed_trailer(
        &HeaderName::from_static("x-t"),
        &declared
    ));
    assert!(!is_allowed_trailer(
        &HeaderName::from_static("x-other"),
        &declared
    ));
    let (r, _) = response("HTTP/1.1 200 OK\r\nTrailer: x-t\r\n\r\n", cx());
    assert!(
        r.trailer_names.is_empty(),
        "no trailers for a client that did not ask"
    );
}

#[test]
fn interim_and_bad_responses() {
    let mut out = Vec::new();
    let raw = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert!(matches!(
        parse_response(raw, MAX, cx(), &mut out),
        Ok(ResponseHead::Interim(n)) if n == raw.len() - "HTTP/1.1 200 OK\r\n".len()
    ));
    assert!(matches!(
        parse_response(b"HTTP/1.1 200 OK\r\nA: b\r\n", MAX, cx(), &mut out),
        Ok(ResponseHead::Partial)
    ));
    for bad in [
        &b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"SMTP 220 hello\r\n\r\n",
    ] {
        assert!(
            parse_response(bad, MAX, cx(), &mut out).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let big = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX));
    assert!(matches!(
        parse_response(big.as_bytes(), MAX, cx(), &mut out),
        Err(H1Error::HeadTooLarge)
    ));
}
