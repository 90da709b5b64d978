//! `mesh-controller destination` as a process against the fake API server: a proxy-API client
//! sees endpoints and profiles follow the objects, and the admin server and SIGTERM behave.
#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use linkerd2_proxy_api::destination as pb;
use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use mesh_testkube::FakeKube;
use pb::update::Update;
use serde_json::json;
use tonic::Streaming;

const DEADLINE: Duration = Duration::from_secs(20);

/// Starts `mesh-controller destination` against `kube`; the directory holds its kubeconfig.
fn start(kube: &FakeKube) -> (support::Controller, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-controller"));
    command
        .args(["--log-level", "info", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--admin-addr", "127.0.0.1:0"])
        .args(["--shutdown-grace-period", "5s"])
        .args(["destination", "--addr", "127.0.0.1:0"])
        .args(["--policy-addr", "127.0.0.1:0"])
        .args(["--default-opaque-ports", "3306"])
        .env("KUBECACHEDIR", dir.path());
    let controller = support::start(command, "grpc")
        .unwrap_or_else(|(status, log)| panic!("controller did not start ({status:?}):\n{log}"));
    (controller, dir)
}

async fn client(controller: &support::Controller) -> DestinationClient<tonic::transport::Channel> {
    DestinationClient::connect(format!("http://{}", controller.addr))
        .await
        .unwrap()
}

fn path(svc: &str, port: u16) -> pb::GetDestination {
    pb::GetDestination {
        path: format!("{svc}.shop.svc.cluster.local:{port}"),
        ..Default::default()
    }
}

async fn next<T>(stream: &mut Streaming<T>) -> T {
    tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("no message before the deadline")
        .expect("stream failed")
        .expect("stream ended")
}

fn slice(endpoints: &[(&str, &str)]) -> serde_json::Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints.iter().map(|(ip, pod)| json!({
            "addresses": [ip], "conditions": {"ready": true},
            "targetRef": {"kind": "Pod", "name": pod, "namespace": "shop"}})).collect::<Vec<_>>(),
    })
}

fn seed(kube: &FakeKube) {
    kube.apply_yaml(support::CRDS).unwrap();
    kube.create(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"clusterIP": "10.96.0.20", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .unwrap();
    kube.create(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "empty", "namespace": "shop"},
        "spec": {"ports": [{"port": 80}]},
    }))
    .unwrap();
    for (name, ip) in [("web-1", "10.1.0.1"), ("web-2", "10.1.0.2")] {
        kube.create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"serviceAccountName": "web", "containers": [
                {"name": "app", "image": "web"},
                {"name": "linkerd-proxy", "image": "proxy"}]},
        }))
        .unwrap();
        kube.edit_status("Pod", "shop", name, |status| {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        })
        .unwrap();
    }
    kube.create(slice(&[("10.1.0.1", "web-1"), ("10.1.0.2", "web-2")]))
        .unwrap();
}

