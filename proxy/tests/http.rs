//! HTTP through the real binary with curl: HTTP/1, h2c, proxy mode, pooling, errors.

// The raw upstreams here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::backend::Backend;
use support::{Proxy, closed_port, curl, curl_env, eventually, http_request, metric_value};

fn inbound_to(backend: &Backend, extra: &[(&str, &str)]) -> Proxy {
    let fwd = backend.addr.to_string();
    let mut env = vec![("MESH_PROXY_INBOUND_FORWARD_ADDR", fwd.as_str())];
    env.extend_from_slice(extra);
    Proxy::start(&env)
}

#[test]
fn http1_with_curl_and_upstream_pooling() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[]);
    let url = format!("http://{}/hello?x=1", proxy.inbound);
    // Two requests on one curl connection (keep-alive), then two more curl processes.
    let (code, out, err) = curl(&["-v", &url, &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.matches("backend saw GET /hello?x=1").count(),
        2,
        "{out}"
    );
    assert!(
        err.contains("Re-using existing connection") || err.contains("Reusing existing"),
        "{err}"
    );
    for _ in 0..2 {
        let (code, out, err) = curl(&[&url]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("version=HTTP/1.1"), "{out}");
    }
    assert_eq!(backend.requests(), 4);
    assert_eq!(
        backend.connections(),
        1,
        "sequential requests from separate client connections share one pooled upstream connection"
    );
}

#[test]
fn h2c_prior_knowledge_with_curl() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[]);
    let url = format!("http://{}/h2", proxy.inbound);
    // One URL per run: curl 7.88 fails reusing a prior-knowledge connection on its own.
    for _ in 0..2 {
        let (code, out, err) = curl(&["--http2-prior-knowledge", "-v", &url]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("< HTTP/2 200"), "{err}");
        assert!(
            out.contains("version=HTTP/2.0"),
            "the upstream leg is HTTP/2 too: {out}"
        );
    }
    assert_eq!(
        backend.connections(),
        1,
        "client connections share one upstream HTTP/2 connection"
    );
    let trailers = format!("http://{}/trailers", proxy.inbound);
    let (code, out, err) = curl(&["--http2-prior-knowledge", "-v", &trailers]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "body\n");
    assert!(
        err.contains("x-trailer: done"),
        "trailers pass through: {err}"
    );
}

#[test]
fn chunked_bodies_and_100_continue() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[]);
    let (code, out, err) = curl(&["-v", &format!("http://{}/chunked/50", proxy.inbound)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.to_lowercase().contains("transfer-encoding: chunked"),
        "{err}"
    );
    assert_eq!(out.lines().count(), 50);
    assert_eq!(out.lines().last(), Some("chunk 49"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload");
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &payload).unwrap();
    let data = format!("@{}", file.display());
    let echo = format!("http://{}/echo", proxy.inbound);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-v",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &data,
            &echo,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("HTTP/1.1 100 Continue"), "{err}");
    assert!(
        out.stdout == payload,
        "echoed body differs ({} bytes)",
        out.stdout.len()
    );

    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &data,
            &echo,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout == payload,
        "chunked upload echoed {} bytes",
        out.stdout.len()
    );
}

#[test]
fn http_proxy_mode_with_curl() {
    let backend = Backend::start();
    let proxy = Proxy::start(&[]);
    let proxy_url = format!("http://{}", proxy.outbound);
    let target = format!("http://{}/via-proxy", backend.addr);

    // Absolute-form, as `curl -x` sends it.
    let (code, out, err) = curl(&["-x", &proxy_url, &target]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("backend saw GET /via-proxy host=127.0.0.1"),
        "{out}"
    );

    // The http_proxy variable, with a host name that needs resolving.
    let named = format!("http://localhost:{}/named", backend.addr.port());
    let (code, out, err) = curl_env(&[&named], &[("http_proxy", &proxy_url)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("host=localhost:{}", backend.addr.port())),
        "{out}"
    );

    // CONNECT tunnel (curl -p).
    let (code, out, err) = curl(&[
        "-v",
        "-p",
        "-x",
        &proxy_url,
        &format!("http://{}/tunneled", backend.addr),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("CONNECT 127.0.0.1:"), "{err}");
    assert!(out.contains("backend saw GET /tunneled"), "{out}");

    // Origin-form, routed by Host.
    let raw = format!(
        "GET /by-host HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        backend.addr
    );
    let r = http_request(proxy.outbound, &raw).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body_string().contains("backend saw GET /by-host"),
        "{}",
        r.body_string()
    );

    // A request naming the proxy itself is refused instead of looping.
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        proxy.outbound
    );
    let r = http_request(proxy.outbound, &raw).unwrap();
    assert_eq!(r.status, 502);
    assert!(
        r.header("l5d-proxy-error")
            .unwrap()
            .contains("own listener"),
        "{:?}",
        r.head
    );

    let m = proxy.metrics();
    let labels = format!(
        "request_total{{direction=\"outbound\",authority=\"{}\",target_addr=\"{}\"",
        backend.addr, backend.addr
    );
    assert!(metric_value(&m, &labels).unwrap() >= 2.0, "{m}");
}

