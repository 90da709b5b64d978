use std::net::SocketAddr;

use linkerd2_proxy_api::destination as pb;
use pb::update::Update;
use serde_json::json;

use super::*;

fn index(default_opaque: &str) -> Index {
    Index::new(Config {
        cluster_domain: "cluster.local".into(),
        trust_domain: "cluster.local".into(),
        control_plane_ns: "linkerd".into(),
        default_opaque_ports: PortSet::parse_numeric(default_opaque).unwrap(),
    })
}

fn service(index: &mut Index, spec: serde_json::Value, annotations: serde_json::Value) {
    let svc = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "annotations": annotations},
        "spec": spec,
    }))
    .unwrap();
    index.apply_service(&svc);
}

fn slice(index: &mut Index, name: &str, ports: serde_json::Value, endpoints: serde_json::Value) {
    let slice = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap();
    index.apply_slice(&slice);
}

fn pod(index: &mut Index, name: &str, ip: &str, meshed: bool, annotations: serde_json::Value) {
    let mut containers =
        vec![json!({"name": "app", "ports": [{"name": "http", "containerPort": 8080}]})];
    if meshed {
        containers.push(json!({"name": "linkerd-proxy", "env": [
            {"name": "LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "value": "0.0.0.0:4143"}]}));
    }
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "annotations": annotations,
                     "labels": {"pod-template-hash": "5d8f9", "linkerd.io/control-plane-ns": "linkerd"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "web-5d8f9", "uid": "u", "controller": true}]},
        "spec": {"serviceAccountName": "web-sa", "containers": containers},
        "status": {"podIP": ip, "podIPs": [{"ip": ip}]},
    }))
    .unwrap();
    index.apply_pod(&pod);
}

fn ep(ip: &str, pod: &str, ready: bool) -> serde_json::Value {
    json!({"addresses": [ip], "conditions": {"ready": ready},
           "targetRef": {"kind": "Pod", "name": pod, "namespace": "ns"}, "zone": "z1"})
}

