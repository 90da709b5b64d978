//! Streams through the real binary: gRPC, WebSocket, opaque TCP, TLS passthrough,
//! server-speaks-first, and HTTP/2 rapid reset.

// The servers and helpers here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use support::backend::Backend;
use support::{Proxy, curl, metric_value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn forward_to(addr: SocketAddr, extra: &[(&str, &str)]) -> Proxy {
    let fwd = addr.to_string();
    let mut env = vec![("MESH_PROXY_INBOUND_FORWARD_ADDR", fwd.as_str())];
    env.extend_from_slice(extra);
    Proxy::start(&env)
}

/// A hand-written gRPC service on tonic's server machinery: unary, server streaming
/// (ending with an error status in the trailers on request), and bidirectional echo.
mod grpc {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::{Stream, StreamExt};
    use tonic::codegen::{BoxFuture, Service, http};
    use tonic::server::{
        Grpc, NamedService, ServerStreamingService, StreamingService, UnaryService,
    };
    use tonic::{Request, Response, Status, Streaming};
    use tonic_prost::ProstCodec;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Chunk {
        #[prost(uint32, tag = "1")]
        pub seq: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub data: Vec<u8>,
    }

    pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send>>;

    #[derive(Clone)]
    pub struct Echo;

    impl NamedService for Echo {
        const NAME: &'static str = "test.Echo";
    }

    struct Unary;
    impl UnaryService<Chunk> for Unary {
        type Response = Chunk;
        type Future = BoxFuture<Response<Chunk>, Status>;
        fn call(&mut self, req: Request<Chunk>) -> Self::Future {
            Box::pin(async move {
                let mut res = Response::new(req.into_inner());
                res.metadata_mut()
                    .insert("x-server", "echo".parse().unwrap());
                Ok(res)
            })
        }
    }

    /// Sends `seq` chunks of `data.len()` bytes; a request with seq 13 ends in DATA_LOSS.
    struct Count;
    impl ServerStreamingService<Chunk> for Count {
        type Response = Chunk;
        type ResponseStream = ChunkStream;
        type Future = BoxFuture<Response<ChunkStream>, Status>;
        fn call(&mut self, req: Request<Chunk>) -> Self::Future {
            Box::pin(async move {
                let req = req.into_inner();
                let n = req.seq;
                let size = req.data.len();
                let items = (0..n).map(move |i| {
                    Ok(Chunk {
                        seq: i,
                        data: vec![7; size],
                    })
                });
                let tail = (n == 13).then(|| {
                    let mut status = Status::data_loss("thirteen is unlucky");
                    status
                        .metadata_mut()
                        .insert("x-detail", "in-trailers".parse().unwrap());
                    Err(status)
                });
                let stream = futures::stream::iter(items.chain(tail));
                Ok(Response::new(Box::pin(stream) as ChunkStream))
            })
        }
    }

    /// Echoes every message back with seq + 1000.
    struct Chat;
    impl StreamingService<Chunk> for Chat {
        type Response = Chunk;
        type ResponseStream = ChunkStream;
        type Future = BoxFuture<Response<ChunkStream>, Status>;
        fn call(&mut self, req: Request<Streaming<Chunk>>) -> Self::Future {
            Box::pin(async move {
                let stream = req.into_inner().map(|m| {
                    m.map(|c| Chunk {
                        seq: c.seq + 1000,
                        data: c.data,
                    })
                });
                Ok(Response::new(Box::pin(stream) as ChunkStream))
            })
        }
    }

    impl Service<http::Request<tonic::body::Body>> for Echo {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Infallible>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<Chunk, Chunk>::default());
                Ok(match req.uri().path() {
                    "/test.Echo/Unary" => grpc.unary(Unary, req).await,
                    "/test.Echo/Count" => grpc.server_streaming(Count, req).await,
                    "/test.Echo/Chat" => grpc.streaming(Chat, req).await,
                    _ => Status::unimplemented("no such method").into_http(),
                })
            })
        }
    }
}

