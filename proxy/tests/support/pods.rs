//! Meshed pods in a [`Lab`]: a pod whose proxy has an identity, a client pod whose file
//! namer says which identity the server must have, and the scenarios both identity sources
//! must pass: certificates from the control plane (the controller's tests) and from files
//! (the proxy's). Each scenario takes the source as a function that returns a pod's identity
//! variables.
//!
//! ```text
//!  client pod: curl -H 'Host: server' <server ip>:8080 --OUTPUT--> :4140 mesh-proxy
//!      ==mesh TLS, SNI server.default.serviceaccount.identity.linkerd.cluster.local==>
//!  server pod: PREROUTING --> :4143 mesh-proxy --> :8080 application
//!  plain pod:  curl <server ip>:8080, no proxy
//! ```
//!
//! The client's namer file `server` holds `<server ip> 8080 tls=<identity>`.

use super::apps::{APP_PORT, Reply, metric_sum};
use super::netns::{Lab, Pod};

/// The namespace of every service account here.
pub const NS: &str = "default";

/// The iptables tools the pods' `mesh-proxy init` uses.
pub const TOOLS: &[&str] = &["iptables-nft", "iptables-nft-save"];

/// Linkerd's identity of service account `sa` in [`NS`].
pub fn identity(sa: &str) -> String {
    format!("{sa}.{NS}.serviceaccount.identity.linkerd.cluster.local")
}

/// A pod's identity variables: given the lab, the pod's name and its service account.
pub type Identify<'a> = &'a dyn Fn(&Lab, &str, &str) -> Vec<(String, String)>;

/// A pod named `name` running as service account `sa`, with `mesh-proxy init`'s rules and a
/// proxy with `identify`'s variables and `env`; waits until the proxy is ready (certified).
pub fn meshed_pod(
    lab: &mut Lab,
    identify: Identify,
    name: &str,
    sa: &str,
    env: &[(&str, &str)],
) -> Pod {
    let pod = lab.pod(name);
    lab.init(&pod, "nft");
    let vars = identify(lab, name, sa);
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(env);
    lab.proxy(&pod, &all);
    lab.wait_proxy_ready(&pod);
    pod
}

/// The pod `client` (service account `client`): its namer says the host `server` is the
/// application port of `server`, which must hold `server_id`.
pub fn client_pod(
    lab: &mut Lab,
    identify: Identify,
    server: &Pod,
    server_id: &str,
    env: &[(&str, &str)],
) -> Pod {
    let line = format!("{} {APP_PORT} tls={server_id}\n", server.ip());
    lab.write("namer/server", line.as_bytes());
    let namer = lab.dir.join("namer").display().to_string();
    let mut all = vec![("MESH_PROXY_FS_NAMER_DIR", namer.as_str())];
    all.extend_from_slice(env);
    meshed_pod(lab, identify, "client", "client", &all)
}

/// `GET /` from `from` to the server pod's address, for the host `server`.
pub fn get(lab: &Lab, from: &Pod, server: &Pod) -> Reply {
    let url = format!("http://{}:{APP_PORT}/", server.ip());
    lab.curl(from, &["-H", "Host: server"], &url)
}

/// Curl in the client pod reaches the server's application through both proxies over mesh
/// TLS, and each proxy's metrics name the other's identity; the server admits only
/// authenticated clients, so a plaintext client is refused (403 with `l5d-proxy-error`)
/// before the application sees it, and the meshed client still gets through.
pub fn meshed_pods_speak_mesh_tls_and_refuse_plaintext(lab: &mut Lab, identify: Identify) {
    let policy = ("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", "all-authenticated");
    let server = meshed_pod(lab, identify, "server", "server", &[policy]);
    let app = lab.app(&server, "server");
    let client = client_pod(lab, identify, &server, &identity("server"), &[]);
    let plain = lab.pod("plain");

    let reply = get(lab, &client, &server);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "hello from server\n");
    assert_eq!(lab.app_log(app), (1, 0));

    // Each side names the other's identity, as Linkerd labels mesh TLS.
    let page = lab.metrics(&server);
    let client_id = format!("client_id=\"{}\"", identity("client"));
    let inbound = ["direction=\"inbound\"", "tls=\"true\"", &client_id];
    assert_eq!(metric_sum(&page, "request_total", &inbound), 1.0, "{page}");
    let accepted = [&inbound[..], &["peer=\"src\""]].concat();
    assert_eq!(
        metric_sum(&page, "tcp_open_total", &accepted),
        1.0,
        "{page}"
    );
    let page = lab.metrics(&client);
    let server_id = format!("server_id=\"{}\"", identity("server"));
    let outbound = ["direction=\"outbound\"", "tls=\"true\"", &server_id];
    assert_eq!(metric_sum(&page, "request_total", &outbound), 1.0, "{page}");
    let opened = [&outbound[..], &["peer=\"dst\""]].concat();
    assert_eq!(metric_sum(&page, "tcp_open_total", &opened), 1.0, "{page}");

    let reply = get(lab, &plain, &server);
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.header("l5d-proxy-error").is_some(), "{reply:?}");
    assert_eq!(lab.app_log(app), (1, 0));
    let page = lab.metrics(&server);
    let plaintext = ["tls=\"no_identity\""];
    let denied = metric_sum(&page, "inbound_http_authz_deny_total", &plaintext);
    assert_eq!(denied, 1.0, "{page}");

    let reply = get(lab, &client, &server);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(lab.app_log(app), (2, 0));
}

/// The namer says the server is `server.default…`, but the pod there holds `other.default…`:
/// the client's request fails with an error naming the identity it expected, nothing goes
/// out in plaintext, and the application sees only the handshake the server's proxy passed
/// through untouched (a TLS record), no request.
pub fn a_server_with_another_identity_gets_no_plaintext(lab: &mut Lab, identify: Identify) {
    let server = meshed_pod(lab, identify, "server", "other", &[]);
    let app = lab.app(&server, "server");
    let client = client_pod(lab, identify, &server, &identity("server"), &[]);

    let reply = get(lab, &client, &server);
    assert!(reply.status >= 500, "{reply:?}");
    let error = reply.header("l5d-proxy-error").unwrap_or_default();
    assert!(error.contains(&identity("server")), "{reply:?}");
    let (requests, not_http) = lab.app_log(app);
    let seen = lab.output(app);
    assert_eq!(requests, 0, "{seen}");
    // 0x16: a TLS handshake record, the ClientHello.
    let handshakes = seen
        .lines()
        .filter(|l| l.starts_with("not-http"))
        .all(|l| l == "not-http 16");
    assert!(not_http >= 1 && handshakes, "{seen}");
    let page = lab.metrics(&client);
    let plaintext = [
        "direction=\"outbound\"",
        "peer=\"dst\"",
        "tls=\"no_identity\"",
    ];
    assert_eq!(
        metric_sum(&page, "tcp_open_total", &plaintext),
        0.0,
        "{page}"
    );
}
