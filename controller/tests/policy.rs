//! The inbound policy API of `mesh-controller destination`, as a process against the fake API
//! server with the CRDs install renders: a proxy-API client sees each default policy, Servers and
//! their authorizations, and changes reach open `WatchPort` streams within a second.
#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use linkerd2_proxy_api::inbound as pb;
use linkerd2_proxy_api::inbound::inbound_server_policies_client::InboundServerPoliciesClient;
use linkerd2_proxy_api::meta;
use mesh_testkube::FakeKube;
use pb::authn::Permit;
use pb::authn::permit_mesh_tls::Clients;
use pb::proxy_protocol::Kind;
use serde_json::{Value, json};
use tonic::{Code, Streaming};

const DEADLINE: Duration = Duration::from_secs(20);
/// How soon a change must reach an open stream.
const PROPAGATION: Duration = Duration::from_secs(1);

type Client = InboundServerPoliciesClient<tonic::transport::Channel>;

/// Starts `mesh-controller destination` with `default_policy`, waits until it is ready, and
/// connects a policy client.
async fn start(
    kube: &FakeKube,
    default_policy: &str,
) -> (support::Controller, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-controller"));
    command
        .args(["--log-level", "info,mesh_controller=debug", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--admin-addr", "127.0.0.1:0"])
        .args(["--shutdown-grace-period", "5s"])
        .args(["destination", "--addr", "127.0.0.1:0"])
        .args(["--policy-addr", "127.0.0.1:0"])
        .args(["--cluster-networks", "10.0.0.0/8,fd00::/8"])
        .args(["--default-inbound-policy", default_policy])
        .env("KUBECACHEDIR", dir.path());
    let controller = support::start(command, "policy")
        .unwrap_or_else(|(status, log)| panic!("controller did not start ({status:?}):\n{log}"));
    assert!(
        controller.wait_ready(DEADLINE),
        "never ready:\n{}",
        controller.stderr()
    );
    let client = InboundServerPoliciesClient::connect(format!("http://{}", controller.addr))
        .await
        .unwrap();
    (controller, client, dir)
}

fn cluster() -> FakeKube {
    let kube = FakeKube::start().unwrap();
    kube.apply_yaml(support::CRDS).unwrap();
    kube
}

fn create_pod(kube: &FakeKube, name: &str, annotations: Value) {
    kube.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"},
                     "annotations": annotations},
        "spec": {"serviceAccountName": "web", "containers": [
            {"name": "app", "image": "web",
             "ports": [{"name": "http", "containerPort": 8080}],
             "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}},
            {"name": "linkerd-proxy", "image": "proxy"}]},
    }))
    .unwrap();
}

fn port(pod: &str, port: u32) -> pb::PortSpec {
    pb::PortSpec {
        workload: format!("{{\"ns\":\"shop\", \"pod\":\"{pod}\"}}\n"),
        port,
    }
}

async fn next(stream: &mut Streaming<pb::Server>, limit: Duration) -> Option<pb::Server> {
    tokio::time::timeout(limit, stream.message())
        .await
        .ok()
        .map(|m| m.expect("stream failed").expect("stream ended"))
}

/// Reads the stream until a message satisfies `check`, within `limit` of now; the message and
/// how long it took.
async fn until(
    stream: &mut Streaming<pb::Server>,
    limit: Duration,
    check: impl Fn(&pb::Server) -> bool,
) -> (pb::Server, Duration) {
    let start = Instant::now();
    let deadline = start + limit;
    let mut last = None;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match next(stream, left).await {
            Some(server) if check(&server) => return (server, start.elapsed()),
            Some(server) => last = Some(server),
            None => break,
        }
    }
    panic!("no matching message within {limit:?}; last: {last:#?}");
}

fn labels(server: &pb::Server) -> (String, String, String) {
    let get = |k: &str| server.labels.get(k).cloned().unwrap_or_default();
    (get("group"), get("kind"), get("name"))
}

fn authz_names(server: &pb::Server) -> Vec<String> {
    server
        .authorizations
        .iter()
        .map(
            |a| match a.metadata.as_ref().and_then(|m| m.kind.as_ref()) {
                Some(meta::metadata::Kind::Default(name)) => format!("default:{name}"),
                Some(meta::metadata::Kind::Resource(r)) => format!("{}:{}", r.kind, r.name),
                None => "?".into(),
            },
        )
        .collect()
}

