//! The admin server every component runs: `/metrics` (Prometheus text), `/ready`, `/live` and
//! `/ping` (the path Linkerd's probes use), and `/endpoints?authority=…` where the component
//! serves lookups. Plain HTTP/1, GET only, no request bodies.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::runtime::{Lookups, Metrics, Ready};

/// How long a client may take to send its request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    ready: Ready,
    metrics: Metrics,
    lookups: Lookups,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                tracing::debug!(%err, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (ready, metrics, lookups) = (ready.clone(), metrics.clone(), lookups.clone());
        let service = service_fn(move |req| {
            let response = respond(&req, &ready, &metrics, &lookups);
            async move { Ok::<_, Infallible>(response) }
        });
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
}

fn respond(
    req: &Request<Incoming>,
    ready: &Ready,
    metrics: &Metrics,
    lookups: &Lookups,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/live" | "/ping" => text(StatusCode::OK, "live\n"),
        "/ready" if ready.get() => text(StatusCode::OK, "ready\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/metrics" => {
            let mut body = String::new();
            if let Err(err) =
                prometheus_client::encoding::text::encode(&mut body, &metrics.registry())
            {
                tracing::warn!(%err, "cannot encode metrics");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n");
            }
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        mesh_names::resources::ENDPOINTS_LOOKUP_PATH => match lookups.get() {
            None => text(StatusCode::NOT_FOUND, "not found\n"),
            Some(lookup) => {
                let Some(authority) = query_value(req.uri().query().unwrap_or(""), "authority")
                else {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "give the authority to look up: /endpoints?authority=NAME:PORT\n",
                    );
                };
                match lookup(&authority) {
                    Ok(json) => {
                        let mut response = Response::new(Full::new(Bytes::from(json)));
                        response.headers_mut().insert(
                            header::CONTENT_TYPE,
                            header::HeaderValue::from_static("application/json"),
                        );
                        response
                    }
                    Err((status, message)) => {
                        let mut response = Response::new(Full::new(Bytes::from(message + "\n")));
                        *response.status_mut() =
                            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                        response
                    }
                }
            }
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The percent-decoded value of `key` in a query string.
fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
