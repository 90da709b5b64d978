//! Choosing an endpoint for each request: the balancer of one logical target.
//!
//! A [`Balancer`] reads its target's latest [`Destination`] from discovery, keeps every
//! endpoint's load and failure record across updates, and picks one endpoint per request
//! (or per TCP connection):
//!
//! 1. a backend, by weight, when discovery split the target (a dtab union, a profile's
//!    traffic split);
//! 2. an endpoint of that backend that is not ejected ([`accrual`]), by the configured
//!    [`Algorithm`]: power of two choices over peak-EWMA cost (the default, as Linkerd),
//!    over requests in flight, or round robin.
//!
//! When the chosen backend has no endpoint to offer (none discovered, or all ejected) the
//! pick fails at once: the request gets a 503, it never queues. An answer that does not
//! know the target sends it to its original destination. A [`Picked`] endpoint counts as in
//! flight until the response head (or the failure) is recorded on it.

pub mod accrual;
pub mod budget;
pub mod load;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use accrual::Accrual;
pub use accrual::AccrualSettings;
use load::Load;

use crate::outbound::discover::{Destination, Endpoint, Resolution};
use crate::outbound::profile::{Profile, Route};
use budget::{Budget, BudgetSettings};

/// How a balancer chooses among a backend's endpoints (`MESH_PROXY_BALANCER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Power of two choices, the lower peak-EWMA cost wins.
    #[default]
    PeakEwma,
    /// Power of two choices, fewer requests in flight wins.
    LeastLoaded,
    RoundRobin,
}

impl Algorithm {
    pub const NAMES: &'static [&'static str] = &["peak-ewma", "least-loaded", "round-robin"];

    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "peak-ewma" | "ewma" => Some(Algorithm::PeakEwma),
            "least-loaded" => Some(Algorithm::LeastLoaded),
            "round-robin" => Some(Algorithm::RoundRobin),
            _ => None,
        }
    }
}

/// A balancer's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalanceSettings {
    pub algorithm: Algorithm,
    pub accrual: AccrualSettings,
    /// How long a request waits for discovery's first answer before the target is treated
    /// as unknown.
    pub discovery_wait: DiscoveryWait,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscoveryWait(pub Duration);

impl Default for DiscoveryWait {
    fn default() -> Self {
        DiscoveryWait(Duration::from_secs(3))
    }
}

/// One endpoint as its balancer knows it.
#[derive(Debug)]
pub struct EndpointState {
    pub endpoint: Endpoint,
    load: Load,
    accrual: Accrual,
    /// Whether failures count against this endpoint: only discovered endpoints are
    /// ejected; an original destination is all there is.
    accrues: bool,
}

impl EndpointState {
    fn new(endpoint: Endpoint, accrues: bool, now: Instant, rtt_ns: f64) -> Arc<EndpointState> {
        Arc::new(EndpointState {
            endpoint,
            load: Load::new(now, rtt_ns),
            accrual: Accrual::default(),
            accrues,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr
    }
}

/// Why no endpoint could be picked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// Discovery knows the target and it has no endpoint that may take a request.
    #[error("service unavailable: {name} has no available endpoints")]
    Unavailable { name: Arc<str> },
    /// A name that no source knows, with no original destination to fall back to.
    #[error("{name} is not known to service discovery")]
    Unknown { name: Arc<str> },
}

/// The balancer of one logical target.
#[derive(Debug)]
pub struct Balancer {
    name: Arc<str>,
    fallback: Option<SocketAddr>,
    settings: BalanceSettings,
    state: Mutex<State>,
    rr: AtomicUsize,
    /// Retries to this target, from its profile's budget.
    budget: Budget,
}

#[derive(Debug)]
struct State {
    source: Option<watch::Receiver<Arc<Destination>>>,
    current: Arc<Snapshot>,
}

/// The endpoints of one answer, with the records of those seen before.
#[derive(Debug, Default)]
struct Snapshot {
    pending: bool,
    backends: Box<[BackendSet]>,
    total_weight: u64,
    profile: Option<Arc<Profile>>,
    /// No source knows the target and there is no original destination.
    unknown: bool,
}

#[derive(Debug)]
struct BackendSet {
    name: Arc<str>,
    weight: u64,
    endpoints: Box<[Arc<EndpointState>]>,
}

/// One request's read of a balancer's current answer (see [`Balancer::view`]).
pub struct View(Arc<Snapshot>);

impl View {
    /// The profile route a request takes, if the target has a profile and one matches.
    pub fn route(&self, method: &http::Method, path: &str) -> Option<RouteRef> {
        let profile = self.0.profile.clone()?;
        let index = profile
            .routes
            .iter()
            .position(|r| r.condition.matches(method, path))?;
        Some(RouteRef { profile, index })
    }