fn networks(authz: &pb::Authz) -> Vec<String> {
    authz
        .networks
        .iter()
        .map(|n| {
            let net = n.net.unwrap();
            let ip = std::net::IpAddr::try_from(net.ip.unwrap()).unwrap();
            let except: Vec<String> = n
                .except
                .iter()
                .map(|e| {
                    let ip = std::net::IpAddr::try_from(e.ip.unwrap()).unwrap();
                    format!("{ip}/{}", e.prefix_len)
                })
                .collect();
            if except.is_empty() {
                format!("{ip}/{}", net.prefix_len)
            } else {
                format!("{ip}/{} except {}", net.prefix_len, except.join(","))
            }
        })
        .collect()
}

/// `unauthenticated`, `tls`, or the identities and suffixes a mesh-TLS authorization names.
fn authentication(authz: &pb::Authz) -> String {
    match authz
        .authentication
        .as_ref()
        .and_then(|a| a.permit.as_ref())
    {
        Some(Permit::Unauthenticated(_)) => "unauthenticated".into(),
        Some(Permit::MeshTls(tls)) => match &tls.clients {
            Some(Clients::Unauthenticated(_)) => "tls".into(),
            Some(Clients::Identities(ids)) => {
                let mut names: Vec<String> =
                    ids.identities.iter().map(|i| i.name.clone()).collect();
                names.extend(ids.suffixes.iter().map(|s| {
                    std::iter::once("*")
                        .chain(s.parts.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(".")
                }));
                names.join(" ")
            }
            None => "?".into(),
        },
        None => "?".into(),
    }
}

fn http_routes(server: &pb::Server) -> &[pb::HttpRoute] {
    match server.protocol.as_ref().and_then(|p| p.kind.as_ref()) {
        Some(Kind::Detect(d)) => &d.http_routes,
        Some(Kind::Http1(h)) => &h.routes,
        Some(Kind::Http2(h)) => &h.routes,
        other => panic!("not an HTTP protocol: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_default_policy() {
    let kube = cluster();
    let policies = [
        "all-unauthenticated",
        "all-authenticated",
        "cluster-unauthenticated",
        "cluster-authenticated",
        "deny",
        "audit",
    ];
    create_pod(&kube, "plain", json!({}));
    for policy in policies {
        create_pod(
            &kube,
            policy,
            json!({"config.linkerd.io/default-inbound-policy": policy}),
        );
    }
    let (controller, mut client, _dir) = start(&kube, "cluster-authenticated").await;

    let all = vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
    let cluster = vec!["10.0.0.0/8".to_string(), "fd00::/8".to_string()];
    let any_identity = "*".to_string();
    let expected: HashMap<&str, Option<(Vec<String>, String)>> = HashMap::from([
        (
            "all-unauthenticated",
            Some((all.clone(), "unauthenticated".into())),
        ),
        (
            "all-authenticated",
            Some((all.clone(), any_identity.clone())),
        ),
        (
            "cluster-unauthenticated",
            Some((cluster.clone(), "unauthenticated".into())),
        ),
        (
            "cluster-authenticated",
            Some((cluster.clone(), any_identity.clone())),
        ),
        ("deny", None),
        ("audit", Some((all.clone(), "unauthenticated".into()))),
    ]);
    // The pod without an annotation gets the flag's policy.
    let mut open = Vec::new();
    for (pod, policy) in policies
        .iter()
        .map(|p| (*p, *p))
        .chain([("plain", "cluster-authenticated")])
    {
        let got = client.get_port(port(pod, 7000)).await.unwrap().into_inner();
        let mut watch = client
            .watch_port(port(pod, 7000))
            .await
            .unwrap()
            .into_inner();
        let watched = next(&mut watch, DEADLINE).await.unwrap();
        assert_eq!(got, watched, "GetPort and WatchPort agree");
        open.push(watch);
        assert_eq!(
            labels(&got),
            (String::new(), "default".into(), policy.to_string())
        );
        let Some(Kind::Detect(detect)) = got.protocol.as_ref().and_then(|p| p.kind.as_ref()) else {
            panic!("{pod}: expected detection: {got:?}");
        };
        assert_eq!(detect.timeout.unwrap().seconds, 10);
        assert_eq!(detect.http_routes.len(), 1, "the default route only");
        match &expected[policy] {
            None => assert!(got.authorizations.is_empty(), "{pod}: {got:?}"),
            Some((nets, authn)) => {
                assert_eq!(got.authorizations.len(), 1, "{pod}: {got:?}");
                let authz = &got.authorizations[0];
                assert_eq!(&networks(authz), nets, "{pod}");
                assert_eq!(&authentication(authz), authn, "{pod}");
                assert_eq!(authz_names(&got), [format!("default:{policy}")]);
                assert_eq!(authz.labels["kind"], "default");
                assert_eq!(authz.labels["name"], policy);
            }
        }
    }

    // The probe port gets the probe route, open to every network.
    let probed = client
        .get_port(port("deny", 8080))
        .await
        .unwrap()
        .into_inner();
    let routes = http_routes(&probed);
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert_eq!(
        routes[1].metadata,
        Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Default("probe".into()))
        })
    );
    assert_eq!(networks(&routes[1].authorizations[0]), all);

    // The metrics count the open streams.
    let (code, metrics) = controller.admin_get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains(r#"policy_streams_open{rpc="WatchPort"} 7"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_and_authorizations_follow_the_cluster() {
    let kube = cluster();
    create_pod(&kube, "web-1", json!({}));
    let (controller, mut client, _dir) = start(&kube, "deny").await;

    // Unknown pods and bad requests get Linkerd's codes.
    let unknown = client.get_port(port("nope", 80)).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let unknown = client.watch_port(port("nope", 80)).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    for bad in [
        pb::PortSpec {
            workload: "web-1".into(),
            port: 80,
        },
        port("web-1", 0),
        port("web-1", 70_000),
        pb::PortSpec {
            workload: format!("shop:{}", "x".repeat(2000)),
            port: 80,
        },
    ] {
        let err = client.watch_port(bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err:?}");
    }
    // A request larger than any workload string is refused before it is read.
    let huge = pb::PortSpec {
        workload: format!("shop:{}", "x".repeat(64 * 1024)),
        port: 80,
    };
    let err = client.watch_port(huge).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    // The older `<ns>:<pod>` form names the same pod.
    let old = pb::PortSpec {
        workload: "shop:web-1".into(),
        port: 8080,
    };
    assert_eq!(
        client.get_port(old).await.unwrap().into_inner(),
        client
            .get_port(port("web-1", 8080))
            .await
            .unwrap()
            .into_inner()
    );

    let mut watch = client
        .watch_port(port("web-1", 8080))
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut watch, DEADLINE).await.unwrap();
    assert_eq!(labels(&first).2, "deny");

    // A Server selects the port by its container port's name.
    kube.apply_yaml(
        r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: shop, labels: {tier: front}}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
  proxyProtocol: HTTP/1
"#,
    )
    .unwrap();
    let (server, _) = until(&mut watch, DEADLINE, |s| labels(s).1 == "server").await;
    assert_eq!(
        labels(&server),
        (
            "policy.linkerd.io".into(),
            "server".into(),
            "web-http".into()
        )
    );
    assert!(matches!(
        server.protocol.as_ref().and_then(|p| p.kind.as_ref()),
        Some(Kind::Http1(_))
    ));
    assert!(
        server.authorizations.is_empty(),
        "a Server admits nobody by itself"
    );
    assert_eq!(http_routes(&server).len(), 2, "default and probe routes");

    // A MeshTLSAuthentication, then the AuthorizationPolicy that requires it: within a second.
    kube.apply_yaml(
        r#"
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: books, namespace: shop}
spec:
  identities: ["*.tools.serviceaccount.identity.linkerd.cluster.local"]
  identityRefs:
  - {kind: ServiceAccount, name: books}
