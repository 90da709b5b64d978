//! Which webhooks a request reaches: `rules`, `namespaceSelector` and `objectSelector`, as the
//! API server's webhook matcher reads them.

use serde_json::{Map, Value};

use crate::resources::ResourceType;
use crate::selector::structured_matches;

/// The request being admitted, as far as rules see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub rt: &'a ResourceType,
    pub version: &'a str,
    pub operation: &'a str,
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn listed(list: &[&str], value: &str) -> bool {
    list.iter().any(|x| *x == "*" || *x == value)
}

/// Whether one of the webhook's rules names this operation, group, version, resource and scope.
/// A request for the main resource (no subresource) matches `pods`, `*` and `*/*`.
pub fn rules_match(webhook: &Value, req: Request<'_>) -> bool {
    let Some(rules) = webhook.get("rules").and_then(Value::as_array) else {
        return false;
    };
    rules.iter().any(|rule| {
        let resource = strings(rule.get("resources")).iter().any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r, ""));
            (res == "*" || res == req.rt.plural) && (sub == "*" || sub.is_empty())
        });
        let scope = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
            "Cluster" => !req.rt.namespaced,
            "Namespaced" => req.rt.namespaced,
            _ => true,
        };
        listed(&strings(rule.get("operations")), req.operation)
            && listed(&strings(rule.get("apiGroups")), &req.rt.group)
            && listed(&strings(rule.get("apiVersions")), req.version)
            && resource
            && scope
    })
}

/// Whether the `namespaceSelector` selects the request's namespace. `namespace_labels` is `None`
/// for a cluster-scoped object, which every selector matches, except a Namespace, which is
/// matched by its own labels.
pub fn namespace_matches(
    webhook: &Value,
    rt: &ResourceType,
    namespace_labels: Option<&Map<String, Value>>,
    object: &Value,
) -> bool {
    let selector = webhook.get("namespaceSelector");
    if rt.group.is_empty() && rt.plural == "namespaces" {
        return structured_matches(selector, labels(object));
    }
    if !rt.namespaced {
        return true;
    }
    structured_matches(selector, namespace_labels)
}

/// Whether the `objectSelector` selects the object as it is now.
pub fn object_matches(webhook: &Value, object: &Value) -> bool {
    structured_matches(webhook.get("objectSelector"), labels(object))
}

fn labels(object: &Value) -> Option<&Map<String, Value>> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
}
