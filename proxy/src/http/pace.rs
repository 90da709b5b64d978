//! How long a client may take over the request body the proxy forwards.
//!
//! nginx's `client_body_timeout` bounds the time between two reads, which a client that
//! sends one byte every few seconds never reaches: it holds the connection, its slot under
//! `MESH_PROXY_MAX_CONNECTIONS` and an upstream connection for as long as it likes. As
//! Apache's `RequestReadTimeout body=…,MinRate=…` does, a read counts as progress only
//! when it brings real data: the client must send [`MIN_PROGRESS`] more bytes (or the
//! body's end) within each timeout. Only the time spent waiting for the client counts;
//! time spent writing to a slow upstream does not.

use std::time::Duration;

/// The body bytes that restart the timeout.
pub const MIN_PROGRESS: usize = 1024;

/// The time a client has left to bring the next [`MIN_PROGRESS`] bytes of its body.
#[derive(Clone, Copy, Debug)]
pub struct BodyPace {
    timeout: Duration,
    left: Duration,
    since_progress: usize,
}

impl BodyPace {
    pub fn new(timeout: Duration) -> Self {
        BodyPace {
            timeout,
            left: timeout,
            since_progress: 0,
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How much longer the proxy waits for the client.
    pub fn left(&self) -> Duration {
        self.left
    }

    /// The proxy waited `d` for the client.
    pub fn waited(&mut self, d: Duration) {
        self.left = self.left.saturating_sub(d);
    }

    /// `n` body bytes arrived.
    pub fn arrived(&mut self, n: usize) {
        self.since_progress = self.since_progress.saturating_add(n);
        if self.since_progress >= MIN_PROGRESS {
            self.since_progress = 0;
            self.left = self.timeout;
        }
    }
}