#[test]
fn grpc_unary_streaming_trailers_and_flow_control() {
    use grpc::Chunk;
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic_prost::ProstCodec;

    let rt = rt();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let server_addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let incoming = tokio_stream_from(listener);
        tonic::transport::Server::builder()
            .add_service(grpc::Echo)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    let proxy = forward_to(server_addr, &[]);
    let target = format!("http://{}", proxy.inbound);

    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(target)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = tonic::client::Grpc::new(channel);

        client.ready().await.unwrap();
        let res = client
            .unary(
                tonic::Request::new(Chunk {
                    seq: 1,
                    data: b"ping".to_vec(),
                }),
                PathAndQuery::from_static("/test.Echo/Unary"),
                ProstCodec::<Chunk, Chunk>::default(),
            )
            .await
            .unwrap();
        assert_eq!(res.metadata().get("x-server").unwrap(), "echo");
        assert_eq!(res.into_inner().data, b"ping");

        // Server streaming that ends OK: 100 messages of 32 KiB, past every flow-control window.
        client.ready().await.unwrap();
        let mut stream = client
            .server_streaming(
                tonic::Request::new(Chunk {
                    seq: 100,
                    data: vec![0; 32 * 1024],
                }),
                PathAndQuery::from_static("/test.Echo/Count"),
                ProstCodec::<Chunk, Chunk>::default(),
            )
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(msg) = stream.message().await.unwrap() {
            assert_eq!(msg.seq, n);
            assert_eq!(msg.data.len(), 32 * 1024);
            n += 1;
        }
        assert_eq!(n, 100);

        // Server streaming that ends with an error status carried in the trailers.
        client.ready().await.unwrap();
        let mut stream = client
            .server_streaming(
                tonic::Request::new(Chunk {
                    seq: 13,
                    data: vec![1; 10],
                }),
                PathAndQuery::from_static("/test.Echo/Count"),
                ProstCodec::<Chunk, Chunk>::default(),
            )
            .await
            .unwrap()
            .into_inner();
        let mut got = 0;
        let status = loop {
            match stream.message().await {
                Ok(Some(_)) => got += 1,
                Ok(None) => panic!("expected an error status"),
                Err(status) => break status,
            }
        };
        assert_eq!(got, 13);
        assert_eq!(status.code(), tonic::Code::DataLoss);
        assert_eq!(status.message(), "thirteen is unlucky");
        assert_eq!(status.metadata().get("x-detail").unwrap(), "in-trailers");

        // Bidirectional: 200 messages of 64 KiB each way, sent while replies stream back.
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
        let sender = tokio::spawn(async move {
            for seq in 0..200u32 {
                tx.send(Chunk {
                    seq,
                    data: vec![(seq % 251) as u8; 64 * 1024],
                })
                .await
                .unwrap();
            }
        });
        client.ready().await.unwrap();
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let mut replies = client
            .streaming(
                tonic::Request::new(outbound),
                PathAndQuery::from_static("/test.Echo/Chat"),
                ProstCodec::<Chunk, Chunk>::default(),
            )
            .await
            .unwrap()
            .into_inner();
        let mut seq = 0u32;
        while let Some(msg) = replies.message().await.unwrap() {
            assert_eq!(msg.seq, seq + 1000);
            assert_eq!(msg.data.len(), 64 * 1024);
            assert!(msg.data.iter().all(|b| *b == (seq % 251) as u8));
            seq += 1;
        }
        assert_eq!(seq, 200);
        sender.await.unwrap();
    });

    let m = proxy.metrics();
    let ok = m
        .lines()
        .filter(|l| {
            l.starts_with("response_total{direction=\"inbound\"") && l.contains("grpc_status=\"0\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert_eq!(ok, 3.0, "{m}");
    assert!(
        m.lines().any(
            |l| l.contains("classification=\"failure\",grpc_status=\"15\"") && l.ends_with(" 1")
        ),
        "the DATA_LOSS status from the trailers is classified as a failure:\n{m}"
    );
}

fn tokio_stream_from(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}

#[test]
fn websocket_echo() {
    let rt = rt();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() {
                        break;
                    }
                    ws.send(msg).await.unwrap();
                }
            });
        }
    });
    let proxy = forward_to(addr, &[]);
    rt.block_on(async {
        let url = format!("ws://{}/socket", proxy.inbound);
        let (mut ws, res) = tokio_tungstenite::connect_async(url).await.unwrap();
        assert_eq!(res.status(), 101);
        for i in 0..20 {
            let text = format!("message {i}");
            ws.send(tokio_tungstenite::tungstenite::Message::text(text.clone()))
                .await
                .unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            assert_eq!(reply.into_text().unwrap().as_str(), text);
        }
        let big = vec![42u8; 1 << 20];
        ws.send(tokio_tungstenite::tungstenite::Message::binary(big.clone()))
            .await
            .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert_eq!(reply.into_data().as_ref(), &big[..]);
        ws.close(None).await.unwrap();
    });
    let m = proxy.metrics();
    assert!(
        m.contains("status_code=\"101\",classification=\"success\""),
        "{m}"
    );
}

