//! An [`InboundServer`] as Linkerd's `io.linkerd.proxy.inbound.Server` message, shaped as
//! Linkerd's policy controller sends it: labels and metadata `{group, kind, name}`; an HTTP
//! server's HTTPRoutes, or when it has none a default route matching every path and a probe
//! route for the pod's probe paths; a gRPC server's GRPCRoutes, or a default gRPC route.

use linkerd2_proxy_api::{grpc_route, http_route, inbound as pb, meta, net};

use super::index::routes::{
    GrpcMatch, HostMatch, HttpMatch, NameMatch, PathMatch, RouteRules, ValueMatch,
};
use super::index::{
    Authentication, Authorization, AuthzRef, IdentityMatch, InboundRoute, InboundServer, Net,
    NetworkMatch, Protocol, ServerRef,
};

const POLICY_GROUP: &str = "policy.linkerd.io";

pub fn server(server: &InboundServer) -> pb::Server {
    use pb::proxy_protocol::Kind;
    let http_routes = || http_routes(server);
    let kind = match server.protocol {
        Protocol::Detect(timeout) => Kind::Detect(pb::proxy_protocol::Detect {
            timeout: prost_types::Duration::try_from(timeout).ok(),
            http_routes: http_routes(),
            http_local_rate_limit: None,
        }),
        Protocol::Http1 => Kind::Http1(pb::proxy_protocol::Http1 {
            routes: http_routes(),
            local_rate_limit: None,
        }),
        Protocol::Http2 => Kind::Http2(pb::proxy_protocol::Http2 {
            routes: http_routes(),
            local_rate_limit: None,
        }),
        Protocol::Grpc => Kind::Grpc(pb::proxy_protocol::Grpc {
            routes: grpc_routes(server),
        }),
        Protocol::Opaque => Kind::Opaque(pb::proxy_protocol::Opaque {}),
        Protocol::Tls => Kind::Tls(pb::proxy_protocol::Tls {}),
    };
    let (group, kind_label, name) = match &server.reference {
        ServerRef::Default(policy) => ("", "default", policy.as_str().to_string()),
        ServerRef::Server(name) => (POLICY_GROUP, "server", name.clone()),
    };
    pb::Server {
        protocol: Some(pb::ProxyProtocol { kind: Some(kind) }),
        server_ips: Vec::new(),
        authorizations: server.authorizations.iter().map(authz).collect(),
        labels: labels(group, kind_label, &name),
    }
}

