//! Answers of `InboundServerPolicies` turned into [`ServerPolicy`]s.
//!
//! As Linkerd does, every policy from the control plane also allows unauthenticated clients
//! from localhost (`127.0.0.1`, `::1`: `kubectl port-forward` connects from there). Lists
//! are bounded ([`MAX_ITEMS`]) and regular expressions too (see `routes`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use linkerd2_proxy_api::http_route as proto_route;
use linkerd2_proxy_api::inbound as proto;
use linkerd2_proxy_api::meta as proto_meta;

use super::routes::{self, HostMatch, PathMatch, RequestMatch, Route, Rule, ValueMatch};
use super::{Authentication, Authorization, IpNet, Meta, Network, Protocol, ServerPolicy, Suffix};

/// Authorizations, routes and rules kept from one answer; more are ignored.
pub const MAX_ITEMS: usize = 1000;

/// Why an answer could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPolicy {
    #[error("no proxy protocol")]
    NoProtocol,
    #[error("an authorization has no networks")]
    NoNetworks,
    #[error("an authorization has no authentication")]
    NoAuthentication,
    #[error("a network is invalid")]
    Network,
    #[error(
        "a route's regular expression is invalid or longer than {} bytes",
        routes::MAX_REGEX_BYTES
    )]
    Regex,
    #[error("a route matches an invalid header name or method")]
    Match,
}

/// Turns an answer into a policy.
pub fn convert(server: proto::Server) -> Result<ServerPolicy, InvalidPolicy> {
    use proto::proxy_protocol::Kind;
    let localhost = Authorization {
        networks: [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
        .into_iter()
        .filter_map(|ip| IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }))
        .map(Network::from)
        .collect(),
        authentication: Authentication::Unauthenticated,
        meta: Arc::new(Meta::default_named("localhost")),
    };
    let authorizations = authorizations(server.authorizations, &[localhost])?;
    let kind = server
        .protocol
        .and_then(|p| p.kind)
        .ok_or(InvalidPolicy::NoProtocol)?;
    let (protocol, http, grpc) = match kind {
        Kind::Detect(d) => (Protocol::Detect, d.http_routes, Vec::new()),
        Kind::Http1(h) => (Protocol::Http, h.routes, Vec::new()),
        Kind::Http2(h) => (Protocol::Http, h.routes, Vec::new()),
        Kind::Grpc(g) => (Protocol::Http, Vec::new(), g.routes),
        Kind::Opaque(_) => (Protocol::Opaque, Vec::new(), Vec::new()),
        Kind::Tls(_) => (Protocol::Tls, Vec::new(), Vec::new()),
    };
    let mut http_routes = Vec::new();
    for r in http.into_iter().take(MAX_ITEMS) {
        http_routes.push(http_route(r, &authorizations)?);
    }
    for r in grpc.into_iter().take(MAX_ITEMS) {
        http_routes.push(grpc_route(r, &authorizations)?);
    }
    Ok(ServerPolicy {
        meta: Arc::new(labels_meta(&server.labels, "policy.linkerd.io", "server")),
        protocol,
        authorizations: authorizations.into(),
        http_routes: http_routes.into(),
    })
}

/// `authzs`, then `parent`.
fn authorizations(
    authzs: Vec<proto::Authz>,
    parent: &[Authorization],
) -> Result<Vec<Authorization>, InvalidPolicy> {
    let mut out = Vec::with_capacity(authzs.len() + parent.len());
    for a in authzs.into_iter().take(MAX_ITEMS) {
        out.push(authorization(a)?);
    }
    out.extend(parent.iter().cloned());
    Ok(out)
}

