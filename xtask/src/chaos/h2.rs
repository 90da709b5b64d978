//! HTTP/2 floods, written as raw frames: no client library sends these on purpose.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::backend::Backend;
use super::proc::Probe;
use super::{Ctx, Outcome, ProbeRule, Report, inbound_proxy, mb, wire};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// RSS an attack on one connection may add.
const RSS_GROWTH: u64 = 64 << 20;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK for `GET http://chaos.test/`: indexed :method, :scheme, :path, and a literal
/// :authority (no Huffman, not indexed).
fn get_block() -> Vec<u8> {
    let authority = b"chaos.test";
    let mut b = vec![0x82, 0x86, 0x84, 0x01, authority.len() as u8];
    b.extend_from_slice(authority);
    b
}

/// What the proxy sent back on an attacked connection.
#[derive(Debug, Default)]
struct Seen {
    goaway: Option<u32>,
    closed: bool,
}

/// A connection with the preface sent and, unless `read` is off, a thread reading frames.
struct Conn {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<Seen>>,
}

/// What the attacked connection must end with.
#[derive(PartialEq)]
enum Expect {
    /// A GOAWAY or a close: the proxy noticed the attack.
    Stopped,
    /// Only bounded memory and service to others; backpressure is an answer too.
    Bounded,
}

#[derive(PartialEq)]
enum Reading {
    /// Read and parse what the proxy sends.
    On,
    /// Never read, so the proxy's replies back up.
    Off,
}

impl Conn {
    fn open(addr: SocketAddr, reading: Reading) -> io::Result<Conn> {
        let mut stream = wire::connect(addr, Duration::from_secs(2))?;
        stream.write_all(PREFACE)?;
        stream.write_all(&frame(SETTINGS, 0, 0, &[]))?;
        let stop = Arc::new(AtomicBool::new(false));
        let reader = match reading {
            Reading::On => {
                let r = stream.try_clone()?;
                r.set_read_timeout(Some(Duration::from_millis(200)))?;
                let stop = stop.clone();
                Some(std::thread::spawn(move || read_frames(r, &stop)))
            }
            Reading::Off => None,
        };
        Ok(Conn {
            stream,
            stop,
            reader,
        })
    }

    /// Reads whatever is left for up to a second, then stops reading.
    fn finish(mut self) -> Seen {
        match self.reader.take() {
            Some(h) => {
                // Not at once: a proxy that stops the attack mid-write sends its GOAWAY or
                // reset just as the attack's last write fails, and the reader must see it.
                let stop = self.stop.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(1));
                    stop.store(true, Relaxed);
                });
                h.join().unwrap_or_default()
            }
            None => {
                let _ = self
                    .stream
                    .set_read_timeout(Some(Duration::from_millis(200)));
                let stop = Arc::new(AtomicBool::new(false));
                let flag = stop.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(1));
                    flag.store(true, Relaxed);
                });
                read_frames(self.stream, &stop)
            }
        }
    }
}