fn labels(group: &str, kind: &str, name: &str) -> std::collections::HashMap<String, String> {
    [("group", group), ("kind", kind), ("name", name)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn authz(authz: &Authorization) -> pb::Authz {
    let (kind, name) = match &authz.reference {
        AuthzRef::Default(policy) => ("default", policy.as_str()),
        AuthzRef::ServerAuthorization(name) => ("serverauthorization", name.as_str()),
        AuthzRef::AuthorizationPolicy(name) => ("authorizationpolicy", name.as_str()),
    };
    let (group, metadata) = match &authz.reference {
        AuthzRef::Default(_) => ("", meta::metadata::Kind::Default(name.to_string())),
        _ => (
            POLICY_GROUP,
            meta::metadata::Kind::Resource(meta::Resource {
                group: POLICY_GROUP.to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
                ..Default::default()
            }),
        ),
    };
    pb::Authz {
        networks: authz.networks.iter().map(network).collect(),
        authentication: Some(authentication(&authz.authentication)),
        labels: labels(group, kind, name),
        metadata: Some(meta::Metadata {
            kind: Some(metadata),
        }),
    }
}

fn authentication(authn: &Authentication) -> pb::Authn {
    use pb::authn::permit_mesh_tls::{Clients, PermitClientIdentities};
    use pb::authn::{Permit, PermitMeshTls, PermitUnauthenticated};
    let permit = match authn {
        Authentication::Unauthenticated => Permit::Unauthenticated(PermitUnauthenticated {}),
        Authentication::TlsUnauthenticated => Permit::MeshTls(PermitMeshTls {
            clients: Some(Clients::Unauthenticated(PermitUnauthenticated {})),
        }),
        Authentication::TlsAuthenticated(matches) => {
            let mut ids = PermitClientIdentities::default();
            for m in matches {
                match m {
                    IdentityMatch::Exact(name) => {
                        ids.identities.push(pb::Identity { name: name.clone() })
                    }
                    IdentityMatch::Suffix(parts) => ids.suffixes.push(pb::IdentitySuffix {
                        parts: parts.clone(),
                    }),
                }
            }
            Permit::MeshTls(PermitMeshTls {
                clients: Some(Clients::Identities(ids)),
            })
        }
    };
    pb::Authn {
        permit: Some(permit),
    }
}

fn network(n: &NetworkMatch) -> pb::Network {
    pb::Network {
        net: Some(ip_network(n.net)),
        except: n.except.iter().copied().map(ip_network).collect(),
    }
}

fn ip_network(net: Net) -> net::IpNetwork {
    net::IpNetwork {
        ip: Some(net.addr().into()),
        prefix_len: net.prefix().into(),
    }
}

/// The server's HTTPRoutes; without any, the default route (every path; the server's
/// authorizations apply) and, if the pod probes this port, the probe route: `GET` on those
/// paths, open to every network, as Linkerd's default probe networks are.
fn http_routes(server: &InboundServer) -> Vec<pb::HttpRoute> {
    let routes: Vec<pb::HttpRoute> = server.routes.iter().filter_map(http_route).collect();
    if !routes.is_empty() {
        return routes;
    }
    let prefix = http_route::HttpRouteMatch {
        path: Some(http_route::PathMatch {
            kind: Some(http_route::path_match::Kind::Prefix("/".to_string())),
        }),
        ..Default::default()
    };
    let mut routes = vec![pb::HttpRoute {
        metadata: Some(default_metadata("default")),
        hosts: Vec::new(),
        authorizations: Vec::new(),
        rules: vec![pb::http_route::Rule {
            matches: vec![prefix],
            filters: Vec::new(),
        }],
    }];
    if !server.probe_paths.is_empty() {
        let matches = server
            .probe_paths
            .iter()
            .map(|path| http_route::HttpRouteMatch {
                path: Some(http_route::PathMatch {
                    kind: Some(http_route::path_match::Kind::Exact(path.clone())),
                }),
                method: Some(http::Method::GET.into()),
                ..Default::default()
            })
            .collect();
        let probe_authz = pb::Authz {
            networks: NetworkMatch::everywhere().iter().map(network).collect(),
            authentication: Some(authentication(&Authentication::Unauthenticated)),
            labels: labels("", "default", "probe"),
            metadata: Some(default_metadata("probe")),
        };
        routes.push(pb::HttpRoute {
            metadata: Some(default_metadata("probe")),
            hosts: Vec::new(),
            authorizations: vec![probe_authz],
            rules: vec![pb::http_route::Rule {
                matches,
                filters: Vec::new(),
            }],
        });
    }
    routes
}

/// The server's GRPCRoutes, or the default route.
fn grpc_routes(server: &InboundServer) -> Vec<pb::GrpcRoute> {
    let routes: Vec<pb::GrpcRoute> = server.routes.iter().filter_map(grpc_route).collect();
    if routes.is_empty() {
        vec![default_grpc_route()]
    } else {
        routes
    }
}

fn http_route(route: &InboundRoute) -> Option<pb::HttpRoute> {
    let RouteRules::Http(rules) = &route.spec.rules else {
        return None;
    };
    Some(pb::HttpRoute {
        metadata: Some(route_metadata(route)),
        hosts: hosts(route),
        authorizations: route.authorizations.iter().map(authz).collect(),
        rules: rules
            .iter()
            .map(|matches| pb::http_route::Rule {
                matches: matches.iter().map(http_match).collect(),
                filters: Vec::new(),
            })
            .collect(),
    })
}

fn grpc_route(route: &InboundRoute) -> Option<pb::GrpcRoute> {
    let RouteRules::Grpc(rules) = &route.spec.rules else {
        return None;
    };
    Some(pb::GrpcRoute {
        metadata: Some(route_metadata(route)),
        hosts: hosts(route),
        authorizations: route.authorizations.iter().map(authz).collect(),
        rules: rules
            .iter()
            .map(|matches| pb::grpc_route::Rule {
                matches: matches.iter().map(grpc_match).collect(),
                filters: Vec::new(),
            })
            .collect(),
    })
}

fn route_metadata(route: &InboundRoute) -> meta::Metadata {
    meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: route.reference.kind.group().to_string(),
            kind: route.reference.kind.kind().to_string(),
            name: route.reference.name.clone(),
            ..Default::default()
        })),
    }
}