fn authorization(a: proto::Authz) -> Result<Authorization, InvalidPolicy> {
    use proto::authn::Permit;
    use proto::authn::permit_mesh_tls::Clients;
    if a.networks.is_empty() {
        return Err(InvalidPolicy::NoNetworks);
    }
    let mut networks = Vec::new();
    for n in a.networks.into_iter().take(MAX_ITEMS) {
        let net = ip_net(n.net.ok_or(InvalidPolicy::Network)?)?;
        let except = n
            .except
            .into_iter()
            .take(MAX_ITEMS)
            .map(ip_net)
            .collect::<Result<_, _>>()?;
        networks.push(Network { net, except });
    }
    let permit = a
        .authentication
        .and_then(|a| a.permit)
        .ok_or(InvalidPolicy::NoAuthentication)?;
    let authentication = match permit {
        Permit::Unauthenticated(_) => Authentication::Unauthenticated,
        Permit::MeshTls(m) => match m.clients.ok_or(InvalidPolicy::NoAuthentication)? {
            Clients::Unauthenticated(_) => Authentication::TlsUnauthenticated,
            Clients::Identities(ids) => Authentication::TlsAuthenticated {
                identities: ids
                    .identities
                    .into_iter()
                    .take(MAX_ITEMS)
                    .map(|i| i.name)
                    .collect::<BTreeSet<_>>(),
                suffixes: ids
                    .suffixes
                    .into_iter()
                    .take(MAX_ITEMS)
                    .map(|s| Suffix::new(&s.parts))
                    .collect(),
            },
        },
    };
    let meta = match a.metadata {
        Some(m) => metadata(m),
        None => labels_meta(&a.labels, "policy.linkerd.io", "serverauthorization"),
    };
    Ok(Authorization {
        networks,
        authentication,
        meta: Arc::new(meta),
    })
}

fn ip_net(n: linkerd2_proxy_api::net::IpNetwork) -> Result<IpNet, InvalidPolicy> {
    let ip: IpAddr =
        n.ip.ok_or(InvalidPolicy::Network)?
            .try_into()
            .map_err(|_| InvalidPolicy::Network)?;
    let prefix = u8::try_from(n.prefix_len).map_err(|_| InvalidPolicy::Network)?;
    IpNet::new(ip, prefix).ok_or(InvalidPolicy::Network)
}

/// Linkerd's older form: `group`, `kind` and `name` labels, with defaults.
fn labels_meta(
    labels: &std::collections::HashMap<String, String>,
    group: &str,
    kind: &str,
) -> Meta {
    let name = labels.get("name").map_or("", String::as_str);
    match labels.get("kind").map(String::as_str) {
        Some("default") => Meta::default_named(name),
        k => Meta::resource(
            labels.get("group").map_or(group, String::as_str),
            k.unwrap_or(kind),
            name,
        ),
    }
}

fn metadata(m: proto_meta::Metadata) -> Meta {
    match m.kind {
        Some(proto_meta::metadata::Kind::Default(name)) => Meta::default_named(&name),
        Some(proto_meta::metadata::Kind::Resource(r)) => Meta::resource(&r.group, &r.kind, &r.name),
        None => Meta::default_named(""),
    }
}

fn http_route(r: proto::HttpRoute, server: &[Authorization]) -> Result<Route, InvalidPolicy> {
    let rules = r.rules.into_iter().map(|rule| rule.matches);
    route(
        r.hosts,
        r.metadata,
        r.authorizations,
        server,
        rules,
        http_match,
    )
}

fn grpc_route(r: proto::GrpcRoute, server: &[Authorization]) -> Result<Route, InvalidPolicy> {
    let rules = r.rules.into_iter().map(|rule| rule.matches);
    route(
        r.hosts,
        r.metadata,
        r.authorizations,
        server,
        rules,
        grpc_match,
    )
}

/// A route of either kind: its authorizations (its own, then the server's) and name shared
/// by its rules, each rule's matches read by `read`.
fn route<M>(
    host_matches: Vec<proto_route::HostMatch>,
    route_meta: Option<proto_meta::Metadata>,
    authzs: Vec<proto::Authz>,
    server: &[Authorization],
    rules: impl Iterator<Item = Vec<M>>,
    read: fn(M) -> Result<RequestMatch, InvalidPolicy>,
) -> Result<Route, InvalidPolicy> {
    let authorizations: Arc<[Authorization]> = authorizations(authzs, server)?.into();
    let meta = Arc::new(route_meta.map_or_else(|| Meta::default_named(""), metadata));
    let mut out = Vec::new();
    for matches in rules.take(MAX_ITEMS) {
        let matches = matches
            .into_iter()
            .take(MAX_ITEMS)
            .map(read)
            .collect::<Result<_, _>>()?;
        out.push(Rule {
            matches,
            meta: meta.clone(),
            authorizations: authorizations.clone(),
        });
    }
    Ok(Route {
        hosts: hosts(host_matches),
        rules: out,
    })
}

