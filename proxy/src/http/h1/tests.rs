use bytes::BytesMut;
use http::StatusCode;

use super::decode::Chunk;
use super::*;

fn head(raw: &str) -> Head {
    let mut buf = BytesMut::from(raw);
    parse_head(&mut buf, false, 64 * 1024).unwrap().unwrap()
}

#[test]
fn framing_follows_rfc_9112() {
    assert_eq!(
        head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").framing,
        Framing::Length(5)
    );
    assert_eq!(
        head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").framing,
        Framing::Empty
    );
    let chunked =
        head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n");
    assert_eq!(chunked.framing, Framing::Chunked);
    assert!(
        !chunked.keep_alive,
        "TE with CL is suspicious: do not reuse"
    );
    assert_eq!(
        head("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").framing,
        Framing::Empty
    );
    assert_eq!(
        head("HTTP/1.1 304 Not Modified\r\n\r\n").framing,
        Framing::Empty
    );
    let eof = head("HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(eof.framing, Framing::Eof);
    assert!(!eof.keep_alive);
    let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(
        parse_head(&mut buf, true, 1024).unwrap().unwrap().framing,
        Framing::Empty,
        "HEAD"
    );
}

#[test]
fn keep_alive_rules() {
    assert!(head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
    assert!(!head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n").keep_alive);
    assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
    assert!(
        head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n").keep_alive
    );
}

#[test]
fn bad_heads_are_errors() {
    let mut buf =
        BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert!(parse_head(&mut buf, false, 1024).is_err());
    let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    assert!(parse_head(&mut buf, false, 1024).is_err());
    let mut buf = BytesMut::from("SMTP 220 hello\r\n\r\n");
    assert!(parse_head(&mut buf, false, 1024).is_err());
    let mut buf = BytesMut::from(format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(2000)).as_str());
    assert!(matches!(
        parse_head(&mut buf, false, 1024),
        Err(H1Error::HeadTooLarge)
    ));
}

#[test]
fn partial_heads_wait_and_keep_the_body_bytes() {
    let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Le");
    assert!(parse_head(&mut buf, false, 1024).unwrap().is_none());
    buf.extend_from_slice(b"ngth: 3\r\nX-A: b\r\n\r\nabcEXTRA");
    let h = parse_head(&mut buf, false, 1024).unwrap().unwrap();
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.headers["x-a"], "b");
    assert_eq!(&buf[..], b"abcEXTRA");
}

/// Feeds `input` to a decoder one byte at a time and collects what it yields.
fn decode_bytewise(mut decoder: Decoder, input: &[u8]) -> (Vec<u8>, Option<http::HeaderMap>, bool) {
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut trailers = None;
    for b in input {
        buf.extend_from_slice(&[*b]);
        loop {
            match decoder.decode(&mut buf, 1024).unwrap() {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return (body, trailers, true),
                Decoded::NeedMore => break,
            }
        }
    }
    (body, trailers, false)
}

#[test]
fn chunked_bodies_decode_across_any_split() {
    let input = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
    let (body, trailers, done) = decode_bytewise(Decoder::Chunked(Chunk::Size), input);
    assert_eq!(body, b"hello, world");
    assert!(trailers.is_none());
    assert!(done);

    let input = b"3\r\nabc\r\n0\r\nGrpc-Status: 0\r\nX-T: y\r\n\r\n";
    let (body, trailers, done) = decode_bytewise(Decoder::Chunked(Chunk::Size), input);
    assert_eq!(body, b"abc");
    let trailers = trailers.unwrap();
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-t"], "y");
    assert!(done);
}

#[test]
fn malformed_chunks_are_errors() {
    for bad in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"ffffffffffffffffff\r\n"] {
        let mut d = Decoder::Chunked(Chunk::Size);
        let mut buf = BytesMut::from(bad);
        let mut failed = false;
        for _ in 0..4 {
            match d.decode(&mut buf, 1024) {
                Err(_) => {
                    failed = true;
                    break;
                }
                Ok(Decoded::NeedMore) => break,
                Ok(_) => {}
            }
        }
        assert!(failed, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn length_bodies_stop_at_the_length() {
    let mut d = Decoder::new(Framing::Length(4));
    let mut buf = BytesMut::from("abcdNEXT");
    assert_eq!(
        d.decode(&mut buf, 1024).unwrap(),
        Decoded::Data(bytes::Bytes::from_static(b"abcd"))
    );
    assert!(d.is_done());
    assert_eq!(&buf[..], b"NEXT");
}

#[test]
fn request_heads_are_encoded_with_framing() {
    let req = http::Request::post("/p?q=1")
        .header("host", "svc:80")
        .header("content-type", "text/plain")
        .body(())
        .unwrap();
    let mut out = Vec::new();
    encode::encode_head(&req, &"fallback", encode::ReqFraming::Chunked, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /p?q=1 HTTP/1.1\r\nhost: svc:80\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let req = http::Request::get("http://ignored/x").body(()).unwrap();
    let mut out = Vec::new();
    encode::encode_head(&req, &"10.0.0.1:8080", encode::ReqFraming::None, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /x HTTP/1.1\r\nhost: 10.0.0.1:8080\r\n\r\n"
    );
}

#[test]
fn a_body_trickle_does_not_restart_the_timeout_but_a_kib_does() {
    let timeout = std::time::Duration::from_secs(10);
    let mut pace = BodyPace::new(timeout);
    for _ in 0..4 {
        pace.waited(std::time::Duration::from_secs(2));
        pace.arrived(1);
    }
    assert_eq!(pace.left(), std::time::Duration::from_secs(2));
    pace.waited(std::time::Duration::from_secs(1));
    pace.arrived(MIN_PROGRESS - 4);
    assert_eq!(pace.left(), timeout, "a KiB in all restarts it");
    pace.waited(std::time::Duration::from_secs(11));
    assert!(pace.left().is_zero());
}
