//! One replica of a service: an HTTP/1 and h2c server on 127.0.0.1 that names itself in
//! every response (`x-backend` header and body), on a thread of its own so that killing it
//! closes its listener and every connection at once, as a crashed pod would.
//!
//! Routes:
//! - `/slow/MS`: waits MS milliseconds, then 200;
//! - `/status/N`: responds with status N;
//! - `/flaky…`: the replica's odd-numbered `/flaky` requests get 500, the even ones 200;
//! - anything else: 200.
//!
//! A replica made with [`Replica::failing`] answers 500 to everything.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use super::server_thread::ServerThread;

/// The response header naming the replica.
pub const HEADER: &str = "x-backend";

pub struct Replica {
    pub name: String,
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    thread: ServerThread,
}

impl Replica {
    /// A replica on an ephemeral port.
    pub fn start(name: &str) -> Replica {
        Replica::start_on(name, "127.0.0.1:0".parse().unwrap())
    }

    /// A replica on `addr` (the port of one that was killed: a restarted pod).
    pub fn start_on(name: &str, addr: SocketAddr) -> Replica {
        Replica::start_with(name, addr, Behaviour::default())
    }

    /// A replica that waits `delay` before every answer.
    pub fn slow(name: &str, delay: Duration) -> Replica {
        let behaviour = Behaviour {
            delay,
            ..Behaviour::default()
        };
        Replica::start_with(name, "127.0.0.1:0".parse().unwrap(), behaviour)
    }

    /// A replica that is up but answers 500 to every request.
    pub fn failing(name: &str) -> Replica {
        let behaviour = Behaviour {
            fail: true,
            ..Behaviour::default()
        };
        Replica::start_with(name, "127.0.0.1:0".parse().unwrap(), behaviour)
    }

    fn start_with(name: &str, addr: SocketAddr, behaviour: Behaviour) -> Replica {
        let listener = std::net::TcpListener::bind(addr).expect("bind a replica");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let (counter, label) = (requests.clone(), name.to_string());
        let thread = ServerThread::spawn(move || async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(listener, label, counter, behaviour).await;
        });
        Replica {
            name: name.to_string(),
            addr,
            requests,
            thread,
        }
    }

    /// Requests it has received.
    pub fn requests(&self) -> usize {
        self.requests.load(SeqCst)
    }

    /// Stops it: the listener and every connection are closed when this returns.
    pub fn kill(mut self) -> SocketAddr {
        self.thread.stop();
        self.addr
    }
}

/// How a replica answers every request.
#[derive(Clone, Copy, Debug, Default)]
struct Behaviour {
    delay: Duration,
    fail: bool,
}

async fn serve(
    listener: tokio::net::TcpListener,
    name: String,
    requests: Arc<AtomicUsize>,
    behaviour: Behaviour,
) {
    let flaky = Arc::new(AtomicUsize::new(0));
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let (name, requests, flaky) = (name.clone(), requests.clone(), flaky.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                requests.fetch_add(1, SeqCst);
                handle(req, name.clone(), flaky.clone(), behaviour)
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(sock), svc)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    name: String,
    flaky: Arc<AtomicUsize>,
    behaviour: Behaviour,
) -> Result<Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>, Infallible> {
    let path = req.uri().path().to_string();
    // The request body is read whole before answering, as most servers do.
    let _ = req.into_body().collect().await;
    if !behaviour.delay.is_zero() {
        tokio::time::sleep(behaviour.delay).await;
    }
    let status = if behaviour.fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(1000))).await;
        StatusCode::OK
    } else if let Some(code) = path.strip_prefix("/status/") {
        code.parse()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST)
    } else if path.starts_with("/flaky") {
        if flaky.fetch_add(1, SeqCst).is_multiple_of(2) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    } else {
        StatusCode::OK
    };
    let mut res = Response::new(Full::new(Bytes::from(format!("{name}\n"))).boxed());
    *res.status_mut() = status;
    res.headers_mut().insert(
        HEADER,
        name.parse().expect("a replica name is a header value"),
    );
    Ok(res)
}
