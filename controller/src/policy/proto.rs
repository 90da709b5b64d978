//! An [`InboundServer`] as Linkerd's `io.linkerd.proxy.inbound.Server` message, shaped as
//! Linkerd's policy controller sends it: labels and metadata `{group, kind, name}`, a default
//! HTTP route matching every path when no route resource applies, a probe route for the pod's
//! probe paths, and a default gRPC route.

use linkerd2_proxy_api::{grpc_route, http_route, inbound as pb, meta, net};

use super::index::{
    Authentication, Authorization, AuthzRef, IdentityMatch, InboundServer, Net, NetworkMatch,
    Protocol, ServerRef,
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
            routes: vec![default_grpc_route()],
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

/// The default route (every path; the server's authorizations apply) and, if the pod probes
/// this port, the probe route: `GET` on those paths, open to every network, as Linkerd's
/// default probe networks are.
fn http_routes(server: &InboundServer) -> Vec<pb::HttpRoute> {
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
