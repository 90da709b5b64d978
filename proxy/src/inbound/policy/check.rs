//! The checks of one accepted connection: per connection for opaque TCP, per request for
//! HTTP, each against the port's policy as it is at that moment, counted as Linkerd counts
//! them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::Request;

use super::store::PortPolicy;
use super::{Authorization, ClientTls, Meta, Protocol, ServerPolicy, first_permit, routes};
use crate::metrics::{AuthzCounter, AuthzEvent, AuthzKey, Metrics};

/// Why an HTTP request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpDenied {
    /// No authorization of the request's route permits this client (403; gRPC 7,
    /// PERMISSION_DENIED). Linkerd's wording.
    #[error("unauthorized request on route")]
    Unauthorized,
    /// The policy has routes and the request matches none of them (404; gRPC 5,
    /// NOT_FOUND). Linkerd's wording.
    #[error("no route found for request")]
    NoRoute,
}

/// Why an opaque TCP connection was refused: no authorization of its server permits the
/// client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unauthorized connection on server {server}")]
pub struct TcpDenied {
    pub server: Arc<Meta>,
}

/// What the inbound side knows of one accepted connection: who the client is, the address
/// it reached, how it proved itself, and a live view of that port's policy. The accept
/// loop makes it; the HTTP or the opaque TCP stage checks it.
#[derive(Debug)]
pub struct ConnPolicy {
    client: SocketAddr,
    target: SocketAddr,
    tls: ClientTls,
    port: PortPolicy,
    metrics: Arc<Metrics>,
    /// The counters of the last decisions, so a keep-alive connection's requests do not
    /// build label sets; each holds the policy it was made under.
    cache: Mutex<Vec<Decision>>,
}

#[derive(Debug)]
struct Decision {
    policy: Arc<ServerPolicy>,
    /// The route's rule, by address inside `policy`; 0 for the default route and TCP.
    rule: usize,
    event: AuthzEvent,
    outcome: Result<(), HttpDenied>,
    counter: Arc<AuthzCounter>,
    /// Allowed by Linkerd's `audit` authorization: logged each time.
    audit: bool,
}

/// Decisions kept per connection: enough for a few routes.
const CACHED_DECISIONS: usize = 8;

impl ConnPolicy {
    pub fn new(
        client: SocketAddr,
        target: SocketAddr,
        tls: ClientTls,
        port: PortPolicy,
        metrics: Arc<Metrics>,
    ) -> ConnPolicy {
        ConnPolicy {
            client,
            target,
            tls,
            port,
            metrics,
            cache: Mutex::new(Vec::new()),
        }
    }

    pub fn client(&self) -> SocketAddr {
        self.client
    }

    pub fn tls(&self) -> &ClientTls {
        &self.tls
    }

    /// Whether the port's policy says its traffic is opaque (no protocol detection).
    pub fn is_opaque(&self) -> bool {
        matches!(
            self.port.current().protocol,
            Protocol::Opaque | Protocol::Tls
        )
    }

    /// Checks an opaque TCP connection against the port's server authorizations.
    pub fn check_tcp(&self) -> Result<(), TcpDenied> {
        let policy = self.port.current();
        let permit = first_permit(&policy.authorizations, self.client.ip(), &self.tls);
        let event = match permit {
            Some(_) => AuthzEvent::TcpAllow,
            None => AuthzEvent::TcpDeny,
        };
        self.count(&policy, 0, event, None, permit, Ok(()));
        match permit {
            Some(_) => Ok(()),
            None => Err(TcpDenied {
                server: policy.meta.clone(),
            }),
        }
    }

    /// Whether the port's server authorizations would let this connection through as
    /// opaque TCP now; counts nothing.
    pub fn tcp_permitted(&self) -> bool {
        let policy = self.port.current();
        first_permit(&policy.authorizations, self.client.ip(), &self.tls).is_some()
    }

    /// Whether the connection, allowed when it opened, is still allowed by the port's
    /// current policy; counts `inbound_tcp_authz_terminate_total` when not.
    pub fn recheck_tcp(&self) -> bool {
        let policy = self.port.current();
        if first_permit(&policy.authorizations, self.client.ip(), &self.tls).is_some() {
            return true;
        }
        self.count(&policy, 0, AuthzEvent::TcpTerminate, None, None, Ok(()));
        false
    }

    /// Resolves when the port's policy changes (never, without a control plane).
    pub async fn changed(&mut self) {
        self.port.changed().await;
    }

