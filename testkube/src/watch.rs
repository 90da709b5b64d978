//! `?watch=true`: a stream of `{"type": …, "object": …}` lines, one per change.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::selector::{FieldSelector, LabelSelector};
use crate::server::{Body, BoxError, Shared, Target, error};
use crate::status::ApiError;
use crate::store::{Event, EventType, Object};

/// How long a watch lasts when the client gives no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    namespace: Option<String>,
    label: LabelSelector,
    field: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Object) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj.namespace() == ns)
            && self.label.matches_object(&obj.value)
            && self.field.matches(&obj.value)
    }

    /// What a watcher with this filter sees of `event`, if anything.
    fn translate(&self, event: &Event) -> Option<EventType> {
        let now = self.matches(&event.object);
        let before = event.old.as_ref().map(|o| self.matches(o));
        match (event.kind, now, before) {
            (EventType::Added, true, _) => Some(EventType::Added),
            (EventType::Deleted, true, _) => Some(EventType::Deleted),
            (EventType::Modified, true, Some(false)) => Some(EventType::Added),
            (EventType::Modified, true, _) => Some(EventType::Modified),
            (EventType::Modified, false, Some(true)) => Some(EventType::Deleted),
            _ => None,
        }
    }
}

pub fn watch(
    shared: &Arc<Shared>,
    target: &Target,
    params: &HashMap<String, String>,
) -> Response<Body> {
    let parse = || -> Result<Filter, ApiError> {
        let label = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
            .map_err(ApiError::bad_request)?;
        let field = FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))
            .map_err(ApiError::bad_request)?;
        Ok(Filter {
            namespace: target.namespace.clone(),
            label,
            field,
        })
    };
    let filter = match parse() {
        Ok(filter) => filter,
        Err(e) => return error(&e),
    };
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let initial_events = params.get("sendInitialEvents").is_some_and(|v| v == "true");
    let rv = params
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let api_version = target.rt.api_version(&target.version);
    let kind = target.rt.kind.clone();

    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let state = shared.state();
    let current = state.resource_version();
    let key = target.rt.key();
    let (initial, since) = if initial_events || rv.is_empty() || rv == "0" {
        let objs: Vec<Arc<Object>> = state
            .list(&key, target.namespace.as_deref())
            .into_iter()
            .filter(|o| filter.matches(o))
            .collect();
        (objs, current)
    } else {
        match rv.parse::<u64>() {
            Ok(since) => (Vec::new(), since),
            Err(_) => {
                return error(&ApiError::bad_request(format!(
                    "invalid resourceVersion {rv:?}"
                )));
            }
        }
    };
    let subscription = state.subscribe(&key, since);
    drop(state);
    let (backlog, mut events) = match subscription {
        Ok(sub) => sub,
        Err(gone) => {
            let line = line(
                "ERROR",
                &Bytes::from(serde_json::to_vec(&gone.to_status()).unwrap_or_default()),
            );
            let _ = tx.try_send(line);
            return stream_response(rx);
        }
    };
    tokio::spawn(async move {
        let send = |bytes: Bytes| {
            let tx = tx.clone();
            async move { tx.send(bytes).await.is_ok() }
        };
        for obj in &initial {
            if !send(line("ADDED", &rewrite(obj, &api_version))).await {
                return;
            }
        }
        if initial_events && bookmarks {
            let bookmark = json!({
                "kind": kind, "apiVersion": api_version,
                "metadata": {
                    "resourceVersion": current.to_string(),
                    "annotations": { "k8s.io/initial-events-end": "true" },
                },
            });
            let bytes = Bytes::from(serde_json::to_vec(&bookmark).unwrap_or_default());
            if !send(line("BOOKMARK", &bytes)).await {
                return;
            }
        }
        for event in &backlog {
            if let Some(t) = filter.translate(event)
                && !send(line(t.as_str(), &rewrite(&event.object, &api_version))).await
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let event = tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                event = events.recv() => event,
            };
            match event {
                Ok(event) if event.key == key && event.rv > since => {
                    if let Some(t) = filter.translate(&event)
                        && !send(line(t.as_str(), &rewrite(&event.object, &api_version))).await
                    {
                        return;
                    }
                }
                Ok(_) => {}
                // A lagging watcher ends its stream; the client resumes from the last version
                // it saw and the log replays the rest.
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => return,
            }
        }
    });
    stream_response(rx)
}

fn rewrite(obj: &Object, api_version: &str) -> Bytes {
    if obj.value.get("apiVersion").and_then(|v| v.as_str()) == Some(api_version) {
        return obj.json.clone();
    }
    let mut value = obj.value.clone();
    value["apiVersion"] = json!(api_version);
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

fn line(kind: &str, object: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut resp = Response::new(ChannelBody { rx }.boxed());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A response body fed by a channel: each message is one chunk.
pub struct ChannelBody {
    pub rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}
