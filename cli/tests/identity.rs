//! `mesh identity` end to end: real mesh-proxy processes on loopback hold identities from the
//! certificate files in testdata/identity/certs (fixed serials and dates, so the output is
//! deterministic), and the fake API server's port-forward reaches each proxy's inbound port.
#![allow(clippy::unwrap_used)]

mod stat_support;
mod support;

use stat_support::{Backend, Proxy, mesh, stderr, stdout};
use support::{check_golden, testdata};

use mesh_testkube::FakeKube;

const NS: &str = "demo";

fn certs(file: &str) -> String {
    testdata()
        .join("identity/certs")
        .join(file)
        .display()
        .to_string()
}

/// A pod as the injector writes its proxy: the identity name built from the pod's service
/// account and namespace.
fn meshed_pod(name: &str, sa: &str, app: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {NS}
  labels: {{app: {app}}}
spec:
  serviceAccountName: {sa}
  containers:
  - name: {app}
    image: example/{app}:1
  - name: linkerd-proxy
    image: cr.l5d.io/linkerd/proxy:edge
    env:
    - name: _pod_sa
      valueFrom: {{fieldRef: {{fieldPath: spec.serviceAccountName}}}}
    - name: _pod_ns
      valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}
    - name: _l5d_ns
      value: linkerd
    - name: _l5d_trustdomain
      value: cluster.local
    - name: LINKERD2_PROXY_IDENTITY_LOCAL_NAME
      value: $(_pod_sa).$(_pod_ns).serviceaccount.identity.$(_l5d_ns).$(_l5d_trustdomain)
    ports:
    - name: linkerd-proxy
      containerPort: 4143
    - name: linkerd-admin
      containerPort: 4191
status:
  phase: Running
---
"
    )
}

const PLAIN_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: plain-0
  namespace: demo
  labels: {app: plain}
spec:
  containers:
  - name: plain
    image: example/plain:1
status:
  phase: Running
---
";

/// web-0 and web-1 (app=web) with running proxies holding their certificates, web-2 (app=web2)
/// meshed but with nothing listening, silent-0 whose port accepts connections and never
/// answers, plain-0 not meshed, and the control plane's trust roots.
struct Cluster {
    server: FakeKube,
    _proxies: Vec<Proxy>,
    _backend: Backend,
    _silent: std::net::TcpListener,
}

fn cluster() -> Cluster {
    let anchors = std::fs::read_to_string(certs("ca.crt")).unwrap();
    let trust_roots = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: linkerd-identity-trust-roots\n  \
         namespace: linkerd\ndata:\n  ca-bundle.crt: {}\n---\n",
        serde_json::to_string(&anchors).unwrap()
    );
    let fixtures = [
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: linkerd\n---\n",
        &trust_roots,
        &meshed_pod("web-0", "web", "web"),
        &meshed_pod("web-1", "web-admin", "web"),
        &meshed_pod("web-2", "web", "web2"),
        &meshed_pod("silent-0", "web", "silent"),
        PLAIN_POD,
    ]
    .concat();
    let server = FakeKube::builder().fixture_yaml(fixtures).start().unwrap();
    let backend = Backend::start();
    let mut proxies = Vec::new();
    for (pod, sa) in [("web-0", "web"), ("web-1", "web-admin")] {
        let identity = format!("{sa}.{NS}.serviceaccount.identity.linkerd.cluster.local");
        let env = [
            (
                "MESH_PROXY_IDENTITY_CERT_FILE",
                certs(&format!("{pod}.crt")),
            ),
            ("MESH_PROXY_IDENTITY_KEY_FILE", certs(&format!("{pod}.key"))),
            ("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", anchors.clone()),
            ("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", identity),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let proxy = Proxy::start(backend.addr, &env);
        server.set_pod_proxy(NS, pod, 4143, proxy.inbound);
        proxies.push(proxy);
    }
    // Connections complete in the listen backlog and are never read.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_pod_proxy(NS, "silent-0", 4143, silent.local_addr().unwrap());
    Cluster {
        server,
        _proxies: proxies,
        _backend: backend,
        _silent: silent,
    }
}

fn golden(name: &str, actual: &str) {
    check_golden(&testdata().join("identity").join(name), actual).unwrap();
}

#[test]
fn meshed_pods_by_selector_show_their_certificates() {
    let c = cluster();
    let out = mesh(&c.server, &["identity", "-n", NS, "-l", "app=web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    golden("selector.txt", &stdout(&out));

    let out = mesh(
        &c.server,
        &["identity", "-n", NS, "-l", "app=web", "-o", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json = stdout(&out);
    golden("selector.json", &json);
    // The PEM is the certificate the proxy was given, byte for byte.
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let served = std::fs::read_to_string(certs("web-0.crt")).unwrap();
    assert_eq!(rows[0]["pem"], served);
    assert_eq!(rows[0]["trusted"], true);
}

#[test]
fn failed_pods_are_named_and_the_others_still_shown() {
    let c = cluster();
    let out = mesh(
        &c.server,
        &[
            "identity", "-n", NS, "web-0", "plain-0", "web-2", "nope", "web-1",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    golden("failures.txt", &stdout(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert_eq!(
        lines[0],
        "pod plain-0 (2 of 5): not meshed: it has no linkerd-proxy container"
    );
    assert!(
        lines[1].starts_with("pod web-2 (3 of 5): cannot reach the proxy's port 4143: error forwarding port 4143 to pod web-2_demo")
            && lines[1].ends_with("connect: connection refused"),
        "{err}"
    );
    assert_eq!(lines[2], "pod nope (4 of 5): not found in namespace demo");
    assert_eq!(
        lines[3],
        "Error: could not show the certificate of 3 of 5 pods"
    );
}

#[test]
fn an_unknown_pod_alone_exits_1() {
    let c = cluster();
    let out = mesh(&c.server, &["identity", "-n", NS, "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).starts_with("pod nope (1 of 1): not found in namespace demo\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_selector_matching_nothing_exits_1() {
    let c = cluster();
    let out = mesh(&c.server, &["identity", "-n", NS, "-l", "app=none"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error: no pods found in namespace demo matching app=none\n"
    );
}

#[test]
fn without_the_trust_roots_trust_is_unknown() {
    let c = cluster();
    let out = mesh(
        &c.server,
        &["identity", "-n", NS, "-L", "elsewhere", "web-0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "Trusted:                   unknown: ConfigMap elsewhere/linkerd-identity-trust-roots not found\n"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_proxy_that_never_answers_times_out() {
    let c = cluster();
    let started = std::time::Instant::now();
    let out = mesh(
        &c.server,
        &["identity", "-n", NS, "--timeout", "1s", "silent-0", "web-0"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    assert_eq!(
        stderr(&out).lines().next(),
        Some("pod silent-0 (1 of 2): the proxy's port 4143 did not complete a TLS handshake in 1s")
    );
    assert!(
        stdout(&out).starts_with("POD web-0 (2 of 2)\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn without_names_or_a_selector_every_pod_of_the_namespace_is_asked() {
    let c = cluster();
    let out = mesh(&c.server, &["identity", "-n", NS, "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let shown: Vec<&str> = text.lines().filter(|l| l.starts_with("POD ")).collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown.iter().all(|l| l.ends_with(" of 5)")), "{shown:?}");
    assert!(
        stderr(&out).ends_with("Error: could not show the certificate of 3 of 5 pods\n"),
        "{}",
        stderr(&out)
    );
}
