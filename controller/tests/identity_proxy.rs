//! The real `mesh-proxy` certified by the real `mesh-controller identity`, which checks its token
//! with the fake API server: readiness waits for the certificate, the certificate is renewed
//! before it expires, and a refused token keeps the proxy unready (and its traffic waiting)
//! until the token file holds a valid one.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_pki::Credentials;
use mesh_testkube::FakeKube;
use support::proxy::{Proxy, backend, read_response, send_request};
use support::{Controller, DEADLINE, identity};

/// Certificates live this long, so that a test sees a renewal (at 70 %, 7 s in).
const LIFETIME_SECS: u64 = 10;

/// Testkube, the identity controller issuing short-lived certificates, and the anchors.
struct ControlPlane {
    _dir: tempfile::TempDir,
    kube: FakeKube,
    controller: Controller,
    credentials: Credentials,
}

fn control_plane() -> ControlPlane {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();
    let credentials = Credentials::generate(identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    let (anchors, issuer) = identity::write_credentials(dir.path(), &credentials);
    let lifetime = format!("{LIFETIME_SECS}s");
    let controller = identity::start(
        Command::new(env!("CARGO_BIN_EXE_mesh-controller")),
        &kubeconfig,
        &anchors,
        &issuer,
        &[
            "--issuance-lifetime",
            &lifetime,
            "--clock-skew-allowance",
            "0s",
        ],
    )
    .unwrap();
    ControlPlane {
        _dir: dir,
        kube,
        controller,
        credentials,
    }
}

/// The variables `mesh inject` renders, pointed at `cp`, with the token in `token_file`;
/// inbound connections go to `backend`.
fn start_proxy(
    cp: &ControlPlane,
    token_file: &Path,
    backend: std::net::SocketAddr,
    extra: &[(&str, &str)],
) -> Proxy {
    let addr = cp.controller.addr.to_string();
    let service = identity::service_name();
    let local = identity::workload("web", "shop");
    let token = token_file.display().to_string();
    let forward = backend.to_string();
    let mut env = vec![
        ("LINKERD2_PROXY_LOG", "warn,mesh_proxy=info"),
        (
            "LINKERD2_PROXY_IDENTITY_DIR",
            "/var/run/linkerd/identity/end-entity",
        ),
        (
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
            cp.credentials.trust_anchors_pem.as_str(),
        ),
        ("LINKERD2_PROXY_IDENTITY_TOKEN_FILE", &token),
        ("LINKERD2_PROXY_IDENTITY_SVC_ADDR", &addr),
        ("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", &local),
        ("LINKERD2_PROXY_IDENTITY_SVC_NAME", &service),
        // Renewals as early as the short lifetime asks.
        ("LINKERD2_PROXY_IDENTITY_MIN_REFRESH", "1s"),
        ("MESH_PROXY_INBOUND_FORWARD_ADDR", &forward),
    ];
    env.extend_from_slice(extra);
    Proxy::start(&env)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The counters the identity controller keeps, from its `/metrics`.
fn controller_metric(controller: &Controller, name: &str) -> Option<f64> {
    let (_, page) = controller.admin_get("/metrics");
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_proxy_is_certified_and_renews_before_expiry() {
    let cp = control_plane();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    let token = cp.kube.issue_token("shop", "web", &["identity.l5d.io"]);
    std::fs::write(&token_file, &token).unwrap();
    let backend = backend(16);

    let started = unix_now().floor();
    let proxy = start_proxy(&cp, &token_file, backend, &[]);
    assert!(
        support::wait_until(DEADLINE, || proxy.admin_get("/ready").0 == 200),
        "{}",
        proxy.log()
    );
    let ready = unix_now().ceil();
    let name = identity::workload("web", "shop");
    assert!(
        proxy.wait_for_log(
            &format!("identity: certified {name}, valid until "),
            1,
            DEADLINE
        ),
        "{}",
        proxy.log()
    );
    assert_eq!(
        controller_metric(&cp.controller, "identity_certificates_issued_total"),
        Some(1.0)
    );

    // The gauge is the certificate's not_after: issued between the start and readiness, for
    // the lifetime (no clock-skew allowance), in whole seconds.
    let mut first = None;
    support::wait_until(DEADLINE, || {
        first = proxy.metric("identity_cert_expiration_timestamp_seconds");
        first.is_some_and(|e| e > 0.0)
    });
    let first = first.unwrap();
    let lifetime = LIFETIME_SECS as f64;
    assert!(
        started + lifetime <= first && first <= ready + lifetime && first.fract() == 0.0,
        "expires at {first}, issued within {started}..{ready}"
    );
    assert_eq!(proxy.metric("identity_cert_refresh_count"), Some(1.0));

    let mut stream = send_request(proxy.inbound);
    let response = read_response(&mut stream, DEADLINE);
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("hello"),
        "{response}"
    );

    // Renewed 70 % into the certificate's life, before it expires.
    let mut renewed = None;
    let seen = support::wait_until(Duration::from_secs(3 * LIFETIME_SECS), || {
        renewed = proxy
            .metric("identity_cert_expiration_timestamp_seconds")
            .filter(|e| *e > first);
        renewed.is_some()
    });
    let seen_at = unix_now();
    assert!(seen, "not renewed:\n{}", proxy.log());
    assert!(
        seen_at < first,
        "renewed at {seen_at}, after the first certificate expired at {first}"
    );
    assert!(renewed.unwrap() > first);
    assert!(proxy.metric("identity_cert_refresh_count").unwrap() >= 2.0);
    assert!(
        controller_metric(&cp.controller, "identity_certificates_issued_total").unwrap() >= 2.0
    );
    assert_eq!(proxy.admin_get("/ready").0, 200);
    assert!(
        !proxy.log().contains("certification failed"),
        "{}",
        proxy.log()
    );
}

#[test]
fn a_refused_token_keeps_the_proxy_unready_until_the_token_is_valid() {
    let cp = control_plane();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, "not-a-token").unwrap();
    let backend = backend(16);
    let proxy = start_proxy(&cp, &token_file, backend, &[]);
    // A request sent now waits: nothing is served before the proxy has its identity.
    let mut held = send_request(proxy.inbound);

    // Refused, logged, and tried again after a growing delay (1 s, then 2 s, jittered down
    // by up to half).
    let failure = "identity: certification failed: the identity service at";
    assert!(proxy.wait_for_log(failure, 2, DEADLINE), "{}", proxy.log());
    let log = proxy.log();
    let delays: Vec<f64> = log
        .lines()
        .filter(|l| l.contains(failure))
        .map(|l| {
            assert!(l.contains("refused: invalid token"), "{l}");
            let at = l.find("trying again in ").unwrap() + "trying again in ".len();
            l[at..].trim_end_matches('s').parse().unwrap()
        })
        .collect();
    assert!((0.5..=1.0).contains(&delays[0]), "{delays:?}");
    assert!((1.0..=2.0).contains(&delays[1]), "{delays:?}");
    assert!(log.contains(" ERROR "), "{log}");

    assert_eq!(
        proxy.admin_get("/ready"),
        (503, "waiting for an identity certificate\n".to_owned())
    );
    assert_eq!(
        proxy.metric("identity_cert_expiration_timestamp_seconds"),
        Some(0.0)
    );
    assert_eq!(proxy.metric("identity_cert_refresh_count"), Some(0.0));
    held.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let early = std::io::Read::read(&mut held, &mut byte);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "answered before the proxy was certified: {early:?}"
    );
    held.set_nonblocking(false).unwrap();
    assert!(
        controller_metric(
            &cp.controller,
            "identity_certify_refusals_total{reason=\"invalid_token\"}"
        )
        .unwrap()
            >= 2.0
    );

    // The kubelet writes a valid token (a new file moved into place): the next attempt reads
    // it, and the proxy becomes ready and serves the request that waited.
    let token = cp.kube.issue_token("shop", "web", &["identity.l5d.io"]);
    let fresh = token_dir.path().join("token.new");
    std::fs::write(&fresh, &token).unwrap();
    std::fs::rename(&fresh, &token_file).unwrap();
    assert!(
        support::wait_until(DEADLINE, || proxy.admin_get("/ready").0 == 200),
        "{}",
        proxy.log()
    );
    assert!(
        proxy.log().contains("identity: certified "),
        "{}",
        proxy.log()
    );
    let response = read_response(&mut held, DEADLINE);
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("hello"),
        "{response}"
    );
    assert_eq!(proxy.metric("identity_cert_refresh_count"), Some(1.0));
}

