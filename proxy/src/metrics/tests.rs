use std::net::SocketAddr;

use super::*;

#[test]
fn fine_buckets_are_contiguous_and_narrow() {
    assert_eq!(fine_bound(0), 1);
    assert_eq!(fine_bound(63), 64);
    assert_eq!(fine_bound(64), 66);
    assert_eq!(fine_bound(95), 128);
    assert_eq!(fine_bound(96), 132);
    for i in 1..FINE_BUCKETS {
        let (lo, hi) = (fine_bound(i - 1), fine_bound(i));
        assert!(hi > lo, "bucket {i}");
        if lo >= 32 {
            assert!(
                (hi - lo) as f64 / lo as f64 <= 1.0 / 32.0 + 1e-9,
                "bucket {i}: ({lo}, {hi}]"
            );
        }
    }
    for v in (0..200_000u64).chain((0..64).map(|s| 1u64 << (s / 2 + 8)).map(|b| b + 17)) {
        let i = fine_index(v);
        if i == FINE_BUCKETS {
            assert!(v > fine_bound(FINE_BUCKETS - 1));
            continue;
        }
        assert!(v <= fine_bound(i), "{v} above bucket {i}");
        if i > 0 {
            assert!(v > fine_bound(i - 1), "{v} below bucket {i}");
        }
    }
}

/// A small deterministic generator, so the test needs no crate and never flakes.
struct XorShift(u64);

impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Parses `name_bucket{...,le="X"} N` lines into (le, cumulative), `+Inf` last.
fn parse_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let count: f64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            (le, count)
        })
        .collect()
}

/// Prometheus' `histogram_quantile`: linear interpolation inside the bucket holding the rank.
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            return prev.0 + (le - prev.0) * (rank - prev.1) / (count - prev.1);
        }
        prev = (le, count);
    }
    prev.0
}

type Sampler = Box<dyn Fn(&mut XorShift) -> u64>;

#[test]
fn fine_quantiles_are_within_five_percent() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let distributions: Vec<(&str, Sampler)> = vec![
        (
            "uniform 50us-5ms",
            Box::new(|r| 50 + (r.next_f64() * 4950.0) as u64),
        ),
        (
            "log-uniform 40us-30s",
            Box::new(|r| (40.0 * (750_000f64).powf(r.next_f64())) as u64),
        ),
        (
            "bimodal 300us / 40ms",
            Box::new(|r| {
                let base = if r.next_f64() < 0.9 { 300.0 } else { 40_000.0 };
                (base * (0.8 + 0.4 * r.next_f64())) as u64
            }),
        ),
    ];
    for (name, sample) in distributions {
        let h = FineUs::default();
        let mut values: Vec<u64> = (0..50_000).map(|_| sample(&mut rng)).collect();
        for v in &values {
            h.observe_us(*v);
        }
        values.sort_unstable();
        let mut text = String::new();
        h.render("x", "a=\"b\"", &mut text);
        let buckets = parse_buckets(&text, "x");
        assert!(
            buckets.len() < 2 * FINE_BUCKETS,
            "{name}: rendered {} buckets",
            buckets.len()
        );
        for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
            let truth = values[((q * values.len() as f64).ceil() as usize).max(1) - 1] as f64;
            let estimate = histogram_quantile(q, &buckets);
            let err = (estimate - truth).abs() / truth;
            assert!(
                err <= 0.05,
                "{name} p{q}: estimate {estimate} vs truth {truth} ({:.2}%)",
                err * 100.0
            );
        }
    }
}

