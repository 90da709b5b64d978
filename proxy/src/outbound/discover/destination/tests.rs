//! The client against a scripted Destination server on 127.0.0.1.

mod profiles;
mod server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use linkerd2_proxy_api::destination as api;
use linkerd2_proxy_api::destination::update::Update as Kind;
use tokio::sync::watch;

use super::*;
use crate::config::{ControlAddr, parse_networks, parse_suffixes};
use crate::outbound::discover::{Backend, Endpoint};
use server::Server;

const WAIT: Duration = Duration::from_secs(10);
const WEB: &str = "web.ns.svc.cluster.local:8080";

/// Timers that never expire during a test unless it wants them to, and fast reconnects.
fn timing(answer_timeout: Duration) -> Timing {
    Timing {
        answer_timeout,
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
    }
}

fn config(addr: SocketAddr) -> DestinationConfig {
    DestinationConfig {
        addr: ControlAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
        },
        context: r#"{"ns":"client-ns"}"#.into(),
        profile_suffixes: parse_suffixes("svc.cluster.local.").unwrap(),
        profile_networks: parse_networks("10.0.0.0/8").unwrap(),
        identity: None,
    }
}

fn control_plane(server: &Server, answer_timeout: Duration) -> Arc<ControlPlane> {
    ControlPlane::with_timing(&config(server.addr), None, timing(answer_timeout)).unwrap()
}

fn web() -> Logical {
    Logical::Name("web.ns.svc.cluster.local".into(), 8080)
}

/// Waits, with a deadline, until the published answer satisfies `ok`.
async fn until(
    rx: &mut watch::Receiver<Arc<Destination>>,
    what: &str,
    ok: impl Fn(&Destination) -> bool,
) -> Arc<Destination> {
    let wait = async {
        loop {
            let current = rx.borrow_and_update().clone();
            if ok(&current) {
                return current;
            }
            rx.changed().await.expect("the source is alive");
        }
    };
    match tokio::time::timeout(WAIT, wait).await {
        Ok(d) => d,
        Err(_) => panic!(
            "timed out waiting for {what}; last answer {:?}",
            rx.borrow()
        ),
    }
}

fn backends(d: &Destination) -> &[Backend] {
    match &d.resolution {
        Resolution::Backends(b) => b,
        _ => &[],
    }
}

fn addrs(b: &Backend) -> Vec<SocketAddr> {
    b.endpoints.iter().map(|e| e.addr).collect()
}

fn tcp(addr: &str) -> linkerd2_proxy_api::net::TcpAddress {
    addr.parse::<SocketAddr>().unwrap().into()
}

fn weighted(addr: &str, labels: &[(&str, &str)]) -> api::WeightedAddr {
    api::WeightedAddr {
        addr: Some(tcp(addr)),
        weight: 10_000,
        metric_labels: map(labels),
        ..Default::default()
    }
}

fn map(labels: &[(&str, &str)]) -> HashMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn add(
    labels: &[(&str, &str)],
    addrs: Vec<api::WeightedAddr>,
) -> Result<api::Update, tonic::Status> {
    Ok(api::Update {
        update: Some(Kind::Add(api::WeightedAddrSet {
            addrs,
            metric_labels: map(labels),
        })),
    })
}

fn remove(addrs: &[&str]) -> Result<api::Update, tonic::Status> {
    Ok(api::Update {
        update: Some(Kind::Remove(api::AddrSet {
            addrs: addrs.iter().map(|a| tcp(a)).collect(),
        })),
    })
}

