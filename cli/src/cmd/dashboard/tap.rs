//! `GET /api/tap?kind=KIND&namespace=NS&name=NAME`: the requests a resource's proxies finish,
//! as server-sent events, through `mesh tap`'s own streams (`tap::start`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::api::{Answer, error};
use super::server::Body;
use crate::cmd::GlobalArgs;
use crate::cmd::install::is_dns_label;
use crate::cmd::stat::Kind;
use crate::cmd::tap::event::Tapped;
use crate::cmd::tap::{Filter, json_line, start};

/// Tap streams served at once; each holds a stream to every pod of its resource.
const MAX_TAPS: usize = 4;
/// The most requests per second each proxy sends: enough to watch, little to carry.
const MAX_RPS: u32 = 20;
/// A comment this often, so that a closed page is noticed and its streams end.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The open tap streams.
pub struct Taps {
    global: GlobalArgs,
    permits: Arc<Semaphore>,
}

impl Taps {
    pub fn new(global: GlobalArgs) -> Taps {
        Taps {
            global,
            permits: Arc::new(Semaphore::new(MAX_TAPS)),
        }
    }

    /// Opens the streams of the resource in `query`, or says why not.
    pub async fn open(&self, query: Option<&str>) -> Result<Response<Body>, Answer> {
        let (kind, namespace, name) =
            parse(query.unwrap_or("")).map_err(|why| error(StatusCode::BAD_REQUEST, why))?;
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_TAPS} tap streams are open already; close one"),
            )
        })?;
        let filter = Filter {
            namespace: Some(namespace),
            method: None,
            path: None,
            authority: None,
            max_rps: MAX_RPS,
        };
        let resource = format!("{}/{name}", kind.canonical());
        let (events, pods) = start(&resource, &filter, &self.global)
            .await
            .map_err(|e| error(StatusCode::BAD_GATEWAY, format!("{e:#}")))?;
        let first = format!("event: pods\ndata: {}\n\n", serde_json::Value::from(pods));
        let stream = futures::stream::unfold(
            Stream {
                first: Some(first),
                events,
                heartbeat: tokio::time::interval_at(
                    tokio::time::Instant::now() + HEARTBEAT,
                    HEARTBEAT,
                ),
                _permit: permit,
            },
            next,
        );
        let mut response = Response::new(StreamBody::new(stream).boxed());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        Ok(response)
    }
}

struct Stream {
    first: Option<String>,
    events: mpsc::Receiver<Tapped>,
    heartbeat: tokio::time::Interval,
    /// Released when the page goes and hyper drops the body.
    _permit: OwnedSemaphorePermit,
}

async fn next(mut stream: Stream) -> Option<(Result<Frame<Bytes>, Infallible>, Stream)> {
    let text = match stream.first.take() {
        Some(first) => first,
        None => tokio::select! {
            tapped = stream.events.recv() => format!("data: {}\n\n", json_line(&tapped?).trim_end()),
            _ = stream.heartbeat.tick() => ": still tapping\n\n".to_owned(),
        },
    };
    Some((Ok(Frame::data(Bytes::from(text))), stream))
}

/// Reads `kind`, `namespace` and `name`, all required.
pub fn parse(text: &str) -> Result<(Kind, String, String), String> {
    let (mut kind, mut namespace, mut name) = (None, None, None);
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "kind" => {
                kind = Some(
                    Kind::parse(value)
                        .filter(|k| Kind::ALL.contains(k))
                        .ok_or_else(|| format!("kind: unknown resource type {value:?}"))?,
                );
            }
            "namespace" if is_dns_label(value) => namespace = Some(value.to_owned()),
            "namespace" => return Err(format!("namespace: {value:?} is not a namespace name")),
            "name" if is_object_name(value) => name = Some(value.to_owned()),
            "name" => return Err(format!("name: {value:?} is not a resource name")),
            _ => return Err(format!("unknown parameter {key:?}")),
        }
    }
    match (kind, namespace, name) {
        (Some(kind), Some(namespace), Some(name)) => Ok((kind, namespace, name)),
        _ => Err("kind, namespace and name are required".to_owned()),
    }
}

/// A Kubernetes object name: an RFC 1123 subdomain.
fn is_object_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= 253 && text.split('.').all(is_dns_label)
}
