//! The control plane's answers and absences through the real binary: a service with no
//! endpoints fails fast, the last answer keeps serving while the control plane is down,
//! targets it never answered go to their original destination (an address) or fail (a
//! name, which has none), and a control plane that comes back is heard again.
//!
//! Clients use the outbound listener as an HTTP proxy. Transparent mode (a redirected
//! connection whose `Host` the control plane does not know, falling back to its
//! `SO_ORIGINAL_DST`) needs iptables in a network namespace: `balance_transparent.rs`.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::client::H1Client;
use support::destination::Destination;
use support::replica::{HEADER, Replica};
use support::{Proxy, eventually};

const WEB: &str = "web.ns.svc.cluster.local:8080";

fn url(authority: &str, path: &str) -> String {
    format!("http://{authority}{path}")
}

fn start_proxy(dst: &Destination) -> Proxy {
    Proxy::start(&[
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", &dst.env()),
        ("MESH_PROXY_BALANCER", "least-loaded"),
    ])
}

/// One request on a connection of its own.
fn get(proxy: &Proxy, authority: &str) -> support::RawResponse {
    H1Client::connect(proxy.outbound)
        .get(&url(authority, "/"))
        .unwrap()
}

/// Who answered `n` requests, each on a new connection; panics on anything but a 200.
fn answered_by(proxy: &Proxy, authority: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|i| {
            let res = get(proxy, authority);
            assert_eq!(res.status, 200, "request {i} to {authority}: {res:?}");
            res.header(HEADER).unwrap()
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn services_without_endpoints_fail_fast_and_unknown_names_fail() {
    let web = Replica::start("web");
    let dst = Destination::start();
    let empty = "empty.ns.svc.cluster.local:8080";
    dst.set(empty, &[]);
    dst.set(WEB, &[web.addr]);
    let proxy = start_proxy(&dst);

    // A service that exists with no endpoints: 503 at once.
    let start = Instant::now();
    let res = get(&proxy, empty);
    assert_eq!(res.status, 503, "{res:?}");
    let why = res.header("l5d-proxy-error").unwrap_or_default();
    assert!(why.contains("service unavailable"), "{why:?}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    // A name the control plane does not know has nowhere to go.
    let res = get(&proxy, "nowhere.ns.svc.cluster.local:8080");
    assert_eq!(res.status, 503, "{res:?}");
    let why = res.header("l5d-proxy-error").unwrap_or_default();
    assert!(why.contains("not known"), "{why:?}");

    // Endpoints arriving later are used; the service vanishing makes it unknown.
    assert_eq!(answered_by(&proxy, WEB, 3), set(&["web"]));
    let late = Replica::start("late");
    dst.add(empty, late.addr);
    assert!(
        eventually(Duration::from_secs(10), || get(&proxy, empty).status == 200),
        "the added endpoint was never used"
    );
    dst.forget(WEB);
    assert!(
        eventually(Duration::from_secs(10), || get(&proxy, WEB).status == 503),
        "the forgotten service still answered"
    );
}

#[test]
fn the_last_answer_outlives_the_control_plane() {
    let (a, b, c, d) = (
        Replica::start("a"),
        Replica::start("b"),
        Replica::start("c"),
        Replica::start("d"),
    );
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr]);
    let proxy = start_proxy(&dst);
    assert_eq!(answered_by(&proxy, WEB, 30), set(&["a", "b"]));

    // An address the control plane does not know goes where it was sent.
    let c_authority = c.addr.to_string();
    assert_eq!(answered_by(&proxy, &c_authority, 3), set(&["c"]));
    assert!(dst.gets().contains(&c_authority), "{:?}", dst.gets());

    // The control plane goes away; the proxy notices and keeps the last answer.
    let dst_addr = dst.addr;
    dst.kill();
    assert!(
        eventually(Duration::from_secs(10), || proxy
            .logs()
            .contains("destination lookup failed")),
        "the proxy did not notice the control plane was gone:\n{}",
        proxy.logs()
    );
    assert_eq!(answered_by(&proxy, WEB, 30), set(&["a", "b"]));

    // Targets never answered: an address goes to itself at once, a name has nowhere to go.
    let start = Instant::now();
    assert_eq!(answered_by(&proxy, &d.addr.to_string(), 3), set(&["d"]));
    let res = get(&proxy, "other.ns.svc.cluster.local:8080");
    assert_eq!(res.status, 503, "{res:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited {:?} for a control plane that refuses connections",
        start.elapsed()
    );

    // It comes back on the same address with a new answer: the proxy hears it.
    let back = Destination::start_on(dst_addr);
    back.set(WEB, &[c.addr]);
    let switched = eventually(Duration::from_secs(20), || {
        get(&proxy, WEB).header(HEADER).as_deref() == Some("c")
    });
    assert!(
        switched,
        "the proxy never heard the control plane again; it asked {:?}",
        back.gets()
    );
    assert_eq!(answered_by(&proxy, WEB, 10), set(&["c"]));
}
