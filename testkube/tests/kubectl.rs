//! The real `kubectl` against the fake API server: get, apply, delete, CRDs and the pod proxy.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use mesh_testkube::FakeKube;

#[path = "support/conformance.rs"]
mod conformance;

/// kubectl with a private kubeconfig and discovery cache.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(server: &FakeKube) -> Kubectl {
        let bin = find_kubectl().unwrap_or_else(|| {
            panic!("kubectl is not installed (looked on PATH and in /usr/bin); these tests need the real kubectl")
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
        let cache = dir.path().join("cache");
        Kubectl {
            bin,
            kubeconfig,
            cache,
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env("KUBECACHEDIR", &self.cache)
            .env_remove("KUBECONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl starts");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Runs kubectl and returns stdout, failing the test with kubectl's stderr if it fails.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }
}

fn find_kubectl() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"));
    on_path
        .chain([PathBuf::from("/usr/bin/kubectl")])
        .find(|p| p.is_file())
}

fn pods_yaml(namespace: &str, count: usize) -> String {
    (0..count)
        .map(|i| {
            let phase = if i % 5 == 0 { "Succeeded" } else { "Running" };
            let tier = if i % 2 == 0 { "even" } else { "odd" };
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i:02}\n  namespace: {namespace}\n  \
                 labels: {{app: web, tier: {tier}}}\nspec:\n  containers: [{{name: web, image: web}}]\n\
                 status: {{phase: {phase}}}\n---\n"
            )
        })
        .collect()
}

