use std::time::{Duration, Instant};

use super::backend::Backend;
use super::report::{Row, Run, against_all_fast, render, summarise};
use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn options_defaults_quick_and_rejects() {
    let o = Options::parse(&[]).unwrap();
    assert_eq!(o.common.rounds, 5);
    assert_eq!(o.common.connections, 16);
    assert_eq!(o.delay, Duration::from_millis(20));
    assert_eq!(o.scenarios, Scenario::ALL);

    let o = Options::parse(&args(&["--quick"])).unwrap();
    assert_eq!(o.common.rounds, 1);
    assert_eq!(o.common.duration, Duration::from_secs(2));
    assert_eq!(o.common.warm_up, Duration::from_secs(1));

    // A flag after --quick overrides it.
    let o = Options::parse(&args(&[
        "--quick",
        "--rounds",
        "3",
        "--scenarios",
        "direct,round-robin",
        "--delay-ms",
        "50",
        "--mesh-env",
        "A=b=c",
    ]))
    .unwrap();
    assert_eq!(o.common.rounds, 3);
    assert_eq!(o.scenarios, [Scenario::Direct, Scenario::RoundRobin]);
    assert_eq!(o.delay, Duration::from_millis(50));
    assert_eq!(o.common.mesh_env, [("A".to_string(), "b=c".to_string())]);

    assert!(Options::parse(&args(&["--scenarios", "ewma"])).is_err());
    assert!(Options::parse(&args(&["--rounds"])).is_err());
    assert!(Options::parse(&args(&["--rounds", "x"])).is_err());
    assert!(Options::parse(&args(&["--mesh-env", "A"])).is_err());
    assert!(Options::parse(&args(&["--fast"])).is_err());
}

#[test]
fn scenarios_name_their_balancer() {
    for s in Scenario::ALL {
        assert_eq!(Scenario::parse(s.name()), Some(s));
    }
    assert_eq!(Scenario::RoundRobin.balancer(), Some("round-robin"));
    assert_eq!(Scenario::LeastLoaded.balancer(), Some("least-loaded"));
    assert_eq!(Scenario::AllFast.balancer(), Some("peak-ewma"));
    assert_eq!(Scenario::Direct.balancer(), None);
    assert!(Scenario::PeakEwma.has_slow());
    assert!(!Scenario::AllFast.has_slow());
}

fn run(p50: f64, p99: f64, rps: f64, to_slow: u64, to_all: u64) -> Run {
    Run {
        rps,
        p50_ms: p50,
        p99_ms: p99,
        seconds: 2.0,
        proxy_cpu_s: Some(1.0),
        to_slow,
        to_all,
    }
}

#[test]
fn summary_takes_medians_and_pools_the_slow_share() {
    let runs = [
        run(0.5, 3.0, 9000.0, 10, 1000),
        run(0.4, 2.0, 10000.0, 30, 1000),
        run(0.6, 9.0, 8000.0, 20, 2000),
    ];
    let r = summarise(&runs, true).unwrap();
    assert_eq!((r.p50, r.p99, r.rps), (0.5, 3.0, 9000.0));
    // 60 of 4000 requests, not the median of the rounds' shares.
    assert_eq!(r.slow_share, Some(0.015));
    assert_eq!(r.cpu, Some(0.5));
    assert_eq!(summarise(&runs, false).unwrap().slow_share, None);
    assert_eq!(summarise(&[], true), None);
    // No request reached the set: no share rather than a division by zero.
    assert_eq!(
        summarise(&[run(1.0, 1.0, 1.0, 0, 0)], true)
            .unwrap()
            .slow_share,
        None
    );
}

fn row(p99: f64, slow: Option<f64>) -> Option<Row> {
    Some(Row {
        rps: 1000.0,
        p50: 0.5,
        p99,
        slow_share: slow,
        cpu: None,
    })
}

#[test]
fn ratios_are_over_the_all_fast_case() {
    let rows = [
        ("peak-ewma", row(3.0, Some(0.02))),
        ("round-robin", row(24.0, Some(0.33))),
        ("least-loaded", None),
        ("direct", row(1.0, None)),
        ("all-fast", row(2.0, None)),
    ];
    assert_eq!(
        against_all_fast(&rows),
        [
            ("peak-ewma".to_string(), 1.5),
            ("round-robin".to_string(), 12.0)
        ]
    );
    let text = render(
        &rows,
        &[("least-loaded", "round 1: 5 of 9 failed".to_string())],
    );
    let line = |start: &str, end: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(start) && l.ends_with(end))
    };
    assert!(line("peak-ewma ", " 1.50×  within target"), "{text}");
    assert!(line("round-robin ", " 12.00×"), "{text}");
    assert!(
        text.contains("peak-ewma / round-robin: p99 0.12×"),
        "{text}"
    );
    assert!(text.contains("least-loaded: failed: round 1"), "{text}");
    assert!(text.contains("2.0%"), "{text}");
    // A failed scenario has no row of figures.
    assert!(
        !text.lines().any(|l| l.starts_with("least-loaded  ")),
        "{text}"
    );

    let over = [
        ("peak-ewma", row(3.1, Some(0.02))),
        ("all-fast", row(2.0, None)),
    ];
    assert!(render(&over, &[]).contains("OVER target"));
    // Without the all-fast case there is nothing to compare with.
    assert!(against_all_fast(&rows[..4]).is_empty());
}

#[test]
fn backends_answer_and_the_slow_one_is_slower() {
    let fast = Backend::start(Duration::ZERO).unwrap();
    let slow = Backend::start(Duration::from_millis(20)).unwrap();
    let time = |b: &Backend| {
        let start = Instant::now();
        assert_eq!(procs::http_get(b.addr, "web", "/").unwrap(), 200);
        start.elapsed()
    };
    let (f, s) = (time(&fast), time(&slow));
    assert!(s >= Duration::from_millis(20), "slow took {s:?}");
    assert!(s >= f, "slow {s:?}, fast {f:?}");
    assert_eq!((fast.requests(), slow.requests()), (1, 1));
}

#[test]
fn backend_keeps_connections_alive() {
    use std::io::{Read, Write};
    let b = Backend::start(Duration::ZERO).unwrap();
    let mut conn = std::net::TcpStream::connect(b.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n";
    conn.write_all(&[request.as_slice(), request.as_slice()].concat())
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.windows(3).filter(|w| w == b"ok\n").count() < 2 && Instant::now() < deadline {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    assert_eq!(b.requests(), 2);
}

#[test]
fn backend_says_it_closes_when_asked_to() {
    use std::io::{Read, Write};
    let b = Backend::start(Duration::ZERO).unwrap();
    let mut conn = std::net::TcpStream::connect(b.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .unwrap();
    // read_to_end ends only when the backend closes, within the read timeout.
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nok\n"), "{text}");
}
