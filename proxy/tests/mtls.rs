//! Mesh TLS between two real proxies on loopback: an outbound proxy whose file namer gives
//! the endpoint an identity (`IP PORT tls=<identity>`), an inbound proxy holding that
//! identity's certificate, and a backend behind it. Identities come from files signed by a
//! CA the test makes.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::backend::Backend;
use support::certs::{Identity, Pki, start_of};
use support::client::{H1Client, H2Client};
use support::{Proxy, curl, eventually, metric_sum, metric_value};

const SERVER: &str = "web.ns.serviceaccount.identity.linkerd.cluster.local";
const CLIENT: &str = "client.ns.serviceaccount.identity.linkerd.cluster.local";

fn start(env: &[(String, String)], more: &[(&str, &str)]) -> Proxy {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(more);
    Proxy::start(&all)
}

/// An inbound proxy with `id`'s certificate in front of `backend`.
fn inbound_to(pki: &Pki, id: &Identity, backend: SocketAddr, more: &[(&str, &str)]) -> Proxy {
    let fwd = backend.to_string();
    let mut env = vec![("MESH_PROXY_INBOUND_FORWARD_ADDR", fwd.as_str())];
    env.extend_from_slice(more);
    start(&pki.env(id), &env)
}

/// An outbound proxy with `id`'s certificate whose namer sends host `web` to `endpoint`
/// with the identity `expect`.
fn outbound_to(
    pki: &Pki,
    id: &Identity,
    endpoint: SocketAddr,
    expect: &str,
) -> (Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web"),
        format!("{} {} tls={expect}\n", endpoint.ip(), endpoint.port()),
    )
    .unwrap();
    let proxy = start(
        &pki.env(id),
        &[("MESH_PROXY_FS_NAMER_DIR", dir.path().to_str().unwrap())],
    );
    (proxy, dir)
}

fn via(proxy: &Proxy) -> String {
    format!("http://{}", proxy.outbound)
}

