//! Kubernetes label selectors (`matchLabels`, `matchExpressions`), as `Server`s select pods and
//! `ServerAuthorization`s select `Server`s.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A label selector; an empty one selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<Expression>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Expression {
    key: String,
    operator: Operator,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| e.matches(labels))
    }
}

impl Expression {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_and_expressions() {
        let selector: Selector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
            ],
        }))
        .unwrap();
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "edge")])));
        assert!(selector.matches(&labels(&[("app", "web"), ("tier", "front"), ("zone", "a")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "back")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "edge"), ("canary", "")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "edge"), ("zone", "b")])));
        assert!(!selector.matches(&labels(&[("tier", "edge")])));
        assert!(Selector::default().matches(&labels(&[])));
        let exists: Selector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
        )
        .unwrap();
        assert!(exists.matches(&labels(&[("app", "")])));
        assert!(!exists.matches(&labels(&[])));
        assert!(
            serde_json::from_value::<Selector>(
                json!({"matchExpressions": [{"key": "a", "operator": "Gt"}]})
            )
            .is_err()
        );
    }
}
