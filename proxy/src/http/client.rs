//! Upstream HTTP connections and their pool.
//!
//! The pool is the per-endpoint client the balancer's picks lead to: HTTP/1 connections
//! (see `h1`) are pooled per endpoint, and each downstream connection also keeps the last
//! one it used, so steady keep-alive traffic to the same endpoint never touches the shared
//! pool. An HTTP/2 connection is shared by all requests to an endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::h1::H1Conn;
use super::h2::{self, H2Conn};
use crate::config::{H2Windows, PoolIdleTimeout};
use crate::connect::Connection;
use crate::metrics::Tls;

#[derive(Debug)]
struct Idle {
    conn: Box<H1Conn>,
    since: Instant,
}

/// Idle HTTP/1 connections and live HTTP/2 connections, by endpoint.
#[derive(Debug)]
pub struct Pool {
    h1: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    h2: Mutex<HashMap<SocketAddr, H2Conn>>,
    idle_timeout: Duration,
    max_idle: usize,
    windows: H2Windows,
}

impl Pool {
    /// Creates the pool and a task that closes expired idle connections.
    pub fn new(idle_timeout: PoolIdleTimeout, max_idle: usize, windows: H2Windows) -> Arc<Self> {
        let pool = Arc::new(Pool {
            h1: Mutex::new(HashMap::new()),
            h2: Mutex::new(HashMap::new()),
            idle_timeout: idle_timeout.0,
            max_idle,
            windows,
        });
        let weak = Arc::downgrade(&pool);
        tokio::spawn(sweep(weak, idle_timeout.0.max(Duration::from_millis(100))));
        pool
    }

    /// Takes the most recently used idle connection that is still usable and was made
    /// with the `tls` label the endpoint gets now (see `Connection::tls`); others are closed.
    pub fn checkout_h1(&self, endpoint: &SocketAddr, tls: &Tls) -> Option<Box<H1Conn>> {
        let mut map = self.h1.lock().unwrap_or_else(|e| e.into_inner());
        let idle = map.get_mut(endpoint)?;
        while let Some(entry) = idle.pop() {
            if entry.since.elapsed() < self.idle_timeout
                && entry.conn.tls() == tls
                && entry.conn.is_usable()
            {
                return Some(entry.conn);
            }
        }
        None
    }

    /// Returns a connection for reuse, unless it closed or the pool is full.
    pub fn checkin_h1(&self, endpoint: &SocketAddr, conn: Box<H1Conn>) {
        if self.max_idle == 0 {
            return;
        }
        let mut map = self.h1.lock().unwrap_or_else(|e| e.into_inner());
        let idle = map.entry(*endpoint).or_default();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// The shared HTTP/2 connection to `endpoint`, if one is open with the `tls` label the
    /// endpoint gets now.
    pub fn h2(&self, endpoint: &SocketAddr, tls: &Tls) -> Option<H2Conn> {
        let map = self.h2.lock().unwrap_or_else(|e| e.into_inner());
        map.get(endpoint)
            .filter(|c| !c.is_closed() && c.tls == *tls)
            .cloned()
    }

    pub fn insert_h2(&self, endpoint: &SocketAddr, conn: H2Conn) {
        let mut map = self.h2.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(*endpoint, conn);
    }

    /// Starts HTTP/2 (prior knowledge) on a new connection.
    pub async fn handshake_h2(&self, conn: Connection) -> Result<H2Conn, ::h2::Error> {
        h2::handshake(conn, &self.windows).await
    }

    fn sweep_once(&self) {
        let mut map = self.h1.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, idle| {
            idle.retain(|e| e.since.elapsed() < self.idle_timeout && e.conn.is_usable());
            !idle.is_empty()
        });
        drop(map);
        let mut h2 = self.h2.lock().unwrap_or_else(|e| e.into_inner());
        h2.retain(|_, c| !c.is_closed());
    }
}

async fn sweep(pool: Weak<Pool>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match pool.upgrade() {
            Some(pool) => pool.sweep_once(),
            None => return,
        }
    }
}
