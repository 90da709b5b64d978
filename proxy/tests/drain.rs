//! Graceful shutdown with keep-alive clients: every response sent while draining tells the
//! client the connection closes, no request a client sends after it is lost, and the
//! process exits as soon as the last connection is done.

// Test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::backend::Backend;
use support::{Proxy, read_response};

/// How long the request in flight at SIGTERM takes at the backend.
const SLOW_MS: u64 = 1000;

/// What one HTTP/1 keep-alive client saw across the drain.
#[derive(Debug)]
struct Seen {
    path: &'static str,
    status: u16,
    closes: bool,
    /// After a response that did not say `close`, the next request: answered or lost.
    next: Option<bool>,
    /// When the in-flight response arrived.
    at: Instant,
}

/// A keep-alive connection: a first request (which picks the serving path), then a slow
/// one that is in flight at SIGTERM, then, unless told the connection closes, one more.
fn keep_alive_client(addr: SocketAddr, path: &'static str, first: &'static str) -> Seen {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    s.write_all(first.as_bytes()).unwrap();
    assert_eq!(read_response(&mut r).unwrap().status, 200);
    let slow = format!("GET /slow/{SLOW_MS} HTTP/1.1\r\nHost: drain.test\r\n\r\n");
    s.write_all(slow.as_bytes()).unwrap();
    let res = read_response(&mut r).unwrap();
    let mut seen = Seen {
        path,
        status: res.status,
        closes: res.closes(),
        next: None,
        at: Instant::now(),
    };
    if !seen.closes {
        let next = s
            .write_all(b"GET /next HTTP/1.1\r\nHost: drain.test\r\n\r\n")
            .is_ok()
            && read_response(&mut r).is_ok_and(|r| r.status == 200);
        seen.next = Some(next);
    }
    seen
}

/// An HTTP/2 connection with a slow stream in flight at SIGTERM: the stream completes, and
/// the proxy's GOAWAY ends the connection. Returns when the response came.
fn h2_client(addr: SocketAddr) -> Instant {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        let conn = tokio::spawn(conn);
        let mut client = client.ready().await.unwrap();
        let req = http::Request::get(format!("http://{addr}/slow/{SLOW_MS}"))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(req, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            chunk.unwrap();
        }
        let at = Instant::now();
        // The proxy said GOAWAY: the connection ends without the client closing it.
        let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "the HTTP/2 connection did not end after GOAWAY: {ended:?}"
        );
        at
    })
}

#[test]
fn sigterm_closes_keep_alive_connections_without_losing_a_request() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let mut proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "30s"),
    ]);
    let addr = proxy.inbound;
    // A plain first request keeps the connection on the lean path; one with a body hands
    // it to hyper for good.
    let lean = "GET /warm HTTP/1.1\r\nHost: drain.test\r\n\r\n";
    let hyper = "POST /warm HTTP/1.1\r\nHost: drain.test\r\nContent-Length: 1\r\n\r\nx";
    let (n_lean, n_hyper) = (48, 16);
    let clients: Vec<_> = (0..n_lean)
        .map(|_| ("lean", lean))
        .chain((0..n_hyper).map(|_| ("hyper", hyper)))
        .map(|(path, first)| std::thread::spawn(move || keep_alive_client(addr, path, first)))
        .collect();
    let h2 = std::thread::spawn(move || h2_client(addr));
    // Every HTTP/1 client's warm-up and slow request, and the HTTP/2 one, reached the backend.
    let expected = 2 * (n_lean + n_hyper) + 1;
    assert!(
        support::eventually(Duration::from_secs(10), || backend.requests() == expected),
        "the backend saw {} of {expected} requests",
        backend.requests()
    );
    let signaled = Instant::now();
    proxy.signal("TERM");

    let seen: Vec<Seen> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let h2_done = h2.join().unwrap();
    let status = proxy.wait_exit(Duration::from_secs(20));
    let exited = Instant::now();

    let wrong: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.status != 200 || !s.closes)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} responses in flight at SIGTERM ({} on the lean path) were not a 200 with \
         `Connection: close` (next request answered: {}, lost: {}); first: {:?}",
        wrong.len(),
        seen.len(),
        wrong.iter().filter(|s| s.path == "lean").count(),
        wrong.iter().filter(|s| s.next == Some(true)).count(),
        wrong.iter().filter(|s| s.next == Some(false)).count(),
        wrong[0]
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", proxy.logs());
    let last = seen.iter().map(|s| s.at).chain([h2_done]).max().unwrap();
    let after_last = exited.saturating_duration_since(last);
    println!(
        "exit {:?} after SIGTERM, {after_last:?} after the last response",
        exited - signaled
    );
    // No fixed wait: the process ends as soon as the last connection is done (the bound
    // is loose for a loaded machine; the poll that sees the exit adds 10 ms).
    assert!(
        after_last < Duration::from_millis(500),
        "exited {after_last:?} after the last response; logs:\n{}",
        proxy.logs()
    );
    assert!(
        proxy.logs().contains("drained; exiting"),
        "{}",
        proxy.logs()
    );
}

/// A connection that has sent nothing when the drain starts is closed at once instead of
/// holding the exit until the detect timeout; one that has sent part of a request head
/// still gets its answer.
#[test]
fn connections_still_silent_at_sigterm_do_not_hold_the_exit() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let mut proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "30s"),
        ("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", "20s"),
        ("MESH_PROXY_HEADER_READ_TIMEOUT", "20s"),
    ]);
    let silent: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(proxy.inbound).unwrap())
        .collect();
    let mut partial = TcpStream::connect(proxy.inbound).unwrap();
    partial.write_all(b"GET /half HTTP/1.1\r\nHo").unwrap();
    // Every connection has been accepted (each counts as open) before the signal.
    assert!(
        support::eventually(Duration::from_secs(5), || {
            support::metric_value(
                &proxy.metrics(),
                "tcp_open_connections{direction=\"inbound\",peer=\"src\"",
            )
            .is_some_and(|n| n >= 9.0)
        }),
        "{}",
        proxy.metrics()
    );
    let signaled = Instant::now();
    proxy.signal("TERM");
    // The rest of the partial head arrives once the drain has started, and is answered.
    let admin = proxy.admin;
    assert!(support::eventually(Duration::from_secs(5), || {
        support::http_request(
            admin,
            "GET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .is_ok_and(|r| r.status == 503)
    }));
    partial.write_all(b"st: drain.test\r\n\r\n").unwrap();
    partial
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let res = read_response(&mut BufReader::new(&partial)).unwrap();
    assert_eq!(res.status, 200, "{}", res.head);
    assert!(res.closes(), "{}", res.head);
    let status = proxy.wait_exit(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let took = signaled.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?}: silent connections held the drain"
    );
    drop(silent);
}
