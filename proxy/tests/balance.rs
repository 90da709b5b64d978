//! Per-request balancing through the real binary, fed by a scripted control plane: requests
//! of one connection spread over a service's endpoints, endpoints come and go under load,
//! failing endpoints are ejected and come back, traffic splits follow their weights, and
//! endpoint labels reach the metrics.
//!
//! Clients use the outbound listener as an HTTP proxy, so each request names its target
//! (`http://web.ns.svc.cluster.local:8080/`), which the proxy asks the control plane about.

// Tests panic on what they did not expect.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::client::{H1Client, H2Client};
use support::destination::{Destination, profile, split};
use support::replica::{HEADER, Replica};
use support::{Proxy, eventually, metric_sum};

const WEB: &str = "web.ns.svc.cluster.local:8080";

fn url(authority: &str, path: &str) -> String {
    format!("http://{authority}{path}")
}

fn start_proxy(dst: &Destination, env: &[(&str, &str)]) -> Proxy {
    let addr = dst.env();
    let mut all = vec![
        ("LINKERD2_PROXY_DESTINATION_SVC_ADDR", addr.as_str()),
        ("LINKERD2_PROXY_DESTINATION_CONTEXT", r#"{"ns":"client"}"#),
    ];
    all.extend_from_slice(env);
    Proxy::start(&all)
}

/// Sends `n` GETs on one keep-alive connection; counts the responses per replica. Panics
/// on anything but a 200 or on a closed connection.
fn tally_h1(proxy: &Proxy, authority: &str, n: usize) -> BTreeMap<String, usize> {
    let mut client = H1Client::connect(proxy.outbound);
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let res = client
            .get(&url(authority, "/"))
            .unwrap_or_else(|e| panic!("request {i} on the one connection failed: {e}"));
        assert_eq!(res.status, 200, "request {i}: {res:?}");
        assert!(!res.closes(), "the proxy closed the keep-alive connection");
        *seen.entry(res.header(HEADER).unwrap()).or_insert(0) += 1;
    }
    seen
}

fn names(replicas: &[&Replica]) -> Vec<String> {
    replicas.iter().map(|r| r.name.clone()).collect()
}

/// Each of `replicas` got at least `min` of `seen`, and nothing else answered.
fn assert_spread(seen: &BTreeMap<String, usize>, replicas: &[&Replica], min: usize) {
    let keys: Vec<String> = seen.keys().cloned().collect();
    assert_eq!(keys, names(replicas), "who answered: {seen:?}");
    for (name, n) in seen {
        assert!(*n >= min, "{name} got {n}, less than {min}: {seen:?}");
    }
}

#[test]
fn one_http1_connection_is_spread_over_every_endpoint() {
    let (a, b, c) = (
        Replica::start("a"),
        Replica::start("b"),
        Replica::start("c"),
    );
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr, c.addr]);
    let proxy = start_proxy(&dst, &[("MESH_PROXY_BALANCER", "least-loaded")]);

    // One request at a time: every endpoint has none in flight, so the two choices are
    // a fair draw; each gets about a third (100).
    let seen = tally_h1(&proxy, WEB, 300);
    assert_spread(&seen, &[&a, &b, &c], 60);

    // The proxy asked for the name and port, with its context, once per stream.
    assert_eq!(dst.gets(), [WEB]);
    assert_eq!(dst.profile_gets(), [WEB]);
    assert!(
        dst.context_tokens()
            .iter()
            .all(|t| t == r#"{"ns":"client"}"#),
        "{:?}",
        dst.context_tokens()
    );
}

#[test]
fn one_http2_connection_is_spread_over_every_endpoint() {
    let (a, b, c) = (
        Replica::start("a"),
        Replica::start("b"),
        Replica::start("c"),
    );
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr, c.addr]);
    let proxy = start_proxy(&dst, &[("MESH_PROXY_BALANCER", "round-robin")]);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = rt.block_on(async {
        let mut client = H2Client::connect(proxy.outbound).await;
        let mut seen = BTreeMap::new();
        for i in 0..300 {
            let res = client.get(&url(WEB, "/")).await.unwrap_or_else(|e| {
                panic!("request {i} on the one connection failed: {e}");
            });
            assert_eq!(res.status, 200, "request {i}: {res:?}");
            *seen.entry(res.backend.unwrap()).or_insert(0) += 1;
        }
        seen
    });
    // Round robin: exactly a third each.
    assert_spread(&seen, &[&a, &b, &c], 100);
}