fn no_endpoints(exists: bool) -> Result<api::Update, tonic::Status> {
    Ok(api::Update {
        update: Some(Kind::NoEndpoints(api::NoEndpoints { exists })),
    })
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn adds_and_removes_reach_the_receiver() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let cp = control_plane(&server, WAIT * 10);
    let mut rx = cp.resolve(&web()).expect("a cluster name is asked");
    assert!(matches!(rx.borrow().resolution, Resolution::Pending));

    let (req, updates) = server.get(WEB).await;
    assert_eq!(req.context_token, r#"{"ns":"client-ns"}"#);
    assert_eq!(req.scheme, "k8s");
    let mut meshed = weighted("10.1.0.1:8080", &[("pod", "web-1"), ("service", "own")]);
    meshed.tls_identity = Some(api::TlsIdentity {
        strategy: Some(api::tls_identity::Strategy::DnsLikeIdentity(
            api::tls_identity::DnsLikeIdentity {
                name: "web.ns.serviceaccount.identity.linkerd.cluster.local".into(),
            },
        )),
        server_name: None,
    });
    meshed.protocol_hint = Some(api::ProtocolHint {
        protocol: Some(api::protocol_hint::Protocol::H2(api::protocol_hint::H2 {})),
        opaque_transport: Some(api::protocol_hint::OpaqueTransport { inbound_port: 4143 }),
    });
    let set_labels = [("namespace", "ns"), ("service", "web")];
    updates
        .send(add(
            &set_labels,
            vec![meshed, weighted("10.1.0.2:8080", &[])],
        ))
        .unwrap();
    let d = until(&mut rx, "two endpoints", |d| {
        backends(d).first().is_some_and(|b| b.endpoints.len() == 2)
    })
    .await;
    let b = &backends(&d)[0];
    assert_eq!(&*b.name, WEB);
    assert_eq!(backends(&d).len(), 1);
    let e1 = &b.endpoints[0];
    assert_eq!(e1.addr, sock("10.1.0.1:8080"));
    assert_eq!(
        e1.identity.as_deref(),
        Some("web.ns.serviceaccount.identity.linkerd.cluster.local")
    );
    assert!(e1.h2_hint);
    assert_eq!(e1.opaque_transport, Some(4143));
    let labels: Vec<(&str, &str)> = e1.labels.iter().map(|(k, v)| (&**k, &**v)).collect();
    assert_eq!(
        labels,
        [
            ("dst_namespace", "ns"),
            ("dst_pod", "web-1"),
            ("dst_service", "own")
        ],
        "the address's labels win over the set's, all prefixed and sorted"
    );
    let e2 = &b.endpoints[1];
    assert_eq!(
        *e2,
        Endpoint {
            addr: sock("10.1.0.2:8080"),
            identity: None,
            h2_hint: false,
            opaque_transport: None,
            labels: e2.labels.clone(),
        }
    );
    assert_eq!(e2.labels.len(), 2);

    // A second watcher shares the stream and sees the same answer.
    let rx2 = cp.resolve(&web()).unwrap();
    assert!(Arc::ptr_eq(&rx2.borrow(), &rx.borrow()));

    updates.send(remove(&["10.1.0.1:8080"])).unwrap();
    let d = until(&mut rx, "one endpoint left", |d| {
        backends(d).first().is_some_and(|b| b.endpoints.len() == 1)
    })
    .await;
    assert_eq!(addrs(&backends(&d)[0]), [sock("10.1.0.2:8080")]);
    updates
        .send(add(&set_labels, vec![weighted("10.1.0.3:8080", &[])]))
        .unwrap();
    let d = until(&mut rx, "an endpoint added", |d| {
        backends(d).first().is_some_and(|b| b.endpoints.len() == 2)
    })
    .await;
    assert_eq!(
        addrs(&backends(&d)[0]),
        [sock("10.1.0.2:8080"), sock("10.1.0.3:8080")]
    );
}

#[tokio::test]
async fn which_targets_are_asked() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let cp = control_plane(&server, WAIT * 10);
    assert!(
        cp.resolve(&Logical::Name("example.com".into(), 80))
            .is_none()
    );
    assert!(cp.resolve(&Logical::Name("web.ns".into(), 80)).is_none());
    assert!(cp.resolve(&Logical::Addr(sock("192.168.1.1:80"))).is_none());
    let mut rx = cp.resolve(&Logical::Addr(sock("10.2.3.4:8080"))).unwrap();
    let (_, updates) = server.get("10.2.3.4:8080").await;
    let _profile = server.profile("10.2.3.4:8080").await;
    updates
        .send(add(&[], vec![weighted("10.9.9.9:8080", &[])]))
        .unwrap();
    let d = until(&mut rx, "the address's endpoints", |d| {
        !backends(d).is_empty()
    })
    .await;
    assert_eq!(&*backends(&d)[0].name, "10.2.3.4:8080");
    // A name with a trailing dot is asked without it.
    let _rx = cp
        .resolve(&Logical::Name("api.ns.svc.cluster.local.".into(), 80))
        .unwrap();
    let _ = server.get("api.ns.svc.cluster.local:80").await;
}

