//! Meshed pods in network namespaces, certified by the real `mesh-controller identity` (which
//! checks their service-account tokens with the fake API server), talk mesh TLS through the
//! real `mesh-proxy`: the scenarios of `support::pods` (shared with the proxy's file-identity
//! tests), certificates renewed under traffic, and endpoints whose identity comes from the
//! real `mesh-controller destination` (HTTP and opaque TCP).
//!
//! ```text
//!  host: fake API server; identity (and destination) service on 10.A.B.1, the host's
//!        address on the bridge
//!    │
//!  [bridge] ── client pod (SA client) ── server pod (SA server) ── plain pod (no proxy)
//! ```
//!
//! Needs root, iptables, iproute2, setpriv, curl and Debian's python3 (`cargo xtask deps`);
//! skipped, saying why, without them.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use mesh_pki::Credentials;
use mesh_testkube::FakeKube;
use serde_json::json;
use support::apps::metric_sum;
use support::netns::{Lab, Pod, skip};
use support::pods::{self, NS, TOOLS, identity as id};
use support::{Controller, identity};

/// The fake API server and the identity service, listening for the lab's pods on the host's
/// address on their bridge.
struct ControlPlane {
    dir: tempfile::TempDir,
    kube: FakeKube,
    kubeconfig: PathBuf,
    /// The host's address on the lab's bridge.
    host: Ipv4Addr,
    controller: Controller,
    credentials: Credentials,
}

