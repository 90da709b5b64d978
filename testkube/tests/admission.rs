//! Mutating admission webhooks, called over HTTPS as the API server calls them.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use mesh_testkube::FakeKube;
use serde_json::{Value, json};
use support::webhook::{self, Certs};

const SERVER_NAME: &str = "hook.mesh.svc";

async fn client(server: &FakeKube) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("the kubeconfig parses");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig loads");
    config.default_retry = false;
    Client::try_from(config).expect("a client")
}

/// A server with the `mesh/hook` Service routed to `addr` and the namespaces `app` and `mesh`.
fn server_with_hook(addr: SocketAddr, kubelet: bool) -> FakeKube {
    let server = FakeKube::builder()
        .kubelet(kubelet)
        .fixture_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: hook, namespace: mesh}\n\
             spec: {ports: [{port: 443}]}\n",
        )
        .start()
        .expect("the server starts");
    server.route_service("mesh", "hook", 443, addr);
    server
}

fn pod(namespace: &str, name: Option<&str>, labels: Value) -> Value {
    let mut meta = json!({ "namespace": namespace, "labels": labels });
    match name {
        Some(name) => meta["name"] = json!(name),
        None => meta["generateName"] = json!("web-"),
    }
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": { "containers": [{ "name": "web", "image": "web" }] },
    })
}

/// A raw POST, to see the response's headers: (status line, headers and body).
fn raw_post(server: &FakeKube, path: &str, body: &Value) -> String {
    let mut tcp = TcpStream::connect(server.addr()).expect("connects");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).expect("writes");
    let mut out = String::new();
    tcp.read_to_string(&mut out).expect("reads");
    out
}

fn labelling_hook(certs: &Certs) -> SocketAddr {
    webhook::serve(certs, Duration::ZERO, Arc::new(webhook::label_patch))
}

