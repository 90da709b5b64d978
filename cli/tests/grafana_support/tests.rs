//! The checks themselves must fail on the mistakes they are for (compiled into `grafana.rs`
//! only, so they run once).

use crate::grafana_support::exposition::Exported;
use crate::grafana_support::promql::{Schema, legend_labels};
use crate::grafana_support::relabel::{self, LabelSet};
use crate::grafana_support::variable_refs;

const PAGE: &str = r#"# TYPE request_total counter
request_total{direction="inbound",authority="web:8080",tls="no_identity"} 3
# TYPE response_total counter
response_total{direction="inbound",authority="web:8080",tls="no_identity",status_code="200",classification="success",error=""} 2
response_total{direction="inbound",authority="web:8080",tls="no_identity",status_code="500",classification="failure",error=""} 1
# TYPE response_latency_ms histogram
response_latency_ms_bucket{direction="inbound",authority="web:8080",tls="no_identity",status_code="200",le="1"} 2
response_latency_ms_bucket{direction="inbound",authority="a\"b\\c",tls="no_identity",status_code="200",le="+Inf"} 2
response_latency_ms_sum{direction="inbound",authority="web:8080",tls="no_identity",status_code="200"} 1.5
process_open_fds 20
process_max_fds 1024
"#;

fn target() -> LabelSet {
    [
        ("job", "linkerd-proxy"),
        ("namespace", "emojivoto"),
        ("deployment", "web"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn check(expr: &str) -> Result<Option<Vec<String>>, Vec<String>> {
    let exported = Exported::parse(PAGE);
    let target = target();
    let schema = Schema {
        exported: &exported,
        target: &target,
    };
    schema
        .check(expr)
        .map(|c| c.map(|s| s.into_iter().collect()))
}

fn fails(expr: &str, because: &str) {
    match check(expr) {
        Ok(c) => panic!("{expr} passed, carrying {c:?}"),
        Err(errors) => assert!(
            errors.iter().any(|e| e.contains(because)),
            "{expr}: {errors:?} do not say {because:?}"
        ),
    }
}

#[test]
fn exposition_keeps_names_labels_and_unescaped_values() {
    let e = Exported::parse(PAGE);
    assert!(e.labels("response_latency_ms_bucket").unwrap()["authority"].contains("a\"b\\c"));
    assert!(e.labels("process_open_fds").unwrap().is_empty());
    assert!(
        e.labels("response_latency_ms").is_none(),
        "only sample names"
    );
}

#[test]
fn good_queries_pass_with_the_labels_they_leave() {
    let q = r#"sum by (namespace, deployment) (rate(response_total{job="$job", direction="inbound", classification="success", deployment!=""}[$__rate_interval])) / sum by (namespace, deployment) (rate(response_total{job="$job", direction="inbound"}[$__rate_interval]))"#;
    assert_eq!(check(q).unwrap().unwrap(), ["deployment", "namespace"]);
    let q = r#"histogram_quantile(0.99, sum by (le, authority) (rate(response_latency_ms_bucket{namespace=~"$namespace"}[5m])))"#;
    assert_eq!(check(q).unwrap().unwrap(), ["authority"]);
    assert!(check("process_open_fds / process_max_fds").is_ok());
    assert!(check("time() - process_open_fds{job=\"linkerd-proxy\"}").is_ok());
}

#[test]
fn a_metric_the_proxy_does_not_export_fails() {
    fails(
        "sum(rate(requests_total[5m]))",
        "requests_total is not exported",
    );
    // Linkerd's route metrics: mesh-proxy has no ServiceProfile routes yet.
    fails("route_request_total", "not exported");
    fails("response_latency_ms", "not exported");
}

#[test]
fn a_label_neither_exported_nor_added_fails() {
    fails(
        r#"request_total{dst_deployment="$deployment"}"#,
        "no label dst_deployment",
    );
    fails(
        "sum by (dst_namespace) (request_total)",
        "do not carry dst_namespace",
    );
}

#[test]
fn a_literal_value_never_written_fails() {
    fails(r#"request_total{tls="true"}"#, "matches nothing");
    fails(r#"request_total{job="prometheus"}"#, "matches nothing");
    assert!(check(r#"request_total{tls!="true", namespace=~"emoji.*"}"#).is_ok());
}

#[test]
fn grouping_by_a_label_already_aggregated_away_fails() {
    fails(
        "sum by (authority) (sum by (namespace) (request_total))",
        "do not carry authority",
    );
    fails(
        "histogram_quantile(0.5, sum by (namespace) (rate(response_latency_ms_bucket[5m])))",
        "without le",
    );
}

#[test]
fn one_to_one_matches_between_different_label_sets_fail() {
    // response_total has status_code and classification, request_total does not.
    fails(
        "sum by (namespace) (response_total) / request_total",
        "different labels",
    );
    fails(
        "rate(response_total[5m]) / rate(request_total[5m])",
        "different labels",
    );
    assert!(check("sum(response_total) / sum(request_total)").is_ok());
    assert!(check("response_total / ignoring (status_code, classification, error) group_left request_total").is_ok());
    fails(
        "request_total / on (status_code) response_total",
        "both sides must carry",
    );
}

#[test]
fn broken_promql_fails() {
    fails("sum(rate(request_total[5m])", "does not parse");
    fails("sum by (namespace (request_total)", "does not parse");
}

#[test]
fn label_values_needs_the_label_on_the_selector() {
    let exported = Exported::parse(PAGE);
    let target = target();
    let schema = Schema {
        exported: &exported,
        target: &target,
    };
    assert!(
        schema
            .check_label_values("label_values(request_total{job=\"$job\"}, deployment)")
            .is_ok()
    );
    assert!(
        schema
            .check_label_values("label_values(process_open_fds, authority)")
            .is_err()
    );
    assert!(
        schema
            .check_label_values("label_values(nothing, namespace)")
            .is_err()
    );
}

#[test]
fn legends_and_variables_are_read() {
    assert_eq!(
        legend_labels("{{namespace}}/{{ pod }} p99"),
        ["namespace", "pod"]
    );
    assert!(legend_labels("__auto").is_empty());
    let refs =
        variable_refs(r#"x{a="$job", b=~"${namespace:regex}"}[$__rate_interval] [[old]] $1"#);
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["__rate_interval", "job", "namespace", "old"]
    );
}

#[test]
fn relabelling_follows_prometheus() {
    let yaml = r#"
scrape_configs:
- job_name: j
  relabel_configs:
  - source_labels: [__meta_a, __meta_b]
    regex: x;(.*)
    action: keep
  - source_labels: [__meta_b]
    target_label: b
  - regex: __meta_label_(.+)
    action: labelmap
  - regex: c
    action: labeldrop
"#;
    let jobs = relabel::jobs(yaml).unwrap();
    let meta = |a: &str| -> LabelSet {
        [
            ("__address__", "10.0.0.1:4191"),
            ("__meta_a", a),
            ("__meta_b", "B"),
            ("__meta_label_app", "web"),
            ("__meta_label_c", "gone"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    assert_eq!(jobs[0].relabel(&meta("y")), None);
    let kept = jobs[0].relabel(&meta("x")).unwrap();
    let kept: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        kept,
        [
            ("app", "web"),
            ("b", "B"),
            ("instance", "10.0.0.1:4191"),
            ("job", "j")
        ]
    );
    assert_eq!(
        relabel::sanitize("linkerd.io/proxy-deployment"),
        "linkerd_io_proxy_deployment"
    );
    assert!(
        relabel::jobs("scrape_configs:\n- job_name: j\n  relabel_configs:\n  - action: hashmod\n")
            .is_err()
    );
}
