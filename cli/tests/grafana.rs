//! The Grafana dashboards and the Prometheus scrape config in `manifests/grafana/`.
//!
//! - Every dashboard is one Grafana imports: unique uid, title, panels with queries, the
//!   datasource variable, variables that exist, PromQL that parses (cheap, no processes).
//! - The scrape config, run as Prometheus would over a pod `mesh inject --manual` made, keeps
//!   exactly the proxy's admin port and labels the pod's series with namespace, pod and
//!   deployment.
//! - Every query the dashboards run asks only for metrics, labels and label values that a
//!   real mesh-proxy exported after carrying HTTP and TCP traffic in both directions, or that
//!   the scrape config adds.
#![allow(clippy::unwrap_used)]

mod grafana_support;
#[path = "grafana_support/tests.rs"]
mod grafana_support_tests;
mod stat_support;

use std::collections::BTreeSet;

use mesh_names::{containers, labels, ports};
use serde_json::{Value, json};

use grafana_support::exposition::Exported;
use grafana_support::pods::{injected_deployment, running_pod, target_labels};
use grafana_support::promql::{self, Schema};
use grafana_support::relabel::{self, LabelSet};
use grafana_support::traffic::Traffic;
use grafana_support::{QueryKind, SCHEMA_VERSION, dashboards, queries, scrape_config};

const POD: &str = "web-5d9c7b6f4-x2x7k";
const POD_IP: &str = "10.244.0.7";

const PROMETHEUS_DS: &str = "${DS_PROMETHEUS}";

