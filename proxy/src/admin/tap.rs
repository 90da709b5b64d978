//! `GET /tap`: a live stream of request metadata, one JSON object per line.
//!
//! Off unless `MESH_PROXY_TAP_ENABLED=true`, because it shows who calls what. When on, the
//! HTTP service checks one relaxed atomic per request ([`Tap::is_active`]); only while a
//! subscriber is connected does it keep the request's method, authority and path, and when
//! the response ends it offers one [`TapEvent`] to every subscriber whose filter matches.
//! Each subscriber has a bounded queue and a rate limit: events beyond either are dropped,
//! so the data path never waits for a tap. Events carry metadata only (method, authority,
//! path, status, latency, bytes, direction, TLS), never headers or bodies.
//!
//! Query parameters: `method` (exact, any case), `path` (prefix), `authority` (exact) and
//! `max_rps` (default 100, at most 10 000).
//!
//! Each line: `{"id":…,"direction":"inbound","tls":"no_identity","src":"ip:port",
//! "dst":"ip:port","method":"GET","authority":"web:8080","path":"/","status":200,
//! "grpc_status":null,"error":null,"latency_us":…,"duration_us":…,"response_bytes":…}`,
//! where `latency_us` runs from the request's headers to the response's, and `duration_us`
//! from the response's headers to the end of its body.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Events a slow reader may fall behind by before new ones are dropped.
const QUEUE: usize = 1024;
const DEFAULT_MAX_RPS: u32 = 100;
const MAX_MAX_RPS: u32 = 10_000;

/// The tap registry: whether tapping is allowed, and who is tapping.
#[derive(Debug, Default)]
pub struct Tap {
    enabled: AtomicBool,
    /// Subscribers connected; the per-request check reads only this.
    active: AtomicUsize,
    next_subscriber: AtomicU64,
    next_event: AtomicU64,
    subscribers: Mutex<Vec<Subscriber>>,
}

#[derive(Debug)]
struct Subscriber {
    id: u64,
    filter: Filter,
    limit: RateLimit,
    tx: mpsc::Sender<Bytes>,
}

/// What a subscriber wants to see.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    pub method: Option<String>,
    pub path: Option<String>,
    pub authority: Option<String>,
}

impl Filter {
    fn matches(&self, request: &TapRequest) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(&request.method))
            && self
                .path
                .as_deref()
                .is_none_or(|p| request.path.starts_with(p))
            && self
                .authority
                .as_deref()
                .is_none_or(|a| a.eq_ignore_ascii_case(&request.authority))
    }
}

/// At most `max` events in any one-second window.
#[derive(Debug)]
struct RateLimit {
    max: u32,
    window: Instant,
    sent: u32,
}

impl RateLimit {
    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window).as_secs() >= 1 {
            self.window = now;
            self.sent = 0;
        }
        if self.sent >= self.max {
            return false;
        }
        self.sent += 1;
        true
    }
}

/// What the service keeps of a request while someone taps.
#[derive(Debug, Clone)]
pub struct TapRequest {
    pub direction: &'static str,
    pub tls: &'static str,
    pub src: SocketAddr,
    pub method: String,
    pub authority: String,
    pub path: String,
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct TapEvent {
    pub request: TapRequest,
    pub dst: SocketAddr,
    pub status: u16,
    pub grpc_status: Option<u32>,
    pub error: Option<&'static str>,
    pub latency_us: u64,
    pub duration_us: u64,
    pub response_bytes: u64,
}

impl Tap {
    /// Allows `GET /tap`.
    pub fn enable(&self) {
        self.enabled.store(true, Relaxed);
    }

    /// Whether anyone taps: the only cost on the data path when nobody does.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Relaxed) != 0
    }

    /// Offers an event to every matching subscriber, dropping it for those that are over
    /// their rate or whose queue is full.
    pub fn publish(&self, event: &TapEvent) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut line: Option<Bytes> = None;
        for s in subscribers.iter_mut() {
            if !s.filter.matches(&event.request) || !s.limit.allow(now) {
                continue;
            }
            let line = line.get_or_insert_with(|| {
                let id = self.next_event.fetch_add(1, Relaxed);
                Bytes::from(json_line(id, event))
            });
            // A full queue means a slow reader: drop rather than wait.
            let _ = s.tx.try_send(line.clone());
        }
    }

    fn subscribe(&self, filter: Filter, max_rps: u32) -> (u64, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_subscriber.fetch_add(1, Relaxed);
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.push(Subscriber {
            id,
            filter,
            limit: RateLimit {
                max: max_rps,
                window: Instant::now(),
                sent: 0,
            },
            tx,
        });
        self.active.store(subscribers.len(), Relaxed);
        (id, rx)
    }

    fn unsubscribe(&self, id: u64) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|s| s.id != id);
        self.active.store(subscribers.len(), Relaxed);
    }
}