"#,
    )
    .unwrap();
    let policy = r#"
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: books-only, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: books}
"#;
    let created = Instant::now();
    kube.apply_yaml(policy).unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| !s.authorizations.is_empty()).await;
    let took = created.elapsed();
    assert_eq!(authz_names(&server), ["authorizationpolicy:books-only"]);
    let authz = &server.authorizations[0];
    assert_eq!(networks(authz), ["0.0.0.0/0", "::/0"]);
    assert_eq!(
        authentication(authz),
        "books.shop.serviceaccount.identity.linkerd.cluster.local \
         *.tools.serviceaccount.identity.linkerd.cluster.local"
    );
    eprintln!("AuthorizationPolicy created → WatchPort update in {took:?}");

    // A NetworkAuthentication required by a second policy gives networks.
    kube.apply_yaml(
        r#"
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: office, namespace: shop}
spec:
  networks:
  - {cidr: 192.168.0.0/16, except: [192.168.9.0/24]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: office, namespace: shop}
spec:
  targetRef: {kind: Namespace, name: shop}
  requiredAuthenticationRefs:
  - {group: policy.linkerd.io, kind: NetworkAuthentication, name: office}
"#,
    )
    .unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| s.authorizations.len() == 2).await;
    let office = &server.authorizations[1];
    assert_eq!(
        authz_names(&server),
        [
            "authorizationpolicy:books-only",
            "authorizationpolicy:office"
        ]
    );
    assert_eq!(networks(office), ["192.168.0.0/16 except 192.168.9.0/24"]);
    assert_eq!(authentication(office), "unauthenticated");

    // The older ServerAuthorization, by the Server's labels.
    kube.apply_yaml(
        r#"
apiVersion: policy.linkerd.io/v1beta1
kind: ServerAuthorization
metadata: {name: legacy, namespace: shop}
spec:
  server: {selector: {matchLabels: {tier: front}}}
  client:
    meshTLS:
      serviceAccounts: [{name: cli, namespace: tools}]
"#,
    )
    .unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| s.authorizations.len() == 3).await;
    let legacy = &server.authorizations[0];
    assert_eq!(authz_names(&server)[0], "serverauthorization:legacy");
    assert_eq!(
        networks(legacy),
        ["10.0.0.0/8", "fd00::/8"],
        "cluster networks"
    );
    assert_eq!(
        authentication(legacy),
        "cli.tools.serviceaccount.identity.linkerd.cluster.local"
    );

    // Deleting a policy reaches the stream within a second, too.
    let deleted = Instant::now();
    kube.delete("AuthorizationPolicy", "shop", "books-only")
        .unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| s.authorizations.len() == 2).await;
    eprintln!(
        "AuthorizationPolicy deleted → WatchPort update in {:?}",
        deleted.elapsed()
    );
    assert_eq!(
        authz_names(&server),
        ["serverauthorization:legacy", "authorizationpolicy:office"]
    );

    // Deleting the Server brings the default back.
    kube.delete("Server", "shop", "web-http").unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| labels(s).1 == "default").await;
    assert!(server.authorizations.is_empty(), "deny");

    // Deleting the pod ends its streams.
    kube.delete("Pod", "shop", "web-1").unwrap();
    let ended = tokio::time::timeout(DEADLINE, watch.message())
        .await
        .unwrap();
    assert!(matches!(ended, Ok(None)), "{ended:?}");
    let gone = client.get_port(port("web-1", 8080)).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // SIGTERM: the process drains and exits 0.
    drop(client);
    let code = controller
        .terminate(DEADLINE)
        .expect("no exit after SIGTERM");
    assert!(code.success(), "{code:?}");
}

