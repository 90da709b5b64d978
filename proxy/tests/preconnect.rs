//! The upstream connection the server-speaks-first check opens, through the real binary:
//! the client connection it was opened for uses it (no second connection to the backend),
//! no other client connection ever gets it, and it closes with its client if unused.

// The servers and helpers here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use support::backend::Backend;
use support::{Proxy, eventually, read_response};

const WAIT: Duration = Duration::from_secs(5);

fn forward_to(addr: SocketAddr) -> Proxy {
    Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &addr.to_string())])
}

/// A raw TCP backend that numbers its connections from 1, optionally greets each with
/// `hi N` first (a server that speaks first), and answers every line with `N:line`.
struct Numbered {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    closes: Arc<AtomicUsize>,
}

impl Numbered {
    fn start(greet: bool) -> Numbered {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let closes = Arc::new(AtomicUsize::new(0));
        let (a, c) = (accepts.clone(), closes.clone());
        std::thread::spawn(move || {
            // Bounded: no test here opens more than a handful.
            for sock in listener.incoming().take(16) {
                let Ok(mut sock) = sock else { return };
                let n = a.fetch_add(1, SeqCst) + 1;
                let c = c.clone();
                std::thread::spawn(move || {
                    if greet {
                        let _ = writeln!(sock, "hi {n}");
                    }
                    let mut lines = BufReader::new(sock.try_clone().unwrap()).lines();
                    while let Some(Ok(line)) = lines.next() {
                        if writeln!(sock, "{n}:{line}").is_err() {
                            break;
                        }
                    }
                    c.fetch_add(1, SeqCst);
                });
            }
        });
        Numbered {
            addr,
            accepts,
            closes,
        }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(SeqCst)
    }
}

/// A client that connects and sends nothing, so the proxy runs the server-speaks-first
/// check; returns once that check's connection reached the backend (`accepted` says how
/// many connections the backend has seen then).
fn silent_client(proxy: &Proxy, accepted: impl Fn() -> usize, expect: usize) -> TcpStream {
    let s = TcpStream::connect(proxy.inbound).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert!(
        eventually(WAIT, || accepted() == expect),
        "the proxy did not connect upstream for a silent client ({} connections)",
        accepted()
    );
    s
}

fn line(s: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    s.read_line(&mut l).unwrap();
    l
}

#[test]
fn a_late_http1_client_is_served_over_the_connection_the_check_opened() {
    let backend = Backend::start();
    let proxy = forward_to(backend.addr);
    let mut s = silent_client(&proxy, || backend.connections(), 1);
    s.write_all(b"GET /late HTTP/1.1\r\nHost: late.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let res = read_response(&mut BufReader::new(s)).unwrap();
    assert_eq!(res.status, 200, "{}", res.head);
    assert_eq!(backend.saw("/late"), 1);
    assert_eq!(
        backend.connections(),
        1,
        "no second connection to the backend"
    );
}

#[test]
fn a_late_http2_client_is_served_over_the_connection_the_check_opened() {
    let backend = Backend::start();
    let proxy = forward_to(backend.addr);
    let s = silent_client(&proxy, || backend.connections(), 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        s.set_nonblocking(true).unwrap();
        let tcp = tokio::net::TcpStream::from_std(s).unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(conn);
        let mut client = client.ready().await.unwrap();
        let req = http::Request::get(format!("http://{}/late-h2", proxy.inbound))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(req, true).unwrap();
        tokio::time::timeout(WAIT, response)
            .await
            .unwrap()
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    assert_eq!(backend.saw("/late-h2"), 1);
    assert_eq!(
        backend.connections(),
        1,
        "no second connection to the backend"
    );
}

#[test]
fn another_client_connection_never_gets_it() {
    let backend = Backend::start();
    let proxy = forward_to(backend.addr);
    // A's first line makes it HTTP; its connection waits for the rest of the head.
    let mut a = silent_client(&proxy, || backend.connections(), 1);
    a.write_all(b"GET /a HTTP/1.1\r\n").unwrap();

    // B speaks at once, and must open its own connection.
    let mut b = TcpStream::connect(proxy.inbound).unwrap();
    b.write_all(b"GET /b HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let res = read_response(&mut BufReader::new(b)).unwrap();
    assert_eq!(res.status, 200, "{}", res.head);
    assert_eq!(backend.connections(), 2, "B was handed A's connection");

    // A is served too, over its own connection or the one B left in the pool.
    a.write_all(b"Host: a.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let res = read_response(&mut BufReader::new(a)).unwrap();
    assert_eq!(res.status, 200, "{}", res.head);
    assert_eq!((backend.saw("/a"), backend.saw("/b")), (1, 1));
    assert_eq!(backend.connections(), 2);
}

#[test]
fn a_greeting_reaches_only_the_client_it_was_read_for() {
    let server = Numbered::start(true);
    let proxy = forward_to(server.addr);
    let mut a = BufReader::new(silent_client(&proxy, || server.accepts(), 1));
    let mut b = BufReader::new(silent_client(&proxy, || server.accepts(), 2));
    assert_eq!(line(&mut a), "hi 1\n");
    assert_eq!(line(&mut b), "hi 2\n");
    b.get_mut().write_all(b"from b\n").unwrap();
    a.get_mut().write_all(b"from a\n").unwrap();
    assert_eq!(
        line(&mut a),
        "1:from a\n",
        "A talks to the server that greeted it"
    );
    assert_eq!(
        line(&mut b),
        "2:from b\n",
        "B talks to the server that greeted it"
    );
    assert_eq!(
        server.accepts(),
        2,
        "each greeting's connection was the one forwarded"
    );
}

#[test]
fn a_late_opaque_client_is_forwarded_over_the_connection_the_check_opened() {
    let server = Numbered::start(false);
    let proxy = forward_to(server.addr);
    let mut s = BufReader::new(silent_client(&proxy, || server.accepts(), 1));
    s.get_mut().write_all(b"not http\n").unwrap();
    assert_eq!(line(&mut s), "1:not http\n");
    assert_eq!(server.accepts(), 1, "no second connection to the backend");
}

#[test]
fn an_unused_preconnected_connection_closes_with_its_client() {
    let server = Numbered::start(false);
    let proxy = forward_to(server.addr);
    let mut s = silent_client(&proxy, || server.accepts(), 1);
    // HTTP by its first line, so the connection is kept for the request; but the client
    // leaves before its head is complete, and nothing connects.
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    drop(s);
    assert!(
        eventually(WAIT, || server.closes.load(SeqCst) == 1),
        "the upstream connection outlived its client"
    );
    assert_eq!(server.accepts(), 1);
}
