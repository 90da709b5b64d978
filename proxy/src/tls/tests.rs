use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::*;
use crate::identity::testing::Ca;
use crate::identity::{Credentials, TrustAnchors};
use crate::io::Stream;

const SERVER: &str = "server.ns.serviceaccount.identity.linkerd.cluster.local";
const CLIENT: &str = "client.ns.serviceaccount.identity.linkerd.cluster.local";

struct Pki {
    ca: Ca,
    anchors: TrustAnchors,
}

impl Pki {
    fn new() -> Pki {
        let ca = Ca::new("root");
        let anchors = TrustAnchors::from_pem(ca.pem.as_bytes()).unwrap();
        Pki { ca, anchors }
    }

    fn credentials(&self, name: &str) -> Arc<Credentials> {
        let leaf = self.ca.leaf(name);
        Arc::new(
            Credentials::from_pem(
                leaf.cert_pem.as_bytes(),
                leaf.key_pem.as_bytes(),
                &self.anchors,
                None,
                SystemTime::now(),
            )
            .unwrap(),
        )
    }

    /// Mesh TLS holding `name`'s certificate, or none.
    fn tls(&self, name: Option<&str>) -> Arc<MeshTls> {
        let (_tx, rx) = watch::channel(name.map(|n| self.credentials(n)));
        MeshTls::new(&self.anchors, rx, None, Duration::from_millis(50)).unwrap()
    }
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

/// A future that must finish within a few seconds.
async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("finished in time")
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// A ClientHello as rustls writes it for `name`.
fn client_hello(pki: &Pki, name: &str) -> Vec<u8> {
    let config = pki.tls(None).configs().client.clone().unwrap();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, server_name).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

#[test]
fn the_server_name_is_read_from_a_client_hello_in_any_number_of_pieces() {
    let pki = Pki::new();
    let hello = client_hello(&pki, SERVER);
    let want = ClientHello::Hello {
        sni: Some(SERVER.to_owned()),
    };
    assert_eq!(parse_client_hello(&hello), want);
    for cut in [0, 1, 4, 5, 6, 40, hello.len() - 1] {
        assert_eq!(
            parse_client_hello(&hello[..cut]),
            ClientHello::Incomplete,
            "{cut}"
        );
    }
    // The same handshake message split over two records.
    let body = &hello[5..];
    let mut split = Vec::new();
    for part in [&body[..10], &body[10..]] {
        split.extend_from_slice(&[0x16, 0x03, 0x01]);
        split.extend_from_slice(&(part.len() as u16).to_be_bytes());
        split.extend_from_slice(part);
    }
    assert_eq!(parse_client_hello(&split), want);
    // An IP address is not sent as SNI.
    assert_eq!(
        parse_client_hello(&client_hello(&pki, "10.0.0.1")),
        ClientHello::Hello { sni: None }
    );
    for other in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01\x00\x00",
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",
        b"\x15\x03\x03\x00\x02\x02\x28",
    ] {
        assert_eq!(
            parse_client_hello(other),
            ClientHello::NotHello,
            "{other:?}"
        );
    }
    // A whole message whose extensions' length points past its end is malformed, not a
    // reason to wait.
    let mut body = hello[5..hello.len() - 10].to_vec();
    let inner = (body.len() - 4) as u32;
    body[1..4].copy_from_slice(&inner.to_be_bytes()[1..]);
    let mut bad = vec![0x16, 0x03, 0x01];
    bad.extend_from_slice(&(body.len() as u16).to_be_bytes());
    bad.extend_from_slice(&body);
    assert_eq!(parse_client_hello(&bad), ClientHello::NotHello);
}