/// A TCP echo server; returns its address.
fn echo_server(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[test]
fn opaque_tcp_on_opaque_and_undetected_ports() {
    let rt = rt();
    let echo = echo_server(&rt);
    let port = echo.port().to_string();
    // Marked opaque: no detection at all, the first byte is forwarded at once.
    let proxy = forward_to(
        echo,
        &[(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            &port,
        )],
    );
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    rt.block_on(round_trip(proxy.inbound, &payload));
    let src =
        format!("tcp_read_bytes_total{{direction=\"inbound\",peer=\"src\",target_addr=\"{echo}\"");
    assert_eq!(
        metric_value(&proxy.metrics(), &src),
        Some(payload.len() as f64)
    );
    drop(proxy);

    // Not marked opaque: binary client-first bytes are detected as opaque.
    let proxy = forward_to(
        echo,
        &[(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            "",
        )],
    );
    rt.block_on(round_trip(proxy.inbound, &payload));
    let m = proxy.metrics();
    assert!(
        !m.lines().any(|l| l.starts_with("request_total{")),
        "no HTTP metrics: {m}"
    );
}

async fn round_trip(addr: SocketAddr, payload: &[u8]) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.split();
    let write = async {
        w.write_all(payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let read = r.read_to_end(&mut back);
    let (_, n) = tokio::join!(write, read);
    n.unwrap();
    assert!(
        back == payload,
        "echoed {} of {} bytes",
        back.len(),
        payload.len()
    );
}

#[test]
fn tls_is_passed_through_untouched() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = rt();
    let cert = rcgen::generate_simple_self_signed(vec!["backend.test".to_string()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut tls = acceptor.accept(sock).await.unwrap();
                let mut buf = [0u8; 64];
                let n = tls.read(&mut buf).await.unwrap();
                tls.write_all(b"secret reply to ").await.unwrap();
                tls.write_all(&buf[..n]).await.unwrap();
                tls.shutdown().await.unwrap();
            });
        }
    });
    let proxy = forward_to(addr, &[]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("backend.test").unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .expect("the handshake passes through the proxy");
        tls.write_all(b"hello").await.unwrap();
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"secret reply to hello");
    });
    let m = proxy.metrics();
    assert!(
        !m.lines().any(|l| l.starts_with("request_total{")),
        "TLS is not parsed as HTTP: {m}"
    );
    assert!(
        metric_value(
            &m,
            &format!("tcp_open_total{{direction=\"inbound\",peer=\"dst\",target_addr=\"{addr}\"")
        ) == Some(1.0)
    );
}

