use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Request;

use mesh_names::policy::DefaultInboundPolicy;

use super::*;
use crate::metrics::Metrics;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    let (addr, len) = s.split_once('/').unwrap();
    IpNet::new(ip(addr), len.parse().unwrap()).unwrap()
}

fn authz(nets: &[&str], authentication: Authentication) -> Authorization {
    Authorization {
        networks: nets.iter().map(|n| Network::from(net(n))).collect(),
        authentication,
        meta: Arc::new(Meta::default_named("test")),
    }
}

fn authenticated(ids: &[&str], suffixes: &[&[&str]]) -> Authentication {
    Authentication::TlsAuthenticated {
        identities: ids.iter().map(|s| s.to_string()).collect(),
        suffixes: suffixes.iter().map(|p| Suffix::new(p)).collect(),
    }
}

const WEB: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";

fn id(name: &str) -> ClientTls {
    ClientTls::Authenticated(name.to_owned())
}

#[test]
fn networks_contain_addresses_by_prefix() {
    assert!(net("10.0.0.0/8").contains(ip("10.255.1.2")));
    assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
    assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
    assert!(
        !net("0.0.0.0/0").contains(ip("::1")),
        "IPv4 nets hold no IPv6"
    );
    assert!(net("fd00::/8").contains(ip("fd12::1")));
    assert!(!net("fd00::/8").contains(ip("fe80::1")));
    assert!(net("127.0.0.1/32").contains(ip("127.0.0.1")));
    assert!(!net("127.0.0.1/32").contains(ip("127.0.0.2")));
    // A dual-stack listener sees IPv4 clients as mapped IPv6 addresses.
    assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
    assert!(IpNet::new(ip("10.0.0.0"), 33).is_none());
    assert!(IpNet::new(ip("::"), 128).is_some());
}

#[test]
fn exceptions_carve_out_of_a_network() {
    let n = Network {
        net: net("10.0.0.0/8"),
        except: vec![net("10.1.0.0/16")],
    };
    assert!(n.contains(ip("10.2.0.1")));
    assert!(!n.contains(ip("10.1.0.1")));
}

#[test]
fn unauthenticated_takes_every_client_in_its_networks() {
    let a = authz(&["10.0.0.0/8"], Authentication::Unauthenticated);
    for tls in [ClientTls::Plain, ClientTls::Unauthenticated, id(WEB)] {
        assert!(a.permits(ip("10.0.0.1"), &tls), "{tls:?}");
        assert!(!a.permits(ip("192.168.0.1"), &tls), "{tls:?}");
    }
}

#[test]
fn tls_unauthenticated_needs_mesh_tls_but_no_identity() {
    let a = authz(&["0.0.0.0/0"], Authentication::TlsUnauthenticated);
    assert!(!a.permits(ip("10.0.0.1"), &ClientTls::Plain));
    assert!(a.permits(ip("10.0.0.1"), &ClientTls::Unauthenticated));
    assert!(a.permits(ip("10.0.0.1"), &id(WEB)));
}

#[test]
fn authenticated_matches_identities_and_suffixes() {
    let exact = authz(&["0.0.0.0/0"], authenticated(&[WEB], &[]));
    assert!(exact.permits(ip("10.0.0.1"), &id(WEB)));
    assert!(!exact.permits(
        ip("10.0.0.1"),
        &id("api.shop.serviceaccount.identity.linkerd.cluster.local")
    ));
    assert!(!exact.permits(ip("10.0.0.1"), &ClientTls::Unauthenticated));
    assert!(!exact.permits(ip("10.0.0.1"), &ClientTls::Plain));

    let ns = authz(
        &["0.0.0.0/0"],
        authenticated(
            &[],
            &[&[
                "shop",
                "serviceaccount",
                "identity",
                "linkerd",
                "cluster",
                "local",
            ]],
        ),
    );
    assert!(ns.permits(ip("10.0.0.1"), &id(WEB)));
    assert!(!ns.permits(
        ip("10.0.0.1"),
        &id("web.other.serviceaccount.identity.linkerd.cluster.local")
    ));
    // A suffix matches at a label boundary only.
    assert!(!ns.permits(
        ip("10.0.0.1"),
        &id("webshop.serviceaccount.identity.linkerd.cluster.local")
    ));

    let any = authz(&["0.0.0.0/0"], authenticated(&[], &[&[]]));
    assert!(any.permits(ip("10.0.0.1"), &id("anything")));
    assert!(!any.permits(ip("10.0.0.1"), &ClientTls::Plain));

    let none = authz(&["0.0.0.0/0"], authenticated(&[], &[]));
    assert!(!none.permits(ip("10.0.0.1"), &id(WEB)));
}

