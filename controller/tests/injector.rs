//! `mesh-controller proxy-injector` end to end: the real binary against the fake API server,
//! answering AdmissionReviews over HTTPS as the API server sends them.

#![allow(clippy::unwrap_used)] // Tests fail loudly.

mod support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use mesh_testkube::FakeKube;
use serde_json::{Value, json};

use support::injector::{Certs, HOST, certs};
const DEADLINE: Duration = Duration::from_secs(20);

/// The running binary; killed on drop.
pub struct Injector {
    controller: support::Controller,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub certs: Certs,
}

impl Injector {
    pub fn start(kube: &FakeKube) -> Injector {
        Injector::start_with(kube, &mesh_inject::values::Values::defaults())
    }

    /// Starts the injector with `values` as its `--config`, as `mesh install` writes them into
    /// the `linkerd-config` ConfigMap.
    pub fn start_with(kube: &FakeKube, values: &mesh_inject::values::Values) -> Injector {
        let dir = tempfile::tempdir().unwrap();
        let certs = certs();
        let tls = dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        std::fs::write(tls.join("tls.crt"), &certs.crt_pem).unwrap();
        std::fs::write(tls.join("tls.key"), &certs.key_pem).unwrap();
        let values = mesh_inject::values::to_tree(values);
        std::fs::write(
            dir.path().join("values"),
            serde_json::to_string_pretty(&values).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("ca-bundle.crt"), &certs.ca_pem).unwrap();
        let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-controller"));
        command
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--admin-addr", "127.0.0.1:0", "--log-level", "info"])
            .args(["proxy-injector", "--addr", "127.0.0.1:0"])
            .arg("--config")
            .arg(dir.path().join("values"))
            .arg("--trust-anchors")
            .arg(dir.path().join("ca-bundle.crt"))
            .arg("--tls-dir")
            .arg(&tls);
        let controller = support::start(command, "webhook")
            .unwrap_or_else(|(status, log)| panic!("injector did not start ({status:?}):\n{log}"));
        let injector = Injector {
            addr: controller.addr,
            controller,
            dir,
            certs,
        };
        injector.wait_until(|| injector.controller.wait_ready(DEADLINE), "ready");
        injector
    }

    /// Polls `check` until it holds, failing the test after the deadline.
    pub fn wait_until(&self, check: impl FnMut() -> bool, what: &str) {
        assert!(
            support::wait_until(DEADLINE, check),
            "timed out waiting for {what}; log:\n{}",
            self.controller.stderr()
        );
    }

    /// A GET on the admin server: the status and body.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        self.controller.admin_get(path)
    }

    /// An HTTPS client that trusts the test CA and reaches the injector by its Service name.
    pub fn client(&self) -> reqwest::blocking::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(self.certs.ca_pem.as_bytes())
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .resolve(HOST, self.addr)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    pub fn url(&self) -> String {
        format!("https://{HOST}:{}/", self.addr.port())
    }

    /// POSTs a body and returns the AdmissionReview answered.
    pub fn post(&self, client: &reqwest::blocking::Client, body: Vec<u8>) -> Value {
        let response = client.post(self.url()).body(body).send().unwrap();
        assert_eq!(response.status(), 200);
        serde_json::from_slice(&response.bytes().unwrap()).unwrap()
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.controller.logged(needle)
    }
}

use rustls::pki_types::pem::PemObject as _;

/// An AdmissionReview for creating `object` (a Pod or Service) in `namespace`.
pub fn review(uid: &str, namespace: &str, object: &Value) -> Vec<u8> {
    let kind = object["kind"].as_str().unwrap();
    let resource = if kind == "Pod" { "pods" } else { "services" };
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object,
            "dryRun": false,
        },
    }))
    .unwrap()
}

/// The object after the response's patch, or the object itself if there is none.
pub fn patched(object: &Value, answer: &Value) -> Value {
    let response = &answer["response"];
    let mut out = object.clone();
    if let Some(patch) = response["patch"].as_str() {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut out, &patch).unwrap();
    }
    out
}

pub fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|l| pod["spec"][*l].as_array().cloned().unwrap_or_default())
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

pub fn pod(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": format!("{name}-7c9d-"),
            "labels": {"app": name},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-7c9d"), "uid": "rs-uid", "controller": true}],
        },
        "spec": {"containers": [{"name": name, "image": "nginx", "ports": [{"containerPort": 8080}]}]},
    })
}

