//! HTTP/1 between two meshed proxies over HTTP/2 (`l5d-orig-proto`), both sides real: an
//! outbound proxy whose control plane marks the endpoint as meshed sends HTTP/1 requests
//! over one HTTP/2 connection to an inbound proxy, which hands them to the application as
//! HTTP/1.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use support::backend::Backend;
use support::client::H1Client;
use support::destination::{Destination, MESHED};
use support::{Proxy, metric_sum};

const WEB: &str = "web.ns.svc.cluster.local:8080";

#[test]
fn http1_rides_one_http2_connection_between_meshed_proxies() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let server = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", fwd.as_str())]);
    let dst = Destination::start();
    dst.set_labeled(WEB, &[], &[(server.inbound, &[(MESHED, "true")][..])]);
    let addr = dst.env();
    let client = Proxy::start(&[("LINKERD2_PROXY_DESTINATION_SVC_ADDR", addr.as_str())]);

    // Three client connections, three requests each; the first is sent before the control
    // plane has answered.
    for _ in 0..3 {
        let mut c = H1Client::connect(client.outbound);
        for _ in 0..3 {
            let res = c.get(&format!("http://{WEB}/hello")).unwrap();
            assert_eq!(res.status, 200, "{res:?}");
            let body = res.body_string();
            assert!(
                body.contains("version=HTTP/1.1"),
                "the application saw HTTP/1.1: {body}"
            );
            assert!(
                res.header("l5d-orig-proto").is_none(),
                "the marker is removed before the client: {res:?}"
            );
        }
    }
    // All nine requests reached the server proxy on one HTTP/2 connection.
    let m = server.metrics();
    let inbound = "direction=\"inbound\"";
    assert_eq!(
        metric_sum(&m, "tcp_open_total", &[inbound, "peer=\"src\""]),
        1.0,
        "{m}"
    );
    assert_eq!(metric_sum(&m, "request_total", &[inbound]), 9.0, "{m}");
}
