//! Graceful shutdown: one signal to stop accepting and finish in-flight work, and a way to
//! wait until every connection is done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

/// Owned by the process's main task: starts the drain and waits for it.
#[derive(Debug)]
pub struct Shutdown {
    trigger: Trigger,
    done_tx: mpsc::Sender<()>,
    done_rx: mpsc::Receiver<()>,
}

/// Starts the drain; cheap to clone and hand to the admin server and signal handlers.
#[derive(Clone, Debug)]
pub struct Trigger(Arc<Signal>);

/// A flag and a wake-up. Connections check it on every poll of their task, so waiting
/// on it must be cheap: a registered `Notified` costs an atomic load.
#[derive(Debug, Default)]
struct Signal {
    fired: AtomicBool,
    notify: Notify,
    /// Connections that check `fired` on each poll instead of awaiting `notify`: cheaper
    /// on their hot path, but they must be woken when the drain starts.
    wakeups: Mutex<Vec<Weak<Wakeup>>>,
}

/// A task's waker, registered once, so other tasks can wake it.
#[derive(Debug, Default)]
pub struct Wakeup(Mutex<Option<Waker>>);

impl Wakeup {
    /// Stores the waker unless one is stored already: a spawned task's waker stays valid
    /// for the task's life.
    pub fn register(&self, waker: &Waker) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(waker.clone());
        }
    }

    pub fn wake(&self) {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = slot.as_ref() {
            w.wake_by_ref();
        }
    }
}

/// Held by every listener and connection. A connection is done when its `Drain` drops.
#[derive(Clone, Debug)]
pub struct Drain {
    signal: Arc<Signal>,
    _done: mpsc::Sender<()>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (done_tx, done_rx) = mpsc::channel(1);
        Shutdown {
            trigger: Trigger(Arc::new(Signal::default())),
            done_tx,
            done_rx,
        }
    }

    pub fn drain(&self) -> Drain {
        Drain {
            signal: self.trigger.0.clone(),
            _done: self.done_tx.clone(),
        }
    }

    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }

    /// Waits for the drain to be triggered.
    pub async fn triggered(&self) {
        self.trigger.0.wait().await;
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

impl Signal {
    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.fired.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl Trigger {
    pub fn fire(&self) {
        self.0.fired.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
        let wakeups =
            std::mem::take(&mut *self.0.wakeups.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakeups.iter().filter_map(Weak::upgrade) {
            w.wake();
        }
    }

    /// Resolves once the drain has started.
    pub async fn fired(&self) {
        self.0.wait().await;
    }

    pub fn is_fired(&self) -> bool {
        self.0.fired.load(Ordering::Acquire)
    }
}

impl Drain {
    /// Resolves once shutdown has begun.
    pub async fn signaled(&self) {
        self.signal.wait().await;
    }

    pub fn is_draining(&self) -> bool {
        self.signal.fired.load(Ordering::Acquire)
    }

    /// Wakes `wakeup` when the drain starts; its task then sees `is_draining`.
    pub fn register(&self, wakeup: &Arc<Wakeup>) {
        let mut list = self
            .signal
            .wakeups
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if list.len() >= 64 && list.len().is_power_of_two() {
            list.retain(|w| w.strong_count() > 0);
        }
        list.push(Arc::downgrade(wakeup));
        drop(list);
        if self.is_draining() {
            wakeup.wake();
        }
    }
}
