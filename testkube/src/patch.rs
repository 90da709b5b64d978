//! PATCH bodies: JSON merge patch, JSON patch, strategic merge patch and server-side apply.
//!
//! Strategic merge patch knows the merge keys of the list fields mesh's workloads use (containers
//! by name, ports by number, …) from a table keyed by field name, since the server has no Go
//! structs to read patch tags from. Server-side apply merges the applied object the same way; it
//! does not track field managers, so fields a previous apply set are never pruned.

use serde_json::{Map, Value};

use crate::status::ApiError;

/// The patch types the server understands, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let base = content_type.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// Applies `patch` to `target` in place.
pub fn apply_patch(target: &mut Value, kind: PatchType, patch: &Value) -> Result<(), ApiError> {
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid json patch: {e}")))?;
            json_patch::patch(target, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the json patch could not be applied: {e}"),
                )
            })
        }
        PatchType::Merge => {
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchType::Strategic | PatchType::Apply => {
            let Value::Object(patch) = patch else {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            };
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target) = target {
                merge_map(target, patch);
            }
            Ok(())
        }
    }
}

/// The merge key of a list field, when its elements are merged rather than replaced.
fn merge_key(field: &str, items: &[&Value]) -> Option<&'static str> {
    let key = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates"
        | "webhooks" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if items.iter().all(|i| i.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    };
    Some(key)
}

/// Lists of scalars that strategic merge patch unions instead of replacing.
fn is_primitive_merge_list(field: &str) -> bool {
    field == "finalizers"
}

fn merge_map(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives_map(patch);
        return;
    }
    let mut orders: Vec<(&str, &Vec<Value>)> = Vec::new();
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            if let Value::Array(order) = value {
                orders.push((field, order));
            }
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(have)), Value::Array(gone)) = (target.get_mut(field), value) {
                have.retain(|v| !gone.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(sub) => {
                if sub.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(key);
                    continue;
                }
                match target.get_mut(key) {
                    Some(Value::Object(existing)) => merge_map(existing, sub),
                    _ => {
                        target.insert(key.clone(), Value::Object(strip_directives_map(sub)));
                    }
                }
            }
            Value::Array(items) => {
                let old = match target.remove(key) {
                    Some(Value::Array(old)) => old,
                    _ => Vec::new(),
                };
                target.insert(key.clone(), Value::Array(merge_list(key, old, items)));
            }
            scalar => {
                target.insert(key.clone(), scalar.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (field, order) in orders {
        if let Some(Value::Array(items)) = target.get_mut(field) {
            reorder(field, items, order);
        }
    }
}

fn merge_list(field: &str, mut old: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .map(strip_directives)
            .collect();
    }
    if is_primitive_merge_list(field) && patch.iter().all(|p| !p.is_object()) {
        for p in patch {
            if !old.contains(p) {
                old.push(p.clone());
            }
        }
        return old;
    }
    let all: Vec<&Value> = old.iter().chain(patch.iter()).collect();
    let key = match merge_key(field, &all) {
        Some(key) if all.iter().all(|v| v.get(key).is_some()) => key,
        _ => return patch.iter().map(strip_directives).collect(),
    };
    for item in patch {
        let id = item.get(key);
        let pos = old.iter().position(|o| o.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(pos), true) => {
                old.remove(pos);
            }
            (None, true) => {}
            (Some(pos), false) => {
                if let (Value::Object(existing), Value::Object(sub)) = (&mut old[pos], item) {
                    merge_map(existing, sub);
                }
            }
            (None, false) => old.push(strip_directives(item)),
        }
    }
    old
}

fn reorder(field: &str, items: &mut Vec<Value>, order: &[Value]) {
    let all: Vec<&Value> = items.iter().collect();
    let key = merge_key(field, &all);
    let id = |v: &Value| -> Value {
        match key {
            Some(k) if v.is_object() => v.get(k).cloned().unwrap_or(Value::Null),
            _ => v.clone(),
        }
    };
    let mut rest: Vec<Value> = std::mem::take(items);
    for want in order {
        let want = id(want);
        if let Some(pos) = rest.iter().position(|v| id(v) == want) {
            items.push(rest.remove(pos));
        }
    }
    items.extend(rest);
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_directives_map(m)),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn strip_directives_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_directives(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn smp(mut target: Value, patch: Value) -> Value {
        apply_patch(&mut target, PatchType::Strategic, &patch).unwrap();
        target
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "side:1"},
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
            "containers": [{"name": "web", "image": "web:2"}],
        }}}});
        let out = smp(deploy, patch);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "side", "image": "side:1"},
                {"name": "web", "image": "web:2", "ports": [{"containerPort": 80}]},
            ])
        );
    }

    #[test]
    fn strategic_merge_deletes_and_replaces() {
        let obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
                         "spec": {"args": ["a", "b"], "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}, "finalizers": ["y"]},
                           "spec": {"args": ["c"], "env": [{"name": "A", "$patch": "delete"}]}});
        let out = smp(obj, patch);
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
        assert_eq!(out["spec"]["args"], json!(["c"]));
        assert_eq!(out["spec"]["env"], json!([{"name": "B", "value": "2"}]));

        let replaced = smp(
            json!({"data": {"a": "1"}}),
            json!({"data": {"$patch": "replace", "b": "2"}}),
        );
        assert_eq!(replaced, json!({"data": {"b": "2"}}));
    }

    #[test]
    fn json_and_merge_patches_follow_their_rfcs() {
        let mut obj = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        apply_patch(
            &mut obj,
            PatchType::Merge,
            &json!({"a": {"b": null}, "l": [3]}),
        )
        .unwrap();
        assert_eq!(obj, json!({"a": {"c": 2}, "l": [3]}));
        let ops = json!([{"op": "add", "path": "/a/d", "value": 4}, {"op": "test", "path": "/a/c", "value": 2}]);
        apply_patch(&mut obj, PatchType::Json, &ops).unwrap();
        assert_eq!(obj["a"]["d"], json!(4));
        let failing = json!([{"op": "test", "path": "/a/c", "value": 9}]);
        assert_eq!(
            apply_patch(&mut obj, PatchType::Json, &failing)
                .unwrap_err()
                .code,
            422
        );
    }
}