#[test]
fn requests_cross_mesh_tls_and_both_proxies_label_the_peer() {
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    let inbound = inbound_to(&pki, &server, backend.addr, &[]);
    let (outbound, _dir) = outbound_to(&pki, &client, inbound.inbound, SERVER);

    // HTTP/1 through both proxies: the outbound side's HTTP/1 client and the inbound side's
    // lean loop both run over TLS.
    let (code, out, err) = curl(&["-x", &via(&outbound), "http://web/hello"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GET /hello "), "{out}");

    // A body larger than every buffer on the way, both ways.
    let body: String = (0..2_000_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, &body).unwrap();
    let (code, out, err) = curl(&[
        "-x",
        &via(&outbound),
        "--data-binary",
        &format!("@{}", file.display()),
        "http://web/echo",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out == body, "echoed {} bytes of {}", out.len(), body.len());

    // HTTP/2 from the client, carried as HTTP/2 over TLS.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let res = rt.block_on(async {
        let mut h2 = H2Client::connect(outbound.outbound).await;
        h2.get("http://web/h2").await.unwrap()
    });
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(backend.saw("/h2"), 1);

    let server_id = format!("tls=\"true\",server_id=\"{SERVER}\"");
    let client_id = format!("tls=\"true\",client_id=\"{CLIENT}\"");
    let out_metrics = outbound.metrics();
    assert!(
        metric_sum(
            &out_metrics,
            "request_total",
            &["direction=\"outbound\"", &server_id]
        ) >= 3.0,
        "{out_metrics}"
    );
    assert!(
        metric_sum(
            &out_metrics,
            "tcp_open_total",
            &["peer=\"dst\"", &server_id]
        ) >= 1.0,
        "{out_metrics}"
    );
    let in_metrics = inbound.metrics();
    assert!(
        metric_sum(
            &in_metrics,
            "request_total",
            &["direction=\"inbound\"", &client_id]
        ) >= 3.0,
        "{in_metrics}"
    );
    assert!(
        metric_sum(&in_metrics, "tcp_open_total", &["peer=\"src\"", &client_id]) >= 1.0,
        "{in_metrics}"
    );
    assert_eq!(
        metric_sum(&in_metrics, "request_total", &["tls=\"no_identity\""]),
        0.0,
        "{in_metrics}"
    );
    // The proxies' connections to their own side stay plaintext, labelled as before.
    assert!(
        metric_sum(
            &in_metrics,
            "tcp_open_total",
            &["peer=\"dst\"", "no_tls_reason=\"loopback\""]
        ) >= 1.0,
        "{in_metrics}"
    );
    for (proxy, metrics) in [(&inbound, &in_metrics), (&outbound, &out_metrics)] {
        assert_eq!(
            metric_value(metrics, "identity_cert_expiration_timestamp_seconds "),
            Some(start_of(2100) as f64),
            "{}",
            proxy.logs()
        );
    }
}

#[test]
fn an_endpoint_without_the_expected_identity_gets_no_plaintext() {
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    let inbound = inbound_to(&pki, &server, backend.addr, &[]);
    let other = "db.ns.serviceaccount.identity.linkerd.cluster.local";
    let (outbound, _dir) = outbound_to(&pki, &client, inbound.inbound, other);

    let (code, out, err) = curl(&["-i", "-x", &via(&outbound), "http://web/secret"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    let error = out
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("l5d-proxy-error:"))
        .unwrap_or_else(|| panic!("no l5d-proxy-error in {out}"));
    assert!(
        error.contains(&format!("expecting identity {other}")),
        "{error}"
    );
    assert_eq!(backend.requests(), 0, "the backend saw a request");

    // Straight to a listener that records what it receives: only TLS arrives.
    let recorder = Recorder::start();
    let (outbound, _dir) = outbound_to(&pki, &client, recorder.addr, SERVER);
    let (_, out, _) = curl(&["-i", "-x", &via(&outbound), "http://web/secret"]);
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
    assert!(
        out.contains(&format!("expecting identity {SERVER}")),
        "{out}"
    );
    assert!(eventually(Duration::from_secs(5), || !recorder
        .bytes()
        .is_empty()));
    let got = recorder.bytes();
    assert_eq!(got[0], 0x16, "a TLS handshake record first");
    assert!(
        !contains(&got, b"secret"),
        "the request leaked in plaintext"
    );
}

#[test]
fn an_endpoint_that_gains_an_identity_is_not_reached_on_its_plaintext_connection() {
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    let inbound = inbound_to(&pki, &server, backend.addr, &[]);
    let (outbound, dir) = outbound_to(&pki, &client, inbound.inbound, SERVER);
    let endpoint = format!("{} {}", inbound.inbound.ip(), inbound.inbound.port());
    std::fs::write(dir.path().join("web"), format!("{endpoint}\n")).unwrap();
    let mut keep_alive = H1Client::connect(outbound.outbound);
    let plain = "tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"";
    let client_id = format!("tls=\"true\",client_id=\"{CLIENT}\"");
    assert!(eventually(Duration::from_secs(5), || {
        assert_eq!(keep_alive.get("http://web/").unwrap().status, 200);
        metric_sum(&inbound.metrics(), "request_total", &[plain]) >= 1.0
    }));

    // The namer now says the endpoint has an identity: the same client connection's next
    // requests go over mesh TLS, not over the upstream connection it used so far.
    std::fs::write(dir.path().join("web"), format!("{endpoint} tls={SERVER}\n")).unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        assert_eq!(keep_alive.get("http://web/").unwrap().status, 200);
        metric_sum(&inbound.metrics(), "request_total", &[&client_id]) >= 1.0
    }));
    let before = metric_sum(&inbound.metrics(), "request_total", &[plain]);
    for _ in 0..5 {
        assert_eq!(keep_alive.get("http://web/").unwrap().status, 200);
    }
    assert_eq!(
        metric_sum(&inbound.metrics(), "request_total", &[plain]),
        before
    );
}

