use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::certs::{CLIENT, Identities, SERVER};
use super::hops::namer_line;
use super::report::{
    ConnRow, ConnRun, GOAL, Report, Row, Run, Tls, inbound_connections, metric_sum, render,
    summarise, summarise_conns, tls_of,
};
use super::*;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn options_defaults_quick_and_rejects() {
    let o = Options::parse(&[]).unwrap();
    assert_eq!((o.common.rounds, o.common.connections), (3, 32));
    assert_eq!(o.common.duration, Duration::from_secs(5));
    assert_eq!(o.handshake_duration, Duration::from_secs(3));
    assert_eq!(o.modes, Mode::ALL);
    // Two cores: the proxies share one, wrk and the server the other; more: one each.
    let o = Options::parse_for(&[], 2).unwrap();
    assert_eq!(
        (o.outbound_cpu, o.inbound_cpu, o.common.load_cpu),
        (0, 0, 1)
    );
    let o = Options::parse_for(&[], 8).unwrap();
    assert_eq!(
        (o.outbound_cpu, o.inbound_cpu, o.common.load_cpu),
        (0, 1, 2)
    );

    let o = Options::parse(&args(&[
        "--quick",
        "--rounds",
        "2",
        "--modes",
        "direct,mtls",
        "--handshake-duration",
        "0",
        "--mesh-env",
        "A=b=c",
        "--inbound-cpu",
        "3",
    ]))
    .unwrap();
    assert_eq!(o.common.rounds, 2);
    assert_eq!(o.common.duration, Duration::from_secs(2));
    assert_eq!(o.modes, [Mode::Direct, Mode::Mtls]);
    assert!(o.handshake_duration.is_zero());
    assert_eq!(o.common.mesh_env, [("A".to_string(), "b=c".to_string())]);
    assert_eq!(o.inbound_cpu, 3);
    // Zero rounds or seconds would measure nothing.
    let o = Options::parse(&args(&["--rounds", "0", "--duration", "0"])).unwrap();
    assert_eq!(
        (o.common.rounds, o.common.duration),
        (1, Duration::from_secs(1))
    );

    for bad in [
        &["--modes", "tls"][..],
        &["--modes", ""],
        &["--rounds"],
        &["--rounds", "x"],
        &["--mesh-env", "A"],
        &["--fast"],
    ] {
        assert!(Options::parse(&args(bad)).is_err(), "{bad:?}");
    }
    for m in Mode::ALL {
        assert_eq!(Mode::parse(m.name()), Some(m));
    }
}

#[test]
fn namer_lines_name_the_inbound_port_and_identity() {
    assert_eq!(namer_line(4143, None), "127.0.0.1 4143\n");
    assert_eq!(
        namer_line(4143, Some(SERVER)),
        format!("127.0.0.1 4143 tls={SERVER}\n")
    );
}

