use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Rpc, StreamMetrics, changed};

const GET: Rpc = [("rpc", "Get")];

fn text(registry: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, registry).unwrap();
    out
}

#[test]
fn metrics_keep_their_names_and_count_open_streams() {
    let mut registry = Registry::default();
    let metrics = StreamMetrics::register(&mut registry, "destination", "open", "sent");
    let first = metrics.open(&GET);
    let second = metrics.open(&GET);
    metrics.sent(&GET).inc();
    let now = text(&registry);
    assert!(
        now.contains(r#"destination_streams_open{rpc="Get"} 2"#),
        "{now}"
    );
    assert!(
        now.contains(r#"destination_updates_sent_total{rpc="Get"} 1"#),
        "{now}"
    );
    drop(first);
    drop(second);
    let now = text(&registry);
    assert!(
        now.contains(r#"destination_streams_open{rpc="Get"} 0"#),
        "{now}"
    );
}

#[tokio::test]
async fn changed_ends_at_shutdown_or_when_the_index_drops_the_watch() {
    let shutdown = CancellationToken::new();
    let (tx, mut rx) = watch::channel(0);
    tx.send(1).unwrap();
    assert_eq!(changed(&mut rx, &shutdown).await, Some(()));
    assert_eq!(*rx.borrow_and_update(), 1);
    drop(tx);
    assert_eq!(changed(&mut rx, &shutdown).await, None);

    // The sender lives on, so only shutdown can end the wait.
    let (_tx, mut rx) = watch::channel(0);
    shutdown.cancel();
    let waited = tokio::time::timeout(Duration::from_secs(5), changed(&mut rx, &shutdown)).await;
    assert_eq!(waited, Ok(None));
}