fn cluster() -> FakeKube {
    let kube = FakeKube::start().unwrap();
    kube.apply_yaml(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: v1
kind: Namespace
metadata:
  name: meshed
  annotations: {linkerd.io/inject: enabled, config.linkerd.io/proxy-log-level: debug}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: plain, uid: deploy-uid}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-7c9d
  namespace: plain
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: deploy-uid, controller: true}]
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"#,
    )
    .unwrap();
    kube
}

#[test]
fn reviews_over_https() {
    let kube = cluster();
    let injector = Injector::start(&kube);
    let client = injector.client();

    // A pod that asks for the proxy gets it, named after its Deployment, with an Injected event.
    let enabled = pod("web", json!({"linkerd.io/inject": "enabled"}));
    let answer = injector.post(&client, review("u-1", "plain", &enabled));
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], "u-1");
    assert_eq!(answer["response"]["allowed"], true);
    let out = patched(&enabled, &answer);
    let names = container_names(&out);
    assert!(names.contains(&"linkerd-proxy".to_owned()), "{names:?}");
    assert!(names.contains(&"linkerd-init".to_owned()), "{names:?}");
    assert_eq!(
        out["metadata"]["labels"]["linkerd.io/proxy-deployment"],
        "web"
    );
    assert_eq!(
        out["metadata"]["annotations"]["linkerd.io/inject"],
        "enabled"
    );
    injector.wait_until(
        || {
            kube.objects("Event", Some("plain")).iter().any(|e| {
                e["reason"] == "Injected"
                    && e["involvedObject"]["kind"] == "Deployment"
                    && e["involvedObject"]["name"] == "web"
            })
        },
        "an Injected event on deployment/web",
    );

    // A namespace that asks for it injects its pods, with its settings.
    let plain = pod("api", json!({}));
    let answer = injector.post(&client, review("u-2", "meshed", &plain));
    let out = patched(&plain, &answer);
    assert!(container_names(&out).contains(&"linkerd-proxy".to_owned()));
    assert_eq!(
        out["metadata"]["annotations"]["config.linkerd.io/proxy-log-level"],
        "debug"
    );
    assert!(
        out["metadata"]["annotations"]
            .get("linkerd.io/inject")
            .is_none()
    );

    // Disabled, hostNetwork, already injected: admitted unchanged, with the reason logged.
    let disabled = pod("off", json!({"linkerd.io/inject": "disabled"}));
    let answer = injector.post(&client, review("u-3", "meshed", &disabled));
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    let mut host = pod("host", json!({"linkerd.io/inject": "enabled"}));
    host["spec"]["hostNetwork"] = json!(true);
    let answer = injector.post(&client, review("u-4", "plain", &host));
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    let mut already = out.clone();
    already["kind"] = json!("Pod");
    let answer = injector.post(&client, review("u-5", "meshed", &already));
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    // The answers come before their log lines are read back, so wait for each line: CI saw
    // the last line missing just after the first one appeared.
    for line in [
        "skipped pod/host-7c9d-: hostNetwork is enabled",
        "skipped pod/off-7c9d-: pod has the annotation",
        "pod has a sidecar injected already",
    ] {
        injector.wait_until(|| injector.logged(line), line);
    }

    // Garbage is admitted, with a warning.
    let answer = injector.post(&client, b"{not json".to_vec());
    assert_eq!(answer["response"]["allowed"], true);
    let warning = answer["response"]["warnings"][0].as_str().unwrap();
    assert!(warning.contains("cannot decode"), "{warning}");

    // Services in a namespace with opaque ports get them.
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"}, "spec": {"ports": [{"port": 3306}]}});
    let answer = injector.post(&client, review("u-6", "plain", &service));
    assert_eq!(
        patched(&service, &answer)["metadata"]["annotations"]["config.linkerd.io/opaque-ports"],
        "3306"
    );

    let (_, metrics) = injector.admin_get("/metrics");
    for line in [
        r#"proxy_injector_reviews_total{kind="pod",outcome="injected",reason=""} 2"#,
        r#"proxy_injector_reviews_total{kind="pod",outcome="skipped",reason="host_network_enabled"} 1"#,
        r#"proxy_injector_reviews_total{kind="other",outcome="error",reason="decode"} 1"#,
        r#"proxy_injector_reviews_total{kind="service",outcome="annotated",reason=""} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
}