    /// Checks one HTTP request: its route, then that route's authorizations.
    pub fn check_http<B>(&self, req: &Request<B>) -> Result<(), HttpDenied> {
        let policy = self.port.current();
        if policy.http_routes.is_empty() {
            return self.check_default_route(policy);
        }
        match routes::find(&policy.http_routes, req) {
            Some(rule) => {
                let id = rule as *const routes::Rule as usize;
                let authorizations = rule.authorizations.clone();
                let meta = rule.meta.clone();
                self.check_route(&policy, id, &meta, &authorizations)
            }
            None => {
                if let Some(outcome) = self.cached(&policy, 1) {
                    return outcome;
                }
                let outcome = Err(HttpDenied::NoRoute);
                let event = AuthzEvent::HttpRouteNotFound;
                self.count(&policy, 1, event, None, None, outcome.clone());
                outcome
            }
        }
    }

    /// Checks a request without looking at it: possible when the policy has no routes.
    /// `None` means the request must go to [`ConnPolicy::check_http`].
    pub fn check_http_unrouted(&self) -> Option<Result<(), HttpDenied>> {
        let policy = self.port.current();
        policy
            .http_routes
            .is_empty()
            .then(|| self.check_default_route(policy))
    }

    fn check_default_route(&self, policy: Arc<ServerPolicy>) -> Result<(), HttpDenied> {
        let authorizations = policy.authorizations.clone();
        self.check_route(&policy, 0, &default_route(), &authorizations)
    }

    fn check_route(
        &self,
        policy: &Arc<ServerPolicy>,
        rule: usize,
        route: &Arc<Meta>,
        authorizations: &[Authorization],
    ) -> Result<(), HttpDenied> {
        if let Some(outcome) = self.cached(policy, rule) {
            return outcome;
        }
        let permit = first_permit(authorizations, self.client.ip(), &self.tls);
        let (event, outcome) = match permit {
            Some(_) => (AuthzEvent::HttpAllow, Ok(())),
            None => (AuthzEvent::HttpDeny, Err(HttpDenied::Unauthorized)),
        };
        self.count(policy, rule, event, Some(route), permit, outcome.clone());
        outcome
    }

    /// Counts a decision made before under the same policy and rule, and returns it.
    fn cached(&self, policy: &Arc<ServerPolicy>, rule: usize) -> Option<Result<(), HttpDenied>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let d = cache.iter().find(|d| {
            Arc::ptr_eq(&d.policy, policy)
                && d.rule == rule
                && !matches!(d.event, AuthzEvent::TcpAllow | AuthzEvent::TcpDeny)
        })?;
        d.counter.incr();
        if d.audit {
            self.log_audit("request");
        }
        Some(d.outcome.clone())
    }

    fn count(
        &self,
        policy: &Arc<ServerPolicy>,
        rule: usize,
        event: AuthzEvent,
        route: Option<&Arc<Meta>>,
        permit: Option<&Authorization>,
        outcome: Result<(), HttpDenied>,
    ) {
        let audit = permit.is_some_and(|a| a.meta.is_audit());
        if audit {
            let what = match event {
                AuthzEvent::TcpAllow => "connection",
                _ => "request",
            };
            self.log_audit(what);
        }
        let counter = self.metrics.authz(AuthzKey {
            event,
            target: self.target,
            server: (*policy.meta).clone(),
            route: route.map(|r| (**r).clone()),
            authz: permit.map(|a| (*a.meta).clone()),
            tls: self.tls.clone(),
        });
        counter.incr();
        if matches!(
            event,
            AuthzEvent::TcpAllow | AuthzEvent::TcpDeny | AuthzEvent::TcpTerminate
        ) {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Decisions under a policy that has been replaced will not be asked for again.
        cache.retain(|d| Arc::ptr_eq(&d.policy, policy));
        if cache.len() >= CACHED_DECISIONS {
            cache.remove(0);
        }
        cache.push(Decision {
            policy: policy.clone(),
            rule,
            event,
            outcome,
            counter,
            audit,
        });
    }

    /// At `info` at most once a second (with the number left out), else at `debug`: a
    /// client can send requests faster than a log should grow.
    fn log_audit(&self, what: &'static str) {
        let (client, target, tls) = (self.client, self.target, &self.tls);
        match crate::throttle::POLICY_AUDIT.admit() {
            Some(skipped) => tracing::info!(
                %client, %target, ?tls, skipped, "{what} allowed by the audit policy"
            ),
            None => tracing::debug!(%client, %target, ?tls, "{what} allowed by the audit policy"),
        }
    }
}

/// The route of a policy without routes, as Linkerd names it.
fn default_route() -> Arc<Meta> {
    static DEFAULT: std::sync::OnceLock<Arc<Meta>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(Meta::default_named("default")))
        .clone()
}
