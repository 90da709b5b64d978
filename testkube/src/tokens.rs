//! Service-account tokens and `TokenReview`, with the API server's audience rules.
//!
//! A test issues a token for a service account (as the kubelet would project one into a pod) and
//! a component under test asks `POST /apis/authentication.k8s.io/v1/tokenreviews` who holds it.
//! Tokens look like the real ones (three base64url parts, the usual claims) but only this server
//! knows them: nothing verifies their signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::status::ApiError;
use crate::store::{State, core};
use crate::time;

/// The audience of tokens issued without one, and the one a review without `spec.audiences`
/// checks: the API server's own (`--api-audiences`, which defaults to the issuer).
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// What the server remembers of a token it issued.
#[derive(Debug, Clone)]
pub struct Token {
    namespace: String,
    service_account: String,
    /// The service account's uid when the token was issued: a token outlives neither its
    /// service account nor a new one of the same name.
    uid: String,
    audiences: Vec<String>,
    id: String,
    revoked: bool,
}

/// Makes a token for `namespace/service_account`, creating both if missing (a TokenRequest
/// needs an existing service account).
pub fn issue(
    state: &mut State,
    namespace: &str,
    service_account: &str,
    audiences: &[&str],
) -> String {
    state.ensure_namespace(namespace);
    let sa_key = core("serviceaccounts");
    if state.get(&sa_key, namespace, service_account).is_none() {
        let rt = state.type_of(&sa_key);
        let sa = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": { "name": service_account, "namespace": namespace },
        });
        let _ = state.create(&rt, namespace, sa, false);
    }
    let uid = state
        .get(&sa_key, namespace, service_account)
        .map(|sa| sa.uid().to_string())
        .unwrap_or_default();
    let audiences: Vec<String> = if audiences.is_empty() {
        vec![API_AUDIENCE.to_string()]
    } else {
        audiences.iter().map(|a| a.to_string()).collect()
    };
    let n = state.next_id();
    let id = format!("7e570000-0000-4000-a000-{n:012x}");
    let now = time::unix_now();
    let header = json!({ "alg": "RS256", "kid": "testkube" });
    let claims = json!({
        "aud": audiences,
        "exp": now + 3600,
        "iat": now,
        "iss": API_AUDIENCE,
        "jti": id,
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": { "name": service_account, "uid": uid },
        },
        "nbf": now,
        "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
    });
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
    let signature = URL_SAFE_NO_PAD.encode(format!("testkube-signature-{n}"));
    let token = format!("{}.{}.{signature}", part(&header), part(&claims));
    state.tokens.insert(
        token.clone(),
        Token {
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
            uid,
            audiences,
            id,
            revoked: false,
        },
    );
    token
}

/// Makes a token fail every later review. Returns whether the server knew it.
pub fn revoke(state: &mut State, token: &str) -> bool {
    match state.tokens.get_mut(token) {
        Some(t) => {
            t.revoked = true;
            true
        }
        None => false,
    }
}

/// Answers a `TokenReview` as the API server does: the review comes back with a `status`.
pub fn review(state: &State, mut review: Value) -> Result<Value, ApiError> {
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let wanted: Vec<String> = review
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    review["status"] = match authenticate(state, token, &wanted) {
        Ok((token, audiences)) => {
            let (ns, sa) = (&token.namespace, &token.service_account);
            json!({
                "authenticated": true,
                "user": {
                    "username": format!("system:serviceaccount:{ns}:{sa}"),
                    "uid": token.uid,
                    "groups": [
                        "system:serviceaccounts",
                        format!("system:serviceaccounts:{ns}"),
                        "system:authenticated",
                    ],
                    "extra": {
                        "authentication.kubernetes.io/credential-id": [format!("JTI={}", token.id)],
                    },
                },
                "audiences": audiences,
            })
        }
        Err(reason) => json!({
            "user": {},
            "error": format!("[invalid bearer token, {reason}]"),
        }),
    };
    review["apiVersion"] = json!("authentication.k8s.io/v1");
    review["kind"] = json!("TokenReview");
    review["metadata"] = json!({ "creationTimestamp": null });
    Ok(review)
}

/// The token and the audiences it is good for, or why it is refused.
fn authenticate<'a>(
    state: &'a State,
    token: &str,
    wanted: &[String],
) -> Result<(&'a Token, Vec<String>), String> {
    let Some(known) = state.tokens.get(token) else {
        return Err("square/go-jose: error in cryptographic primitive".to_string());
    };
    if known.revoked {
        return Err("token has been invalidated".to_string());
    }
    let requested: Vec<String> = if wanted.is_empty() {
        vec![API_AUDIENCE.to_string()]
    } else {
        wanted.to_vec()
    };
    let both: Vec<String> = known
        .audiences
        .iter()
        .filter(|a| requested.contains(a))
        .cloned()
        .collect();
    if both.is_empty() {
        return Err(format!(
            "token audiences {} is invalid for the target audiences {}",
            go_quoted(&known.audiences),
            go_quoted(&requested)
        ));
    }
    let sa = state.get(
        &core("serviceaccounts"),
        &known.namespace,
        &known.service_account,
    );
    match sa {
        None => Err(format!(
            "serviceaccounts \"{}\" not found",
            known.service_account
        )),
        Some(sa) if sa.uid() != known.uid => Err(format!(
            "service account UID ({}) does not match claim ({})",
            sa.uid(),
            known.uid
        )),
        Some(_) => Ok((known, both)),
    }
}

/// A list as Go's `%q` prints a string slice: `["a" "b"]`.
fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(" "))
}