#[test]
fn renders_linkerd_names_and_labels() {
    let m = Metrics::new();
    let target: SocketAddr = "10.0.0.7:8080".parse().unwrap();
    let http = m.http(HttpKey {
        direction: Direction::Inbound,
        authority: "web.ns.svc:8080".into(),
        target,
        tls: Tls::NoIdentity(NoTlsReason::NoTlsFromRemote),
        dst: std::sync::Arc::new([]),
    });
    for (status, grpc, us) in [
        (200, None, 1500),
        (200, None, 2500),
        (503, None, 900),
        (200, Some(2), 40),
    ] {
        http.request();
        http.response(
            ResponseOutcome {
                status,
                grpc_status: grpc,
                error: None,
            },
            us,
        );
    }
    let tcp = m.tcp(TcpKey {
        direction: Direction::Inbound,
        peer: Peer::Src,
        target,
        tls: Tls::NoIdentity(NoTlsReason::NoTlsFromRemote),
    });
    let open = tcp.open();
    tcp.add_read(100);
    tcp.add_write(250);
    let mut closed = tcp.open();
    closed.set_errno("ECONNRESET");
    drop(closed);
    let text = m.render();
    let labels = "direction=\"inbound\",authority=\"web.ns.svc:8080\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"";
    for expected in [
        format!("request_total{{{labels}}} 4"),
        format!("response_total{{{labels},status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}} 2"),
        format!("response_total{{{labels},status_code=\"200\",classification=\"failure\",grpc_status=\"2\",error=\"\"}} 1"),
        format!("response_total{{{labels},status_code=\"503\",classification=\"failure\",grpc_status=\"\",error=\"\"}} 1"),
        format!("response_latency_ms_bucket{{{labels},status_code=\"200\",le=\"1\"}} 1"),
        format!("response_latency_ms_bucket{{{labels},status_code=\"200\",le=\"2\"}} 2"),
        format!("response_latency_ms_bucket{{{labels},status_code=\"200\",le=\"3\"}} 3"),
        format!("response_latency_ms_bucket{{{labels},status_code=\"200\",le=\"+Inf\"}} 3"),
        format!("response_latency_ms_count{{{labels},status_code=\"200\"}} 3"),
        format!("response_latency_ms_sum{{{labels},status_code=\"200\"}} 4.04"),
        format!("response_latency_fine_us_count{{{labels}}} 4"),
        "tcp_open_total{direction=\"inbound\",peer=\"src\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 2".into(),
        "tcp_open_connections{direction=\"inbound\",peer=\"src\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 1".into(),
        "tcp_read_bytes_total{direction=\"inbound\",peer=\"src\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 100".into(),
        "tcp_close_total{direction=\"inbound\",peer=\"src\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\",errno=\"ECONNRESET\"} 1".into(),
        "# TYPE response_latency_ms histogram".into(),
        "# TYPE tcp_open_connections gauge".into(),
        "proxy_build_info{".into(),
        "process_resident_memory_bytes ".into(),
        "process_cpu_seconds_total ".into(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    drop(open);
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new();
    m.http(HttpKey {
        direction: Direction::Outbound,
        authority: "a\"b\\c".into(),
        target: "127.0.0.1:1".parse().unwrap(),
        tls: Tls::NoIdentity(NoTlsReason::NotProvidedByServiceDiscovery),
        dst: std::sync::Arc::new([]),
    })
    .request();
    assert!(m.render().contains("authority=\"a\\\"b\\\\c\""));
}

#[test]
fn mesh_tls_labels_are_linkerds() {
    let m = Metrics::new();
    let target: std::net::SocketAddr = "10.0.0.7:8080".parse().unwrap();
    let tcp = |peer, tls| {
        m.tcp(TcpKey {
            direction: Direction::Inbound,
            peer,
            target,
            tls,
        })
    };
    let _a = tcp(
        Peer::Src,
        Tls::Accepted {
            client_id: Some("web.ns.serviceaccount.identity.linkerd.cluster.local".into()),
        },
    )
    .open();
    let _b = tcp(Peer::Src, Tls::Accepted { client_id: None }).open();
    let _c = tcp(
        Peer::Dst,
        Tls::Connected {
            server_id: "db.ns.serviceaccount.identity.linkerd.cluster.local".into(),
        },
    )
    .open();
    let text = m.render();
    let common = "direction=\"inbound\",peer=\"src\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\"";
    for line in [
        format!("tcp_open_total{{{common},tls=\"true\",client_id=\"web.ns.serviceaccount.identity.linkerd.cluster.local\"}} 1"),
        format!("tcp_open_total{{{common},tls=\"true\",client_id=\"\"}} 1"),
        "tcp_open_total{direction=\"inbound\",peer=\"dst\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"true\",server_id=\"db.ns.serviceaccount.identity.linkerd.cluster.local\"} 1".to_string(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
    assert!(Tls::Accepted { client_id: None }.is_established());
    assert!(!Tls::NoIdentity(NoTlsReason::Loopback).is_established());
}

fn key(authority: &str) -> HttpKey {
    HttpKey {
        direction: Direction::Inbound,
        authority: authority.into(),
        target: "10.0.0.7:8080".parse().unwrap(),
        tls: Tls::NoIdentity(NoTlsReason::NoTlsFromRemote),
        dst: std::sync::Arc::new([]),
    }
}

fn limits(max_series: usize, retain_idle_s: u64) -> SeriesLimits {
    SeriesLimits {
        max_series,
        retain_idle: std::time::Duration::from_secs(retain_idle_s),
    }
}

#[test]
fn label_sets_past_the_cap_fold_into_one_overflow_series() {
    let m = Metrics::with_limits(limits(3, 600));
    for i in 0..10 {
        m.http(key(&format!("host-{i}"))).request();
    }
    // Known label sets keep their own series once the family is full.
    m.http(key("host-0")).request();
    assert!(Arc::ptr_eq(&m.http(key("host-8")), &m.http(key("host-9"))));
    let text = m.render();
    let series = |name: &str| text.lines().filter(|l| l.starts_with(name)).count();
    assert_eq!(series("request_total{"), 4, "{text}");
    assert!(text.contains("request_total{direction=\"inbound\",authority=\"host-0\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 2"), "{text}");
    assert!(text.contains("request_total{direction=\"inbound\",authority=\"\",target_addr=\"\",target_ip=\"\",target_port=\"\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\",overflow=\"true\"} 7"), "{text}");
    assert!(
        text.contains("mesh_proxy_metrics_series{family=\"http\"} 3"),
        "{text}"
    );
    // Seven new label sets plus the two lookups in the ptr_eq check.
    assert!(
        text.contains("mesh_proxy_metrics_series_overflow_total{family=\"http\"} 9"),
        "{text}"
    );
    assert!(
        text.contains("mesh_proxy_metrics_series_overflow_total{family=\"tcp\"} 0"),
        "{text}"
    );

    let tcp = Metrics::with_limits(limits(1, 600));
    for port in 1..=3 {
        drop(
            tcp.tcp(TcpKey {
                direction: Direction::Inbound,
                peer: Peer::Src,
                target: SocketAddr::from(([10, 0, 0, 1], port)),
                tls: Tls::NoIdentity(NoTlsReason::NoTlsFromRemote),
            })
            .open(),
        );
    }
    let text = tcp.render();
    assert!(text.contains("tcp_open_total{direction=\"inbound\",peer=\"src\",target_addr=\"\",target_ip=\"\",target_port=\"\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\",overflow=\"true\"} 2"), "{text}");
    assert!(
        text.contains("mesh_proxy_metrics_series_overflow_total{family=\"tcp\"} 2"),
        "{text}"
    );
}

#[test]
fn idle_series_expire_after_the_retention_time() {
    use std::time::Duration;
    let m = Metrics::with_limits(limits(2, 60));
    let t0 = std::time::Instant::now();
    let s = |n: u64| t0 + Duration::from_secs(n);
    let held = m.http(key("held"));
    m.http(key("idle")).request();
    m.sweep(s(0));
    m.sweep(s(59));
    assert_eq!(m.http.len(), 2);
    m.sweep(s(60));
    // Nothing held "idle" and it did not change for 60 s; "held" is in use.
    assert_eq!(m.http.len(), 1);
    assert!(!m.render().contains("authority=\"idle\""));

    // The freed slot goes to a new label set instead of the overflow series.
    let fresh = m.http(key("fresh"));
    assert_eq!((m.http.len(), m.http.folded()), (2, 0));
    drop(fresh);

    // A series updated and then released is kept for the whole retention time after the
    // sweep that saw the update.
    held.request();
    drop(held);
    m.sweep(s(70));
    m.sweep(s(129));
    assert!(m.render().contains("authority=\"held\""));
    m.sweep(s(130));
    let text = m.render();
    assert!(!text.contains("authority=\"held\""), "{text}");
    assert!(!text.contains("authority=\"fresh\""), "{text}");
    assert_eq!(m.http.len(), 0);

    // A series that comes back starts again from zero.
    m.http(key("idle")).request();
    assert!(m.render().contains("authority=\"idle\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 1"));
}

#[test]
fn response_kinds_per_series_are_bounded() {
    let m = Metrics::new();
    let http = m.http(key("grpc"));
    for code in 0..(MAX_RESPONSE_KINDS as u32 + 36) {
        http.request();
        http.response(
            ResponseOutcome {
                status: 200,
                grpc_status: Some(code + 1),
                error: None,
            },
            100,
        );
    }
    let text = m.render();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("response_total{"))
            .count(),
        MAX_RESPONSE_KINDS + 1
    );
    assert!(
        text.contains(
            "status_code=\"\",classification=\"failure\",grpc_status=\"\",error=\"\"} 36"
        ),
        "{text}"
    );
    assert!(text.contains("response_latency_ms_count{direction=\"inbound\",authority=\"grpc\",target_addr=\"10.0.0.7:8080\",target_ip=\"10.0.0.7\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\",status_code=\"\"} 36"), "{text}");
}

/// Linkerd's classification by status, and the proxy's answers to the client's own mistakes
/// as successes while its upstream failures stay failures.
#[test]
fn client_errors_are_successes_and_upstream_errors_failures() {
    let class = |status, grpc_status, error| {
        ResponseOutcome {
            status,
            grpc_status,
            error,
        }
        .classification()
    };
    let success = Classification::Success;
    let failure = Classification::Failure;
    assert_eq!(class(200, None, None), success);
    assert_eq!(class(404, None, None), success);
    assert_eq!(class(500, None, None), failure);
    assert_eq!(class(200, Some(0), None), success);
    assert_eq!(class(200, Some(14), None), failure);
    assert_eq!(class(400, None, Some(ERROR_BAD_REQUEST)), success);
    assert_eq!(class(431, None, Some(ERROR_BAD_REQUEST)), success);
    assert_eq!(class(408, None, Some(ERROR_REQUEST_TIMEOUT)), success);
    assert_eq!(class(200, Some(13), Some(ERROR_BAD_REQUEST)), success);
    assert_eq!(class(502, None, Some("connect")), failure);
    assert_eq!(class(503, None, Some("upstream")), failure);
    assert_eq!(class(504, None, Some("response_timeout")), failure);
    assert_eq!(class(504, None, Some("connect_timeout")), failure);
    assert_eq!(class(200, None, Some("stream")), failure);
    assert_eq!(class(200, None, Some("cancel")), failure);
}
