//! The balance and discover stages of the outbound stack.
//!
//! `push_balance` fixes how balancers choose and eject endpoints; `push_discover` gives it
//! the sources of answers and keeps one [`Balancer`] per logical target, shared by every
//! connection that goes there, so load and failures are counted once per target.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Outbound;
use super::discover::dns::Dns;
use super::discover::{Endpoint, Resolve};
use crate::balance::{BalanceSettings, Balancer};
use crate::connect::{Connect, ConnectError, Connection, Upstream};
use crate::target::Logical;

/// How long a balancer nobody uses is kept (with its discovery stream).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Logical targets with a balancer at once; past this a target gets an unshared one.
const MAX_TARGETS: usize = 10_000;

/// Endpoints chosen per request, over connections from `Connect`.
#[derive(Debug)]
pub struct Balance {
    connect: Connect,
    settings: BalanceSettings,
}

impl Outbound<Connect> {
    pub fn push_balance(self) -> Outbound<Balance> {
        let settings = self.config.balance;
        self.map(|connect| Balance { connect, settings })
    }
}

/// The outbound `Upstream`: logical target → discovery → balancer.
pub struct Discover {
    balance: Balance,
    sources: Vec<Arc<dyn Resolve>>,
    /// The system resolver, for names in HTTP proxy mode that no source knows.
    dns: Dns,
    /// Whether a request's `Host` names its logical target on a redirected connection:
    /// only when a source resolves names. Otherwise the original destination is the
    /// target, as it was before discovery.
    route_by_host: bool,
    balancers: Mutex<HashMap<Key, Cached>>,
}

impl std::fmt::Debug for Discover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discover")
            .field("sources", &self.sources.len())
            .field("route_by_host", &self.route_by_host)
            .finish_non_exhaustive()
    }
}

/// A logical target, and the original destination it falls back to.
type Key = (Logical, Option<SocketAddr>);

struct Cached {
    balancer: Arc<Balancer>,
    used: Instant,
}

impl Outbound<Balance> {
    /// `sources` are asked in order, then DNS for names in HTTP proxy mode;
    /// `route_by_host` says whether any source resolves names.
    pub fn push_discover(
        self,
        sources: Vec<Arc<dyn Resolve>>,
        route_by_host: bool,
    ) -> Outbound<Arc<Discover>> {
        self.map(|balance| {
            let discover = Arc::new(Discover {
                balance,
                sources,
                dns: Dns::default(),
                route_by_host,
                balancers: Mutex::new(HashMap::new()),
            });
            tokio::spawn(sweep(Arc::downgrade(&discover)));
            discover
        })
    }
}

impl Discover {
    fn key(&self, target: &Logical, authority: Option<&str>) -> Key {
        match (target, authority) {
            (Logical::Addr(orig), Some(auth)) if self.route_by_host => {
                match Logical::from_authority(auth, orig.port()) {
                    Some(name @ Logical::Name(..)) => (name, Some(*orig)),
                    _ => (target.clone(), None),
                }
            }
            _ => (target.clone(), None),
        }
    }

    fn build(&self, (target, fallback): &Key) -> Balancer {
        let settings = self.balance.settings;
        let fallback = match target {
            Logical::Addr(addr) => Some(*addr),
            Logical::Name(..) => *fallback,
        };
        for source in &self.sources {
            if let Some(rx) = source.resolve(target) {
                return Balancer::discovered(&target.to_string(), rx, fallback, settings);
            }
        }
        // A name from a request's `Host` on a redirected connection is never looked up in
        // DNS: its original destination is where the application meant to go.
        if fallback.is_none()
            && let Some(rx) = self.dns.resolve(target)
        {
            return Balancer::discovered(&target.to_string(), rx, None, settings);
        }
        match fallback {
            Some(addr) => Balancer::fixed(addr, settings),
            None => Balancer::unknown(&target.to_string()),
        }
    }

    fn sweep_once(&self) {
        let mut map = self.balancers.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, c| Arc::strong_count(&c.balancer) > 1 || c.used.elapsed() < IDLE_TIMEOUT);
    }
}