/// Whether the injected proxy of `pod`, reviewed in `namespace`, serves tap.
fn tapped(injector: &Injector, namespace: &str, pod: &Value) -> bool {
    let answer = injector.post(&injector.client(), review("u", namespace, pod));
    let out = patched(pod, &answer);
    let proxy = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| out["spec"][*l].as_array().cloned().unwrap_or_default())
        .find(|c| c["name"] == "linkerd-proxy")
        .unwrap_or_else(|| panic!("no proxy injected: {answer}"));
    let tap: Vec<&Value> = proxy["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "MESH_PROXY_TAP_ENABLED")
        .collect();
    match tap[..] {
        [] => false,
        [e] if e["value"] == "true" => true,
        _ => panic!("unexpected tap variables {tap:?}"),
    }
}

/// Namespaces that say nothing about tap, turn it on, and turn it off as Linkerd viz does.
fn tap_cluster() -> FakeKube {
    let kube = FakeKube::start().unwrap();
    kube.apply_yaml(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: plain}
---
apiVersion: v1
kind: Namespace
metadata:
  name: tapped
  annotations: {config.linkerd.io/enable-tap: "true"}
---
apiVersion: v1
kind: Namespace
metadata:
  name: private
  annotations: {viz.linkerd.io/disable-tap: "true"}
"#,
    )
    .unwrap();
    kube
}

#[test]
fn tap_follows_the_pod_then_its_namespace() {
    let kube = tap_cluster();
    let injector = Injector::start(&kube);
    let inject = |extra: Value| {
        let mut annotations = json!({"linkerd.io/inject": "enabled"});
        annotations
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        pod("web", annotations)
    };
    let silent = inject(json!({}));
    assert!(!tapped(&injector, "plain", &silent), "off by default");
    // Ready means the namespaces are known.
    assert!(
        tapped(&injector, "tapped", &silent),
        "the namespace's opt-in"
    );
    assert!(!tapped(&injector, "private", &silent));
    let on = inject(json!({"config.linkerd.io/enable-tap": "true"}));
    assert!(tapped(&injector, "plain", &on));
    assert!(tapped(&injector, "private", &on), "the pod wins");
    let off = inject(json!({"config.linkerd.io/disable-tap": "true"}));
    assert!(!tapped(&injector, "tapped", &off), "the pod wins");
}

#[test]
fn tap_is_on_for_every_pod_when_the_config_says_so() {
    let kube = tap_cluster();
    let mut values = mesh_inject::values::ValuesBuilder::new().unwrap();
    values.set("proxy.enableTap=true").unwrap();
    let injector = Injector::start_with(&kube, &values.build().unwrap());
    let silent = pod("web", json!({"linkerd.io/inject": "enabled"}));
    assert!(tapped(&injector, "plain", &silent));
    assert!(
        !tapped(&injector, "private", &silent),
        "the namespace's opt-out"
    );
    let off = pod(
        "web",
        json!({"linkerd.io/inject": "enabled", "config.linkerd.io/enable-tap": "false"}),
    );
    assert!(!tapped(&injector, "tapped", &off), "the pod's opt-out");
}

#[test]
fn oversized_bodies_and_other_methods_are_refused() {
    let kube = cluster();
    let injector = Injector::start(&kube);
    let client = injector.client();
    let response = client.get(injector.url()).send().unwrap();
    assert_eq!(response.status(), 405);
    let huge = vec![b' '; mesh_controller::injector::MAX_BODY + 1];
    let response = client.post(injector.url()).body(huge).send();
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    // Still serving.
    let answer = injector.post(&client, review("u", "plain", &pod("web", json!({}))));
    assert_eq!(answer["response"]["allowed"], true);
}

