//! The verbs on resources: get, list, create, update, patch, delete and the subresources that
//! are not streams.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::patch::{PatchType, apply_patch};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{Shared, Target};
use crate::status::ApiError;
use crate::store::{Denial, Object, Part, State};
use crate::{table, time};

type Reply = Result<(StatusCode, Bytes), ApiError>;

pub fn handle(
    shared: &Shared,
    target: &Target,
    method: &Method,
    params: &HashMap<String, String>,
    (content_type, accept): (&str, &str),
    body: &[u8],
) -> Reply {
    let dry_run = params.get("dryRun").is_some_and(|v| v == "All");
    let ns = target.namespace.as_deref().unwrap_or("");
    let name = target.name.as_deref();
    let sub = target.sub.as_deref();
    let rt = &target.rt;
    // Bodies are JSON (or YAML for apply); a client that sent protobuf or CBOR gets a 415 and
    // falls back to JSON, as it would with an aggregated API server.
    if !body.is_empty() && (content_type.contains("protobuf") || content_type.contains("cbor")) {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    if rt.create_only {
        return match (method, name) {
            (&Method::POST, None) => review(shared, target, body),
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    let mut state = shared.state();
    match (method.as_str(), name, sub) {
        ("GET", None, None) => list(&state, target, params, accept),
        ("GET", Some(name), None | Some("status")) => {
            let obj = find(&state, target, name)?;
            if sub.is_none() && table::wanted(accept) {
                let meta = json!({ "resourceVersion": state.resource_version().to_string() });
                return ok(
                    StatusCode::OK,
                    &table::render(rt, &[obj], meta, time::unix_now()),
                );
            }
            Ok((StatusCode::OK, view(&obj, target)))
        }
        ("GET", Some(name), Some("scale")) => {
            let obj = find(&state, target, name)?;
            ok(StatusCode::OK, &scale_of(&obj.value))
        }
        ("GET", Some(_), Some("log")) => Ok((StatusCode::OK, Bytes::new())),
        ("POST", None, None) => {
            if rt.namespaced && target.namespace.is_none() {
                return Err(ApiError::method_not_allowed());
            }
            let obj = parse_body(body)?;
            check_kind(target, &obj)?;
            let stored = state.create(rt, ns, obj, dry_run)?;
            Ok((StatusCode::CREATED, view(&stored, target)))
        }
        ("POST", Some(name), Some("eviction")) => {
            state.delete(rt, ns, name, dry_run)?;
            let status = json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 });
            ok(StatusCode::CREATED, &status)
        }
        ("PUT", Some(name), None | Some("status")) => {
            let obj = parse_body(body)?;
            check_kind(target, &obj)?;
            let part = if sub == Some("status") {
                Part::Status
            } else {
                Part::Main
            };
            let stored = state.update(rt, ns, name, obj, part, dry_run)?;
            Ok((StatusCode::OK, view(&stored, target)))
        }
        ("PUT", Some(name), Some("scale")) => {
            let scale = parse_body(body)?;
            set_scale(&mut state, target, name, &scale, dry_run)
        }
        ("PATCH", Some(name), _) => {
            let kind = PatchType::from_content_type(content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
            if kind == PatchType::Strategic && rt.custom {
                return Err(ApiError::unsupported_media_type(content_type));
            }
            let patch = match kind {
                PatchType::Apply => parse_body(body)?,
                _ => serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid patch body: {e}")))?,
            };
            patch_object(&mut state, target, name, kind, &patch, params, dry_run)
        }
        ("DELETE", Some(name), None) => {
            let old = state.delete(rt, ns, name, dry_run)?;
            Ok((StatusCode::OK, view(&old, target)))
        }
        ("DELETE", None, None) => {
            let (label, field) = selectors(params)?;
            let doomed: Vec<Arc<Object>> = state
                .list(&rt.key(), target.namespace.as_deref())
                .into_iter()
                .filter(|o| label.matches_object(&o.value) && field.matches(&o.value))
                .collect();
            for obj in &doomed {
                state.delete(rt, obj.namespace(), obj.name(), dry_run)?;
            }
            let rv = state.resource_version();
            Ok((StatusCode::OK, list_body(target, rv, &doomed, None, None)))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn ok(code: StatusCode, value: &Value) -> Reply {
    Ok((
        code,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    ))
}

fn find(state: &State, target: &Target, name: &str) -> Result<Arc<Object>, ApiError> {
    let ns = target.namespace.as_deref().unwrap_or("");
    state
        .get(&target.rt.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&target.rt.group, &target.rt.plural, name))
}

/// An object's JSON, shown at the version the client asked for.
fn view(obj: &Object, target: &Target) -> Bytes {
    let want = target.rt.api_version(&target.version);
    if obj.value.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        return obj.json.clone();
    }
    let mut value = obj.value.clone();
    value["apiVersion"] = json!(want);
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is neither JSON nor YAML"))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        ApiError::bad_request(format!("the request body is neither JSON nor YAML: {e}"))
    })
}

fn check_kind(target: &Target, obj: &Value) -> Result<(), ApiError> {
    match obj.get("kind").and_then(Value::as_str) {
        Some(kind) if kind != target.rt.kind => Err(ApiError::bad_request(format!(
            "the kind of the provided object ({kind}) does not match the resource ({})",
            target.rt.plural
        ))),
        _ => Ok(()),
    }
}

fn selectors(params: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let label = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let field = FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    Ok((label, field))
}

fn list(state: &State, target: &Target, params: &HashMap<String, String>, accept: &str) -> Reply {
    let (label, field) = selectors(params)?;
    let limit: usize = match params.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(n) => n
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {n:?}")))?,
    };
    let key = target.rt.key();
    let ns = target.namespace.as_deref();
    let start = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = 0usize;
    let candidates: Box<dyn Iterator<Item = Arc<Object>>> = match start {
        Some(start) => Box::new(state.list_after(&key, ns, start)),
        None => Box::new(state.list(&key, ns).into_iter()),
    };
    let selecting = params.contains_key("labelSelector") || params.contains_key("fieldSelector");
    for obj in candidates {
        if !label.matches_object(&obj.value) || !field.matches(&obj.value) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            if next.is_none() {
                let last: &Arc<Object> = &items[limit - 1];
                next = Some(encode_continue(last.namespace(), last.name()));
                if selecting {
                    break;
                }
            }
            remaining += 1;
            continue;
        }
        items.push(obj);
    }
    let remaining = (next.is_some() && !selecting).then_some(remaining);
    if table::wanted(accept) {
        let meta = list_meta(state.resource_version(), next.as_deref(), remaining);
        return ok(
            StatusCode::OK,
            &table::render(&target.rt, &items, meta, time::unix_now()),
        );
    }
    let body = list_body(
        target,
        state.resource_version(),
        &items,
        next.as_deref(),
        remaining,
    );
    Ok((StatusCode::OK, body))
}

