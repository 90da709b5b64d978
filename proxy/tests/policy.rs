//! Inbound authorization policy through the real binary: the default policies, refused
//! HTTP (403 and `l5d-proxy-error`, gRPC status 7) and opaque TCP (closed), the counters,
//! require-identity ports, and policies from a scripted control plane that change while
//! the proxy runs.
//!
//! Clients are plaintext, so a policy that asks for a mesh identity refuses them. Where a
//! control plane's policy is tested, clients connect from 127.0.0.2: as Linkerd, policies
//! from the control plane always let 127.0.0.1 in.

// Test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::backend::Backend;
use support::policy::{PolicyServer, server, unauthenticated};
use support::{Proxy, RawResponse, eventually, metric_sum, parse_response};

/// Opens a connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// `GET /x` from `from`, on a connection of its own.
fn get_from(from: &str, to: SocketAddr) -> RawResponse {
    let mut s = connect_from(from, to);
    s.write_all(b"GET /x HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    parse_response(&buf).unwrap()
}

fn get(to: SocketAddr) -> RawResponse {
    get_from("127.0.0.1", to)
}

fn start(backend: &Backend, env: &[(&str, &str)]) -> Proxy {
    let fwd = backend.addr.to_string();
    let mut all = vec![("MESH_PROXY_INBOUND_FORWARD_ADDR", fwd.as_str())];
    all.extend_from_slice(env);
    Proxy::start(&all)
}

const ALLOW: &str = "inbound_http_authz_allow_total";
const DENY: &str = "inbound_http_authz_deny_total";

#[test]
fn default_policies_decide_for_a_plain_client_from_127_0_0_1() {
    let backend = Backend::start();
    // (policy, cluster networks, allowed)
    let cases = [
        ("all-unauthenticated", "10.0.0.0/8", true),
        ("all-authenticated", "127.0.0.0/8", false),
        ("cluster-unauthenticated", "127.0.0.0/8", true),
        ("cluster-unauthenticated", "10.0.0.0/8,fd00::/8", false),
        ("cluster-authenticated", "127.0.0.0/8", false),
        ("deny", "127.0.0.0/8", false),
        ("audit", "10.0.0.0/8", true),
    ];
    for (policy, networks, allowed) in cases {
        let proxy = start(
            &backend,
            &[
                ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", policy),
                ("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", networks),
            ],
        );
        let before = backend.requests();
        let res = get(proxy.inbound);
        let srv = format!("srv_name=\"{policy}\"");
        let text = proxy.metrics();
        let labels = [
            srv.as_str(),
            "route_name=\"default\"",
            "tls=\"no_identity\"",
        ];
        if allowed {
            assert_eq!(res.status, 200, "{policy} {networks}: {}", res.head);
            assert_eq!(backend.requests(), before + 1);
            assert_eq!(metric_sum(&text, ALLOW, &labels), 1.0, "{policy}:\n{text}");
            assert!(!text.contains(DENY), "{policy}:\n{text}");
            if policy == "audit" {
                assert!(
                    eventually(Duration::from_secs(5), || proxy
                        .logs()
                        .contains("request allowed by the audit policy")),
                    "{}",
                    proxy.logs()
                );
            }
        } else {
            assert_eq!(res.status, 403, "{policy} {networks}: {}", res.head);
            assert_eq!(
                res.header("l5d-proxy-error").as_deref(),
                Some("unauthorized request on route"),
                "{policy}"
            );
            assert_eq!(backend.requests(), before, "{policy}: nothing forwarded");
            assert_eq!(metric_sum(&text, DENY, &labels), 1.0, "{policy}:\n{text}");
            assert!(!text.contains(ALLOW), "{policy}:\n{text}");
            // A refusal is the client's affair: the backend's success rate stays.
            assert_eq!(
                metric_sum(
                    &text,
                    "response_total",
                    &[
                        "status_code=\"403\"",
                        "classification=\"success\"",
                        "error=\"forbidden\""
                    ]
                ),
                1.0,
                "{text}"
            );
        }
    }
}

#[test]
fn deny_keeps_the_admin_server_answering() {
    let backend = Backend::start();
    let proxy = start(
        &backend,
        &[("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny")],
    );
    assert_eq!(get(proxy.inbound).status, 403);
    for path in ["/ready", "/live", "/metrics"] {
        let res = support::http_request(
            proxy.admin,
            &format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"),
        )
        .unwrap();
        assert_eq!(res.status, 200, "{path}");
    }
}

#[test]
fn keep_alive_requests_are_each_checked_on_every_http_path() {
    let backend = Backend::start();
    let proxy = start(
        &backend,
        &[("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny")],
    );
    // Plain requests (the lean path), then one with a body (hyper's path), on one
    // connection that stays open after each refusal.
    let mut client = support::client::H1Client::connect(proxy.inbound);
    for _ in 0..3 {
        let res = client.get("/plain").unwrap();
        assert_eq!(res.status, 403);
        assert!(!client.closed);
    }
    let res = client.send("POST", "/body", b"hello").unwrap();
    assert_eq!(res.status, 403);
    assert_eq!(backend.requests(), 0);
    assert_eq!(metric_sum(&proxy.metrics(), DENY, &[]), 4.0);
}

#[test]
fn grpc_requests_are_refused_with_permission_denied() {
    let backend = Backend::start();
    let proxy = start(
        &backend,
        &[("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny")],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, grpc_status, error) = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(proxy.inbound).await.unwrap();
        let (send, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut send = send.ready().await.unwrap();
        let req = http::Request::post("http://web/pkg.Svc/Method")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, _) = send.send_request(req, true).unwrap();
        let response = response.await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        (
            response.status().as_u16(),
            header("grpc-status"),
            header("l5d-proxy-error"),
        )
    });
    assert_eq!(status, 200);
    assert_eq!(grpc_status.as_deref(), Some("7"));
    assert_eq!(error.as_deref(), Some("unauthorized request on route"));
    assert_eq!(backend.requests(), 0);
    assert_eq!(metric_sum(&proxy.metrics(), DENY, &[]), 1.0);
}

