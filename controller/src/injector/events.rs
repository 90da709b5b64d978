//! Kubernetes Events on the workloads the injector touches, as Linkerd's injector records them:
//! core `v1` Events (what the install's RBAC grants, as Linkerd's does), sent from one background
//! task through a bounded queue so that an admission never waits for them; when the queue is
//! full, events are dropped and counted in the log.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many events may wait to be sent.
const QUEUE: usize = 1024;
/// How long one event may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The component events name, as Linkerd's injector does.
const COMPONENT: &str = mesh_names::resources::PROXY_INJECTOR;

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regarding {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
}

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

struct Pending {
    regarding: Regarding,
    severity: Severity,
    reason: &'static str,
    message: String,
}

/// Where the injector records events.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Pending>,
}

impl Recorder {
    /// Starts the sender; it stops at `shutdown`.
    pub fn spawn(client: Client, shutdown: CancellationToken) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE);
        tokio::spawn(async move {
            loop {
                let pending = tokio::select! {
                    pending = rx.recv() => match pending {
                        Some(p) => p,
                        None => return,
                    },
                    _ = shutdown.cancelled() => return,
                };
                let namespace = pending.regarding.namespace.clone();
                let event = build(pending);
                let api = Api::<Event>::namespaced(client.clone(), &namespace);
                match tokio::time::timeout(SEND_TIMEOUT, api.create(&PostParams::default(), &event))
                    .await
                {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => tracing::warn!(%err, "cannot record an event"),
                    Err(_) => tracing::warn!("recording an event timed out"),
                }
            }
        });
        Recorder { tx }
    }

    /// Queues an event; never waits.
    pub fn record(
        &self,
        regarding: Regarding,
        severity: Severity,
        reason: &'static str,
        message: String,
    ) {
        let pending = Pending {
            regarding,
            severity,
            reason,
            message,
        };
        if self.tx.try_send(pending).is_err() {
            tracing::warn!(reason, "event queue full; event dropped");
        }
    }
}

fn build(p: Pending) -> Event {
    let stamp = Timestamp::now();
    let now = Time(stamp);
    let r = p.regarding;
    Event {
        metadata: ObjectMeta {
            // client-go's naming: the object's name and the time in hex nanoseconds.
            name: Some(format!("{}.{:x}", r.name, stamp.as_nanosecond())),
            namespace: Some(r.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(r.api_version),
            kind: Some(r.kind),
            name: Some(r.name),
            namespace: Some(r.namespace),
            uid: r.uid,
            ..ObjectReference::default()
        },
        reason: Some(p.reason.to_owned()),
        message: Some(p.message),
        type_: Some(
            match p.severity {
                Severity::Normal => "Normal",
                Severity::Warning => "Warning",
            }
            .to_owned(),
        ),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource {
            component: Some(COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: std::env::var("HOSTNAME").ok(),
        ..Event::default()
    }
}