const METRICS: &str = "\
# HELP request_total Total count of HTTP requests.
request_total{direction=\"inbound\",authority=\"web\",tls=\"true\",client_id=\"c\"} 90
request_total{direction=\"inbound\",authority=\"web\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 10
request_total{direction=\"outbound\",authority=\"web\",tls=\"true\"} 500
tcp_open_total{direction=\"inbound\",peer=\"src\",tls=\"true\"} 7
tcp_open_total{direction=\"inbound\",peer=\"dst\",tls=\"no_identity\"} 3
tcp_open_total{direction=\"inbound\",peer=\"src\",tls=\"no_identity\"} 2
";

#[test]
fn metrics_say_whether_inbound_requests_were_encrypted() {
    assert_eq!(
        metric_sum(METRICS, "request_total", &["direction=\"inbound\""]),
        100.0
    );
    assert_eq!(inbound_connections(METRICS), 9.0);
    assert_eq!(tls_of(METRICS), Tls::Encrypted(0.9));
    let plain = "request_total{direction=\"inbound\",tls=\"no_identity\"} 5\n\
                 request_total{direction=\"outbound\",tls=\"true\"} 5\n";
    assert_eq!(tls_of(plain), Tls::NotEncrypted);
    assert!(matches!(tls_of(""), Tls::Unknown(_)));
}

fn usage(cpu_s: f64, peak_rss: u64) -> Option<Usage> {
    Some(Usage { cpu_s, peak_rss })
}

#[test]
fn summaries_take_medians_per_request_and_peak_memory() {
    let run = |rps: f64, p99: f64, out_cpu: f64, rss: u64| Run {
        rps,
        p50_ms: p99 / 2.0,
        p99_ms: p99,
        requests: 10_000.0,
        outbound: usage(out_cpu, rss),
        inbound: usage(out_cpu / 2.0, rss / 2),
    };
    let runs = [
        run(9000.0, 3.0, 0.2, 9_000_000),
        run(8000.0, 9.0, 0.4, 12_000_000),
        run(10000.0, 2.0, 0.3, 10_000_000),
    ];
    let r = summarise(&runs).unwrap();
    assert_eq!((r.rps, r.p99, r.p50), (9000.0, 3.0, 1.5));
    // 0.3 CPU-s over 10 000 requests: 30 µs each.
    assert!((r.outbound_us.unwrap() - 30.0).abs() < 1e-9, "{r:?}");
    assert!((r.inbound_us.unwrap() - 15.0).abs() < 1e-9, "{r:?}");
    assert_eq!(r.outbound_rss, Some(12_000_000));
    assert_eq!(r.inbound_rss, Some(6_000_000));
    assert_eq!(summarise(&[]), None);
    // Direct: no proxies, no CPU or memory figures.
    let direct = summarise(&[Run {
        rps: 1.0,
        ..Run::default()
    }])
    .unwrap();
    assert_eq!((direct.outbound_us, direct.outbound_rss), (None, None));

    let conn = |per_s: f64, requests: f64, conns: Option<f64>| ConnRun {
        per_s,
        requests,
        outbound: usage(requests * 100e-6, 0),
        inbound: None,
        inbound_conns: conns,
    };
    let c = summarise_conns(&[
        conn(2000.0, 1000.0, Some(1000.0)),
        conn(3000.0, 3000.0, Some(2990.0)),
    ])
    .unwrap();
    assert_eq!(c.per_s, 2500.0);
    // Pooled over the rounds: 3990 connections for 4000 requests.
    assert_eq!(c.inbound_per_request, Some(0.9975));
    assert!((c.outbound_us.unwrap() - 100.0).abs() < 1e-9, "{c:?}");
    assert_eq!(c.inbound_us, None);
    assert_eq!(
        summarise_conns(&[conn(1.0, 1.0, None)])
            .unwrap()
            .inbound_per_request,
        None
    );
}

fn row(rps: f64, p99: f64) -> Option<Row> {
    Some(Row {
        rps,
        p50: 0.5,
        p99,
        outbound_us: Some(40.0),
        inbound_us: Some(30.0),
        outbound_rss: Some(9_000_000),
        inbound_rss: Some(8_000_000),
    })
}

fn conn_row(per_s: f64) -> Option<ConnRow> {
    Some(ConnRow {
        per_s,
        outbound_us: Some(200.0),
        inbound_us: Some(250.0),
        inbound_per_request: Some(1.0),
    })
}

fn report(mtls_rps: f64, tls: Tls) -> Report {
    Report {
        rows: vec![
            (Mode::Direct, row(20000.0, 1.0), conn_row(8000.0)),
            (Mode::Plaintext, row(14000.0, 2.0), conn_row(4000.0)),
            (Mode::Mtls, row(mtls_rps, 3.0), conn_row(2000.0)),
        ],
        tls,
        failures: Vec::new(),
        shared_core: false,
    }
}

#[test]
fn render_gives_ratios_and_the_goal_only_when_encrypted() {
    let text = render(&report(13000.0, Tls::Encrypted(1.0)));
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{text}"))
    };
    assert!(line("plaintext ").contains(" 0.70× "), "{text}");
    assert!(line("mtls ").contains(" 0.65× "), "{text}");
    assert!(line("mtls ").contains(" 9.0 "), "{text}");
    // Connection rates against direct, in the second table.
    assert!(text.contains("conn/s"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("mtls ") && l.contains(" 0.25× ")),
        "{text}"
    );
    assert!(
        text.contains("mtls: encrypted (tls=\"true\" on 100%"),
        "{text}"
    );
    assert!(
        line("mtls / plaintext:").contains("RPS 0.93×, p99 1.50×"),
        "{text}"
    );
    assert!(
        line("mtls / plaintext:").ends_with("new conn/s 0.50×"),
        "{text}"
    );
    assert_eq!(
        line("goal:"),
        format!("goal: mTLS two-hop at ≥ {GOAL:.1}× direct: 0.65× — met")
    );
    assert!(render(&report(11000.0, Tls::Encrypted(1.0))).contains("0.55× — NOT met"));

    // Proxies sharing a core are not the goal's setup: the verdict is a projection from the
    // busier proxy's CPU per request (row() gives 40 µs out, 30 µs in: 25k/s, capped by
    // direct's 20k/s).
    let mut shared = report(11000.0, Tls::Encrypted(1.0));
    shared.shared_core = true;
    let text = render(&shared);
    assert!(text.contains("shared one core: 0.55× direct"), "{text}");
    assert!(
        text.contains("(40.0 µs in the busier proxy): 1.00× — met (projected)"),
        "{text}"
    );
    assert!(!text.contains("0.55× — NOT met"), "{text}");
    if let Some((_, Some(m), _)) = shared.rows.iter_mut().find(|(m, _, _)| *m == Mode::Mtls) {
        m.outbound_us = Some(100.0); // 10k/s: half of direct's 20k/s
    }
    assert!(
        render(&shared).contains("(100.0 µs in the busier proxy): 0.50× — NOT met (projected)"),
        "{}",
        render(&shared)
    );

    // Plaintext figures are never reported as mTLS.
    let text = render(&report(13000.0, Tls::NotEncrypted));
    assert!(
        text.contains("mtls: NOT ENCRYPTED (proxy without identity support)"),
        "{text}"
    );
    assert!(
        text.contains("not measured (the mtls run was not encrypted)"),
        "{text}"
    );
    assert!(!text.contains("— met"), "{text}");
    assert!(!text.contains("mtls / plaintext"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("mtls (!) ")), "{text}");

    let mut r = report(13000.0, Tls::NotRun);
    r.rows.truncate(2);
    r.failures.push((Mode::Mtls, "starting: no".to_string()));
    let text = render(&r);
    assert!(text.contains("needs the direct and mtls modes"), "{text}");
    assert!(text.contains("mtls: failed: starting: no"), "{text}");
}

fn pem_cert(path: &std::path::Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

#[test]
fn identities_are_accepted_by_a_rustls_peer() {
    let dir = tempfile::tempdir().unwrap();
    let ids = Identities::generate(dir.path()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(ids.anchors_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let roots = Arc::new(roots);
    let now = UnixTime::now();

    // The outbound proxy checks the server's certificate against the name in the namer file.
    let servers = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_cert = pem_cert(&ids.server.cert);
    let server_name = ServerName::try_from(SERVER).unwrap();
    servers
        .verify_server_cert(&server_cert, &[], &server_name, &[], now)
        .unwrap();
    let wrong = ServerName::try_from(CLIENT).unwrap();
    assert!(
        servers
            .verify_server_cert(&server_cert, &[], &wrong, &[], now)
            .is_err()
    );
    // The inbound proxy checks the client's certificate against the anchors.
    let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .unwrap();
    clients
        .verify_client_cert(&pem_cert(&ids.client.cert), &[], now)
        .unwrap();

    // The keys are PKCS#8 PEM, as MESH_PROXY_IDENTITY_KEY_FILE takes them.
    for id in [&ids.client, &ids.server] {
        let pem = std::fs::read_to_string(&id.key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    }
    let env = ids.env(&ids.client);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS"),
        Some(ids.anchors_pem.as_str())
    );
    assert_eq!(get("LINKERD2_PROXY_IDENTITY_LOCAL_NAME"), Some(CLIENT));
    assert_eq!(
        get("MESH_PROXY_IDENTITY_KEY_FILE"),
        Some(ids.client.key.to_str().unwrap())
    );
}
