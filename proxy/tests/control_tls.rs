//! Mesh TLS to the control plane through the real binary: a proxy with a file identity
//! reaches its Destination and policy services through a second proxy that plays the
//! destination pod's sidecar (holding the destination controller's identity, terminating
//! mesh TLS and forwarding to a scripted server), and never in plaintext.
//!
//! The services are addressed as `localhost:PORT`: a bare `localhost` is not loopback to
//! the proxy (only `localhost.` and loopback IPs are, as in Linkerd), so mesh TLS applies.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::backend::Backend;
use support::certs::{Identity, Pki};
use support::client::H1Client;
use support::destination::Destination;
use support::policy::{PolicyServer, server, unauthenticated};
use support::replica::{HEADER, Replica};
use support::{Proxy, RawResponse, eventually, metric_sum, parse_response};

const CLIENT: &str = "client.ns.serviceaccount.identity.linkerd.cluster.local";
const DST: &str = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local";
const OTHER: &str = "web.ns.serviceaccount.identity.linkerd.cluster.local";
const WEB: &str = "web.ns.svc.cluster.local:8080";
const WORKLOAD: &str = "{\"ns\":\"ns\", \"pod\":\"client-1\"}\n";

fn start(env: &[(String, String)], more: &[(&str, &str)]) -> Proxy {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(more);
    Proxy::start(&all)
}

