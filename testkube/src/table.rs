//! Server-side printing: the `Table` kubectl asks for (`Accept: …;as=Table;g=meta.k8s.io`) so
//! `kubectl get` shows its usual columns (READY, STATUS, AGE, …).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::store::Object;

/// Whether the client asked for a Table.
pub fn wanted(accept: &str) -> bool {
    accept.contains("as=Table") && accept.contains("g=meta.k8s.io")
}

/// A Table of `items`, with the list's metadata.
pub fn render(rt: &ResourceType, items: &[Arc<Object>], list_meta: Value, now: i64) -> Value {
    let columns: Vec<(&str, &str)> = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => vec![
            ("Name", "string"),
            ("Ready", "string"),
            ("Status", "string"),
            ("Restarts", "string"),
            ("Age", "string"),
            ("IP", "string"),
            ("Node", "string"),
        ],
        ("apps", "deployments") => vec![
            ("Name", "string"),
            ("Ready", "string"),
            ("Up-to-date", "integer"),
            ("Available", "integer"),
            ("Age", "string"),
        ],
        ("apps", "replicasets") => vec![
            ("Name", "string"),
            ("Desired", "integer"),
            ("Current", "integer"),
            ("Ready", "integer"),
            ("Age", "string"),
        ],
        ("apps", "statefulsets") => {
            vec![("Name", "string"), ("Ready", "string"), ("Age", "string")]
        }
        ("", "namespaces") => vec![("Name", "string"), ("Status", "string"), ("Age", "string")],
        ("", "nodes") => vec![
            ("Name", "string"),
            ("Status", "string"),
            ("Age", "string"),
            ("Version", "string"),
        ],
        ("", "services") => vec![
            ("Name", "string"),
            ("Type", "string"),
            ("Cluster-IP", "string"),
            ("Port(s)", "string"),
            ("Age", "string"),
        ],
        _ => vec![("Name", "string"), ("Age", "string")],
    };
    let definitions: Vec<Value> = columns
        .iter()
        .map(|(name, kind)| {
            let priority = if matches!(*name, "IP" | "Node") { 1 } else { 0 };
            let format = if *name == "Name" { "name" } else { "" };
            json!({ "name": name, "type": kind, "format": format, "description": "", "priority": priority })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns
                .iter()
                .map(|(name, _)| cell(&obj.value, name, now))
                .collect();
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.value.get("metadata").cloned().unwrap_or(json!({})),
                },
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn cell(obj: &Value, column: &str, now: i64) -> Value {
    let int = |path: &str| obj.pointer(path).and_then(Value::as_i64).unwrap_or(0);
    let text = |path: &str| {
        obj.pointer(path)
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string()
    };
    match column {
        "Name" => json!(text("/metadata/name")),
        "Age" => json!(age(
            obj.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str),
            now
        )),
        "Ready" if obj["kind"] == "Pod" => {
            let statuses = container_statuses(obj);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            json!(format!("{ready}/{}", statuses.len()))
        }
        "Ready" if obj["kind"] == "ReplicaSet" => json!(int("/status/readyReplicas")),
        "Ready" => json!(format!(
            "{}/{}",
            int("/status/readyReplicas"),
            obj.pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        )),
        "Status" if obj["kind"] == "Node" => {
            let ready = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            json!(if ready { "Ready" } else { "NotReady" })
        }
        "Status" => json!(text("/status/phase")),
        "Restarts" => {
            let restarts: i64 = container_statuses(obj)
                .iter()
                .filter_map(|s| s["restartCount"].as_i64())
                .sum();
            json!(restarts.to_string())
        }
        "IP" => json!(text("/status/podIP")),
        "Node" => json!(text("/spec/nodeName")),
        "Up-to-date" => json!(int("/status/updatedReplicas")),
        "Available" => json!(int("/status/availableReplicas")),
        "Desired" => json!(
            obj.pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1)
        ),
        "Current" => json!(int("/status/replicas")),
        "Version" => json!(text("/status/nodeInfo/kubeletVersion")),
        "Type" => json!(text("/spec/type")),
        "Cluster-IP" => json!(text("/spec/clusterIP")),
        "Port(s)" => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
        _ => Value::Null,
    }
}

/// Regular containers and native sidecars: what kubectl counts in READY.
fn container_statuses(pod: &Value) -> Vec<&Value> {
    let sidecars = pod
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.pointer("/state/running").is_some());
    let containers = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    sidecars.chain(containers).collect()
}

/// kubectl's short ages: `45s`, `12m`, `5h`, `3d`.
fn age(created: Option<&str>, now: i64) -> String {
    let Some(created) = created.and_then(parse_rfc3339) else {
        return "<unknown>".to_string();
    };
    let secs = (now - created).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let n = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil, Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_like_kubectl() {
        let t = super::parse_rfc3339("2023-11-14T22:13:20Z").unwrap();
        assert_eq!(t, 1_700_000_000);
        assert_eq!(super::age(Some("2023-11-14T22:13:20Z"), t + 30), "30s");
        assert_eq!(super::age(Some("2023-11-14T22:13:20Z"), t + 600), "10m");
        assert_eq!(
            super::age(Some("2023-11-14T22:13:20Z"), t + 3 * 86_400),
            "3d"
        );
        assert_eq!(super::age(None, t), "<unknown>");
    }
}
