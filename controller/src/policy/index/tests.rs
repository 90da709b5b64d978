use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::*;

fn config(default_policy: DefaultInboundPolicy) -> Config {
    Config {
        cluster_networks: Net::parse_list("10.0.0.0/8,fd00::/8").unwrap(),
        default_policy,
        default_opaque_ports: PortSet::parse_numeric("3306").unwrap(),
        identity: IdentityDomain {
            control_plane_ns: "linkerd".into(),
            trust_domain: "cluster.local".into(),
        },
    }
}

fn pod(name: &str, annotations: Value, containers: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"},
                     "annotations": annotations},
        "spec": {"containers": containers},
    }))
    .unwrap()
}

fn web_pod() -> Pod {
    pod(
        "web-1",
        json!({}),
        json!([
            {"name": "app", "image": "web",
             "ports": [{"name": "http", "containerPort": 8080},
                       {"name": "dns", "containerPort": 53, "protocol": "UDP"}],
             "readinessProbe": {"httpGet": {"path": "/ready?full=1", "port": "http"}},
             "livenessProbe": {"httpGet": {"port": 8080}}},
            {"name": "sidecar", "image": "s", "ports": [{"name": "http", "containerPort": 9090}]},
        ]),
    )
}

fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    object_in("shop", kind, name, spec)
}

fn object_in(ns: &str, kind: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "policy.linkerd.io/v1beta3", "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": {"tier": "front"}},
        "spec": spec,
    }))
    .unwrap()
}

fn index_with_pod(default_policy: DefaultInboundPolicy) -> Index {
    let mut index = Index::new(config(default_policy));
    index.apply_pod(&web_pod());
    index
}

fn all_networks() -> Vec<NetworkMatch> {
    NetworkMatch::everywhere()
}

fn cluster_networks() -> Vec<NetworkMatch> {
    config(DefaultInboundPolicy::Deny)
        .cluster_networks
        .into_iter()
        .map(NetworkMatch::from)
        .collect()
}

fn any_identity() -> Authentication {
    Authentication::TlsAuthenticated(vec![IdentityMatch::Suffix(vec![])])
}

fn authz(reference: AuthzRef, networks: Vec<NetworkMatch>, authn: Authentication) -> Authorization {
    Authorization {
        reference,
        networks,
        authentication: authn,
    }
}

fn sa(name: &str, ns: &str) -> IdentityMatch {
    IdentityMatch::Exact(format!(
        "{name}.{ns}.serviceaccount.identity.linkerd.cluster.local"
    ))
}

#[test]
fn each_default_policy() {
    use Authentication::Unauthenticated;
    use DefaultInboundPolicy::*;
    let cases = [
        (AllUnauthenticated, Some((all_networks(), Unauthenticated))),
        (AllAuthenticated, Some((all_networks(), any_identity()))),
        (
            ClusterUnauthenticated,
            Some((cluster_networks(), Unauthenticated)),
        ),
        (
            ClusterAuthenticated,
            Some((cluster_networks(), any_identity())),
        ),
        (Deny, None),
        (Audit, Some((all_networks(), Unauthenticated))),
    ];
    for (policy, expected) in cases {
        let index = index_with_pod(policy);
        let server = index.get_port("shop", "web-1", 7000).unwrap();
        assert_eq!(server.reference, ServerRef::Default(policy));
        assert_eq!(server.protocol, Protocol::Detect(DETECT_TIMEOUT));
        let expected: Vec<Authorization> = expected
            .into_iter()
            .map(|(nets, authn)| authz(AuthzRef::Default(policy), nets, authn))
            .collect();
        assert_eq!(server.authorizations, expected, "{policy}");
    }
}

