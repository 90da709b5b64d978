//! The response body type: an upstream body or a body the proxy made, which records the
//! response's metrics when its stream completes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::metrics::{HttpMetrics, ResponseOutcome};

/// A response body, with the response's metrics recorded once it ends.
#[derive(Debug)]
pub struct ProxyBody {
    kind: Kind,
    recorder: Option<Recorder>,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Upstream(Incoming),
}

impl ProxyBody {
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    pub fn full(bytes: Bytes) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        ProxyBody {
            kind: Kind::Full(bytes),
            recorder: None,
        }
    }

    pub fn upstream(body: Incoming) -> Self {
        ProxyBody {
            kind: Kind::Upstream(body),
            recorder: None,
        }
    }

    /// Attaches the metrics recorder, finishing it at once if the body is already empty.
    pub fn record(mut self, mut recorder: Recorder, headers: &HeaderMap) -> Self {
        recorder.grpc_status = grpc_status(headers);
        if self.is_end_stream() {
            recorder.finish(None);
        } else {
            self.recorder = Some(recorder);
        }
        self
    }

    fn finish(&mut self, error: Option<&'static str>) {
        if let Some(r) = self.recorder.take() {
            r.finish(error);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Full(bytes) => {
                let frame = bytes.take().map(|b| Ok(Frame::data(b)));
                this.finish(None);
                Poll::Ready(frame)
            }
            Kind::Upstream(body) => match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => {
                    this.finish(None);
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        if let Some(r) = &mut this.recorder
                            && let Some(code) = grpc_status(trailers)
                        {
                            r.grpc_status = Some(code);
                        }
                        this.finish(None);
                    } else if body.is_end_stream() {
                        this.finish(None);
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finish(Some("stream"));
                    Poll::Ready(Some(Err(e)))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Upstream(body) => body.size_hint(),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // Dropped before the end: the client went away or the stream was reset.
        self.finish(Some("cancel"));
    }
}

/// Records one response's outcome and latency when the response stream completes.
#[derive(Debug)]
pub struct Recorder {
    metrics: Arc<HttpMetrics>,
    start: Instant,
    status: u16,
    grpc_status: Option<u32>,
    error: Option<&'static str>,
}

impl Recorder {
    pub fn new(metrics: Arc<HttpMetrics>, start: Instant, status: u16) -> Self {
        Recorder {
            metrics,
            start,
            status,
            grpc_status: None,
            error: None,
        }
    }

    /// Marks a response the proxy made itself, with the `error` label to record.
    pub fn proxy_error(mut self, label: &'static str) -> Self {
        self.error = Some(label);
        self
    }

    fn finish(self, error: Option<&'static str>) {
        let error = self.error.or(error);
        let us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let outcome = ResponseOutcome {
            status: self.status,
            grpc_status: self.grpc_status,
            error,
        };
        self.metrics.response(outcome, us);
    }
}

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get(GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}
