//! Driving one served HTTP connection: drain and idle handling without per-request timers.
//!
//! hyper's own header-read timeout arms a timer (and allocates) for every request. Instead,
//! each HTTP/1 connection's task keeps one [`IdleTimer`] that fires every
//! `header_read_timeout` and closes the connection if no request started since its last look
//! and none is in flight: that covers keep-alive idleness and clients that dribble a request
//! head (slowloris), within one to two timeouts. The timer lives and dies with the
//! connection's task: a connection that ends leaves nothing behind (a separate watchdog task
//! would outlive it by up to a timeout, which under connection churn is memory that grows
//! with the connection rate).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::drain::{Drain, Wakeup};

/// State shared by a connection's task and its service.
#[derive(Debug, Default)]
pub struct ConnControl {
    wakeup: Arc<Wakeup>,
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

/// Closes a served connection that stays idle: armed once per connection, it looks every
/// `timeout` whether a request started since its last look or one is in flight.
#[derive(Debug)]
pub struct IdleTimer {
    sleep: Pin<Box<Sleep>>,
    timeout: Duration,
    last: u64,
}

impl IdleTimer {
    pub fn new(timeout: Duration) -> IdleTimer {
        IdleTimer {
            sleep: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            last: u64::MAX,
        }
    }

    /// Ready when the connection has been idle for a whole period; otherwise the timer is
    /// armed (with `cx`'s waker) for the next look.
    fn poll_idle(&mut self, cx: &mut Context<'_>, control: &ConnControl) -> Poll<()> {
        while self.sleep.as_mut().poll(cx).is_ready() {
            let started = control.started.load(Relaxed);
            if started == self.last && control.in_flight.load(Relaxed) == 0 {
                tracing::debug!(timeout = ?self.timeout, "closing an idle HTTP/1 connection");
                return Poll::Ready(());
            }
            self.last = started;
            let next = Instant::now() + self.timeout;
            self.sleep.as_mut().reset(next);
        }
        Poll::Pending
    }
}

/// Runs `conn` until it ends; on drain, shuts it down gracefully; when `idle` finds it
/// idle, drops it. Returns `None` when it was dropped for idleness.
pub async fn drive<F: Graceful>(
    conn: Pin<&mut F>,
    control: Arc<ConnControl>,
    drain: &Drain,
    mut idle: Option<&mut IdleTimer>,
) -> Option<F::Output> {
    drain.register(&control.wakeup);
    let mut conn = conn;
    let mut shutting_down = false;
    let mut registered = false;
    std::future::poll_fn(move |cx| {
        if !registered {
            control.wakeup.register(cx.waker());
            registered = true;
        }
        if let Some(idle) = idle.as_deref_mut()
            && idle.poll_idle(cx, &control).is_ready()
        {
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