/// The destination pod's proxy: `id`'s certificate, its inbound side in front of `server`.
fn sidecar(pki: &Pki, id: &Identity, server: SocketAddr) -> Proxy {
    let fwd = server.to_string();
    start(&pki.env(id), &[("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd)])
}

/// A proxy with `CLIENT`'s certificate whose Destination service is `dst` and policy
/// service `policy` (`localhost:PORT`), both expected to be `name`.
fn client(pki: &Pki, dst: &str, policy: &str, name: &str, backend: &Backend) -> Proxy {
    let id = pki.identity(CLIENT, 2100);
    let fwd = backend.addr.to_string();
    let port = backend.addr.port().to_string();
    start(
        &pki.env(&id),
        &[
            ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", dst),
            ("LINKERD2_PROXY_DESTINATION_SVC_NAME", name),
            ("LINKERD2_PROXY_POLICY_SVC_ADDR", policy),
            ("LINKERD2_PROXY_POLICY_SVC_NAME", name),
            ("LINKERD2_PROXY_POLICY_WORKLOAD", WORKLOAD),
            ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny"),
            ("LINKERD2_PROXY_INBOUND_PORTS", &port),
            ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ],
    )
}

fn localhost(addr: SocketAddr) -> String {
    format!("localhost:{}", addr.port())
}

fn get_web(proxy: &Proxy) -> RawResponse {
    H1Client::connect(proxy.outbound)
        .get(&format!("http://{WEB}/"))
        .unwrap()
}

/// `GET /x` to `to` from 127.0.0.2: policies from the control plane always admit
/// 127.0.0.1, as Linkerd's do.
fn get_from_127_0_0_2(to: SocketAddr) -> RawResponse {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = "127.0.0.2:0".parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    parse_response(&buf).unwrap()
}

#[test]
fn discovery_and_policy_cross_mesh_tls_to_the_destination_pods_proxy() {
    let pki = Pki::new();
    let dst_id = pki.identity(DST, 2100);
    let web = Replica::start("web");
    let dst = Destination::start();
    dst.set(WEB, &[web.addr]);
    let policies = PolicyServer::start();
    let backend = Backend::start();
    policies.set(
        backend.addr.port(),
        server("web-http", vec![unauthenticated("loopback", "127.0.0.0/8")]),
    );
    let dst_sidecar = sidecar(&pki, &dst_id, dst.addr);
    let policy_sidecar = sidecar(&pki, &dst_id, policies.addr);
    let (dst_addr, policy_addr) = (
        localhost(dst_sidecar.inbound),
        localhost(policy_sidecar.inbound),
    );
    let client = client(&pki, &dst_addr, &policy_addr, DST, &backend);

    // Discovery: the name is answered by the Destination server behind the sidecar.
    let res = get_web(&client);
    assert_eq!(res.status, 200, "{res:?}\n{}", client.logs());
    assert_eq!(res.header(HEADER).as_deref(), Some("web"));
    assert!(dst.gets().contains(&WEB.to_string()), "{:?}", dst.gets());

    // Policy: the control plane's policy replaces the default `deny`.
    assert!(
        eventually(Duration::from_secs(10), || get_from_127_0_0_2(
            client.inbound
        )
        .status
            == 200),
        "the policy service's answer never applied\n{}",
        client.logs()
    );
    assert!(!policies.calls().is_empty());

    // Each sidecar terminated mesh TLS and saw the client's identity.
    let client_id = format!("tls=\"true\",client_id=\"{CLIENT}\"");
    for sidecar in [&dst_sidecar, &policy_sidecar] {
        let metrics = sidecar.metrics();
        assert!(
            metric_sum(&metrics, "tcp_open_total", &["peer=\"src\"", &client_id]) >= 1.0,
            "{metrics}"
        );
        assert!(
            metric_sum(
                &metrics,
                "request_total",
                &["direction=\"inbound\"", &client_id]
            ) >= 1.0,
            "{metrics}"
        );
        assert_eq!(
            metric_sum(
                &metrics,
                "tcp_open_total",
                &["peer=\"src\"", "tls=\"no_identity\""]
            ),
            0.0,
            "a plaintext connection reached the sidecar:\n{metrics}"
        );
    }
    let logs = client.logs();
    for (service, addr) in [("destination", &dst_addr), ("policy", &policy_addr)] {
        assert!(
            logs.contains(&format!(
                "the {service} service at {addr} is reached over mesh TLS as {DST}"
            )),
            "{logs}"
        );
    }
}

#[test]
fn a_service_with_another_identity_or_without_tls_is_never_asked() {
    let pki = Pki::new();
    let backend = Backend::start();

    // A TLS server whose certificate names another identity: the handshake fails on the
    // name, and no request follows. Both clients point at it.
    let (cert, key) = pki.leaf(OTHER, 2100);
    let impostor = TlsRecorder::start(&cert, &key);
    let addr = localhost(impostor.addr);
    let proxy = client(&pki, &addr, &addr, DST, &backend);
    assert_ne!(get_web(&proxy).status, 200);
    let failure =
        format!("mesh TLS to the destination service at {addr} failed (expecting identity {DST})");
    let policy_failure =
        format!("mesh TLS to the policy service at {addr} failed (expecting identity {DST})");
    // Retried with backoff: the failure is logged again.
    assert!(
        eventually(Duration::from_secs(10), || {
            let logs = proxy.logs();
            logs.matches(&failure).count() >= 2 && logs.contains(&policy_failure)
        }),
        "{}",
        proxy.logs()
    );
    let logs = proxy.logs();
    let line = logs.lines().find(|l| l.contains(&failure)).unwrap();
    assert!(line.contains("not valid for name"), "{line}");
    assert!(impostor.attempts() >= 2, "{} attempts", impostor.attempts());
    assert_eq!(impostor.handshakes(), 0, "a handshake completed");
    assert_eq!(
        impostor.received(),
        0,
        "application data reached the server"
    );
    drop(proxy);

    // Plaintext-only services: the proxy sends them a ClientHello, never a request.
    let web = Replica::start("web");
    let dst = Destination::start();
    dst.set(WEB, &[web.addr]);
    let policies = PolicyServer::start();
    let proxy = client(
        &pki,
        &localhost(dst.addr),
        &localhost(policies.addr),
        DST,
        &backend,
    );
    assert_ne!(get_web(&proxy).status, 200);
    let failure = format!(
        "mesh TLS to the destination service at {} failed",
        localhost(dst.addr)
    );
    assert!(
        eventually(Duration::from_secs(10), || proxy
            .logs()
            .matches(&failure)
            .count()
            >= 2),
        "{}",
        proxy.logs()
    );
    assert_eq!(dst.gets(), Vec::<String>::new());
    assert_eq!(dst.profile_gets(), Vec::<String>::new());
    assert_eq!(policies.calls(), Vec::new());
    assert_eq!(
        get_from_127_0_0_2(proxy.inbound).status,
        403,
        "the default holds"
    );
}

#[test]
fn without_an_identity_the_service_is_reached_in_plaintext() {
    let web = Replica::start("web");
    let dst = Destination::start();
    dst.set(WEB, &[web.addr]);
    let addr = localhost(dst.addr);
    let proxy = Proxy::start(&[
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", &addr),
        ("LINKERD2_PROXY_DESTINATION_SVC_NAME", DST),
    ]);
    let res = get_web(&proxy);
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header(HEADER).as_deref(), Some("web"));
    let logs = proxy.logs();
    let said = format!(
        "the proxy has no identity: the destination service at {addr} is reached in plaintext"
    );
    assert_eq!(logs.matches(&said).count(), 1, "{logs}");
}

/// A TLS 1.3 server presenting a given certificate whatever the SNI, counting connections,
/// completed handshakes and bytes of application data.
struct TlsRecorder {
    addr: SocketAddr,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    attempts: AtomicUsize,
    handshakes: AtomicUsize,
    received: Mutex<usize>,
}

impl TlsRecorder {
    fn start(cert_pem: &str, key_pem: &str) -> TlsRecorder {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { return };
                shared.attempts.fetch_add(1, Ordering::SeqCst);
                sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut failed = false;
                while conn.is_handshaking() {
                    if conn.complete_io(&mut sock).is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    continue;
                }
                shared.handshakes.fetch_add(1, Ordering::SeqCst);
                let mut tls = rustls::Stream::new(&mut conn, &mut sock);
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = tls.read(&mut buf) {
                    *shared.received.lock().unwrap() += n;
                }
            }
        });
        TlsRecorder { addr, counts }
    }

    fn attempts(&self) -> usize {
        self.counts.attempts.load(Ordering::SeqCst)
    }

    fn handshakes(&self) -> usize {
        self.counts.handshakes.load(Ordering::SeqCst)
    }

    fn received(&self) -> usize {
        *self.counts.received.lock().unwrap()
    }
}
