//! Routes from a Swagger 2.0 or OpenAPI 3 spec: one per path and method, as Linkerd derives them.
//!
//! The spec is read with the repository's YAML reader (JSON is YAML too), which bounds nesting
//! and alias expansion, so a hostile spec costs bounded memory and no deep recursion. Only the
//! first levels are looked at: `paths`, each path's operations, and each operation's responses
//! and `x-linkerd-*` extensions.

use serde_json::{Map, Value};

use super::{Route, quote_meta};

/// The operations of a path item, in the order Linkerd lists them (alphabetical). `trace` exists
/// only in OpenAPI 3.
const METHODS: &[&str] = &[
    "delete", "get", "head", "options", "patch", "post", "put", "trace",
];

/// An operation is safe to retry (Linkerd's extension).
pub const RETRYABLE: &str = "x-linkerd-retryable";
/// How long a request on the operation may take, a Go duration (Linkerd's extension).
pub const TIMEOUT: &str = "x-linkerd-timeout";

/// What makes a spec unusable; each message says where in the spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not YAML or JSON.
    #[error("{0}")]
    Syntax(#[from] mesh_inject::yaml::SyntaxError),
    /// Empty, several documents, or not a mapping.
    #[error("expected one Swagger 2.0 or OpenAPI 3 document, found {0}")]
    NotOneDocument(String),
    /// Neither `swagger: "2.0"` nor `openapi: 3.x`.
    #[error("not a Swagger 2.0 or OpenAPI 3 spec: {0}")]
    Version(String),
    /// A field of the wrong type.
    #[error("{path}: expected {expected}")]
    Shape {
        path: String,
        expected: &'static str,
    },
    /// An `x-linkerd-timeout` Linkerd could not parse either.
    #[error("{path}: {error}")]
    Timeout {
        path: String,
        error: mesh_names::duration::DurationError,
    },
    /// No operation under `paths`.
    #[error("no routes found: the spec has no operations under paths")]
    NoRoutes,
}

/// The routes of the spec in `text`, sorted by path, then method.
pub fn routes(text: &str) -> Result<Vec<Route>, SpecError> {
    let mut docs = mesh_inject::yaml::to_json_documents(text)?;
    let spec = match (docs.pop(), docs.is_empty()) {
        (Some(Value::Object(spec)), true) => spec,
        (None, _) => return Err(SpecError::NotOneDocument("an empty file".into())),
        (Some(_), false) => return Err(SpecError::NotOneDocument("several documents".into())),
        (Some(other), true) => return Err(SpecError::NotOneDocument(kind(&other).into())),
    };
    let base = base_path(&spec)?;
    let Some(paths) = spec.get("paths") else {
        return Err(SpecError::NoRoutes);
    };
    let paths = object(paths, "paths")?;
    let mut sorted: Vec<(&String, &Value)> = paths.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut routes = Vec::new();
    for (relative, item) in sorted {
        if relative.starts_with("x-") {
            continue;
        }
        let at = format!("paths.{relative}");
        let item = object(item, &at)?;
        let path = join(&base, relative);
        let path_regex = path_to_regex(&path);
        for method in METHODS {
            let Some(operation) = item.get(*method).filter(|o| !o.is_null()) else {
                continue;
            };
            let at = format!("{at}.{method}");
            let operation = object(operation, &at)?;
            routes.push(Route {
                name: format!("{} {path}", method.to_ascii_uppercase()),
                method: method.to_ascii_uppercase(),
                path_regex: path_regex.clone(),
                response_classes: response_classes(operation, &at)?,
                retryable: operation.get(RETRYABLE).and_then(Value::as_bool) == Some(true),
                timeout: timeout(operation, &at)?,
            });
        }
    }
    if routes.is_empty() {
        return Err(SpecError::NoRoutes);
    }
    Ok(routes)
}

