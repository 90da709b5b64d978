//! Real mesh-proxy processes carrying HTTP and opaque TCP in both directions.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::exposition::Exported;
use crate::stat_support::{Backend, Load, Proxy};

/// Two proxies: `http` forwards inbound to an HTTP backend and sends outbound requests in
/// proxy mode; `tcp` forwards inbound to a server that speaks first.
pub struct Traffic {
    pub http: Proxy,
    pub tcp: Proxy,
    pub banner: SocketAddr,
    loads: Vec<Load>,
    _backend: Backend,
}

impl Traffic {
    /// Starts the proxies and the load, and waits until every kind of traffic went through
    /// once: HTTP inbound (every 4th request a 500), outbound to the backend (the same), and
    /// outbound to a port nothing listens on (502, `error="connect"`); opaque TCP inbound and
    /// through `CONNECT` outbound. The HTTP load keeps running until `stop_load`.
    pub fn start() -> Traffic {
        let backend = Backend::start();
        let banner = banner_server();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let http = Proxy::start(backend.addr, &[]);
        let tcp = Proxy::start(banner, &[]);
        let authority = "web.emojivoto.svc.cluster.local:8080";
        let loads = vec![
            Load::start(http.inbound, authority, 40, 4, 0),
            Load::start(http.outbound, &backend.addr.to_string(), 40, 4, 0),
            Load::start(http.outbound, &closed.to_string(), 10, 0, 0),
        ];
        for load in &loads {
            load.wait_for(8);
        }
        tcp_exchange(TcpStream::connect(tcp.inbound).unwrap());
        let mut tunnel = TcpStream::connect(http.outbound).unwrap();
        write!(
            tunnel,
            "CONNECT {banner} HTTP/1.1\r\nHost: {banner}\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") && head.len() < 1024 {
            let mut byte = [0];
            tunnel.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        tcp_exchange(tunnel);
        Traffic {
            http,
            tcp,
            banner,
            loads,
            _backend: backend,
        }
    }

    pub fn stop_load(&mut self) {
        self.loads.clear();
    }

    /// Scrapes both proxies until `ready` holds for the union of what they export, or 20 s
    /// passed.
    pub fn scrape_until(&self, ready: impl Fn(&Exported) -> bool) -> Exported {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut all = Exported::default();
            for p in [&self.http, &self.tcp] {
                let (status, body) = http_get(p.admin, "/metrics");
                assert_eq!(status, 200);
                for (metric, labels) in Exported::parse(&body).metrics {
                    let into = all.metrics.entry(metric).or_default();
                    for (label, values) in labels {
                        into.entry(label).or_default().extend(values);
                    }
                }
            }
            if ready(&all) || Instant::now() > deadline {
                return all;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A server that speaks first (a banner, as SMTP or MySQL do), then echoes one line.
fn banner_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let _ = conn.write_all(b"220 banner\r\n");
                let mut line = String::new();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                if reader.read_line(&mut line).is_ok() {
                    let _ = conn.write_all(line.as_bytes());
                }
            });
        }
    });
    addr
}

/// Reads `want` bytes, or fails after 10 s.
fn read_exactly(conn: &mut TcpStream, want: usize) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0; want];
    conn.read_exact(&mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// One opaque TCP exchange with the banner server through `conn`.
fn tcp_exchange(mut conn: TcpStream) {
    assert_eq!(read_exactly(&mut conn, 12), "220 banner\r\n");
    conn.write_all(b"hello\r\n").unwrap();
    assert_eq!(read_exactly(&mut conn, 7), "hello\r\n");
}

/// An HTTP/1.0 GET (so the body is neither chunked nor kept alive): the status and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
