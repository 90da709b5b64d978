//! What the API server checks and defaults in a `MutatingWebhookConfiguration` when it is
//! written, so a manifest the real server would refuse is refused here too.

use serde_json::{Value, json};

use crate::status::ApiError;

const KIND: &str = "MutatingWebhookConfiguration.admissionregistration.k8s.io";

/// Validates every webhook (the first problem is reported) and fills in the defaults.
pub fn validate_and_default(obj: &mut Value) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let invalid = |field: String, detail: String| ApiError::invalid(KIND, &name, &field, &detail);
    let Some(webhooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, webhook) in webhooks.iter_mut().enumerate() {
        let field = |f: &str| format!("webhooks[{i}].{f}");
        if webhook
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(field("name"), "Required value".into()));
        }
        let versions: Vec<&str> = webhook
            .get("admissionReviewVersions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(invalid(
                field("admissionReviewVersions"),
                "Required value: must specify one of v1, v1beta1".into(),
            ));
        }
        if !versions.iter().any(|v| matches!(*v, "v1" | "v1beta1")) {
            let listed: Vec<String> = versions.iter().map(|v| format!("{v:?}")).collect();
            return Err(invalid(
                field("admissionReviewVersions"),
                format!(
                    "Invalid value: []string{{{}}}: must include at least one of v1, v1beta1",
                    listed.join(", ")
                ),
            ));
        }
        match webhook.get("sideEffects").and_then(Value::as_str) {
            Some("None" | "NoneOnDryRun") => {}
            None => {
                return Err(invalid(
                    field("sideEffects"),
                    "Required value: must specify one of None, NoneOnDryRun".into(),
                ));
            }
            Some(other) => {
                return Err(invalid(
                    field("sideEffects"),
                    format!(
                        "Unsupported value: {other:?}: supported values: \"None\", \"NoneOnDryRun\""
                    ),
                ));
            }
        }
        let config = &webhook["clientConfig"];
        if config.get("url").is_some() == config.get("service").is_some() {
            return Err(invalid(
                field("clientConfig"),
                "Required value: exactly one of url or service is required".into(),
            ));
        }
        set_defaults(webhook);
    }
    Ok(())
}

/// The v1 defaults, as `kubectl get -o yaml` shows them on a real cluster.
fn set_defaults(webhook: &mut Value) {
    let Some(map) = webhook.as_object_mut() else {
        return;
    };
    map.entry("failurePolicy").or_insert(json!("Fail"));
    map.entry("matchPolicy").or_insert(json!("Equivalent"));
    map.entry("namespaceSelector").or_insert(json!({}));
    map.entry("objectSelector").or_insert(json!({}));
    map.entry("reinvocationPolicy").or_insert(json!("Never"));
    map.entry("timeoutSeconds").or_insert(json!(10));
    if let Some(service) = map
        .get_mut("clientConfig")
        .and_then(|c| c.get_mut("service"))
        .and_then(Value::as_object_mut)
    {
        service.entry("port").or_insert(json!(443));
    }
    for rule in map
        .get_mut("rules")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        rule.entry("scope").or_insert(json!("*"));
    }
}