/// A service `web` whose port 80 targets the named port `http` (8080 in the slice), with two
/// pods: `a` meshed, `b` not.
fn web() -> Index {
    let mut idx = index("");
    service(
        &mut idx,
        json!({"clusterIP": "10.96.0.10", "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}),
        json!({}),
    );
    pod(&mut idx, "a", "10.0.0.1", true, json!({}));
    pod(&mut idx, "b", "10.0.0.2", false, json!({}));
    slice(
        &mut idx,
        "web-1",
        json!([{"name": "web", "port": 8080}]),
        json!([ep("10.0.0.1", "a", true), ep("10.0.0.2", "b", true)]),
    );
    idx
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn current(rx: &EndpointsRx) -> Arc<Endpoints> {
    rx.borrow().clone()
}

#[test]
fn named_target_port_meshed_and_plain_pods() {
    let mut idx = web();
    let rx = idx
        .subscribe_endpoints("web.ns.svc.cluster.local:80")
        .unwrap();
    let eps = current(&rx);
    assert!(eps.exists);
    assert_eq!(eps.labels["namespace"], "ns");
    assert_eq!(eps.labels["service"], "web");
    assert_eq!(eps.addrs.len(), 2);

    let a = &eps.addrs[&addr("10.0.0.1:8080")];
    assert_eq!(a.weight, 10_000);
    assert_eq!(a.metric_labels["pod"], "a");
    assert_eq!(a.metric_labels["deployment"], "web");
    assert_eq!(a.metric_labels["pod_template_hash"], "5d8f9");
    assert_eq!(a.metric_labels["serviceaccount"], "web-sa");
    assert_eq!(a.metric_labels["zone"], "z1");
    let name = mesh_names::identity::workload("web-sa", "ns", "linkerd", "cluster.local");
    match &a.tls_identity.as_ref().unwrap().strategy {
        Some(pb::tls_identity::Strategy::DnsLikeIdentity(id)) => assert_eq!(id.name, name),
        other => panic!("unexpected identity {other:?}"),
    }
    let hint = a.protocol_hint.as_ref().unwrap();
    assert!(matches!(
        hint.protocol,
        Some(pb::protocol_hint::Protocol::H2(_))
    ));
    assert!(hint.opaque_transport.is_none());

    let b = &eps.addrs[&addr("10.0.0.2:8080")];
    assert!(b.tls_identity.is_none() && b.protocol_hint.is_none());
    assert_eq!(b.metric_labels["pod"], "b");

    // Trailing dot and the default port name the same target.
    let same = idx
        .subscribe_endpoints("web.ns.svc.cluster.local.")
        .unwrap();
    assert_eq!(*current(&same), *eps);
}

#[test]
fn not_ready_and_terminating_endpoints() {
    let mut idx = web();
    slice(
        &mut idx,
        "web-1",
        json!([{"name": "web", "port": 8080}]),
        json!([
            ep("10.0.0.1", "a", false),
            {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "terminating": true},
             "targetRef": {"kind": "Pod", "name": "b"}},
        ]),
    );
    let rx = idx
        .subscribe_endpoints("web.ns.svc.cluster.local:80")
        .unwrap();
    assert!(current(&rx).exists && current(&rx).addrs.is_empty());

    // Publishing not-ready addresses brings back the not-ready one, never the terminating one.
    service(
        &mut idx,
        json!({"clusterIP": "10.96.0.10", "publishNotReadyAddresses": true,
               "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}),
        json!({}),
    );
    let eps = current(&rx);
    assert_eq!(
        eps.addrs.keys().copied().collect::<Vec<_>>(),
        vec![addr("10.0.0.1:8080")]
    );
}

#[test]
fn opaque_ports_from_pod_and_defaults() {
    let mut idx = index("3306");
    service(
        &mut idx,
        json!({"ports": [{"port": 3306}, {"port": 80, "targetPort": 8080}]}),
        json!({}),
    );
    pod(
        &mut idx,
        "a",
        "10.0.0.1",
        true,
        json!({"config.linkerd.io/opaque-ports": "http"}),
    );
    pod(&mut idx, "b", "10.0.0.2", true, json!({}));
    slice(
        &mut idx,
        "web-1",
        json!([{"port": 3306}, {"port": 8080}]),
        json!([ep("10.0.0.1", "a", true), ep("10.0.0.2", "b", true)]),
    );
    let hint = |eps: &Endpoints, a: &str| eps.addrs[&addr(a)].protocol_hint.unwrap();
    let http = current(
        &idx.subscribe_endpoints("web.ns.svc.cluster.local:80")
            .unwrap(),
    );
    // Pod a names 8080 opaque (by container port name); pod b is HTTP there.
    let a = hint(&http, "10.0.0.1:8080");
    assert!(matches!(
        a.protocol,
        Some(pb::protocol_hint::Protocol::Opaque(_))
    ));
    assert_eq!(a.opaque_transport.unwrap().inbound_port, 4143);
    assert!(matches!(
        hint(&http, "10.0.0.2:8080").protocol,
        Some(pb::protocol_hint::Protocol::H2(_))
    ));
    // The default opaque ports apply to pods without the annotation only.
    let mysql = current(
        &idx.subscribe_endpoints("web.ns.svc.cluster.local:3306")
            .unwrap(),
    );
    assert!(matches!(
        hint(&mysql, "10.0.0.1:3306").protocol,
        Some(pb::protocol_hint::Protocol::H2(_))
    ));
    let b = hint(&mysql, "10.0.0.2:3306");
    assert!(matches!(
        b.protocol,
        Some(pb::protocol_hint::Protocol::Opaque(_))
    ));
    assert!(b.opaque_transport.is_some());
}

#[test]
fn headless_service_and_instances() {
    let mut idx = index("");
    service(
        &mut idx,
        json!({"clusterIP": "None", "ports": [{"port": 5432}]}),
        json!({}),
    );
    let with_host = |ip: &str, host: &str| json!({"addresses": [ip], "hostname": host, "conditions": {"ready": true}});
    slice(
        &mut idx,
        "db-1",
        json!([{"port": 5432}]),
        json!([with_host("10.0.0.5", "db-0"), with_host("10.0.0.6", "db-1")]),
    );
    let all = current(
        &idx.subscribe_endpoints("web.ns.svc.cluster.local:5432")
            .unwrap(),
    );
    assert_eq!(all.addrs.len(), 2);
    // No pod behind an address: no metadata at all.
    assert!(
        all.addrs
            .values()
            .all(|a| a.metric_labels.is_empty() && a.tls_identity.is_none())
    );
    let one = current(
        &idx.subscribe_endpoints("db-1.web.ns.svc.cluster.local:5432")
            .unwrap(),
    );
    assert_eq!(
        one.addrs.keys().copied().collect::<Vec<_>>(),
        vec![addr("10.0.0.6:5432")]
    );
}

#[test]
fn lookups_by_ip_and_errors() {
    let mut idx = web();
    let by_cluster_ip = current(&idx.subscribe_endpoints("10.96.0.10:80").unwrap());
    assert_eq!(by_cluster_ip.addrs.len(), 2);
    let by_pod_ip = current(&idx.subscribe_endpoints("10.0.0.1:8080").unwrap());
    assert_eq!(by_pod_ip.addrs.len(), 1);
    assert!(
        by_pod_ip.addrs[&addr("10.0.0.1:8080")]
            .tls_identity
            .is_some()
    );

    let err = |idx: &mut Index, path: &str| idx.subscribe_endpoints(path).err().unwrap();
    assert!(matches!(
        err(&mut idx, "10.9.9.9:80"),
        LookupError::InvalidArgument(_)
    ));
    assert_eq!(
        err(&mut idx, "nope.ns.svc.cluster.local:80"),
        LookupError::NotFound("Service nope.ns not found".into())
    );
    for bad in [
        "example.com:80",
        "web.ns.svc.cluster.local:0",
        "web.ns.svc.cluster.local:x",
        "",
    ] {
        assert!(
            matches!(err(&mut idx, bad), LookupError::InvalidArgument(_)),
            "{bad}"
        );
    }
}

#[test]
fn updates_follow_slices_pods_and_services() {
    let mut idx = web();
    let mut rx = idx
        .subscribe_endpoints("web.ns.svc.cluster.local:80")
        .unwrap();
    let first = rx.borrow_and_update().clone();
    let adds = diff(None, &first);
    assert!(
        matches!(&adds[..], [pb::Update { update: Some(Update::Add(set)) }] if set.addrs.len() == 2)
    );

    // One endpoint leaves the slice: one Remove.
    slice(
        &mut idx,
        "web-1",
        json!([{"name": "web", "port": 8080}]),
        json!([ep("10.0.0.1", "a", true)]),
    );
    assert!(rx.has_changed().unwrap());
    let second = rx.borrow_and_update().clone();
    let updates = diff(Some(&first), &second);
    assert!(
        matches!(&updates[..], [pb::Update { update: Some(Update::Remove(set)) }]
        if set.addrs == vec![tcp_address(addr("10.0.0.2:8080"))])
    );

    // An endpoint whose pod is not known yet appears with the pod.
    slice(
        &mut idx,
        "web-2",
        json!([{"name": "web", "port": 8080}]),
        json!([ep("10.0.0.3", "c", true)]),
    );
    assert!(!rx.has_changed().unwrap());
    pod(&mut idx, "c", "10.0.0.3", true, json!({}));
    let third = rx.borrow_and_update().clone();
    assert!(
        matches!(&diff(Some(&second), &third)[..], [pb::Update { update: Some(Update::Add(set)) }] if set.addrs.len() == 1)
    );

    // An unrelated pod changes nothing.
    pod(&mut idx, "z", "10.0.0.9", true, json!({}));
    assert!(!rx.has_changed().unwrap());

    // The service goes away.
    idx.delete_service(&ServiceRef {
        namespace: "ns".into(),
        name: "web".into(),
    });
    let gone = rx.borrow_and_update().clone();
    assert!(matches!(
        &diff(Some(&third), &gone)[..],
        [pb::Update {
            update: Some(Update::NoEndpoints(pb::NoEndpoints { exists: false }))
        }]
    ));
}

#[test]
fn empty_services_say_no_endpoints_exist() {
    let mut idx = index("");
    service(&mut idx, json!({"ports": [{"port": 80}]}), json!({}));
    let eps = current(&idx.subscribe_endpoints("web.ns.svc.cluster.local").unwrap());
    assert!(matches!(
        &diff(None, &eps)[..],
        [pb::Update {
            update: Some(Update::NoEndpoints(pb::NoEndpoints { exists: true }))
        }]
    ));
}

fn profile_object(idx: &mut Index, ns: &str, spec: serde_json::Value) {
    idx.apply_profile(
        ServiceRef {
            namespace: ns.into(),
            name: "web.ns.svc.cluster.local".into(),
        },
        Some(&spec),
    );
}

#[test]
fn profiles_translate_routes_budgets_and_opaque_ports() {
    let mut idx = web();
    let rx = idx
        .subscribe_profile("web.ns.svc.cluster.local:80", "")
        .unwrap();
    let default = rx.borrow().clone();
    assert_eq!(default.fully_qualified_name, "web.ns.svc.cluster.local");
    assert!(default.routes.is_empty() && !default.opaque_protocol);
    assert_eq!(default.retry_budget, Some(profile::default_retry_budget()));

    profile_object(
        &mut idx,
        "ns",
        json!({
            "routes": [{
                "name": "GET /books/{id}",
                "condition": {"method": "GET", "pathRegex": "/books/\\d+"},
                "responseClasses": [{"condition": {"status": {"min": 500, "max": 599}}, "isFailure": true}],
                "isRetryable": true,
                "timeout": "300ms",
            }, {
                "name": "not-post",
                "condition": {"not": {"method": "POST"}, "any": [{"pathRegex": "/a"}, {"pathRegex": "/b"}]},
            }],
            "retryBudget": {"retryRatio": 0.5, "minRetriesPerSecond": 3, "ttl": "1m"},
        }),
    );
    let p = rx.borrow().clone();
    assert_eq!(p.routes.len(), 2);
    let r = &p.routes[0];
    assert_eq!(r.metrics_labels["route"], "GET /books/{id}");
    assert!(r.is_retryable);
    assert_eq!(
        r.timeout,
        Some(prost_types::Duration {
            seconds: 0,
            nanos: 300_000_000
        })
    );
    use pb::request_match::Match;
    match &r.condition.as_ref().unwrap().r#match {
        Some(Match::All(seq)) => {
            assert!(matches!(seq.matches[0].r#match, Some(Match::Method(_))));
            assert!(
                matches!(&seq.matches[1].r#match, Some(Match::Path(p)) if p.regex == "/books/\\d+")
            );
        }
        other => panic!("unexpected condition {other:?}"),
    }
    assert!(r.response_classes[0].is_failure);
    assert!(
        matches!(&r.response_classes[0].condition.as_ref().unwrap().r#match,
        Some(pb::response_match::Match::Status(s)) if s.min == 500 && s.max == 599)
    );
    match &p.routes[1].condition.as_ref().unwrap().r#match {
        Some(Match::All(seq)) => {
            assert!(matches!(seq.matches[0].r#match, Some(Match::Any(_))));
            assert!(matches!(seq.matches[1].r#match, Some(Match::Not(_))));
        }
        other => panic!("unexpected condition {other:?}"),
    }
    let budget = p.retry_budget.unwrap();
    assert_eq!(
        (budget.retry_ratio, budget.min_retries_per_second),
        (0.5, 3)
    );
    assert_eq!(
        budget.ttl,
        Some(prost_types::Duration {
            seconds: 60,
            nanos: 0
        })
    );

    // The client's namespace wins over the service's.
    profile_object(
        &mut idx,
        "client",
        json!({"routes": [{"name": "mine", "condition": {"pathRegex": "/"}}]}),
    );
    let from_client = idx
        .subscribe_profile("web.ns.svc.cluster.local:80", r#"{"ns":"client"}"#)
        .unwrap();
    assert_eq!(
        from_client.borrow().routes[0].metrics_labels["route"],
        "mine"
    );
    assert_eq!(rx.borrow().routes.len(), 2);

    // Opaque ports on the service make its profile opaque.
    service(
        &mut idx,
        json!({"clusterIP": "10.96.0.10", "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}),
        json!({"config.linkerd.io/opaque-ports": "80"}),
    );
    assert!(rx.borrow().opaque_protocol);
    // So is a pod's DNS name under the service, on that port and for that client.
    let by_pod = idx
        .subscribe_profile("web-0.web.ns.svc.cluster.local:80", r#"{"ns":"client"}"#)
        .unwrap();
    assert!(by_pod.borrow().opaque_protocol);
    assert_eq!(by_pod.borrow().routes[0].metrics_labels["route"], "mine");
    let other_port = idx
        .subscribe_profile("web-0.web.ns.svc.cluster.local:8080", "")
        .unwrap();
    assert!(!other_port.borrow().opaque_protocol);

    // An invalid profile is served as the default; deleting it too.
    profile_object(
        &mut idx,
        "ns",
        json!({"routes": [{"name": "x", "condition": {}}]}),
    );
    assert!(rx.borrow().routes.is_empty());
}

#[test]
fn profiles_by_ip() {
    let mut idx = web();
    let svc = idx.subscribe_profile("10.96.0.10:80", "").unwrap();
    assert_eq!(
        svc.borrow().fully_qualified_name,
        "web.ns.svc.cluster.local"
    );
    let pod = idx.subscribe_profile("10.0.0.1:8080", "").unwrap();
    let p = pod.borrow().clone();
    assert!(p.fully_qualified_name.is_empty());
    let endpoint = p.endpoint.clone().unwrap();
    assert_eq!(endpoint.addr, Some(tcp_address(addr("10.0.0.1:8080"))));
    assert!(endpoint.tls_identity.is_some());
    let unknown = idx.subscribe_profile("192.0.2.1:80", "").unwrap();
    let u = unknown.borrow().clone();
    assert!(u.endpoint.clone().unwrap().tls_identity.is_none());
}

#[test]
fn context_tokens() {
    assert_eq!(
        context_namespace(r#"{"ns":"emojivoto","nodeName":"n"}"#).as_deref(),
        Some("emojivoto")
    );
    assert_eq!(context_namespace("ns:old").as_deref(), Some("old"));
    assert_eq!(context_namespace("garbage"), None);
    assert_eq!(context_namespace(""), None);
}

#[test]
fn closed_watches_are_swept() {
    let mut idx = web();
    for i in 0..500 {
        let _ = idx.subscribe_profile(&format!("s{i}.ns.svc.cluster.local:80"), "");
    }
    assert!(idx.watch_count() < 200, "{}", idx.watch_count());
}