/// The path regex Linkerd writes for an API path: the literal parts escaped, each `{param}`
/// matching one path segment. It is not anchored: proxies match it against the whole path.
pub fn path_to_regex(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&quote_meta(&rest[..open]));
        out.push_str("[^/]*");
        rest = &rest[open + close + 1..];
    }
    out.push_str(&quote_meta(rest));
    out
}

/// The prefix every path is under: Swagger 2's `basePath`, or the path of OpenAPI 3's first
/// server URL when it has no variables. Checks the spec's version on the way.
fn base_path(spec: &Map<String, Value>) -> Result<String, SpecError> {
    let version = |key: &str| spec.get(key).map(scalar);
    let base = match (version("swagger"), version("openapi")) {
        (Some(v), None) if v.starts_with("2.") || v == "2" => match spec.get("basePath") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(base)) => base.clone(),
            Some(_) => return Err(shape("basePath", "a string")),
        },
        (None, Some(v)) if v.starts_with("3.") => match spec.get("servers") {
            None | Some(Value::Null) => String::new(),
            Some(Value::Array(servers)) => servers
                .first()
                .and_then(|s| s.get("url"))
                .and_then(Value::as_str)
                .map(url_path)
                .unwrap_or_default(),
            Some(_) => return Err(shape("servers", "a list")),
        },
        (Some(v), _) => return Err(SpecError::Version(format!("swagger: {v:?}"))),
        (_, Some(v)) => return Err(SpecError::Version(format!("openapi: {v:?}"))),
        (None, None) => return Err(SpecError::Version("no swagger or openapi field".into())),
    };
    Ok(base.trim_end_matches('/').to_string())
}

/// The path of a server URL (`https://api.example.com/v1` or `/v1`); empty when it has
/// variables, which only a client fills in.
fn url_path(url: &str) -> String {
    if url.contains('{') {
        return String::new();
    }
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = if url.contains("://") {
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    } else {
        after_scheme
    };
    path.split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn join(base: &str, relative: &str) -> String {
    if relative.starts_with('/') {
        format!("{base}{relative}")
    } else {
        format!("{base}/{relative}")
    }
}

/// One class per documented status: a code (`404`) or, in OpenAPI 3, a range (`5XX`).
/// `default` covers whatever is left and classifies nothing.
fn response_classes(
    operation: &Map<String, Value>,
    at: &str,
) -> Result<Vec<(u16, u16)>, SpecError> {
    let responses = match operation.get("responses") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(r) => object(r, &format!("{at}.responses"))?,
    };
    let mut classes: Vec<(u16, u16)> = responses
        .keys()
        .filter_map(|status| status_range(status))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    Ok(classes)
}

fn status_range(status: &str) -> Option<(u16, u16)> {
    let upper = status.to_ascii_uppercase();
    if let Some(hundreds) = upper.strip_suffix("XX") {
        let digit: u16 = hundreds.parse().ok().filter(|d| (1..=5).contains(d))?;
        return Some((digit * 100, digit * 100 + 99));
    }
    let code: u16 = status.parse().ok().filter(|c| (100..=599).contains(c))?;
    Some((code, code))
}

fn timeout(operation: &Map<String, Value>, at: &str) -> Result<Option<String>, SpecError> {
    let Some(value) = operation.get(TIMEOUT).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let path = format!("{at}.{TIMEOUT}");
    let Value::String(text) = value else {
        return Err(SpecError::Shape {
            path,
            expected: "a duration string such as 300ms",
        });
    };
    mesh_names::duration::parse_duration(text).map_err(|error| SpecError::Timeout {
        path: path.clone(),
        error,
    })?;
    Ok(Some(text.clone()))
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, SpecError> {
    value.as_object().ok_or_else(|| shape(path, "a mapping"))
}

fn shape(path: &str, expected: &'static str) -> SpecError {
    SpecError::Shape {
        path: path.to_string(),
        expected,
    }
}

/// A version field as written: `2.0` may have been read as a number.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        _ => "not a mapping",
    }
}
