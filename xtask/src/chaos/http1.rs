//! HTTP/1 abuse: slow clients, heads and bodies the proxy must refuse, and requests whose
//! target is ambiguous.

use std::time::Duration;

use anyhow::Result;

use super::backend::Backend;
use super::proc::Probe;
use super::wire::{self, Ended, Trickle, summarize};
use super::{BODY_TIMEOUT_VAR, Ctx, Outcome, ProbeRule, Report, inbound_proxy, metric_sum, ms};

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// `408×50, last after 2.5 s`: how the connections ended, and how many never did.
fn latest(ended: &[Ended]) -> (String, usize) {
    let open = ended.iter().filter(|e| e.after.is_none()).count();
    let text = match ended.iter().filter_map(|e| e.after).max() {
        Some(last) if open < ended.len() => {
            format!("{}, last after {}", summarize(ended), ms(last))
        }
        _ => summarize(ended),
    };
    (text, open)
}

/// Held: request heads sent a byte at a time get 408 (or a close) after the header read
/// timeout, and other clients are served meanwhile.
pub fn slowloris_headers(ctx: &Ctx) -> Result<Outcome> {
    let timeout = ctx.pick(Duration::from_secs(2), Duration::from_secs(30));
    let conns = ctx.pick(50, 500);
    let backend = Backend::start()?;
    let env = [("MESH_PROXY_HEADER_READ_TIMEOUT", secs(timeout))];
    let mut proxy = inbound_proxy(ctx, &backend, &env)?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    // The proxy may wait one to two timeouts; past three it is not timing out.
    let bound = timeout * 3;
    let ended = Trickle {
        prefix: b"GET /chaos-slowloris HTTP/1.1\r\nHost: chaos.test\r\n".to_vec(),
        trickle: b"X-Slow: a\r\n".repeat(1000),
        interval: Duration::from_millis(500),
        deadline: bound + Duration::from_secs(2),
    }
    .run(proxy.inbound, conns);
    let probe = probe.finish();
    let (ends, open) = latest(&ended);
    let last = ended
        .iter()
        .filter_map(|e| e.after)
        .max()
        .unwrap_or_default();
    let mut report = Report::new(format!(
        "{conns} heads at 1 B/500 ms, header timeout {}",
        ms(timeout)
    ));
    report.note(ends);
    report.expect(
        open == 0 && last <= bound,
        format!("{open} still open after {}", ms(bound)),
    );
    report.expect(backend.saw("/chaos-slowloris") == 0, "forwarded");
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// Held: a header too large for `MESH_PROXY_MAX_HEADER_BYTES` (64 KiB), or too many of them,
/// is 431 and never forwarded.
pub fn oversized_headers(ctx: &Ctx) -> Result<Outcome> {
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let head = "GET /chaos-big HTTP/1.1\r\nHost: chaos.test\r\nConnection: close\r\n";
    let big = format!("{head}X-Big: {}\r\n\r\n", "a".repeat(100 << 10));
    let many = format!("{head}{}\r\n", "X-M: a\r\n".repeat(20_000));
    let mut statuses = Vec::new();
    for raw in [big, many] {
        let (s, _) =
            wire::statuses_until_close(proxy.inbound, raw.as_bytes(), Duration::from_secs(5))?;
        statuses.push(s.first().copied().unwrap_or(0));
    }
    let probe = probe.finish();
    let mut report = Report::new("a 100 KiB header; 20 000 headers");
    report.note(format!("statuses {statuses:?}"));
    report.expect(statuses == [431, 431], "not 431");
    report.expect(backend.saw("/chaos-big") == 0, "forwarded");
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// The request smuggling set: every way to disagree about where a body ends. Each must be
/// refused, and the request hidden in the body must never reach the backend.
const SMUGGLED: &str = "GET /chaos-smuggled HTTP/1.1\r\nHost: chaos.test\r\n\r\n";

fn smuggling_set() -> Vec<(&'static str, String)> {
    let hidden = SMUGGLED;
    let chunked_then_hidden = format!("0\r\n\r\n{hidden}");
    let post = "POST /chaos-front HTTP/1.1\r\nHost: chaos.test\r\n";
    vec![
        (
            "CL.TE",
            format!(
                "{post}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_then_hidden}",
                chunked_then_hidden.len()
            ),
        ),
        (
            "TE.CL",
            format!(
                "{post}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
                hidden.len()
            ),
        ),
        (
            "TE twice",
            format!(
                "{post}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{chunked_then_hidden}"
            ),
        ),
        (
            "TE xchunked",
            format!("{post}Transfer-Encoding: xchunked\r\n\r\n{chunked_then_hidden}"),
        ),
        (
            "TE space colon",
            format!("{post}Transfer-Encoding : chunked\r\n\r\n{chunked_then_hidden}"),
        ),
        (
            "CL twice",
            format!(
                "{post}Content-Length: 0\r\nContent-Length: {}\r\n\r\n{hidden}",
                hidden.len()
            ),
        ),
        (
            "CL +",
            format!("{post}Content-Length: +{}\r\n\r\n{hidden}", hidden.len()),
        ),
        (
            "obs-fold TE",
            format!("{post}X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n{chunked_then_hidden}"),
        ),
    ]
}

/// Held: each smuggling variant is refused and nothing hidden is forwarded.
pub fn smuggling(ctx: &Ctx) -> Result<Outcome> {
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let set = smuggling_set();
    let mut seen = Vec::new();
    let mut accepted = Vec::new();
    for (name, raw) in &set {
        let (statuses, _) =
            wire::statuses_until_close(proxy.inbound, raw.as_bytes(), Duration::from_secs(2))?;
        if statuses.iter().any(|s| (200..300).contains(s)) {
            accepted.push(*name);
        }
        seen.push(format!("{name} {statuses:?}"));
    }
    let probe = probe.finish();
    let smuggled = backend.saw("/chaos-smuggled");
    let mut report = Report::new(format!("{} smuggling variants", set.len()));
    report.note(format!(
        "{}; backend saw {smuggled} hidden",
        seen.join(", ")
    ));
    report.expect(smuggled == 0, "a hidden request reached the backend");
    report.expect(
        accepted.is_empty(),
        format!("accepted: {}", accepted.join(", ")),
    );
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// Row 6: a body sent a byte at a time must time out, and such clients must not keep the
/// connection slots from everyone else.
pub fn slow_body(ctx: &Ctx) -> Result<Outcome> {
    let conns = ctx.pick(20, 200);
    let interval = ctx.pick(Duration::from_secs(3), Duration::from_secs(5));
    let backend = Backend::start()?;
    let mut env = vec![("MESH_PROXY_MAX_CONNECTIONS", conns.to_string())];
    // The short run sets the body timeout low; the long one trusts the default.
    let bound = ctx.pick(Duration::from_secs(12), Duration::from_secs(150));
    if ctx.mode == super::Mode::Short {
        env.push((BODY_TIMEOUT_VAR, "2s".to_string()));
    }
    let mut proxy = inbound_proxy(ctx, &backend, &env)?;
    let before = proxy.usage();
    // The probe starts once the slow clients hold every slot, as a client arriving after
    // them would.
    let mut probe = None;
    let ended = Trickle {
        prefix:
            b"POST /chaos-slow-body HTTP/1.1\r\nHost: chaos.test\r\nContent-Length: 100000\r\n\r\nx"
                .to_vec(),
        trickle: vec![b'x'; 100],
        interval,
        deadline: bound,
    }
    .run_then(proxy.inbound, conns, || {
        probe = Some(Probe::start(proxy.inbound))
    });
    let probe = probe.map(Probe::finish).unwrap_or_default();
    let after = wire::get(proxy.inbound, "/probe", Duration::from_secs(5));
    let (ends, open) = latest(&ended);
    let mut report = Report::new(format!(
        "{conns} bodies at 1 B/{} with MESH_PROXY_MAX_CONNECTIONS={conns}{}",
        ms(interval),
        ctx.pick(format!(", {BODY_TIMEOUT_VAR}=2s"), String::new())
    ));
    report.note(ends);
    report.expect(open == 0, format!("{open} still open after {}", ms(bound)));
    report.expect(
        after.as_ref().is_ok_and(|r| r.status == 200),
        "a request after them was refused",
    );
    report.proxy(&mut proxy, before, &probe, ProbeRule::MayBeRefused);
    Ok(report.outcome())
}

/// Row 7: a request line sent a byte at a time must be cut off, not forwarded as opaque TCP
/// once protocol detection gives up.
pub fn slow_request_line(ctx: &Ctx) -> Result<Outcome> {
    let interval = ctx.pick(Duration::from_millis(100), Duration::from_secs(5));
    let backend = Backend::start()?;
    let mut env = vec![("MESH_PROXY_SERVER_SPEAKS_FIRST_WINDOW", "0".to_string())];
    if ctx.mode == super::Mode::Short {
        env.push(("LINKERD2_PROXY_INBOUND_DETECT_TIMEOUT", "1s".to_string()));
        env.push(("MESH_PROXY_HEADER_READ_TIMEOUT", "2s".to_string()));
    }
    let mut proxy = inbound_proxy(ctx, &backend, &env)?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    // As short as a request can be, so that the long run, at 5 s a byte, ends in minutes.
    let line = b"GET /chaos-slow-line HTTP/1.1\r\n\r\n";
    let ended = Trickle {
        prefix: b"G".to_vec(),
        trickle: line[1..].to_vec(),
        interval,
        deadline: interval * line.len() as u32 + Duration::from_secs(5),
    }
    .run(proxy.inbound, 1);
    let probe = probe.finish();
    let forwarded = backend.saw("/chaos-slow-line");
    let e = ended.first().cloned();
    let mut report = Report::new(format!(
        "a {}-byte request at 1 B/{}{}",
        line.len(),
        ms(interval),
        ctx.pick(", detect timeout 1 s, header timeout 2 s", "")
    ));
    report.note(format!(
        "{} after {}, whole head sent: {}; backend saw it {forwarded}×",
        summarize(&ended),
        ms(e.as_ref().and_then(|e| e.after).unwrap_or_default()),
        e.as_ref().is_some_and(|e| e.sent_all)
    ));
    report.expect(forwarded == 0, "forwarded to the backend");
    report.expect(
        e.is_some_and(|e| e.after.is_some() && !e.sent_all),
        "not cut off before the head was complete",
    );
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// Row 8: in HTTP proxy mode (outbound), an ambiguous target is refused, and an
/// absolute-form URI wins over `Host`. Every host is a loopback address, so that nothing asks
/// a resolver: "the wrong one" is a port where nothing listens.
pub fn host_confusion(ctx: &Ctx) -> Result<Outcome> {
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let b = backend.addr;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let send = |raw: String| wire::exchange(proxy.outbound, raw.as_bytes(), Duration::from_secs(5));
    let tail = "Connection: close\r\n\r\n";
    let two_hosts = send(format!(
        "GET /chaos-two-hosts HTTP/1.1\r\nHost: {b}\r\nHost: {closed}\r\n{tail}"
    ));
    let uri_wins = send(format!(
        "GET http://{b}/chaos-uri HTTP/1.1\r\nHost: {closed}\r\n{tail}"
    ));
    let host_loses = send(format!(
        "GET http://{closed}/chaos-host HTTP/1.1\r\nHost: {b}\r\n{tail}"
    ));
    let userinfo = send(format!(
        "GET /chaos-userinfo HTTP/1.1\r\nHost: evil@{b}\r\n{tail}"
    ));
    let probe = probe.finish();
    let status = |r: &std::io::Result<wire::Response>| r.as_ref().map_or(0, |r| r.status);
    let uri_host = uri_wins
        .as_ref()
        .map(|r| r.body_text())
        .unwrap_or_default()
        .rsplit("host=")
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let mut report = Report::new("two Host; absolute URI vs Host (both ways); Host with userinfo");
    report.note(format!(
        "two Host {}; URI to backend with Host a closed port {} (backend saw host={uri_host}); \
         URI to a closed port with Host backend {}; userinfo {}",
        status(&two_hosts),
        status(&uri_wins),
        status(&host_loses),
        status(&userinfo)
    ));
    report.expect(status(&two_hosts) == 400, "two Host headers not 400");
    report.expect(
        status(&uri_wins) == 200 && uri_host == b.to_string(),
        "the absolute URI did not win",
    );
    report.expect(
        backend.saw("/chaos-host") == 0 && status(&host_loses) != 200,
        "routed by Host over the URI",
    );
    report.expect(status(&userinfo) == 400, "userinfo in Host not 400");
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}

/// Row 9: a malformed chunked body is the client's fault: 400, not 502, and not counted as
/// an upstream failure.
pub fn malformed_chunked(ctx: &Ctx) -> Result<Outcome> {
    let backend = Backend::start()?;
    let mut proxy = inbound_proxy(ctx, &backend, &[])?;
    let before = proxy.usage();
    let probe = Probe::start(proxy.inbound);
    let head =
        "POST /chaos-chunked HTTP/1.1\r\nHost: chaos.test\r\nTransfer-Encoding: chunked\r\n\r\n";
    let bodies = [
        ("bad size", "zz\r\nhello\r\n0\r\n\r\n"),
        (
            "size overflow",
            "fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        ("no CRLF after data", "5\r\nhelloXX0\r\n\r\n"),
    ];
    let keepalive = "GET /chaos-first HTTP/1.1\r\nHost: chaos.test\r\n\r\n";
    let mut seen = Vec::new();
    let mut wrong = Vec::new();
    for (name, body) in bodies {
        for (place, prefix) in [("first", ""), ("second", keepalive)] {
            let raw = format!("{prefix}{head}{body}");
            let (statuses, _) =
                wire::statuses_until_close(proxy.inbound, raw.as_bytes(), Duration::from_secs(3))?;
            let last = statuses.last().copied().unwrap_or(0);
            if last != 400 {
                wrong.push(format!("{name} ({place}) {last}"));
            }
            seen.push(last);
        }
    }
    let probe = probe.finish();
    let (metrics, _) = proxy.metrics(16 << 20)?;
    let upstream = metric_sum(&metrics, "response_total", &["error=\"upstream\""]);
    let mut report = Report::new(format!(
        "{} malformed chunked bodies, as first and as second request",
        bodies.len()
    ));
    report.note(format!(
        "statuses {seen:?}; upstream failures counted {upstream}"
    ));
    report.expect(wrong.is_empty(), format!("not 400: {}", wrong.join(", ")));
    report.expect(upstream == 0.0, "counted as upstream failures");
    report.proxy(&mut proxy, before, &probe, ProbeRule::MustPass);
    Ok(report.outcome())
}
