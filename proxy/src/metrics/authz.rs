//! Linkerd's inbound authorization counters: `inbound_http_authz_allow_total`,
//! `inbound_http_authz_deny_total`, `inbound_http_route_not_found_total`,
//! `inbound_tcp_authz_allow_total`, `inbound_tcp_authz_deny_total` and
//! `inbound_tcp_authz_terminate_total`.
//!
//! Labels, in Linkerd's order: `target_addr` (with mesh's `target_ip`, `target_port`), the
//! server's `srv_group`, `srv_kind`, `srv_name`, `srv_port`; for HTTP the route's
//! `route_group`, `route_kind`, `route_name`; for an allowed request or connection the
//! authorization's `authz_group`, `authz_kind`, `authz_name`; then `tls` with `client_id`
//! or `no_tls_reason`.

use mesh_names::metrics as m;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::family::{FoldKey, Series};
use super::labels::escape_into;
use crate::inbound::policy::{ClientTls, Meta};

/// Which counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuthzEvent {
    HttpAllow,
    HttpDeny,
    HttpRouteNotFound,
    TcpAllow,
    TcpDeny,
    TcpTerminate,
}

impl AuthzEvent {
    pub const ALL: [AuthzEvent; 6] = [
        AuthzEvent::HttpAllow,
        AuthzEvent::HttpDeny,
        AuthzEvent::HttpRouteNotFound,
        AuthzEvent::TcpAllow,
        AuthzEvent::TcpDeny,
        AuthzEvent::TcpTerminate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AuthzEvent::HttpAllow => m::INBOUND_HTTP_AUTHZ_ALLOW_TOTAL,
            AuthzEvent::HttpDeny => m::INBOUND_HTTP_AUTHZ_DENY_TOTAL,
            AuthzEvent::HttpRouteNotFound => m::INBOUND_HTTP_ROUTE_NOT_FOUND_TOTAL,
            AuthzEvent::TcpAllow => m::INBOUND_TCP_AUTHZ_ALLOW_TOTAL,
            AuthzEvent::TcpDeny => m::INBOUND_TCP_AUTHZ_DENY_TOTAL,
            AuthzEvent::TcpTerminate => m::INBOUND_TCP_AUTHZ_TERMINATE_TOTAL,
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            AuthzEvent::HttpAllow => "Inbound HTTP requests that were authorized.",
            AuthzEvent::HttpDeny => "Inbound HTTP requests refused by authorization policy.",
            AuthzEvent::HttpRouteNotFound => {
                "Inbound HTTP requests that matched no route of their server's policy."
            }
            AuthzEvent::TcpAllow => "Inbound TCP connections that were authorized.",
            AuthzEvent::TcpDeny => "Inbound TCP connections refused by authorization policy.",
            AuthzEvent::TcpTerminate => {
                "Inbound TCP connections closed because a policy change no longer authorized them."
            }
        }
    }
}

/// The labels of one authorization counter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthzKey {
    pub event: AuthzEvent,
    /// The address the client reached (the pod's address and the port).
    pub target: SocketAddr,
    pub server: Meta,
    pub route: Option<Meta>,
    pub authz: Option<Meta>,
    pub tls: ClientTls,
}

impl FoldKey for AuthzKey {
    /// Policies come from the operator, but the target and the client's identity from
    /// peers: an overflow series keeps the policy labels and empties those.
    fn folded(&self) -> Self {
        AuthzKey {
            target: SocketAddr::from(([0, 0, 0, 0], 0)),
            tls: match &self.tls {
                ClientTls::Authenticated(_) => ClientTls::Authenticated(String::new()),
                other => other.clone(),
            },
            ..self.clone()
        }
    }
}

/// One counter.
#[derive(Debug)]
pub struct AuthzCounter {
    pub(super) event: AuthzEvent,
    pub(super) labels: String,
    pub(super) count: AtomicU64,
}

impl AuthzCounter {
    pub fn incr(&self) {
        self.count.fetch_add(1, Relaxed);
    }
}

impl Series<AuthzKey> for AuthzCounter {
    fn new(key: &AuthzKey, overflow: bool) -> Self {
        let mut out = String::new();
        if overflow {
            out.push_str("target_addr=\"\",target_ip=\"\",target_port=\"\"");
        } else {
            let t = key.target;
            let _ = write!(
                out,
                "target_addr=\"{t}\",target_ip=\"{}\",target_port=\"{}\"",
                t.ip(),
                t.port()
            );
        }
        meta(&mut out, "srv", &key.server);
        let _ = write!(out, ",srv_port=\"{}\"", key.target.port());
        if let Some(route) = &key.route {
            meta(&mut out, "route", route);
        }
        if let Some(authz) = &key.authz {
            meta(&mut out, "authz", authz);
        }
        match &key.tls {
            ClientTls::Plain => {
                out.push_str(",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"")
            }
            ClientTls::Unauthenticated => out.push_str(",tls=\"true\""),
            ClientTls::Authenticated(id) => {
                out.push_str(",tls=\"true\",client_id=\"");
                escape_into(&mut out, id);
                out.push('"');
            }
        }
        if overflow {
            out.push_str(",overflow=\"true\"");
        }
        AuthzCounter {
            event: key.event,
            labels: out,
            count: AtomicU64::new(0),
        }
    }

    fn activity(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

fn meta(out: &mut String, prefix: &str, m: &Meta) {
    for (name, value) in [("group", &m.group), ("kind", &m.kind), ("name", &m.name)] {
        let _ = write!(out, ",{prefix}_{name}=\"");
        escape_into(out, value);
        out.push('"');
    }
}
