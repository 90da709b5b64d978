//! HTTPRoutes and GRPCRoutes attached to Servers, and the policies that target them.

use serde_json::{Value, json};

use super::super::routes::{
    GrpcMatch, HostMatch, HttpMatch, NameMatch, PathMatch, RouteKind, RouteRef, RouteRules,
    ValueMatch,
};
use super::*;

fn route_object(
    api_version: &str,
    kind: &str,
    name: &str,
    created: &str,
    spec: Value,
) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created},
        "spec": spec,
    }))
    .unwrap()
}

fn http_route(name: &str, spec: Value) -> DynamicObject {
    route_object(
        "policy.linkerd.io/v1beta3",
        "HTTPRoute",
        name,
        "2025-01-01T00:00:00Z",
        spec,
    )
}

/// A Server `web-http` on 8080, which the pod probes.
fn index_with_server() -> Index {
    let mut index = index_with_pod(DefaultInboundPolicy::Deny);
    index.apply(
        Kind::Server,
        &object(
            "Server",
            "web-http",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": 8080,
                   "proxyProtocol": "HTTP/1"}),
        ),
    );
    index
}

fn route_policy(index: &mut Index, name: &str, target: Value) {
    index.apply(
        Kind::AuthorizationPolicy,
        &object(
            "AuthorizationPolicy",
            name,
            json!({"targetRef": target,
                   "requiredAuthenticationRefs": [{"kind": "ServiceAccount", "name": "books"}]}),
        ),
    );
}

fn books_only(name: &str) -> Authorization {
    authz(
        AuthzRef::AuthorizationPolicy(name.into()),
        all_networks(),
        Authentication::TlsAuthenticated(vec![sa("books", "shop")]),
    )
}

fn policy_route(name: &str) -> RouteRef {
    RouteRef {
        kind: RouteKind::PolicyHttp,
        name: name.into(),
    }
}

fn routes(index: &Index) -> Vec<InboundRoute> {
    index.get_port("shop", "web-1", 8080).unwrap().routes
}

#[test]
fn a_route_with_matches_and_its_authorization() {
    let mut index = index_with_server();
    index.apply(
        Kind::HttpRoute,
        &http_route(
            "books-api",
            json!({
                "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}],
                "hostnames": ["Books.example.com", "*.shop.example"],
                "rules": [
                    {"matches": [
                        {"path": {"type": "PathPrefix", "value": "/books"},
                         "headers": [{"name": "X-Tenant", "value": "acme"},
                                     {"type": "RegularExpression", "name": "x-trace", "value": "[0-9a-f]+"}],
                         "queryParams": [{"name": "page", "value": "1"}],
                         "method": "GET"},
                        {"path": {"type": "Exact", "value": "/books/new"}, "method": "POST"}]},
                    {"matches": [{"path": {"type": "RegularExpression", "value": "/authors/[0-9]+"}}]},
                ],
            }),
        ),
    );
    route_policy(
        &mut index,
        "books-api-authz",
        json!({"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "books-api"}),
    );
    let server = index.get_port("shop", "web-1", 8080).unwrap();
    assert!(
        server.authorizations.is_empty(),
        "a route's policy is not the server's"
    );
    let exact = |name: &str, v: &str| NameMatch {
        name: name.into(),
        value: ValueMatch::Exact(v.into()),
    };
    assert_eq!(
        server.routes,
        vec![InboundRoute {
            reference: policy_route("books-api"),
            spec: super::super::routes::RouteSpec {
                hostnames: vec![
                    HostMatch::Exact("books.example.com".into()),
                    HostMatch::Suffix("shop.example".into()),
                ],
                rules: RouteRules::Http(vec![
                    vec![
                        HttpMatch {
                            path: Some(PathMatch::Prefix("/books".into())),
                            headers: vec![
                                exact("x-tenant", "acme"),
                                NameMatch {
                                    name: "x-trace".into(),
                                    value: ValueMatch::Regex("[0-9a-f]+".into()),
                                },
                            ],
                            query_params: vec![exact("page", "1")],
                            method: Some(http::Method::GET),
                        },
                        HttpMatch {
                            path: Some(PathMatch::Exact("/books/new".into())),
                            method: Some(http::Method::POST),
                            ..Default::default()
                        },
                    ],
                    vec![HttpMatch {
                        path: Some(PathMatch::Regex("/authors/[0-9]+".into())),
                        ..Default::default()
                    }],
                ]),
            },
            authorizations: vec![books_only("books-api-authz")],
        }]
    );

    // The route is removed: its policy grants nothing anywhere, and the default routes return.
    index.delete(Kind::HttpRoute, "shop", "books-api");
    let server = index.get_port("shop", "web-1", 8080).unwrap();
    assert!(server.routes.is_empty());
    assert!(server.authorizations.is_empty());
}

#[test]
fn routes_attach_only_to_the_server_they_name() {
    let mut index = index_with_server();
    let parent = |name: &str| json!({"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": name}]});
    index.apply(Kind::HttpRoute, &http_route("elsewhere", parent("other")));
    // A Service parent is an outbound route.
    index.apply(
        Kind::HttpRoute,
        &http_route(
            "outbound",
            json!({"parentRefs": [{"group": "core", "kind": "Service", "name": "web-http"}]}),
        ),
    );
    assert!(routes(&index).is_empty());
    // Group and kind default to a Server for Linkerd's HTTPRoute, and to a Gateway for the
    // Gateway API's (as their CRDs do).
    index.apply(
        Kind::HttpRoute,
        &http_route("defaulted", json!({"parentRefs": [{"name": "web-http"}]})),
    );
    index.apply(
        Kind::GatewayHttpRoute,
        &route_object(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "gateway",
            "2025-01-01T00:00:00Z",
            json!({"parentRefs": [{"name": "web-http"}]}),
        ),
    );
    let attached: Vec<RouteRef> = routes(&index).into_iter().map(|r| r.reference).collect();
    assert_eq!(attached, vec![policy_route("defaulted")]);
    // Without rules, the CRD's default rule matches every request.
    assert_eq!(
        routes(&index)[0].spec.rules,
        RouteRules::Http(vec![Vec::new()])
    );
}

