//! A plain hyper server (HTTP/1 and h2c) and the shared bits of the HTTP roles.

use std::convert::Infallible;
use std::future::Future;

use anyhow::Result;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub type Body = Full<Bytes>;

/// Serves `handler` on `listener` until the process ends.
pub async fn http<F, Fut>(listener: TcpListener, server: &'static str, handler: F) -> Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    tracing::info!(addr = %listener.local_addr()?, server, "listening");
    loop {
        let (stream, _) = listener.accept().await?;
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let conn = auto::Builder::new(TokioExecutor::new());
            if let Err(error) = conn.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "connection closed");
            }
        });
    }
}

/// A response with `status` and a JSON or text body.
pub fn respond(status: StatusCode, body: impl Into<Bytes>, json: bool) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    let kind = if json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(kind),
    );
    res
}