#[tokio::test]
async fn no_endpoints_and_refusals() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let cp = control_plane(&server, WAIT * 10);
    let mut rx = cp.resolve(&web()).unwrap();
    let (_, updates) = server.get(WEB).await;
    updates.send(no_endpoints(true)).unwrap();
    let d = until(&mut rx, "an empty set", |d| !backends(d).is_empty()).await;
    assert!(backends(&d)[0].endpoints.is_empty(), "exists: fail fast");
    updates.send(no_endpoints(false)).unwrap();
    until(&mut rx, "unknown", |d| d.resolution == Resolution::Unknown).await;
    updates
        .send(add(&[], vec![weighted("10.1.0.1:8080", &[])]))
        .unwrap();
    until(&mut rx, "endpoints again", |d| !backends(d).is_empty()).await;

    // A refused lookup is unknown, and asked again later.
    updates
        .send(Err(tonic::Status::invalid_argument("not a service")))
        .unwrap();
    until(&mut rx, "unknown after a refusal", |d| {
        d.resolution == Resolution::Unknown
    })
    .await;
    let (_, again) = server.get(WEB).await;
    again.send(no_endpoints(true)).unwrap();
    until(&mut rx, "answered after retrying", |d| {
        !backends(d).is_empty()
    })
    .await;
}

#[tokio::test]
async fn never_answered_is_unknown() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let cp = control_plane(&server, Duration::from_millis(200));
    let mut rx = cp.resolve(&web()).unwrap();
    let (_silent_get, _) = server.get(WEB).await;
    let _silent_profile = server.profile(WEB).await;
    let started = tokio::time::Instant::now();
    until(&mut rx, "unknown after the answer timeout", |d| {
        d.resolution == Resolution::Unknown
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unreachable_is_unknown_at_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    // An answer timeout longer than the wait: only the failed connection can make it unknown.
    let cp = ControlPlane::with_timing(&config(addr), None, timing(WAIT * 10)).unwrap();
    let mut rx = cp.resolve(&web()).unwrap();
    until(&mut rx, "unknown", |d| d.resolution == Resolution::Unknown).await;
}

#[tokio::test]
async fn restart_keeps_the_last_answer_and_reconnects() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let addr = server.addr;
    let cp = control_plane(&server, Duration::from_millis(100));
    let mut rx = cp.resolve(&web()).unwrap();
    let (_, updates) = server.get(WEB).await;
    updates
        .send(add(&[], vec![weighted("10.1.0.1:8080", &[])]))
        .unwrap();
    until(&mut rx, "the first answer", |d| !backends(d).is_empty()).await;
    server.kill();

    // While the port refuses the gRPC handshake, the proxy keeps trying.
    let down = tokio::net::TcpListener::bind(addr).await.unwrap();
    for attempt in 0..3 {
        let accepted = tokio::time::timeout(WAIT, down.accept()).await;
        assert!(accepted.is_ok(), "reconnection attempt {attempt} in time");
    }
    drop(down);
    let d = rx.borrow().clone();
    assert_eq!(
        backends(&d).first().map(addrs),
        Some(vec![sock("10.1.0.1:8080")]),
        "the last answer is kept while the control plane is down, well past the answer timeout"
    );

    let mut server = Server::start(addr);
    let (_, updates) = server.get(WEB).await;
    updates
        .send(add(&[], vec![weighted("10.1.0.2:8080", &[])]))
        .unwrap();
    let d = until(&mut rx, "the new server's answer", |d| {
        backends(d)
            .first()
            .is_some_and(|b| addrs(b) == [sock("10.1.0.2:8080")])
    })
    .await;
    assert_eq!(
        backends(&d)[0].endpoints.len(),
        1,
        "a new stream replaces the old set"
    );
}