#[test]
fn plaintext_clients_still_reach_an_inbound_proxy_with_an_identity() {
    let pki = Pki::new();
    let server = pki.identity(SERVER, 2100);
    let backend = Backend::start();
    let inbound = inbound_to(&pki, &server, backend.addr, &[]);
    let (code, out, err) = curl(&[&format!("http://{}/plain", inbound.inbound)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GET /plain "), "{out}");
    let metrics = inbound.metrics();
    assert!(
        metric_sum(
            &metrics,
            "request_total",
            &["tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\""]
        ) >= 1.0,
        "{metrics}"
    );
}

/// A client that stays silent (a protocol where the server speaks first) is waited for once:
/// the mesh TLS check's first-bytes window and the server-speaks-first check's are one wait.
#[test]
fn a_silent_client_waits_one_first_bytes_window_not_two() {
    let pki = Pki::new();
    let server = pki.identity(SERVER, 2100);
    let greeter = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = greeter.local_addr().unwrap();
    std::thread::spawn(move || {
        // At most a few connections: the proxy's own check and the test's.
        for conn in greeter.incoming().take(4) {
            let Ok(mut conn) = conn else { return };
            let _ = conn.write_all(b"220 greetings\r\n");
        }
    });
    let window = Duration::from_millis(800);
    let inbound = inbound_to(
        &pki,
        &server,
        backend,
        &[("MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW", "800ms")],
    );
    let start = std::time::Instant::now();
    let mut client = std::net::TcpStream::connect(inbound.inbound).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 15];
    client.read_exact(&mut greeting).unwrap();
    let waited = start.elapsed();
    assert_eq!(&greeting, b"220 greetings\r\n");
    // Two windows would be 1.6 s; one is 0.8 s plus connecting.
    assert!(waited >= window, "{waited:?}");
    assert!(waited < window * 3 / 2, "{waited:?}");
}

#[test]
fn opaque_traffic_crosses_mesh_tls() {
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    let port = backend.addr.port().to_string();
    let inbound = inbound_to(
        &pki,
        &server,
        backend.addr,
        &[(
            "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            port.as_str(),
        )],
    );
    let (outbound, _dir) = outbound_to(&pki, &client, inbound.inbound, SERVER);
    // CONNECT: a TCP tunnel through the outbound proxy, TLS between the proxies, and the
    // inbound side forwards the decrypted bytes untouched.
    let (code, out, err) = curl(&["-p", "-x", &via(&outbound), "http://web:80/tunnelled"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GET /tunnelled "), "{out}");
    let metrics = inbound.metrics();
    let client_id = format!("tls=\"true\",client_id=\"{CLIENT}\"");
    assert!(
        metric_sum(&metrics, "tcp_open_total", &["peer=\"src\"", &client_id]) >= 1.0,
        "{metrics}"
    );
    assert_eq!(metric_sum(&metrics, "request_total", &[]), 0.0, "{metrics}");
}

#[test]
fn replaced_certificate_files_are_served_within_a_second_and_bad_ones_ignored() {
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    let inbound = inbound_to(&pki, &server, backend.addr, &[]);
    assert_eq!(served_until(&pki, inbound.inbound), start_of(2100));

    pki.renew(&server, 2200);
    let started = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(3), || served_until(
            &pki,
            inbound.inbound
        ) == start_of(2200)),
        "the new certificate was not served; logs:\n{}",
        inbound.logs()
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        inbound.metric("identity_cert_expiration_timestamp_seconds "),
        Some(start_of(2200) as f64)
    );

    // A certificate for another identity is refused; the current one stays.
    let (cert, key) = pki.leaf(CLIENT, 2300);
    std::fs::write(&server.key, key).unwrap();
    std::fs::write(&server.cert, cert).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || inbound
            .logs()
            .contains("keeping the current certificate")),
        "{}",
        inbound.logs()
    );
    assert_eq!(served_until(&pki, inbound.inbound), start_of(2200));

    // And traffic still flows with it.
    let (outbound, _dir) = outbound_to(&pki, &client, inbound.inbound, SERVER);
    let (code, out, err) = curl(&["-x", &via(&outbound), "http://web/after"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GET /after "), "{out}");
}

#[test]
fn bad_identity_settings_exit_64_naming_them() {
    let pki = Pki::new();
    let server = pki.identity(SERVER, 2100);
    let mut cmd = support::command();
    cmd.env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
        .env("MESH_PROXY_IDENTITY_CERT_FILE", &server.cert)
        .env("MESH_PROXY_IDENTITY_KEY_FILE", &server.key)
        .env("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", Pki::new().anchors)
        .env("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", CLIENT);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MESH_PROXY_IDENTITY_CERT_FILE="), "{err}");
    assert!(err.contains(&format!("not {CLIENT}")), "{err}");
}

/// The expiry of the certificate a server presents for `SERVER`, read with a TLS client
/// that trusts the test CA.
fn served_until(pki: &Pki, addr: SocketAddr) -> u64 {
    let (stream, _) = mesh_client(pki, None, &[], addr);
    let leaf = stream.conn.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    cert.validity().not_after.timestamp() as u64
}

/// A TCP listener that keeps every byte it receives.
struct Recorder {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = bytes.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming().take(16) {
                let Ok(mut sock) = sock else { return };
                sock.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let mut buf = [0u8; 4096];
                // Read what the client sends until it pauses, answer nothing, then close.
                while let Ok(n @ 1..) = sock.read(&mut buf) {
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                    if sink.lock().unwrap().len() > 1 << 20 {
                        break;
                    }
                }
                let _ = sock.write_all(b"");
            }
        });
        Recorder { addr, bytes }
    }

    fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Linkerd's transport header for opaque traffic to `port`, assembled from its format: the