    /// Whether a request's pick may be a meshed proxy that takes HTTP/1 requests over
    /// HTTP/2 (`l5d-orig-proto`): an endpoint of the answer is, or there is no answer yet.
    pub fn h2_hinted(&self) -> bool {
        self.0.pending
            || self
                .0
                .backends
                .iter()
                .any(|s| s.endpoints.iter().any(|e| e.endpoint.h2_hint))
    }
}

impl Balancer {
    /// A balancer with one endpoint and no discovery: inbound's application, or an
    /// original destination no source is asked about.
    pub fn fixed(addr: SocketAddr, settings: BalanceSettings) -> Balancer {
        let snapshot = Snapshot::fallback(addr, Instant::now());
        Balancer {
            name: addr.to_string().into(),
            fallback: Some(addr),
            settings,
            state: Mutex::new(State {
                source: None,
                current: Arc::new(snapshot),
            }),
            rr: AtomicUsize::new(0),
            budget: Budget::new(BudgetSettings::default(), Instant::now()),
        }
    }

    /// A balancer for a target nothing knows: every pick fails.
    pub fn unknown(name: &str) -> Balancer {
        Balancer {
            name: name.into(),
            fallback: None,
            settings: BalanceSettings::default(),
            state: Mutex::new(State {
                source: None,
                current: Arc::new(Snapshot {
                    unknown: true,
                    ..Snapshot::default()
                }),
            }),
            rr: AtomicUsize::new(0),
            budget: Budget::new(BudgetSettings::default(), Instant::now()),
        }
    }

    /// A balancer over what `source` discovers of `name`; `fallback` is where traffic goes
    /// while the source does not know it.
    pub fn discovered(
        name: &str,
        source: watch::Receiver<Arc<Destination>>,
        fallback: Option<SocketAddr>,
        settings: BalanceSettings,
    ) -> Balancer {
        let mut source = source;
        let answer = source.borrow_and_update().clone();
        let budget = answer
            .profile
            .as_ref()
            .map(|p| p.retry_budget)
            .unwrap_or_default();
        let current = Snapshot::build(&answer, None, fallback, Instant::now());
        Balancer {
            name: name.into(),
            fallback,
            settings,
            state: Mutex::new(State {
                source: Some(source),
                current: Arc::new(current),
            }),
            rr: AtomicUsize::new(0),
            budget: Budget::new(budget, Instant::now()),
        }
    }

    /// The current answer's endpoints, rebuilt first if discovery changed it.
    fn snapshot(&self) -> Arc<Snapshot> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { source, current } = &mut *state;
        if let Some(rx) = source
            && rx.has_changed().unwrap_or(false)
        {
            let answer = rx.borrow_and_update().clone();
            if let Some(p) = &answer.profile {
                self.budget.set(p.retry_budget);
            }
            *current = Arc::new(Snapshot::build(
                &answer,
                Some(current),
                self.fallback,
                Instant::now(),
            ));
        }
        current.clone()
    }

    /// The current answer, read once: a request asks it for its route, the H2 hint and its
    /// first pick, under one lock.
    pub fn view(&self) -> View {
        View(self.snapshot())
    }

    /// The target's retry budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Picks the endpoint for one request or connection. Waits only for discovery's first
    /// answer, at most the configured discovery wait.
    pub async fn pick(&self) -> Result<Picked, PickError> {
        self.pick_in(None).await
    }

    /// As [`Balancer::pick`], from the view the request already read, if it has one.
    pub async fn pick_in(&self, view: Option<View>) -> Result<Picked, PickError> {
        let mut snapshot = match view {
            Some(v) => v.0,
            None => self.snapshot(),
        };
        if snapshot.pending {
            self.first_answer().await;
            snapshot = self.snapshot();
        }
        self.choose(&snapshot, Instant::now())
    }