/// A `…List` object, written straight from each item's stored JSON.
fn list_body(
    target: &Target,
    rv: u64,
    items: &[Arc<Object>],
    next: Option<&str>,
    remaining: Option<usize>,
) -> Bytes {
    let meta = list_meta(rv, next, remaining);
    let head = json!({
        "kind": format!("{}List", target.rt.kind),
        "apiVersion": target.rt.api_version(&target.version),
        "metadata": meta,
    });
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let size: usize = items.iter().map(|i| i.json.len() + 1).sum();
    let mut out = BytesMut::with_capacity(head.len() + size + 16);
    // `{"kind":…,"metadata":{…}` then `,"items":[…]}`.
    out.put_slice(&head[..head.len() - 1]);
    out.put_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&view(item, target));
    }
    out.put_slice(b"]}");
    out.freeze()
}

fn list_meta(rv: u64, next: Option<&str>, remaining: Option<usize>) -> Value {
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    if let Some(next) = next {
        meta["continue"] = json!(next);
    }
    if let Some(remaining) = remaining {
        meta["remainingItemCount"] = json!(remaining);
    }
    meta
}

fn encode_continue(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    if !token.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes.ok_or_else(invalid)?).map_err(|_| invalid())?;
    let (ns, name) = text.split_once('/').ok_or_else(invalid)?;
    Ok((ns.to_string(), name.to_string()))
}

