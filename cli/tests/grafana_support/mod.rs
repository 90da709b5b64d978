//! The Grafana dashboards and the Prometheus scrape config in `manifests/grafana/`: loading
//! them, the queries they run, and the checks on their structure.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

pub mod exposition;
pub mod pods;
pub mod promql;
pub mod relabel;
pub mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The schema version the dashboards are written in (Grafana 12).
pub const SCHEMA_VERSION: u64 = 41;
/// The datasource variable every panel and query variable uses.
pub const DATASOURCE_VAR: &str = "DS_PROMETHEUS";

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/grafana")
}

/// Every `*.json` in the directory, by file name.
pub fn dashboards() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            out.insert(name, value);
        }
    }
    assert!(!out.is_empty(), "no dashboards in {}", dir().display());
    out
}

pub fn scrape_config() -> String {
    std::fs::read_to_string(dir().join("prometheus-scrape.yaml")).unwrap()
}

/// One PromQL query a dashboard runs.
#[derive(Debug, Clone)]
pub struct Query {
    /// `file: panel title` or `file: variable name`, for messages.
    pub place: String,
    pub kind: QueryKind,
    pub expr: String,
    /// The legend format, for panel queries.
    pub legend: Option<String>,
    /// The `${__data.fields.X}` names the panel's data links read.
    pub link_fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Panel,
    /// A query variable's `label_values(…)`.
    Variable,
}

/// Every panel (rows' nested panels included), flattened.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        out.push(p);
        for nested in p["panels"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            out.push(nested);
        }
    }
    out
}

pub fn variables(dashboard: &Value) -> &[Value] {
    dashboard["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The query of a query variable, in either of the forms Grafana stores.
pub fn variable_query(var: &Value) -> Option<&str> {
    var["query"]["query"].as_str().or(var["query"].as_str())
}

pub fn queries(file: &str, dashboard: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("");
        let links = data_link_fields(&panel["fieldConfig"]);
        for t in panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(expr) = t["expr"].as_str() {
                out.push(Query {
                    place: format!("{file}: panel {title:?} {}", t["refId"]),
                    kind: QueryKind::Panel,
                    expr: expr.to_string(),
                    legend: t["legendFormat"].as_str().map(str::to_string),
                    link_fields: links.clone(),
                });
            }
        }
    }
    for var in variables(dashboard) {
        if var["type"] == "query"
            && let Some(q) = variable_query(var)
        {
            out.push(Query {
                place: format!("{file}: variable {}", var["name"]),
                kind: QueryKind::Variable,
                expr: q.to_string(),
                legend: None,
                link_fields: Vec::new(),
            });
        }
    }
    out
}

/// The `X` of every `${__data.fields.X}` in a panel's field config (its data links).
fn data_link_fields(field_config: &Value) -> Vec<String> {
    let text = field_config.to_string();
    let mut out = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${__data.fields.") {
        rest = &rest[i + "${__data.fields.".len()..];
        if let Some(end) = rest.find('}') {
            out.insert(rest[..end].to_string());
        }
    }
    out.into_iter().collect()
}

/// The template variables `text` refers to: `$name`, `${name}`, `${name:format}`, `[[name]]`.
pub fn variable_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let word = |from: usize| {
        let end = bytes[from..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'))
            .map_or(bytes.len(), |n| from + n);
        (text[from..end].to_string(), end)
    };
    let mut i = 0;
    while i < bytes.len() {
        let from = match (bytes[i], bytes.get(i + 1)) {
            (b'$', Some(b'{')) => i + 2,
            (b'$', _) => i + 1,
            (b'[', Some(b'[')) => i + 2,
            _ => {
                i += 1;
                continue;
            }
        };
        let (name, end) = word(from);
        if !name.is_empty() && !name.chars().all(|c| c.is_ascii_digit()) {
            out.insert(name.split('.').next().unwrap_or("").to_string());
        }
        i = end.max(i + 1);
    }
    out
}