impl Upstream for Arc<Discover> {
    fn balancer(&self, target: &Logical, authority: Option<&str>) -> Arc<Balancer> {
        let key = self.key(target, authority);
        let mut map = self.balancers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get_mut(&key) {
            c.used = Instant::now();
            return c.balancer.clone();
        }
        let balancer = Arc::new(self.build(&key));
        if map.len() < MAX_TARGETS {
            map.insert(
                key,
                Cached {
                    balancer: balancer.clone(),
                    used: Instant::now(),
                },
            );
        }
        balancer
    }

    fn tls(&self, endpoint: &Endpoint) -> crate::metrics::Tls {
        self.balance.connect.tls_for(endpoint)
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        self.balance.connect.connect_endpoint(endpoint).await
    }

    async fn connect_opaque(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        self.balance.connect.connect_opaque_endpoint(endpoint).await
    }
}

async fn sweep(discover: std::sync::Weak<Discover>) {
    loop {
        tokio::time::sleep(IDLE_TIMEOUT / 4).await;
        match discover.upgrade() {
            Some(d) => d.sweep_once(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use tokio::sync::watch;

    use super::*;
    use crate::config::Config;
    use crate::metrics::Metrics;
    use crate::outbound::discover::Destination;

    /// A source that knows `web` and every address, and records what it was asked.
    #[derive(Default)]
    struct Fake {
        asked: Mutex<Vec<Logical>>,
        senders: Mutex<Vec<watch::Sender<Arc<Destination>>>>,
    }

    impl Resolve for Fake {
        fn resolve(&self, target: &Logical) -> Option<watch::Receiver<Arc<Destination>>> {
            self.asked.lock().unwrap().push(target.clone());
            let known = match target {
                Logical::Name(h, _) => &**h == "web",
                Logical::Addr(_) => false,
            };
            known.then(|| {
                let ep = Endpoint::bare("127.0.0.1:9".parse().unwrap());
                let (tx, rx) = watch::channel(Arc::new(Destination::endpoints("web", vec![ep])));
                self.senders.lock().unwrap().push(tx);
                rx
            })
        }
    }

    fn discover(fake: Arc<Fake>, route_by_host: bool) -> Arc<Discover> {
        let config = Arc::new(Config::from_env(&BTreeMap::<String, String>::new()).unwrap());
        Outbound::new(config, Arc::new(Metrics::new()), Arc::new([]))
            .push_connect()
            .push_balance()
            .push_discover(vec![fake], route_by_host)
            .into_inner()
    }

    #[tokio::test]
    async fn a_redirected_request_is_routed_by_host_only_when_a_source_knows_names() {
        let orig: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let fake = Arc::new(Fake::default());
        let d = discover(fake.clone(), true);
        // Known name: its endpoints.
        let b = d.balancer(&Logical::Addr(orig), Some("web"));
        assert_eq!(b.pick().await.unwrap().addr().port(), 9);
        // Unknown name: the original destination, never DNS.
        let b = d.balancer(&Logical::Addr(orig), Some("example.com"));
        assert_eq!(b.pick().await.unwrap().addr(), orig);
        // The same target and authority share one balancer.
        assert!(Arc::ptr_eq(
            &d.balancer(&Logical::Addr(orig), Some("web")),
            &d.balancer(&Logical::Addr(orig), Some("web:80")),
        ));

        // Without name sources, the Host is not looked at.
        let fake = Arc::new(Fake::default());
        let d = discover(fake.clone(), false);
        let b = d.balancer(&Logical::Addr(orig), Some("web"));
        assert_eq!(b.pick().await.unwrap().addr(), orig);
        assert_eq!(*fake.asked.lock().unwrap(), vec![Logical::Addr(orig)]);
    }

    #[tokio::test]
    async fn idle_balancers_are_dropped_and_used_ones_kept() {
        let fake = Arc::new(Fake::default());
        let d = discover(fake, true);
        let name = Logical::Name("web".into(), 80);
        let held = d.balancer(&name, None);
        drop(d.balancer(&Logical::Name("other".into(), 80), None));
        {
            let mut map = d.balancers.lock().unwrap();
            for c in map.values_mut() {
                c.used = Instant::now() - IDLE_TIMEOUT * 2;
            }
        }
        d.sweep_once();
        let map = d.balancers.lock().unwrap();
        assert_eq!(map.len(), 1, "only the balancer a connection holds stays");
        assert!(map.contains_key(&(name, None)));
        drop(held);
    }
}