/// On a port that requires identity, an allowing policy admits authenticated clients only;
/// `deny` and `audit` stay, as in Linkerd's policy controller (the proxy's default for such
/// a port agrees, so its answer before the controller's is the same).
#[test]
fn require_identity_ports_authenticate_allowing_policies_and_leave_deny_and_audit() {
    use Authentication::Unauthenticated;
    use DefaultInboundPolicy::*;
    let cases = [
        (
            AllUnauthenticated,
            AllAuthenticated,
            Some((all_networks(), any_identity())),
        ),
        (
            AllAuthenticated,
            AllAuthenticated,
            Some((all_networks(), any_identity())),
        ),
        (
            ClusterUnauthenticated,
            ClusterAuthenticated,
            Some((cluster_networks(), any_identity())),
        ),
        (
            ClusterAuthenticated,
            ClusterAuthenticated,
            Some((cluster_networks(), any_identity())),
        ),
        (Deny, Deny, None),
        (Audit, Audit, Some((all_networks(), Unauthenticated))),
    ];
    for (default, answered, expected) in cases {
        let mut index = Index::new(config(default));
        index.apply_pod(&pod(
            "web-1",
            json!({"config.linkerd.io/proxy-require-identity-inbound-ports": "7000"}),
            json!([{"name": "app", "image": "web"}]),
        ));
        let server = index.get_port("shop", "web-1", 7000).unwrap();
        assert_eq!(server.reference, ServerRef::Default(answered), "{default}");
        let expected: Vec<Authorization> = expected
            .into_iter()
            .map(|(nets, authn)| authz(AuthzRef::Default(answered), nets, authn))
            .collect();
        assert_eq!(server.authorizations, expected, "{default}");
        // Other ports keep the pod's default.
        let other = index.get_port("shop", "web-1", 7001).unwrap();
        assert_eq!(other.reference, ServerRef::Default(default), "{default}");
    }
}

#[test]
fn pod_annotations_override_the_default() {
    let mut index = Index::new(config(DefaultInboundPolicy::AllUnauthenticated));
    index.apply_pod(&pod(
        "db-1",
        json!({
            "config.linkerd.io/default-inbound-policy": "cluster-unauthenticated",
            "config.linkerd.io/proxy-require-identity-inbound-ports": "5432,9000-9001",
            "config.linkerd.io/opaque-ports": "5432",
        }),
        json!([{"name": "db", "image": "pg"}]),
    ));
    let plain = index.get_port("shop", "db-1", 80).unwrap();
    assert_eq!(
        plain.reference,
        ServerRef::Default(DefaultInboundPolicy::ClusterUnauthenticated)
    );
    let secured = index.get_port("shop", "db-1", 5432).unwrap();
    assert_eq!(
        secured.reference,
        ServerRef::Default(DefaultInboundPolicy::ClusterAuthenticated)
    );
    assert_eq!(secured.protocol, Protocol::Opaque);
    assert_eq!(
        secured.authorizations[0].authentication,
        any_identity(),
        "required identity"
    );
    // The pod's own opaque ports replace the cluster's default (3306).
    assert_eq!(
        index.get_port("shop", "db-1", 3306).unwrap().protocol,
        Protocol::Detect(DETECT_TIMEOUT)
    );
    // Without the annotation, the cluster's default opaque ports apply.
    assert_eq!(
        index_with_pod(DefaultInboundPolicy::Deny)
            .get_port("shop", "web-1", 3306)
            .unwrap()
            .protocol,
        Protocol::Opaque
    );
    // A bad policy annotation is ignored.
    index.apply_pod(&pod(
        "db-1",
        json!({"config.linkerd.io/default-inbound-policy": "allow-all"}),
        json!([{"name": "db", "image": "pg"}]),
    ));
    assert_eq!(
        index.get_port("shop", "db-1", 80).unwrap().reference,
        ServerRef::Default(DefaultInboundPolicy::AllUnauthenticated)
    );
}

