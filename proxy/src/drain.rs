//! Graceful shutdown: one signal to stop accepting and finish in-flight work, and a way to
//! wait until every connection is done.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Owned by the process's main task: starts the drain and waits for it.
#[derive(Debug)]
pub struct Shutdown {
    trigger: Trigger,
    done_tx: mpsc::Sender<()>,
    done_rx: mpsc::Receiver<()>,
}

/// Starts the drain; cheap to clone and hand to the admin server and signal handlers.
#[derive(Clone, Debug)]
pub struct Trigger(Arc<watch::Sender<bool>>);

/// Held by every listener and connection. A connection is done when its `Drain` drops.
#[derive(Clone, Debug)]
pub struct Drain {
    rx: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        let (done_tx, done_rx) = mpsc::channel(1);
        Shutdown {
            trigger: Trigger(Arc::new(tx)),
            done_tx,
            done_rx,
        }
    }

    pub fn drain(&self) -> Drain {
        Drain {
            rx: self.trigger.0.subscribe(),
            _done: self.done_tx.clone(),
        }
    }

    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }

    /// Waits for the drain to be triggered.
    pub async fn triggered(&self) {
        let mut rx = self.trigger.0.subscribe();
        let _ = rx.wait_for(|draining| *draining).await;
    }

    /// Waits until every `Drain` has been dropped or `grace` has passed. Returns whether
    /// everything finished in time.
    pub async fn finish(self, grace: Duration) -> bool {
        let Shutdown {
            trigger,
            done_tx,
            mut done_rx,
        } = self;
        trigger.fire();
        drop(done_tx);
        tokio::time::timeout(grace, done_rx.recv()).await.is_ok()
    }
}

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    pub fn is_fired(&self) -> bool {
        *self.0.borrow()
    }
}

impl Drain {
    /// Resolves once shutdown has begun.
    pub async fn signaled(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|draining| *draining).await;
    }

    pub fn is_draining(&self) -> bool {
        *self.rx.borrow()
    }
}