#[test]
fn authorizations_need_the_network_and_the_authentication() {
    let a = authz(&["10.0.0.0/8"], authenticated(&[WEB], &[]));
    assert!(!a.permits(ip("192.168.1.1"), &id(WEB)));
    assert!(a.permits(ip("10.9.9.9"), &id(WEB)));
}

#[test]
fn default_policies_as_linkerd_defines_them() {
    let cluster = [net("10.0.0.0/8")];
    let check = |p: DefaultInboundPolicy, client: &str, tls: &ClientTls| {
        let policy = server_policy(p, &cluster);
        assert_eq!(&*policy.meta.name, p.as_str());
        assert_eq!(&*policy.meta.kind, "default");
        first_permit(&policy.authorizations, ip(client), tls).is_some()
    };
    use DefaultInboundPolicy::*;
    let plain = ClientTls::Plain;
    let meshed = id(WEB);
    assert!(check(AllUnauthenticated, "203.0.113.1", &plain));
    assert!(check(AllUnauthenticated, "2001:db8::1", &plain));
    assert!(!check(AllAuthenticated, "10.0.0.1", &plain));
    assert!(!check(
        AllAuthenticated,
        "10.0.0.1",
        &ClientTls::Unauthenticated
    ));
    assert!(check(AllAuthenticated, "203.0.113.1", &meshed));
    assert!(check(ClusterUnauthenticated, "10.0.0.1", &plain));
    assert!(!check(ClusterUnauthenticated, "203.0.113.1", &plain));
    assert!(check(ClusterAuthenticated, "10.0.0.1", &meshed));
    assert!(!check(ClusterAuthenticated, "10.0.0.1", &plain));
    assert!(!check(ClusterAuthenticated, "203.0.113.1", &meshed));
    assert!(check(Audit, "203.0.113.1", &plain));
    for tls in [plain, meshed] {
        assert!(!check(Deny, "10.0.0.1", &tls));
        assert!(!check(Deny, "127.0.0.1", &tls));
    }
}

#[test]
fn require_identity_keeps_the_networks_and_leaves_deny_and_audit() {
    use DefaultInboundPolicy::*;
    let cases = [
        (AllUnauthenticated, AllAuthenticated),
        (AllAuthenticated, AllAuthenticated),
        (ClusterUnauthenticated, ClusterAuthenticated),
        (ClusterAuthenticated, ClusterAuthenticated),
        (Deny, Deny),
        // Linkerd's policy controller answers `audit` for such a port: plaintext clients
        // are let in and logged, not refused.
        (Audit, Audit),
    ];
    for (policy, expected) in cases {
        assert_eq!(require_identity(policy), expected, "{policy}");
    }
    let audit = server_policy(require_identity(Audit), &[net("10.0.0.0/8")]);
    let permit = first_permit(&audit.authorizations, ip("203.0.113.1"), &ClientTls::Plain);
    assert!(permit.is_some_and(|a| a.meta.is_audit()));
}

fn conn(policy: ServerPolicy, client: &str, tls: ClientTls) -> (ConnPolicy, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let c = ConnPolicy::new(
        SocketAddr::new(ip(client), 40000),
        "10.0.0.5:8080".parse().unwrap(),
        tls,
        PortPolicy::fixed(Arc::new(policy)),
        metrics.clone(),
    );
    (c, metrics)
}