#[test]
fn servers_select_ports_by_number_or_name() {
    let mut index = index_with_pod(DefaultInboundPolicy::AllUnauthenticated);
    index.apply(
        Kind::Server,
        &object(
            "Server",
            "web-http",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": "http",
                   "proxyProtocol": "HTTP/1"}),
        ),
    );
    index.apply(
        Kind::Server,
        &object(
            "Server",
            "other",
            json!({"podSelector": {"matchLabels": {"app": "other"}}, "port": 7000}),
        ),
    );
    // `http` names a port in each container.
    for port in [8080, 9090] {
        let server = index.get_port("shop", "web-1", port).unwrap();
        assert_eq!(server.reference, ServerRef::Server("web-http".into()));
        assert_eq!(server.protocol, Protocol::Http1);
        assert!(
            server.authorizations.is_empty(),
            "a Server denies by default"
        );
    }
    // Not selected: the default policy.
    assert_eq!(
        index.get_port("shop", "web-1", 7000).unwrap().reference,
        ServerRef::Default(DefaultInboundPolicy::AllUnauthenticated)
    );
    // The probes on 8080: the path without its query, and `/` for a probe without a path.
    let probes = index.get_port("shop", "web-1", 8080).unwrap().probe_paths;
    assert_eq!(
        probes,
        BTreeSet::from(["/".to_string(), "/ready".to_string()])
    );
    // The UDP port's name selects nothing.
    index.apply(
        Kind::Server,
        &object("Server", "dns", json!({"podSelector": {}, "port": "dns"})),
    );
    assert!(matches!(
        index.get_port("shop", "web-1", 53).unwrap().reference,
        ServerRef::Default(_)
    ));
    // An access policy adds its authorization.
    index.apply(
        Kind::Server,
        &object(
            "Server",
            "web-http",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080,
                   "accessPolicy": "cluster-authenticated"}),
        ),
    );
    let server = index.get_port("shop", "web-1", 8080).unwrap();
    assert_eq!(
        server.authorizations,
        vec![authz(
            AuthzRef::Default(DefaultInboundPolicy::ClusterAuthenticated),
            cluster_networks(),
            any_identity()
        )]
    );
    assert_eq!(server.protocol, Protocol::Detect(DETECT_TIMEOUT));
}

fn server_and_policy(index: &mut Index, authns: Value) {
    index.apply(
        Kind::Server,
        &object(
            "Server",
            "web-http",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080}),
        ),
    );
    index.apply(
        Kind::AuthorizationPolicy,
        &object(
            "AuthorizationPolicy",
            "web-authz",
            json!({"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"},
                   "requiredAuthenticationRefs": authns}),
        ),
    );
}

fn authorizations(index: &Index) -> Vec<Authorization> {
    index
        .get_port("shop", "web-1", 8080)
        .unwrap()
        .authorizations
}