#[tokio::test]
async fn dst_overrides_become_weighted_backends() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let cp = control_plane(&server, WAIT * 10);
    let mut rx = cp.resolve(&web()).unwrap();
    let (_, web_updates) = server.get(WEB).await;
    web_updates
        .send(add(&[], vec![weighted("10.1.0.1:8080", &[])]))
        .unwrap();
    until(&mut rx, "the service's own endpoints", |d| {
        !backends(d).is_empty()
    })
    .await;

    let profiles = server.profile(WEB).await;
    let split = |dsts: &[(&str, u32)]| api::DestinationProfile {
        dst_overrides: dsts
            .iter()
            .map(|(a, w)| api::WeightedDst {
                authority: a.to_string(),
                weight: *w,
                backend_ref: None,
            })
            .collect(),
        ..Default::default()
    };
    let (v1, v2) = (
        "web-v1.ns.svc.cluster.local:8080",
        "web-v2.ns.svc.cluster.local:8080",
    );
    profiles
        .send(Ok(split(&[(v1, 900), (v2, 100), ("unused:80", 0)])))
        .unwrap();
    let (_, v1_updates) = server.get(v1).await;
    let (_, v2_updates) = server.get(v2).await;
    v1_updates
        .send(add(&[], vec![weighted("10.2.0.1:8080", &[])]))
        .unwrap();
    v1_updates
        .send(add(&[], vec![weighted("10.2.0.2:8080", &[])]))
        .unwrap();
    v2_updates
        .send(add(&[], vec![weighted("10.3.0.1:8080", &[])]))
        .unwrap();
    let d = until(&mut rx, "a split", |d| backends(d).len() == 2).await;
    let b = backends(&d);
    assert_eq!((&*b[0].name, b[0].weight), (v1, 900));
    assert_eq!((&*b[1].name, b[1].weight), (v2, 100));
    assert_eq!(addrs(&b[1]), [sock("10.3.0.1:8080")]);
    let d = until(&mut rx, "both of v1's endpoints", |d| {
        backends(d).first().is_some_and(|b| b.endpoints.len() == 2)
    })
    .await;
    assert!(d.profile.is_some());

    // The split removed: back to the service's own endpoints.
    profiles.send(Ok(split(&[]))).unwrap();
    let d = until(&mut rx, "one backend again", |d| backends(d).len() == 1).await;
    assert_eq!(&*backends(&d)[0].name, WEB);
    assert_eq!(addrs(&backends(&d)[0]), [sock("10.1.0.1:8080")]);
}

#[tokio::test]
async fn the_last_receiver_stops_the_streams() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let cp = control_plane(&server, WAIT * 10);
    let rx = cp.resolve(&web()).unwrap();
    let (_, updates) = server.get(WEB).await;
    drop(rx);
    tokio::time::timeout(WAIT, updates.closed())
        .await
        .expect("the stream is closed once nobody watches the target");
    // Asked again, the target is watched afresh.
    let _rx = cp.resolve(&web()).unwrap();
    let _ = server.get(WEB).await;
}

#[tokio::test]
async fn the_service_address_may_be_a_name() {
    let mut server = Server::start(sock("127.0.0.1:0"));
    let mut config = config(server.addr);
    config.addr.host = "localhost".into();
    let cp = ControlPlane::with_timing(&config, None, timing(WAIT * 10)).unwrap();
    let mut rx = cp.resolve(&web()).unwrap();
    let (_, updates) = server.get(WEB).await;
    updates.send(no_endpoints(true)).unwrap();
    until(&mut rx, "an answer through a looked-up name", |d| {
        !backends(d).is_empty()
    })
    .await;
}

#[test]
fn an_opaque_transport_hint_outside_the_port_range_is_ignored() {
    let with_port = |inbound_port| {
        let mut addr = weighted("10.1.0.1:8080", &[]);
        addr.protocol_hint = Some(api::ProtocolHint {
            protocol: None,
            opaque_transport: Some(api::protocol_hint::OpaqueTransport { inbound_port }),
        });
        endpoints::endpoint(&addr, &HashMap::new())
            .unwrap()
            .opaque_transport
    };
    assert_eq!(with_port(4143), Some(4143));
    assert_eq!(with_port(0), None);
    assert_eq!(with_port(65_536), None);
}
