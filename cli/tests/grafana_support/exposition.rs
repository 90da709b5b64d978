//! What a `/metrics` page exports: each sample's name, with the labels and label values seen.

use std::collections::{BTreeMap, BTreeSet};

/// Sample name (`response_latency_ms_bucket`, not the family) → label → values seen.
#[derive(Debug, Default, Clone)]
pub struct Exported {
    pub metrics: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Exported {
    /// Reads the Prometheus text format. Panics on a line it cannot read: the proxy wrote it.
    pub fn parse(text: &str) -> Exported {
        let mut exported = Exported::default();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..end];
            assert!(valid_name(name), "bad metric name in {line:?}");
            let labels = exported.metrics.entry(name.to_string()).or_default();
            if line[end..].starts_with('{') {
                for (k, v) in parse_labels(&line[end + 1..], line) {
                    labels.entry(k).or_default().insert(v);
                }
            }
        }
        exported
    }

    pub fn labels(&self, metric: &str) -> Option<&BTreeMap<String, BTreeSet<String>>> {
        self.metrics.get(metric)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Reads `k="v",…}` with the format's escapes (`\\`, `\"`, `\n`).
fn parse_labels(mut rest: &str, line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            assert!(after.starts_with(' '), "no value after labels in {line:?}");
            return out;
        }
        let eq = rest.find('=').unwrap_or_else(|| panic!("no = in {line:?}"));
        let key = &rest[..eq];
        assert!(valid_name(key), "bad label name {key:?} in {line:?}");
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .unwrap_or_else(|| panic!("unquoted value in {line:?}"));
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let close = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("escape at the end of {line:?}"),
                },
                Some((_, c)) => value.push(c),
                None => panic!("unterminated value in {line:?}"),
            }
        };
        out.push((key.to_string(), value));
        rest = &rest[close + 1..];
    }
}