fn route_names(routes: &[pb::HttpRoute]) -> Vec<String> {
    routes
        .iter()
        .map(
            |r| match r.metadata.as_ref().and_then(|m| m.kind.as_ref()) {
                Some(meta::metadata::Kind::Default(name)) => format!("default:{name}"),
                Some(meta::metadata::Kind::Resource(r)) => {
                    format!("{}/{}:{}", r.group, r.kind, r.name)
                }
                None => "?".into(),
            },
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_and_their_policies_follow_the_cluster() {
    let kube = cluster();
    create_pod(&kube, "web-1", json!({}));
    kube.apply_yaml(
        r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: http
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: cluster, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs: []
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: books-api, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: books-api}
  requiredAuthenticationRefs:
  - {kind: ServiceAccount, name: books}
"#,
    )
    .unwrap();
    // No Gateway API CRDs in this cluster: the controller still becomes ready.
    let (controller, mut client, _dir) = start(&kube, "deny").await;
    let mut watch = client
        .watch_port(port("web-1", 8080))
        .await
        .unwrap()
        .into_inner();
    let (first, _) = until(&mut watch, DEADLINE, |s| labels(s).1 == "server").await;
    assert_eq!(
        route_names(http_routes(&first)),
        ["default:default", "default:probe"]
    );
    assert_eq!(authz_names(&first), ["authorizationpolicy:cluster"]);

    // The HTTPRoute replaces the default routes, with its policy, within a second.
    let created = Instant::now();
    kube.apply_yaml(
        r#"
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: books-api, namespace: shop}
spec:
  parentRefs:
  - {group: policy.linkerd.io, kind: Server, name: web-http}
  hostnames: ["*.example.com"]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /books}
      headers: [{name: x-tenant, value: acme}]
      method: GET
"#,
    )
    .unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| {
        route_names(http_routes(s)) == ["policy.linkerd.io/HTTPRoute:books-api"]
    })
    .await;
    eprintln!(
        "HTTPRoute created → WatchPort update in {:?}",
        created.elapsed()
    );
    // The server's own authorizations stay at the server (the proxy adds them to every route).
    assert_eq!(authz_names(&server), ["authorizationpolicy:cluster"]);
    let route = &http_routes(&server)[0];
    let route_authz: Vec<String> = route.authorizations.iter().map(authentication).collect();
    assert_eq!(
        route_authz,
        ["books.shop.serviceaccount.identity.linkerd.cluster.local"]
    );
    use linkerd2_proxy_api::http_route as hr;
    assert_eq!(
        route.hosts,
        [hr::HostMatch {
            r#match: Some(hr::host_match::Match::Suffix(hr::host_match::Suffix {
                reverse_labels: vec!["com".into(), "example".into()],
            })),
        }]
    );
    assert_eq!(
        route.rules,
        [pb::http_route::Rule {
            matches: vec![hr::HttpRouteMatch {
                path: Some(hr::PathMatch {
                    kind: Some(hr::path_match::Kind::Prefix("/books".into())),
                }),
                headers: vec![hr::HeaderMatch {
                    name: "x-tenant".into(),
                    value: Some(hr::header_match::Value::Exact(b"acme".to_vec())),
                }],
                query_params: Vec::new(),
                method: Some(http::Method::GET.into()),
            }],
            filters: Vec::new(),
        }]
    );

    // Deleting the route brings the default routes back within a second.
    let deleted = Instant::now();
    kube.delete("HTTPRoute", "shop", "books-api").unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| {
        route_names(http_routes(s))[0] == "default:default"
    })
    .await;
    eprintln!(
        "HTTPRoute deleted → WatchPort update in {:?}",
        deleted.elapsed()
    );
    assert_eq!(http_routes(&server).len(), 2);
    drop(client);
    assert!(controller.terminate(DEADLINE).unwrap().success());
}

