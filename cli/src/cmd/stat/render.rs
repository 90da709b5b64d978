//! Tables and JSON in Linkerd's `viz stat` layouts.

use serde_json::{Map, Value, json};

use super::compute::Stats;
use super::resource::Kind;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
}

/// One line of output.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// `(meshed, total)` pods; `None` prints `-` (authorities).
    pub meshed: Option<(usize, usize)>,
    /// Pods only: the phase, or the reason when there is one.
    pub status: Option<String>,
    pub stats: Option<Stats>,
}

/// Linkerd's column gap.
const PADDING: usize = 3;

/// Renders `rows` (in any order) as `format`. Tables group rows by kind; names carry a
/// `kind/` prefix when several kinds are shown. A table with no rows is empty: the caller
/// says "No traffic found." on stderr, as Linkerd does.
pub fn render(rows: &[Row], format: Format, all_namespaces: bool) -> String {
    let sorted = sorted(rows);
    match format {
        Format::Json => {
            let mut text =
                serde_json::to_string_pretty(&json(&sorted)).unwrap_or_else(|_| "[]".to_string());
            text.push('\n');
            text
        }
        Format::Table | Format::Wide => tables(&sorted, format == Format::Wide, all_namespaces),
    }
}

/// The rows of `-o json` as a value, for callers that embed them (the dashboard's API).
pub fn json_value(rows: &[Row]) -> Value {
    json(&sorted(rows))
}

fn sorted(rows: &[Row]) -> Vec<&Row> {
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    sorted
}

fn tables(rows: &[&Row], wide: bool, all_namespaces: bool) -> String {
    let mut kinds: Vec<Kind> = rows.iter().map(|r| r.kind).collect();
    kinds.dedup();
    let prefix = kinds.len() > 1;
    let shown_name = |row: &Row| {
        if prefix {
            format!("{}/{}", row.kind.short(), row.name)
        } else {
            row.name.clone()
        }
    };
    let name_width = rows
        .iter()
        .map(|r| width(&shown_name(r)))
        .chain([width("NAME")])
        .max()
        .unwrap_or(0);
    let namespace_width = rows
        .iter()
        .map(|r| width(&r.namespace))
        .chain([width("NAMESPACE")])
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, &kind) in kinds.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let tcp = kind != Kind::Authority;
        let bytes = wide && tcp;
        let mut cells: Vec<Vec<String>> = Vec::new();
        let mut header = Vec::new();
        if all_namespaces {
            header.push(pad("NAMESPACE", namespace_width));
        }
        header.push(pad("NAME", name_width));
        if kind == Kind::Pod {
            header.push("STATUS".to_string());
        }
        header.extend(
            [
                "MESHED",
                "SUCCESS",
                "RPS",
                "LATENCY_P50",
                "LATENCY_P95",
                "LATENCY_P99",
                "TCP_CONN",
            ]
            .map(String::from),
        );
        if bytes {
            header.extend(["READ_BYTES/SEC", "WRITE_BYTES/SEC"].map(String::from));
        }
        cells.push(header);
        for row in rows.iter().filter(|r| r.kind == kind) {
            let mut line = Vec::new();
            if all_namespaces {
                line.push(pad(&row.namespace, namespace_width));
            }
            line.push(pad(&shown_name(row), name_width));
            if kind == Kind::Pod {
                line.push(row.status.clone().unwrap_or_default());
            }
            line.push(match row.meshed {
                Some((meshed, total)) => format!("{meshed}/{total}"),
                None => "-".to_string(),
            });
            match &row.stats {
                Some(s) => {
                    line.push(format!("{:.2}%", s.success * 100.0));
                    line.push(format!("{:.1}rps", s.rps));
                    for q in s.latency_ms {
                        line.push(
                            q.map_or_else(|| "-".to_string(), |ms| format!("{}ms", millis(ms))),
                        );
                    }
                    line.push(if tcp {
                        s.tcp_open.to_string()
                    } else {
                        "-".to_string()
                    });
                    if bytes {
                        line.push(format!("{:.1}B/s", s.read_rate));
                        line.push(format!("{:.1}B/s", s.write_rate));
                    }
                }
                None => {
                    let dashes = if bytes { 8 } else { 6 };
                    line.extend(std::iter::repeat_n("-".to_string(), dashes));
                }
            }
            cells.push(line);
        }
        align_right(&cells, &mut out);
    }
    out
}

/// Go's tabwriter with right alignment and a padding of 3, then the leading padding of the
/// first column stripped, as Linkerd prints its tables.
pub(crate) fn align_right(cells: &[Vec<String>], out: &mut String) {
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .filter_map(|line| line.get(c))
                .map(|cell| width(cell))
                .max()
                .unwrap_or(0)
                + PADDING
        })
        .collect();
    for line in cells {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            text.extend(std::iter::repeat_n(' ', widths[c] - width(cell)));
            text.push_str(cell);
        }
        out.push_str(text.get(PADDING..).unwrap_or(""));
        out.push('\n');
    }
}

pub(crate) fn width(text: &str) -> usize {
    text.chars().count()
}

pub(crate) fn pad(text: &str, to: usize) -> String {
    let mut out = text.to_string();
    out.extend(std::iter::repeat_n(' ', to.saturating_sub(width(text))));
    out
}

/// Latencies print as whole milliseconds.
pub(crate) fn millis(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        ms.round() as u64
    } else {
        0
    }
}

fn json(rows: &[&Row]) -> Value {
    let entries: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut entry = Map::new();
            entry.insert("namespace".into(), json!(row.namespace));
            entry.insert("kind".into(), json!(row.kind.canonical()));
            entry.insert("name".into(), json!(row.name));
            entry.insert(
                "meshed".into(),
                json!(match row.meshed {
                    Some((meshed, total)) => format!("{meshed}/{total}"),
                    None => "-".to_string(),
                }),
            );
            let tcp = row.kind != Kind::Authority;
            let s = row.stats.as_ref();
            entry.insert("success".into(), number(s.map(|s| s.success)));
            entry.insert("rps".into(), number(s.map(|s| s.rps)));
            for (key, i) in [
                ("latency_ms_p50", 0),
                ("latency_ms_p95", 1),
                ("latency_ms_p99", 2),
            ] {
                let ms = s.and_then(|s| s.latency_ms[i]).map(millis);
                entry.insert(key.into(), json!(ms));
            }
            let s = s.filter(|_| tcp);
            entry.insert(
                mesh_names::metrics::TCP_OPEN_CONNECTIONS.into(),
                json!(s.map(|s| s.tcp_open)),
            );
            entry.insert("tcp_read_bytes_rate".into(), number(s.map(|s| s.read_rate)));
            entry.insert(
                "tcp_write_bytes_rate".into(),
                number(s.map(|s| s.write_rate)),
            );
            Value::Object(entry)
        })
        .collect();
    Value::Array(entries)
}

/// A number as Go's encoder writes it: whole values without a fraction.
pub(crate) fn number(value: Option<f64>) -> Value {
    match value {
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 => json!(v as i64),
        Some(v) => serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        None => Value::Null,
    }
}
