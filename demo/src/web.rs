//! `web`: the front end. `GET /` asks `books` (HTTP/1) for a book and `authors` (gRPC) for its
//! author at the same time, and answers both as JSON, or 502 naming the back end that failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};

use crate::serve::{self, Body};
use crate::{authors, books};

/// How long a back-end call may take before the front end gives up on it.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest back-end body read.
const MAX_BODY: usize = 64 * 1024;

struct Backends {
    books: Uri,
    http: Client<HttpConnector, Empty<Bytes>>,
    authors: Channel,
    next: AtomicU32,
}

/// `books` and `authors` are base URLs such as `http://books:7000`.
pub async fn run(listener: TcpListener, books: &str, authors: &str) -> Result<()> {
    let backends = Arc::new(Backends {
        books: books
            .parse()
            .with_context(|| format!("--books: invalid URL {books:?}"))?,
        http: Client::builder(TokioExecutor::new()).build_http(),
        authors: Endpoint::from_shared(authors.to_owned())
            .with_context(|| format!("--authors: invalid URL {authors:?}"))?
            .timeout(BACKEND_TIMEOUT)
            .connect_lazy(),
        next: AtomicU32::new(0),
    });
    serve::http(listener, "web", move |req| {
        let backends = backends.clone();
        async move { handle(req, &backends).await }
    })
    .await
}

async fn handle(req: Request<Incoming>, backends: &Backends) -> http::Response<Body> {
    match req.uri().path() {
        "/ready" => return serve::respond(StatusCode::OK, "ready\n", false),
        "/" => {}
        _ => return serve::respond(StatusCode::NOT_FOUND, "try /\n", false),
    }
    let id = backends.next.fetch_add(1, Ordering::Relaxed);
    let (book, author) = tokio::join!(
        book(backends, id),
        authors::get(backends.authors.clone(), id)
    );
    match (book, author) {
        (Ok(book), Ok(author)) => {
            let body = serde_json::json!({
                "book": book,
                "author": {"id": author.id, "name": author.name},
            });
            serve::respond(StatusCode::OK, body.to_string(), true)
        }
        (Err(e), _) => serve::respond(StatusCode::BAD_GATEWAY, format!("books: {e}\n"), false),
        (_, Err(status)) => serve::respond(
            StatusCode::BAD_GATEWAY,
            format!("authors: {}: {}\n", status.code(), status.message()),
            false,
        ),
    }
}

async fn book(backends: &Backends, id: u32) -> Result<serde_json::Value> {
    let uri: Uri = format!(
        "{}/books/{id}",
        backends.books.to_string().trim_end_matches('/')
    )
    .parse()?;
    let call = async {
        let res = backends.http.get(uri).await?;
        let status = res.status();
        let body = http_body_util::Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the body: {e}"))?
            .to_bytes();
        anyhow::ensure!(status.is_success(), "status {status}");
        Ok(serde_json::from_slice(&body)?)
    };
    tokio::time::timeout(BACKEND_TIMEOUT, call)
        .await
        .context("timed out")?
}

/// What `books` says about book `id`, for tests.
pub fn expected_title(id: u32) -> &'static str {
    books::title(id)
}