#[test]
fn peak_ewma_steers_concurrent_requests_away_from_a_slow_endpoint() {
    let (a, b) = (Replica::start("a"), Replica::start("b"));
    let slow = Replica::slow("slow", Duration::from_millis(25));
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr, slow.addr]);
    // The default balancer.
    let proxy = start_proxy(&dst, &[]);

    let load = Arc::new(Load::default());
    for t in load.run(proxy.outbound, WEB, 6, 150) {
        t.join().unwrap();
    }
    assert!(load.failures.lock().unwrap().is_empty());
    let total = load.done.load(SeqCst);
    let share = slow.requests() as f64 / total as f64;
    println!(
        "{total} requests: a {} b {} slow {}",
        a.requests(),
        b.requests(),
        slow.requests()
    );
    assert!(
        share < 0.1,
        "the slow endpoint got {} of {total} requests",
        slow.requests()
    );
    assert!(a.requests() > total / 4 && b.requests() > total / 4);
}

/// Outcomes of a client loop, shared by its threads.
#[derive(Default)]
struct Load {
    done: AtomicUsize,
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
}

impl Load {
    /// `threads` clients, each on its own keep-alive connection (a new one when the proxy
    /// closes it), each sending at most `max` requests or until told to stop.
    fn run(
        self: &Arc<Self>,
        proxy: SocketAddr,
        authority: &str,
        threads: usize,
        max: usize,
    ) -> Vec<std::thread::JoinHandle<()>> {
        (0..threads)
            .map(|_| {
                let (load, target) = (self.clone(), url(authority, "/"));
                std::thread::spawn(move || {
                    let mut client = H1Client::connect(proxy);
                    for _ in 0..max {
                        if load.stop.load(SeqCst) {
                            return;
                        }
                        if client.closed {
                            client = H1Client::connect(proxy);
                        }
                        match client.get(&target) {
                            Ok(res) if res.status == 200 => {}
                            Ok(res) => load.failures.lock().unwrap().push(res.head),
                            Err(e) => load.failures.lock().unwrap().push(e.to_string()),
                        }
                        load.done.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect()
    }

    fn wait_done(&self, n: usize, what: &str) {
        assert!(
            eventually(Duration::from_secs(20), || self.done.load(SeqCst) >= n),
            "{what}: only {} requests done",
            self.done.load(SeqCst)
        );
    }
}

#[test]
fn endpoints_added_and_removed_under_load_lose_no_request() {
    let (a, b, c, d) = (
        Replica::start("a"),
        Replica::start("b"),
        Replica::start("c"),
        Replica::start("d"),
    );
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr, c.addr]);
    let proxy = start_proxy(&dst, &[]);

    const THREADS: usize = 4;
    let load = Arc::new(Load::default());
    let clients = load.run(proxy.outbound, WEB, THREADS, 1500);
    load.wait_done(600, "before the change");

    // `b` leaves the service but keeps serving, as a terminating pod does; `d` joins.
    dst.remove(WEB, b.addr);
    dst.add(WEB, d.addr);
    assert!(
        eventually(Duration::from_secs(20), || d.requests() >= 100),
        "the new endpoint got {} requests",
        d.requests()
    );
    // The removal came first on the stream: once `d` is picked, `b` is no longer; only
    // requests already sent to it may still arrive.
    let b_then = b.requests();
    let done = load.done.load(SeqCst);
    load.wait_done(done.max(1400) + 600, "after the change");
    load.stop.store(true, SeqCst);
    for t in clients {
        t.join().unwrap();
    }

    let failures = load.failures.lock().unwrap();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let total = load.done.load(SeqCst);
    assert!(total >= 2000, "{total} requests");
    assert!(
        b.requests() <= b_then + THREADS,
        "the removed endpoint still got traffic: {} then {}",
        b_then,
        b.requests()
    );
    let served = a.requests() + b.requests() + c.requests() + d.requests();
    assert_eq!(served, total, "every request was answered by one replica");
    println!(
        "{total} requests: a {} b {} c {} d {}",
        a.requests(),
        b.requests(),
        c.requests(),
        d.requests()
    );
}

#[test]
fn an_endpoint_answering_5xx_is_ejected_after_five_failures() {
    let (a, b) = (Replica::start("a"), Replica::start("b"));
    let bad = Replica::failing("bad");
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr, bad.addr]);
    let penalty = Duration::from_millis(500);
    let proxy = start_proxy(
        &dst,
        &[
            ("MESH_PROXY_FAILURE_ACCRUAL_CONSECUTIVE", "5"),
            ("MESH_PROXY_FAILURE_ACCRUAL_MIN_PENALTY", "500ms"),
            ("MESH_PROXY_FAILURE_ACCRUAL_MAX_PENALTY", "2s"),
            // A fair draw among the endpoints, whatever their latencies.
            ("MESH_PROXY_BALANCER", "least-loaded"),
        ],
    );
    let mut client = H1Client::connect(proxy.outbound);
    let (mut failed, mut answered) = (0, BTreeMap::new());
    let start = Instant::now();
    for i in 0..300 {
        let res = client.get(&url(WEB, "/")).unwrap();
        match res.status {
            200 => *answered.entry(res.header(HEADER).unwrap()).or_insert(0) += 1,
            500 => failed += 1,
            other => panic!("request {i}: {other}: {res:?}"),
        }
    }
    // Five failures in a row eject it; after each penalty one request probes it, and
    // fails, doubling the penalty.
    let probes = (start.elapsed().as_millis() / penalty.as_millis()) as usize + 1;
    println!(
        "300 requests in {:?}: the failing endpoint got {}",
        start.elapsed(),
        bad.requests()
    );
    assert_eq!(
        failed,
        bad.requests(),
        "every failure came from it, unretried"
    );
    assert!(
        (5..=5 + probes).contains(&bad.requests()),
        "the failing endpoint got {} attempts in {:?} (5 eject it, then one probe per {penalty:?} at most)",
        bad.requests(),
        start.elapsed()
    );
    assert_eq!(answered.keys().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn dead_endpoints_are_skipped_then_fail_fast_then_recover() {
    let (a, b, c) = (
        Replica::start("a"),
        Replica::start("b"),
        Replica::start("c"),
    );
    let dst = Destination::start();
    dst.set(WEB, &[a.addr, b.addr, c.addr]);
    let proxy = start_proxy(
        &dst,
        &[
            ("MESH_PROXY_FAILURE_ACCRUAL_MIN_PENALTY", "300ms"),
            ("MESH_PROXY_FAILURE_ACCRUAL_MAX_PENALTY", "1s"),
            // Failing fast must not be mistaken for a connect failure.
            ("LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", "2s"),
            // Requests go one at a time: peak-EWMA would keep preferring whichever
            // replica answered fastest so far, hiding the recovery of the others.
            ("MESH_PROXY_BALANCER", "least-loaded"),
        ],
    );
    let seen = tally_h1(&proxy, WEB, 60);
    assert_spread(&seen, &[&a, &b, &c], 1);

    // One endpoint dies: a refused connection sends the request to another endpoint and
    // ejects the dead one, so no request fails.
    let c_addr = c.kill();
    let seen = tally_h1(&proxy, WEB, 100);
    assert_spread(&seen, &[&a, &b], 1);

    // All die: once each is ejected, requests fail at once with 503.
    let (a_addr, b_addr) = (a.kill(), b.kill());
    let mut client = H1Client::connect(proxy.outbound);
    let mut unavailable = None;
    for _ in 0..100 {
        let t = Instant::now();
        let res = client.get(&url(WEB, "/")).unwrap();
        if client.closed {
            client = H1Client::connect(proxy.outbound);
        }
        if res.status == 503 {
            unavailable = Some((res, t.elapsed()));
            break;
        }
        assert_eq!(res.status, 502, "{res:?}");
    }
    let (res, took) = unavailable.expect("503 once every endpoint is ejected");
    let why = res.header("l5d-proxy-error").unwrap_or_default();
    assert!(why.contains("service unavailable"), "{why:?}");
    assert!(
        took < Duration::from_millis(250),
        "the 503 took {took:?}, not failing fast"
    );
    println!("fail-fast 503 in {took:?}: {why}");

    // Restarted on the same ports: traffic comes back once the penalties pass.
    let restarted = Instant::now();
    let (a, b, c) = (
        Replica::start_on("a", a_addr),
        Replica::start_on("b", b_addr),
        Replica::start_on("c", c_addr),
    );
    let mut recovered = BTreeMap::new();
    let ok = eventually(Duration::from_secs(10), || {
        let res = client.get(&url(WEB, "/")).unwrap();
        if client.closed {
            client = H1Client::connect(proxy.outbound);
        }
        if res.status == 200 {
            *recovered.entry(res.header(HEADER).unwrap()).or_insert(0) += 1;
        }
        recovered.len() == 3
    });
    assert!(ok, "not every replica recovered: {recovered:?}");
    println!(
        "every replica answered again {:?} after the restart",
        restarted.elapsed()
    );
    drop((a, b, c));
}

#[test]
fn a_traffic_split_follows_its_weights() {
    let v1_name = "web-v1.ns.svc.cluster.local:8080";
    let v2_name = "web-v2.ns.svc.cluster.local:8080";
    let (web, v1, v2) = (
        Replica::start("web"),
        Replica::start("v1"),
        Replica::start("v2"),
    );
    let dst = Destination::start();
    dst.set(WEB, &[web.addr]);
    dst.set(v1_name, &[v1.addr]);
    dst.set(v2_name, &[v2.addr]);
    let mut split_profile = profile(vec![]);
    split_profile.dst_overrides = split(&[(v1_name, 9), (v2_name, 1)]);
    dst.profile(WEB, split_profile);
    let proxy = start_proxy(&dst, &[]);

    // Wait until the split is in force: the second backend answers.
    let mut client = H1Client::connect(proxy.outbound);
    assert!(
        eventually(Duration::from_secs(10), || {
            let res = client.get(&url(WEB, "/")).unwrap();
            res.header(HEADER).as_deref() == Some("v2")
        }),
        "the split never reached v2"
    );
    let before = (web.requests(), v1.requests(), v2.requests());

    const TOTAL: usize = 10_000;
    let load = Arc::new(Load::default());
    for t in load.run(proxy.outbound, WEB, 4, TOTAL / 4) {
        t.join().unwrap();
    }
    assert!(load.failures.lock().unwrap().is_empty());
    assert_eq!(load.done.load(SeqCst), TOTAL);
    let (n_web, n1, n2) = (
        web.requests() - before.0,
        v1.requests() - before.1,
        v2.requests() - before.2,
    );
    assert_eq!(n_web, 0, "the split's parent got traffic");
    assert_eq!(n1 + n2, TOTAL);
    let share = n1 as f64 / TOTAL as f64;
    assert!(
        (0.87..=0.93).contains(&share),
        "v1 got {n1} of {TOTAL} ({share:.3}), v2 {n2}; weights 9:1"
    );
    println!("split 9:1 over {TOTAL} requests: v1 {n1}, v2 {n2}");
    for name in [v1_name, v2_name] {
        assert!(dst.gets().iter().any(|g| g == name), "{:?}", dst.gets());
    }
}

#[test]
fn endpoint_labels_become_dst_labels_on_http_metrics() {
    let (a, b) = (Replica::start("a"), Replica::start("b"));
    let dst = Destination::start();
    dst.set_labeled(
        WEB,
        &[("namespace", "ns"), ("service", "web")],
        &[
            (a.addr, &[("pod", "web-0")]),
            (b.addr, &[("pod", "web-1"), ("service", "own")]),
        ],
    );
    let proxy = start_proxy(&dst, &[("MESH_PROXY_BALANCER", "round-robin")]);
    let seen = tally_h1(&proxy, WEB, 10);
    assert_spread(&seen, &[&a, &b], 5);

    let metrics = proxy.metrics();
    let a_target = format!("target_addr=\"{}\"", a.addr);
    let b_target = format!("target_addr=\"{}\"", b.addr);
    let auth = format!("authority=\"{WEB}\"");
    for (target, labels) in [
        (
            &a_target,
            [
                "dst_namespace=\"ns\"",
                "dst_pod=\"web-0\"",
                "dst_service=\"web\"",
            ],
        ),
        (
            &b_target,
            [
                "dst_namespace=\"ns\"",
                "dst_pod=\"web-1\"",
                "dst_service=\"own\"",
            ],
        ),
    ] {
        let mut want = vec!["direction=\"outbound\"", auth.as_str(), target.as_str()];
        want.extend(labels);
        assert_eq!(
            metric_sum(&metrics, "request_total", &want),
            5.0,
            "request_total with {want:?} in:\n{}",
            lines(&metrics, "request_total")
        );
        want.push("status_code=\"200\"");
        assert_eq!(
            metric_sum(&metrics, "response_total", &want),
            5.0,
            "response_total with {want:?} in:\n{}",
            lines(&metrics, "response_total")
        );
    }
}

fn lines(metrics: &str, name: &str) -> String {
    metrics
        .lines()
        .filter(|l| l.starts_with(name))
        .collect::<Vec<_>>()
        .join("\n")
}