#[test]
fn errors_become_responses_with_l5d_proxy_error() {
    // 502: nothing listens at the forward address.
    let dead = closed_port().to_string();
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &dead)]);
    let (code, out, err) = curl(&["-i", &format!("http://{}/", proxy.inbound)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    assert!(
        out.to_lowercase()
            .contains("l5d-proxy-error: connect to 127.0.0.1:"),
        "{out}"
    );
    let m = proxy.metrics();
    assert!(
        m.contains(
            "status_code=\"502\",classification=\"failure\",grpc_status=\"\",error=\"connect\"} 1"
        ),
        "{m}"
    );
    drop(proxy);

    // 504: the upstream accepts but never answers within the response timeout.
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[("MESH_PROXY_RESPONSE_TIMEOUT", "200ms")]);
    let (code, out, _) = curl(&["-i", &format!("http://{}/slow/5000", proxy.inbound)]);
    assert_eq!(code, 0);
    assert!(out.starts_with("HTTP/1.1 504"), "{out}");
    assert!(
        out.to_lowercase()
            .contains("l5d-proxy-error: upstream sent no response within 200ms"),
        "{out}"
    );
    drop(proxy);

    // 504: the connect itself times out. A listener whose accept queue is full makes the
    // kernel drop new SYNs, so connecting to it hangs.
    let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    full.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    full.listen(0).unwrap();
    let full_addr = full.local_addr().unwrap().as_socket().unwrap();
    let mut fill = Vec::new();
    while let Ok(s) = TcpStream::connect_timeout(&full_addr, Duration::from_millis(300)) {
        fill.push(s);
        assert!(fill.len() < 64, "the accept queue never filled");
    }
    let fwd = full_addr.to_string();
    let proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "200ms"),
    ]);
    let (_, out, _) = curl(&["-i", &format!("http://{}/", proxy.inbound)]);
    assert!(out.starts_with("HTTP/1.1 504"), "{out}");
    assert!(
        out.to_lowercase().contains("timed out after 200ms"),
        "{out}"
    );
    let m = proxy.metrics();
    assert!(m.contains("status_code=\"504\",classification=\"failure\",grpc_status=\"\",error=\"connect_timeout\"} 1"), "{m}");
}

#[test]
fn grpc_requests_get_grpc_errors() {
    let dead = closed_port().to_string();
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &dead)]);
    let (code, _, err) = curl(&[
        "--http2-prior-knowledge",
        "-v",
        "-H",
        "content-type: application/grpc",
        "--data-binary",
        "",
        &format!("http://{}/pkg.Svc/Method", proxy.inbound),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("< HTTP/2 200"), "{err}");
    assert!(err.contains("grpc-status: 14"), "{err}");
    assert!(err.contains("l5d-proxy-error: connect to"), "{err}");
}

#[test]
fn malformed_and_smuggling_requests_get_400() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[]);
    let cases = [
        (
            "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
            "invalid header name",
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "invalid Content-Length",
        ),
    ];
    for (raw, reason) in cases {
        let r = http_request(proxy.inbound, raw).unwrap();
        assert_eq!(r.status, 400, "{raw:?} -> {}", r.head);
        let header = r.header("l5d-proxy-error").unwrap_or_default();
        assert!(header.contains(reason), "{raw:?}: {header:?}");
    }
    assert_eq!(
        backend.requests(),
        0,
        "nothing malformed reached the backend"
    );
}

#[test]
fn header_limits_and_slow_heads() {
    let backend = Backend::start();
    let proxy = inbound_to(
        &backend,
        &[
            ("MESH_PROXY_MAX_HEADER_BYTES", "8Ki"),
            ("MESH_PROXY_HEADER_READ_TIMEOUT", "300ms"),
        ],
    );
    let big = format!("X-Big: {}", "a".repeat(10_000));
    let (code, out, _) = curl(&["-i", "-H", &big, &format!("http://{}/", proxy.inbound)]);
    assert_eq!(code, 0);
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    assert!(out.contains("l5d-proxy-error"), "{out}");

    // Slowloris: half a head, then nothing.
    let mut s = TcpStream::connect(proxy.inbound).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let r = support::parse_response(&buf).unwrap();
    assert_eq!(r.status, 408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(backend.requests(), 0);
}

#[test]
fn connection_limit_closes_extra_connections() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[("MESH_PROXY_MAX_CONNECTIONS", "2")]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(proxy.inbound).unwrap())
        .collect();
    // The proxy holds both (each counts as open once it has its slot).
    assert!(
        support::eventually(Duration::from_secs(5), || {
            proxy
                .metric("tcp_open_connections{direction=\"inbound\",peer=\"src\"")
                .unwrap_or(0.0)
                >= 2.0
        }),
        "the proxy did not take both connections:\n{}",
        proxy.metrics()
    );
    let mut extra = TcpStream::connect(proxy.inbound).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the third connection is closed without an answer");
    drop(held);
    assert!(support::eventually(Duration::from_secs(5), || {
        curl(&[&format!("http://{}/", proxy.inbound)]).0 == 0
    }));
}