/// A real SMTP server from Debian (python3-aiosmtpd) on a port that is not marked opaque.
struct Smtp {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Smtp {
    fn start() -> Smtp {
        let port = support::closed_port().port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new("aiosmtpd")
            .args(["-n", "-l", &addr.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd is installed (python3-aiosmtpd in TEST_PACKAGES)");
        let up = support::eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        assert!(up, "aiosmtpd did not start on {addr}");
        Smtp { child, addr }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn server_speaks_first_without_configuration() {
    let mut smtp = Smtp::start();
    let proxy = forward_to(smtp.addr, &[]);

    // The greeting's first byte, through the proxy, on a port nobody marked opaque.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut s = std::net::TcpStream::connect(proxy.inbound).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut byte = [0u8; 1];
        std::io::Read::read_exact(&mut s, &mut byte).unwrap();
        best = best.min(start.elapsed());
        assert_eq!(&byte, b"2", "an SMTP greeting starts with 220");
    }
    println!("first greeting byte through the proxy after {best:?}");
    assert!(
        best < Duration::from_millis(100),
        "greeting took {best:?} (Linkerd would wait 10s)"
    );

    // A real client: curl sends a message over SMTP through the proxy.
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg.txt");
    std::fs::write(&msg, "Subject: through the mesh\r\n\r\nhello from curl\r\n").unwrap();
    let (code, _, err) = curl(&[
        &format!("smtp://{}", proxy.inbound),
        "--mail-from",
        "a@example.com",
        "--mail-rcpt",
        "b@example.com",
        "-T",
        &msg.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let _ = smtp.child.kill();
    let mut out = String::new();
    std::io::Read::read_to_string(smtp.child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("hello from curl"), "aiosmtpd printed:\n{out}");
}

#[test]
fn http2_rapid_reset_is_capped() {
    let backend = Backend::start();
    let proxy = forward_to(
        backend.addr,
        &[("MESH_PROXY_HTTP2_MAX_PENDING_ACCEPT_RESETS", "20")],
    );
    let rt = rt();
    let outcome = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        let conn = tokio::spawn(conn);
        let mut client = client.ready().await.unwrap();
        let mut sent = 0;
        for _ in 0..10_000 {
            let req = http::Request::get(format!("http://{}/slow/2000", proxy.inbound))
                .body(())
                .unwrap();
            match client.send_request(req, true) {
                Ok((response, _)) => {
                    drop(response);
                    sent += 1;
                }
                Err(_) => break,
            }
            match client.clone().ready().await {
                Ok(c) => client = c,
                Err(_) => break,
            }
        }
        let result = tokio::time::timeout(Duration::from_secs(10), conn).await;
        (sent, result)
    });
    let (sent, result) = outcome;
    let result = result
        .expect("the proxy closed the abusive connection")
        .unwrap();
    // The client may see the GOAWAY or only the closed socket, depending on timing.
    let err = result.expect_err("the proxy ended the connection");
    assert!(
        sent < 10_000,
        "the proxy stopped the flood early (after {sent}): {err}"
    );
    assert!(
        support::eventually(Duration::from_secs(5), || proxy
            .logs()
            .contains("remotely-reset pending-accept streams reached limit")),
        "the proxy sent GOAWAY(ENHANCE_YOUR_CALM); client saw {err}; logs:\n{}",
        proxy.logs()
    );
    assert!(
        backend.requests() < 1000,
        "backend saw {} of {sent} reset requests",
        backend.requests()
    );
    // The proxy still serves well-behaved clients.
    assert_eq!(curl(&[&format!("http://{}/", proxy.inbound)]).0, 0);
}

#[test]
fn opaque_connections_close_when_idle() {
    let rt = rt();
    let echo = echo_server(&rt);
    let port = echo.port().to_string();
    let proxy = forward_to(
        echo,
        &[
            (
                "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
                &port,
            ),
            ("MESH_PROXY_TCP_IDLE_TIMEOUT", "200ms"),
        ],
    );
    rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).await.unwrap();
        let start = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "closed by the idle timeout");
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{:?}",
            start.elapsed()
        );
    });
}

/// An HTTP/2 server that ends each connection after `per_conn` requests, the way nginx
/// does at `keepalive_requests`: a GOAWAY, and a second naming the last stream it will
/// answer, so streams opened above it are refused unprocessed. Returns its address and how many
/// connections it accepted.
fn goaway_backend(
    rt: &tokio::runtime::Runtime,
    per_conn: usize,
) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let accepted = conns.clone();
    rt.spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                let mut served = 0;
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        let res = http::Response::builder().status(200).body(()).unwrap();
                        let _ = respond.send_response(res, true);
                    });
                    served += 1;
                    if served == per_conn {
                        conn.graceful_shutdown();
                    }
                }
            });
        }
    });
    (addr, conns)
}

#[test]
fn http2_requests_the_upstream_did_not_process_are_sent_again() {
    let rt = rt();
    let (backend, conns) = goaway_backend(&rt, 5);
    let proxy = forward_to(backend, &[]);
    let statuses = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(conn);
        // Ten streams in flight at all times, so that streams are open over each
        // upstream GOAWAY and new ones start while the upstream is closing a connection.
        let requests = (0..300).map(|_| {
            let client = client.clone();
            let uri = format!("http://{}/", proxy.inbound);
            async move {
                let mut client = client.ready().await.unwrap();
                let req = http::Request::get(uri).body(()).unwrap();
                let (response, _) = client.send_request(req, true).unwrap();
                response.await.unwrap().status().as_u16()
            }
        });
        let statuses: Vec<u16> = futures::stream::iter(requests)
            .buffer_unordered(10)
            .collect()
            .await;
        statuses
    });
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(failed, 0, "non-200 answers: {statuses:?}");
    let conns = conns.load(std::sync::atomic::Ordering::SeqCst);
    assert!(conns >= 2, "the backend recycled no connection: {conns}");
}
