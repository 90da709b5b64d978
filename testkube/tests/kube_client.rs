//! kube-rs against the fake API server: the client mesh's commands use.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiResource, Discovery};
use kube::{Client, Config};
use mesh_testkube::{FakeKube, Fault};
use serde_json::json;

async fn client(server: &FakeKube) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("the kubeconfig parses");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig loads");
    // kube retries 503s with a backoff; the tests want to see them.
    config.default_retry = false;
    Client::try_from(config).expect("a client")
}

fn pods_yaml(namespace: &str, count: usize) -> String {
    (0..count)
        .map(|i| {
            let phase = if i % 10 == 0 { "Succeeded" } else { "Running" };
            let tier = if i % 2 == 0 { "even" } else { "odd" };
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i:04}\n  namespace: {namespace}\n  \
                 labels: {{app: web, tier: {tier}}}\nspec:\n  containers: [{{name: web, image: web}}]\n\
                 status: {{phase: {phase}}}\n---\n"
            )
        })
        .collect()
}

fn api_code(err: &kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_paginate_and_select() {
    let server = FakeKube::builder()
        .fixture_yaml(pods_yaml("big", 1203))
        .start()
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server).await, "big");

    let mut names = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = pods.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 500);
        names.extend(page.items.iter().map(|p| p.metadata.name.clone().unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 1203);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names, "pages are ordered and never repeat an item");

    let odd = pods
        .list(&ListParams::default().labels("app=web,tier in (odd)"))
        .await
        .unwrap();
    assert_eq!(odd.items.len(), 601);
    let running = pods
        .list(
            &ListParams::default()
                .fields("status.phase!=Succeeded")
                .labels("tier=even"),
        )
        .await
        .unwrap();
    // Even indices are 602 pods; every tenth (121 of them, all even) has Succeeded.
    assert_eq!(running.items.len(), 602 - 121);
    let one = pods
        .list(&ListParams::default().fields("metadata.name=pod-0007"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);

    let bad = pods
        .list(&ListParams::default().labels("tier in odd"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&bad), 400);

    let all: Api<Pod> = Api::all(client(&server).await);
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        1203
    );
}

#[tokio::test]
async fn create_get_update_patch_delete() {
    let server = FakeKube::start().unwrap();
    let client = client(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "cfg", "labels": { "a": "1" } },
        "data": { "k": "v", "env": "yes" },
    }))
    .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(
        api_code(&cms.create(&PostParams::default(), &cm).await.unwrap_err()),
        409
    );

    let merged = cms
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "k": null, "n": "2" } })),
        )
        .await
        .unwrap();
    let data = merged.data.clone().unwrap();
    assert_eq!(data.get("n").map(String::as_str), Some("2"));
    assert!(!data.contains_key("k"));
    assert_eq!(data.get("env").map(String::as_str), Some("yes"));

    let strategic = cms
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Strategic(json!({ "metadata": { "labels": { "b": "2" } } })),
        )
        .await
        .unwrap();
    let labels = strategic.metadata.labels.unwrap();
    assert_eq!(labels.len(), 2);

    let applied = cms
        .patch(
            "applied",
            &PatchParams::apply("testkube-test"),
            &Patch::Apply(json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "applied" }, "data": { "x": "1" } })),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["x"], "1");
    let reapplied = cms
        .patch(
            "applied",
            &PatchParams::apply("testkube-test"),
            &Patch::Apply(json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "applied" }, "data": { "y": "2" } })),
        )
        .await
        .unwrap();
    assert_eq!(reapplied.data.unwrap()["y"], "2");

    let mut stale = merged.clone();
    stale.data = Some([("z".to_string(), "0".to_string())].into());
    let conflict = cms
        .replace("cfg", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(
        api_code(&conflict),
        409,
        "a replace with an old resourceVersion conflicts"
    );
    let mut fresh = cms.get("cfg").await.unwrap();
    fresh.data = Some([("z".to_string(), "0".to_string())].into());
    let replaced = cms
        .replace("cfg", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap().len(), 1);

    cms.delete("cfg", &DeleteParams::default()).await.unwrap();
    let missing = cms.get("cfg").await.unwrap_err();
    match &missing {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
            assert_eq!(status.message, "configmaps \"cfg\" not found");
        }
        other => panic!("{other:?}"),
    }

    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    assert_eq!(
        api_code(
            &elsewhere
                .create(&PostParams::default(), &cm)
                .await
                .unwrap_err()
        ),
        404
    );
    let bad_name: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "Bad_Name" } })).unwrap();
    assert_eq!(
        api_code(
            &cms.create(&PostParams::default(), &bad_name)
                .await
                .unwrap_err()
        ),
        422
    );

    let namespaces: Api<Namespace> = Api::all(client);
    namespaces
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        server.objects("ConfigMap", Some("default")).is_empty(),
        "a namespace takes its objects along"
    );
}