#[test]
fn a_new_certificate_is_served_and_a_bad_one_ignored() {
    let kube = cluster();
    let mut injector = Injector::start(&kube);
    let tls = injector.dir.path().join("tls");
    // Garbage: the old pair stays.
    std::fs::write(tls.join("tls.crt"), "garbage").unwrap();
    injector.wait_until(
        || injector.logged("keeping the current one"),
        "the bad pair rejected",
    );
    let answer = injector.post(
        &injector.client(),
        review("u", "plain", &pod("web", json!({}))),
    );
    assert_eq!(answer["response"]["allowed"], true);
    // A new pair from another CA: served once swapped in.
    let fresh = certs();
    std::fs::write(tls.join("tls.key"), &fresh.key_pem).unwrap();
    std::fs::write(tls.join("tls.crt"), &fresh.crt_pem).unwrap();
    injector.certs = fresh;
    let client = injector.client();
    injector.wait_until(
        || client.post(injector.url()).body("{}").send().is_ok(),
        "the new certificate served",
    );
    assert!(injector.logged("serving certificate reloaded"));
}

#[test]
fn bad_flags_exit_64_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mesh-controller"))
        .args([
            "--admin-addr",
            "127.0.0.1:0",
            "proxy-injector",
            "--addr",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(dir.path().join("missing"))
        .arg("--trust-anchors")
        .arg(dir.path().join("missing"))
        .arg("--tls-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

fn find_kubectl() -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .chain([std::path::PathBuf::from("/usr/bin/kubectl")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("kubectl is not installed (looked on PATH and in /usr/bin)"))
}

/// `kubectl apply -f -` against the fake API server, with a cache of its own.
fn kubectl_apply(kube: &FakeKube, dir: &std::path::Path, yaml: &str) {
    let kubeconfig = kube.write_kubeconfig(dir).unwrap();
    let cache = dir.join("kube-cache");
    let mut child = Command::new(find_kubectl())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["apply", "-f", "-"])
        .env("KUBECACHEDIR", &cache)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real flow: the API server calls the injector (as the install's
/// MutatingWebhookConfiguration says) for the pods its kubelet creates from a Deployment that
/// kubectl applied into a namespace annotated `linkerd.io/inject: enabled`.
#[test]
fn the_api_server_injects_the_pods_of_a_deployment() {
    let kube = FakeKube::builder()
        .kubelet(true)
        .fixture_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: linkerd}\n---\n\
             apiVersion: v1\nkind: Service\nmetadata: {name: linkerd-proxy-injector, namespace: linkerd}\n\
             spec: {ports: [{name: proxy-injector, port: 443, targetPort: proxy-injector}]}\n",
        )
        .start()
        .unwrap();
    let injector = Injector::start(&kube);
    kube.route_service("linkerd", "linkerd-proxy-injector", 443, injector.addr);
    // The install's webhook, with its rules and namespace selector, and the test CA.
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&injector.certs.ca_pem);
    kube.apply_yaml(&format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {{name: linkerd-proxy-injector-webhook-config}}
webhooks:
- name: linkerd-proxy-injector.linkerd.io
  namespaceSelector:
    matchExpressions:
    - {{key: config.linkerd.io/admission-webhooks, operator: NotIn, values: [disabled]}}
  clientConfig:
    service: {{name: linkerd-proxy-injector, namespace: linkerd, path: /}}
    caBundle: {ca_bundle}
  failurePolicy: Ignore
  admissionReviewVersions: [v1, v1beta1]
  rules:
  - {{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods, services], scope: Namespaced}}
  sideEffects: None
  timeoutSeconds: 10
"#
    ))
    .unwrap();

    kubectl_apply(
        &kube,
        injector.dir.path(),
        r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  annotations: {linkerd.io/inject: enabled}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx, ports: [{containerPort: 8080}]}
"#,
    );
    injector.wait_until(|| kube.objects("Pod", Some("shop")).len() == 2, "two pods");
    for pod in kube.objects("Pod", Some("shop")) {
        let names = container_names(&pod);
        assert!(
            names.contains(&"linkerd-proxy".to_owned())
                && names.contains(&"linkerd-init".to_owned()),
            "{names:?} in {pod:#}"
        );
        assert_eq!(
            pod["metadata"]["labels"]["linkerd.io/proxy-deployment"],
            "web"
        );
    }
    injector.wait_until(
        || {
            kube.objects("Event", Some("shop"))
                .iter()
                .any(|e| e["reason"] == "Injected" && e["involvedObject"]["name"] == "web")
        },
        "an Injected event",
    );
    let calls = kube.admission_calls();
    assert!(
        calls.iter().any(|c| c["request"]["kind"]["kind"] == "Pod"),
        "{calls:#?}"
    );
}
