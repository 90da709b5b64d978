//! Clients that pace their bytes to hold the proxy's resources: a request body sent a
//! byte at a time, and a request line dribbled past the protocol detection timeout.

// Test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::backend::Backend;
use support::{Proxy, http_request, read_response};

/// Sends `prefix`, then `trickle` one byte every `every`, until the proxy answers or closes
/// (or the bytes run out). Returns the response, if one came, and when it came.
fn trickle(
    addr: SocketAddr,
    prefix: &[u8],
    trickle: &[u8],
    every: Duration,
) -> (Option<support::RawResponse>, Duration, bool) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(prefix).unwrap();
    let mut sent_all = true;
    for b in trickle {
        // Waiting for the answer is the pause between two bytes.
        s.set_read_timeout(Some(every)).unwrap();
        let mut probe = [0u8; 1];
        match s.peek(&mut probe) {
            Ok(_) => {
                sent_all = false;
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                sent_all = false;
                break;
            }
        }
        if s.write_all(&[*b]).is_err() {
            sent_all = false;
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    let res = read_response(&mut r).ok();
    (res, started.elapsed(), sent_all)
}

#[test]
fn a_paced_request_body_times_out_and_frees_its_connection_slot() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let slots = 4;
    let proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("MESH_PROXY_MAX_CONNECTIONS", &slots.to_string()),
        ("MESH_PROXY_REQUEST_BODY_TIMEOUT", "600ms"),
    ]);
    let addr = proxy.inbound;
    // Every slot is taken by a body that arrives a byte every 200 ms: never idle for the
    // timeout, but far too slow to ever finish.
    let head = b"POST /echo HTTP/1.1\r\nHost: slow.test\r\nContent-Length: 100000\r\n\r\nx";
    let clients: Vec<_> = (0..slots)
        .map(|_| {
            std::thread::spawn(move || {
                trickle(addr, head, &[b'x'; 100], Duration::from_millis(200))
            })
        })
        .collect();
    for c in clients {
        let (res, after, sent_all) = c.join().unwrap();
        let res = res.expect("the proxy answers a body that is too slow");
        assert_eq!(res.status, 408, "{}", res.head);
        assert!(res.closes(), "{}", res.head);
        assert!(
            res.header("l5d-proxy-error")
                .is_some_and(|e| e.contains("request body")),
            "{}",
            res.head
        );
        assert!(!sent_all, "cut off before the body was sent");
        assert!(after < Duration::from_secs(5), "answered after {after:?}");
    }
    // The slots are free again.
    assert!(support::eventually(Duration::from_secs(5), || {
        http_request(
            addr,
            "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .is_ok_and(|r| r.status == 200)
    }));
    let m = proxy.metrics();
    assert!(!m.contains("error=\"upstream\""), "{m}");
    assert!(
        m.contains(
            "status_code=\"408\",classification=\"success\",grpc_status=\"\",error=\"request_timeout\"}"
        ),
        "{m}"
    );

    // A body that keeps coming, if slowly, in pieces worth the wait, goes through.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let piece = vec![b'y'; 2048];
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: slow.test\r\nContent-Length: 8192\r\n\r\n")
        .unwrap();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(&piece).unwrap();
    }
    let res = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!((res.status, res.body.len()), (200, 8192), "{}", res.head);
}

#[test]
fn a_dribbled_request_line_gets_408_instead_of_an_opaque_connection() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW", "0"),
        ("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", "300ms"),
        ("MESH_PROXY_HEADER_READ_TIMEOUT", "1s"),
    ]);
    // About 5 s for the whole head at this pace: the detect timeout passes after 3 bytes.
    let line = b"GET /dribbled HTTP/1.1\r\nHost: slow.test\r\nConnection: close\r\n\r\n";
    let (res, after, sent_all) =
        trickle(proxy.inbound, b"G", &line[1..], Duration::from_millis(80));
    let res = res.expect("a 408 for the unfinished head");
    assert_eq!(res.status, 408, "{}", res.head);
    assert!(!sent_all, "cut off before the head was complete");
    assert!(after < Duration::from_secs(3), "answered after {after:?}");
    assert_eq!(
        backend.connections(),
        0,
        "no connection to the backend for a request head that never completed"
    );

    // Bytes that cannot start an HTTP request are still forwarded as opaque TCP once the
    // detect timeout passes, as Linkerd does.
    let mut s = TcpStream::connect(proxy.inbound).unwrap();
    s.write_all(b"HELLOTHERE").unwrap();
    assert!(
        support::eventually(Duration::from_secs(5), || backend.connections() == 1),
        "not forwarded as opaque TCP"
    );
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let _ = s.write_all(b"\r\n\r\n");
    let _ = s.read_to_end(&mut buf);
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "the backend answered the opaque bytes itself: {:?}",
        String::from_utf8_lossy(&buf)
    );
}

