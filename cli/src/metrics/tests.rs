use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/stat")
}

/// One of Linkerd's fixtures; `None` where the corpus is absent (see `crate::conformance`).
fn linkerd_fixture(name: &str) -> Option<String> {
    let path = crate::conformance::linkerd_testdata()?.join(name);
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn parses_families_labels_and_values() {
    let text = "# HELP x_total Things, with a \\\\ and a \\n.\n\
                # TYPE x_total counter\n\
                x_total{a=\"1\",b=\"say \\\"hi\\\"\\n\",} 3 1700000000000\n\
                \n\
                # a comment\n\
                # TYPE lat histogram\n\
                lat_bucket{le=\"1\"} 1\n\
                lat_bucket{le=\"+Inf\"} 2\r\n\
                lat_sum 1.5e3\n\
                lat_count 2\n\
                loose NaN\n\
                gauge_like{x=\"y\"}\t-Inf\n";
    let page = parse(text).unwrap();
    let names: Vec<&str> = page.families.iter().map(|f| f.name).collect();
    assert_eq!(names, ["x_total", "lat", "loose", "gauge_like"]);
    let x = &page.families[0];
    assert_eq!(x.kind, Kind::Counter);
    assert_eq!(x.help.as_deref(), Some("Things, with a \\ and a \n."));
    let s = &x.samples[0];
    assert_eq!(s.label("a"), Some("1"));
    assert_eq!(s.label("b"), Some("say \"hi\"\n"));
    assert_eq!(s.value, 3.0);
    assert_eq!(s.timestamp, Some(1_700_000_000_000));
    let lat = &page.families[1];
    assert_eq!(lat.kind, Kind::Histogram);
    assert_eq!(lat.samples.len(), 4);
    assert_eq!(lat.samples[1].value, f64::INFINITY.min(2.0));
    assert_eq!(lat.samples[2].value, 1500.0);
    assert!(page.families[2].samples[0].value.is_nan());
    assert_eq!(page.families[2].kind, Kind::Untyped);
    assert_eq!(page.families[3].samples[0].value, f64::NEG_INFINITY);
}

#[test]
fn errors_say_where() {
    let cases = [
        ("a{b=\"c\"} x\n", 1, 10, "invalid value \"x\""),
        ("ok 1\nbad{ 1\n", 2, 6, "expected a label name"),
        ("a{b=\"c} 1\n", 1, 5, "unterminated label value"),
        ("a{b=\"c\",b=\"d\"} 1\n", 1, 9, "label b appears twice"),
        ("a{b=\"\\q\"} 1\n", 1, 6, "invalid escape \\q"),
        (
            "# TYPE a histogramm\n",
            1,
            10,
            "unknown metric type \"histogramm\"",
        ),
        (
            "# TYPE a counter\n# TYPE a gauge\n",
            2,
            8,
            "second # TYPE for a",
        ),
        ("a 1 2 3\n", 1, 7, "unexpected text after the value"),
        ("a{b=\"c\"}1\n", 1, 9, "expected a space before the value"),
        ("9a 1\n", 1, 1, "expected a metric name"),
    ];
    for (text, line, column, message) in cases {
        let err = parse(text).unwrap_err();
        assert_eq!(
            (err.line, err.column, err.message.as_str()),
            (line, column, message),
            "{text:?}"
        );
    }
}

#[test]
fn parses_real_mesh_proxy_metrics() {
    let text = std::fs::read_to_string(testdata().join("mesh-proxy-after.prom")).unwrap();
    let page = parse(&text).unwrap();
    let family = |name: &str| page.families.iter().find(|f| f.name == name).unwrap();
    assert_eq!(family("response_latency_ms").kind, Kind::Histogram);
    assert_eq!(family("response_latency_fine_us").kind, Kind::Histogram);
    assert_eq!(family("tcp_open_connections").kind, Kind::Gauge);
    let inbound_success: f64 = family("response_total")
        .samples
        .iter()
        .filter(|s| s.label("direction") == Some("inbound"))
        .filter(|s| s.label("classification") == Some("success"))
        .map(|s| s.value)
        .sum();
    assert_eq!(inbound_success, 60.0);
    // Rendering keeps every sample: a second parse sees the same page.
    let mut again = String::new();
    render(&page, &mut again);
    assert_eq!(parse(&again).unwrap(), page);
}

#[test]
fn parses_real_linkerd2_proxy_metrics() {
    let Some(text) = linkerd_fixture("obfuscate-diagnostics-proxy-metrics.input") else {
        return;
    };
    let page = parse(&text).unwrap();
    assert_eq!(page.families.len(), 1);
    let family = &page.families[0];
    assert_eq!(family.name, "inbound_http_authz_allow_total");
    assert_eq!(family.kind, Kind::Counter);
    assert_eq!(family.samples.len(), 4);
    let last = &family.samples[3];
    assert_eq!(last.label("target_addr"), Some("10.42.0.63:8090"));
    assert_eq!(
        last.label("client_id"),
        Some("default.default.serviceaccount.identity.linkerd.cluster.local")
    );
    assert_eq!(last.value, 3147.0);
}

#[test]
fn obfuscation_matches_linkerd() {
    let (Some(input), Some(golden)) = (
        linkerd_fixture("obfuscate-diagnostics-proxy-metrics.input"),
        linkerd_fixture("obfuscate-diagnostics-proxy-metrics.golden"),
    ) else {
        return;
    };
    assert_eq!(obfuscate(&input).unwrap(), golden);
}

#[test]
fn obfuscation_hashes_only_sensitive_labels() {
    let out = obfuscate("m{authority=\"web:80\",status_code=\"200\"} 1\n").unwrap();
    // The first four bytes of SHA-256("web:80").
    let digest = ring::digest::digest(&ring::digest::SHA256, b"web:80");
    let hex: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        out,
        format!("# TYPE m untyped\nm{{authority=\"{hex}\",status_code=\"200\"}} 1\n")
    );
}

