//! Kubernetes `Status` objects: how the API server reports a failed request, so kubectl and
//! kube-rs print their usual messages.

use serde_json::{Value, json};

/// A failed request, rendered as a `Status` body with the matching HTTP code.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: std::borrow::Cow<'static, str>,
    pub message: String,
    /// Boxed to keep `Result<_, ApiError>` small.
    pub details: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    /// `Internal error occurred: …`: a 500, as the API server wraps an error it did not expect.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError {
            details: Some(Box::new(json!({ "causes": [{ "message": message }] }))),
            ..ApiError::new(
                500,
                "InternalError",
                format!("Internal error occurred: {message}"),
            )
        }
    }

    /// `pods "web" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let what = qualified(group, plural);
        ApiError {
            details: Some(Box::new(
                json!({ "name": name, "group": group, "kind": plural }),
            )),
            ..ApiError::new(404, "NotFound", format!("{what} \"{name}\" not found"))
        }
    }

    /// `pods "web" already exists`.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let what = qualified(group, plural);
        ApiError {
            details: Some(Box::new(
                json!({ "name": name, "group": group, "kind": plural }),
            )),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!("{what} \"{name}\" already exists"),
            )
        }
    }

    /// A stale `resourceVersion` on an update.
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        let what = qualified(group, plural);
        ApiError {
            details: Some(Box::new(
                json!({ "name": name, "group": group, "kind": plural }),
            )),
            ..ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {what} \"{name}\": the object has been \
                     modified; please apply your changes to the latest version and try again"
                ),
            )
        }
    }

    /// `Pod "Web" is invalid: metadata.name: Invalid value: …`: a 422.
    pub fn invalid(kind: &str, name: &str, field: &str, detail: &str) -> Self {
        ApiError {
            details: Some(Box::new(json!({
                "name": name,
                "kind": kind,
                "causes": [{ "reason": "FieldValueInvalid", "message": detail, "field": field }],
            }))),
            ..ApiError::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: {field}: {detail}"),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn path_not_found() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = (**details).clone();
        }
        status
    }
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}