/// An HTTP/2 backend that reads each request body to its end, then answers 200 with the
/// number of bytes; on `/early` it answers the head first, then the count.
fn h2_counting_backend(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((req, mut respond))) = conn.accept().await {
                    tokio::spawn(async move {
                        let early = req.uri().path() == "/early";
                        let (_, mut body) = req.into_parts();
                        let res = http::Response::builder().status(200).body(()).unwrap();
                        let mut tx = if early {
                            Some(respond.send_response(res.clone(), false).unwrap())
                        } else {
                            None
                        };
                        let mut n = 0;
                        while let Some(Ok(data)) = body.data().await {
                            n += data.len();
                            let _ = body.flow_control().release_capacity(data.len());
                        }
                        let mut tx = match tx.take() {
                            Some(tx) => tx,
                            None => match respond.send_response(res, false) {
                                Ok(tx) => tx,
                                Err(_) => return,
                            },
                        };
                        let _ = tx.send_data(n.to_string().into(), true);
                    });
                }
            });
        }
    });
    addr
}

/// Reads a response to its end: the status, `l5d-proxy-error` and the body.
async fn h2_response(
    response: h2::client::ResponseFuture,
) -> Result<(u16, Option<String>, String), h2::Error> {
    let response = response.await?;
    let status = response.status().as_u16();
    let error = response
        .headers()
        .get("l5d-proxy-error")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(data) = body.data().await {
        text.extend_from_slice(&data?);
    }
    Ok((status, error, String::from_utf8(text).unwrap()))
}

#[test]
fn a_paced_http2_request_body_gets_408_and_the_connection_stays() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend = h2_counting_backend(&rt);
    let fwd = backend.to_string();
    let proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("MESH_PROXY_REQUEST_BODY_TIMEOUT", "600ms"),
    ]);
    let inbound = proxy.inbound;
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(inbound).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(conn);
        let uri = |path: &str| format!("http://slow.test{path}");

        // A byte every 200 ms: never quiet for the timeout, far too slow to finish.
        let started = Instant::now();
        let mut ready = client.clone().ready().await.unwrap();
        let req = http::Request::post(uri("/paced")).body(()).unwrap();
        let (response, mut tx) = ready.send_request(req, false).unwrap();
        let sender = tokio::spawn(async move {
            for _ in 0..50 {
                if tx
                    .send_data(bytes::Bytes::from_static(b"x"), false)
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let answer = tokio::time::timeout(Duration::from_secs(10), h2_response(response));
        let (status, error, _) = answer.await.expect("no answer in 10 s").unwrap();
        let after = started.elapsed();
        sender.abort();
        assert_eq!(status, 408);
        assert!(
            error.as_deref().is_some_and(|e| e.contains("request body")),
            "{error:?}"
        );
        assert!(after < Duration::from_secs(5), "answered after {after:?}");

        // The connection stays: a body in pieces worth the wait goes through on it.
        let mut ready = client.clone().ready().await.unwrap();
        let req = http::Request::post(uri("/pieces")).body(()).unwrap();
        let (response, mut tx) = ready.send_request(req, false).unwrap();
        for last in [false, false, false, true] {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tx.reserve_capacity(2048);
            tx.send_data(vec![b'y'; 2048].into(), last).unwrap();
        }
        let (status, _, body) = h2_response(response).await.unwrap();
        assert_eq!((status, body.as_str()), (200, "8192"));

        // Once the upstream has answered, a quiet client is not cut off: a bidirectional
        // stream may rightly pause.
        let mut ready = client.clone().ready().await.unwrap();
        let req = http::Request::post(uri("/early")).body(()).unwrap();
        let (response, mut tx) = ready.send_request(req, false).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tx.send_data(bytes::Bytes::from_static(b"12345"), true)
            .unwrap();
        let mut body = response.into_body();
        let mut text = Vec::new();
        while let Some(data) = body.data().await {
            text.extend_from_slice(&data.unwrap());
        }
        assert_eq!(text, b"5");
    });
    let m = proxy.metrics();
    assert!(
        m.contains("status_code=\"408\",classification=\"success\",grpc_status=\"\",error=\"request_timeout\"}"),
        "{m}"
    );
}