#[tokio::test]
async fn watches_stream_changes() {
    let server = FakeKube::start().unwrap();
    let client = client(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "w", "labels": { "app": "x" } } }))
            .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let listed = cms.list(&ListParams::default()).await.unwrap();
    let rv = listed.metadata.resource_version.unwrap();

    let mut stream = cms
        .watch(&WatchParams::default().labels("app=x").timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    let second: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "w2", "labels": { "app": "x" } } }))
            .unwrap();
    cms.create(&PostParams::default(), &second).await.unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "a": "b" } })),
    )
    .await
    .unwrap();
    cms.patch(
        "w2",
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "app": "y" } } })),
    )
    .await
    .unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next())
            .await
            .expect("watch event within 10s")
            .unwrap()
            .expect("stream still open");
        let text = match event {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.unwrap()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.unwrap()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap()),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("{e:?}"),
        };
        seen.push(text);
    }
    // w2 leaving the selection shows up as a deletion, as the real server does it.
    assert_eq!(seen, ["ADDED w2", "MODIFIED w", "DELETED w2", "DELETED w"]);

    // The runtime watcher (list, then watch) sees the current state.
    let mut watcher =
        kube::runtime::watcher(cms.clone(), kube::runtime::watcher::Config::default()).boxed();
    let mut init = Vec::new();
    loop {
        match watcher.try_next().await.unwrap().unwrap() {
            kube::runtime::watcher::Event::InitApply(o) => init.push(o.metadata.name.unwrap()),
            kube::runtime::watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(init, ["w2"]);
}

#[tokio::test]
async fn crds_become_served_resources() {
    let server = FakeKube::start().unwrap();
    let client = client(&server).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": "servers.policy.linkerd.io" },
        "spec": {
            "group": "policy.linkerd.io",
            "scope": "Namespaced",
            "names": { "plural": "servers", "singular": "server", "kind": "Server", "shortNames": ["srv"] },
            "versions": [
                { "name": "v1alpha1", "served": true, "storage": false, "schema": { "openAPIV3Schema": { "type": "object" } } },
                { "name": "v1beta3", "served": true, "storage": true, "schema": { "openAPIV3Schema": { "type": "object" } } },
            ],
        },
    }))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = created
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(established.is_empty() || established.iter().any(|c| c.type_ == "Established"));
    let stored = crds.get("servers.policy.linkerd.io").await.unwrap();
    assert!(
        stored
            .status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let group = discovery
        .get("policy.linkerd.io")
        .expect("the CRD's group is discovered");
    let (ar, _caps) = group.recommended_kind("Server").unwrap();
    assert_eq!(
        ar.version, "v1beta3",
        "GA/beta versions are preferred over alpha"
    );

    let servers: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let server_obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
        "metadata": { "name": "admin" }, "spec": { "port": "linkerd-admin" },
    }))
    .unwrap();
    servers
        .create(&PostParams::default(), &server_obj)
        .await
        .unwrap();
    let old = ApiResource {
        version: "v1alpha1".into(),
        api_version: "policy.linkerd.io/v1alpha1".into(),
        ..ar.clone()
    };
    let old_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &old);
    let seen = old_api.get("admin").await.unwrap();
    assert_eq!(
        seen.types.unwrap().api_version,
        "policy.linkerd.io/v1alpha1"
    );

    crds.delete("servers.policy.linkerd.io", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_code(&servers.get("admin").await.unwrap_err()), 404);
    assert!(server.objects("Server", None).is_empty());
}

#[tokio::test]
async fn access_reviews_allow_unless_denied() {
    let server = FakeKube::start().unwrap();
    server.deny_access(
        "create",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
    );
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client(&server).await);
    let ask = |verb: &str, group: &str, resource: &str| -> SelfSubjectAccessReview {
        serde_json::from_value(json!({ "spec": { "resourceAttributes": { "verb": verb, "group": group, "resource": resource } } })).unwrap()
    };
    let allowed = reviews
        .create(&PostParams::default(), &ask("create", "", "namespaces"))
        .await
        .unwrap();
    assert!(allowed.status.unwrap().allowed);
    let denied = reviews
        .create(
            &PostParams::default(),
            &ask(
                "create",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
            ),
        )
        .await
        .unwrap();
    assert!(!denied.status.unwrap().allowed);
}