#[test]
fn authorization_policies_with_authentications() {
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    server_and_policy(
        &mut index,
        json!([
            {"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "clients"},
            {"group": "policy.linkerd.io", "kind": "NetworkAuthentication", "name": "office", "namespace": "infra"},
        ]),
    );
    // Both authentications are missing: the policy grants nothing.
    assert!(authorizations(&index).is_empty());
    index.apply(
        Kind::MeshTlsAuthentication,
        &object(
            "MeshTLSAuthentication",
            "clients",
            json!({"identities": ["gw.edge.serviceaccount.identity.linkerd.cluster.local", "*.ops.example"],
                   "identityRefs": [{"kind": "ServiceAccount", "name": "books"},
                                    {"kind": "ServiceAccount", "name": "cli", "namespace": "tools"},
                                    {"kind": "Namespace", "name": "batch"}]}),
        ),
    );
    assert!(
        authorizations(&index).is_empty(),
        "the network is still missing"
    );
    index.apply(
        Kind::NetworkAuthentication,
        &object_in(
            "infra",
            "NetworkAuthentication",
            "office",
            json!({"networks": [{"cidr": "192.168.0.0/16", "except": ["192.168.9.9"]}]}),
        ),
    );
    let suffix = |s: &str| IdentityMatch::Suffix(s.split('.').map(String::from).collect());
    assert_eq!(
        authorizations(&index),
        vec![authz(
            AuthzRef::AuthorizationPolicy("web-authz".into()),
            vec![NetworkMatch {
                net: "192.168.0.0/16".parse().unwrap(),
                except: vec!["192.168.9.9".parse().unwrap()],
            }],
            Authentication::TlsAuthenticated(vec![
                IdentityMatch::Exact(
                    "gw.edge.serviceaccount.identity.linkerd.cluster.local".into()
                ),
                suffix("ops.example"),
                sa("books", "shop"),
                sa("cli", "tools"),
                suffix("batch.serviceaccount.identity.linkerd.cluster.local"),
            ]),
        )]
    );
    // Deleting the authentication disables the policy again.
    index.delete(Kind::NetworkAuthentication, "infra", "office");
    assert!(authorizations(&index).is_empty());
}

#[test]
fn policy_variants() {
    // No authentications: everyone, from everywhere.
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    server_and_policy(&mut index, json!([]));
    assert_eq!(
        authorizations(&index),
        vec![authz(
            AuthzRef::AuthorizationPolicy("web-authz".into()),
            all_networks(),
            Authentication::Unauthenticated
        )]
    );
    // A ServiceAccount.
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    server_and_policy(
        &mut index,
        json!([{"kind": "ServiceAccount", "name": "web", "namespace": "front"}]),
    );
    assert_eq!(
        authorizations(&index)[0].authentication,
        Authentication::TlsAuthenticated(vec![sa("web", "front")])
    );
    // Two identity requirements: unusable.
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    server_and_policy(
        &mut index,
        json!([{"kind": "ServiceAccount", "name": "a"}, {"kind": "ServiceAccount", "name": "b"}]),
    );
    assert!(authorizations(&index).is_empty());
    // A namespace target applies to every Server of the namespace; a route target to none.
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    server_and_policy(&mut index, json!([]));
    index.apply(
        Kind::AuthorizationPolicy,
        &object(
            "AuthorizationPolicy",
            "everyone",
            json!({"targetRef": {"kind": "Namespace", "name": "shop"},
                   "requiredAuthenticationRefs": []}),
        ),
    );
    index.apply(
        Kind::AuthorizationPolicy,
        &object(
            "AuthorizationPolicy",
            "route",
            json!({"targetRef": {"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "r"},
                   "requiredAuthenticationRefs": []}),
        ),
    );
    let refs: Vec<AuthzRef> = authorizations(&index)
        .into_iter()
        .map(|a| a.reference)
        .collect();
    assert_eq!(
        refs,
        vec![
            AuthzRef::AuthorizationPolicy("everyone".into()),
            AuthzRef::AuthorizationPolicy("web-authz".into()),
        ]
    );
    // Policies never apply to ports no Server selects.
    assert!(
        index
            .get_port("shop", "web-1", 7000)
            .unwrap()
            .authorizations
            .is_empty()
    );
    // A policy that becomes unreadable stops granting.
    index.apply(
        Kind::AuthorizationPolicy,
        &object(
            "AuthorizationPolicy",
            "web-authz",
            json!({"targetRef": {"kind": "Pod", "name": "x"}}),
        ),
    );
    assert_eq!(authorizations(&index).len(), 1);
}

#[test]
fn server_authorizations() {
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    index.apply(
        Kind::Server,
        &object(
            "Server",
            "web-http",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080}),
        ),
    );
    let saz = |index: &mut Index, name: &str, spec: Value| {
        index.apply(
            Kind::ServerAuthorization,
            &object("ServerAuthorization", name, spec),
        );
    };
    saz(
        &mut index,
        "a-by-name",
        json!({"server": {"name": "web-http"},
               "client": {"meshTLS": {"identities": ["*"],
                                      "serviceAccounts": [{"name": "books"}]}}}),
    );
    saz(
        &mut index,
        "b-by-labels",
        json!({"server": {"selector": {"matchLabels": {"tier": "front"}}},
               "client": {"unauthenticated": true,
                          "networks": [{"cidr": "172.16.0.0/12"}]}}),
    );
    saz(
        &mut index,
        "c-tls",
        json!({"server": {"name": "web-http"},
               "client": {"meshTLS": {"unauthenticatedTLS": true}}}),
    );
    saz(
        &mut index,
        "d-other",
        json!({"server": {"name": "other"}, "client": {"unauthenticated": true}}),
    );
    saz(
        &mut index,
        "e-nobody",
        json!({"server": {"name": "web-http"}, "client": {"meshTLS": {}}}),
    );
    assert_eq!(
        authorizations(&index),
        vec![
            authz(
                AuthzRef::ServerAuthorization("a-by-name".into()),
                cluster_networks(),
                Authentication::TlsAuthenticated(vec![
                    IdentityMatch::Suffix(vec![]),
                    sa("books", "shop")
                ]),
            ),
            authz(
                AuthzRef::ServerAuthorization("b-by-labels".into()),
                vec!["172.16.0.0/12".parse::<Net>().unwrap().into()],
                Authentication::Unauthenticated,
            ),
            authz(
                AuthzRef::ServerAuthorization("c-tls".into()),
                cluster_networks(),
                Authentication::TlsUnauthenticated,
            ),
        ]
    );
}

