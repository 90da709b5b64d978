//! Service profile routes through the real binary: retries within the retry budget, bodies
//! never resent, and route timeouts, with the profiles served by a scripted control plane.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::client::{H1Client, H2Client};
use support::destination::{Destination, budget, profile, route};
use support::replica::Replica;
use support::{Proxy, eventually, metric_sum};

const WEB: &str = "web.ns.svc.cluster.local:8080";

fn url(authority: &str, path: &str) -> String {
    format!("http://{authority}{path}")
}

fn start_proxy(dst: &Destination) -> Proxy {
    Proxy::start(&[("LINKERD2_PROXY_DESTINATION_SVC_ADDR", &dst.env())])
}

/// `route_retry_total` and `route_retry_budget_exhausted_total` of one route.
fn retries(proxy: &Proxy, authority: &str, route: &str) -> (f64, f64) {
    let metrics = proxy.metrics();
    let labels = [
        format!("dst=\"{authority}\""),
        format!("rt_route=\"{route}\""),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    (
        metric_sum(&metrics, "route_retry_total", &labels),
        metric_sum(&metrics, "route_retry_budget_exhausted_total", &labels),
    )
}

/// Whether the route's retry series exists yet, i.e. the proxy has the profile.
fn has_route_metrics(proxy: &Proxy, authority: &str, route: &str) -> bool {
    proxy.metrics().lines().any(|l| {
        l.starts_with("route_retry_total{")
            && l.contains(&format!("dst=\"{authority}\""))
            && l.contains(&format!("rt_route=\"{route}\""))
    })
}

#[test]
fn retryable_routes_retry_failures_within_the_budget() {
    // One replica failing every other `/flaky` request: a retry always succeeds.
    let web = Replica::start("web");
    let dst = Destination::start();
    dst.set(WEB, &[web.addr]);
    let mut retryable = route("r", "/flaky/r");
    retryable.is_retryable = true;
    dst.profile(WEB, profile(vec![retryable, route("n", "/flaky/n")]));
    let proxy = start_proxy(&dst);
    let mut client = H1Client::connect(proxy.outbound);

    // Until the profile arrives the proxy does not retry.
    assert!(
        eventually(Duration::from_secs(10), || {
            client.get(&url(WEB, "/flaky/r")).unwrap();
            has_route_metrics(&proxy, WEB, "r")
        }),
        "the proxy never retried on the profile's route"
    );
    // Each request now meets a 500, retried to a 200 (the retry after a retried request
    // always comes first).
    let (before, _) = retries(&proxy, WEB, "r");
    let sent = web.requests();
    const N: usize = 50;
    for i in 0..N {
        let res = client.get(&url(WEB, "/flaky/r")).unwrap();
        assert_eq!(res.status, 200, "request {i}: {res:?}");
    }
    let (after, exhausted) = retries(&proxy, WEB, "r");
    assert_eq!(after - before, N as f64, "one retry per request");
    assert_eq!(exhausted, 0.0);
    assert_eq!(
        web.requests() - sent,
        2 * N,
        "every request reached the replica twice"
    );

    // A small body is read whole and sent again with its request.
    let sent = web.requests();
    let res = client
        .send("POST", &url(WEB, "/flaky/r"), b"payload")
        .unwrap();
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(web.requests() - sent, 2);
    assert_eq!(retries(&proxy, WEB, "r").0, after + 1.0);

    // A body over 64 KiB is not kept: its 500 reaches the client.
    let sent = web.requests();
    let big = vec![b'x'; 64 * 1024 + 1];
    let res = client.send("POST", &url(WEB, "/flaky/r"), &big).unwrap();
    assert_eq!(res.status, 500, "{res:?}");
    assert_eq!(web.requests() - sent, 1);
    assert_eq!(retries(&proxy, WEB, "r").0, after + 1.0);

    // A route that is not retryable passes every other request's 500 through (21
    // requests, so that the next `/flaky` request fails again).
    let statuses: Vec<u16> = (0..21)
        .map(|_| client.get(&url(WEB, "/flaky/n")).unwrap().status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 500).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(retries(&proxy, WEB, "n"), (0.0, 0.0));

    // HTTP/2: a bodiless request on the retryable route is retried too.
    let (before, _) = retries(&proxy, WEB, "r");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut h2 = H2Client::connect(proxy.outbound).await;
        for i in 0..10 {
            let res = h2.get(&url(WEB, "/flaky/r")).await.unwrap();
            assert_eq!(res.status, 200, "h2 request {i}: {res:?}");
        }
    });
    assert_eq!(retries(&proxy, WEB, "r").0 - before, 10.0);
}

