//! Endpoints added and removed while h2load drives the real binary, over HTTP/2 (many
//! streams per connection) and HTTP/1: no request fails, the new endpoint takes traffic and
//! the removed one stops getting it while it still runs.
//!
//! h2load connects to the outbound listener (`--connect-to`) and names the service in each
//! request's authority, which the proxy asks the scripted control plane about.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::destination::Destination;
use support::replica::Replica;
use support::{Proxy, eventually};

const WEB: &str = "web.ns.svc.cluster.local:8080";
const REQUESTS: usize = 6000;
const CONNECTIONS: usize = 2;
const STREAMS: usize = 10;

fn churn_under_h2load(h1: bool) {
    let (a, b, c, d) = (
        Replica::start("a"),
        Replica::start("b"),
        Replica::start("c"),
        Replica::start("d"),
    );
    let all = [&a, &b, &c, &d];
    let served = || all.iter().map(|r| r.requests()).sum::<usize>();
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr, c.addr]);
    let proxy = Proxy::start(&[("LINKERD2_PROXY_DESTINATION_SVC_ADDR", &dst.env())]);

    let mut cmd = Command::new("h2load");
    cmd.args(["-n", &REQUESTS.to_string()])
        .args(["-c", &CONNECTIONS.to_string()])
        .args(["-m", &STREAMS.to_string()])
        .arg(format!("--connect-to={}", proxy.outbound))
        .arg(format!("http://{WEB}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if h1 {
        cmd.arg("--h1");
    }
    let load = cmd
        .spawn()
        .expect("h2load is installed (nghttp2-client, TEST_PACKAGES)");
    let start = Instant::now();

    assert!(
        eventually(Duration::from_secs(20), || served() >= REQUESTS / 4),
        "h2load made only {} requests",
        served()
    );
    // `b` leaves the service but keeps serving, as a terminating pod does; `d` joins.
    dst.remove(WEB, b.addr);
    dst.add(WEB, d.addr);
    assert!(
        eventually(Duration::from_secs(20), || d.requests() >= 100),
        "the new endpoint got {} requests",
        d.requests()
    );
    // Only requests already sent to `b` may still arrive there.
    let b_then = b.requests();

    let out = load.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "h2load: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = REQUESTS;
    assert!(
        text.contains(&format!("{n} done, {n} succeeded, 0 failed, 0 errored")),
        "{text}"
    );
    assert!(
        text.contains(&format!("status codes: {n} 2xx, 0 3xx, 0 4xx, 0 5xx")),
        "{text}"
    );
    assert!(
        b.requests() <= b_then + CONNECTIONS * STREAMS,
        "the removed endpoint still got traffic: {b_then} then {}",
        b.requests()
    );
    assert_eq!(served(), n, "every request was answered by one replica");
    println!(
        "h2load{} {n} requests in {:?}: a {} b {} c {} d {}",
        if h1 { " --h1" } else { "" },
        start.elapsed(),
        a.requests(),
        b.requests(),
        c.requests(),
        d.requests()
    );
}

#[test]
fn endpoints_change_under_http2_load() {
    churn_under_h2load(false);
}

#[test]
fn endpoints_change_under_http1_load() {
    churn_under_h2load(true);
}