/// preface, a big-endian u32 length, and a protobuf message with field 1 (the port).
fn transport_header(port: u16) -> Vec<u8> {
    let mut msg = vec![0x08];
    let mut v = u32::from(port);
    while v >= 0x80 {
        msg.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    msg.push(v as u8);
    let mut wire = b"transport.l5d.io/v1\r\n\r\n".to_vec();
    wire.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    wire.extend_from_slice(&msg);
    wire
}

/// Mesh TLS to `SERVER` at `addr` as linkerd2-proxy opens it: `client`'s certificate (if
/// any), and the given ALPN protocols. Returns the stream and the negotiated protocol.
fn mesh_client(
    pki: &Pki,
    client: Option<&Identity>,
    alpn: &[&[u8]],
    addr: SocketAddr,
) -> (
    rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    Option<Vec<u8>>,
) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pki.anchors.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(id) => {
            let chain = rustls::pki_types::CertificateDer::pem_file_iter(&id.cert)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&id.key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from(SERVER).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.complete_io(&mut sock).unwrap();
    let negotiated = conn.alpn_protocol().map(<[u8]>::to_vec);
    (rustls::StreamOwned::new(conn, sock), negotiated)
}

/// Reads until the peer closes (or errs, or 5 s pass).
fn read_all(stream: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

const ALPN: &[u8] = b"transport.l5d.io/v1";

#[test]
fn a_transport_header_sends_opaque_traffic_to_its_port_not_the_dialled_one() {
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    // What the connection would reach without the header.
    let dialled = Recorder::start();
    let inbound = inbound_to(&pki, &server, dialled.addr, &[]);

    let (mut tls, negotiated) = mesh_client(&pki, Some(&client), &[ALPN], inbound.inbound);
    assert_eq!(negotiated.as_deref(), Some(ALPN));
    let mut wire = transport_header(backend.addr.port());
    wire.extend_from_slice(b"GET /via-header HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n");
    tls.write_all(&wire).unwrap();
    let answer = String::from_utf8_lossy(&read_all(&mut tls)).into_owned();
    assert!(
        answer.contains("GET /via-header "),
        "{answer}\n{}",
        inbound.logs()
    );
    assert_eq!(backend.saw("/via-header"), 1);
    assert!(dialled.bytes().is_empty());
    // Opaque TCP (no request metrics), labelled with the header's port and the client.
    let metrics = inbound.metrics();
    assert_eq!(
        client_opens(&metrics, backend.addr.port()),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric_sum(&metrics, "request_total", &[]), 0.0, "{metrics}");
    assert_eq!(
        inbound.metric("mesh_proxy_inbound_transport_header_refused_total"),
        Some(0.0)
    );

    // Without the ALPN protocol, nothing changes: HTTP to the dialled target.
    let (mut tls, negotiated) = mesh_client(&pki, Some(&client), &[], inbound.inbound);
    assert_eq!(negotiated, None);
    tls.write_all(b"GET /plain HTTP/1.1\r\nHost: web\r\n\r\n")
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || contains(
            &dialled.bytes(),
            b"GET /plain "
        )),
        "{}",
        inbound.logs()
    );
    assert_eq!(backend.saw("/plain"), 0);
}

