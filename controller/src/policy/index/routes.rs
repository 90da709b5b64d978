//! What the index keeps of an inbound route: a `policy.linkerd.io` or Gateway API `HTTPRoute`,
//! or a Gateway API `GRPCRoute`, whose `parentRefs` name `Server`s. Read as Linkerd's policy
//! controller reads them:
//!
//! - parent references to anything but a `policy.linkerd.io` `Server` are skipped; one to a
//!   `Server` in another namespace, or with a `port` or `sectionName`, makes the whole route
//!   unreadable;
//! - path values of `Exact` and `PathPrefix` matches must be absolute; a match without a path
//!   matches every path;
//! - a `GRPCRoute` method match must be `Exact` (Linkerd refuses `RegularExpression`).
//!
//! Regular expressions must compile with the syntax and limits the proxy uses (`regex-lite`,
//! whole values, at most 1 KiB): the proxy ignores a whole answer it cannot read, so one bad
//! route would otherwise freeze every route of its Server. Filters are not read: the proxy
//! applies none.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DynamicObject;
use serde::Deserialize;

use super::resources::{Invalid, invalid, spec};

/// The group of Gateway API resources.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
const POLICY_GROUP: &str = "policy.linkerd.io";

/// The longest regular expression a route may hold: the proxy's limit.
const MAX_REGEX_BYTES: usize = 1024;

/// Which resource a route is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// `policy.linkerd.io` `HTTPRoute`.
    PolicyHttp,
    /// `gateway.networking.k8s.io` `HTTPRoute`.
    GatewayHttp,
    /// `gateway.networking.k8s.io` `GRPCRoute`.
    GatewayGrpc,
}

impl RouteKind {
    pub fn group(self) -> &'static str {
        match self {
            RouteKind::PolicyHttp => POLICY_GROUP,
            RouteKind::GatewayHttp | RouteKind::GatewayGrpc => GATEWAY_GROUP,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            RouteKind::PolicyHttp | RouteKind::GatewayHttp => "HTTPRoute",
            RouteKind::GatewayGrpc => "GRPCRoute",
        }
    }

    /// The kind a reference names (`group`, `kind` compared as Linkerd compares them).
    pub fn named(group: &str, kind: &str) -> Option<RouteKind> {
        [
            RouteKind::PolicyHttp,
            RouteKind::GatewayHttp,
            RouteKind::GatewayGrpc,
        ]
        .into_iter()
        .find(|k| k.group().eq_ignore_ascii_case(group) && k.kind().eq_ignore_ascii_case(kind))
    }
}

/// A route resource by kind and name, in the namespace of whatever holds it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteRef {
    pub kind: RouteKind,
    pub name: String,
}

/// A route as read from its resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The names of the `Server`s it attaches to, in its own namespace.
    pub parents: BTreeSet<String>,
    /// `metadata.creationTimestamp`: older routes come first, as the Gateway API orders ties.
    pub created: Option<Time>,
    pub spec: RouteSpec,
}

/// What a route matches, as the answer carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// None: every host.
    pub hostnames: Vec<HostMatch>,
    pub rules: RouteRules,
}

/// A route's rules; a request matching any match of a rule takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteRules {
    Http(Vec<Vec<HttpMatch>>),
    Grpc(Vec<Vec<GrpcMatch>>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// `*.example.com`: names under `example.com`, kept without the `*.`.
    Suffix(String),
}

/// One HTTP match: every part given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpMatch {
    pub path: Option<PathMatch>,
    pub headers: Vec<NameMatch>,
    pub query_params: Vec<NameMatch>,
    pub method: Option<http::Method>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// A header or query parameter and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameMatch {
    pub name: String,
    pub value: ValueMatch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueMatch {
    Exact(String),
    Regex(String),
}

