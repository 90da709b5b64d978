//! HTTP/1 on raw sockets: the attacks need bytes no client library would send, and the
//! responses are read with every size and time bounded.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A response head is refused past this size.
const MAX_HEAD: usize = 1 << 20;
/// A response body is refused past this size (a `/metrics` of 787 MB was seen).
const MAX_BODY: u64 = 2 << 30;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, up to the `keep` bytes asked for.
    pub body: Vec<u8>,
    pub body_len: u64,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the response says the connection closes after it.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects with a bounded wait and sets read and write timeouts.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// `GET path` on a new connection, closed after.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<Response> {
    get_keep(addr, path, timeout, 64 << 10)
}

pub fn get_keep(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    keep: usize,
) -> io::Result<Response> {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: chaos.test\r\nConnection: close\r\n\r\n");
    exchange_keep(addr, raw.as_bytes(), timeout, keep)
}

/// Sends `raw` on a new connection and reads one response.
pub fn exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> io::Result<Response> {
    exchange_keep(addr, raw, timeout, 64 << 10)
}

fn exchange_keep(
    addr: SocketAddr,
    raw: &[u8],
    timeout: Duration,
    keep: usize,
) -> io::Result<Response> {
    let mut s = connect(addr, timeout)?;
    s.write_all(raw)?;
    read_response(&mut BufReader::new(s), keep)
}

/// Sends `raw` and reads until the peer closes or goes quiet for `quiet`; returns every
/// response status found (as far as they can be told apart) and whether it closed.
pub fn statuses_until_close(
    addr: SocketAddr,
    raw: &[u8],
    quiet: Duration,
) -> io::Result<(Vec<u16>, bool)> {
    let mut s = connect(addr, quiet)?;
    s.write_all(raw)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    let mut closed = false;
    while buf.len() < MAX_HEAD {
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let statuses = text
        .match_indices("HTTP/1.")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect();
    Ok((statuses, closed))
}

/// Reads one response; the body is counted in full and kept up to `keep` bytes.
pub fn read_response(r: &mut impl BufRead, keep: usize) -> io::Result<Response> {
    let mut head = Vec::new();
    loop {
        let n = r.by_ref().take(8192).read_until(b'\n', &mut head)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("closed after {} bytes of response head", head.len()),
            ));
        }
        if head.ends_with(b"\r\n\r\n") || head == b"\r\n" {
            break;
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::other("response head too large"));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut res = Response {
        status,
        headers,
        body: Vec::new(),
        body_len: 0,
    };
    let chunked = res
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length: Option<u64> = res.header("content-length").and_then(|v| v.parse().ok());
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(res);
    }
    let mut sink = Body {
        keep,
        kept: Vec::new(),
        len: 0,
    };
    if chunked {
        read_chunked(r, &mut sink)?;
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(io::Error::other("response body too large"));
        }
        sink.copy(&mut r.by_ref().take(n))?;
        if sink.len < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "response body cut short",
            ));
        }
    } else {
        sink.copy(&mut r.by_ref().take(MAX_BODY))?;
    }
    res.body = sink.kept;
    res.body_len = sink.len;
    Ok(res)
}

struct Body {
    keep: usize,
    kept: Vec<u8>,
    len: u64,
}

impl Body {
    fn copy(&mut self, r: &mut impl Read) -> io::Result<()> {
        let mut buf = [0u8; 64 << 10];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            let room = self.keep.saturating_sub(self.kept.len()).min(n);
            self.kept.extend_from_slice(&buf[..room]);
            self.len += n as u64;
            if self.len > MAX_BODY {
                return Err(io::Error::other("response body too large"));
            }
        }
    }
}

fn read_chunked(r: &mut impl BufRead, sink: &mut Body) -> io::Result<()> {
    let mut line = String::new();
    // Bounded by MAX_BODY through `sink`; the count bounds empty-chunk loops.
    for _ in 0..100_000_000u64 {
        line.clear();
        r.by_ref().take(1024).read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, then the blank line.
            for _ in 0..1000 {
                line.clear();
                if r.by_ref().take(8192).read_line(&mut line)? == 0 || line == "\r\n" {
                    return Ok(());
                }
            }
            return Err(io::Error::other("too many trailers"));
        }
        let before = sink.len;
        sink.copy(&mut r.by_ref().take(size))?;
        if sink.len - before < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunk cut short",
            ));
        }
        line.clear();
        r.by_ref().take(2).read_line(&mut line)?;
    }
    Err(io::Error::other("too many chunks"))
}

/// Many connections each sending its bytes slowly: `prefix` at once, then one byte of
/// `trickle` per `interval`, until the proxy answers or closes, `trickle` runs out, or
/// `deadline` passes.
pub struct Trickle {
    pub prefix: Vec<u8>,
    pub trickle: Vec<u8>,
    pub interval: Duration,
    pub deadline: Duration,
}

/// How one trickling connection ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The status the proxy answered with, if it did.
    pub status: Option<u16>,
    /// When it answered or closed, from the start; `None` if it was still open.
    pub after: Option<Duration>,
    /// Whether all of `trickle` was sent before that.
    pub sent_all: bool,
}

impl Trickle {
    /// Opens `conns` connections and drives them all from this thread.
    pub fn run(&self, addr: SocketAddr, conns: usize) -> Vec<Ended> {
        self.run_then(addr, conns, || {})
    }

    /// Like [`Trickle::run`], calling `opened` once every connection is open.
    pub fn run_then(&self, addr: SocketAddr, conns: usize, opened: impl FnOnce()) -> Vec<Ended> {
        let mut socks: Vec<Option<TcpStream>> = (0..conns)
            .map(|_| {
                let mut s = connect(addr, Duration::from_secs(5)).ok()?;
                s.write_all(&self.prefix).ok()?;
                s.set_nonblocking(true).ok()?;
                Some(s)
            })
            .collect();
        opened();
        let start = Instant::now();
        let mut ended: Vec<Ended> = socks
            .iter()
            .map(|s| Ended {
                status: None,
                after: s.is_none().then(Duration::default),
                sent_all: false,
            })
            .collect();
        let mut sent = 0;
        let ticks = (self.deadline.as_millis() / self.interval.as_millis().max(1)) as u64 + 1;
        for tick in 0..ticks {
            let byte = self.trickle.get(sent).copied();
            for (i, slot) in socks.iter_mut().enumerate() {
                let Some(s) = slot else { continue };
                let mut buf = [0u8; 4096];
                let done = match s.read(&mut buf) {
                    Ok(0) => true,
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]);
                        ended[i].status = text.get(9..12).and_then(|c| c.parse().ok());
                        true
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => match byte {
                        Some(b) if tick > 0 => s.write(&[b]).is_err(),
                        _ => false,
                    },
                    Err(_) => true,
                };
                if done {
                    ended[i].after = Some(start.elapsed());
                    ended[i].sent_all = byte.is_none();
                    *slot = None;
                }
            }
            if tick > 0 && byte.is_some() {
                sent += 1;
            }
            if socks.iter().all(Option::is_none) || start.elapsed() > self.deadline {
                break;
            }
            let next = start + self.interval * (tick as u32 + 1);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        ended
    }
}

/// `400×3 408×2 closed×1 open×0`: what a set of trickling connections got.
pub fn summarize(ended: &[Ended]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for e in ended {
        let key = match (e.status, e.after) {
            (Some(s), _) => s.to_string(),
            (None, Some(_)) => "closed".to_string(),
            (None, None) => "open".to_string(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}