#[test]
fn bad_or_refused_transport_headers_close_the_connection_and_are_counted() {
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    let inbound = inbound_to(&pki, &server, backend.addr, &[]);
    let port = backend.addr.port();
    let refused = || {
        inbound
            .metric("mesh_proxy_inbound_transport_header_refused_total")
            .unwrap()
    };

    let mut oversized = b"transport.l5d.io/v1\r\n\r\n".to_vec();
    oversized.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut named = b"transport.l5d.io/v1\r\n\r\n\x00\x00\x00\x00".to_vec();
    // Port, then name "web" (field 2).
    let mut msg = transport_header(port)[27..].to_vec();
    msg.extend_from_slice(b"\x12\x03web");
    named[23..27].copy_from_slice(&(msg.len() as u32).to_be_bytes());
    named.extend_from_slice(&msg);
    let cases: [(&str, Option<&Identity>, Vec<u8>); 5] = [
        ("oversized length", Some(&client), oversized),
        (
            "another preface",
            Some(&client),
            b"GET /x HTTP/1.1\r\n\r\n".to_vec(),
        ),
        (
            "truncated",
            Some(&client),
            transport_header(port)[..25].to_vec(),
        ),
        ("a gateway name", Some(&client), named),
        ("no client certificate", None, transport_header(port)),
    ];
    for (i, (case, id, bytes)) in cases.into_iter().enumerate() {
        let (mut tls, negotiated) = mesh_client(&pki, id, &[ALPN], inbound.inbound);
        assert_eq!(negotiated.as_deref(), Some(ALPN), "{case}");
        tls.write_all(&bytes).unwrap();
        if case != "truncated" {
            // Ignored: the proxy may have closed already.
            let _ = tls.write_all(b"GET /bad HTTP/1.1\r\nHost: web\r\n\r\n");
        } else {
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
            let _ = tls.sock.shutdown(std::net::Shutdown::Write);
        }
        let answer = read_all(&mut tls);
        assert!(
            answer.is_empty(),
            "{case}: {}",
            String::from_utf8_lossy(&answer)
        );
        assert!(
            eventually(Duration::from_secs(3), || refused() == (i + 1) as f64),
            "{case}: {}\n{}",
            refused(),
            inbound.logs()
        );
    }
    assert_eq!(backend.requests(), 0);
}

#[test]
fn an_outbound_proxy_sends_opaque_traffic_through_the_transport_header() {
    use support::destination::{Destination, IDENTITY, OPAQUE_TRANSPORT};
    const WEB: &str = "web.ns.svc.cluster.local:8080";
    let pki = Pki::new();
    let (server, client) = (pki.identity(SERVER, 2100), pki.identity(CLIENT, 2100));
    let backend = Backend::start();
    // The inbound proxy's own target: only a connection without the header reaches it.
    let dialled = Recorder::start();
    let inbound = inbound_to(&pki, &server, dialled.addr, &[]);
    // The endpoint is the backend's address; its proxy listens on the inbound port.
    let dst = Destination::start();
    let inbound_port = inbound.inbound.port().to_string();
    dst.set_labeled(
        WEB,
        &[],
        &[(
            backend.addr,
            &[
                (IDENTITY, SERVER),
                (OPAQUE_TRANSPORT, inbound_port.as_str()),
            ][..],
        )],
    );
    let dst_addr = dst.env();
    let outbound = start(
        &pki.env(&client),
        &[("LINKERD2_PROXY_DESTINATION_SVC_ADDR", dst_addr.as_str())],
    );
    // CONNECT: opaque TCP through the outbound proxy.
    let (code, out, err) = curl(&[
        "-p",
        "-x",
        &via(&outbound),
        &format!("http://{WEB}/with-header"),
    ]);
    assert_eq!(code, 0, "{err}\n{}\n{}", outbound.logs(), inbound.logs());
    assert!(out.contains("GET /with-header "), "{out}");
    assert_eq!(backend.saw("/with-header"), 1);
    assert!(dialled.bytes().is_empty());
    let metrics = inbound.metrics();
    assert_eq!(
        client_opens(&metrics, backend.addr.port()),
        1.0,
        "{metrics}"
    );
    let metrics = outbound.metrics();
    let server_id = format!("server_id=\"{SERVER}\"");
    assert_eq!(
        metric_sum(&metrics, "tcp_open_total", &["peer=\"dst\"", &server_id]),
        1.0,
        "{metrics}"
    );
}

/// Connections the client identity opened to `port`, by an inbound proxy's metrics.
fn client_opens(metrics: &str, port: u16) -> f64 {
    let port = format!("target_port=\"{port}\"");
    let client_id = format!("client_id=\"{CLIENT}\"");
    metric_sum(
        metrics,
        "tcp_open_total",
        &["peer=\"src\"", &port, &client_id],
    )
}