fn patch_object(
    state: &mut State,
    target: &Target,
    name: &str,
    kind: PatchType,
    patch: &Value,
    params: &HashMap<String, String>,
    dry_run: bool,
) -> Reply {
    let rt = &target.rt;
    let ns = target.namespace.as_deref().unwrap_or("");
    let existing = state.get(&rt.key(), ns, name);
    if target.sub.as_deref() == Some("scale") {
        let obj = existing.ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        let mut scale = scale_of(&obj.value);
        apply_patch(&mut scale, kind, patch)?;
        return set_scale(state, target, name, &scale, dry_run);
    }
    let Some(existing) = existing else {
        if kind == PatchType::Apply && target.sub.is_none() {
            if params.get("fieldManager").is_none_or(String::is_empty) {
                return Err(ApiError::bad_request(
                    "PATCH with application/apply-patch+yaml requires a fieldManager",
                ));
            }
            check_kind(target, patch)?;
            let mut obj = patch.clone();
            obj["metadata"]["name"] = json!(name);
            let stored = state.create(rt, ns, obj, dry_run)?;
            return Ok((StatusCode::CREATED, view(&stored, target)));
        }
        return Err(ApiError::not_found(&rt.group, &rt.plural, name));
    };
    let mut next = existing.value.clone();
    apply_patch(&mut next, kind, patch)?;
    let part = if target.sub.as_deref() == Some("status") {
        Part::Status
    } else {
        Part::Main
    };
    let stored = state.update(rt, ns, name, next, part, dry_run)?;
    Ok((StatusCode::OK, view(&stored, target)))
}

fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1)) },
        "status": { "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)) },
    })
}

fn set_scale(
    state: &mut State,
    target: &Target,
    name: &str,
    scale: &Value,
    dry_run: bool,
) -> Reply {
    let rt = &target.rt;
    let ns = target.namespace.as_deref().unwrap_or("");
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::invalid("Scale", name, "spec.replicas", "Required value"))?;
    let obj = state
        .get(&rt.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
    let mut next = obj.value.clone();
    next["spec"]["replicas"] = json!(replicas);
    let stored = state.update(rt, ns, name, next, Part::Main, dry_run)?;
    ok(StatusCode::OK, &scale_of(&stored.value))
}

/// TokenReview answers for the tokens the test issued. SelfSubjectAccessReview and
/// SelfSubjectRulesReview: everything is allowed unless the test denied it.
fn review(shared: &Shared, target: &Target, body: &[u8]) -> Reply {
    let mut review = parse_body(body)?;
    let state = shared.state();
    if target.rt.plural == "tokenreviews" {
        return ok(StatusCode::CREATED, &crate::tokens::review(&state, review)?);
    }
    if target.rt.plural == "selfsubjectrulesreviews" {
        review["status"] = json!({
            "resourceRules": [{ "verbs": ["*"], "apiGroups": ["*"], "resources": ["*"] }],
            "nonResourceRules": [{ "verbs": ["*"], "nonResourceURLs": ["*"] }],
            "incomplete": false,
        });
        return ok(StatusCode::CREATED, &review);
    }
    let attrs = review
        .pointer("/spec/resourceAttributes")
        .cloned()
        .unwrap_or(json!({}));
    let text = |k: &str| {
        attrs
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let asked = Denial {
        verb: text("verb"),
        group: text("group"),
        resource: text("resource"),
    };
    let denied = state.denials.iter().any(|d| {
        (d.verb == "*" || d.verb == asked.verb)
            && (d.group == "*" || d.group == asked.group)
            && (d.resource == "*" || d.resource == asked.resource)
    });
    review["status"] = if denied {
        json!({ "allowed": false, "denied": true, "reason": "denied by the test's access rules" })
    } else {
        json!({ "allowed": true, "reason": "the fake API server allows everything" })
    };
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    ok(StatusCode::CREATED, &review)
}

#[cfg(test)]
mod tests {
    #[test]
    fn continue_tokens_round_trip() {
        let token = super::encode_continue("ns-1", "pod-9");
        assert_eq!(
            super::decode_continue(&token).unwrap(),
            ("ns-1".into(), "pod-9".into())
        );
        assert!(super::decode_continue("zz").is_err());
        assert!(super::decode_continue("abc").is_err());
    }
}