fn addrs(addrs: &[linkerd2_proxy_api::net::TcpAddress]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = addrs
        .iter()
        .map(|a| SocketAddr::try_from(*a).unwrap())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_profiles_follow_the_cluster() {
    let kube = FakeKube::start().unwrap();
    seed(&kube);
    let (controller, _dir) = start(&kube);
    assert!(
        controller.wait_ready(DEADLINE),
        "never ready:\n{}",
        controller.stderr()
    );
    let mut client = client(&controller).await;

    // Both endpoints, with the identity the identity service would issue and the H2 hint.
    let mut web = client.get(path("web", 80)).await.unwrap().into_inner();
    let Some(Update::Add(set)) = next(&mut web).await.update else {
        panic!("expected Add first");
    };
    assert_eq!(set.metric_labels["service"], "web");
    let got: Vec<SocketAddr> = addrs(
        &set.addrs
            .iter()
            .map(|a| a.addr.unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        got,
        vec![
            "10.1.0.1:8080".parse().unwrap(),
            "10.1.0.2:8080".parse().unwrap()
        ]
    );
    let identity = match &set.addrs[0].tls_identity.as_ref().unwrap().strategy {
        Some(pb::tls_identity::Strategy::DnsLikeIdentity(id)) => id.name.clone(),
        other => panic!("unexpected identity {other:?}"),
    };
    assert_eq!(
        identity,
        mesh_names::identity::workload("web", "shop", "linkerd", "cluster.local")
    );
    assert!(matches!(
        set.addrs[0].protocol_hint.as_ref().unwrap().protocol,
        Some(pb::protocol_hint::Protocol::H2(_))
    ));

    // The admin port answers the same lookup as JSON, for `mesh diagnostics endpoints`.
    let (code, body) = controller.admin_get("/endpoints?authority=web.shop.svc.cluster.local%3A80");
    assert_eq!(code, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["exists"], true);
    let endpoints = answer["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{answer}");
    assert_eq!(
        endpoints[0],
        serde_json::json!({"namespace": "shop", "ip": "10.1.0.1", "port": 8080, "pod": "web-1", "service": "web"})
    );
    let (code, body) = controller.admin_get("/endpoints?authority=nope.shop.svc.cluster.local:80");
    assert_eq!(
        (code, body.as_str()),
        (404, "Service nope.shop not found\n")
    );
    let (code, _) = controller.admin_get("/endpoints");
    assert_eq!(code, 400);

    // The slice loses an endpoint: a Remove for it.
    kube.apply_yaml(&serde_json::to_string(&slice(&[("10.1.0.1", "web-1")])).unwrap())
        .unwrap();
    let Some(Update::Remove(removed)) = next(&mut web).await.update else {
        panic!("expected Remove");
    };
    assert_eq!(
        addrs(&removed.addrs),
        vec!["10.1.0.2:8080".parse().unwrap()]
    );

    // A service without endpoints, an unknown one, a malformed name.
    let mut empty = client.get(path("empty", 80)).await.unwrap().into_inner();
    assert_eq!(
        next(&mut empty).await.update,
        Some(Update::NoEndpoints(pb::NoEndpoints { exists: true }))
    );
    let unknown = client.get(path("nope", 80)).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let bad = client
        .get(pb::GetDestination {
            path: "not a name".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    // The service is deleted while streamed: it no longer exists.
    kube.delete("Service", "shop", "empty").unwrap();
    assert_eq!(
        next(&mut empty).await.update,
        Some(Update::NoEndpoints(pb::NoEndpoints { exists: false }))
    );

    // Profiles: the default, then the ServiceProfile's routes as it appears.
    let mut profile = client
        .get_profile(path("web", 80))
        .await
        .unwrap()
        .into_inner();
    let default = next(&mut profile).await;
    assert_eq!(default.fully_qualified_name, "web.shop.svc.cluster.local");
    assert!(default.routes.is_empty());
    kube.apply_yaml(
        r#"
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.shop.svc.cluster.local, namespace: shop}
spec:
  routes:
  - name: GET /books
    condition: {method: GET, pathRegex: /books}
    isRetryable: true
    timeout: 2s
"#,
    )
    .unwrap();
    let routed = next(&mut profile).await;
    assert_eq!(routed.routes.len(), 1);
    assert_eq!(routed.routes[0].metrics_labels["route"], "GET /books");
    assert!(routed.routes[0].is_retryable);

    // Opaque by default: port 3306.
    let mut mysql = client
        .get_profile(path("web", 3306))
        .await
        .unwrap()
        .into_inner();
    assert!(next(&mut mysql).await.opaque_protocol);

    // Metrics count the open streams and the messages sent.
    let (code, metrics) = controller.admin_get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains(r#"destination_streams_open{rpc="Get"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("destination_updates_sent_total"),
        "{metrics}"
    );

    // SIGTERM ends the open streams and the process exits 0.
    drop(client);
    let code = controller
        .terminate(DEADLINE)
        .expect("controller did not exit after SIGTERM");
    assert!(code.success(), "{code:?}");
    let ended = tokio::time::timeout(DEADLINE, web.message()).await.unwrap();
    assert!(matches!(ended, Ok(None) | Err(_)));
}