#[tokio::test]
async fn kubelet_mode_runs_workloads() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    let client = client(&server).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 3,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" }, "annotations": { "linkerd.io/proxy-version": "v1" } },
                "spec": {
                    "initContainers": [
                        { "name": "linkerd-init", "image": "init" },
                        { "name": "linkerd-proxy", "image": "proxy", "restartPolicy": "Always" },
                    ],
                    "containers": [{ "name": "web", "image": "web" }],
                },
            },
        },
    }))
    .unwrap();
    deploys
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();
    let status = deploys.get("web").await.unwrap().status.unwrap();
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(3));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 3);
    let pod = &list.items[0];
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "ReplicaSet");
    let pod_status = pod.status.clone().unwrap();
    assert_eq!(pod_status.phase.as_deref(), Some("Running"));
    assert!(pod_status.pod_ip.is_some());
    let inits = pod_status.init_container_statuses.unwrap();
    let proxy = inits.iter().find(|c| c.name == "linkerd-proxy").unwrap();
    assert!(
        proxy.ready && proxy.started == Some(true),
        "native sidecars run and are ready"
    );
    let init = inits.iter().find(|c| c.name == "linkerd-init").unwrap();
    assert!(init.state.as_ref().unwrap().terminated.is_some());

    let name = pod.metadata.name.clone().unwrap();
    server
        .set_container_ready("default", &name, "linkerd-proxy", false)
        .unwrap();
    let status = deploys.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        status.ready_replicas,
        Some(2),
        "a pod that is not ready counts as such"
    );

    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 1 } })),
        )
        .await
        .unwrap();
    assert_eq!(
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    deploys
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        server.objects("Pod", Some("default")).is_empty(),
        "deleting the owner collects its pods"
    );
}

/// A one-request-at-a-time HTTP server that echoes the path it was asked for.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let body = format!("# HELP up\nup{{path=\"{path}\"}} 1\n");
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[tokio::test]
async fn pod_proxy_forwards_and_faults_fail() {
    let server = FakeKube::builder()
        .fixture_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec: {containers: [{name: c, image: i}]}\n")
        .start()
        .unwrap();
    server.set_pod_proxy("x", "p", 4191, echo_server());
    let client = client(&server).await;
    let get = |path: &str| http::Request::get(path).body(Vec::new()).unwrap();
    let text = client
        .request_text(get("/api/v1/namespaces/x/pods/p:4191/proxy/metrics?x=1"))
        .await
        .unwrap();
    assert_eq!(text, "# HELP up\nup{path=\"/metrics?x=1\"} 1\n");
    let text = client
        .request_text(get("/api/v1/namespaces/x/pods/p/proxy/ready"))
        .await
        .unwrap();
    assert!(text.contains("path=\"/ready\""));
    let err = client
        .request_text(get("/api/v1/namespaces/x/pods/p:9999/proxy/metrics"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 503);
    let err = client
        .request_text(get("/api/v1/namespaces/x/pods/q:4191/proxy/metrics"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), 404);

    server.fail_requests("/api/v1/namespaces/x/pods");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "x");
    assert_eq!(
        api_code(&pods.list(&ListParams::default()).await.unwrap_err()),
        500
    );
    server.clear_faults();
    server.inject_fault("/api/v1/namespaces/x/pods", Fault::Status(403));
    assert_eq!(
        api_code(&pods.list(&ListParams::default()).await.unwrap_err()),
        403
    );
    server.clear_faults();
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r == "GET /api/v1/namespaces/x/pods")
    );
}

#[tokio::test]
async fn streaming_lists_generate_names_and_collections() {
    let server = FakeKube::builder()
        .fixture_yaml(pods_yaml("s", 7))
        .start()
        .unwrap();
    let client = client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "s");

    // Streaming lists: initial events then a bookmark that ends them.
    let config = kube::runtime::watcher::Config::default().streaming_lists();
    let mut watcher = kube::runtime::watcher(pods.clone(), config).boxed();
    let mut initial = 0;
    loop {
        match watcher.try_next().await.unwrap().unwrap() {
            kube::runtime::watcher::Event::InitApply(_) => initial += 1,
            kube::runtime::watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, 7);

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "s");
    let generated: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "generateName": "cfg-" } })).unwrap();
    let a = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let b = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("cfg-") && a.len() == 9 && a != b, "{a} {b}");

    let gone = pods
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier=odd"),
        )
        .await
        .unwrap();
    assert_eq!(gone.left().map(|l| l.items.len()), Some(3));
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        4
    );

    // A watch from a version older than the change log remembers is told 410 Gone.
    let stream = pods.watch(&WatchParams::default(), "1").await.unwrap();
    let first = stream.boxed().try_next().await.unwrap().unwrap();
    match first {
        WatchEvent::Error(status) => assert_eq!(status.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}
