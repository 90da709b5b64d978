//! HTTP/1 on one client connection through both of the proxy's paths: the lean loop that
//! forwards plain requests as bytes, and hyper, which takes over from the first request
//! that is not plain. Raw sockets, so every byte on the wire is checked.

// The raw clients and upstreams here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::backend::Backend;
use support::{Proxy, closed_port, metric_value};

/// One response read off a keep-alive connection.
#[derive(Debug)]
struct Response {
    status: u16,
    /// Header lines, as sent.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection that reads responses by their framing, as a browser would.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, raw: &str) {
        self.writer.write_all(raw.as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    fn fields(&mut self) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return fields;
            }
            let (k, v) = line.split_once(':').unwrap();
            fields.push((k.to_string(), v.trim().to_string()));
        }
    }

    /// Reads one response; `head` says it answers a HEAD request.
    fn response(&mut self, head: bool) -> Response {
        let status_line = self.line();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let status = status_line[9..12].parse().unwrap();
        let headers = self.fields();
        let mut r = Response {
            status,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
        if head || status == 204 || status == 304 {
            return r;
        }
        if r.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).unwrap();
                if size == 0 {
                    r.trailers = self.fields();
                    return r;
                }
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                r.body.extend_from_slice(&chunk[..size]);
            }
        }
        let len: usize = r.header("content-length").unwrap().parse().unwrap();
        r.body = vec![0; len];
        self.reader.read_exact(&mut r.body).unwrap();
        r
    }

    /// Whether the proxy closed the connection (reads end of stream).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(self.reader.read_to_end(&mut rest), Ok(0))
    }
}

fn inbound_to(upstream: SocketAddr) -> Proxy {
    Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &upstream.to_string())])
}

