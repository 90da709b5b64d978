//! The proxy's neighbours going away: its backend killed, itself told to stop.

use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;

use super::backend::Backend;
use super::proc::{Probe, Proxy};
use super::{Ctx, Outcome, ProbeRule, Report, inbound_proxy, ms, wire};

/// `0`, `signal 9` or `none` (still running).
fn exit_code(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "none".to_string(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => code.to_string(),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => s.to_string(),
        },
    }
}

/// What one keep-alive client saw across a SIGTERM.
#[derive(Debug, Default, Clone)]
struct Client {
    /// The status of the request in flight when SIGTERM came.
    status: u16,
    /// Whether that response said `Connection: close`.
    closes: bool,
    /// A response that did not close was followed by another request: answered or lost.
    next: Option<bool>,
}

/// One keep-alive connection: a first request, then `/slow/MS` (in flight at SIGTERM),
/// then, unless told to close, one more request.
fn keepalive_client(inbound: std::net::SocketAddr, slow_ms: u64) -> Client {
    let mut c = Client::default();
    let Ok(mut s) = wire::connect(inbound, Duration::from_secs(15)) else {
        return c;
    };
    let Ok(reader) = s.try_clone() else { return c };
    let mut r = BufReader::new(reader);
    let get = |s: &mut std::net::TcpStream, path: &str| {
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: chaos.test\r\n\r\n").as_bytes())
    };
    if get(&mut s, "/chaos-warm").is_err() || wire::read_response(&mut r, 1024).is_err() {
        return c;
    }
    if get(&mut s, &format!("/slow/{slow_ms}")).is_err() {
        return c;
    }
    let Ok(res) = wire::read_response(&mut r, 1024) else {
        return c;
    };
    c.status = res.status;
    c.closes = res.closes();
    if !c.closes {
        let answered =
            get(&mut s, "/chaos-next").is_ok() && wire::read_response(&mut r, 1024).is_ok();
        c.next = Some(answered);
    }
    c
}

/// Runs `clients` keep-alive clients, sends SIGTERM while each has a slow request in flight,
/// and returns what they saw, the exit status and how long after SIGTERM it came.
fn sigterm_under(
    proxy: &mut Proxy,
    backend: &Backend,
    clients: usize,
    slow_ms: u64,
) -> Result<(Vec<Client>, Option<std::process::ExitStatus>, Duration)> {
    let base = backend.requests();
    let inbound = proxy.inbound;
    let (seen, exit, after) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| scope.spawn(move || keepalive_client(inbound, slow_ms)))
            .collect();
        // Every client has sent its warm-up and its slow request.
        let deadline = Instant::now() + Duration::from_secs(10);
        while backend.requests() < base + 2 * clients as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let start = Instant::now();
        let sent = proxy.signal(Signal::SIGTERM);
        let seen: Vec<Client> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        (seen, sent, start)
    });
    exit?;
    let status = proxy.wait_exit(Duration::from_secs(20));
    Ok((seen, status, after.elapsed()))
}

