//! Request and response heads: no input panics; what the lean path forwards is a valid head
//! without hop-by-hop fields; the two response parsers agree on framing; and the framing the
//! client is told matches the body the proxy will send.

use std::fmt::Display;

use bytes::BytesMut;
use proptest::prelude::*;

use crate::fuzz_runner::fuzz;
use crate::http::h1::decode::{Framing, parse_head};
use crate::http::h1::head::{
    RequestHead, ResponseContext, ResponseHead, parse_request, parse_response,
};
use crate::http::headers::{Name, classify};

const MAX: usize = 8 * 1024;
const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

/// Checks one request head: a plain request's rewritten head is valid and clean.
fn check_request(buf: &[u8], fixed_host: bool) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    let host = "10.0.0.1:8080";
    let host = fixed_host.then_some(&host as &dyn Display);
    let RequestHead::Plain(plain) = parse_request(buf, MAX, host, &mut out) else {
        return Ok(());
    };
    prop_assert!(plain.len <= buf.len() && plain.len <= MAX);
    if let Some(range) = &plain.host {
        prop_assert!(range.end <= plain.len, "host outside the head");
    }
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut slots);
    let parsed = req.parse(&out);
    prop_assert!(
        matches!(parsed, Ok(httparse::Status::Complete(n)) if n == out.len()),
        "forwarded head does not parse: {:?}",
        String::from_utf8_lossy(&out)
    );
    prop_assert_eq!(req.version, Some(1));
    let mut hosts = 0;
    for h in req.headers.iter() {
        match classify(h.name.as_bytes()) {
            Name::Host => hosts += 1,
            Name::Connection
            | Name::KeepAlive
            | Name::ProxyConnection
            | Name::TransferEncoding
            | Name::Upgrade
            | Name::Expect => {
                prop_assert!(false, "{} forwarded", h.name);
            }
            Name::Te => prop_assert!(h.value.trim_ascii().eq_ignore_ascii_case(b"trailers")),
            Name::ContentLength => prop_assert_eq!(h.value.trim_ascii(), b"0"),
            _ => {}
        }
    }
    prop_assert_eq!(hosts, 1, "{:?}", String::from_utf8_lossy(&out));
    // Every strict prefix of a plain head is incomplete, never something else.
    for cut in [plain.len / 2, plain.len.saturating_sub(1)] {
        if cut < plain.len {
            let got = parse_request(&buf[..cut], MAX, host, &mut Vec::new());
            prop_assert_eq!(got, RequestHead::Partial, "prefix of {} bytes", cut);
        }
    }
    Ok(())
}

/// Checks one response head under every request context.
fn check_response(buf: &[u8]) -> Result<(), TestCaseError> {
    for (head_request, trailers, close) in [(false, false, false), (true, true, true)] {
        let cx = ResponseContext {
            head_request,
            trailers,
            close,
            date: DATE,
        };
        let mut out = Vec::new();
        let lean = parse_response(buf, MAX, cx, &mut out);
        let mut whole = BytesMut::from(buf);
        let full = parse_head(&mut whole, head_request, MAX);
        let (Ok(ResponseHead::Final(response)), Ok(Some(head))) = (&lean, &full) else {
            continue;
        };
        // Both parsers read the same framing from the upstream's head.
        prop_assert_eq!(response.framing, head.framing);
        prop_assert_eq!(response.keep_alive, head.keep_alive);

        // The client's head parses, and says how the body the proxy sends is framed.
        let mut client = BytesMut::from(&out[..]);
        let told = parse_head(&mut client, head_request, MAX)
            .map_err(|e| TestCaseError::fail(format!("client head: {e}")))?;
        let Some(told) = told else {
            return Err(TestCaseError::fail("client head incomplete"));
        };
        prop_assert!(client.is_empty(), "bytes after the client head");
        let expected = if response.chunked {
            Framing::Chunked
        } else {
            response.framing
        };
        prop_assert_eq!(
            told.framing,
            expected,
            "client head {:?}",
            String::from_utf8_lossy(&out)
        );
        let dates = told.headers.get_all(http::header::DATE).iter().count();
        prop_assert!(dates >= 1, "no date");
        for name in ["keep-alive", "proxy-connection", "upgrade"] {
            prop_assert!(!told.headers.contains_key(name), "{} forwarded", name);
        }
        let te = told.headers.get_all(http::header::TRANSFER_ENCODING);
        prop_assert!(te.iter().count() <= 1, "transfer-encoding twice");
        if close {
            prop_assert!(!told.keep_alive, "close not said");
        }
    }
    Ok(())
}