    async fn first_answer(&self) {
        let rx = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.source.clone()
        };
        let Some(mut rx) = rx else { return };
        let wait = self.settings.discovery_wait.0;
        let answered = rx.wait_for(|d| d.resolution != Resolution::Pending);
        if tokio::time::timeout(wait, answered).await.is_err() {
            tracing::debug!(name = %self.name, "no answer from discovery; treating the target as unknown");
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.current.pending {
                let unknown = Destination::unknown();
                state.current = Arc::new(Snapshot::build(
                    &unknown,
                    None,
                    self.fallback,
                    Instant::now(),
                ));
            }
        }
    }

    fn choose(&self, snapshot: &Snapshot, now: Instant) -> Result<Picked, PickError> {
        if snapshot.unknown || snapshot.pending {
            return Err(PickError::Unknown {
                name: self.name.clone(),
            });
        }
        let set = match &*snapshot.backends {
            [one] => one,
            sets => {
                let mut at = fastrand::u64(0..snapshot.total_weight.max(1));
                let mut chosen = sets.first();
                for s in sets {
                    if at < s.weight {
                        chosen = Some(s);
                        break;
                    }
                    at -= s.weight;
                }
                chosen.ok_or_else(|| self.unavailable(None))?
            }
        };
        let endpoint = self
            .choose_endpoint(&set.endpoints, now)
            .ok_or_else(|| self.unavailable(Some(&set.name)))?;
        endpoint.load.start();
        Ok(Picked {
            endpoint: endpoint.clone(),
            settings: self.settings.accrual,
            done: false,
            routed: snapshot
                .profile
                .as_ref()
                .is_some_and(|p| !p.routes.is_empty()),
        })
    }

    fn unavailable(&self, set: Option<&Arc<str>>) -> PickError {
        PickError::Unavailable {
            name: set.unwrap_or(&self.name).clone(),
        }
    }

    fn choose_endpoint<'a>(
        &self,
        endpoints: &'a [Arc<EndpointState>],
        now: Instant,
    ) -> Option<&'a Arc<EndpointState>> {
        let ok = |e: &Arc<EndpointState>| !e.accrues || e.accrual.available(now);
        match endpoints {
            [] => None,
            [one] => ok(one).then_some(one),
            _ if self.settings.algorithm == Algorithm::RoundRobin => {
                let start = self.rr.fetch_add(1, Relaxed);
                (0..endpoints.len())
                    .map(|i| &endpoints[(start + i) % endpoints.len()])
                    .find(|e| ok(e))
            }
            _ => {
                let n = endpoints.len();
                let a = fastrand::usize(0..n);
                let b = (a + 1 + fastrand::usize(0..n - 1)) % n;
                let (ea, eb) = (&endpoints[a], &endpoints[b]);
                match (ok(ea), ok(eb)) {
                    (true, true) => Some(if self.cost(ea, now) <= self.cost(eb, now) {
                        ea
                    } else {
                        eb
                    }),
                    (true, false) => Some(ea),
                    (false, true) => Some(eb),
                    // Both ejected: any other that is not, else none.
                    (false, false) => (0..n).map(|i| &endpoints[(a + i) % n]).find(|e| ok(e)),
                }
            }
        }
    }

    fn cost(&self, e: &EndpointState, now: Instant) -> f64 {
        match self.settings.algorithm {
            Algorithm::LeastLoaded => f64::from(e.load.pending()),
            _ => e.load.cost(now),
        }
    }

    /// The endpoints of the current answer, for tests and diagnostics: address, in flight,
    /// ejected.
    pub fn endpoints(&self) -> Vec<(SocketAddr, u32, bool)> {
        let now = Instant::now();
        self.snapshot()
            .backends
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .map(|e| (e.addr(), e.load.pending(), e.accrual.is_ejected(now)))
            .collect()
    }
}

impl Snapshot {
    fn fallback(addr: SocketAddr, now: Instant) -> Snapshot {
        Snapshot {
            pending: false,
            backends: Box::new([BackendSet {
                name: addr.to_string().into(),
                weight: 1,
                endpoints: Box::new([EndpointState::new(
                    Endpoint::bare(addr),
                    false,
                    now,
                    load::DEFAULT_RTT.as_nanos() as f64,
                )]),
            }]),
            total_weight: 1,
            profile: None,
            unknown: false,
        }
    }