/// Reads frames until the peer closes or `stop` is set, noting a GOAWAY.
fn read_frames(mut s: TcpStream, stop: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    // Bounded by `stop` (set by the case) and the read timeout.
    while !stop.load(Relaxed) {
        match s.read(&mut chunk) {
            Ok(0) => {
                seen.closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => {
                seen.closed = true;
                break;
            }
        }
        // Skips the server preface's octets only through whole frames.
        let mut at = 0;
        while buf.len() >= at + 9 {
            let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
            if buf.len() < at + 9 + len {
                break;
            }
            if buf[at + 3] == GOAWAY && len >= 8 {
                let p = &buf[at + 9 + 4..at + 9 + 8];
                seen.goaway = Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
            }
            at += 9 + len;
        }
        buf.drain(..at);
    }
    seen
}

/// Runs `attack` on one connection while the probe runs, and reports the shared measures.
fn flood(
    ctx: &Ctx,
    tried: String,
    reading: Reading,
    attack: impl FnOnce(&mut TcpStream, Instant) -> (u64, String),
    expect: Expect,
) -> Result<Outcome> {
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let mut conn = Conn::open(proxy.inbound, reading)?;
    let (sent, what) = attack(&mut conn.stream, Instant::now());
    let seen = conn.finish();
    let probe = probe.finish();
    let mut report = Report::new(tried);
    let ended = match (seen.goaway, seen.closed) {
        (Some(code), _) => format!("GOAWAY {code:#x}"),
        (None, true) => "closed".to_string(),
        (None, false) => "still open".to_string(),
    };
    report.note(format!("{sent} {what} sent, then {ended}"));
    if expect == Expect::Stopped {
        report.expect(
            seen.goaway.is_some() || seen.closed,
            "the connection was never stopped",
        );
    }
    let growth = proxy.peak_rss().saturating_sub(before.rss);
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    report.expect(growth < RSS_GROWTH, format!("RSS grew {}", mb(growth)));
    Ok(report.outcome())
}

/// Held: HEADERS then RST_STREAM, as fast as possible (CVE-2023-44487): GOAWAY, bounded
/// memory, other clients served.
pub fn rapid_reset(ctx: &Ctx) -> Result<Outcome> {
    let streams: u32 = ctx.pick(20_000, 500_000);
    let limit = ctx.pick(Duration::from_secs(10), Duration::from_secs(60));
    let block = get_block();
    let attack = |s: &mut TcpStream, start: Instant| {
        let mut sent = 0u64;
        let mut batch = Vec::new();
        for i in 0..streams {
            let id = 2 * i + 1;
            batch.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
            batch.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
            if batch.len() > 16 << 10 {
                if s.write_all(&batch).is_err() {
                    break;
                }
                batch.clear();
                sent = u64::from(i) + 1;
            }
            if start.elapsed() > limit {
                break;
            }
        }
        (sent, "HEADERS+RST_STREAM pairs".to_string())
    };
    let tried = format!("{streams} streams opened and reset at once");
    flood(ctx, tried, Reading::On, attack, Expect::Stopped)
}

/// Held: one HEADERS without END_HEADERS, then CONTINUATION frames without end: stopped
/// near the header limit, not buffered.
pub fn continuation_flood(ctx: &Ctx) -> Result<Outcome> {
    let total: u64 = ctx.pick(32 << 20, 256 << 20);
    let limit = ctx.pick(Duration::from_secs(10), Duration::from_secs(60));
    // Literal headers with new names, not indexed: each one is kept or counted by the peer.
    let mut block = Vec::new();
    while block.len() < (16 << 10) - 32 {
        block.extend_from_slice(&[0x00, 6]);
        block.extend_from_slice(b"x-cont");
        block.extend_from_slice(&[16]);
        block.extend_from_slice(b"aaaaaaaaaaaaaaaa");
    }
    let attack = |s: &mut TcpStream, start: Instant| {
        let mut sent = 0u64;
        let first = frame(HEADERS, END_STREAM, 1, &get_block());
        if s.write_all(&first).is_err() {
            return (0, "bytes of CONTINUATION".to_string());
        }
        let cont = frame(CONTINUATION, 0, 1, &block);
        while sent < total && start.elapsed() < limit {
            if s.write_all(&cont).is_err() {
                break;
            }
            sent += cont.len() as u64;
        }
        (sent, "bytes of CONTINUATION".to_string())
    };
    let tried = format!("CONTINUATION frames without end, up to {}", mb(total));
    flood(ctx, tried, Reading::On, attack, Expect::Stopped)
}

/// Writes `frame` `count` times without reading the replies, until the proxy stops reading
/// (the write times out), closes, or time runs out.
fn unread_flood(ctx: &Ctx, name: &str, one: Vec<u8>, count: u64) -> Result<Outcome> {
    let limit = ctx.pick(Duration::from_secs(10), Duration::from_secs(60));
    let batch: Vec<u8> = one.repeat(1000);
    let attack = |s: &mut TcpStream, start: Instant| {
        let mut sent = 0u64;
        let mut how = "all written";
        while sent < count && start.elapsed() < limit {
            match s.write_all(&batch) {
                Ok(()) => sent += 1000,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    how = "the proxy stopped reading";
                    break;
                }
                Err(_) => {
                    how = "write failed";
                    break;
                }
            }
        }
        (sent, format!("{name} frames ({how})"))
    };
    let tried = format!("up to {count} {name} frames, replies never read");
    flood(ctx, tried, Reading::Off, attack, Expect::Bounded)
}

/// Held: SETTINGS frames whose ACKs are never read.
pub fn settings_flood(ctx: &Ctx) -> Result<Outcome> {
    // SETTINGS_INITIAL_WINDOW_SIZE = 65535.
    let one = frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]);
    unread_flood(ctx, "SETTINGS", one, ctx.pick(200_000, 5_000_000))
}

/// Held: PING frames whose replies are never read.
pub fn ping_flood(ctx: &Ctx) -> Result<Outcome> {
    let one = frame(PING, 0, 0, b"chaos!!!");
    unread_flood(ctx, "PING", one, ctx.pick(200_000, 5_000_000))
}
