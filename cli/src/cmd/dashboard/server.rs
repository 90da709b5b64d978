//! The HTTP side: one small HTTP/1 server on loopback that serves the embedded page and the
//! JSON API, and refuses everything else.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections, request heads read within
//! [`HEADER_TIMEOUT`], GET and HEAD only, no request bodies. Requests must name this server in
//! `Host`, so that a web page on another origin cannot reach it through DNS rebinding.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::api::{Answer, State, error};

/// Every response's body: a whole one, or a stream of server-sent events.
pub type Body = BoxBody<Bytes, Infallible>;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// The page: plain ES modules and CSS, embedded, served as they are.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "/table.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/table.js"),
    ),
    (
        "/chart.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/chart.js"),
    ),
    (
        "/api.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/api.js"),
    ),
    (
        "/edges.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/edges.js"),
    ),
    (
        "/tap.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/tap.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
];

/// Serves until Ctrl-C.
pub async fn serve(listener: TcpListener, state: Arc<State>) -> anyhow::Result<()> {
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let hosts: Arc<[String]> = allowed_hosts(addr).into();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.context("connection limit closed")?,
            _ = &mut stop => return Ok(()),
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin or stop.
                    eprintln!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => return Ok(()),
        };
        let (state, hosts) = (state.clone(), hosts.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (state, hosts) = (state.clone(), hosts.clone());
                async move { Ok::<_, Infallible>(handle(&state, &hosts, request).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

/// The `Host` values that name this server.
pub fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    vec![addr.to_string(), format!("localhost:{}", addr.port())]
}

async fn handle(state: &State, hosts: &[String], request: Request<Incoming>) -> Response<Body> {
    let head = request.method() == Method::HEAD;
    let mut response = match refuse(hosts, &request) {
        Some(answer) => json_response(answer),
        None => route(state, request).await,
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if head {
        *response.body_mut() = Full::new(Bytes::new()).boxed();
    }
    response
}

/// Why a request is refused before it is routed, if it is.
pub fn refuse<B>(hosts: &[String], request: &Request<B>) -> Option<Answer> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Some(error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not served; only GET and HEAD", request.method()),
        ));
    }
    let headers = request.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    if headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|l| l.trim() != "0") {
        return Some(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "requests with a body are refused".to_owned(),
        ));
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|h| hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(h))) {
        return Some(error(
            StatusCode::FORBIDDEN,
            format!(
                "Host {:?} does not name this server; use {}",
                host.unwrap_or(""),
                hosts.first().map(String::as_str).unwrap_or("")
            ),
        ));
    }
    None
}

async fn route(state: &State, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    let query = request.uri().query();
    match path {
        "/api/settings" => json_response(state.settings()),
        "/api/namespaces" => json_response(state.namespaces().await),
        "/api/stat" => json_response(state.stat(query).await),
        "/api/edges" => json_response(state.edges(query).await),
        "/api/tap" => match state.taps.open(query).await {
            Ok(events) => events,
            Err(answer) => json_response(answer),
        },
        _ => match ASSETS.iter().find(|(at, _, _)| *at == path) {
            Some((_, content_type, body)) => {
                let mut response =
                    Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                response
            }
            None => json_response(error(StatusCode::NOT_FOUND, format!("nothing at {path}"))),
        },
    }
}

fn json_response((status, body): Answer) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}