/// Prometheus' `histogram_quantile`, written out the long way as its documentation
/// describes it, to check [`Buckets::quantile`] against.
fn reference_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut below = 0.0;
    for (i, &(le, cumulative)) in buckets.iter().enumerate() {
        if cumulative >= rank {
            if le.is_infinite() {
                return Some(buckets[i - 1].0);
            }
            let inside = cumulative - below;
            return Some(lower_bound + (le - lower_bound) * (rank - below) / inside);
        }
        lower_bound = le;
        below = cumulative;
    }
    None
}

#[test]
fn quantiles_interpolate_as_prometheus_does() {
    let linkerd: Vec<(f64, f64)> = [
        (10.0, 0.0),
        (20.0, 10.0),
        (30.0, 100.0),
        (f64::INFINITY, 100.0),
    ]
    .to_vec();
    let h = Buckets::from_points(linkerd.clone());
    // Rank 50 lies 40 of 90 observations into (20, 30].
    assert!((h.quantile(0.5).unwrap() - (20.0 + 10.0 * 40.0 / 90.0)).abs() < 1e-9);
    // Rank 5 lies halfway into (10, 20].
    assert!((h.quantile(0.05).unwrap() - 15.0).abs() < 1e-9);
    // In the +Inf bucket: the largest finite bound.
    let tail = Buckets::from_points(vec![(1.0, 1.0), (2.0, 2.0), (f64::INFINITY, 10.0)]);
    assert_eq!(tail.quantile(0.99), Some(2.0));
    // The first bucket interpolates from 0.
    let first = Buckets::from_points(vec![(4.0, 8.0), (f64::INFINITY, 8.0)]);
    assert_eq!(first.quantile(0.5), Some(2.0));
    // No observations, or no +Inf bucket: no answer.
    assert_eq!(
        Buckets::from_points(vec![(1.0, 0.0), (f64::INFINITY, 0.0)]).quantile(0.5),
        None
    );
    assert_eq!(
        Buckets::from_points(vec![(1.0, 3.0), (2.0, 4.0)]).quantile(0.5),
        None
    );
    for q in [0.5, 0.95, 0.99] {
        assert_eq!(h.quantile(q), reference_quantile(q, &linkerd));
    }
}

#[test]
fn sparse_histograms_add_and_subtract_as_step_functions() {
    // Two pods' sparse fine histograms: each writes the lower edge of its non-empty buckets.
    let a = Buckets::from_points(vec![(100.0, 0.0), (110.0, 4.0), (f64::INFINITY, 4.0)]);
    let b = Buckets::from_points(vec![(200.0, 0.0), (220.0, 6.0), (f64::INFINITY, 6.0)]);
    let sum = Buckets::sum([&a, &b]);
    assert_eq!(sum.at(105.0), 0.0);
    assert_eq!(sum.at(110.0), 4.0);
    assert_eq!(sum.at(200.0), 4.0);
    assert_eq!(sum.at(220.0), 10.0);
    assert_eq!(sum.count(), 10.0);
    // p50 (rank 5) is 1/6 of the way into (200, 220].
    let p50 = sum.quantile(0.5).unwrap();
    assert!((p50 - (200.0 + 20.0 / 6.0)).abs() < 1e-9, "{p50}");
    // Later, pod a saw two more in a new bucket.
    let later = Buckets::from_points(vec![
        (100.0, 0.0),
        (110.0, 4.0),
        (300.0, 4.0),
        (310.0, 6.0),
        (f64::INFINITY, 6.0),
    ]);
    let window = later.since(&a).unwrap();
    assert_eq!(window.count(), 2.0);
    assert_eq!(window.at(110.0), 0.0);
    assert_eq!(window.quantile(0.5), Some(305.0));
    // A bucket going down means a restart.
    assert_eq!(a.since(&later), None);
}

proptest! {
    #[test]
    fn quantile_matches_the_reference(
        counts in proptest::collection::vec(0u32..50, 1..30),
        inf in 0u32..20,
        q in 0.01f64..1.0,
    ) {
        let mut cumulative = 0.0;
        let mut points = Vec::new();
        for (i, c) in counts.iter().enumerate() {
            cumulative += f64::from(*c);
            points.push(((i + 1) as f64 * 5.0, cumulative));
        }
        points.push((f64::INFINITY, cumulative + f64::from(inf)));
        let ours = Buckets::from_points(points.clone()).quantile(q);
        let theirs = reference_quantile(q, &points);
        match (ours, theirs) {
            (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9, "{a} vs {b}"),
            (a, b) => prop_assert_eq!(a, b),
        }
    }

    #[test]
    fn rendered_pages_parse_back(
        names in proptest::collection::vec("[a-z_][a-z0-9_]{0,8}", 1..4),
        values in proptest::collection::vec("[ -~\n\\\\\"é]{0,12}", 1..4),
        number in proptest::num::f64::ANY,
    ) {
        let mut text = String::new();
        for (i, value) in values.iter().enumerate() {
            let escaped = value.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"");
            let label = &names[i % names.len()];
            text.push_str(&format!("m{i}{{{label}=\"{escaped}\"}} {number:?}\n"));
        }
        let page = parse(&text).unwrap();
        for (i, value) in values.iter().enumerate() {
            prop_assert_eq!(page.families[i].samples[0].labels[0].1.as_ref(), value.as_str());
        }
        let mut again = String::new();
        render(&page, &mut again);
        let reparsed = parse(&again).unwrap();
        prop_assert_eq!(reparsed.families.len(), page.families.len());
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }
}
