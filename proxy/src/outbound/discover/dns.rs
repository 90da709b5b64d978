//! Names resolved with the system resolver: the source for HTTP proxy-mode requests when
//! no control plane or dtab knows the name.
//!
//! Each name has one task while a balancer watches it; the task looks the name up again
//! every [`REFRESH`] (every [`RETRY`] while it fails) and ends when the last receiver is
//! gone. A failed lookup publishes an empty endpoint set: requests fail fast with 503
//! instead of waiting for the resolver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{Destination, Endpoint, Resolve};
use crate::target::Logical;

/// How often a resolved name is looked up again.
pub const REFRESH: Duration = Duration::from_secs(5);
/// How often a name that failed to resolve is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// Names watched at once; past this a name resolves once, without a refreshing task.
const MAX_NAMES: usize = 10_000;

/// The system resolver as a source of answers.
#[derive(Debug, Default)]
pub struct Dns {
    names: Mutex<HashMap<Logical, watch::Sender<Arc<Destination>>>>,
}

impl Resolve for Dns {
    fn resolve(&self, target: &Logical) -> Option<watch::Receiver<Arc<Destination>>> {
        let Logical::Name(host, port) = target else {
            return None;
        };
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = names.get(target)
            && !tx.is_closed()
        {
            return Some(tx.subscribe());
        }
        names.retain(|_, tx| !tx.is_closed());
        let (tx, rx) = watch::channel(Arc::new(Destination::default()));
        if names.len() < MAX_NAMES {
            names.insert(target.clone(), tx.clone());
        }
        tokio::spawn(refresh(host.clone(), *port, tx));
        Some(rx)
    }
}

/// Looks `host` up until nobody watches it.
async fn refresh(host: Arc<str>, port: u16, tx: watch::Sender<Arc<Destination>>) {
    let name = format!("{host}:{port}");
    loop {
        let (endpoints, next) = match tokio::net::lookup_host((&*host, port)).await {
            Ok(addrs) => {
                let mut addrs: Vec<_> = addrs.collect();
                addrs.sort();
                addrs.dedup();
                (addrs.into_iter().map(Endpoint::bare).collect(), REFRESH)
            }
            Err(error) => {
                tracing::debug!(%error, name, "name did not resolve");
                (Vec::new(), RETRY)
            }
        };
        let answer = Destination::endpoints(&name, endpoints);
        tx.send_if_modified(|current| {
            let changed = current.resolution != answer.resolution;
            if changed {
                *current = Arc::new(answer);
            }
            changed
        });
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = tx.closed() => return,
        }
    }
}
