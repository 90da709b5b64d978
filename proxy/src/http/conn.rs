//! Driving one served HTTP connection: drain and idle handling without per-request timers.
//!
//! hyper's own header-read timeout arms a timer (and allocates) for every request. Instead,
//! one watchdog task per HTTP/1 connection wakes every `header_read_timeout` and closes the
//! connection if no request started since its last look and none is in flight: that covers
//! keep-alive idleness and clients that dribble a request head (slowloris), within one to
//! two timeouts.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use crate::drain::{Drain, Wakeup};

/// State shared by a connection's task, its service and its watchdog.
#[derive(Debug, Default)]
pub struct ConnControl {
    wakeup: Arc<Wakeup>,
    close: AtomicBool,
    started: AtomicU64,
    in_flight: AtomicU64,
}

impl ConnControl {
    /// Marks a request started; the guard marks it finished when dropped (with its body).
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self.clone())
    }
}

/// Held by a response body until it is done.
#[derive(Debug)]
pub struct InFlight(Arc<ConnControl>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// How a connection future can be stopped.
pub trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

/// Runs `conn` until it ends; on drain, shuts it down gracefully; when the watchdog
/// finds it idle, drops it. Returns `None` when it was dropped for idleness.
pub async fn drive<F: Graceful>(
    conn: Pin<&mut F>,
    control: Arc<ConnControl>,
    drain: &Drain,
    idle_timeout: Option<Duration>,
) -> Option<F::Output> {
    drain.register(&control.wakeup);
    if let Some(timeout) = idle_timeout {
        tokio::spawn(watchdog(Arc::downgrade(&control), timeout));
    }
    let mut conn = conn;
    let mut shutting_down = false;
    let mut registered = false;
    std::future::poll_fn(move |cx| {
        if !registered {
            control.wakeup.register(cx.waker());
            registered = true;
        }
        if control.close.load(Relaxed) {
            return Poll::Ready(None);
        }
        if !shutting_down && drain.is_draining() {
            conn.as_mut().graceful_shutdown();
            shutting_down = true;
        }
        conn.as_mut().poll(cx).map(Some)
    })
    .await
}

async fn watchdog(control: Weak<ConnControl>, timeout: Duration) {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(timeout).await;
        let Some(c) = control.upgrade() else { return };
        let started = c.started.load(Relaxed);
        if started == last && c.in_flight.load(Relaxed) == 0 {
            tracing::debug!(?timeout, "closing an idle HTTP/1 connection");
            c.close.store(true, Relaxed);
            c.wakeup.wake();
            return;
        }
        last = started;
    }
}
