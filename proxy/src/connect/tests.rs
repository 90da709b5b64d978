use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::*;
use crate::metrics::NoTlsReason;

fn connect() -> Connect {
    Connect::new(
        Direction::Inbound,
        ConnectTimeout(Duration::from_secs(5)),
        SocketOptions::default(),
        Tls::NoIdentity(NoTlsReason::Loopback),
        Arc::new(Metrics::new()),
        Arc::from(Vec::new()),
    )
}

/// A backend listening on an ephemeral port.
async fn backend() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// The proxy-side port of an upstream connection: which connection it is.
fn local_port(conn: &Connection) -> u16 {
    conn.io.get_ref().local_addr().unwrap().port()
}

/// Whether the backend's side of a connection sees it closed within a few seconds.
async fn closed(mut accepted: tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), accepted.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn the_first_connect_to_its_endpoint_takes_the_preconnected_connection() {
    let (listener, addr) = backend().await;
    let c = connect();
    let pre = c.connect_addr(addr).await.unwrap();
    let pre_port = local_port(&pre);
    let (first, second) = with_preconnected(Some(pre), async {
        let first = c.connect_addr(addr).await.unwrap();
        let second = c.connect_addr(addr).await.unwrap();
        (local_port(&first), local_port(&second))
    })
    .await;
    assert_eq!(first, pre_port, "the first connect reuses the connection");
    assert_ne!(second, pre_port, "it is handed out once");
    drop(listener);
}

#[tokio::test]
async fn another_client_connection_never_gets_it() {
    let (listener, addr) = backend().await;
    let c = Arc::new(connect());
    let pre = c.connect_addr(addr).await.unwrap();
    let pre_port = local_port(&pre);
    let (other, mine) = with_preconnected(Some(pre), async {
        // Another client connection's task connects first, while this one's cache is full.
        let o = c.clone();
        let other = tokio::spawn(async move { local_port(&o.connect_addr(addr).await.unwrap()) });
        let other = other.await.unwrap();
        (other, local_port(&c.connect_addr(addr).await.unwrap()))
    })
    .await;
    assert_ne!(other, pre_port, "another client connection opened its own");
    assert_eq!(
        mine, pre_port,
        "the cache waited for its own client connection"
    );
    drop(listener);
}

#[tokio::test]
async fn an_unused_preconnected_connection_is_closed_when_its_client_connection_ends() {
    let (listener, addr) = backend().await;
    let c = connect();
    let pre = c.connect_addr(addr).await.unwrap();
    let (accepted, _) = listener.accept().await.unwrap();
    with_preconnected(Some(pre), async {}).await;
    assert!(
        closed(accepted).await,
        "the backend saw the connection close"
    );
}

#[tokio::test]
async fn a_connect_elsewhere_closes_it_instead_of_holding_it() {
    let (a, a_addr) = backend().await;
    let (b, b_addr) = backend().await;
    let c = connect();
    let pre = c.connect_addr(a_addr).await.unwrap();
    let pre_port = local_port(&pre);
    let (accepted, _) = a.accept().await.unwrap();
    let (to_b, again) = with_preconnected(Some(pre), async {
        let to_b = c.connect_addr(b_addr).await.unwrap();
        assert!(closed(accepted).await, "closed at the first connect");
        let again = c.connect_addr(a_addr).await.unwrap();
        (to_b, local_port(&again))
    })
    .await;
    assert_eq!(to_b.peer, b_addr);
    assert_ne!(again, pre_port, "no longer cached");
    drop(b);
}

#[tokio::test]
async fn streams_spawned_in_the_connection_can_take_it() {
    let (listener, addr) = backend().await;
    let c = Arc::new(connect());
    let pre = c.connect_addr(addr).await.unwrap();
    let pre_port = local_port(&pre);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stream_c = c.clone();
    with_preconnected(Some(pre), async move {
        spawn_in_connection(async move {
            let conn = stream_c.connect_addr(addr).await.unwrap();
            let _ = tx.send(local_port(&conn));
        });
    })
    .await;
    assert_eq!(rx.await.unwrap(), pre_port);
    drop(listener);
}
