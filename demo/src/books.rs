//! `books`: the HTTP/1 back end. `GET /books/<id>` answers a book as JSON; `/ready` always 200.

use std::sync::Arc;

use anyhow::Result;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::faults::Faults;
use crate::serve::{self, Body};

const TITLES: &[&str] = &[
    "The Left Hand of Darkness",
    "Kindred",
    "Dhalgren",
    "Solaris",
    "Roadside Picnic",
];

pub fn title(id: u32) -> &'static str {
    TITLES[id as usize % TITLES.len()]
}

pub async fn run(listener: TcpListener, faults: Faults) -> Result<()> {
    let faults = Arc::new(faults);
    serve::http(listener, "books", move |req| {
        let faults = faults.clone();
        async move { handle(req, &faults).await }
    })
    .await
}

async fn handle(req: Request<Incoming>, faults: &Faults) -> http::Response<Body> {
    let path = req.uri().path();
    if path == "/ready" {
        return serve::respond(StatusCode::OK, "ready\n", false);
    }
    let Some(id) = path
        .strip_prefix("/books/")
        .and_then(|id| id.parse::<u32>().ok())
    else {
        return serve::respond(StatusCode::NOT_FOUND, "try /books/<id>\n", false);
    };
    if faults.next().await {
        return serve::respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure\n",
            false,
        );
    }
    let body = serde_json::json!({"id": id, "title": title(id)}).to_string();
    serve::respond(StatusCode::OK, body, true)
}