fn json_line(id: u64, e: &TapEvent) -> String {
    let r = &e.request;
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        "{{\"id\":{id},\"direction\":\"{}\",\"tls\":\"{}\",\"src\":\"{}\",\"dst\":\"{}\",\"method\":",
        r.direction, r.tls, r.src, e.dst
    );
    json_string(&mut out, &r.method);
    out.push_str(",\"authority\":");
    json_string(&mut out, &r.authority);
    out.push_str(",\"path\":");
    json_string(&mut out, &r.path);
    let _ = write!(out, ",\"status\":{}", e.status);
    match e.grpc_status {
        Some(code) => {
            let _ = write!(out, ",\"grpc_status\":{code}");
        }
        None => out.push_str(",\"grpc_status\":null"),
    }
    match e.error {
        Some(error) => {
            out.push_str(",\"error\":");
            json_string(&mut out, error);
        }
        None => out.push_str(",\"error\":null"),
    }
    let _ = writeln!(
        out,
        ",\"latency_us\":{},\"duration_us\":{},\"response_bytes\":{}}}",
        e.latency_us, e.duration_us, e.response_bytes
    );
    out
}

fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The response to `GET /tap?…`: 404 when tap is off, 400 for a bad query, else the stream.
pub fn respond(metrics: &Arc<Metrics>, query: Option<&str>) -> Response<TapBody> {
    let tap = metrics.tap();
    if !tap.enabled.load(Relaxed) {
        return message(
            StatusCode::NOT_FOUND,
            "tap is disabled; start the proxy with MESH_PROXY_TAP_ENABLED=true to enable it\n",
        );
    }
    let (filter, max_rps) = match parse_query(query.unwrap_or("")) {
        Ok(q) => q,
        Err(why) => return message(StatusCode::BAD_REQUEST, &format!("{why}\n")),
    };
    let (id, rx) = tap.subscribe(filter, max_rps);
    tracing::info!(subscriber = id, "tap started");
    let mut res = Response::new(TapBody {
        rx: Some(rx),
        message: None,
        _subscription: Some(Subscription {
            metrics: metrics.clone(),
            id,
        }),
    });
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    res
}

fn message(status: StatusCode, text: &str) -> Response<TapBody> {
    let mut res = Response::new(TapBody {
        rx: None,
        message: Some(Bytes::from(text.to_string())),
        _subscription: None,
    });
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn parse_query(query: &str) -> Result<(Filter, u32), String> {
    let mut filter = Filter::default();
    let mut max_rps = DEFAULT_MAX_RPS;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value =
            percent_decode(value).ok_or_else(|| format!("invalid percent-encoding in {key}"))?;
        match key {
            "method" => filter.method = Some(value),
            "path" => filter.path = Some(value),
            "authority" => filter.authority = Some(value),
            "max_rps" => {
                max_rps = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_MAX_RPS).contains(n))
                    .ok_or_else(|| format!("max_rps must be a number from 1 to {MAX_MAX_RPS}"))?;
            }
            other => return Err(format!("unknown tap parameter {other:?}")),
        }
    }
    Ok((filter, max_rps))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Unsubscribes when the stream's reader goes away.
#[derive(Debug)]
struct Subscription {
    metrics: Arc<Metrics>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics.tap().unsubscribe(self.id);
        tracing::info!(subscriber = self.id, "tap ended");
    }
}