#[test]
fn get_with_selectors_and_chunks() {
    let server = FakeKube::builder()
        .fixture_yaml(pods_yaml("shop", 30))
        .start()
        .unwrap();
    let kubectl = Kubectl::new(&server);

    let odd = kubectl.ok(
        &["get", "pods", "-n", "shop", "-l", "tier=odd", "-o", "name"],
        None,
    );
    assert_eq!(odd.lines().count(), 15);
    assert!(odd.lines().all(|l| l.starts_with("pod/pod-")));
    let set = kubectl.ok(
        &[
            "get",
            "pods",
            "-n",
            "shop",
            "-l",
            "tier in (odd),app",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(set.lines().count(), 15);
    let running = kubectl.ok(
        &[
            "get",
            "pods",
            "-n",
            "shop",
            "--field-selector",
            "status.phase!=Succeeded",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(running.lines().count(), 24);

    let out = kubectl.run(
        &[
            "get",
            "pods",
            "-A",
            "--chunk-size",
            "7",
            "-o",
            "name",
            "-v=6",
        ],
        None,
    );
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 30);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pages = stderr
        .lines()
        .filter(|l| l.contains("/api/v1/pods?") && l.contains("limit=7"))
        .count();
    assert_eq!(
        pages, 5,
        "30 pods in chunks of 7 take 5 requests:\n{stderr}"
    );
    assert!(stderr.contains("continue="));

    let missing = kubectl.run(&["get", "pod", "nope", "-n", "shop"], None);
    assert!(!missing.status.success());
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );
}

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: web:1
        ports:
        - containerPort: 8080
          name: http
        env:
        - {name: FLAG, value: \"yes\"}
      - name: side
        image: side:1
";

#[test]
fn apply_creates_updates_and_deletes() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    let kubectl = Kubectl::new(&server);
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
    let first = format!("{namespace}---\n{DEPLOYMENT}");
    let out = kubectl.ok(&["apply", "-f", "-"], Some(&first));
    assert_eq!(out, "namespace/shop created\ndeployment.apps/web created\n");

    let again = kubectl.ok(&["apply", "-f", "-"], Some(&first));
    assert_eq!(
        again,
        "namespace/shop unchanged\ndeployment.apps/web unchanged\n"
    );

    let changed = DEPLOYMENT
        .replace("image: web:1", "image: web:2")
        .replace("replicas: 2", "replicas: 3");
    let out = kubectl.ok(&["apply", "-f", "-"], Some(&changed));
    assert_eq!(out, "deployment.apps/web configured\n");
    let deploy = server.get("Deployment", "shop", "web").expect("stored");
    let containers = &deploy["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "web:2");
    assert_eq!(
        containers[0]["ports"][0]["containerPort"], 8080,
        "the strategic merge keeps fields"
    );
    assert_eq!(
        containers[0]["env"][0]["value"], "yes",
        "strings stay strings"
    );
    assert_eq!(containers[1]["name"], "side");
    assert_eq!(deploy["spec"]["replicas"], 3);

    let waited = kubectl.ok(
        &[
            "wait",
            "-n",
            "shop",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=20s",
        ],
        None,
    );
    assert_eq!(waited, "deployment.apps/web condition met\n");
    let ready = kubectl.ok(
        &[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        None,
    );
    assert_eq!(ready, "3");
    // Server-side printing: kubectl's usual columns.
    let table = kubectl.ok(&["get", "deploy", "web", "-n", "shop"], None);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "3/3", "3", "3"]);
    let pods_table = kubectl.ok(&["get", "pods", "-n", "shop"], None);
    assert!(pods_table.starts_with("NAME"), "{pods_table}");
    assert_eq!(
        pods_table
            .lines()
            .filter(|l| l.contains(" 2/2 ") && l.contains(" Running "))
            .count(),
        3,
        "{pods_table}"
    );
    let pods = kubectl.ok(
        &["get", "pods", "-n", "shop", "-l", "app=web", "-o", "name"],
        None,
    );
    assert_eq!(pods.lines().count(), 3);

    let server_side = kubectl.ok(
        &["apply", "--server-side", "--field-manager", "test", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\ndata: {a: \"1\"}\n"),
    );
    assert_eq!(server_side, "configmap/cfg serverside-applied\n");

    let deleted = kubectl.ok(&["delete", "-f", "-"], Some(DEPLOYMENT));
    assert_eq!(deleted, "deployment.apps \"web\" deleted\n");
    assert!(server.get("Deployment", "shop", "web").is_none());
    assert!(server.objects("Pod", Some("shop")).is_empty());
}

#[test]
fn patch_label_scale_and_rollout() {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    let kubectl = Kubectl::new(&server);
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
    kubectl.ok(
        &["apply", "-f", "-"],
        Some(&format!("{namespace}---\n{DEPLOYMENT}")),
    );
    let deploy = "deployment/web";
    let ns = ["-n", "shop"];
    let run = |args: &[&str]| kubectl.ok(&[&ns[..], args].concat(), None);

    run(&[
        "patch",
        deploy,
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"web:3"}]}}}}"#,
    ]);
    let stored = server.get("Deployment", "shop", "web").unwrap();
    let web = &stored["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(web["image"], "web:3");
    assert_eq!(
        web["ports"][0]["containerPort"], 8080,
        "a strategic patch merges containers by name"
    );
    run(&[
        "patch",
        deploy,
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"front"}}}"#,
    ]);
    run(&[
        "patch",
        deploy,
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
    ]);
    run(&["label", deploy, "team=shop"]);
    run(&["annotate", deploy, "note=hi"]);
    let stored = server.get("Deployment", "shop", "web").unwrap();
    assert_eq!(stored["metadata"]["labels"]["tier"], "front");
    assert_eq!(stored["metadata"]["labels"]["team"], "shop");
    assert_eq!(stored["metadata"]["annotations"]["note"], "hi");
    assert_eq!(stored["spec"]["replicas"], 1);

    assert_eq!(
        run(&["scale", deploy, "--replicas=4"]),
        "deployment.apps/web scaled\n"
    );
    assert_eq!(server.objects("Pod", Some("shop")).len(), 4);

    run(&["rollout", "restart", deploy]);
    let status = run(&["rollout", "status", deploy, "--timeout=20s"]);
    assert!(status.contains("successfully rolled out"), "{status}");
    let replicasets = server.objects("ReplicaSet", Some("shop"));
    assert!(replicasets.len() >= 2, "a restart makes a new ReplicaSet");
    let pods = server.objects("Pod", Some("shop"));
    assert_eq!(pods.len(), 4, "the old ReplicaSet's pods are gone");
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string())
    );

    let missing = kubectl.run(&["get", "deploy", "nope", "-n", "shop"], None);
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "Error from server (NotFound): deployments.apps \"nope\" not found"
    );
    // kubectl's generators (`kubectl create namespace x`) send protobuf, which the server
    // refuses; `create -f` sends JSON.
    let exists = kubectl.run(&["create", "-f", "-"], Some(namespace));
    assert_eq!(
        String::from_utf8_lossy(&exists.stderr).trim(),
        "Error from server (AlreadyExists): error when creating \"STDIN\": namespaces \"shop\" already exists"
    );
    assert_eq!(run(&["delete", "pods", "--all"]).lines().count(), 4);
    assert_eq!(
        server.objects("Pod", Some("shop")).len(),
        4,
        "the ReplicaSet replaces deleted pods"
    );
}

const CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.mesh.io
spec:
  group: example.mesh.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";

#[test]
fn crds_then_custom_resources() {
    let server = FakeKube::start().unwrap();
    let kubectl = Kubectl::new(&server);
    assert_eq!(
        kubectl.ok(&["apply", "-f", "-"], Some(CRD)),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.mesh.io created\n"
    );
    let widget = "apiVersion: example.mesh.io/v1alpha1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n";
    assert_eq!(
        kubectl.ok(&["apply", "-f", "-"], Some(widget)),
        "widget.example.mesh.io/w1 created\n"
    );
    let bigger = widget.replace("size: 3", "size: 4");
    assert_eq!(
        kubectl.ok(&["apply", "-f", "-"], Some(&bigger)),
        "widget.example.mesh.io/w1 configured\n"
    );
    assert_eq!(
        kubectl.ok(&["get", "wd", "-o", "name"], None),
        "widget.example.mesh.io/w1\n"
    );
    assert_eq!(server.objects("Widget", None)[0]["spec"]["size"], 4);
}

/// Linkerd's own CRDs apply cleanly, when the shared fixtures are present.
#[test]
fn linkerd_crds_apply() {
    let Some(dir) = conformance::linkerd_testdata() else {
        return;
    };
    let fixture = dir.join("install_crds.golden");
    let server = FakeKube::start().unwrap();
    let kubectl = Kubectl::new(&server);
    let out = kubectl.ok(
        &["apply", "-f", fixture.to_str().expect("utf-8 path")],
        None,
    );
    assert_eq!(out.lines().count(), 10, "{out}");
    assert!(out.lines().all(|l| l.ends_with(" created")));
    let server_yaml = "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: admin, namespace: default}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  port: linkerd-admin\n";
    assert_eq!(
        kubectl.ok(&["apply", "-f", "-"], Some(server_yaml)),
        "server.policy.linkerd.io/admin created\n"
    );
}

fn metrics_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let body = format!("request_total{{path=\"{path}\"}} 7\n");
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn raw_pod_proxy() {
    let server = FakeKube::builder()
        .fixture_yaml("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nspec: {containers: [{name: c, image: i}]}\n")
        .start()
        .unwrap();
    server.set_pod_proxy("x", "p", 4191, metrics_server());
    let kubectl = Kubectl::new(&server);
    let out = kubectl.ok(
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/x/pods/p:4191/proxy/metrics",
        ],
        None,
    );
    assert_eq!(out, "request_total{path=\"/metrics\"} 7\n");
    let refused = kubectl.run(
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/x/pods/p:9/proxy/metrics",
        ],
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ServiceUnavailable"));
}
