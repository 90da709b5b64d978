//! The backend the proxy forwards to: HTTP/1 on std threads, one per connection.
//!
//! `/slow/MS` answers after MS milliseconds (at most 10 s); anything else answers at once
//! with `backend saw METHOD TARGET host=HOST`. Paths starting `/chaos-` are counted, so a
//! case can tell whether a request that should have been stopped got through. A malformed
//! chunked body makes it close the connection without answering, as a backend that gives up
//! would.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

pub struct Backend {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    stopped: AtomicBool,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, TcpStream>>,
    requests: AtomicU64,
    seen: Mutex<BTreeMap<String, u64>>,
}

impl Backend {
    pub fn start() -> Result<Backend> {
        Backend::start_on(0)
    }

    /// Listens on 127.0.0.1:`port` (0 for any free port).
    pub fn start_on(port: u16) -> Result<Backend> {
        let listener = TcpListener::bind(("127.0.0.1", port)).context("binding the backend")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || accept(listener, &accepting));
        Ok(Backend { addr, shared })
    }

    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Relaxed)
    }

    /// How many requests for `path` (a `/chaos-…` path) arrived.
    pub fn saw(&self, path: &str) -> u64 {
        self.shared
            .seen
            .lock()
            .map(|s| s.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Stops listening and drops every connection, as a killed process would.
    pub fn stop(&self) {
        if self.shared.stopped.swap(true, Relaxed) {
            return;
        }
        // Wakes the accept loop so that it sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Ok(mut conns) = self.shared.conns.lock() {
            for (_, s) in conns.drain() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept(listener: TcpListener, shared: &Arc<Shared>) {
    // Bounded by the stop flag; a backend lives at most as long as its case.
    for stream in listener.incoming() {
        if shared.stopped.load(Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.next_id.fetch_add(1, Relaxed);
        if let (Ok(clone), Ok(mut conns)) = (stream.try_clone(), shared.conns.lock()) {
            conns.insert(id, clone);
        }
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &shared);
            if let Ok(mut conns) = shared.conns.lock() {
                conns.remove(&id);
            }
        });
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    // A read waits at most a minute: a slow client trickling through the proxy sends a byte
    // every few seconds.
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    // Bounded by the read timeout and the case's lifetime; a million requests at most, the
    // last one answered with `Connection: close` as servers that cap requests do.
    const MAX_REQUESTS: u32 = 1_000_000;
    for n in 1..=MAX_REQUESTS {
        let Some(mut req) = read_request(&mut reader)? else {
            return Ok(());
        };
        req.close |= n == MAX_REQUESTS;
        if shared.stopped.load(Relaxed) {
            return Ok(());
        }
        shared.requests.fetch_add(1, Relaxed);
        let path = req.target.split('?').next().unwrap_or("");
        if path.starts_with("/chaos-")
            && let Ok(mut seen) = shared.seen.lock()
        {
            *seen.entry(path.to_string()).or_insert(0) += 1;
        }
        if let Some(ms) = path
            .strip_prefix("/slow/")
            .and_then(|m| m.parse::<u64>().ok())
        {
            std::thread::sleep(Duration::from_millis(ms.min(10_000)));
        }
        let body = format!(
            "backend saw {} {} host={}\n",
            req.method, req.target, req.host
        );
        let close = if req.close {
            "Connection: close\r\n"
        } else {
            ""
        };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{close}\r\n{body}",
            body.len()
        )?;
        if req.close {
            return Ok(());
        }
    }
    Ok(())
}

struct Request {
    method: String,
    target: String,
    host: String,
    close: bool,
}

/// One request with its body read and dropped; `None` at a clean end of the connection or
/// on anything malformed.
fn read_request(r: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if r.by_ref().take(16 << 10).read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        host: String::new(),
        close: version == "HTTP/1.0",
    };
    let (mut length, mut chunked) = (0u64, false);
    for _ in 0..1000 {
        line.clear();
        if r.by_ref().take(256 << 10).read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Ok(None);
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "host" => req.host = value.to_string(),
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => req.close |= value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if chunked {
        if !skip_chunked(r)? {
            return Ok(None);
        }
    } else {
        io::copy(&mut r.by_ref().take(length), &mut io::sink())?;
    }
    Ok(Some(req))
}

/// Reads a chunked body; false if it is malformed.
fn skip_chunked(r: &mut impl BufRead) -> io::Result<bool> {
    let mut line = String::new();
    for _ in 0..1_000_000 {
        line.clear();
        r.by_ref().take(1024).read_line(&mut line)?;
        let Some(size) = line.strip_suffix("\r\n") else {
            return Ok(false);
        };
        let Ok(size) = u64::from_str_radix(size.split(';').next().unwrap_or(""), 16) else {
            return Ok(false);
        };
        if size == 0 {
            line.clear();
            r.by_ref().take(1024).read_line(&mut line)?;
            return Ok(line == "\r\n");
        }
        let copied = io::copy(&mut r.by_ref().take(size), &mut io::sink())?;
        line.clear();
        r.by_ref().take(2).read_line(&mut line)?;
        if copied < size || line != "\r\n" {
            return Ok(false);
        }
    }
    Ok(false)
}
