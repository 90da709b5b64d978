//! The balance and mesh benchmarks' backends: HTTP/1.1 keep-alive on std threads, one per
//! connection, each answering every request `200 ok` after a fixed delay (none for a fast
//! backend).
//!
//! Made for the benchmark rather than borrowed from the chaos backend: no parsing beyond
//! what keep-alive needs, one fixed answer, and a request count the benchmark reads to
//! see where the proxy sent its traffic.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

/// More connections than a proxy in front of a 16-connection client would open; past it a
/// new connection is closed at once, so a runaway client cannot make threads without end.
const MAX_CONNECTIONS: usize = 1024;
/// Requests per connection before it is closed, so a connection's loop is bounded.
const MAX_REQUESTS: u64 = 100_000_000;
/// The longest request head line; the benchmark's requests are a few dozen bytes.
const MAX_LINE: u64 = 8 << 10;
/// The most header lines in one head.
const MAX_HEADERS: usize = 100;
/// The largest request body skipped; the benchmark sends none.
const MAX_BODY: u64 = 1 << 20;

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
/// The answer to a request that asked to close: saying so lets the client open its next
/// connection instead of writing to this one and failing.
const RESPONSE_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\
      Connection: close\r\n\r\nok\n";

pub struct Backend {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    delay: Duration,
    stopped: AtomicBool,
    requests: AtomicU64,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Backend {
    /// Listens on a free 127.0.0.1 port and answers each request after `delay`.
    pub fn start(delay: Duration) -> Result<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding a backend")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            delay,
            stopped: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(HashMap::new()),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || accept(listener, &accepting));
        Ok(Backend { addr, shared })
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Relaxed)
    }

    pub fn delay(&self) -> Duration {
        self.shared.delay
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
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

fn accept(listener: TcpListener, shared: &Arc<Shared>) {
    // Bounded by the stop flag: a backend lives as long as the benchmark.
    for stream in listener.incoming() {
        if shared.stopped.load(Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.next_id.fetch_add(1, Relaxed);
        {
            let Ok(mut conns) = shared.conns.lock() else {
                return;
            };
            if conns.len() >= MAX_CONNECTIONS {
                continue;
            }
            if let Ok(clone) = stream.try_clone() {
                conns.insert(id, clone);
            }
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
    // An idle pooled connection waits at most a minute for its next request.
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    for _ in 0..MAX_REQUESTS {
        let Some(close) = read_head(&mut reader, &mut line)? else {
            return Ok(());
        };
        if shared.stopped.load(Relaxed) {
            return Ok(());
        }
        if !shared.delay.is_zero() {
            // The slowness under test, not a wait for anything.
            std::thread::sleep(shared.delay);
        }
        // Counted before the answer, so a client that has its answer sees it counted.
        shared.requests.fetch_add(1, Relaxed);
        if close {
            return writer.write_all(RESPONSE_CLOSE);
        }
        writer.write_all(RESPONSE)?;
    }
    Ok(())
}

/// Reads one request head and skips its body; `Some(close)` when the client asked to close
/// after it, `None` at the end of the connection or on anything this backend does not take.
fn read_head(r: &mut impl BufRead, line: &mut String) -> io::Result<Option<bool>> {
    line.clear();
    if r.by_ref().take(MAX_LINE).read_line(line)? == 0 {
        return Ok(None);
    }
    let mut close = line.trim_end().ends_with("HTTP/1.0");
    let mut length = 0u64;
    for _ in 0..MAX_HEADERS {
        line.clear();
        if r.by_ref().take(MAX_LINE).read_line(line)? == 0 {
            return Ok(None);
        }
        if line == "\r\n" || line == "\n" {
            if length > MAX_BODY {
                return Ok(None);
            }
            io::copy(&mut r.by_ref().take(length), &mut io::sink())?;
            return Ok(Some(close));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Ok(None);
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            let Ok(n) = value.parse() else {
                return Ok(None);
            };
            length = n;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not part of the benchmark.
            return Ok(None);
        } else if name.eq_ignore_ascii_case("connection") {
            close |= value.eq_ignore_ascii_case("close");
        }
    }
    Ok(None)
}
