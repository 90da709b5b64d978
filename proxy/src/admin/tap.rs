//! `/tap`: not built yet.
//!
//! The plan: the HTTP service (`http::service`) already sees every request's method,
//! authority, path, status, latency and end of stream, at the same points where it records
//! metrics. A tap subscriber registers a filter here; the service checks one atomic flag
//! per request and, only while someone is tapping, sends an event per matching request to
//! a bounded channel; this endpoint streams them as NDJSON and drops events when the
//! reader is slow, so the data path never waits for a tap.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

pub fn respond() -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(
        b"tap is not available in this version\n",
    )));
    *res.status_mut() = StatusCode::NOT_IMPLEMENTED;
    res
}