#[test]
fn metrics_count_known_traffic() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[]);
    let base = format!("http://{}", proxy.inbound);
    for _ in 0..5 {
        assert_eq!(curl(&[&format!("{base}/ok")]).0, 0);
    }
    for _ in 0..2 {
        assert_eq!(curl(&[&format!("{base}/status/503")]).0, 0);
    }
    let labels = format!(
        "direction=\"inbound\",authority=\"{}\",target_addr=\"{}\",target_ip=\"127.0.0.1\",target_port=\"{}\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"",
        proxy.inbound,
        backend.addr,
        backend.addr.port()
    );
    // A response is recorded once its body is written, which may be just after the client
    // has read it.
    let count = |m: &str, code: &str| {
        metric_value(
            m,
            &format!("response_latency_ms_count{{{labels},status_code=\"{code}\"}}"),
        )
    };
    assert!(eventually(Duration::from_secs(5), || {
        let m = proxy.metrics();
        count(&m, "200") == Some(5.0) && count(&m, "503") == Some(2.0)
    }));
    let m = proxy.metrics();
    let get = |name: &str| metric_value(&m, name).unwrap_or_else(|| panic!("no {name} in:\n{m}"));
    assert_eq!(get(&format!("request_total{{{labels}}}")), 7.0);
    assert_eq!(
        get(&format!(
            "response_total{{{labels},status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}}"
        )),
        5.0
    );
    assert_eq!(
        get(&format!(
            "response_total{{{labels},status_code=\"503\",classification=\"failure\",grpc_status=\"\",error=\"\"}}"
        )),
        2.0
    );
    assert_eq!(
        get(&format!(
            "response_latency_ms_count{{{labels},status_code=\"200\"}}"
        )),
        5.0
    );
    assert_eq!(
        get(&format!(
            "response_latency_ms_bucket{{{labels},status_code=\"200\",le=\"+Inf\"}}"
        )),
        5.0
    );
    assert_eq!(
        get(&format!("response_latency_fine_us_count{{{labels}}}")),
        7.0
    );
    let src = format!(
        "direction=\"inbound\",peer=\"src\",target_addr=\"{}\",target_ip=\"127.0.0.1\",target_port=\"{}\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"",
        backend.addr,
        backend.addr.port()
    );
    assert_eq!(get(&format!("tcp_open_total{{{src}}}")), 7.0);
    assert!(support::eventually(Duration::from_secs(5), || {
        proxy.metric(&format!("tcp_close_total{{{src},errno=\"\"}}")) == Some(7.0)
    }));
    assert!(get(&format!("tcp_read_bytes_total{{{src}}}")) > 7.0 * 40.0);
    assert!(get(&format!("tcp_write_bytes_total{{{src}}}")) > 7.0 * 100.0);
    let dst = format!(
        "tcp_open_total{{direction=\"inbound\",peer=\"dst\",target_addr=\"{}\"",
        backend.addr
    );
    assert_eq!(get(&dst), 1.0, "one pooled upstream connection");
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "proxy_build_info{",
    ] {
        assert!(m.contains(name), "{name}");
    }
}

/// A raw upstream: for each accepted connection, runs `script` on the socket.
fn raw_upstream(script: fn(TcpStream)) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            std::thread::spawn(move || script(sock));
        }
    });
    addr
}

/// Closes as servers do after answering: stop writing, then read until the peer closes (or
/// 5 s pass), so that unread request bytes never turn the close into a reset that destroys the
/// answer in flight.
fn linger(mut sock: TcpStream) {
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
    let mut sink = [0u8; 64 * 1024];
    while matches!(sock.read(&mut sink), Ok(n) if n > 0) {}
}

