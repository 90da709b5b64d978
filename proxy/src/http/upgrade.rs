//! Connections that stop being HTTP: `Upgrade` (WebSocket) and `CONNECT` tunnels.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::connect::Connection;

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

/// After an upstream HTTP/1 connection switched protocols, joins it to the client's
/// upgraded connection. Bytes the server sent right after its response head go first.
pub fn splice_h1(downstream: OnUpgrade, upstream: Box<super::h1::H1Conn>) {
    tokio::spawn(async move {
        let (mut up, early) = (*upstream).into_parts();
        match downstream.await {
            Ok(down) => {
                let mut down = TokioIo::new(down);
                if !early.is_empty()
                    && let Err(error) = tokio::io::AsyncWriteExt::write_all(&mut down, &early).await
                {
                    tracing::debug!(%error, "upgraded connection failed");
                    return;
                }
                if let Err(error) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
                    tracing::debug!(%error, "upgraded connection ended with an error");
                }
            }
            Err(error) => tracing::debug!(%error, "connection upgrade failed"),
        }
    });
}
