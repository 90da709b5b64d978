//! `GetProfile` answers turned into [`Profile`]s, traffic splits and known endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use linkerd2_proxy_api::destination as api;

use super::endpoints;
use crate::outbound::discover::Endpoint;
use crate::outbound::profile::{
    Matcher, MatcherError, Node, Profile, RequestLeaf, RequestMatch, ResponseClass, ResponseMatch,
    RetryBudget, Route, StatusRange,
};

/// Routes kept per profile; the rest are dropped (with a log line).
pub const MAX_ROUTES: usize = 1000;
/// Backends of one traffic split; each is watched with a `Get` stream of its own.
pub const MAX_OVERRIDES: usize = 100;
/// Compiled size of one path expression. Path expressions are short; the bound keeps a
/// peer from making the proxy compile huge automata.
const MAX_REGEX_BYTES: usize = 64 * 1024;

/// One profile answer.
#[derive(Clone, Debug)]
pub(super) struct ProfileAnswer {
    pub(super) profile: Arc<Profile>,
    /// A traffic split: `(authority, weight)`, weights above zero, authorities distinct.
    pub(super) overrides: Vec<(String, u32)>,
    /// The target is one known endpoint (a pod address): no balancing, no split.
    pub(super) endpoint: Option<Endpoint>,
}

pub(super) fn convert(p: &api::DestinationProfile) -> ProfileAnswer {
    let mut routes = Vec::new();
    for (i, r) in p.routes.iter().enumerate() {
        if routes.len() >= MAX_ROUTES {
            tracing::warn!(
                max = MAX_ROUTES,
                "profile has too many routes; the rest are ignored"
            );
            break;
        }
        match route(r) {
            Ok(route) => routes.push(route),
            Err(error) => tracing::info!(%error, route = i, "profile route ignored"),
        }
    }
    let profile = Profile {
        routes,
        retry_budget: p.retry_budget.map(retry_budget).unwrap_or_default(),
        opaque_protocol: p.opaque_protocol,
        fully_qualified_name: Some(p.fully_qualified_name.trim_end_matches('.'))
            .filter(|n| !n.is_empty())
            .map(Arc::from),
    };
    let mut overrides: Vec<(String, u32)> = Vec::new();
    for dst in &p.dst_overrides {
        if dst.weight == 0 || dst.authority.is_empty() {
            continue;
        }
        if let Some((_, w)) = overrides.iter_mut().find(|(a, _)| *a == dst.authority) {
            *w = w.saturating_add(dst.weight);
        } else if overrides.len() < MAX_OVERRIDES {
            overrides.push((dst.authority.clone(), dst.weight));
        }
    }
    let endpoint = p
        .endpoint
        .as_ref()
        .and_then(|addr| endpoints::endpoint(addr, &HashMap::new()));
    ProfileAnswer {
        profile: Arc::new(profile),
        overrides,
        endpoint,
    }
}

fn route(r: &api::Route) -> Result<Route, MatcherError> {
    let condition = r
        .condition
        .as_ref()
        .ok_or_else(|| MatcherError::Invalid("route has no condition".into()))?;
    let condition = RequestMatch(Matcher::build(condition, request_node)?);
    let response_classes =
        r.response_classes
            .iter()
            .map(|class| {
                let condition = class.condition.as_ref().ok_or_else(|| {
                    MatcherError::Invalid("response class has no condition".into())
                })?;
                Ok(ResponseClass {
                    condition: ResponseMatch(Matcher::build(condition, response_node)?),
                    is_failure: class.is_failure,
                })
            })
            .collect::<Result<Vec<_>, MatcherError>>()?;
    let mut labels: Vec<(String, String)> = r
        .metrics_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.sort();
    Ok(Route {
        name: r.metrics_labels.get("route").cloned().unwrap_or_default(),
        labels,
        condition,
        response_classes,
        is_retryable: r.is_retryable,
        timeout: r
            .timeout
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero()),
    })
}

fn request_node(
    m: &api::RequestMatch,
) -> Result<Node<'_, api::RequestMatch, RequestLeaf>, MatcherError> {
    use api::request_match::Match;
    match &m.r#match {
        None => Err(MatcherError::Invalid("empty request match".into())),
        Some(Match::All(seq)) => Ok(Node::All(&seq.matches)),
        Some(Match::Any(seq)) => Ok(Node::Any(&seq.matches)),
        Some(Match::Not(inner)) => Ok(Node::Not(inner)),
        Some(Match::Path(path)) => {
            path_regex(&path.regex).map(|re| Node::Leaf(RequestLeaf::Path(re)))
        }
        Some(Match::Method(method)) => http::Method::try_from(method.clone())
            .map(|m| Node::Leaf(RequestLeaf::Method(m)))
            .map_err(|e| MatcherError::Invalid(e.to_string())),
    }
}

fn response_node(
    m: &api::ResponseMatch,
) -> Result<Node<'_, api::ResponseMatch, StatusRange>, MatcherError> {
    use api::response_match::Match;
    match &m.r#match {
        None => Err(MatcherError::Invalid("empty response match".into())),
        Some(Match::All(seq)) => Ok(Node::All(&seq.matches)),
        Some(Match::Any(seq)) => Ok(Node::Any(&seq.matches)),
        Some(Match::Not(inner)) => Ok(Node::Not(inner)),
        Some(Match::Status(range)) => status_range(*range).map(Node::Leaf),
    }
}

/// A path expression matches the whole path, as Linkerd's `pathRegex` does.
fn path_regex(re: &str) -> Result<regex_lite::Regex, MatcherError> {
    if re.is_empty() {
        return Err(MatcherError::Invalid("empty path regex".into()));
    }
    let start = if re.starts_with('^') { "" } else { "^" };
    let end = if re.ends_with('$') { "" } else { "$" };
    regex_lite::RegexBuilder::new(&format!("{start}(?:{re}){end}"))
        .size_limit(MAX_REGEX_BYTES)
        .build()
        .map_err(|e| MatcherError::Invalid(format!("path regex {re:?}: {e}")))
}

/// A range with only one bound set is that one status.
fn status_range(range: api::HttpStatusRange) -> Result<StatusRange, MatcherError> {
    let (min, max) = match (range.min, range.max) {
        (0, 0) => return Err(MatcherError::Invalid("status range has no bounds".into())),
        (0, one) | (one, 0) => (one, one),
        (min, max) => (min, max),
    };
    let status = |n: u32| u16::try_from(n).ok().filter(|n| (100..=599).contains(n));
    match (status(min), status(max)) {
        (Some(min), Some(max)) if min <= max => Ok(StatusRange { min, max }),
        _ => Err(MatcherError::Invalid(format!(
            "status range {min}-{max} is not within 100-599"
        ))),
    }
}

/// The control plane's budget, with Linkerd's default for any value out of range.
fn retry_budget(b: api::RetryBudget) -> RetryBudget {
    let default = RetryBudget::default();
    RetryBudget {
        retry_ratio: if b.retry_ratio.is_finite() && (0.0..=1000.0).contains(&b.retry_ratio) {
            b.retry_ratio
        } else {
            default.retry_ratio
        },
        min_retries_per_second: b.min_retries_per_second,
        ttl: b
            .ttl
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(60)).contains(d))
            .unwrap_or(default.ttl),
    }
}
