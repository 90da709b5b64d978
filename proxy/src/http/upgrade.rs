//! Connections that stop being HTTP: `Upgrade` (WebSocket) and `CONNECT` tunnels.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::connect::Connection;

/// After a `101 Switching Protocols` (or a successful forwarded `CONNECT`), joins the
/// client's and the server's upgraded connections.
pub fn splice(downstream: OnUpgrade, upstream: OnUpgrade) {
    tokio::spawn(async move {
        let (down, up) = tokio::join!(downstream, upstream);
        match (down, up) {
            (Ok(down), Ok(up)) => {
                let mut down = TokioIo::new(down);
                let mut up = TokioIo::new(up);
                if let Err(error) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                    tracing::debug!(%error, "upgraded connection ended with an error");
                }
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::debug!(%error, "connection upgrade failed");
            }
        }
    });
}

/// Joins a client's `CONNECT` tunnel to a new upstream connection.
pub fn tunnel(downstream: OnUpgrade, upstream: Connection) {
    tokio::spawn(async move {
        match downstream.await {
            Ok(down) => {
                let mut down = TokioIo::new(down);
                let mut up = upstream.io;
                if let Err(error) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                    tracing::debug!(%error, "CONNECT tunnel ended with an error");
                }
            }
            Err(error) => tracing::debug!(%error, "CONNECT upgrade failed"),
        }
    });
}