/// One gRPC match: a service, a method, or both (neither: every call), and headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrpcMatch {
    pub service: Option<String>,
    pub method: Option<String>,
    pub headers: Vec<NameMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParentRefSpec {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    name: String,
    section_name: Option<String>,
    port: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec<R> {
    #[serde(default)]
    parent_refs: Vec<ParentRefSpec>,
    #[serde(default)]
    hostnames: Vec<String>,
    /// Absent: the CRD's default, which the API server fills in (for an HTTPRoute, one rule
    /// that matches every request).
    rules: Option<Vec<R>>,
}

#[derive(Deserialize)]
struct RuleSpec<M> {
    #[serde(default = "Vec::new")]
    matches: Vec<M>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpMatchSpec {
    path: Option<PathSpec>,
    #[serde(default)]
    headers: Vec<NameValueSpec>,
    #[serde(default)]
    query_params: Vec<NameValueSpec>,
    method: Option<String>,
}

#[derive(Deserialize)]
struct PathSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct NameValueSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct GrpcMatchSpec {
    method: Option<GrpcMethodSpec>,
    #[serde(default)]
    headers: Vec<NameValueSpec>,
}

#[derive(Deserialize)]
struct GrpcMethodSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    service: Option<String>,
    method: Option<String>,
}

impl Route {
    pub fn from_object(kind: RouteKind, obj: &DynamicObject) -> Result<Route, Invalid> {
        let own_ns = obj.metadata.namespace.as_deref().unwrap_or_default();
        let created = obj.metadata.creation_timestamp.clone();
        let (parent_refs, hostnames, rules) = match kind {
            RouteKind::PolicyHttp | RouteKind::GatewayHttp => {
                let s: Spec<RuleSpec<HttpMatchSpec>> = spec(obj)?;
                let rules = match s.rules {
                    None => vec![Vec::new()],
                    Some(rules) => rules
                        .into_iter()
                        .map(|r| r.matches.into_iter().map(http_match).collect())
                        .collect::<Result<_, _>>()?,
                };
                (s.parent_refs, s.hostnames, RouteRules::Http(rules))
            }
            RouteKind::GatewayGrpc => {
                let s: Spec<RuleSpec<GrpcMatchSpec>> = spec(obj)?;
                let rules = s
                    .rules
                    .into_iter()
                    .flatten()
                    .map(|r| r.matches.into_iter().map(grpc_match).collect())
                    .collect::<Result<_, _>>()?;
                (s.parent_refs, s.hostnames, RouteRules::Grpc(rules))
            }
        };
        let mut parents = BTreeSet::new();
        for parent in parent_refs {
            if let Some(server) = server_parent(kind, own_ns, parent)? {
                parents.insert(server);
            }
        }
        let hostnames = hostnames
            .iter()
            .map(|h| match h.strip_prefix("*.") {
                Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
                None => HostMatch::Exact(h.to_ascii_lowercase()),
            })
            .collect();
        Ok(Route {
            parents,
            created,
            spec: RouteSpec { hostnames, rules },
        })
    }
}

/// The `Server` a parent reference names, if it names one. Absent `group` and `kind` are the
/// CRD's defaults, which the API server fills in: a `Server` for Linkerd's HTTPRoute, a
/// `Gateway` for the Gateway API's routes.
fn server_parent(
    kind: RouteKind,
    own_ns: &str,
    parent: ParentRefSpec,
) -> Result<Option<String>, Invalid> {
    let (default_group, default_kind) = match kind {
        RouteKind::PolicyHttp => (POLICY_GROUP, "Server"),
        RouteKind::GatewayHttp | RouteKind::GatewayGrpc => (GATEWAY_GROUP, "Gateway"),
    };
    let group = parent.group.as_deref().unwrap_or(default_group);
    let parent_kind = parent.kind.as_deref().unwrap_or(default_kind);
    if !group.eq_ignore_ascii_case(POLICY_GROUP)
        || !parent_kind.eq_ignore_ascii_case("Server")
        || parent.name.is_empty()
    {
        return Ok(None);
    }
    if parent.namespace.as_deref().is_some_and(|ns| ns != own_ns) {
        return Err(invalid(format!(
            "parent Server {} is in another namespace",
            parent.name
        )));
    }
    if parent.port.is_some() {
        return Err(invalid(format!(
            "parent Server {} is referenced by port",
            parent.name
        )));
    }
    if parent.section_name.is_some() {
        return Err(invalid(format!(
            "parent Server {} is referenced by section name",
            parent.name
        )));
    }
    Ok(Some(parent.name))
}

fn http_match(m: HttpMatchSpec) -> Result<HttpMatch, Invalid> {
    let path = m
        .path
        .map(|p| {
            let value = p.value.unwrap_or_else(|| "/".to_string());
            match p.kind.as_deref() {
                Some("Exact") => absolute(value).map(PathMatch::Exact),
                None | Some("PathPrefix") => absolute(value).map(PathMatch::Prefix),
                Some("RegularExpression") => regex(value).map(PathMatch::Regex),
                Some(other) => Err(invalid(format!("unknown path match type {other:?}"))),
            }
        })
        .transpose()?;
    let method = m
        .method
        .map(|text| {
            http::Method::from_bytes(text.as_bytes())
                .map_err(|_| invalid(format!("invalid method {text:?}")))
        })
        .transpose()?;
    Ok(HttpMatch {
        path,
        headers: name_values(m.headers, true)?,
        query_params: name_values(m.query_params, false)?,
        method,
    })
}

fn grpc_match(m: GrpcMatchSpec) -> Result<GrpcMatch, Invalid> {
    let (service, method) = match m.method {
        None => (None, None),
        Some(spec) => {
            if let Some(kind) = spec.kind.as_deref().filter(|k| *k != "Exact") {
                return Err(invalid(format!("unsupported method match type {kind:?}")));
            }
            let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
            (nonempty(spec.service), nonempty(spec.method))
        }
    };
    Ok(GrpcMatch {
        service,
        method,
        headers: name_values(m.headers, true)?,
    })
}

fn absolute(path: String) -> Result<String, Invalid> {
    if path.starts_with('/') {
        Ok(path)
    } else {
        Err(invalid(format!("path {path:?} is not absolute")))
    }
}

/// Header (`headers`) or query parameter matches.
fn name_values(specs: Vec<NameValueSpec>, headers: bool) -> Result<Vec<NameMatch>, Invalid> {
    specs
        .into_iter()
        .map(|s| {
            if headers {
                http::HeaderName::from_bytes(s.name.as_bytes())
                    .map_err(|_| invalid(format!("invalid header name {:?}", s.name)))?;
            }
            let value = match s.kind.as_deref() {
                None | Some("Exact") => {
                    if headers {
                        http::HeaderValue::from_str(&s.value).map_err(|_| {
                            invalid(format!("invalid value for header {:?}", s.name))
                        })?;
                    }
                    ValueMatch::Exact(s.value)
                }
                Some("RegularExpression") => ValueMatch::Regex(regex(s.value)?),
                Some(other) => return Err(invalid(format!("unknown match type {other:?}"))),
            };
            Ok(NameMatch {
                name: if headers {
                    s.name.to_ascii_lowercase()
                } else {
                    s.name
                },
                value,
            })
        })
        .collect()
}

/// A regular expression the proxy can compile (it matches whole values).
fn regex(pattern: String) -> Result<String, Invalid> {
    if pattern.len() > MAX_REGEX_BYTES {
        return Err(invalid(format!(
            "a regular expression is longer than {MAX_REGEX_BYTES} bytes"
        )));
    }
    regex_lite::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| invalid(format!("regular expression {pattern:?}: {e}")))?;
    Ok(pattern)
}