#[test]
fn refused_opaque_connections_are_closed_and_counted() {
    let backend = Backend::start();
    let port = backend.addr.port().to_string();
    let opaque = [(
        "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
        port.as_str(),
    )];

    let proxy = start(
        &backend,
        &[
            opaque[0],
            ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "all-authenticated"),
        ],
    );
    let mut s = connect_from("127.0.0.1", proxy.inbound);
    // The connection may be closed before or while this is written.
    let _ = s.write_all(b"GET /x HTTP/1.1\r\nHost: web\r\n\r\n");
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    assert!(
        read.is_err() || buf.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(backend.connections(), 0, "nothing reached the backend");
    let text = proxy.metrics();
    let labels = ["srv_name=\"all-authenticated\"", "tls=\"no_identity\""];
    assert_eq!(
        metric_sum(&text, "inbound_tcp_authz_deny_total", &labels),
        1.0,
        "{text}"
    );
    drop(proxy);

    let proxy = start(&backend, &[opaque[0]]);
    let res = get(proxy.inbound);
    assert_eq!(res.status, 200, "forwarded as opaque TCP");
    let text = proxy.metrics();
    let labels = [
        "srv_name=\"all-unauthenticated\"",
        "authz_name=\"all-unauthenticated\"",
    ];
    assert_eq!(
        metric_sum(&text, "inbound_tcp_authz_allow_total", &labels),
        1.0,
        "{text}"
    );
}

#[test]
fn require_identity_ports_refuse_plain_clients_while_other_ports_accept() {
    let strict = Backend::start();
    let open = Backend::start();
    let port = strict.addr.port().to_string();
    let env = [(
        "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
        port.as_str(),
    )];
    let to_strict = start(&strict, &env);
    let to_open = start(&open, &env);
    let res = get(to_strict.inbound);
    assert_eq!(res.status, 403, "{}", res.head);
    assert_eq!(
        metric_sum(
            &to_strict.metrics(),
            DENY,
            &["srv_name=\"all-authenticated\""]
        ),
        1.0
    );
    assert_eq!(get(to_open.inbound).status, 200);
    assert_eq!(
        metric_sum(
            &to_open.metrics(),
            ALLOW,
            &["srv_name=\"all-unauthenticated\""]
        ),
        1.0
    );
}

