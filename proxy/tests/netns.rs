//! End to end through real network namespaces: `mesh-proxy init` rules in a client and a server
//! pod on one bridge (see `support::netns`), curl in the client, an HTTP server in the server,
//! and transparent proxies on both sides running as the proxy user (uid 2102).
//!
//! ```text
//!  client pod (iptables-nft)                    server pod (iptables-legacy)
//!  curl 10.A.B.3:8080 --OUTPUT REDIRECT--> :4140 outbound proxy (uid 2102, exempt)
//!      --bridge--> PREROUTING REDIRECT --> :4143 inbound proxy (uid 2102) --> :8080 server
//! ```
//!
//! The two sides use different iptables backends so both are covered. These tests need root,
//! iptables, iproute2 and setpriv; CI runs as root and installs them (`cargo xtask deps`).
//! Elsewhere they fail and say why.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use support::BIN;
use support::apps::APP_PORT;
use support::netns::{DEADLINE, Lab, PYTHON, Pod, ProcId, require};

const TOOLS: &[&str] = &[
    "iptables-nft",
    "iptables-nft-save",
    "iptables-legacy",
    "iptables-legacy-save",
];

/// A transparent TCP forwarder: reads SO_ORIGINAL_DST, connects there, and pipes bytes both
/// ways, printing each original destination. It stands in for the proxy to show that the
/// rules alone route traffic correctly and keep the original destination.
const FORWARDER: &str = r#"
import socket, struct, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1])))
ls.listen(64)
print("ready", flush=True)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
def handle(c):
    raw = c.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST
    port = struct.unpack("!H", raw[2:4])[0]
    ip = socket.inet_ntoa(raw[4:8])
    print("original-dst %s:%d" % (ip, port), flush=True)
    u = socket.create_connection((ip, port))
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
while True:
    c, _ = ls.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// A client pod (iptables-nft) and a server pod (iptables-legacy) with the application.
fn pods(lab: &mut Lab) -> (Pod, Pod) {
    let client = lab.pod("client");
    let server = lab.pod("server");
    lab.app(&server, "server");
    lab.init(&client, "nft");
    lab.init(&server, "legacy");
    (client, server)
}

/// A forwarder on `port` in `pod`, as the proxy user; waits until it listens.
fn forwarder(lab: &mut Lab, pod: &Pod, port: &str) -> ProcId {
    let id = lab.spawn(pod, true, &[PYTHON, "-c", FORWARDER, port], &[]);
    assert!(
        lab.wait_output(id, "ready", DEADLINE),
        "a forwarder did not start: {}",
        lab.output(id)
    );
    id
}

/// The rules from `mesh-proxy init` send curl's connection to the outbound port, let the
/// forwarder (uid 2102) out without looping, and send the arriving connection to the inbound
/// port; both forwarders see the original destination.
#[test]
fn init_rules_route_through_transparent_forwarders() {
    require(TOOLS);
    let mut lab = Lab::new(BIN);
    let (client, server) = pods(&mut lab);
    let outbound = forwarder(&mut lab, &client, "4140");
    let inbound = forwarder(&mut lab, &server, "4143");

    let url = format!("http://{}:{APP_PORT}/", server.ip());
    let reply = lab.curl(&client, &[], &url);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "hello from server\n");

    let want = format!("original-dst {}:{APP_PORT}", server.ip());
    for id in [outbound, inbound] {
        let seen = lab.output(id);
        let dsts: Vec<&str> = seen
            .lines()
            .filter(|l| l.starts_with("original-dst"))
            .collect();
        assert_eq!(dsts, [want.as_str()], "a forwarder saw:\n{seen}");
    }
}

/// The acceptance test of transparent mode: curl in the client namespace reaches the server
/// through an outbound mesh-proxy and an inbound mesh-proxy, and both proxies count it.
#[test]
fn curl_through_outbound_and_inbound_mesh_proxies() {
    require(TOOLS);
    let mut lab = Lab::new(BIN);
    let (client, server) = pods(&mut lab);
    for pod in [&client, &server] {
        lab.proxy(pod, &[("LINKERD2_PROXY_LOG", "info")]);
    }
    for pod in [&client, &server] {
        lab.wait_proxy_ready(pod);
    }

    let authority = format!("{}:{APP_PORT}", server.ip());
    let url = format!("http://{authority}/");
    let reply = lab.curl(&client, &[], &url);
    assert!(
        reply.head.starts_with("HTTP/1.") && reply.status == 200,
        "{reply:?}"
    );
    assert_eq!(reply.body, "hello from server\n");

    for (pod, direction) in [(&client, "outbound"), (&server, "inbound")] {
        let metrics = lab.metrics(pod);
        // Exactly one request, labelled with the server's address as Linkerd labels it.
        let counted = |name: &str, extra: &[&str]| {
            metrics.lines().any(|line| {
                line.starts_with(&format!("{name}{{"))
                    && line.contains(&format!("direction=\"{direction}\""))
                    && line.contains(&format!("authority=\"{authority}\""))
                    && line.contains(&format!("target_addr=\"{authority}\""))
                    && extra.iter().all(|label| line.contains(label))
                    && line.ends_with(" 1")
            })
        };
        assert!(
            counted("request_total", &[]),
            "the {direction} proxy's request_total does not show the request:\n{metrics}"
        );
        assert!(
            counted(
                "response_total",
                &["status_code=\"200\"", "classification=\"success\""]
            ),
            "the {direction} proxy's response_total does not show the response:\n{metrics}"
        );
        // The proxy accepted the connection and opened its own to the server.
        for peer in ["src", "dst"] {
            let opened = metrics.lines().any(|line| {
                line.starts_with("tcp_open_total{")
                    && line.contains(&format!("direction=\"{direction}\""))
                    && line.contains(&format!("peer=\"{peer}\""))
                    && line.contains(&format!("target_addr=\"{authority}\""))
                    && line.ends_with(" 1")
            });
            assert!(
                opened,
                "the {direction} proxy shows no {peer} connection:\n{metrics}"
            );
        }
    }
}