/// The Gateway API's route CRDs, reduced to what the API server needs to serve them.
const GATEWAY_CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: httproutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {kind: HTTPRoute, plural: httproutes, singular: httproute, listKind: HTTPRouteList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: grpcroutes.gateway.networking.k8s.io}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {kind: GRPCRoute, plural: grpcroutes, singular: grpcroute, listKind: GRPCRouteList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_routes_when_their_crds_are_installed() {
    let kube = cluster();
    kube.apply_yaml(GATEWAY_CRDS).unwrap();
    create_pod(&kube, "web-1", json!({}));
    kube.apply_yaml(
        r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-grpc, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: 8080
  proxyProtocol: gRPC
"#,
    )
    .unwrap();
    let (_controller, mut client, _dir) = start(&kube, "deny").await;
    let mut watch = client
        .watch_port(port("web-1", 8080))
        .await
        .unwrap()
        .into_inner();
    let grpc_routes = |s: &pb::Server| match s.protocol.as_ref().and_then(|p| p.kind.as_ref()) {
        Some(Kind::Grpc(g)) => g.routes.clone(),
        other => panic!("not gRPC: {other:?}"),
    };
    let (first, _) = until(&mut watch, DEADLINE, |s| labels(s).1 == "server").await;
    assert_eq!(grpc_routes(&first).len(), 1, "the default route");

    let created = Instant::now();
    kube.apply_yaml(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: books, namespace: shop}
spec:
  parentRefs:
  - {group: policy.linkerd.io, kind: Server, name: web-grpc}
  rules:
  - matches:
    - method: {type: Exact, service: books.v1.Books, method: Get}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: books-rpc, namespace: shop}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: books}
  requiredAuthenticationRefs: []