#[test]
fn plain_requests_then_hyper_on_one_connection() {
    let backend = Backend::start();
    let proxy = inbound_to(backend.addr);
    let mut c = Client::connect(proxy.inbound);

    c.send("GET /one?a=1 HTTP/1.1\r\nHost: web\r\nConnection: keep-alive\r\nX-Hop: 1\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert!(
        r.body().starts_with("backend saw GET /one?a=1 host=web"),
        "{}",
        r.body()
    );
    assert!(
        r.body().contains("connection=None"),
        "hop-by-hop: {}",
        r.body()
    );
    assert!(r.header("date").is_some(), "{:?}", r.headers);
    assert!(r.header("connection").is_none(), "{:?}", r.headers);

    c.send("HEAD /two HTTP/1.1\r\nHost: web\r\n\r\n");
    let r = c.response(true);
    assert_eq!(r.status, 200);
    assert!(r.header("content-length").is_some(), "{:?}", r.headers);

    // Pipelined: both heads in one write, answered in order.
    c.send("GET /p1 HTTP/1.1\r\nHost: web\r\n\r\nGET /p2 HTTP/1.1\r\nHost: web\r\n\r\n");
    assert!(c.response(false).body().starts_with("backend saw GET /p1"));
    assert!(c.response(false).body().starts_with("backend saw GET /p2"));

    let r = {
        c.send("GET /chunked/3 HTTP/1.1\r\nHost: web\r\n\r\n");
        c.response(false)
    };
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body(), "chunk 0\nchunk 1\nchunk 2\n");

    // A body is not plain: hyper serves this request and every one after it.
    c.send("POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(c.response(false).body(), "hello");
    c.send("GET /three HTTP/1.1\r\nHost: web\r\n\r\n");
    assert!(
        c.response(false)
            .body()
            .starts_with("backend saw GET /three")
    );

    c.send("GET /last HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    assert_eq!(backend.requests(), 8);
    assert_eq!(backend.connections(), 1, "one pooled upstream connection");
    let labels = format!(
        "request_total{{direction=\"inbound\",authority=\"web\",target_addr=\"{}\"",
        backend.addr
    );
    assert_eq!(metric_value(&proxy.metrics(), &labels), Some(8.0));
}

#[test]
fn the_lean_path_closes_after_connection_close() {
    let backend = Backend::start();
    let proxy = inbound_to(backend.addr);
    let mut c = Client::connect(proxy.inbound);
    c.send("GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed(), "the proxy closes after the response");
}

/// An upstream that answers every request on a connection with `response`.
fn scripted_upstream(response: &'static str) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(sock.try_clone().unwrap());
                let mut sock = sock;
                loop {
                    let mut line = String::new();
                    let mut body = 0;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            body = n.trim().parse().unwrap();
                        }
                    }
                    let mut skip = vec![0; body];
                    if reader.read_exact(&mut skip).is_err() {
                        return;
                    }
                    if sock.write_all(response.as_bytes()).is_err() {
                        return;
                    }
                    if response.starts_with("HTTP/1.0") {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn hyper_serves_the_connection_from_the_first_request_with_a_body() {
    let upstream =
        scripted_upstream("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Case: Kept\r\n\r\nok\n");
    let proxy = inbound_to(upstream);
    let mut c = Client::connect(proxy.inbound);
    let names = |r: &Response| r.headers.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    // The lean path forwards field names as the upstream wrote them; hyper lowercases.
    c.send("GET / HTTP/1.1\r\nHost: up\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.body(), "ok\n");
    assert!(names(&r).contains(&"X-Case".to_string()), "{:?}", r.headers);
    c.send("POST / HTTP/1.1\r\nHost: up\r\nContent-Length: 4\r\n\r\nbody");
    let r = c.response(false);
    assert_eq!(r.body(), "ok\n");
    assert!(names(&r).contains(&"x-case".to_string()), "{:?}", r.headers);
    c.send("GET / HTTP/1.1\r\nHost: up\r\n\r\n");
    let r = c.response(false);
    assert!(
        names(&r).contains(&"x-case".to_string()),
        "hyper keeps it: {:?}",
        r.headers
    );
}

#[test]
fn trailers_reach_a_client_that_asks_for_them() {
    let upstream = scripted_upstream(
        "HTTP/1.1 200 OK\r\nTrailer: x-t\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n0\r\nx-t: done\r\nx-undeclared: no\r\n\r\n",
    );
    let proxy = inbound_to(upstream);
    let mut c = Client::connect(proxy.inbound);
    c.send("GET / HTTP/1.1\r\nHost: up\r\nTE: trailers\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.body(), "abc");
    assert_eq!(r.trailers, [("x-t".to_string(), "done".to_string())]);
    assert!(r.header("date").is_some(), "added: {:?}", r.headers);
    // Without TE: trailers, the same response comes without them.
    c.send("GET / HTTP/1.1\r\nHost: up\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.body(), "abc");
    assert!(r.trailers.is_empty(), "{:?}", r.trailers);
}

#[test]
fn a_body_until_close_is_chunked_for_a_keep_alive_client() {
    let upstream =
        scripted_upstream("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nto the end\n");
    let proxy = inbound_to(upstream);
    let mut c = Client::connect(proxy.inbound);
    for _ in 0..2 {
        c.send("GET / HTTP/1.1\r\nHost: up\r\n\r\n");
        let r = c.response(false);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.body(), "to the end\n");
    }
}

#[test]
fn errors_keep_the_client_connection() {
    let proxy = inbound_to(closed_port());
    let mut c = Client::connect(proxy.inbound);
    for _ in 0..2 {
        c.send("GET / HTTP/1.1\r\nHost: web\r\n\r\n");
        let r = c.response(false);
        assert_eq!(r.status, 502);
        assert!(
            r.header("l5d-proxy-error")
                .unwrap()
                .starts_with("connect to 127.0.0.1:"),
            "{:?}",
            r.headers
        );
        assert!(r.body().starts_with("connect to"), "{}", r.body());
    }
    let m = proxy.metrics();
    assert!(
        m.contains(
            "status_code=\"502\",classification=\"failure\",grpc_status=\"\",error=\"connect\"} 2"
        ),
        "{m}"
    );
}