#[test]
fn request_arbitrary_bytes() {
    fuzz(
        "h1 head: request, arbitrary bytes",
        512,
        (prop::collection::vec(any::<u8>(), 0..300), any::<bool>()),
        |(bytes, fixed_host)| check_request(&bytes, fixed_host),
    );
}

#[test]
fn response_arbitrary_bytes() {
    fuzz(
        "h1 head: response, arbitrary bytes",
        512,
        prop::collection::vec(any::<u8>(), 0..300),
        |bytes| check_response(&bytes),
    );
}

fn field() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        6 => prop::sample::select(
            &[
                "Host", "host", "Connection", "connection", "Keep-Alive", "Proxy-Connection", "TE",
                "Transfer-Encoding", "Content-Length", "content-length", "Upgrade", "Expect",
                "Date", "Trailer", "grpc-status", "X-Hop", "User-Agent", "Accept",
            ][..]
        )
        .prop_map(str::to_owned),
        1 => "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}",
        1 => "[ -~\t]{0,8}",
    ];
    let value = prop_oneof![
        4 => prop::sample::select(
            &[
                "", "0", " 0 ", "5", "00", "+5", "-1", "18446744073709551616", "5, 5", "chunked",
                "gzip, chunked", "chunked, gzip", "Chunked", "close", "keep-alive", "Close, x-hop",
                "trailers", "upgrade", "websocket", "100-continue", "svc:8080", "a b", "x-hop",
                "grpc-status", "0, 1",
            ][..]
        )
        .prop_map(str::to_owned),
        1 => "[ -~\t\u{80}-\u{ff}]{0,16}",
    ];
    (name, value)
}

/// Heads built from the fields the proxy acts on, with line-ending and spacing variants.
fn head(start: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
    (
        start,
        prop::collection::vec((field(), 0u8..8), 0..8),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(start, fields, crlf, tail)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("{start}{eol}");
            for ((name, value), style) in fields {
                let sep = match style {
                    0 => ":",
                    1 => ":  ",
                    2 => " : ",
                    _ => ": ",
                };
                text.push_str(&format!("{name}{sep}{value}{eol}"));
            }
            text.push_str(eol);
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&tail);
            bytes
        })
}

#[test]
fn request_heads() {
    let start = (
        prop::sample::select(
            &[
                "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "get", "G ET",
            ][..],
        ),
        prop_oneof![
            4 => "/[a-zA-Z0-9._~!$&'()*+,;=:@/?%-]{0,20}",
            1 => "[ -~\u{80}-\u{ff}]{0,12}",
            1 => Just("*".to_owned()),
            1 => Just("http://a/b".to_owned()),
        ],
        prop::sample::select(
            &[
                "HTTP/1.1",
                "HTTP/1.0",
                "HTTP/2.0",
                "HTTP/1.1 ",
                "http/1.1",
                "HTTP/1.10",
            ][..],
        ),
    )
        .prop_map(|(method, path, version)| format!("{method} {path} {version}"));
    fuzz(
        "h1 head: request heads",
        512,
        (head(start), any::<bool>()),
        |(bytes, fixed_host)| check_request(&bytes, fixed_host),
    );
}

#[test]
fn response_heads() {
    let start = (
        prop::sample::select(&["HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2"][..]),
        prop_oneof![
            6 => prop::sample::select(
                &[
                    200u16, 204, 304, 100, 101, 103, 199, 301, 404, 500, 503, 0, 99, 600, 999,
                ][..]
            )
            .prop_map(|c| format!("{c:03}")),
            1 => "[0-9]{1,4}",
        ],
        prop::sample::select(&["", " OK", " ", " Not Found", " \u{e9}t\u{e9}"][..]),
    )
        .prop_map(|(version, code, reason)| format!("{version} {code}{reason}"));
    fuzz("h1 head: response heads", 512, head(start), |bytes| {
        check_response(&bytes)
    });
}