#[tokio::test]
async fn webhooks_patch_pods_from_requests_and_controllers() {
    let certs = webhook::certs(&[SERVER_NAME]);
    let server = server_with_hook(labelling_hook(&certs), true);
    let extra = json!({ "objectSelector": { "matchExpressions": [
        { "key": "skip", "operator": "DoesNotExist" },
    ]}});
    server
        .create(webhook::configuration("inject", &certs.ca_bundle, extra))
        .unwrap();

    // A POST with generateName: the webhook sees no name, the pod comes back labelled and the
    // webhook's warning is a Warning header.
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "app");
    let raw = raw_post(
        &server,
        "/api/v1/namespaces/app/pods",
        &pod("app", None, json!({ "app": "web" })),
    );
    assert!(raw.starts_with("HTTP/1.1 201"), "{raw}");
    assert!(
        raw.to_lowercase()
            .contains(r#"warning: 299 - "labelled by \"the\" test""#),
        "{raw}"
    );
    let calls = server.admission_calls();
    assert_eq!(calls.len(), 1);
    let review = &calls[0];
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    let request = &review["request"];
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(
        request.get("name"),
        None,
        "a generateName pod has no name yet"
    );
    assert_eq!(request["namespace"], "app");
    assert_eq!(
        request["kind"],
        json!({ "group": "", "version": "v1", "kind": "Pod" })
    );
    assert_eq!(
        request["resource"],
        json!({ "group": "", "version": "v1", "resource": "pods" })
    );
    assert_eq!(request["requestKind"], request["kind"]);
    assert_eq!(request["object"]["metadata"]["generateName"], "web-");
    assert_eq!(request["object"]["metadata"].get("uid"), None);
    assert_eq!(request["oldObject"], Value::Null);
    assert_eq!(request["dryRun"], false);
    assert_eq!(request["options"]["kind"], "CreateOptions");
    assert_eq!(request["userInfo"]["username"], "kubernetes-admin");
    assert!(request["uid"].as_str().is_some_and(|u| !u.is_empty()));

    // Through kube-rs, and through the test handle.
    let created = pods
        .create(
            &PostParams::default(),
            &serde_json::from_value(pod("app", Some("a"), json!({}))).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.unwrap()["injected"], "true");
    let created = server.create(pod("app", Some("b"), json!({}))).unwrap();
    assert_eq!(created["metadata"]["labels"]["injected"], "true");
    assert_eq!(server.admission_calls()[2]["request"]["name"], "b");

    // Excluded by the namespaceSelector and by the objectSelector: no call, no label.
    let calls = server.admission_calls().len();
    let mesh = server.create(pod("mesh", Some("c"), json!({}))).unwrap();
    let skipped = server
        .create(pod("app", Some("d"), json!({ "skip": "yes" })))
        .unwrap();
    assert_eq!(server.admission_calls().len(), calls);
    assert_eq!(mesh["metadata"]["labels"].get("injected"), None);
    assert_eq!(skipped["metadata"]["labels"].get("injected"), None);

    // Services are admitted too.
    let svc = server
        .create(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "web", "namespace": "app" },
            "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80 }] },
        }))
        .unwrap();
    assert_eq!(svc["metadata"]["labels"]["injected"], "true");

    // A Deployment's pods are created by the ReplicaSet controller through admission.
    server
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "emoji", "namespace": "app" },
            "spec": {
                "replicas": 2,
                "selector": { "matchLabels": { "app": "emoji" } },
                "template": {
                    "metadata": { "labels": { "app": "emoji" } },
                    "spec": { "containers": [{ "name": "emoji", "image": "emoji" }] },
                },
            },
        }))
        .unwrap();
    let emoji = poll(|| {
        let pods: Vec<Value> = server
            .objects("Pod", Some("app"))
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "emoji")
            .collect();
        (pods.len() == 2).then_some(pods)
    });
    for p in &emoji {
        assert_eq!(p["metadata"]["labels"]["injected"], "true");
        assert_eq!(p["status"]["phase"], "Running");
    }
    let by_controller: Vec<Value> = server
        .admission_calls()
        .into_iter()
        .filter(|c| c["request"]["object"]["metadata"]["labels"]["app"] == "emoji")
        .collect();
    assert_eq!(by_controller.len(), 2);
    let request = &by_controller[0]["request"];
    assert_eq!(
        request["userInfo"]["username"],
        "system:serviceaccount:kube-system:replicaset-controller"
    );
    assert_eq!(request.get("name"), None);
    assert!(
        request["object"]["metadata"]["generateName"]
            .as_str()
            .unwrap()
            .starts_with("emoji-")
    );
    let deploy = poll(|| {
        let d = server.get("Deployment", "app", "emoji")?;
        (d["status"]["readyReplicas"] == 2).then_some(d)
    });
    assert_eq!(deploy["status"]["replicas"], 2);
}