/// A `GRPCRoute` match: `POST` to `/service/method`, or to any method of a service, or to
/// a method of any service.
fn grpc_match(
    m: linkerd2_proxy_api::grpc_route::GrpcRouteMatch,
) -> Result<RequestMatch, InvalidPolicy> {
    let path = match m.rpc {
        Some(rpc) if !rpc.service.is_empty() && !rpc.method.is_empty() => {
            Some(PathMatch::Exact(format!("/{}/{}", rpc.service, rpc.method)))
        }
        Some(rpc) if !rpc.service.is_empty() => {
            Some(PathMatch::Prefix(format!("/{}", rpc.service)))
        }
        Some(rpc) if !rpc.method.is_empty() => Some(PathMatch::Regex(regex(&format!(
            "/[^/]+/{}",
            regex_lite::escape(&rpc.method)
        ))?)),
        _ => None,
    };
    Ok(RequestMatch {
        path,
        headers: headers(m.headers)?,
        query: Vec::new(),
        method: Some(http::Method::POST),
    })
}

fn hosts(hosts: Vec<proto_route::HostMatch>) -> Vec<HostMatch> {
    use proto_route::host_match::Match;
    hosts
        .into_iter()
        .take(MAX_ITEMS)
        .filter_map(|h| match h.r#match? {
            Match::Exact(e) => Some(HostMatch::Exact(
                e.trim_end_matches('.').to_ascii_lowercase(),
            )),
            Match::Suffix(s) => {
                let mut suffix = String::new();
                for label in s.reverse_labels.iter().rev() {
                    suffix.push('.');
                    suffix.push_str(&label.to_ascii_lowercase());
                }
                Some(HostMatch::Suffix(suffix))
            }
        })
        .collect()
}

fn http_match(m: proto_route::HttpRouteMatch) -> Result<RequestMatch, InvalidPolicy> {
    use proto_route::path_match::Kind;
    let path = match m.path.and_then(|p| p.kind) {
        Some(Kind::Exact(p)) => Some(PathMatch::Exact(p)),
        Some(Kind::Prefix(p)) => Some(PathMatch::Prefix(p)),
        Some(Kind::Regex(r)) => Some(PathMatch::Regex(regex(&r)?)),
        None => None,
    };
    let mut query = Vec::new();
    for q in m.query_params.into_iter().take(MAX_ITEMS) {
        use proto_route::query_param_match::Value;
        let value = match q.value {
            Some(Value::Exact(e)) => ValueMatch::Exact(e.into_bytes()),
            Some(Value::Regex(r)) => ValueMatch::Regex(regex(&r)?),
            None => continue,
        };
        query.push((q.name, value));
    }
    let method = match m.method {
        Some(method) => Some(http::Method::try_from(method).map_err(|_| InvalidPolicy::Match)?),
        None => None,
    };
    Ok(RequestMatch {
        path,
        headers: headers(m.headers)?,
        query,
        method,
    })
}

fn headers(
    headers: Vec<proto_route::HeaderMatch>,
) -> Result<Vec<(http::HeaderName, ValueMatch)>, InvalidPolicy> {
    use proto_route::header_match::Value;
    let mut out = Vec::new();
    for h in headers.into_iter().take(MAX_ITEMS) {
        let name = http::HeaderName::try_from(h.name).map_err(|_| InvalidPolicy::Match)?;
        let value = match h.value {
            Some(Value::Exact(e)) => ValueMatch::Exact(e),
            Some(Value::Regex(r)) => ValueMatch::Regex(regex(&r)?),
            None => continue,
        };
        out.push((name, value));
    }
    Ok(out)
}

/// A route's regular expression, matching whole values.
fn regex(pattern: &str) -> Result<regex_lite::Regex, InvalidPolicy> {
    routes::whole_regex(pattern).ok_or(InvalidPolicy::Regex)
}
