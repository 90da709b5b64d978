//! HTTP/1 between meshed proxies over HTTP/2, as Linkerd does it (`l5d-orig-proto`).
//!
//! Outbound, an HTTP/1 request to an endpoint that discovery marks as a meshed proxy
//! (`h2_hint`) is sent over the endpoint's shared HTTP/2 connection with
//! `l5d-orig-proto: HTTP/1.1` (or `HTTP/1.0`); inbound, such a request is sent on to the
//! application as HTTP/1 again, and its response carries the same header back, which the
//! outbound proxy removes. Between two proxies, a client's many HTTP/1 connections become
//! streams of one connection, and the application on each side sees HTTP/1.

use std::time::Instant;

use bytes::Bytes;
use h2::RecvStream;
use h2::server::SendResponse;
use http::header::{DATE, HOST};
use http::{HeaderValue, Request, Response, Uri, Version};
use hyper::body::{Body as _, Incoming};

use super::super::body::{ProxyBody, Recorder};
use super::super::date;
use super::super::errors::ProxyError;
use super::super::h1::Prepared;
use super::super::h2::{H2Body, pipe_body};
use super::super::headers::{L5D_ORIG_PROTO, authority, strip_hop_by_hop, to_origin_form};
use super::h2::send_proxy_response;
use super::{Answer, ProxyService, within};
use crate::admin::tap::{TapRequest, Tapping};
use crate::balance::Picked;
use crate::connect::Upstream;

impl<U: Upstream> ProxyService<U> {
    /// Sends an HTTP/1 request to a meshed endpoint over HTTP/2, marked so that its proxy
    /// sends it on as HTTP/1; the response is answered as HTTP/1.
    pub(super) async fn upgrade_h2(
        &self,
        req: Request<Incoming>,
        mut picked: Picked,
        label: &str,
        start: Instant,
        tap: Option<Box<TapRequest>>,
    ) -> Response<ProxyBody> {
        let metrics = self.metrics_for(label, picked.endpoint());
        let endpoint = picked.endpoint().clone();
        let (mut parts, body) = req.into_parts();
        let orig = if parts.version == Version::HTTP_10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let authority = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map_or_else(|| endpoint.addr.to_string(), str::to_owned);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path)
            .build();
        parts.uri = match uri {
            Ok(u) => u,
            Err(_) => {
                let e = ProxyError::BadRequest("request host is not a valid authority");
                return self.fail_tapped(e, label, Some(metrics), start, false, tap);
            }
        };
        parts.headers.remove(HOST);
        parts
            .headers
            .insert(L5D_ORIG_PROTO, HeaderValue::from_static(orig));
        parts.version = Version::HTTP_2;
        let end = body.is_end_stream();
        let mut request = Some(Request::from_parts(parts, ()));
        let exchange = async {
            let (response, tx) = self.open_h2(&endpoint, &mut request, end).await?;
            if let Some(mut tx) = tx {
                let mut body = body;
                tokio::spawn(async move {
                    if let Err(e) = pipe_body(&mut body, &mut tx).await {
                        tx.send_reset(e.reason());
                    }
                });
            }
            response.await.map_err(ProxyError::UpstreamH2)
        };
        let response = within(self.http.settings.limits.response_timeout, exchange).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                if e.is_upstream() {
                    picked.failed();
                }
                return self.fail_tapped(e, label, Some(metrics), start, false, tap);
            }
        };
        let (mut parts, recv) = response.into_parts();
        picked.responded(parts.status.as_u16(), start.elapsed());
        parts.headers.remove(L5D_ORIG_PROTO);
        parts.version = Version::HTTP_11;
        metrics.request();
        let tapping = tap.map(|t| Tapping::response(&self.http.metrics, t, endpoint.addr, start));
        let recorder = Recorder::new(metrics, start, parts.status.as_u16()).tap(tapping);
        let body = ProxyBody::h2(H2Body::new(recv)).record(recorder, &parts.headers);
        Response::from_parts(parts, body)
    }

    /// Inbound: sends an HTTP/1 request that came over HTTP/2 from a meshed proxy on to
    /// the application as HTTP/1, and its response back over the stream.
    pub(super) async fn downgrade_h2(
        self,
        req: Request<RecvStream>,
        mut respond: SendResponse<Bytes>,
        start: Instant,
    ) {
        let label: Box<str> = authority(&req).unwrap_or("").into();
        let target = match self.route(&req) {
            Ok(t) => t.into_owned(),
            Err(e) => {
                send_proxy_response(&mut respond, self.fail(e, &label, None, start, false));
                return;
            }
        };
        let balancer = self.balancer_for(&target, &label);
        let mut picked = match balancer.pick().await {
            Ok(p) => p,
            Err(e) => {
                let res = self.fail(ProxyError::Unavailable(e), &label, None, start, false);
                send_proxy_response(&mut respond, res);
                return;
            }
        };
        let metrics = self.metrics_for(&label, picked.endpoint());
        let (mut parts, recv) = req.into_parts();
        let orig = parts.headers.remove(L5D_ORIG_PROTO);
        parts.version = match orig.as_ref().map(HeaderValue::as_bytes) {
            Some(b"HTTP/1.0") => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        if !parts.headers.contains_key(HOST)
            && let Some(a) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(HOST, a);
        }
        let mut req = Request::from_parts(parts, H2Body::new(recv));
        strip_hop_by_hop(req.headers_mut(), false);
        to_origin_form(&mut req);
        let body_timeout = self.http.settings.limits.request_body_timeout;
        let mut prepared = Prepared::from_h2(req, &target, body_timeout);
        let (head, body) = match self.send_h1(picked.endpoint(), &mut prepared).await {
            Ok(Answer::H1(head, body)) => (head, body),
            Ok(Answer::H1Upgrade(..)) => {
                let e = ProxyError::BadRequest("an upgrade cannot be carried over HTTP/2");
                let res = self.fail(e, &label, Some(metrics), start, false);
                send_proxy_response(&mut respond, res);
                return;
            }
            Err(e) => {
                if e.is_upstream() {
                    picked.failed();
                }
                let res = self.fail(e, &label, Some(metrics), start, false);
                send_proxy_response(&mut respond, res);
                return;
            }
        };
        let status = head.status;
        picked.responded(status.as_u16(), start.elapsed());
        metrics.request();
        let mut headers = head.headers;
        strip_hop_by_hop(&mut headers, false);
        let orig = if head.version == Version::HTTP_10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        headers.insert(L5D_ORIG_PROTO, HeaderValue::from_static(orig));
        headers.entry(DATE).or_insert_with(date::header_value);
        let peer = picked.addr();
        let body = body.checkin(self.conn.clone(), peer);
        let recorder = Recorder::new(metrics, start, status.as_u16());
        let mut body = ProxyBody::h1(body).record(recorder, &headers);
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        let end = body.is_end_stream();
        let Ok(mut tx) = respond.send_response(response, end) else {
            return;
        };
        if !end && let Err(e) = pipe_body(&mut body, &mut tx).await {
            tx.send_reset(e.reason());
        }
    }
}