fn get(path: &str) -> Request<()> {
    Request::get(path).header("host", "web").body(()).unwrap()
}

#[test]
fn checks_count_allowed_and_refused_requests_and_connections() {
    let cluster = [net("10.0.0.0/8")];
    let (c, metrics) = conn(
        server_policy(DefaultInboundPolicy::ClusterUnauthenticated, &cluster),
        "10.1.1.1",
        ClientTls::Plain,
    );
    for _ in 0..3 {
        assert_eq!(c.check_http(&get("/")), Ok(()));
    }
    assert_eq!(c.check_http_unrouted(), Some(Ok(())));
    assert!(c.check_tcp().is_ok());
    let text = metrics.render();
    assert!(
        text.contains("inbound_http_authz_allow_total{target_addr=\"10.0.0.5:8080\",target_ip=\"10.0.0.5\",target_port=\"8080\",srv_group=\"\",srv_kind=\"default\",srv_name=\"cluster-unauthenticated\",srv_port=\"8080\",route_group=\"\",route_kind=\"default\",route_name=\"default\",authz_group=\"\",authz_kind=\"default\",authz_name=\"cluster-unauthenticated\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 4"),
        "{text}"
    );
    assert!(text.contains("inbound_tcp_authz_allow_total{"), "{text}");
    assert!(!text.contains("deny_total"), "{text}");

    let (c, metrics) = conn(
        server_policy(DefaultInboundPolicy::ClusterUnauthenticated, &cluster),
        "192.168.1.1",
        id(WEB),
    );
    assert_eq!(c.check_http(&get("/")), Err(HttpDenied::Unauthorized));
    assert_eq!(c.check_http(&get("/")), Err(HttpDenied::Unauthorized));
    assert!(c.check_tcp().is_err());
    let text = metrics.render();
    assert!(
        text.contains(&format!("inbound_http_authz_deny_total{{target_addr=\"10.0.0.5:8080\",target_ip=\"10.0.0.5\",target_port=\"8080\",srv_group=\"\",srv_kind=\"default\",srv_name=\"cluster-unauthenticated\",srv_port=\"8080\",route_group=\"\",route_kind=\"default\",route_name=\"default\",tls=\"true\",client_id=\"{WEB}\"}} 2")),
        "{text}"
    );
    assert!(text.contains("inbound_tcp_authz_deny_total{"), "{text}");
}

fn rule(name: &str, matches: Vec<RequestMatch>, authorizations: Vec<Authorization>) -> Rule {
    Rule {
        matches,
        meta: Arc::new(Meta::resource("policy.linkerd.io", "HTTPRoute", name)),
        authorizations: authorizations.into(),
    }
}

fn path(p: PathMatch) -> RequestMatch {
    RequestMatch {
        path: Some(p),
        ..RequestMatch::default()
    }
}

#[test]
fn requests_take_the_most_specific_route() {
    let everyone = || vec![authz(&["0.0.0.0/0"], Authentication::Unauthenticated)];
    let routes: Vec<Route> = vec![Route {
        hosts: vec![],
        rules: vec![
            rule(
                "prefix-api",
                vec![path(PathMatch::Prefix("/api".into()))],
                vec![],
            ),
            rule(
                "exact-probe",
                vec![path(PathMatch::Exact("/api/ready".into()))],
                everyone(),
            ),
            rule(
                "get-api-v1",
                vec![RequestMatch {
                    path: Some(PathMatch::Prefix("/api/v1".into())),
                    method: Some(http::Method::GET),
                    ..RequestMatch::default()
                }],
                everyone(),
            ),
            rule(
                "regex",
                vec![path(PathMatch::Regex(
                    routes::whole_regex("/r/[0-9]+").unwrap(),
                ))],
                everyone(),
            ),
        ],
    }];
    let name = |req: &Request<()>| routes::find(&routes, req).map(|r| r.meta.name.to_string());
    assert_eq!(name(&get("/api/ready")).as_deref(), Some("exact-probe"));
    assert_eq!(name(&get("/api/v1/x")).as_deref(), Some("get-api-v1"));
    let post = Request::post("/api/v1/x").body(()).unwrap();
    assert_eq!(name(&post).as_deref(), Some("prefix-api"));
    assert_eq!(name(&get("/api")).as_deref(), Some("prefix-api"));
    assert_eq!(name(&get("/apiary")), None, "prefixes match whole segments");
    assert_eq!(name(&get("/r/42")).as_deref(), Some("regex"));
    assert_eq!(name(&get("/r/42x")), None, "regexes match whole paths");
}

