use super::*;

use tokio::io::AsyncWriteExt;

#[test]
fn classifies_http1_request_lines() {
    assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Protocol::Http1));
    assert_eq!(
        classify(b"POST /x?y=1 HTTP/1.0\r\nHost: a\r\n\r\n"),
        Some(Protocol::Http1)
    );
    assert_eq!(
        classify(b"CONNECT example.com:443 HTTP/1.1\r\n"),
        Some(Protocol::Http1)
    );
    assert_eq!(
        classify(b"GET http://a:1/ HTTP/1.1\n"),
        Some(Protocol::Http1)
    );
}

#[test]
fn waits_for_more_bytes_while_still_plausible() {
    for partial in [
        &b"G"[..],
        b"GET",
        b"GET ",
        b"GET /index",
        b"GET / HTTP/1",
        b"GET / HTTP/1.1",
    ] {
        assert_eq!(
            classify(partial),
            None,
            "{:?}",
            String::from_utf8_lossy(partial)
        );
    }
    assert_eq!(classify(b""), None);
    assert_eq!(classify(b"PRI * HTTP/2"), None);
}

#[test]
fn classifies_h2_tls_and_opaque() {
    assert_eq!(classify(H2_PREFACE), Some(Protocol::Http2));
    assert_eq!(
        classify(&[0x16, 0x03, 0x01, 0x02, 0x00]),
        Some(Protocol::Tls)
    );
    assert_eq!(classify(b"\x00\x01binary"), Some(Protocol::Opaque));
    assert_eq!(classify(b"EHLO example.com\r\n"), Some(Protocol::Opaque));
    assert_eq!(classify(b"GET / HTTP/2.0\r\n"), Some(Protocol::Opaque));
    assert_eq!(classify(b"GET / HTTP/1.1x"), Some(Protocol::Opaque));
    assert_eq!(classify(b"*3\r\n$3\r\nSET\r\n"), Some(Protocol::Opaque));
    assert_eq!(classify(b" GET / HTTP/1.1\r\n"), Some(Protocol::Opaque));
    assert_eq!(classify(b"GET  / HTTP/1.1\r\n"), Some(Protocol::Opaque));
    let long_token = [b'A'; 40];
    assert_eq!(classify(&long_token), Some(Protocol::Opaque));
}

fn settings(timeout: Duration, ssf: Option<Duration>) -> DetectSettings {
    DetectSettings {
        timeout: DetectTimeout(timeout),
        server_speaks_first: ServerSpeaksFirst(ssf),
        max_bytes: 64 * 1024,
    }
}

type NoConnect = fn() -> std::future::Ready<Option<tokio::io::DuplexStream>>;

#[tokio::test]
async fn detects_across_split_writes() {
    let (mut client, mut proxy_side) = tokio::io::duplex(1024);
    let writer = tokio::spawn(async move {
        client.write_all(b"GET /a").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        client
            .write_all(b" HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        client
    });
    let d = detect(
        &mut proxy_side,
        settings(Duration::from_secs(5), None),
        None::<NoConnect>,
    )
    .await
    .unwrap();
    assert!(matches!(d.detected, Detected::Protocol(Protocol::Http1)));
    assert!(d.client_bytes.starts_with(b"GET /a HTTP/1.1\r\n"));
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn silent_client_times_out() {
    let (_client, mut proxy_side) = tokio::io::duplex(1024);
    let d = detect(
        &mut proxy_side,
        settings(Duration::from_millis(50), None),
        None::<NoConnect>,
    )
    .await
    .unwrap();
    assert!(matches!(d.detected, Detected::Timeout));
    assert!(d.client_bytes.is_empty());
}

#[tokio::test]
async fn server_speaking_first_is_detected_within_the_window() {
    let (_client, mut proxy_side) = tokio::io::duplex(1024);
    let (mut server, upstream) = tokio::io::duplex(1024);
    server.write_all(b"220 smtp ready\r\n").await.unwrap();
    let start = std::time::Instant::now();
    let d = detect(
        &mut proxy_side,
        settings(Duration::from_secs(10), Some(Duration::from_millis(30))),
        Some(|| async move { Some(upstream) }),
    )
    .await
    .unwrap();
    let elapsed = start.elapsed();
    match d.detected {
        Detected::ServerFirst(bytes) => assert_eq!(&bytes[..], b"220 smtp ready\r\n"),
        other => panic!("expected the server to speak first, got {other:?}"),
    }
    assert!(d.upstream.is_some());
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[tokio::test]
async fn late_client_keeps_the_preconnected_upstream() {
    let (mut client, mut proxy_side) = tokio::io::duplex(1024);
    let (_server, upstream) = tokio::io::duplex(1024);
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        client
    });
    let d = detect(
        &mut proxy_side,
        settings(Duration::from_secs(10), Some(Duration::from_millis(20))),
        Some(|| async move { Some(upstream) }),
    )
    .await
    .unwrap();
    assert!(matches!(d.detected, Detected::Protocol(Protocol::Http1)));
    assert!(
        d.upstream.is_some(),
        "the upstream opened for the check is reused"
    );
    drop(writer.await.unwrap());
}

#[test]
fn undecided_bytes_that_begin_a_request_stay_http() {
    for start in [
        &b"G"[..],
        b"GE",
        b"GET",
        b"GET ",
        b"GET /a",
        b"PATCH /x HTTP/1",
        b"OPT",
    ] {
        assert_eq!(
            undecided(start),
            Protocol::Http1,
            "{:?}",
            String::from_utf8_lossy(start)
        );
    }
    for other in [&b"HELLO"[..], b"GETX", b"FOO /a", b"AUTH x", b"GET  /a"] {
        assert_eq!(
            undecided(other),
            Protocol::Opaque,
            "{:?}",
            String::from_utf8_lossy(other)
        );
    }
}

#[tokio::test]
async fn a_request_line_still_arriving_at_the_timeout_is_http() {
    let (mut client, mut proxy_side) = tokio::io::duplex(1024);
    client.write_all(b"GET /slow").await.unwrap();
    let d = detect(
        &mut proxy_side,
        settings(Duration::from_millis(50), None),
        None::<NoConnect>,
    )
    .await
    .unwrap();
    assert!(matches!(d.detected, Detected::Protocol(Protocol::Http1)));
    assert_eq!(&d.client_bytes[..], b"GET /slow");
}