/// Reads one request head (and ignores any body).
fn read_head(sock: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

#[test]
fn stale_upstream_connections_are_retried() {
    // Answers the first request on a connection, keep-alive promised; then takes the next
    // request and closes without answering, as a server timing out an idle connection
    // at the moment the request arrives.
    let upstream = raw_upstream(|mut sock| {
        if read_head(&mut sock).is_some() {
            let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
        }
        let _ = read_head(&mut sock);
    });
    let fwd = upstream.to_string();
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd)]);
    let url = format!("http://{}/", proxy.inbound);
    // One client connection, so the second request reuses the first upstream connection.
    let (code, out, err) = curl(&["-v", &url, &url, &url]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "ok\nok\nok\n", "{err}");
    let m = proxy.metrics();
    let dst =
        format!("tcp_open_total{{direction=\"inbound\",peer=\"dst\",target_addr=\"{upstream}\"");
    assert_eq!(
        metric_value(&m, &dst),
        Some(3.0),
        "each retry opened a fresh connection:\n{m}"
    );
}

#[test]
fn upstream_http1_edge_cases() {
    // HTTP/1.0, no length: the body runs until the server closes.
    let eof = raw_upstream(|mut sock| {
        if read_head(&mut sock).is_some() {
            let _ = sock
                .write_all(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end\n");
        }
    });
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &eof.to_string())]);
    let (code, out, err) = curl(&[&format!("http://{}/", proxy.inbound)]);
    assert_eq!((code, out.as_str()), (0, "until the end\n"), "{err}");
    drop(proxy);

    // The server rejects a large upload before reading it; the client gets the answer.
    let early = raw_upstream(|mut sock| {
        if read_head(&mut sock).is_some() {
            let _ = sock.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo much\n");
            linger(sock);
        }
    });
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &early.to_string())]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    std::fs::write(&file, vec![7u8; 20_000_000]).unwrap();
    let (code, out, err) = curl(&[
        "-w",
        " %{http_code}",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("http://{}/upload", proxy.inbound),
    ]);
    assert!(out.ends_with(" 413"), "{code} {out} {err}");
    drop(proxy);

    // 1xx interim responses are skipped; a malformed response is a 502.
    let interim = raw_upstream(|mut sock| {
        if let Some(head) = read_head(&mut sock) {
            if head.contains("/bad") {
                let _ = sock.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
                );
            } else {
                let _ = sock.write_all(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
            }
        }
        linger(sock);
    });
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &interim.to_string())]);
    let (code, out, err) = curl(&[&format!("http://{}/hints", proxy.inbound)]);
    assert_eq!((code, out.as_str()), (0, "abc"), "{err}");
    let (_, out, _) = curl(&["-i", &format!("http://{}/bad", proxy.inbound)]);
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    assert!(out.contains("conflicting Content-Length"), "{out}");
}

#[test]
fn idle_and_slow_keep_alive_connections_are_closed() {
    let backend = Backend::start();
    let proxy = inbound_to(&backend, &[("MESH_PROXY_HEADER_READ_TIMEOUT", "200ms")]);
    let mut s = TcpStream::connect(proxy.inbound).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("backend saw GET /first"));
    // The second request's head never completes.
    s.write_all(b"GET /second HTTP/1.1\r\nHost: a\r\n").unwrap();
    let started = std::time::Instant::now();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(n, 0, "closed without an answer");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // A long response is not cut by the idle timeout.
    let (code, out, _) = curl(&[&format!("http://{}/slow/900", proxy.inbound)]);
    assert_eq!((code, out.as_str()), (0, "slept 900ms\n"));
}

/// An unreachable upstream shows in the log at the default level, without a line per request.
#[test]
fn upstream_failures_are_logged_at_most_once_a_second() {
    let dead = closed_port();
    let proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &dead.to_string()),
        ("LINKERD2_PROXY_LOG", "warn,mesh_proxy=info"),
    ]);
    let request = "GET / HTTP/1.1\r\nHost: down.test\r\nConnection: close\r\n\r\n";
    let lines = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("request failed upstream"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let started = std::time::Instant::now();
    for _ in 0..30 {
        assert_eq!(http_request(proxy.inbound, request).unwrap().status, 502);
    }
    let burst = started.elapsed();
    let first = lines(&proxy.logs());
    assert!(!first.is_empty(), "{}", proxy.logs());
    assert!(
        first[0].contains("WARN")
            && first[0].contains(&dead.to_string())
            && first[0].contains("down.test"),
        "{}",
        first[0]
    );
    // One line per second at most: 30 requests in `burst` wrote at most burst + 1 of them.
    assert!(
        first.len() as u64 <= burst.as_secs() + 1,
        "{} lines for 30 failures in {burst:?}",
        first.len()
    );
    // A second later, the next failure is written with the count of those left out.
    let mut sent = 30;
    assert!(
        support::eventually(Duration::from_secs(5), || {
            sent += 1;
            let _ = http_request(proxy.inbound, request);
            lines(&proxy.logs())
                .iter()
                .skip(1)
                .filter_map(|l| l.split_once("skipped=")?.1.trim().parse::<u64>().ok())
                .any(|skipped| skipped > 0)
        }),
        "{}",
        proxy.logs()
    );
    assert!(sent < 10_000);
}