"#,
    )
    .unwrap();
    let (server, _) = until(&mut watch, PROPAGATION, |s| {
        grpc_routes(s)
            .first()
            .is_some_and(|r| !r.authorizations.is_empty())
    })
    .await;
    eprintln!(
        "GRPCRoute created → WatchPort update in {:?}",
        created.elapsed()
    );
    let routes = grpc_routes(&server);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(
        routes[0].metadata,
        Some(meta::Metadata {
            kind: Some(meta::metadata::Kind::Resource(meta::Resource {
                group: "gateway.networking.k8s.io".into(),
                kind: "GRPCRoute".into(),
                name: "books".into(),
                ..Default::default()
            }))
        })
    );
    let rpc = routes[0].rules[0].matches[0].rpc.clone().unwrap();
    assert_eq!(
        (rpc.service.as_str(), rpc.method.as_str()),
        ("books.v1.Books", "Get")
    );
    assert_eq!(
        authentication(&routes[0].authorizations[0]),
        "unauthenticated"
    );
    assert!(server.authorizations.is_empty(), "the route's policy only");
}

/// An HTTP/1 backend on loopback that answers 200 to every request.
fn backend() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    addr
}

/// `GET path` from the loopback address `from` (the proxy always admits 127.0.0.1, so
/// clients that policies decide on come from elsewhere in 127/8): the status.
async fn get_from(from: &str, to: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut conn = socket.connect(to).await.unwrap();
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text:?}"))
}

/// The real proxy, its inbound policy from the real controller: each route admits the client
/// its policy names, the server's policy admits nobody, and a path no route matches is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_enforces_route_policies() {
    let kube = cluster();
    create_pod(&kube, "web-1", json!({}));
    let app = backend();
    let port = app.port();
    kube.apply_yaml(&format!(
        r#"
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {{name: web, namespace: shop}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  port: {port}
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {{name: client-a, namespace: shop}}
spec:
  networks: [{{cidr: 127.0.0.2/32}}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {{name: client-b, namespace: shop}}
spec:
  networks: [{{cidr: 127.0.0.3/32}}]
"#
    ))
    .unwrap();
    for (route, path, client) in [("a", "/a", "client-a"), ("b", "/b", "client-b")] {
        kube.apply_yaml(&format!(
            r#"
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {{name: {route}, namespace: shop}}
spec:
  parentRefs: [{{group: policy.linkerd.io, kind: Server, name: web}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {{name: {route}, namespace: shop}}
spec:
  targetRef: {{group: policy.linkerd.io, kind: HTTPRoute, name: {route}}}
  requiredAuthenticationRefs:
  - {{group: policy.linkerd.io, kind: NetworkAuthentication, name: {client}}}
"#
        ))
        .unwrap();
    }
    let (controller, _client, _dir) = start(&kube, "all-unauthenticated").await;
    let svc = controller.addr.to_string();
    let fwd = app.to_string();
    let ports = port.to_string();
    let proxy = support::proxy::Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", fwd.as_str()),
        ("LINKERD2_PROXY_POLICY_SVC_ADDR", &svc),
        (
            "LINKERD2_PROXY_POLICY_WORKLOAD",
            r#"{"ns":"shop","pod":"web-1"}"#,
        ),
        ("LINKERD2_PROXY_INBOUND_PORTS", &ports),
    ]);
    // Until the policy arrives the default (all-unauthenticated) admits 127.0.0.2 everywhere.
    let deadline = Instant::now() + DEADLINE;
    while get_from("127.0.0.2", proxy.inbound, "/b").await != 403 {
        assert!(
            Instant::now() < deadline,
            "route b never refused:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get_from("127.0.0.2", proxy.inbound, "/a/x").await, 200);
    assert_eq!(get_from("127.0.0.3", proxy.inbound, "/b").await, 200);
    assert_eq!(get_from("127.0.0.3", proxy.inbound, "/a").await, 403);
    // No route matches: 404, whoever asks.
    assert_eq!(get_from("127.0.0.2", proxy.inbound, "/c").await, 404);
    // Deleting route b's policy refuses its client there within a second.
    kube.delete("AuthorizationPolicy", "shop", "b").unwrap();
    let deleted = Instant::now();
    while get_from("127.0.0.3", proxy.inbound, "/b").await != 403 {
        assert!(
            deleted.elapsed() < PROPAGATION,
            "still admitted:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