#[test]
fn policies_target_one_route_of_one_kind() {
    let mut index = index_with_server();
    let spec = json!({"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}]});
    index.apply(Kind::HttpRoute, &http_route("api", spec.clone()));
    let mut gateway_spec = spec.clone();
    gateway_spec["rules"] = json!([{"matches": [{"path": {"value": "/gw"}}]}]);
    index.apply(
        Kind::GatewayHttpRoute,
        &route_object(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            "api",
            "2024-06-01T00:00:00Z",
            gateway_spec,
        ),
    );
    // Same name, other group: only the Gateway API route. Group and kind compare without case.
    route_policy(
        &mut index,
        "gw-only",
        json!({"group": "Gateway.Networking.K8s.io", "kind": "httproute", "name": "api"}),
    );
    let got = routes(&index);
    // The older route comes first.
    assert_eq!(got[0].reference.kind, RouteKind::GatewayHttp);
    assert_eq!(got[0].authorizations, vec![books_only("gw-only")]);
    assert_eq!(
        got[0].spec.rules,
        RouteRules::Http(vec![vec![HttpMatch {
            path: Some(PathMatch::Prefix("/gw".into())),
            ..Default::default()
        }]])
    );
    assert_eq!(got[1].reference, policy_route("api"));
    assert!(got[1].authorizations.is_empty());
    // A policy whose authentication is missing grants nothing on the route either.
    index.apply(
        Kind::AuthorizationPolicy,
        &object(
            "AuthorizationPolicy",
            "gw-only",
            json!({"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "api"},
                   "requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "nope"}]}),
        ),
    );
    assert!(routes(&index)[0].authorizations.is_empty());
}

#[test]
fn grpc_routes() {
    let mut index = index_with_server();
    index.apply(
        Kind::GatewayGrpcRoute,
        &route_object(
            "gateway.networking.k8s.io/v1",
            "GRPCRoute",
            "rpc",
            "2025-01-01T00:00:00Z",
            json!({
                "parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}],
                "rules": [{"matches": [
                    {"method": {"service": "books.v1.Books", "method": "Get"},
                     "headers": [{"name": "x-tenant", "value": "acme"}]},
                    {"method": {"type": "Exact", "service": "books.v1.Admin"}},
                ]}],
            }),
        ),
    );
    assert_eq!(
        routes(&index)[0].spec.rules,
        RouteRules::Grpc(vec![vec![
            GrpcMatch {
                service: Some("books.v1.Books".into()),
                method: Some("Get".into()),
                headers: vec![NameMatch {
                    name: "x-tenant".into(),
                    value: ValueMatch::Exact("acme".into()),
                }],
            },
            GrpcMatch {
                service: Some("books.v1.Admin".into()),
                ..Default::default()
            },
        ]])
    );
}

#[test]
fn unreadable_routes_are_left_out() {
    let server = json!({"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"});
    let with_parent = |parent: Value, rules: Value| json!({"parentRefs": [parent], "rules": rules});
    let every = json!([{"matches": []}]);
    let mut by_port = server.clone();
    by_port["port"] = json!(8080);
    let mut by_section = server.clone();
    by_section["sectionName"] = json!("http");
    let mut other_ns = server.clone();
    other_ns["namespace"] = json!("infra");
    let cases = [
        with_parent(by_port, every.clone()),
        with_parent(by_section, every.clone()),
        with_parent(other_ns, every.clone()),
        with_parent(
            server.clone(),
            json!([{"matches": [{"path": {"type": "Exact", "value": "books"}}]}]),
        ),
        with_parent(
            server.clone(),
            json!([{"matches": [{"path": {"type": "RegularExpression", "value": "(unclosed"}}]}]),
        ),
        with_parent(
            server.clone(),
            json!([{"matches": [{"path": {"type": "RegularExpression", "value": "a".repeat(1025)}}]}]),
        ),
        with_parent(
            server.clone(),
            json!([{"matches": [{"headers": [{"name": "bad header", "value": "x"}]}]}]),
        ),
        with_parent(
            server.clone(),
            json!([{"matches": [{"headers": [{"type": "RegularExpression", "name": "x", "value": "\\p{Greek}"}]}]}]),
        ),
    ];
    for spec in cases {
        let mut index = index_with_server();
        index.apply(Kind::HttpRoute, &http_route("bad", spec.clone()));
        assert!(routes(&index).is_empty(), "{spec} was kept");
    }
    // A regular-expression method match in a GRPCRoute, as Linkerd refuses it.
    let mut index = index_with_server();
    index.apply(
        Kind::GatewayGrpcRoute,
        &route_object(
            "gateway.networking.k8s.io/v1",
            "GRPCRoute",
            "bad",
            "2025-01-01T00:00:00Z",
            with_parent(
                server,
                json!([{"matches": [{"method": {"type": "RegularExpression", "service": "a.*"}}]}]),
            ),
        ),
    );
    assert!(routes(&index).is_empty());
    // A readable route that becomes unreadable is dropped.
    let mut index = index_with_server();
    let good = json!({"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}]});
    index.apply(Kind::HttpRoute, &http_route("r", good));
    assert_eq!(routes(&index).len(), 1);
    index.apply(
        Kind::HttpRoute,
        &http_route("r", json!({"parentRefs": "nope"})),
    );
    assert!(routes(&index).is_empty());
}

#[test]
fn route_changes_reach_watches() {
    let mut index = index_with_server();
    let mut rx = index.watch_port("shop", "web-1", 8080).unwrap();
    rx.borrow_and_update();
    let spec = json!({"parentRefs": [{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}]});
    index.apply(Kind::HttpRoute, &http_route("api", spec.clone()));
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().routes.len(), 1);
    // The same object again changes nothing.
    index.apply(Kind::HttpRoute, &http_route("api", spec));
    assert!(!rx.has_changed().unwrap());
    route_policy(
        &mut index,
        "api-authz",
        json!({"group": "policy.linkerd.io", "kind": "HTTPRoute", "name": "api"}),
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(
        rx.borrow_and_update().routes[0].authorizations,
        vec![books_only("api-authz")]
    );
    index.delete(Kind::HttpRoute, "shop", "api");
    assert!(rx.borrow_and_update().routes.is_empty());
}