#[tokio::test]
async fn mesh_tls_authenticates_both_sides_and_carries_bytes_both_ways() {
    let pki = Pki::new();
    let (server, client) = (pki.tls(Some(SERVER)), pki.tls(Some(CLIENT)));
    let (c, s) = pair().await;
    let (connected, accepted) =
        bounded(async { tokio::join!(client.connect(c, SERVER), server.accept(s, deadline())) })
            .await;
    let connected = Stream::from(connected.unwrap());
    let accepted = accepted.unwrap();
    assert_eq!(accepted.client, ClientTls::Authenticated(CLIENT.to_owned()));
    assert!(accepted.prefix.is_empty());
    let served = accepted.stream;

    // Readiness-based I/O: a request in three slices, one record.
    let sent = connected
        .try_write_vectored(&[
            IoSlice::new(b"GET / HTTP/1.1\r\n"),
            IoSlice::new(b"host: a\r\n"),
            IoSlice::new(b"\r\n"),
        ])
        .unwrap();
    assert_eq!(sent, 27);
    connected.flushed().await.unwrap();
    let mut got = BytesMut::with_capacity(64);
    while got.len() < 27 {
        served.readable().await.unwrap();
        match served.try_read_buf(&mut got) {
            Ok(n) => assert!(n > 0),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(&got[..], b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");

    // Much more than the sockets and rustls buffer, both ways at once, through the poll
    // methods, then an orderly close.
    let body: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut a, mut b) = (connected, served);
    let (ra, rb) = bounded(async {
        tokio::join!(
            async {
                let (mut r, mut w) = tokio::io::split(&mut a);
                let write = async {
                    w.write_all(&body).await.unwrap();
                    w.shutdown().await.unwrap();
                };
                let mut back = Vec::new();
                let read = r.read_to_end(&mut back);
                let (_, n) = tokio::join!(write, read);
                n.unwrap();
                back
            },
            async {
                let (mut r, mut w) = tokio::io::split(&mut b);
                let write = async {
                    w.write_all(&body).await.unwrap();
                    w.shutdown().await.unwrap();
                };
                let mut back = Vec::new();
                let read = r.read_to_end(&mut back);
                let (_, n) = tokio::join!(write, read);
                n.unwrap();
                back
            }
        )
    })
    .await;
    assert!(ra == body && rb == body, "{} {}", ra.len(), rb.len());
}

#[tokio::test]
async fn a_server_with_another_identity_is_refused() {
    let pki = Pki::new();
    let (server, client) = (pki.tls(Some(SERVER)), pki.tls(Some(CLIENT)));
    let (c, s) = pair().await;
    let expected = "other.ns.serviceaccount.identity.linkerd.cluster.local";
    let connecting = tokio::spawn({
        let client = client.clone();
        async move { client.connect(c, expected).await }
    });
    // The SNI named another identity: the server passes the bytes through untouched.
    let accepted = server.accept(s, deadline()).await.unwrap();
    assert_eq!(accepted.client, ClientTls::Plain);
    assert_eq!(
        parse_client_hello(&accepted.prefix),
        ClientHello::Hello {
            sni: Some(expected.to_owned())
        }
    );
    drop(accepted);
    let connected = tokio::time::timeout(Duration::from_secs(5), connecting).await;
    assert!(connected.unwrap().unwrap().is_err());

    // A server that answers for the wrong name is refused by the client.
    let (c, s) = pair().await;
    let impostor = pki.tls(Some(expected));
    let (connected, _) = tokio::join!(bounded(client.connect(c, SERVER)), async {
        let mut s = s;
        let mut hello = vec![0u8; 4096];
        let n = s.read(&mut hello).await.unwrap();
        // Answer as the impostor, whatever the SNI said.
        let config = impostor.configs().server.clone().unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        TlsStream::handshake(s, rustls::Connection::Server(conn), &hello[..n]).await
    });
    let err = connected.unwrap_err().to_string();
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_unauthenticated() {
    let pki = Pki::new();
    let (server, client) = (pki.tls(Some(SERVER)), pki.tls(None));
    let (c, s) = pair().await;
    let (connected, accepted) =
        bounded(async { tokio::join!(client.connect(c, SERVER), server.accept(s, deadline())) })
            .await;
    connected.unwrap();
    assert_eq!(accepted.unwrap().client, ClientTls::Unauthenticated);
}

#[tokio::test]
async fn plaintext_and_silent_clients_are_left_to_detection() {
    let pki = Pki::new();
    let server = pki.tls(Some(SERVER));

    // Plaintext: looked at, not read.
    let (mut c, s) = pair().await;
    c.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let accepted = server.accept(s, deadline()).await.unwrap();
    assert_eq!(accepted.client, ClientTls::Plain);
    assert!(accepted.prefix.is_empty());
    let mut buf = BytesMut::with_capacity(64);
    accepted.stream.readable().await.unwrap();
    accepted.stream.try_read_buf(&mut buf).unwrap();
    assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");

    // Silent: given up on after the first-bytes window.
    let (_c, s) = pair().await;
    let started = std::time::Instant::now();
    let accepted = server.accept(s, deadline()).await.unwrap();
    assert_eq!(accepted.client, ClientTls::Plain);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Mesh TLS for this identity before there is a certificate: refused, not passed on.
    let named = {
        let (_tx, rx) = watch::channel(None);
        MeshTls::new(
            &pki.anchors,
            rx,
            Some(SERVER.into()),
            Duration::from_millis(50),
        )
        .unwrap()
    };
    let (mut c, s) = pair().await;
    c.write_all(&client_hello(&pki, SERVER)).await.unwrap();
    assert!(named.accept(s, deadline()).await.is_err());
}
