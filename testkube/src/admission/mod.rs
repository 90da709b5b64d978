//! Mutating admission webhooks, called the way the API server calls them on create: every
//! `MutatingWebhookConfiguration` (by name, then its webhooks in order) whose rules,
//! `namespaceSelector` and `objectSelector` match gets an `AdmissionReview` v1 over HTTPS, and
//! its answer allows, denies or patches the object before it is named and stored.
//!
//! The call is network I/O, so it never happens under the store's lock: a [`Plan`] is taken
//! under the lock, the webhooks are called without it, and the caller takes the lock again to
//! store what they returned. Not modelled: `matchConditions`, `reinvocationPolicy`, validating
//! webhooks, and `AdmissionReview` v1beta1 (a webhook that accepts only that fails to be called).

mod call;
mod rules;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::resources::ResourceType;
use crate::server::{Shared, Target, lock};
use crate::status::ApiError;
use crate::store::State;

pub use worker::{PendingPod, pod_worker};

/// How many sent reviews [`Shared::admission_calls`] keeps.
const MAX_RECORDED: usize = 10_000;

/// What a create is, as webhooks are told.
#[derive(Debug, Clone)]
pub struct Attributes {
    pub rt: ResourceType,
    /// The version the object was sent at.
    pub version: String,
    /// `""` for a cluster-scoped object.
    pub namespace: String,
    pub user: Value,
    pub dry_run: bool,
    /// The `CreateOptions`.
    pub options: Value,
}

impl Attributes {
    pub fn create(rt: &ResourceType, version: &str, namespace: &str, user: Value) -> Self {
        Attributes {
            rt: rt.clone(),
            version: version.to_string(),
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            user,
            dry_run: false,
            options: json!({ "kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1" }),
        }
    }
}

/// The test's own requests: a cluster administrator, as `kubectl` on a kind cluster is.
pub fn admin_user() -> Value {
    json!({ "username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"] })
}

/// A kube-controller-manager controller, e.g. `replicaset-controller`.
pub fn controller_user(controller: &str) -> Value {
    json!({
        "username": format!("system:serviceaccount:kube-system:{controller}"),
        "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
    })
}

/// The webhooks that may apply to one create, and what they need to know of the namespace.
#[derive(Debug, Default)]
pub struct Plan {
    /// (webhook name, webhook) in calling order.
    hooks: Vec<(String, Value)>,
    namespace_labels: Option<Map<String, Value>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }
}

/// The object after admission, and the warnings webhooks gave.
#[derive(Debug)]
pub struct Admitted {
    pub object: Value,
    pub warnings: Vec<String>,
}

fn configurations_key() -> (String, String) {
    (
        "admissionregistration.k8s.io".to_string(),
        "mutatingwebhookconfigurations".to_string(),
    )
}

/// Whether any webhook configuration exists: without one, creates need no detour.
pub fn has_configurations(state: &State) -> bool {
    !state.list(&configurations_key(), None).is_empty()
}

/// The webhooks whose rules match, taken under the lock. Selectors are checked at call time,
/// against the object as earlier webhooks left it.
pub fn plan(state: &State, attrs: &Attributes) -> Plan {
    // The API server never sends its webhook configurations to webhooks.
    if attrs.rt.group == "admissionregistration.k8s.io" {
        return Plan::default();
    }
    let request = rules::Request {
        rt: &attrs.rt,
        version: &attrs.version,
        operation: "CREATE",
    };
    let mut hooks = Vec::new();
    for config in state.list(&configurations_key(), None) {
        let webhooks = config.value.get("webhooks").and_then(Value::as_array);
        for webhook in webhooks.into_iter().flatten() {
            if rules::rules_match(webhook, request) {
                let name = webhook.get("name").and_then(Value::as_str).unwrap_or("");
                hooks.push((name.to_string(), webhook.clone()));
            }
        }
    }
    let namespace_labels = state
        .get(&crate::store::core("namespaces"), "", &attrs.namespace)
        .and_then(|ns| ns.value.pointer("/metadata/labels").cloned())
        .and_then(|l| l.as_object().cloned());
    Plan {
        hooks,
        namespace_labels,
    }
}