/// The body of a `/tap` response: the event stream, or a one-line message.
#[derive(Debug)]
pub struct TapBody {
    rx: Option<mpsc::Receiver<Bytes>>,
    message: Option<Bytes>,
    /// Held for its `Drop`, which unsubscribes.
    _subscription: Option<Subscription>,
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(message) = this.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        match &mut this.rx {
            Some(rx) => rx
                .poll_recv(cx)
                .map(|line| line.map(|l| Ok(Frame::data(l)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none() && self.message.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.rx, &self.message) {
            (None, Some(m)) => SizeHint::with_exact(m.len() as u64),
            (None, None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// A request being tapped: what the service kept of it, and what its response has shown.
#[derive(Debug)]
pub struct Tapping {
    metrics: Arc<Metrics>,
    request: Box<TapRequest>,
    dst: SocketAddr,
    latency_us: u64,
    response_at: Instant,
    response_bytes: u64,
}

impl Tapping {
    /// Starts timing the response of `request`, whose headers arrived from `dst` now; the
    /// request's own headers arrived at `start`.
    pub fn response(
        metrics: &Arc<Metrics>,
        request: Box<TapRequest>,
        dst: SocketAddr,
        start: Instant,
    ) -> Box<Tapping> {
        let now = Instant::now();
        Box::new(Tapping {
            metrics: metrics.clone(),
            request,
            dst,
            latency_us: micros(now.duration_since(start)),
            response_at: now,
            response_bytes: 0,
        })
    }

    pub fn add_bytes(&mut self, n: usize) {
        self.response_bytes += n as u64;
    }

    /// The response ended: offer the event to the subscribers.
    pub fn finish(self, status: u16, grpc_status: Option<u32>, error: Option<&'static str>) {
        let event = TapEvent {
            dst: self.dst,
            status,
            grpc_status,
            error,
            latency_us: self.latency_us,
            duration_us: micros(self.response_at.elapsed()),
            response_bytes: self.response_bytes,
            request: *self.request,
        };
        self.metrics.tap().publish(&event);
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl TapRequest {
    /// Keeps a request's metadata: method, authority and path (without the query, which
    /// may carry secrets).
    pub fn new<B>(
        req: &http::Request<B>,
        authority: &str,
        direction: crate::metrics::Direction,
        tls: &crate::metrics::Tls,
        src: SocketAddr,
    ) -> Box<TapRequest> {
        Box::new(TapRequest {
            direction: direction.as_str(),
            tls: if tls.is_established() {
                "true"
            } else {
                "no_identity"
            },
            src,
            method: req.method().as_str().to_owned(),
            authority: authority.to_owned(),
            path: req.uri().path().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, authority: &str, path: &str) -> TapRequest {
        TapRequest {
            direction: "inbound",
            tls: "no_identity",
            src: SocketAddr::from(([127, 0, 0, 1], 5000)),
            method: method.into(),
            authority: authority.into(),
            path: path.into(),
        }
    }

    fn event(request: TapRequest) -> TapEvent {
        TapEvent {
            request,
            dst: SocketAddr::from(([127, 0, 0, 1], 8080)),
            status: 200,
            grpc_status: None,
            error: None,
            latency_us: 1500,
            duration_us: 20,
            response_bytes: 2,
        }
    }

    #[test]
    fn filters_match_method_path_prefix_and_authority() {
        let (filter, max) =
            parse_query("method=get&path=%2Fapi&authority=web%3A8080&max_rps=5").unwrap();
        assert_eq!(max, 5);
        assert!(filter.matches(&request("GET", "web:8080", "/api/v1")));
        assert!(!filter.matches(&request("POST", "web:8080", "/api/v1")));
        assert!(!filter.matches(&request("GET", "web:8080", "/other")));
        assert!(!filter.matches(&request("GET", "db:5432", "/api")));
        assert!(Filter::default().matches(&request("PUT", "x", "/")));
        assert!(parse_query("max_rps=0").is_err());
        assert!(parse_query("colour=red").is_err());
    }

    #[test]
    fn subscribers_get_matching_events_within_their_rate() {
        let tap = Tap::default();
        assert!(!tap.is_active());
        let (a, mut all) = tap.subscribe(Filter::default(), 2);
        let (_, mut posts) = tap.subscribe(
            Filter {
                method: Some("POST".into()),
                ..Filter::default()
            },
            100,
        );
        assert!(tap.is_active());
        for _ in 0..3 {
            tap.publish(&event(request("GET", "web:8080", "/")));
        }
        tap.publish(&event(request("POST", "web:8080", "/vote")));
        // The first subscriber's limit is 2 a second.
        assert!(all.try_recv().is_ok());
        assert!(all.try_recv().is_ok());
        assert!(all.try_recv().is_err());
        let line = posts.try_recv().unwrap();
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        assert_eq!(
            text,
            "{\"id\":2,\"direction\":\"inbound\",\"tls\":\"no_identity\",\"src\":\"127.0.0.1:5000\",\
             \"dst\":\"127.0.0.1:8080\",\"method\":\"POST\",\"authority\":\"web:8080\",\"path\":\"/vote\",\
             \"status\":200,\"grpc_status\":null,\"error\":null,\"latency_us\":1500,\"duration_us\":20,\
             \"response_bytes\":2}\n"
        );
        assert!(posts.try_recv().is_err());
        tap.unsubscribe(a);
        assert!(tap.is_active());
    }

    #[test]
    fn a_slow_reader_loses_events_instead_of_blocking() {
        let tap = Tap::default();
        let (_, mut rx) = tap.subscribe(Filter::default(), MAX_MAX_RPS);
        for _ in 0..QUEUE + 10 {
            tap.publish(&event(request("GET", "a", "/")));
        }
        let mut received = 0;
        while rx.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, QUEUE);
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\u{1}");
        assert_eq!(out, "\"a\\\"b\\\\c\\u0001\"");
    }
}