#[test]
fn routes_match_hosts_headers_and_query() {
    let m = RequestMatch {
        headers: vec![(
            http::HeaderName::from_static("x-team"),
            ValueMatch::Exact(b"blue".to_vec()),
        )],
        query: vec![(
            "v".into(),
            ValueMatch::Regex(routes::whole_regex("[12]").unwrap()),
        )],
        ..RequestMatch::default()
    };
    let routes = vec![
        Route {
            hosts: vec![HostMatch::Suffix(".example.com".into())],
            rules: vec![rule("wild", vec![m], vec![])],
        },
        Route {
            hosts: vec![HostMatch::Exact("web.example.com".into())],
            rules: vec![rule("exact-host", vec![], vec![])],
        },
    ];
    let req = |host: &str, uri: &str, team: &str| {
        Request::get(uri)
            .header("host", host)
            .header("x-team", team)
            .body(())
            .unwrap()
    };
    let name = |r: Request<()>| routes::find(&routes, &r).map(|r| r.meta.name.to_string());
    assert_eq!(
        name(req("web.example.com:80", "/", "red")).as_deref(),
        Some("exact-host")
    );
    assert_eq!(
        name(req("a.example.com", "/?v=2", "blue")).as_deref(),
        Some("wild")
    );
    assert_eq!(name(req("a.example.com", "/?v=3", "blue")), None);
    assert_eq!(name(req("a.example.com", "/?v=1", "red")), None);
    assert_eq!(name(req("example.com", "/?v=1", "blue")), None);
    // Hosts are names: any case, and a trailing dot, still match.
    assert_eq!(
        name(req("WEB.Example.COM.:80", "/", "red")).as_deref(),
        Some("exact-host")
    );
    assert_eq!(
        name(req("A.EXAMPLE.com", "/?v=2", "blue")).as_deref(),
        Some("wild")
    );
    assert_eq!(name(req("EXAMPLE.COM", "/?v=1", "blue")), None);
}