/// Under `audit`, a require-identity port stays `audit`, as Linkerd's policy controller
/// answers for it: a plaintext request is let in, counted under `audit` and logged.
#[test]
fn require_identity_ports_under_audit_admit_and_log_plain_clients() {
    let backend = Backend::start();
    let port = backend.addr.port().to_string();
    let proxy = start(
        &backend,
        &[
            ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "audit"),
            (
                "LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
                port.as_str(),
            ),
        ],
    );
    let res = get(proxy.inbound);
    assert_eq!(res.status, 200, "{}", res.head);
    assert_eq!(backend.requests(), 1);
    let text = proxy.metrics();
    let labels = ["srv_name=\"audit\"", "authz_name=\"audit\""];
    assert_eq!(metric_sum(&text, ALLOW, &labels), 1.0, "{text}");
    assert!(!text.contains(DENY), "{text}");
    assert!(
        eventually(Duration::from_secs(5), || proxy
            .logs()
            .contains("request allowed by the audit policy")),
        "{}",
        proxy.logs()
    );
}

#[test]
fn an_unreachable_control_plane_leaves_the_default() {
    let backend = Backend::start();
    let nowhere = support::closed_port().to_string();
    for (policy, status) in [("deny", 403), ("all-unauthenticated", 200)] {
        let proxy = start(
            &backend,
            &[
                ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", policy),
                ("LINKERD2_PROXY_POLICY_SVC_ADDR", &nowhere),
                (
                    "LINKERD2_PROXY_POLICY_WORKLOAD",
                    "{\"ns\":\"shop\",\"pod\":\"web-1\"}",
                ),
            ],
        );
        assert_eq!(
            get_from("127.0.0.2", proxy.inbound).status,
            status,
            "{policy}"
        );
    }
}

