//! A backend HTTP server (HTTP/1 and h2c) for the proxy to forward to, on its own thread.
//!
//! Routes:
//! - `/status/N`: responds with status N;
//! - `/slow/MS`: waits MS milliseconds, then 200;
//! - `/chunked/N`: streams N chunks (chunked encoding on HTTP/1);
//! - `/echo`: responds with the request body;
//! - `/trailers`: a body followed by trailers;
//! - anything else: 200 with a line describing the request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use super::server_thread::ServerThread;

pub struct Backend {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    /// The path of every request, in order of arrival.
    pub paths: Arc<Mutex<Vec<String>>>,
    _thread: ServerThread,
}

impl Backend {
    pub fn start() -> Backend {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (c, r, p) = (connections.clone(), requests.clone(), paths.clone());
        let thread = ServerThread::spawn(move || async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(listener, c, r, p).await;
        });
        Backend {
            addr,
            connections,
            requests,
            paths,
            _thread: thread,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// How many requests for `path` arrived.
    pub fn saw(&self, path: &str) -> usize {
        self.paths
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    conns: Arc<AtomicUsize>,
    reqs: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        conns.fetch_add(1, Ordering::SeqCst);
        let (reqs, paths) = (reqs.clone(), paths.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                paths.lock().unwrap().push(req.uri().path().to_string());
                reqs.fetch_add(1, Ordering::SeqCst);
                handle(req)
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(sock), svc)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

async fn handle(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (first, arg) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let res = match first {
        "status" => {
            let code = arg.parse().ok().and_then(|c| StatusCode::from_u16(c).ok());
            let mut res = Response::new(full(format!("status {arg}\n")));
            *res.status_mut() = code.unwrap_or(StatusCode::BAD_REQUEST);
            res
        }
        "slow" => {
            let ms: u64 = arg.parse().unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(full(format!("slept {ms}ms\n")))
        }
        "chunked" => {
            let n: usize = arg.parse().unwrap_or(3);
            let chunks =
                futures::stream::iter((0..n).map(|i| {
                    Ok::<_, Infallible>(Frame::data(Bytes::from(format!("chunk {i}\n"))))
                }));
            Response::new(BodyExt::boxed(StreamBody::new(chunks)))
        }
        "echo" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::new(full(body))
        }
        "trailers" => {
            let mut trailers = HeaderMap::new();
            trailers.insert("x-trailer", "done".parse().unwrap());
            let frames = futures::stream::iter(vec![
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"body\n"))),
                Ok(Frame::trailers(trailers)),
            ]);
            Response::new(BodyExt::boxed(StreamBody::new(frames)))
        }
        _ => {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
                .or_else(|| req.uri().authority().map(|a| a.to_string()))
                .unwrap_or_default();
            let line = format!(
                "backend saw {} {} host={} version={:?} connection={:?}\n",
                req.method(),
                req.uri(),
                host,
                req.version(),
                req.headers().get("connection"),
            );
            Response::new(full(line))
        }
    };
    Ok(res)
}
