//! The checks of one accepted connection: per connection for opaque TCP, per request for
//! HTTP, each against the port's policy as it is at that moment, counted as Linkerd counts
//! them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

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
    metrics: Arc<Metrics>,
    /// Taken once per check: the streams of an HTTP/2 connection share it.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    port: PortPolicy,
    /// The port's policy as last seen; replaced when the port's changes.
    policy: Arc<ServerPolicy>,
    /// The counters of the last decisions under `policy`, so a keep-alive connection's
    /// requests do not build label sets.
    decisions: Vec<Decision>,
}

impl State {
    /// Catches up with the port's policy, forgetting the decisions made under the old one.
    fn refresh(&mut self) {
        if self.port.has_changed() {
            let policy = self.port.update();
            self.replace(policy);
        }
    }

    fn replace(&mut self, policy: Arc<ServerPolicy>) {
        self.policy = policy;
        self.decisions.clear();
    }
}

#[derive(Debug)]
struct Decision {
    /// The route's rule, by address inside the policy; 0 for the default route, 1 for
    /// no route.
    rule: usize,
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
        mut port: PortPolicy,
        metrics: Arc<Metrics>,
    ) -> ConnPolicy {
        let policy = port.update();
        ConnPolicy {
            client,
            target,
            tls,
            metrics,
            state: Mutex::new(State {
                port,
                policy,
                decisions: Vec::new(),
            }),
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
        let state = self.state();
        matches!(state.policy.protocol, Protocol::Opaque | Protocol::Tls)
    }

    /// Checks an opaque TCP connection against the port's server authorizations.
    pub fn check_tcp(&self) -> Result<(), TcpDenied> {
        let state = self.state();
        let policy = &state.policy;
        let permit = first_permit(&policy.authorizations, self.client.ip(), &self.tls);
        let event = match permit {
            Some(_) => AuthzEvent::TcpAllow,
            None => AuthzEvent::TcpDeny,
        };
        self.count(policy, event, None, permit);
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
        let state = self.state();
        first_permit(&state.policy.authorizations, self.client.ip(), &self.tls).is_some()
    }

    /// Whether the connection, allowed when it opened, is still allowed by the port's
    /// current policy; counts `inbound_tcp_authz_terminate_total` when not.
    pub fn recheck_tcp(&self) -> bool {
        let state = self.state();
        let policy = &state.policy;
        if first_permit(&policy.authorizations, self.client.ip(), &self.tls).is_some() {
            return true;
        }
        self.count(policy, AuthzEvent::TcpTerminate, None, None);
        false
    }

    /// Resolves when the port's policy changes (never, without a control plane).
    pub async fn changed(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let policy = state.port.changed().await;
        state.replace(policy);
    }

    /// Checks one HTTP request: its route, then that route's authorizations.
    pub fn check_http<B>(&self, req: &Request<B>) -> Result<(), HttpDenied> {
        let mut state = self.state();
        let State {
            policy, decisions, ..
        } = &mut *state;
        if policy.http_routes.is_empty() {
            return self.check_default_route(policy, decisions);
        }
        match routes::find(&policy.http_routes, req) {
            Some(rule) => {
                let id = rule as *const routes::Rule as usize;
                let route = (id, &rule.meta);
                self.check_route(policy, decisions, route, &rule.authorizations)
            }
            None => {
                if let Some(outcome) = self.cached(decisions, NO_ROUTE) {
                    return outcome;
                }
                let outcome = Err(HttpDenied::NoRoute);
                let event = AuthzEvent::HttpRouteNotFound;
                let counter = self.count(policy, event, None, None);
                remember(decisions, NO_ROUTE, outcome.clone(), counter, false);
                outcome
            }
        }
    }

    /// Checks a request without looking at it: possible when the policy has no routes.
    /// `None` means the request must go to [`ConnPolicy::check_http`].
    pub fn check_http_unrouted(&self) -> Option<Result<(), HttpDenied>> {
        let mut state = self.state();
        let State {
            policy, decisions, ..
        } = &mut *state;
        policy
            .http_routes
            .is_empty()
            .then(|| self.check_default_route(policy, decisions))
    }

    /// The connection's state, caught up with the port's policy.
    fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.refresh();
        state
    }

    fn check_default_route(
        &self,
        policy: &ServerPolicy,
        decisions: &mut Vec<Decision>,
    ) -> Result<(), HttpDenied> {
        let route = (DEFAULT_ROUTE, default_route());
        self.check_route(policy, decisions, route, &policy.authorizations)
    }

    /// Checks a request against the authorizations of `route` (its rule and its name).
    fn check_route(
        &self,
        policy: &ServerPolicy,
        decisions: &mut Vec<Decision>,
        (rule, name): (usize, &Arc<Meta>),
        authorizations: &[Authorization],
    ) -> Result<(), HttpDenied> {
        if let Some(outcome) = self.cached(decisions, rule) {
            return outcome;
        }
        let permit = first_permit(authorizations, self.client.ip(), &self.tls);
        let (event, outcome) = match permit {
            Some(_) => (AuthzEvent::HttpAllow, Ok(())),
            None => (AuthzEvent::HttpDeny, Err(HttpDenied::Unauthorized)),
        };
        let counter = self.count(policy, event, Some(name), permit);
        let audit = permit.is_some_and(|a| a.meta.is_audit());
        remember(decisions, rule, outcome.clone(), counter, audit);
        outcome
    }

    /// Counts a decision made before under the current policy for `rule`, and returns it.
    fn cached(&self, decisions: &[Decision], rule: usize) -> Option<Result<(), HttpDenied>> {
        let d = decisions.iter().find(|d| d.rule == rule)?;
        d.counter.incr();
        if d.audit {
            self.log_audit("request");
        }
        Some(d.outcome.clone())
    }

    /// Counts a new decision (logged if the audit policy allowed it) and returns its
    /// counter.
    fn count(
        &self,
        policy: &ServerPolicy,
        event: AuthzEvent,
        route: Option<&Arc<Meta>>,
        permit: Option<&Authorization>,
    ) -> Arc<AuthzCounter> {
        if permit.is_some_and(|a| a.meta.is_audit()) {
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
        counter
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

/// The rule of the default route (a policy without routes) and of requests that match no
/// route, among the addresses of real rules (never 0 or 1).
const DEFAULT_ROUTE: usize = 0;
const NO_ROUTE: usize = 1;

/// Keeps a decision for the next requests under the same policy, dropping the oldest.
fn remember(
    decisions: &mut Vec<Decision>,
    rule: usize,
    outcome: Result<(), HttpDenied>,
    counter: Arc<AuthzCounter>,
    audit: bool,
) {
    if decisions.len() >= CACHED_DECISIONS {
        decisions.remove(0);
    }
    decisions.push(Decision {
        rule,
        outcome,
        counter,
        audit,
    });
}

/// The route of a policy without routes, as Linkerd names it.
fn default_route() -> &'static Arc<Meta> {
    static DEFAULT: std::sync::OnceLock<Arc<Meta>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(|| Arc::new(Meta::default_named("default")))
}
