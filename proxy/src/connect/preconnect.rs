//! A client connection's one-shot cache of the upstream connection its detection opened.
//!
//! A client silent for the server-speaks-first window makes the server connect upstream
//! before it knows the protocol, to see whether the server speaks first. That connection
//! belongs to that client connection alone: a greeting read on it must reach that client
//! and no other, and no other client connection may be handed it. It is used at most once,
//! by the first connect made while serving the client connection, and only if that connect
//! goes to the same endpoint.
//!
//! A task-local carries it, set for the task that serves the client connection and for the
//! per-stream tasks that task spawns with [`spawn_in_connection`], so the stages between
//! the server and the connect step do not pass it along. It lives only while they run: a
//! connection nobody took is closed when the client connection ends.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::Connection;

tokio::task_local! {
    static PRECONNECTED: Arc<Slot>;
}

/// The connection detection opened, until the first connect takes or closes it.
#[derive(Debug)]
struct Slot(Mutex<Option<Connection>>);

impl Slot {
    fn take(&self) -> Option<Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn is_full(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}

/// Runs `serve`, which serves one client connection, with `conn` (the upstream connection
/// its detection opened) cached for the first connect it makes.
pub async fn with_preconnected<F: Future>(conn: Option<Connection>, serve: F) -> F::Output {
    match conn {
        Some(conn) => {
            let slot = Arc::new(Slot(Mutex::new(Some(conn))));
            PRECONNECTED.scope(slot, serve).await
        }
        None => serve.await,
    }
}

/// Spawns a task that serves part of the current client connection (one HTTP/2 stream),
/// so that its first connect may still take the connection's preconnected upstream.
pub fn spawn_in_connection<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    // Once the cache is empty, streams are spawned without it: nothing to carry.
    let slot = PRECONNECTED
        .try_with(|s| s.is_full().then(|| s.clone()))
        .ok()
        .flatten();
    match slot {
        Some(slot) => drop(tokio::spawn(PRECONNECTED.scope(slot, task))),
        None => drop(tokio::spawn(task)),
    }
}

/// The current client connection's preconnected upstream connection, if it leads to
/// `addr`. The first call empties the cache either way: a connection to another endpoint
/// is closed now rather than held idle, going stale, for the rest of the client connection.
pub(super) fn take(addr: SocketAddr) -> Option<Connection> {
    let conn = PRECONNECTED.try_with(|s| s.take()).ok().flatten()?;
    (conn.peer == addr).then_some(conn)
}
