//! The EndpointSlice controller in kubelet mode, seen through the test handle and a kube-rs
//! reflector.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Config};
use mesh_testkube::FakeKube;
use serde_json::{Value, json};

async fn client(server: &FakeKube) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig()).expect("the kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig loads");
    Client::try_from(config).expect("a client")
}

fn deployment(name: &str, replicas: u32, http_port: u16) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: app}}\n\
         spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web, version: {name}}}}}\n  \
         template:\n    metadata: {{labels: {{app: web, version: {name}}}}}\n    spec:\n      \
         containers:\n      - name: web\n        image: web\n        \
         ports: [{{name: http, containerPort: {http_port}}}]\n"
    )
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: app, labels: {tier: front}}\n\
spec:\n  selector: {app: web}\n  ports:\n  - {name: http, port: 80, targetPort: http}\n  - {name: admin, port: 9990, appProtocol: http}\n";

fn slices(server: &FakeKube, service: &str) -> Vec<Value> {
    server
        .objects("EndpointSlice", Some("app"))
        .into_iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
        .collect()
}

fn endpoints(slice: &Value) -> Vec<Value> {
    slice["endpoints"].as_array().cloned().unwrap_or_default()
}

/// Polls `f` every 20 ms for up to 10 s.
async fn poll<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn services_get_slices_of_their_pods() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server.apply_yaml(SERVICE).unwrap();
    let svc = server.get("Service", "app", "web").unwrap();
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    assert_eq!(svc["spec"]["ports"][1]["targetPort"], 9990, "defaulted");
    assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");

    // No pods yet: one placeholder slice.
    let placeholder = slices(&server, "web");
    assert_eq!(placeholder.len(), 1);
    assert_eq!(placeholder[0]["endpoints"], Value::Null);
    assert_eq!(placeholder[0]["ports"], Value::Null);

    // The reflector follows along from here.
    let api: Api<EndpointSlice> = Api::namespaced(client(&server).await, "app");
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .applied_objects()
        .boxed();
    let watching = tokio::spawn(async move {
        let mut stream = stream;
        while stream.next().await.is_some() {}
    });

    server.apply_yaml(&deployment("v1", 2, 8080)).unwrap();
    let pods = server.objects("Pod", Some("app"));
    assert_eq!(pods.len(), 2);
    let slice = slices(&server, "web").pop().unwrap();
    let meta = &slice["metadata"];
    assert!(meta["name"].as_str().unwrap().starts_with("web-"));
    assert_eq!(meta["generateName"], "web-");
    assert_eq!(
        meta["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(
        meta["labels"]["tier"], "front",
        "the service's labels are copied"
    );
    assert_eq!(meta["ownerReferences"][0]["kind"], "Service");
    assert_eq!(meta["ownerReferences"][0]["uid"], svc["metadata"]["uid"]);
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([
            { "name": "http", "protocol": "TCP", "port": 8080 },
            { "name": "admin", "protocol": "TCP", "port": 9990, "appProtocol": "http" },
        ])
    );
    let eps = endpoints(&slice);
    assert_eq!(eps.len(), 2);
    let ips: BTreeSet<&str> = pods
        .iter()
        .map(|p| p["status"]["podIP"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2, "pod IPs are unique");
    for ep in &eps {
        assert!(ips.contains(ep["addresses"][0].as_str().unwrap()));
        assert_eq!(
            ep["conditions"],
            json!({ "ready": true, "serving": true, "terminating": false })
        );
        assert_eq!(ep["targetRef"]["kind"], "Pod");
        assert_eq!(ep["nodeName"], mesh_testkube::NODE);
    }

    // Pods whose named port resolves differently land in another slice.
    server.apply_yaml(&deployment("v2", 1, 8081)).unwrap();
    let mut all = slices(&server, "web");
    assert_eq!(all.len(), 2);
    all.sort_by_key(|s| s["ports"][0]["port"].as_i64());
    assert_eq!(all[1]["ports"][0]["port"], 8081);
    assert_eq!(endpoints(&all[1]).len(), 1);

    // Readiness follows the pod.
    let pod = endpoints(&all[1])[0]["targetRef"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    server.set_pod_ready("app", &pod, false).unwrap();
    let slice = slices(&server, "web")
        .into_iter()
        .find(|s| s["ports"][0]["port"] == 8081)
        .unwrap();
    assert_eq!(
        endpoints(&slice)[0]["conditions"],
        json!({ "ready": false, "serving": false, "terminating": false })
    );

    // Scaling down removes an endpoint; the reflector sees the same slices as the server.
    server.apply_yaml(&deployment("v1", 1, 8080)).unwrap();
    let want: BTreeSet<(String, usize)> = slices(&server, "web")
        .iter()
        .map(|s| {
            (
                s["metadata"]["name"].as_str().unwrap().to_string(),
                endpoints(s).len(),
            )
        })
        .collect();
    assert_eq!(want.iter().map(|(_, n)| n).sum::<usize>(), 2);
    poll(|| {
        let seen: BTreeSet<(String, usize)> = reader
            .state()
            .iter()
            .filter(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l["kubernetes.io/service-name"] == "web")
            })
            .map(|s| (s.metadata.name.clone().unwrap(), s.endpoints.len()))
            .collect();
        (seen == want).then_some(())
    })
    .await;

    // A selector that matches nothing leaves the placeholder; deleting the service, nothing.
    server
        .apply_yaml(&SERVICE.replace("selector: {app: web}", "selector: {app: none}"))
        .unwrap();
    let left = slices(&server, "web");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["endpoints"], Value::Null);
    server.delete("Service", "app", "web").unwrap();
    assert!(slices(&server, "web").is_empty());
    poll(|| reader.state().is_empty().then_some(())).await;
    watching.abort();
}

#[tokio::test]
async fn headless_services_and_hostnames() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    server
        .apply_yaml(
            "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: app}\n\
             spec: {clusterIP: None, selector: {app: db}}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {name: db-0, namespace: app, labels: {app: db}}\n\
             spec: {hostname: db-0, subdomain: db, containers: [{name: db, image: db}]}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {name: done, namespace: app, labels: {app: db}}\n\
             spec: {containers: [{name: db, image: db}]}\nstatus: {phase: Succeeded, podIP: 10.1.1.1}\n",
        )
        .unwrap();
    let svc = server.get("Service", "app", "db").unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "None");
    let slice = slices(&server, "db").pop().unwrap();
    assert_eq!(
        slice["metadata"]["labels"]["service.kubernetes.io/headless"],
        ""
    );
    assert_eq!(slice["ports"], Value::Null, "no ports");
    let eps = endpoints(&slice);
    assert_eq!(eps.len(), 1, "a terminal pod is left out: {eps:?}");
    assert_eq!(eps[0]["hostname"], "db-0");
}

#[tokio::test]
async fn without_the_kubelet_no_controller_runs() {
    let server = FakeKube::start().unwrap();
    server.apply_yaml(SERVICE).unwrap();
    assert!(server.objects("EndpointSlice", None).is_empty());
    // Slices can still be written by hand.
    server
        .apply_yaml(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
             metadata: {name: web-abc, namespace: app, labels: {kubernetes.io/service-name: web}}\n\
             addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\n",
        )
        .unwrap();
    assert_eq!(slices(&server, "web").len(), 1);
}