    /// The snapshot of `answer`, keeping the records of endpoints `previous` had.
    fn build(
        answer: &Destination,
        previous: Option<&Snapshot>,
        fallback: Option<SocketAddr>,
        now: Instant,
    ) -> Snapshot {
        let backends = match &answer.resolution {
            Resolution::Pending => {
                return Snapshot {
                    pending: true,
                    profile: answer.profile.clone(),
                    ..Snapshot::default()
                };
            }
            Resolution::Unknown => {
                let mut s = match fallback {
                    Some(addr) => match previous.and_then(|p| p.find(addr, false)) {
                        Some(same) => Snapshot {
                            backends: Box::new([BackendSet {
                                name: addr.to_string().into(),
                                weight: 1,
                                endpoints: Box::new([same]),
                            }]),
                            total_weight: 1,
                            ..Snapshot::default()
                        },
                        None => Snapshot::fallback(addr, now),
                    },
                    None => Snapshot {
                        unknown: true,
                        ..Snapshot::default()
                    },
                };
                s.profile = answer.profile.clone();
                return s;
            }
            Resolution::Backends(backends) => backends,
        };
        let mut known: HashMap<SocketAddr, Arc<EndpointState>> = HashMap::new();
        if let Some(p) = previous {
            for e in p.backends.iter().flat_map(|s| s.endpoints.iter()) {
                if e.accrues {
                    known.insert(e.addr(), e.clone());
                }
            }
        }
        // A new endpoint starts at the mean estimate of those already measured, so that it
        // competes with them at once instead of waiting for their estimates to decay.
        let initial = match known.len() {
            0 => load::DEFAULT_RTT.as_nanos() as f64,
            n => known.values().map(|e| e.load.estimate_ns(now)).sum::<f64>() / n as f64,
        };
        let sets: Box<[BackendSet]> = backends
            .iter()
            .filter(|b| b.weight > 0)
            .map(|b| BackendSet {
                name: b.name.clone(),
                weight: u64::from(b.weight),
                endpoints: b
                    .endpoints
                    .iter()
                    .map(|e| match known.get(&e.addr) {
                        Some(k) if k.endpoint == *e => k.clone(),
                        _ => EndpointState::new(e.clone(), true, now, initial),
                    })
                    .collect(),
            })
            .collect();
        Snapshot {
            pending: false,
            total_weight: sets.iter().map(|s| s.weight).sum(),
            backends: if sets.is_empty() {
                // Every backend weighs nothing: the target has nowhere to go.
                Box::new([BackendSet {
                    name: "".into(),
                    weight: 1,
                    endpoints: Box::new([]),
                }])
            } else {
                sets
            },
            profile: answer.profile.clone(),
            unknown: false,
        }
    }

    fn find(&self, addr: SocketAddr, accrues: bool) -> Option<Arc<EndpointState>> {
        self.backends
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .find(|e| e.addr() == addr && e.accrues == accrues)
            .cloned()
    }
}

/// A profile route, as a request found it.
#[derive(Clone, Debug)]
pub struct RouteRef {
    profile: Arc<Profile>,
    index: usize,
}

impl RouteRef {
    pub fn route(&self) -> Option<&Route> {
        self.profile.routes.get(self.index)
    }

    pub fn name(&self) -> &str {
        self.route().map_or("", |r| r.name.as_str())
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.route().and_then(|r| r.timeout)
    }

    pub fn is_retryable(&self) -> bool {
        self.route().is_some_and(|r| r.is_retryable)
    }

    /// Whether a response with `status` failed, by the route's response classes.
    pub fn is_failure(&self, status: u16) -> bool {
        let Ok(status) = http::StatusCode::from_u16(status) else {
            return false;
        };
        self.route()
            .map_or(status.is_server_error(), |r| r.is_failure(status))
    }
}

/// An endpoint picked for one request: in flight until its outcome is recorded or it is
/// dropped (a cancelled request records nothing).
#[derive(Debug)]
pub struct Picked {
    endpoint: Arc<EndpointState>,
    settings: AccrualSettings,
    done: bool,
    routed: bool,
}

impl Picked {
    /// Whether the target has profile routes (which may retry or time out requests).
    pub fn routed(&self) -> bool {
        self.routed
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint.endpoint
    }

    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr()
    }

    /// The response head arrived `rtt` after the request started: counts toward the
    /// latency estimate, and a 5xx as a failure.
    pub fn responded(&mut self, status: u16, rtt: Duration) {
        if self.done {
            return;
        }
        let now = Instant::now();
        self.endpoint.load.observe(rtt, now);
        self.finish(status < 500, now);
    }

    /// A connection (for opaque TCP) opened after `rtt`.
    pub fn connected(&mut self, rtt: Duration) {
        self.responded(200, rtt);
    }

    /// The request failed at the endpoint: no connection, or the connection broke before
    /// a response.
    pub fn failed(&mut self) {
        if self.done {
            return;
        }
        self.finish(false, Instant::now());
    }

    /// The endpoint could not be connected to: nothing was sent, so the request may go
    /// to another pick, and the endpoint (if discovered) is ejected at once.
    pub fn unreachable(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.endpoint.load.end();
        if self.endpoint.accrues {
            self.endpoint.accrual.eject(Instant::now(), &self.settings);
        }
    }

    /// Whether the endpoint came from discovery (another pick may find another one).
    pub fn is_discovered(&self) -> bool {
        self.endpoint.accrues
    }

    fn finish(&mut self, ok: bool, now: Instant) {
        self.done = true;
        self.endpoint.load.end();
        if self.endpoint.accrues {
            self.endpoint.accrual.record(ok, now, &self.settings);
        }
    }
}

impl Drop for Picked {
    fn drop(&mut self) {
        if !self.done {
            self.endpoint.load.end();
        }
    }
}