#[test]
fn an_identity_service_that_fails_verification_is_not_asked() {
    let cp = control_plane();
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    let token = cp.kube.issue_token("shop", "web", &["identity.l5d.io"]);
    std::fs::write(&token_file, &token).unwrap();
    let other = Credentials::generate(identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    let destination = identity::workload("linkerd-destination", identity::CP_NS);
    for (case, variable, value, reason) in [
        (
            "other anchors",
            "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS",
            other.trust_anchors_pem.as_str(),
            // Anchors with the same name as the issuer's, but another key.
            "invalid peer certificate: BadSignature",
        ),
        (
            "another service's name",
            "LINKERD2_PROXY_IDENTITY_SVC_NAME",
            destination.as_str(),
            "invalid peer certificate: certificate not valid for name",
        ),
    ] {
        let proxy = start_proxy(&cp, &token_file, backend(1), &[(variable, value)]);
        assert!(
            proxy.wait_for_log(
                "identity: certification failed: connecting to the identity service",
                1,
                DEADLINE
            ),
            "{case}: {}",
            proxy.log()
        );
        assert!(proxy.log().contains(reason), "{case}: {}", proxy.log());
        assert_eq!(proxy.admin_get("/ready").0, 503, "{case}");
    }
    // No request reached the service.
    assert_eq!(
        controller_metric(&cp.controller, "identity_certificates_issued_total"),
        Some(0.0)
    );
}