/// Row 3: SIGTERM with keep-alive clients: their in-flight responses carry
/// `Connection: close`, no next request is lost, and the proxy exits once they are done.
pub fn sigterm_keepalive(ctx: &Ctx) -> Result<Outcome> {
    let clients = ctx.pick(64, 256);
    let slow_ms = 1000;
    let backend = Backend::start()?;
    let env = [("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "30s".to_string())];
    let mut proxy = inbound_proxy(ctx, &backend, &env)?;
    let (seen, status, took) = sigterm_under(&mut proxy, &backend, clients, slow_ms)?;
    let ok = seen.iter().filter(|c| c.status == 200).count();
    let closes = seen.iter().filter(|c| c.closes).count();
    let lost = seen.iter().filter(|c| c.next == Some(false)).count();
    let answered = seen.iter().filter(|c| c.next == Some(true)).count();
    let mut report = Report::new(format!(
        "SIGTERM with {clients} keep-alive clients, each with a {slow_ms} ms request in flight"
    ));
    report.note(format!(
        "{ok} × 200, {closes} with Connection: close; next request answered {answered}, \
         lost {lost}; exit {} {} after SIGTERM",
        exit_code(status),
        ms(took)
    ));
    report.expect(ok == clients, "in-flight requests failed");
    report.expect(
        closes == clients,
        format!("{} responses without Connection: close", clients - closes),
    );
    report.expect(lost == 0, format!("{lost} next requests lost"));
    report.expect(status.is_some_and(|s| s.success()), "no clean exit");
    report.expect(
        took < Duration::from_millis(slow_ms + 3000),
        "slow to exit after draining",
    );
    let (panics, first) = proxy.panics();
    report.expect(
        panics == 0,
        format!("panicked: {}", first.unwrap_or_default()),
    );
    Ok(report.outcome())
}

/// Held: SIGTERM with requests in flight: they finish, new connections are refused, and the
/// proxy exits 0 soon after.
pub fn sigterm_in_flight(ctx: &Ctx) -> Result<Outcome> {
    let clients = ctx.pick(16, 64);
    let backend = Backend::start()?;
    let env = [("LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD", "10s".to_string())];
    let mut proxy = inbound_proxy(ctx, &backend, &env)?;
    let inbound = proxy.inbound;
    let (statuses, refused, status, took) = std::thread::scope(|scope| -> Result<_> {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(move || {
                    wire::get(inbound, "/slow/700", Duration::from_secs(15)).map_or(0, |r| r.status)
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while backend.requests() < clients as u64 {
            if Instant::now() > deadline {
                bail!(
                    "the backend saw {} of {clients} requests",
                    backend.requests()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let start = Instant::now();
        proxy.signal(Signal::SIGTERM)?;
        let refuse_by = Instant::now() + Duration::from_secs(2);
        let refused = loop {
            if std::net::TcpStream::connect(inbound).is_err() {
                break true;
            }
            if Instant::now() > refuse_by {
                break false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap_or(0)).collect();
        let status = proxy.wait_exit(Duration::from_secs(15));
        Ok((statuses, refused, status, start.elapsed()))
    })?;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let mut report = Report::new(format!(
        "SIGTERM with {clients} requests of 700 ms in flight"
    ));
    report.note(format!(
        "{ok} × 200, new connections refused: {refused}, exit {} {} after SIGTERM",
        exit_code(status),
        ms(took)
    ));
    report.expect(ok == clients, format!("statuses {statuses:?}"));
    report.expect(refused, "still accepting");
    report.expect(status.is_some_and(|s| s.success()), "no clean exit");
    report.expect(took < Duration::from_secs(5), "slow to exit");
    let (panics, first) = proxy.panics();
    report.expect(
        panics == 0,
        format!("panicked: {}", first.unwrap_or_default()),
    );
    Ok(report.outcome())
}

/// One request of the load in `backend_killed`: when it started (from the case's start),
/// how long it took, and its status (0 for a connection error).
struct Event {
    at: Duration,
    took: Duration,
    status: u16,
}

/// Held: the backend dies under load: 502 within milliseconds, no hang, and 200 again once
/// it is back.
pub fn backend_killed(ctx: &Ctx) -> Result<Outcome> {
    let phase = ctx.pick(Duration::from_secs(2), Duration::from_secs(10));
    let backend = Backend::start()?;
    let port = backend.addr.port();
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let start = Instant::now();
    let inbound = proxy.inbound;
    let (events, restarted) = std::thread::scope(|scope| -> Result<_> {
        let loads: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(move || {
                    let mut events = Vec::new();
                    while start.elapsed() < phase * 3 && events.len() < 1_000_000 {
                        let t = Instant::now();
                        let status = wire::get(inbound, "/", Duration::from_secs(10))
                            .map_or(0, |r| r.status);
                        events.push(Event {
                            at: t - start,
                            took: t.elapsed(),
                            status,
                        });
                    }
                    events
                })
            })
            .collect();
        std::thread::sleep(phase);
        backend.stop();
        drop(backend);
        std::thread::sleep(phase);
        let mut again = None;
        for _ in 0..100 {
            match Backend::start_on(port) {
                Ok(b) => {
                    again = Some(b);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let Some(again) = again else {
            bail!("could not restart the backend on port {port}");
        };
        let events: Vec<Event> = loads
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        Ok((events, again))
    })?;
    drop(restarted);
    let probe = probe.finish();
    let (killed, back) = (phase, phase * 2);
    let first_fail = events
        .iter()
        .filter(|e| e.at >= killed && e.status != 200)
        .map(|e| e.at + e.took - killed)
        .min();
    let recovered = events
        .iter()
        .filter(|e| e.at >= back && e.status == 200)
        .map(|e| e.at + e.took - back)
        .min();
    let worst = events.iter().map(|e| e.took).max().unwrap_or_default();
    let count = |f: &dyn Fn(u16) -> bool| events.iter().filter(|e| f(e.status)).count();
    let mut report = Report::new(format!(
        "backend stopped under 4 clients for {}, then back",
        ms(phase)
    ));
    report.note(format!(
        "{} requests: {} × 200, {} × 502, {} × other, {} connection errors; first failure {} \
         after the kill, 200 again {} after the restart, slowest {}",
        events.len(),
        count(&|s| s == 200),
        count(&|s| s == 502),
        count(&|s| s != 200 && s != 502 && s != 0),
        count(&|s| s == 0),
        first_fail.map_or("never".to_string(), ms),
        recovered.map_or("never".to_string(), ms),
        ms(worst)
    ));
    report.expect(
        first_fail.is_some_and(|d| d < Duration::from_secs(1)),
        "no quick failure while the backend was down",
    );
    report.expect(
        recovered.is_some_and(|d| d < Duration::from_secs(2)),
        "no recovery",
    );
    report.expect(worst < Duration::from_secs(2), "a request hung");
    report.proxy(&mut proxy, before, &probe, ProbeRule::MayBeRefused);
    Ok(report.outcome())
}