#[tokio::test]
async fn a_policy_change_replaces_earlier_decisions() {
    let cluster = [net("10.0.0.0/8")];
    let allow = Arc::new(server_policy(
        DefaultInboundPolicy::ClusterUnauthenticated,
        &cluster,
    ));
    let deny = Arc::new(server_policy(DefaultInboundPolicy::Deny, &cluster));
    let (tx, port) = PortPolicy::channel(allow.clone());
    let metrics = Arc::new(Metrics::new());
    let mut c = ConnPolicy::new(
        SocketAddr::new(ip("10.1.1.1"), 40000),
        "10.0.0.5:8080".parse().unwrap(),
        ClientTls::Plain,
        port,
        metrics.clone(),
    );
    assert_eq!(c.check_http(&get("/")), Ok(()));
    assert_eq!(c.check_http_unrouted(), Some(Ok(())));
    assert!(c.check_tcp().is_ok());

    // The decision remembered under the old policy is not reused under the new one.
    tx.send_replace(deny);
    assert_eq!(c.check_http(&get("/")), Err(HttpDenied::Unauthorized));
    assert_eq!(c.check_http_unrouted(), Some(Err(HttpDenied::Unauthorized)));
    let count = |family: &str| {
        let text = metrics.render();
        let line = text.lines().find(|l| l.starts_with(&format!("{family}{{")));
        line.and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    assert_eq!(count("inbound_http_authz_allow_total"), Some(2));
    assert_eq!(count("inbound_http_authz_deny_total"), Some(2));

    // An opaque connection allowed before is revoked by the change, and kept by the next.
    assert!(!c.recheck_tcp());
    tx.send_replace(allow);
    let wait = std::time::Duration::from_secs(5);
    tokio::time::timeout(wait, c.changed())
        .await
        .expect("the change is noticed");
    assert!(c.recheck_tcp());
    assert_eq!(c.check_http(&get("/")), Ok(()));
    assert_eq!(count("inbound_http_authz_allow_total"), Some(3));
    assert_eq!(count("inbound_tcp_authz_terminate_total"), Some(1));
}

#[test]
fn routed_policies_authorize_per_route_and_refuse_unmatched_requests() {
    let server = vec![authz(&["10.0.0.0/8"], Authentication::Unauthenticated)];
    let mut probe_authz = vec![authz(&["0.0.0.0/0"], Authentication::Unauthenticated)];
    probe_authz.extend(server.clone());
    let policy = ServerPolicy {
        meta: Arc::new(Meta::resource("policy.linkerd.io", "server", "web")),
        protocol: Protocol::Detect,
        authorizations: server.clone().into(),
        http_routes: vec![Route {
            hosts: vec![],
            rules: vec![
                rule(
                    "probe",
                    vec![path(PathMatch::Exact("/ready".into()))],
                    probe_authz,
                ),
                rule("app", vec![path(PathMatch::Prefix("/app".into()))], server),
            ],
        }]
        .into(),
    };
    let (c, metrics) = conn(policy.clone(), "192.168.0.9", ClientTls::Plain);
    assert_eq!(c.check_http_unrouted(), None, "routes need the request");
    assert_eq!(c.check_http(&get("/ready")), Ok(()));
    assert_eq!(c.check_http(&get("/app/x")), Err(HttpDenied::Unauthorized));
    assert_eq!(c.check_http(&get("/other")), Err(HttpDenied::NoRoute));
    let text = metrics.render();
    assert!(text.contains("route_name=\"probe\""), "{text}");
    assert!(
        text.contains("inbound_http_route_not_found_total{"),
        "{text}"
    );
    let (c, _) = conn(policy, "10.0.0.9", ClientTls::Plain);
    assert_eq!(c.check_http(&get("/app/x")), Ok(()));
}

#[test]
fn answers_from_the_control_plane_become_policies() {
    use linkerd2_proxy_api::inbound as proto;
    let authz = |nets: Vec<linkerd2_proxy_api::net::IpNetwork>| proto::Authz {
        networks: nets
            .into_iter()
            .map(|n| proto::Network {
                net: Some(n),
                except: vec![],
            })
            .collect(),
        authentication: Some(proto::Authn {
            permit: Some(proto::authn::Permit::MeshTls(proto::authn::PermitMeshTls {
                clients: Some(proto::authn::permit_mesh_tls::Clients::Identities(
                    proto::authn::permit_mesh_tls::PermitClientIdentities {
                        identities: vec![proto::Identity { name: WEB.into() }],
                        suffixes: vec![],
                    },
                )),
            })),
        }),
        labels: [("kind", "serverauthorization"), ("name", "web-only")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        metadata: None,
    };
    let server = |authorizations: Vec<proto::Authz>, kind| proto::Server {
        protocol: Some(proto::ProxyProtocol { kind: Some(kind) }),
        server_ips: vec![],
        authorizations,
        labels: [("name", "db")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let opaque = proto::proxy_protocol::Kind::Opaque(proto::proxy_protocol::Opaque {});
    let policy = convert(server(
        vec![authz(vec![(ip("10.0.0.0"), 8).into()])],
        opaque.clone(),
    ))
    .unwrap();
    assert_eq!(policy.protocol, Protocol::Opaque);
    assert_eq!(
        *policy.meta,
        Meta::resource("policy.linkerd.io", "server", "db")
    );
    assert_eq!(
        *policy.authorizations[0].meta,
        Meta::resource("policy.linkerd.io", "serverauthorization", "web-only")
    );
    let permits = |client: &str, tls: &ClientTls| {
        first_permit(&policy.authorizations, ip(client), tls).map(|a| a.meta.name.to_string())
    };
    assert_eq!(permits("10.1.1.1", &id(WEB)).as_deref(), Some("web-only"));
    assert_eq!(permits("10.1.1.1", &ClientTls::Plain), None);
    // Linkerd's rule: the control plane's policies always let localhost in.
    assert_eq!(
        permits("127.0.0.1", &ClientTls::Plain).as_deref(),
        Some("localhost")
    );
    assert_eq!(
        permits("::1", &ClientTls::Plain).as_deref(),
        Some("localhost")
    );
    assert_eq!(permits("127.0.0.2", &ClientTls::Plain), None);

    assert_eq!(
        convert(server(vec![authz(vec![])], opaque.clone())),
        Err(InvalidPolicy::NoNetworks)
    );
    let mut no_protocol = server(vec![], opaque);
    no_protocol.protocol = None;
    assert_eq!(convert(no_protocol), Err(InvalidPolicy::NoProtocol));
}

#[test]
fn grpc_routes_from_the_control_plane_match_posts_to_their_methods() {
    use linkerd2_proxy_api::{grpc_route as g, http_route as h, inbound as proto, meta};
    let rpc = |service: &str, method: &str| g::GrpcRouteMatch {
        rpc: Some(g::GrpcRpcMatch {
            service: service.into(),
            method: method.into(),
        }),
        headers: vec![],
    };
    let rule = |matches| proto::grpc_route::Rule {
        matches,
        filters: vec![],
    };
    let route = proto::GrpcRoute {
        metadata: Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Resource(meta::Resource {
                group: "gateway.networking.k8s.io".into(),
                kind: "GRPCRoute".into(),
                name: "rpc".into(),
                ..meta::Resource::default()
            })),
        }),
        hosts: vec![h::HostMatch {
            r#match: Some(h::host_match::Match::Exact("Web.Example.com.".into())),
        }],
        authorizations: vec![],
        rules: vec![
            rule(vec![rpc("pkg.Svc", "Get")]),
            rule(vec![rpc("pkg.Admin", ""), rpc("", "List")]),
        ],
    };
    let policy = convert(proto::Server {
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proto::proxy_protocol::Kind::Grpc(
                proto::proxy_protocol::Grpc {
                    routes: vec![route],
                },
            )),
        }),
        server_ips: vec![],
        authorizations: vec![],
        labels: [("name", "web")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .unwrap();
    assert_eq!(policy.http_routes.len(), 1);
    let rules = &policy.http_routes[0].rules;
    assert_eq!(rules.len(), 2);
    assert!(
        Arc::ptr_eq(&rules[0].meta, &rules[1].meta),
        "one name per route"
    );
    assert_eq!(
        *rules[0].meta,
        Meta::resource("gateway.networking.k8s.io", "GRPCRoute", "rpc")
    );
    let found = |method: http::Method, host: &str, path: &str| {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host)
            .body(())
            .unwrap();
        routes::find(&policy.http_routes, &req)
            .map(|r| rules.iter().position(|x| std::ptr::eq(x, r)).unwrap())
    };
    let post = http::Method::POST;
    assert_eq!(
        found(post.clone(), "web.example.com", "/pkg.Svc/Get"),
        Some(0)
    );
    assert_eq!(
        found(http::Method::GET, "web.example.com", "/pkg.Svc/Get"),
        None
    );
    assert_eq!(
        found(post.clone(), "other.example.com", "/pkg.Svc/Get"),
        None
    );
    assert_eq!(found(post.clone(), "web.example.com", "/pkg.Svc/Put"), None);
    assert_eq!(
        found(post.clone(), "web.example.com", "/pkg.Admin/Any"),
        Some(1)
    );
    assert_eq!(
        found(post.clone(), "web.example.com", "/any.Svc/List"),
        Some(1)
    );
    assert_eq!(found(post, "web.example.com", "/a/b/List"), None);
}
