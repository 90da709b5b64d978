//! ServiceProfiles (`serviceprofiles.linkerd.io/v1alpha2`) and their translation into the
//! `DestinationProfile` the proxy reads, as Linkerd translates them.

use std::collections::HashMap;
use std::time::Duration;

use linkerd2_proxy_api::destination as pb;
use serde::Deserialize;

/// The spec of a ServiceProfile, as the CRD `mesh install` ships defines it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProfileSpec {
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    pub retry_budget: Option<RetryBudgetSpec>,
    #[serde(default)]
    pub dst_overrides: Vec<WeightedDstSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    pub name: String,
    pub condition: Option<RequestMatchSpec>,
    #[serde(default)]
    pub response_classes: Vec<ResponseClassSpec>,
    #[serde(default)]
    pub is_retryable: bool,
    pub timeout: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestMatchSpec {
    pub all: Option<Vec<RequestMatchSpec>>,
    pub any: Option<Vec<RequestMatchSpec>>,
    pub not: Option<OneOrMany<RequestMatchSpec>>,
    pub path_regex: Option<String>,
    pub method: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseClassSpec {
    pub condition: Option<ResponseMatchSpec>,
    #[serde(default)]
    pub is_failure: bool,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseMatchSpec {
    pub all: Option<Vec<ResponseMatchSpec>>,
    pub any: Option<Vec<ResponseMatchSpec>>,
    pub not: Option<OneOrMany<ResponseMatchSpec>>,
    pub status: Option<StatusRange>,
}

/// `not` is one match in Linkerd's Go types but an array in its CRD schema; both are accepted,
/// and several entries mean "none of these".
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(Box<T>),
    Many(Vec<T>),
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct StatusRange {
    #[serde(default)]
    pub min: u32,
    #[serde(default)]
    pub max: u32,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetryBudgetSpec {
    pub retry_ratio: f32,
    pub min_retries_per_second: u32,
    pub ttl: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct WeightedDstSpec {
    pub authority: String,
    pub weight: serde_json::Value,
}

/// Why a ServiceProfile cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    /// A route has no condition, or a condition sets no field.
    #[error("route {0:?}: a request match must have a field set")]
    EmptyRequestMatch(String),
    /// A response class has no condition, or its condition sets no field.
    #[error("route {0:?}: a response match must have a field set")]
    EmptyResponseMatch(String),
    /// A duration is not in Go's syntax.
    #[error("invalid duration {0:?}")]
    Duration(String),
    /// A method name is not an HTTP token.
    #[error("route {0:?}: invalid method")]
    Method(String),
}

/// Linkerd's default budget: 20% extra load, 10 retries a second, over 10 seconds.
pub fn default_retry_budget() -> pb::RetryBudget {
    pb::RetryBudget {
        retry_ratio: 0.2,
        min_retries_per_second: 10,
        ttl: Some(proto_duration(Duration::from_secs(10))),
    }
}

/// The profile of a service with no (usable) ServiceProfile.
pub fn default_profile(fully_qualified_name: String) -> pb::DestinationProfile {
    pb::DestinationProfile {
        fully_qualified_name,
        retry_budget: Some(default_retry_budget()),
        ..Default::default()
    }
}

/// Translates a ServiceProfile's spec; `opaque_protocol` and the name are set by the caller.
pub fn translate(
    spec: &ProfileSpec,
    fully_qualified_name: String,
) -> Result<pb::DestinationProfile, ProfileError> {
    let routes = spec.routes.iter().map(route).collect::<Result<_, _>>()?;
    let retry_budget = match &spec.retry_budget {
        None => default_retry_budget(),
        Some(b) => pb::RetryBudget {
            retry_ratio: b.retry_ratio,
            min_retries_per_second: b.min_retries_per_second,
            ttl: duration(&b.ttl)?,
        },
    };
    let dst_overrides = spec
        .dst_overrides
        .iter()
        .map(|d| pb::WeightedDst {
            authority: d.authority.clone(),
            weight: decimillis(&d.weight),
            backend_ref: None,
        })
        .collect();
    Ok(pb::DestinationProfile {
        fully_qualified_name,
        routes,
        retry_budget: Some(retry_budget),
        dst_overrides,
        ..Default::default()
    })
}

fn route(spec: &RouteSpec) -> Result<pb::Route, ProfileError> {
    let empty = || ProfileError::EmptyRequestMatch(spec.name.clone());
    let condition = request_match(spec.condition.as_ref().ok_or_else(empty)?, &spec.name)?;
    let response_classes = spec
        .response_classes
        .iter()
        .map(|rc| {
            let cond = rc
                .condition
                .as_ref()
                .ok_or_else(|| ProfileError::EmptyResponseMatch(spec.name.clone()))?;
            Ok(pb::ResponseClass {
                condition: Some(response_match(cond, &spec.name)?),
                is_failure: rc.is_failure,
            })
        })
        .collect::<Result<_, ProfileError>>()?;
    // Linkerd logs an unparsable route timeout and serves the route without one.
    let timeout = spec
        .timeout
        .as_deref()
        .filter(|t| !t.is_empty())
        .and_then(|t| duration(t).ok().flatten());
    Ok(pb::Route {
        condition: Some(condition),
        response_classes,
        metrics_labels: HashMap::from([("route".to_string(), spec.name.clone())]),
        is_retryable: spec.is_retryable,
        timeout,
    })
}

/// Linkerd's order: all, any, method, not, path; several set fields mean all of them.
fn request_match(m: &RequestMatchSpec, route: &str) -> Result<pb::RequestMatch, ProfileError> {
    use pb::request_match::{Match, Seq};
    let mut matches = Vec::new();
    let seq = |ms: &[RequestMatchSpec]| -> Result<Seq, ProfileError> {
        let matches = ms
            .iter()
            .map(|m| request_match(m, route))
            .collect::<Result<_, _>>()?;
        Ok(Seq { matches })
    };
    if let Some(all) = &m.all {
        matches.push(Match::All(seq(all)?));
    }
    if let Some(any) = &m.any {
        matches.push(Match::Any(seq(any)?));
    }
    if let Some(method) = m.method.as_deref().filter(|s| !s.is_empty()) {
        let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ProfileError::Method(route.to_string()))?;
        matches.push(Match::Method(method.into()));
    }
    if let Some(not) = &m.not {
        let inner = match not {
            OneOrMany::One(one) => request_match(one, route)?,
            OneOrMany::Many(many) if many.len() == 1 => request_match(&many[0], route)?,
            OneOrMany::Many(many) => pb::RequestMatch {
                r#match: Some(Match::Any(seq(many)?)),
            },
        };
        matches.push(Match::Not(Box::new(inner)));
    }
    if let Some(regex) = m.path_regex.as_deref().filter(|s| !s.is_empty()) {
        matches.push(Match::Path(pb::PathMatch {
            regex: regex.to_string(),
        }));
    }
    // One match as itself, several as `all` of them.
    let wrap = |m| pb::RequestMatch { r#match: Some(m) };
    match matches.len() {
        0 => Err(ProfileError::EmptyRequestMatch(route.to_string())),
        1 => Ok(pb::RequestMatch {
            r#match: matches.pop(),
        }),
        _ => Ok(wrap(Match::All(Seq {
            matches: matches.into_iter().map(wrap).collect(),
        }))),
    }
}

/// Linkerd's order: all, any, status, not.
fn response_match(m: &ResponseMatchSpec, route: &str) -> Result<pb::ResponseMatch, ProfileError> {
    use pb::response_match::{Match, Seq};
    let mut matches = Vec::new();
    let seq = |ms: &[ResponseMatchSpec]| -> Result<Seq, ProfileError> {
        let matches = ms
            .iter()
            .map(|m| response_match(m, route))
            .collect::<Result<_, _>>()?;
        Ok(Seq { matches })
    };
    if let Some(all) = &m.all {
        matches.push(Match::All(seq(all)?));
    }
    if let Some(any) = &m.any {
        matches.push(Match::Any(seq(any)?));
    }
    if let Some(s) = &m.status {
        matches.push(Match::Status(pb::HttpStatusRange {
            min: s.min,
            max: s.max,
        }));
    }
    if let Some(not) = &m.not {
        let inner = match not {
            OneOrMany::One(one) => response_match(one, route)?,
            OneOrMany::Many(many) if many.len() == 1 => response_match(&many[0], route)?,
            OneOrMany::Many(many) => pb::ResponseMatch {
                r#match: Some(Match::Any(seq(many)?)),
            },
        };
        matches.push(Match::Not(Box::new(inner)));
    }
    let wrap = |m| pb::ResponseMatch { r#match: Some(m) };
    match matches.len() {
        0 => Err(ProfileError::EmptyResponseMatch(route.to_string())),
        1 => Ok(pb::ResponseMatch {
            r#match: matches.pop(),
        }),
        _ => Ok(wrap(Match::All(Seq {
            matches: matches.into_iter().map(wrap).collect(),
        }))),
    }
}

/// A Go duration as a protobuf one; zero means unset, as in Linkerd.
fn duration(text: &str) -> Result<Option<prost_types::Duration>, ProfileError> {
    let d = mesh_names::parse_duration(text).map_err(|_| ProfileError::Duration(text.into()))?;
    Ok((!d.is_zero()).then(|| proto_duration(d)))
}

fn proto_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// A dstOverride weight (a Kubernetes quantity: `1`, `500m`) in decimillis: 10 000 is 100%.
fn decimillis(weight: &serde_json::Value) -> u32 {
    let text = match weight {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_string(),
        _ => return 0,
    };
    let (number, scale) = match text.strip_suffix('m') {
        Some(n) => (n, 0.001),
        None => (text.as_str(), 1.0),
    };
    let value = number.parse::<f64>().unwrap_or(0.0) * scale * 10_000.0;
    if value.is_finite() && value > 0.0 {
        value.round().min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}