/// Calls every webhook of `plan` that selects the object, in order, and applies their patches.
pub async fn admit(
    shared: &Shared,
    attrs: &Attributes,
    plan: Plan,
    mut object: Value,
) -> Result<Admitted, ApiError> {
    let mut warnings = Vec::new();
    for (name, webhook) in &plan.hooks {
        if !rules::namespace_matches(webhook, &attrs.rt, plan.namespace_labels.as_ref(), &object)
            || !rules::object_matches(webhook, &object)
        {
            continue;
        }
        match call_one(shared, attrs, name, webhook, &object).await {
            Ok(answer) => {
                warnings.extend(answer.warnings);
                if let Some(patched) = answer.patched {
                    object = patched;
                }
            }
            Err(Failure::Final(e)) => return Err(e),
            Err(Failure::Call(reason)) => {
                let policy = webhook.get("failurePolicy").and_then(Value::as_str);
                if policy != Some("Ignore") {
                    return Err(ApiError::internal(format!(
                        "failed calling webhook \"{name}\": {reason}"
                    )));
                }
            }
        }
    }
    Ok(Admitted { object, warnings })
}

/// Why a webhook did not let the object through.
enum Failure {
    /// The call failed: `failurePolicy` decides.
    Call(String),
    /// A denial, or an error no policy forgives.
    Final(ApiError),
}

struct Answer {
    patched: Option<Value>,
    warnings: Vec<String>,
}

async fn call_one(
    shared: &Shared,
    attrs: &Attributes,
    name: &str,
    webhook: &Value,
    object: &Value,
) -> Result<Answer, Failure> {
    let side_effects = webhook.get("sideEffects").and_then(Value::as_str);
    if attrs.dry_run && !matches!(side_effects, Some("None" | "NoneOnDryRun")) {
        return Err(Failure::Final(ApiError::bad_request(format!(
            "admission webhook \"{name}\" does not support dry run"
        ))));
    }
    let versions = webhook
        .get("admissionReviewVersions")
        .and_then(Value::as_array);
    if !versions.into_iter().flatten().any(|v| v == "v1") {
        return Err(Failure::Call(
            "could not create admission objects: webhook does not accept known AdmissionReview versions"
                .to_string(),
        ));
    }
    let uid = format!(
        "7e570000-0000-4000-b000-{:012x}",
        shared.admission_ids.fetch_add(1, Ordering::Relaxed) + 1
    );
    let review = review_request(attrs, &uid, object);
    {
        let mut calls = lock(&shared.admission_calls);
        if calls.len() < MAX_RECORDED {
            calls.push(review.clone());
        }
    }
    let timeout = Duration::from_secs(
        webhook
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30),
    );
    let config = webhook.get("clientConfig").cloned().unwrap_or(json!({}));
    let endpoint = call::endpoint(shared, &config, timeout).map_err(Failure::Call)?;
    let ca = config.get("caBundle").and_then(Value::as_str).unwrap_or("");
    let body = Bytes::from(serde_json::to_vec(&review).unwrap_or_default());
    let failed = |e: String| {
        Failure::Call(format!(
            "failed to call webhook: Post \"{}\": {e}",
            endpoint.url
        ))
    };
    let bytes = match tokio::time::timeout(timeout, call::post(&endpoint, ca, body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return Err(failed(e)),
        Err(_) => return Err(failed("context deadline exceeded".to_string())),
    };
    let invalid = |e: String| Failure::Call(format!("received invalid webhook response: {e}"));
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Call(format!("failed to call webhook: {e}")))?;
    let (api_version, kind) = (&answer["apiVersion"], &answer["kind"]);
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(invalid(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}, Kind={}",
            api_version.as_str().unwrap_or(""),
            kind.as_str().unwrap_or("")
        )));
    }
    let Some(response) = answer.get("response").filter(|r| r.is_object()) else {
        return Err(invalid("webhook response was absent".to_string()));
    };
    let got = response.get("uid").and_then(Value::as_str).unwrap_or("");
    if got != uid {
        return Err(invalid(format!(
            "expected response.uid={uid:?}, got {got:?}"
        )));
    }
    let patch = response.get("patch").and_then(Value::as_str).unwrap_or("");
    let patch_type = response
        .get("patchType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if (!patch.is_empty() || !patch_type.is_empty()) && patch_type != "JSONPatch" {
        return Err(invalid(format!(
            "webhook returned invalid patchType: {patch_type:?}"
        )));
    }
    let warnings: Vec<String> = response
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if response.get("allowed").and_then(Value::as_bool) != Some(true) {
        return Err(Failure::Final(denied(name, response.get("status"))));
    }
    if patch.is_empty() {
        return Ok(Answer {
            patched: None,
            warnings,
        });
    }
    let patched = apply(object, patch).map_err(Failure::Final)?;
    Ok(Answer {
        patched: Some(patched),
        warnings,
    })
}

