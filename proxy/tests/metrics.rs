//! Metric cardinality through the real binary: peers choose `Host`, so the number of
//! series they can create must be bounded, and idle series must go away.

// Helpers here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::backend::Backend;
use support::{Proxy, metric_value};

/// Sends one keep-alive request per `Host` on a single connection, reading each response.
fn requests_with_hosts(proxy: &Proxy, hosts: impl Iterator<Item = String>) {
    let stream = TcpStream::connect(proxy.inbound).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for host in hosts {
        // One write per request: several small ones would wait on delayed ACKs.
        let request = format!("GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n");
        writer.write_all(request.as_bytes()).unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status:?} for {host}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
    }
}

fn lines_starting(text: &str, prefix: &str) -> usize {
    text.lines().filter(|l| l.starts_with(prefix)).count()
}

/// The review sent 100 000 `Host` values and the proxy kept a series for each (659 MB,
/// a 787 MB `/metrics`). With the default cap of 1000 label sets per family, 5000 hosts
/// leave 1000 series and one overflow series holding the other 4000 requests.
#[test]
fn distinct_hosts_are_capped_and_fold_into_an_overflow_series() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let proxy = Proxy::start(&[("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd)]);
    requests_with_hosts(&proxy, (0..5000).map(|i| format!("h{i}.example")));

    let text = proxy.metrics();
    assert_eq!(lines_starting(&text, "request_total{"), 1001);
    assert_eq!(
        metric_value(&text, "mesh_proxy_metrics_series{family=\"http\"}"),
        Some(1000.0)
    );
    assert_eq!(
        metric_value(
            &text,
            "mesh_proxy_metrics_series_overflow_total{family=\"http\"}"
        ),
        Some(4000.0)
    );
    let overflow = "request_total{direction=\"inbound\",authority=\"\",target_addr=\"\",target_ip=\"\",target_port=\"\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\",overflow=\"true\"}";
    assert_eq!(metric_value(&text, overflow), Some(4000.0), "{overflow}");
    assert!(text.contains("authority=\"h999.example\""));
    assert!(!text.contains("authority=\"h1000.example\""));
    // Bounded: about 8 KiB per series (most of it the 26-bucket latency histogram).
    // Unbounded, 5000 hosts rendered about 40 MB.
    assert!(text.len() < 12 << 20, "/metrics is {} bytes", text.len());
}

/// With a one-second retention, series nothing uses disappear from `/metrics`, and their
/// slots go to new hosts instead of the overflow series.
#[test]
fn idle_series_expire_and_free_their_slots() {
    let backend = Backend::start();
    let fwd = backend.addr.to_string();
    let proxy = Proxy::start(&[
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &fwd),
        ("MESH_PROXY_METRICS_MAX_SERIES", "10"),
        ("LINKERD2_PROXY_METRICS_RETAIN_IDLE", "1s"),
    ]);
    requests_with_hosts(&proxy, (0..20).map(|i| format!("old{i}")));
    let text = proxy.metrics();
    assert_eq!(
        metric_value(&text, "mesh_proxy_metrics_series{family=\"http\"}"),
        Some(10.0)
    );
    // The connection above is closed, so nothing holds its series.
    assert!(
        support::eventually(Duration::from_secs(15), || {
            let text = proxy.metrics();
            metric_value(&text, "mesh_proxy_metrics_series{family=\"http\"}") == Some(0.0)
                && !text.contains("authority=\"old0\"")
        }),
        "series never expired:\n{}",
        proxy.metrics()
    );
    requests_with_hosts(&proxy, std::iter::once("new".to_string()));
    let text = proxy.metrics();
    assert!(text.contains("authority=\"new\""), "{text}");
    assert_eq!(
        metric_value(
            &text,
            "mesh_proxy_metrics_series_overflow_total{family=\"http\"}"
        ),
        Some(10.0)
    );
}