/// A lab with the host on its bridge and the control plane there, issuing certificates that
/// live `lifetime` (and 1 s more: the clock-skew allowance).
fn lab(lifetime: &str) -> (Lab, ControlPlane) {
    let mut lab = Lab::new(support::proxy::binary());
    let host = lab.join_host();
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();
    let credentials = Credentials::generate(identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    let (anchors, issuer) = identity::write_credentials(dir.path(), &credentials);
    let controller = identity::start_on(
        Command::new(env!("CARGO_BIN_EXE_mesh-controller")),
        IpAddr::V4(host),
        &kubeconfig,
        &anchors,
        &issuer,
        &[
            "--issuance-lifetime",
            lifetime,
            "--clock-skew-allowance",
            "1s",
        ],
    )
    .unwrap();
    let cp = ControlPlane {
        dir,
        kube,
        kubeconfig,
        host,
        controller,
        credentials,
    };
    (lab, cp)
}

impl ControlPlane {
    /// The variables `mesh inject` renders for a pod running as `sa`, pointed at this
    /// control plane, with a token for `sa` in the pod's directory.
    fn identify(&self, lab: &Lab, pod: &str, sa: &str) -> Vec<(String, String)> {
        assert_eq!(id(sa), identity::workload(sa, NS));
        let token = self.kube.issue_token(NS, sa, &["identity.l5d.io"]);
        let token_file = lab.write(&format!("{pod}/token"), token.as_bytes());
        [
            (
                "LINKERD2_PROXY_IDENTITY_DIR",
                "/var/run/linkerd/identity/end-entity".to_owned(),
            ),
            (
                "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
                self.credentials.trust_anchors_pem.clone(),
            ),
            (
                "LINKERD2_PROXY_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            (
                "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
                self.controller.addr.to_string(),
            ),
            ("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", id(sa)),
            ("LINKERD2_PROXY_IDENTITY_SVC_NAME", identity::service_name()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl ControlPlane {
    /// `mesh-controller destination` on the host's address, once ready.
    fn destination(&self) -> Controller {
        self.kube.apply_yaml(support::CRDS).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-controller"));
        command
            .args(["--log-level", "info", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .args(["--admin-addr", "127.0.0.1:0", "destination", "--addr"])
            .arg(format!("{}:0", self.host))
            .args(["--policy-addr", "127.0.0.1:0"])
            .env("KUBECACHEDIR", self.dir.path());
        let controller = support::start(command, "grpc").unwrap_or_else(|(status, log)| {
            panic!("destination did not start ({status:?}):\n{log}")
        });
        assert!(
            controller.wait_ready(support::DEADLINE),
            "{}",
            controller.stderr()
        );
        controller
    }

    /// A Pod object for the lab's `pod`, meshed (a `linkerd-proxy` container) and running as
    /// service account `sa`.
    fn register(&self, pod: &Pod, sa: &str) {
        let name = pod.ns.clone();
        self.kube
            .create(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"serviceAccountName": sa, "containers": [
                    {"name": "app", "image": "app"},
                    {"name": "linkerd-proxy", "image": "proxy"}]},
            }))
            .unwrap();
        let ip = pod.ip().to_string();
        self.kube
            .edit_status("Pod", NS, &name, |status| {
                status["podIP"] = json!(ip);
                status["podIPs"] = json!([{"ip": ip}]);
            })
            .unwrap();
    }
}

#[test]
fn meshed_pods_speak_mesh_tls_and_refuse_plaintext() {
    if skip("meshed pods with the control plane's identities", TOOLS) {
        return;
    }
    let (mut lab, cp) = lab("24h");
    pods::meshed_pods_speak_mesh_tls_and_refuse_plaintext(&mut lab, &|l, p, s| {
        cp.identify(l, p, s)
    });
}

#[test]
fn a_server_with_another_identity_gets_no_plaintext() {
    if skip("mesh TLS to a pod with another identity", TOOLS) {
        return;
    }
    let (mut lab, cp) = lab("24h");
    pods::a_server_with_another_identity_gets_no_plaintext(&mut lab, &|l, p, s| {
        cp.identify(l, p, s)
    });
}

/// The `identity_cert_refresh_count` of the proxy in `pod`.
fn refreshes(lab: &Lab, pod: &Pod) -> f64 {
    let page = lab.metrics(pod);
    page.lines()
        .find_map(|l| l.strip_prefix("identity_cert_refresh_count "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Certificates that live 11 s are renewed about every 8 s while requests run through both
/// proxies, each on a connection of its own (so a handshake with the current certificates):
/// none fails, up to the second renewal on both sides, past the first certificates' expiry.
#[test]
fn certificates_renewed_under_traffic_fail_no_request() {
    if skip("mesh TLS across certificate renewals", TOOLS) {
        return;
    }
    let (mut lab, cp) = lab("10s");
    let identify = |l: &Lab, p: &str, s: &str| cp.identify(l, p, s);
    let refresh = ("LINKERD2_PROXY_IDENTITY_MIN_REFRESH", "1s");
    let server = pods::meshed_pod(&mut lab, &identify, "server", "server", &[refresh]);
    let app = lab.app(&server, "server");
    let no_pool = ("LINKERD2_PROXY_OUTBOUND_MAX_IDLE_CONNS_PER_ENDPOINT", "0");
    let server_id = id("server");
    let client = pods::client_pod(
        &mut lab,
        &identify,
        &server,
        &server_id,
        &[refresh, no_pool],
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    while refreshes(&lab, &server) < 3.0 || refreshes(&lab, &client) < 3.0 {
        assert!(
            Instant::now() < deadline && sent < 10_000,
            "not renewed twice on both sides after {sent} requests"
        );
        let reply = pods::get(&lab, &client, &server);
        sent += 1;
        assert_eq!(reply.status, 200, "request {sent}: {reply:?}");
    }
    assert_eq!(lab.app_log(app), (sent, 0));
    let page = lab.metrics(&client);
    let server_id = format!("server_id=\"{server_id}\"");
    let opened = [
        "direction=\"outbound\"",
        "peer=\"dst\"",
        "tls=\"true\"",
        &server_id,
    ];
    let handshakes = metric_sum(&page, "tcp_open_total", &opened);
    eprintln!(
        "{sent} requests across two renewals on each side, {handshakes} mesh TLS connections"
    );
    assert!(
        handshakes >= sent as f64,
        "{sent} requests, {handshakes} connections:\n{page}"
    );
}

/// Without a namer, the client proxy asks the real `mesh-controller destination` about the
/// address the application dialled; its answer names the server pod's identity (from the Pod
/// object's service account), so HTTP (upgraded to HTTP/2, as the answer hints) and opaque
/// TCP both cross mesh TLS.
#[test]
fn the_destination_service_names_the_identity_for_http_and_opaque_tcp() {
    if skip("mesh TLS to endpoints from the destination service", TOOLS) {
        return;
    }
    let (mut lab, cp) = lab("24h");
    let destination = cp.destination();
    let identify = |l: &Lab, p: &str, s: &str| cp.identify(l, p, s);
    let opaque = "9090";
    let inbound_opaque = (
        "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
        opaque,
    );
    let server = pods::meshed_pod(&mut lab, &identify, "server", "server", &[inbound_opaque]);
    cp.register(&server, "server");
    let http_app = lab.app(&server, "server");
    let tcp_app = lab.app_on(&server, 9090, "server");
    let dst_addr = destination.addr.to_string();
    let client_env = [
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", dst_addr.as_str()),
        (
            "MESH_PROXY_OUTBOUND_PORTS_DISABLE_PROTOCOL_DETECTION",
            opaque,
        ),
    ];
    let client = pods::meshed_pod(&mut lab, &identify, "client", "client", &client_env);

    for (port, app) in [(8080, http_app), (9090, tcp_app)] {
        let url = format!("http://{}:{port}/", server.ip());
        let reply = lab.curl(&client, &[], &url);
        assert_eq!(reply.status, 200, "{url}: {reply:?}");
        assert_eq!(lab.app_log(app), (1, 0), "{url}");
    }

    let server_id = format!("server_id=\"{}\"", id("server"));
    let client_id = format!("client_id=\"{}\"", id("client"));
    let page = lab.metrics(&client);
    for port in [8080, 9090] {
        let target = format!("target_addr=\"{}:{port}\"", server.ip());
        let opened = [
            "direction=\"outbound\"",
            "peer=\"dst\"",
            "tls=\"true\"",
            &server_id,
            &target,
        ];
        assert_eq!(
            metric_sum(&page, "tcp_open_total", &opened),
            1.0,
            "{target}\n{page}"
        );
    }
    let outbound = ["direction=\"outbound\"", "tls=\"true\"", &server_id];
    assert_eq!(metric_sum(&page, "request_total", &outbound), 1.0, "{page}");
    let page = lab.metrics(&server);
    for port in [8080, 9090] {
        let target = format!("target_addr=\"{}:{port}\"", server.ip());
        let accepted = [
            "direction=\"inbound\"",
            "peer=\"src\"",
            "tls=\"true\"",
            &client_id,
            &target,
        ];
        assert_eq!(
            metric_sum(&page, "tcp_open_total", &accepted),
            1.0,
            "{target}\n{page}"
        );
    }
    // HTTP only on the HTTP port; the opaque port's bytes were not read as requests.
    let inbound = ["direction=\"inbound\"", "tls=\"true\"", &client_id];
    assert_eq!(metric_sum(&page, "request_total", &inbound), 1.0, "{page}");
}