#[test]
fn a_spent_retry_budget_stops_retries() {
    // No floor and 5 % of requests: two retries per 40 requests.
    let tight = "tight.ns.svc.cluster.local:8080";
    let web = Replica::start("tight");
    let dst = Destination::start();
    dst.set(tight, &[web.addr]);
    let mut retryable = route("r", "/flaky/r");
    retryable.is_retryable = true;
    let mut p = profile(vec![retryable]);
    p.retry_budget = Some(budget(0.05, 0, Duration::from_secs(10)));
    dst.profile(tight, p);
    let proxy = start_proxy(&dst);
    let mut client = H1Client::connect(proxy.outbound);

    let mut failed = 0;
    let ok = eventually(Duration::from_secs(10), || {
        if client.get(&url(tight, "/flaky/r")).unwrap().status == 500 {
            failed += 1;
        }
        has_route_metrics(&proxy, tight, "r")
    });
    assert!(ok, "the proxy never considered a retry");
    for _ in 0..40 {
        if client.get(&url(tight, "/flaky/r")).unwrap().status == 500 {
            failed += 1;
        }
    }
    let (retried, exhausted) = retries(&proxy, tight, "r");
    println!("budget 5%, no floor: {retried} retried, {exhausted} refused, {failed} 500s seen");
    assert!(retried <= 3.0, "{retried} retries within a 5% budget");
    assert!(exhausted >= 15.0, "only {exhausted} refused retries");
    assert!(failed >= 15, "only {failed} failures reached the client");
}

#[test]
fn a_route_timeout_answers_504_quickly() {
    let web = Replica::start("web");
    let dst = Destination::start();
    dst.set(WEB, &[web.addr]);
    let mut slow = route("slow", "/slow/.*");
    slow.timeout = Some(support::destination::proto_duration(Duration::from_millis(
        100,
    )));
    dst.profile(WEB, profile(vec![slow]));
    let proxy = start_proxy(&dst);
    let mut client = H1Client::connect(proxy.outbound);

    // The profile may come a moment after the endpoints.
    let mut answered = false;
    for _ in 0..20 {
        let res = client.get(&url(WEB, "/slow/1000")).unwrap();
        if client.closed {
            client = H1Client::connect(proxy.outbound);
        }
        if res.status == 504 {
            answered = true;
            break;
        }
    }
    assert!(answered, "no 504 from the route timeout");
    for i in 0..5 {
        let start = Instant::now();
        let res = client.get(&url(WEB, "/slow/1000")).unwrap();
        let took = start.elapsed();
        if client.closed {
            client = H1Client::connect(proxy.outbound);
        }
        assert_eq!(res.status, 504, "request {i}: {res:?}");
        assert!(res.header("l5d-proxy-error").is_some(), "{res:?}");
        assert!(
            took < Duration::from_millis(600),
            "request {i}: 504 after {took:?} for a 100ms timeout"
        );
    }
    // Paths off the route have no timeout.
    let res = client.get(&url(WEB, "/")).unwrap();
    assert_eq!(res.status, 200);

    // HTTP/2 too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut h2 = H2Client::connect(proxy.outbound).await;
        let start = Instant::now();
        let res = h2.get(&url(WEB, "/slow/1000")).await.unwrap();
        assert_eq!(res.status, 504, "{res:?}");
        assert!(start.elapsed() < Duration::from_millis(600));
    });
}
