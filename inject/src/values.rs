//! The values that configure the control plane (`mesh install`) and the proxy that manual injection
//! and the injector add to pods.
//!
//! Defaults live in `manifests/values.yaml`, embedded at build time, so there is one documented
//! source of truth. Overrides come from values files and `key=value` assignments; any key that the
//! defaults do not have is an error naming it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::yaml;

/// The defaults, as shipped.
pub const DEFAULTS: &str = include_str!("../../manifests/values.yaml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Values {
    pub cluster_domain: String,
    pub identity_trust_domain: String,
    pub cluster_networks: String,
    pub mesh_version: String,
    pub image_pull_policy: String,
    pub controller_image: String,
    pub controller_replicas: u32,
    pub controller_log_level: String,
    #[serde(rename = "controllerUID")]
    pub controller_uid: i64,
    pub high_availability: bool,
    pub enable_pod_anti_affinity: bool,
    pub enable_pod_disruption_budget: bool,
    pub webhook_failure_policy: String,
    pub destination_resources: Resources,
    pub identity_resources: Resources,
    pub proxy_injector_resources: Resources,
    pub proxy: Proxy,
    pub proxy_init: ProxyInit,
    pub identity: Identity,
    pub proxy_injector: ProxyInjector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proxy {
    pub image: Image,
    pub ports: Ports,
    pub uid: i64,
    pub log_level: String,
    pub log_format: String,
    pub r#await: bool,
    pub native_sidecar: bool,
    pub opaque_ports: String,
    pub default_inbound_policy: String,
    pub inbound_connect_timeout: String,
    pub outbound_connect_timeout: String,
    pub shutdown_grace_period: String,
    pub enable_shutdown_endpoint: bool,
    /// Whether proxies serve their tap stream unless a pod or its namespace says otherwise.
    pub enable_tap: bool,
    pub cores: u32,
    pub resources: Resources,
    pub liveness_probe: Probe,
    pub readiness_probe: Probe,
    pub startup_probe: Probe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Image {
    pub name: String,
    pub version: String,
    pub pull_policy: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub admin: u16,
    pub control: u16,
    pub inbound: u16,
    pub outbound: u16,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu: RequestLimit,
    pub memory: RequestLimit,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimit {
    pub request: String,
    pub limit: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyInit {
    pub ignore_inbound_ports: String,
    pub ignore_outbound_ports: String,
    pub skip_subnets: String,
    pub iptables_mode: String,
    pub run_as_root: bool,
    pub run_as_user: i64,
    pub run_as_group: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    pub issuer: Issuer,
    pub service_account_token_projection: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Issuer {
    pub issuance_lifetime: String,
    pub clock_skew_allowance: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyInjector {
    pub excluded_namespaces: Vec<String>,
}

impl Values {
    /// The shipped defaults.
    pub fn defaults() -> Values {
        // The defaults are embedded and tested, so this only fails if the build is broken; fall
        // back to a panic-free error path anyway.
        ValuesBuilder::new()
            .and_then(ValuesBuilder::build)
            .unwrap_or_else(|e| unreachable_defaults(&e))
    }

    /// The version images and annotations carry: `meshVersion`, or `fallback` (the CLI's own).
    pub fn version<'a>(&'a self, fallback: &'a str) -> &'a str {
        if self.mesh_version.is_empty() {
            fallback
        } else {
            &self.mesh_version
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_defaults(e: &ValuesError) -> Values {
    panic!("the embedded manifests/values.yaml is invalid: {e}")
}

/// Why a set of values cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValuesError {
    /// A values file is not valid YAML.
    #[error("{source_name}: line {line}:{col}: {message}")]
    Syntax {
        source_name: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A values file is not a mapping at the top.
    #[error("{source_name}: expected a mapping of values at the top level")]
    NotAMapping { source_name: String },
    /// A key the defaults do not have.
    #[error("{source_name}: unknown value {key:?}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownKey {
        source_name: String,
        key: String,
        suggestion: Option<String>,
    },
    /// A `--set` argument without `=`.
    #[error("--set {assignment:?}: expected key=value")]
    BadAssignment { assignment: String },
    /// A value of the wrong type.
    #[error("{source_name}: {key}: {message}")]
    BadValue {
        source_name: String,
        key: String,
        message: String,
    },
}

/// Defaults plus overrides, applied in order.
#[derive(Debug, Clone)]
pub struct ValuesBuilder {
    defaults: Value,
    tree: Value,
}

impl ValuesBuilder {
    /// Starts from the shipped defaults.
    pub fn new() -> Result<ValuesBuilder, ValuesError> {
        let defaults = parse("manifests/values.yaml", DEFAULTS)?;
        Ok(ValuesBuilder {
            tree: defaults.clone(),
            defaults,
        })
    }

    /// Merges a values file over the current values. Mappings merge key by key; anything else
    /// replaces.
    pub fn merge_file(&mut self, source_name: &str, text: &str) -> Result<(), ValuesError> {
        let overrides = parse(source_name, text)?;
        if overrides.is_null() {
            return Ok(());
        }
        let Value::Object(_) = overrides else {
            return Err(ValuesError::NotAMapping {
                source_name: source_name.to_owned(),
            });
        };
        check_known(source_name, &self.defaults, &overrides, "")?;
        merge(&mut self.tree, overrides);
        Ok(())
    }

    /// Applies one `key.path=value` assignment. The value takes the type of the default it replaces:
    /// `true`/`false` for booleans, numbers for numbers, `{a,b}` for lists, text otherwise.
    pub fn set(&mut self, assignment: &str) -> Result<(), ValuesError> {
        let source_name = format!("--set {assignment}");
        let Some((path, raw)) = assignment.split_once('=') else {
            return Err(ValuesError::BadAssignment {
                assignment: assignment.to_owned(),
            });
        };
        let keys: Vec<&str> = path.split('.').collect();
        let mut default = &self.defaults;
        for (i, key) in keys.iter().enumerate() {
            match default.get(key) {
                Some(d) => default = d,
                None => {
                    let parent = keys[..i].join(".");
                    return Err(ValuesError::UnknownKey {
                        source_name,
                        key: path.to_owned(),
                        suggestion: suggest(default, key).map(|s| join_key(&parent, &s)),
                    });
                }
            }
        }
        let bad = |message: String| ValuesError::BadValue {
            source_name: source_name.clone(),
            key: path.to_owned(),
            message,
        };
        let value = match default {
            Value::Bool(_) => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(bad(format!("expected true or false, not {raw:?}"))),
            },
            Value::Number(_) => raw
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| raw.parse::<f64>().map(Value::from))
                .map_err(|_| bad(format!("expected a number, not {raw:?}")))?,
            Value::Array(_) => {
                let inner = raw
                    .strip_prefix('{')
                    .and_then(|r| r.strip_suffix('}'))
                    .ok_or_else(|| bad(format!("expected a list like {{a,b}}, not {raw:?}")))?;
                Value::Array(
                    inner
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                )
            }
            Value::Object(_) => {
                return Err(bad(
                    "is a group of values; set one of its keys instead".to_owned()
                ));
            }
            Value::String(_) | Value::Null => Value::String(raw.to_owned()),
        };
        let mut slot = &mut self.tree;
        for key in &keys {
            slot = slot
                .as_object_mut()
                .map(|m| m.entry(key.to_string()).or_insert(Value::Null))
                .ok_or_else(|| bad("is not a group of values".to_owned()))?;
        }
        *slot = value;
        Ok(())
    }

    /// The effective values as a tree, in the defaults' key order.
    pub fn tree(&self) -> &Value {
        &self.tree
    }

    /// Checks types and builds the typed values.
    pub fn build(self) -> Result<Values, ValuesError> {
        serde_path_to_error::deserialize(&self.tree).map_err(|e| ValuesError::BadValue {
            source_name: "values".to_owned(),
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
}

fn parse(source_name: &str, text: &str) -> Result<Value, ValuesError> {
    let syntax = |e: yaml::SyntaxError| ValuesError::Syntax {
        source_name: source_name.to_owned(),
        line: e.line,
        col: e.col,
        message: e.message,
    };
    let mut root = Value::Null;
    for chunk in yaml::split(text) {
        if !chunk.is_document {
            continue;
        }
        let docs = yaml::parse_chunk(
            &text[chunk.range.clone()],
            chunk.range.start,
            chunk.first_line,
        )
        .map_err(syntax)?;
        for doc in docs.iter().flatten() {
            merge(&mut root, yaml::to_json(text, doc).map_err(syntax)?);
        }
    }
    Ok(root)
}

fn check_known(
    source_name: &str,
    defaults: &Value,
    overrides: &Value,
    prefix: &str,
) -> Result<(), ValuesError> {
    let (Value::Object(known), Value::Object(given)) = (defaults, overrides) else {
        return Ok(());
    };
    for (key, value) in given {
        let path = join_key(prefix, key);
        match known.get(key) {
            None => {
                return Err(ValuesError::UnknownKey {
                    source_name: source_name.to_owned(),
                    key: path,
                    suggestion: suggest(defaults, key).map(|s| join_key(prefix, &s)),
                });
            }
            Some(default) => check_known(source_name, default, value, &path)?,
        }
    }
    Ok(())
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The known key closest to `key`, if any is close enough to be a likely typo.
fn suggest(parent: &Value, key: &str) -> Option<String> {
    let Value::Object(map) = parent else {
        return None;
    };
    let lower = key.to_ascii_lowercase();
    map.keys()
        .map(|k| (distance(&k.to_ascii_lowercase(), &lower), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Writes values back as a map in a stable order, for `--show-values` and the `linkerd-config`
/// ConfigMap.
pub fn to_tree(values: &Values) -> Value {
    serde_json::to_value(values).unwrap_or(Value::Object(Map::new()))
}

#[cfg(test)]
mod tests;