#[test]
fn control_plane_policies_replace_the_default_and_changes_apply_at_once() {
    let backend = Backend::start();
    let policies = PolicyServer::start();
    let port = backend.addr.port();
    let svc = policies.addr.to_string();
    let workload = "{\"ns\":\"shop\", \"pod\":\"web-1\"}\n";
    let proxy = start(
        &backend,
        &[
            ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny"),
            ("LINKERD2_PROXY_POLICY_SVC_ADDR", &svc),
            ("LINKERD2_PROXY_POLICY_WORKLOAD", workload),
        ],
    );
    // Before the control plane answers, the default holds.
    assert_eq!(get_from("127.0.0.2", proxy.inbound).status, 403);
    assert!(
        eventually(Duration::from_secs(5), || !policies.calls().is_empty()),
        "the proxy never asked about the port"
    );
    assert_eq!(policies.calls()[0], (workload.to_string(), u32::from(port)));

    policies.set(
        port,
        server("web-http", vec![unauthenticated("loopback", "127.0.0.0/8")]),
    );
    assert!(
        eventually(Duration::from_secs(5), || get_from(
            "127.0.0.2",
            proxy.inbound
        )
        .status
            == 200),
        "the control plane's policy never applied"
    );
    let text = proxy.metrics();
    assert!(
        metric_sum(
            &text,
            ALLOW,
            &[
                "srv_group=\"policy.linkerd.io\"",
                "srv_kind=\"server\"",
                "srv_name=\"web-http\"",
                "authz_kind=\"authorizationpolicy\"",
                "authz_name=\"loopback\"",
            ]
        ) >= 1.0,
        "{text}"
    );

    // A keep-alive connection opened under the old policy.
    let mut kept = std::io::BufReader::new(connect_from("127.0.0.2", proxy.inbound));
    let mut keep_alive = |path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: web\r\n\r\n");
        kept.get_mut().write_all(request.as_bytes()).unwrap();
        support::read_response(&mut kept).unwrap().status
    };
    assert_eq!(keep_alive("/before"), 200);

    policies.set(port, server("web-http", vec![]));
    let changed = Instant::now();
    let mut refused = None;
    while changed.elapsed() < Duration::from_secs(5) {
        if get_from("127.0.0.2", proxy.inbound).status == 403 {
            refused = Some(changed.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let refused = refused.expect("the new policy never applied");
    assert!(
        refused < Duration::from_secs(1),
        "applied after {refused:?}"
    );
    // The next request on the connection that was already open is refused too.
    assert_eq!(keep_alive("/after"), 403);
    // As Linkerd's, a control plane's policy lets localhost in (`kubectl port-forward`).
    assert_eq!(get_from("127.0.0.1", proxy.inbound).status, 200);
    eprintln!("policy change applied to new requests after {refused:?}");
}

#[test]
fn an_open_opaque_connection_is_closed_when_the_policy_revokes_it() {
    let backend = Backend::start();
    let policies = PolicyServer::start();
    let port = backend.addr.port();
    let opaque = port.to_string();
    let svc = policies.addr.to_string();
    let proxy = start(
        &backend,
        &[
            (
                "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
                &opaque,
            ),
            ("LINKERD2_PROXY_POLICY_SVC_ADDR", &svc),
            ("LINKERD2_PROXY_POLICY_WORKLOAD", "web-1"),
            // Watched from start-up, so the policy is there before the first connection.
            ("LINKERD2_PROXY_INBOUND_PORTS", &opaque),
        ],
    );
    policies.set(
        port,
        server("db", vec![unauthenticated("loopback", "127.0.0.0/8")]),
    );
    let labels = ["srv_name=\"db\"", "authz_name=\"loopback\""];
    assert!(
        eventually(Duration::from_secs(5), || {
            get_from("127.0.0.2", proxy.inbound).status == 200
                && metric_sum(&proxy.metrics(), "inbound_tcp_authz_allow_total", &labels) >= 1.0
        }),
        "the control plane's policy never applied:\n{}",
        proxy.metrics()
    );
    let mut open = std::io::BufReader::new(connect_from("127.0.0.2", proxy.inbound));
    open.get_mut()
        .write_all(b"GET /x HTTP/1.1\r\nHost: web\r\n\r\n")
        .unwrap();
    assert_eq!(support::read_response(&mut open).unwrap().status, 200);

    policies.set(port, server("db", vec![]));
    let mut rest = Vec::new();
    let started = Instant::now();
    let _ = open.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(5), "never closed");
    let text = proxy.metrics();
    assert_eq!(
        metric_sum(
            &text,
            "inbound_tcp_authz_terminate_total",
            &["srv_name=\"db\""]
        ),
        1.0,
        "{text}"
    );
}

#[test]
fn control_plane_routes_authorize_per_path() {
    let backend = Backend::start();
    let policies = PolicyServer::start();
    let port = backend.addr.port();
    let svc = policies.addr.to_string();
    let ports = port.to_string();
    let proxy = start(
        &backend,
        &[
            ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny"),
            ("LINKERD2_PROXY_POLICY_SVC_ADDR", &svc),
            ("LINKERD2_PROXY_POLICY_WORKLOAD", "web-1"),
            ("LINKERD2_PROXY_INBOUND_PORTS", &ports),
        ],
    );
    // The server lets nobody in; a probe route lets everyone GET /ready, as the routes
    // Linkerd's policy controller makes for kubelet probes.
    let srv = support::policy::with_routes(
        server("web-http", vec![]),
        vec![
            (
                "probe",
                "/ready",
                vec![unauthenticated("probe", "0.0.0.0/0")],
            ),
            ("app", "/x", vec![]),
        ],
    );
    policies.set(port, srv);
    let request = |path: &str| {
        let mut s = connect_from("127.0.0.2", proxy.inbound);
        let req = format!("GET {path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        parse_response(&buf).unwrap()
    };
    assert!(
        eventually(Duration::from_secs(5), || request("/ready").status == 200),
        "the probe route never applied"
    );
    assert_eq!(request("/x").status, 403);
    let res = request("/elsewhere");
    assert_eq!(res.status, 404);
    assert_eq!(
        res.header("l5d-proxy-error").as_deref(),
        Some("no route found for request")
    );
    let text = proxy.metrics();
    assert!(
        metric_sum(
            &text,
            ALLOW,
            &["route_name=\"probe\"", "authz_name=\"probe\""]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(&text, DENY, &["route_name=\"app\""]),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "inbound_http_route_not_found_total",
            &["srv_name=\"web-http\""]
        ),
        1.0,
        "{text}"
    );
}

/// The server-speaks-first check connects to the application for a client that is silent
/// for 50 ms; for a client the policy refuses, it does not.
#[test]
fn a_refused_silent_client_makes_no_connection_to_the_application() {
    let backend = Backend::start();
    let proxy = start(
        &backend,
        &[("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "deny")],
    );
    let mut s = connect_from("127.0.0.1", proxy.inbound);
    // Ten times the check's window: absence can only be seen by waiting.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(backend.connections(), 0);
    s.write_all(b"GET /x HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    assert_eq!(parse_response(&buf).unwrap().status, 403);
    assert_eq!(backend.connections(), 0);
}