#[test]
fn dashboards_are_importable_grafana_dashboards() {
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let all = dashboards();
    for (file, d) in &all {
        let mut problem = |p: String| problems.push(format!("{file}: {p}"));
        let uid = d["uid"].as_str().unwrap_or("");
        if uid.is_empty()
            || uid.len() > 40
            || !uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problem(format!("uid {uid:?} is not 1 to 40 of [A-Za-z0-9_-]"));
        }
        if !uids.insert(uid.to_string()) {
            problem(format!("uid {uid} is used twice"));
        }
        let title = d["title"].as_str().unwrap_or("");
        if title.is_empty() || !titles.insert(title.to_string()) {
            problem(format!("title {title:?} is empty or used twice"));
        }
        if d["schemaVersion"].as_u64() != Some(SCHEMA_VERSION) {
            problem(format!(
                "schemaVersion is {}, not {SCHEMA_VERSION}",
                d["schemaVersion"]
            ));
        }
        if !d["id"].is_null() {
            problem("id must be null so that importing creates a new dashboard".into());
        }
        if d["time"]["from"].as_str().is_none() || d["time"]["to"].as_str().is_none() {
            problem("no time range".into());
        }
        if !d["tags"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("mesh")))
        {
            problem("not tagged mesh (the dashboards link each other by tag)".into());
        }
        check_variables(d, &mut problem);
        check_panels(d, &mut problem);
    }
    // Links between dashboards name uids that exist.
    for (file, d) in &all {
        let text = d.to_string();
        for part in text.split("/d/").skip(1) {
            let uid = part.split('/').next().unwrap_or("");
            if !uids.contains(uid) {
                problems.push(format!(
                    "{file}: links to dashboard {uid}, which is not here"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn check_variables(d: &Value, problem: &mut impl FnMut(String)) {
    let vars = grafana_support::variables(d);
    let ds = vars
        .iter()
        .find(|v| v["name"] == grafana_support::DATASOURCE_VAR);
    if !ds.is_some_and(|v| v["type"] == "datasource" && v["query"] == "prometheus") {
        problem(format!(
            "no {} variable of type datasource for prometheus",
            grafana_support::DATASOURCE_VAR
        ));
    }
    let defined: BTreeSet<String> = vars
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    if defined.len() != vars.len() {
        problem("variables without a name or with the same name".into());
    }
    for v in vars.iter().filter(|v| v["type"] == "query") {
        if v["datasource"]["uid"] != PROMETHEUS_DS {
            problem(format!(
                "variable {} does not use {PROMETHEUS_DS}",
                v["name"]
            ));
        }
        match grafana_support::variable_query(v) {
            Some(q) if q.starts_with("label_values(") => {}
            q => problem(format!(
                "variable {}: query {q:?} is not label_values(…)",
                v["name"]
            )),
        }
    }
    // Every variable referred to anywhere exists; `__…` are Grafana's own.
    for name in grafana_support::variable_refs(&d["panels"].to_string())
        .into_iter()
        .chain(grafana_support::variable_refs(&d["templating"].to_string()))
    {
        if !name.starts_with("__") && !defined.contains(&name) {
            problem(format!("refers to ${name}, which is not a variable"));
        }
    }
}

fn check_panels(d: &Value, problem: &mut impl FnMut(String)) {
    const TYPES: &[&str] = &[
        "row",
        "timeseries",
        "stat",
        "table",
        "text",
        "gauge",
        "bargauge",
    ];
    let panels = grafana_support::panels(d);
    if panels.iter().all(|p| p["type"] == "row") {
        problem("no panels".into());
    }
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("");
        let kind = p["type"].as_str().unwrap_or("");
        if !TYPES.contains(&kind) {
            problem(format!("panel {title:?}: type {kind:?}"));
        }
        if !p["id"].as_u64().is_some_and(|id| ids.insert(id)) {
            problem(format!("panel {title:?}: id missing or repeated"));
        }
        let g = &p["gridPos"];
        let Some([h, w, x, y]) = ["h", "w", "x", "y"]
            .map(|k| g[k].as_u64())
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .and_then(|v| <[u64; 4]>::try_from(v).ok())
        else {
            problem(format!("panel {title:?}: gridPos needs integer h, w, x, y"));
            continue;
        };
        if h == 0 || w == 0 || x + w > 24 {
            problem(format!(
                "panel {title:?}: gridPos {g} is empty or wider than 24"
            ));
        }
        for (other, [oh, ow, ox, oy]) in &boxes {
            if x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h {
                problem(format!("panels {title:?} and {other:?} overlap"));
            }
        }
        boxes.push((title.to_string(), [h, w, x, y]));
        if matches!(kind, "row" | "text") {
            continue;
        }
        if title.is_empty() {
            problem(format!("a {kind} panel without a title"));
        }
        if p["datasource"]["type"] != "prometheus" || p["datasource"]["uid"] != PROMETHEUS_DS {
            problem(format!("panel {title:?} does not use {PROMETHEUS_DS}"));
        }
        let targets = p["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            problem(format!("panel {title:?} has no targets"));
        }
        let mut refs = BTreeSet::new();
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or("");
            if let Err(e) = promql::parse(expr) {
                problem(format!("panel {title:?}: {expr:?} {e}"));
            }
            if !t["refId"]
                .as_str()
                .is_some_and(|r| refs.insert(r.to_string()))
            {
                problem(format!("panel {title:?}: refId missing or repeated"));
            }
            if !t["datasource"].is_null() && t["datasource"] != p["datasource"] {
                problem(format!("panel {title:?}: a target with another datasource"));
            }
        }
    }
}

#[test]
fn scrape_config_keeps_the_proxy_admin_port_and_labels_the_pod() {
    let deployment = injected_deployment();
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(pod_labels[labels::workload("Deployment")], "web");
    let target = target_labels(&deployment, POD, POD_IP);
    let instance = format!("{POD_IP}:{}", ports::PROXY_ADMIN);
    let expected: LabelSet = [
        ("job", "linkerd-proxy"),
        ("instance", instance.as_str()),
        ("namespace", "emojivoto"),
        ("pod", POD),
        ("deployment", "web"),
        ("control_plane_ns", "linkerd"),
        ("workload_ns", "emojivoto"),
        ("app", "web-svc"),
        ("pod_template_hash", "5d9c7b6f4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(target, expected);

    // The same Deployment without a proxy, or with it under another name, is not scraped.
    let jobs = relabel::jobs(&scrape_config()).unwrap();
    let plain: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/inject/manual_deployment.in.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let renamed = serde_json::to_string(&deployment).unwrap().replace(
        &format!("\"name\":\"{}\"", containers::PROXY),
        "\"name\":\"sidecar\"",
    );
    let renamed: Value = serde_json::from_str(&renamed).unwrap();
    for (what, d) in [("uninjected", plain), ("renamed proxy", renamed)] {
        let pod = running_pod(&d, "web-1", "10.244.0.8");
        let kept = relabel::pod_targets(&pod)
            .iter()
            .filter_map(|t| jobs[0].relabel(t))
            .count();
        assert_eq!(kept, 0, "{what} pod was kept");
    }
}

fn seen(e: &Exported, metric: &str, label: &str, value: &str) -> bool {
    e.labels(metric)
        .and_then(|l| l.get(label))
        .is_some_and(|v| v.contains(value))
}

#[test]
fn dashboards_query_only_what_the_proxy_exports() {
    let mut traffic = Traffic::start();
    traffic.stop_load();
    let banner = traffic.banner.port().to_string();
    let exported = traffic.scrape_until(|e| {
        ["inbound", "outbound"].iter().all(|dir| {
            seen(e, "response_total", "direction", dir)
                && seen(e, "tcp_close_total", "direction", dir)
        }) && ["success", "failure"]
            .iter()
            .all(|c| seen(e, "response_total", "classification", c))
            && seen(e, "response_total", "error", "connect")
            && seen(e, "tcp_open_total", "target_port", &banner)
    });
    for metric in [
        "request_total",
        "response_latency_ms_bucket",
        "tcp_open_connections",
    ] {
        assert!(
            exported.labels(metric).is_some(),
            "{metric} missing: {exported:#?}"
        );
    }

    let target = target_labels(&injected_deployment(), POD, POD_IP);
    // Prometheus renames a scraped label that a target label also has (`exported_…`).
    for (metric, labels) in &exported.metrics {
        for label in labels.keys() {
            assert!(
                !target.contains_key(label),
                "{metric} exports {label}, a target label"
            );
        }
    }
    let schema = Schema {
        exported: &exported,
        target: &target,
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, d) in dashboards() {
        for q in queries(&file, &d) {
            checked += 1;
            let result = match q.kind {
                QueryKind::Variable => schema.check_label_values(&q.expr).map(|()| None),
                QueryKind::Panel => schema.check(&q.expr),
            };
            match result {
                Err(errors) => {
                    problems.extend(errors.into_iter().map(|e| format!("{}: {e}", q.place)))
                }
                Ok(carried) => {
                    let carried = carried.unwrap_or_default();
                    let wanted = q.legend.iter().flat_map(|l| promql::legend_labels(l));
                    for label in wanted.chain(q.link_fields.iter().cloned()) {
                        if !carried.contains(&label) {
                            problems.push(format!(
                                "{}: shows {label}, which the result does not carry ({carried:?})",
                                q.place
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} queries found");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nexported: {:#?}",
        problems.len(),
        problems.join("\n"),
        exported.metrics.keys().collect::<Vec<_>>()
    );
}