fn review_request(attrs: &Attributes, uid: &str, object: &Value) -> Value {
    let rt = &attrs.rt;
    let kind = json!({ "group": rt.group, "version": attrs.version, "kind": rt.kind });
    let resource = json!({ "group": rt.group, "version": attrs.version, "resource": rt.plural });
    let mut options = attrs.options.clone();
    if attrs.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
    });
    let name = object.pointer("/metadata/name").and_then(Value::as_str);
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        request["name"] = json!(name);
    }
    if !attrs.namespace.is_empty() {
        request["namespace"] = json!(attrs.namespace);
    }
    request["operation"] = json!("CREATE");
    request["userInfo"] = attrs.user.clone();
    request["object"] = object.clone();
    request["oldObject"] = Value::Null;
    request["dryRun"] = json!(attrs.dry_run);
    request["options"] = options;
    json!({ "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request })
}

/// The API server's rejection: the webhook's status, at least a 400, with its message after
/// `admission webhook "<name>" denied the request`.
fn denied(name: &str, status: Option<&Value>) -> ApiError {
    let text = |k: &str| {
        status
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let code = status
        .and_then(|s| s.get("code"))
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    let (message, reason) = (text("message"), text("reason"));
    let denied_by = format!("admission webhook \"{name}\" denied the request");
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    let mut error = ApiError::new(code, "", message);
    error.reason = reason.into();
    error.details = status.and_then(|s| s.get("details")).cloned().map(Box::new);
    error
}

/// Applies a base64 JSONPatch; a patch that does not apply is the API server's internal error.
fn apply(object: &Value, patch: &str) -> Result<Value, ApiError> {
    let bytes = STANDARD
        .decode(patch)
        .map_err(|e| ApiError::internal(format!("illegal base64 data in patch: {e}")))?;
    let ops: json_patch::Patch =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &ops).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(patched)
}

/// A REST `POST`: admits the body and returns it, with the webhooks' warnings. A body the
/// create will refuse anyway (not JSON, wrong kind or namespace, missing namespace) is passed
/// through untouched, since the API server decodes and checks before admission.
pub async fn admit_post(
    shared: &Arc<Shared>,
    target: &Target,
    params: &HashMap<String, String>,
    body: Bytes,
) -> Result<(Bytes, Vec<String>), ApiError> {
    let rt = &target.rt;
    let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
        return Ok((body, Vec::new()));
    };
    let kind_ok = object.get("kind").is_none_or(|k| *k == json!(rt.kind));
    let body_ns = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let ns = target.namespace.as_deref().unwrap_or("");
    if !object.is_object() || !kind_ok || (!body_ns.is_empty() && !ns.is_empty() && body_ns != ns) {
        return Ok((body, Vec::new()));
    }
    let mut attrs = Attributes::create(rt, &target.version, ns, admin_user());
    attrs.dry_run = params.get("dryRun").is_some_and(|v| v == "All");
    if let Some(manager) = params.get("fieldManager").filter(|m| !m.is_empty()) {
        attrs.options["fieldManager"] = json!(manager);
    }
    let plan = {
        let state = shared.state();
        let ns_missing = rt.namespaced
            && state
                .get(&crate::store::core("namespaces"), "", ns)
                .is_none();
        if !has_configurations(&state) || ns_missing {
            return Ok((body, Vec::new()));
        }
        plan(&state, &attrs)
    };
    if plan.is_empty() {
        return Ok((body, Vec::new()));
    }
    if rt.namespaced
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), json!(ns));
    } else if rt.namespaced && object.get("metadata").is_none() {
        object["metadata"] = json!({ "namespace": ns });
    }
    let admitted = admit(shared, &attrs, plan, object).await?;
    let bytes = Bytes::from(serde_json::to_vec(&admitted.object).unwrap_or_default());
    Ok((bytes, admitted.warnings))
}

/// [`admit`] for a caller outside the server's runtime, such as a test's own thread. It blocks
/// that thread until the webhooks have answered (each within its timeout).
pub fn admit_blocking(
    runtime: &tokio::runtime::Handle,
    shared: &Arc<Shared>,
    attrs: Attributes,
    plan: Plan,
    object: Value,
) -> Result<Admitted, ApiError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = shared.clone();
    runtime.spawn(async move {
        let _ = tx.send(admit(&shared, &attrs, plan, object).await);
    });
    rx.recv()
        .unwrap_or_else(|_| Err(ApiError::internal("the fake API server stopped")))
}