/// Polls `f` every 20 ms for up to 10 s.
fn poll<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn failure(server: &FakeKube, obj: Value) -> (u16, Value) {
    let raw = raw_post(server, "/api/v1/namespaces/app/pods", &obj);
    let code: u16 = raw[9..12].parse().expect("a status code");
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    // The body may be chunked; the Status is the one JSON object in it.
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |e| e + 1);
    (
        code,
        serde_json::from_str(&body[start..end]).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn denials_failure_policies_and_timeouts() {
    let certs = webhook::certs(&[SERVER_NAME]);
    let deny = webhook::serve(
        &certs,
        Duration::ZERO,
        Arc::new(
            |_: &Value| json!({ "allowed": false, "status": { "code": 403, "reason": "Forbidden", "message": "no pods today" } }),
        ),
    );
    let server = server_with_hook(deny, false);
    server
        .create(webhook::configuration("deny", &certs.ca_bundle, json!({})))
        .unwrap();
    let (code, status) = failure(&server, pod("app", Some("a"), json!({})));
    assert_eq!(code, 403);
    assert_eq!(
        status["message"],
        r#"admission webhook "deny.example.com" denied the request: no pods today"#
    );
    assert_eq!(status["reason"], "Forbidden");
    assert!(server.get("Pod", "app", "a").is_none());
    let err = server.create(pod("app", Some("a"), json!({}))).unwrap_err();
    assert!(err.to_string().contains("no pods today"), "{err}");
    server
        .delete("MutatingWebhookConfiguration", "", "deny")
        .unwrap();

    // The webhook is down: Ignore lets the pod through unchanged, Fail refuses it.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_addr = down.local_addr().unwrap();
    drop(down);
    server.route_service("mesh", "hook", 443, down_addr);
    let ignore = json!({ "failurePolicy": "Ignore" });
    server
        .create(webhook::configuration("ignore", &certs.ca_bundle, ignore))
        .unwrap();
    let created = server.create(pod("app", Some("b"), json!({}))).unwrap();
    assert_eq!(created["metadata"]["labels"].get("injected"), None);
    server
        .delete("MutatingWebhookConfiguration", "", "ignore")
        .unwrap();

    let fail = json!({ "failurePolicy": "Fail" });
    server
        .create(webhook::configuration("fail", &certs.ca_bundle, fail))
        .unwrap();
    let (code, status) = failure(&server, pod("app", Some("c"), json!({})));
    assert_eq!(code, 500);
    assert_eq!(status["reason"], "InternalError");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            r#"Internal error occurred: failed calling webhook "fail.example.com": failed to call webhook: Post "https://hook.mesh.svc:443/inject?timeout=10s": "#
        ),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");

    // A certificate from another CA is refused.
    let other = webhook::certs(&[SERVER_NAME]);
    server.route_service("mesh", "hook", 443, labelling_hook(&other));
    let (code, status) = failure(&server, pod("app", Some("d"), json!({})));
    assert_eq!(code, 500);
    assert!(
        status["message"].as_str().unwrap().contains("tls"),
        "{status}"
    );
    server
        .delete("MutatingWebhookConfiguration", "", "fail")
        .unwrap();

    // A slow webhook times out after timeoutSeconds.
    let slow = webhook::serve(
        &certs,
        Duration::from_secs(5),
        Arc::new(webhook::label_patch),
    );
    server.route_service("mesh", "hook", 443, slow);
    let timeout = json!({ "timeoutSeconds": 1 });
    server
        .create(webhook::configuration("slow", &certs.ca_bundle, timeout))
        .unwrap();
    let started = Instant::now();
    let (code, status) = failure(&server, pod("app", Some("e"), json!({})));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, 500);
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("?timeout=1s"), "{message}");
    assert!(message.contains("context deadline exceeded"), "{message}");
}

#[test]
fn controllers_report_refused_pods() {
    let certs = webhook::certs(&[SERVER_NAME]);
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_addr = down.local_addr().unwrap();
    drop(down);
    let server = server_with_hook(down_addr, true);
    server
        .create(webhook::configuration(
            "inject",
            &certs.ca_bundle,
            json!({}),
        ))
        .unwrap();
    server
        .create(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": { "name": "web", "namespace": "app" },
            "spec": {
                "replicas": 1,
                "selector": { "matchLabels": { "app": "web" } },
                "template": {
                    "metadata": { "labels": { "app": "web" } },
                    "spec": { "containers": [{ "name": "web", "image": "web" }] },
                },
            },
        }))
        .unwrap();
    let event = poll(|| {
        server
            .objects("Event", Some("app"))
            .into_iter()
            .find(|e| e["reason"] == "FailedCreate")
    });
    assert_eq!(event["involvedObject"]["kind"], "ReplicaSet");
    assert_eq!(event["type"], "Warning");
    let message = event["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            r#"Error creating: Internal error occurred: failed calling webhook "inject.example.com""#
        ),
        "{message}"
    );
    assert!(server.objects("Pod", Some("app")).is_empty());

    // Once the webhook answers, the controller's retry creates the pod.
    server.route_service("mesh", "hook", 443, labelling_hook(&certs));
    let pod = poll(|| server.objects("Pod", Some("app")).pop());
    assert_eq!(pod["metadata"]["labels"]["injected"], "true");
}
