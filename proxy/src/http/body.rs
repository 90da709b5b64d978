//! The response body type: an upstream body or a body the proxy made, which records the
//! response's metrics when its stream completes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderName;
use hyper::body::{Body, Frame, SizeHint};

use super::conn::InFlight;
use super::h1::H1Body;
use super::h2::H2Body;
use crate::admin::tap::Tapping;
use crate::metrics::{HttpMetrics, ResponseOutcome};

/// A response body, with the response's metrics recorded once it ends.
#[derive(Debug)]
pub struct ProxyBody {
    kind: Kind,
    recorder: Option<Recorder>,
    in_flight: Option<InFlight>,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    H1(H1Body),
    H2(H2Body),
}

/// Errors from any of the body kinds.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl ProxyBody {
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    pub fn full(bytes: Bytes) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        ProxyBody {
            kind: Kind::Full(bytes),
            recorder: None,
            in_flight: None,
        }
    }

    pub fn h1(body: H1Body) -> Self {
        ProxyBody {
            kind: Kind::H1(body),
            recorder: None,
            in_flight: None,
        }
    }

    /// An HTTP/2 response's body (an `l5d-orig-proto` upgrade's answer).
    pub fn h2(body: H2Body) -> Self {
        ProxyBody {
            kind: Kind::H2(body),
            recorder: None,
            in_flight: None,
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

    /// The data of a body that is ready at once (one the proxy made), read to its end,
    /// which records the response.
    pub fn take_ready(&mut self) -> Vec<Bytes> {
        let mut data = Vec::new();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut *self).poll_frame(&mut cx) {
            if let Ok(bytes) = frame.into_data() {
                data.push(bytes);
            }
        }
        data
    }

    /// Keeps the connection's request counted as in flight until the body is done.
    pub fn hold(&mut self, in_flight: InFlight) {
        if !self.is_end_stream() {
            self.in_flight = Some(in_flight);
        }
    }

    fn finish(&mut self, error: Option<&'static str>) {
        if let Some(r) = self.recorder.take() {
            r.finish(error);
        }
        self.in_flight = None;
    }

    /// Passes a frame through, recording the response when its stream ends.
    fn observe<E: Into<BodyError>>(
        &mut self,
        polled: Poll<Option<Result<Frame<Bytes>, E>>>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.finish(None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(r) = &mut self.recorder
                    && let Some(tapping) = &mut r.tap
                    && let Some(data) = frame.data_ref()
                {
                    tapping.add_bytes(data.len());
                }
                if let Some(trailers) = frame.trailers_ref() {
                    if let Some(r) = &mut self.recorder
                        && let Some(code) = grpc_status(trailers)
                    {
                        r.grpc_status = Some(code);
                    }
                    self.finish(None);
                } else if self.is_end_stream() {
                    self.finish(None);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(Some("stream"));
                Poll::Ready(Some(Err(e.into())))
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::H1(body) => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                this.observe(polled)
            }
            Kind::H2(body) => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                this.observe(polled)
            }
            Kind::Full(bytes) => {
                let frame = bytes.take().map(|b| Ok(Frame::data(b)));
                this.finish(None);
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::H1(body) => body.is_end_stream(),
            Kind::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::H1(body) => body.size_hint(),
            Kind::H2(body) => body.size_hint(),
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
    /// Set only while someone taps.
    tap: Option<Box<Tapping>>,
}

impl Recorder {
    pub fn new(metrics: Arc<HttpMetrics>, start: Instant, status: u16) -> Self {
        Recorder {
            metrics,
            start,
            status,
            grpc_status: None,
            error: None,
            tap: None,
        }
    }

    /// Also reports the response to the tap subscribers when it ends.
    pub fn tap(mut self, tapping: Option<Box<Tapping>>) -> Self {
        self.tap = tapping;
        self
    }

    /// The response's `grpc-status`, when the lean HTTP/1 path read it from the head.
    pub fn grpc_status(mut self, code: Option<u32>) -> Self {
        self.grpc_status = code;
        self
    }

    /// Counts response body bytes for tap.
    pub fn add_bytes(&mut self, n: usize) {
        if let Some(tapping) = &mut self.tap {
            tapping.add_bytes(n);
        }
    }

    /// Marks a response the proxy made itself, with the `error` label to record.
    pub fn proxy_error(mut self, label: &'static str) -> Self {
        self.error = Some(label);
        self
    }

    /// Records the response as ended, or failed with `error` (`stream`, `cancel`).
    pub(super) fn finish(self, error: Option<&'static str>) {
        let error = self.error.or(error);
        let us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let outcome = ResponseOutcome {
            status: self.status,
            grpc_status: self.grpc_status,
            error,
        };
        self.metrics.response(outcome, us);
        if let Some(tapping) = self.tap {
            tapping.finish(self.status, self.grpc_status, error);
        }
    }
}

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// A `grpc-status` field's code.
pub(super) fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get(GRPC_STATUS)
        .and_then(|v| super::headers::grpc_code(v.as_bytes()))
}