#[test]
fn watches_follow_changes() {
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    assert_eq!(
        index.watch_port("shop", "nope", 80).unwrap_err(),
        LookupError::NotFound {
            namespace: "shop".into(),
            pod: "nope".into()
        }
    );
    let mut rx = index.watch_port("shop", "web-1", 8080).unwrap();
    assert!(!rx.has_changed().unwrap());
    server_and_policy(&mut index, json!([]));
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().authorizations.len(), 1);

    // Changes elsewhere, and repeated identical objects, send nothing.
    index.apply(
        Kind::Server,
        &object_in(
            "other",
            "Server",
            "s",
            json!({"podSelector": {}, "port": 8080}),
        ),
    );
    server_and_policy(&mut index, json!([]));
    index.apply_pod(&web_pod());
    assert!(!rx.has_changed().unwrap());

    index.delete(Kind::AuthorizationPolicy, "shop", "web-authz");
    assert!(rx.has_changed().unwrap());
    assert!(rx.borrow_and_update().authorizations.is_empty());

    // An authentication in another namespace reaches the policies that name it.
    server_and_policy(
        &mut index,
        json!([{"group": "policy.linkerd.io", "kind": "NetworkAuthentication",
                "name": "n", "namespace": "infra"}]),
    );
    assert!(rx.borrow_and_update().authorizations.is_empty());
    index.apply(
        Kind::NetworkAuthentication,
        &object_in(
            "infra",
            "NetworkAuthentication",
            "n",
            json!({"networks": [{"cidr": "10.1.0.0/16"}]}),
        ),
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().authorizations.len(), 1);

    // The pod goes: its watch closes.
    index.delete_pod("shop", "web-1");
    assert!(rx.has_changed().is_err());
    assert!(index.get_port("shop", "web-1", 8080).is_err());
}

#[test]
fn closed_watches_are_swept() {
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    let kept = index.watch_port("shop", "web-1", 1).unwrap();
    for port in 2..2000u16 {
        drop(index.watch_port("shop", "web-1", port).unwrap());
        assert!(index.watch_count() <= 2 * 64 + 2, "{}", index.watch_count());
    }
    drop(index.watch_port("shop", "web-1", 1).unwrap());
    assert!(kept.has_changed().is_ok(), "an open watch survives sweeps");
}

#[test]
fn unreadable_objects_are_left_out() {
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    for (kind, name, spec) in [
        (
            Kind::Server,
            "Server",
            json!({"podSelector": {}, "port": 0}),
        ),
        (
            Kind::Server,
            "Server",
            json!({"podSelector": {}, "port": 80, "proxyProtocol": "SMTP"}),
        ),
        (
            Kind::Server,
            "Server",
            json!({"port": 80, "accessPolicy": "allow"}),
        ),
        (
            Kind::ServerAuthorization,
            "ServerAuthorization",
            json!({"server": {}, "client": {"unauthenticated": true}}),
        ),
        (
            Kind::ServerAuthorization,
            "ServerAuthorization",
            json!({"server": {"name": "s"}, "client": {}}),
        ),
        (
            Kind::AuthorizationPolicy,
            "AuthorizationPolicy",
            json!({"targetRef": {"kind": "Server"}}),
        ),
        (
            Kind::MeshTlsAuthentication,
            "MeshTLSAuthentication",
            json!({}),
        ),
        (
            Kind::MeshTlsAuthentication,
            "MeshTLSAuthentication",
            json!({"identityRefs": [{"kind": "Pod", "name": "p"}]}),
        ),
        (
            Kind::NetworkAuthentication,
            "NetworkAuthentication",
            json!({"networks": []}),
        ),
        (
            Kind::NetworkAuthentication,
            "NetworkAuthentication",
            json!({"networks": [{"cidr": "10.0.0.0/99"}]}),
        ),
    ] {
        index.apply(kind, &object(name, "bad", spec.clone()));
        assert!(index.namespaces.is_empty(), "{name} {spec} was kept");
    }
}

#[path = "tests/routes.rs"]
mod routes_tests;