/// `*.example.com` as the labels of `example.com` in reverse, as Linkerd sends suffixes.
fn hosts(route: &InboundRoute) -> Vec<http_route::HostMatch> {
    use http_route::host_match::{Match, Suffix};
    route
        .spec
        .hostnames
        .iter()
        .map(|h| http_route::HostMatch {
            r#match: Some(match h {
                HostMatch::Exact(name) => Match::Exact(name.clone()),
                HostMatch::Suffix(suffix) => Match::Suffix(Suffix {
                    reverse_labels: suffix.rsplit('.').map(str::to_string).collect(),
                }),
            }),
        })
        .collect()
}

fn http_match(m: &HttpMatch) -> http_route::HttpRouteMatch {
    use http_route::path_match::Kind;
    use http_route::query_param_match::Value;
    http_route::HttpRouteMatch {
        path: m.path.as_ref().map(|p| http_route::PathMatch {
            kind: Some(match p {
                PathMatch::Exact(path) => Kind::Exact(path.clone()),
                PathMatch::Prefix(path) => Kind::Prefix(path.clone()),
                PathMatch::Regex(re) => Kind::Regex(re.clone()),
            }),
        }),
        headers: m.headers.iter().map(header_match).collect(),
        query_params: m
            .query_params
            .iter()
            .map(|q| http_route::QueryParamMatch {
                name: q.name.clone(),
                value: Some(match &q.value {
                    ValueMatch::Exact(v) => Value::Exact(v.clone()),
                    ValueMatch::Regex(re) => Value::Regex(re.clone()),
                }),
            })
            .collect(),
        method: m.method.clone().map(Into::into),
    }
}

fn header_match(h: &NameMatch) -> http_route::HeaderMatch {
    use http_route::header_match::Value;
    http_route::HeaderMatch {
        name: h.name.clone(),
        value: Some(match &h.value {
            ValueMatch::Exact(v) => Value::Exact(v.clone().into_bytes()),
            ValueMatch::Regex(re) => Value::Regex(re.clone()),
        }),
    }
}

fn grpc_match(m: &GrpcMatch) -> grpc_route::GrpcRouteMatch {
    grpc_route::GrpcRouteMatch {
        rpc: Some(grpc_route::GrpcRpcMatch {
            service: m.service.clone().unwrap_or_default(),
            method: m.method.clone().unwrap_or_default(),
        }),
        headers: m.headers.iter().map(header_match).collect(),
    }
}

fn default_grpc_route() -> pb::GrpcRoute {
    pb::GrpcRoute {
        metadata: Some(default_metadata("default")),
        hosts: Vec::new(),
        authorizations: Vec::new(),
        rules: vec![pb::grpc_route::Rule {
            matches: vec![grpc_route::GrpcRouteMatch {
                rpc: Some(grpc_route::GrpcRpcMatch::default()),
                headers: Vec::new(),
            }],
            filters: Vec::new(),
        }],
    }
}

fn default_metadata(name: &str) -> meta::Metadata {
    meta::Metadata {
        kind: Some(meta::metadata::Kind::Default(name.to_string())),
    }
}
