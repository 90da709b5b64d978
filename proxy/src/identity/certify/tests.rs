use std::time::{Duration, SystemTime};

use linkerd2_proxy_api::identity::CertifyResponse;
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, PublicKeyData};

use super::*;
use crate::config::parse_control_addr;
use crate::identity::TrustAnchors;
use crate::identity::tests::ca_pem;

const LOCAL: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";
const SERVICE: &str = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local";
const MIN: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(24 * 3600);

fn config(anchors_pem: &str) -> CertifyConfig {
    CertifyConfig {
        addr: parse_control_addr("127.0.0.1:1").unwrap(),
        server_name: SERVICE.into(),
        local_name: LOCAL.into(),
        token_file: "/nonexistent/token".into(),
        trust_anchors: TrustAnchors::from_pem(anchors_pem.as_bytes()).unwrap(),
        min_refresh: MIN,
        max_refresh: MAX,
    }
}

fn leaf(
    name: &str,
    key: &impl PublicKeyData,
    issuer: &rcgen::Issuer<'static, KeyPair>,
) -> CertificateDer<'static> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.signed_by(key, issuer).unwrap().der().clone()
}

fn response(leaf: &CertificateDer<'_>, valid_until: SystemTime) -> CertifyResponse {
    let secs = valid_until
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    CertifyResponse {
        leaf_certificate: leaf.to_vec(),
        intermediate_certificates: Vec::new(),
        valid_until: Some(prost_types::Timestamp {
            seconds: secs as i64,
            nanos: 0,
        }),
    }
}

#[test]
fn renewal_at_seventy_percent_within_the_bounds() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let day = Duration::from_secs(24 * 3600);
    // Linkerd's default lifetime: renewed after 16.8 h.
    assert_eq!(
        refresh_delay(now, now + day, MIN, MAX),
        Duration::from_secs(60_480)
    );
    assert_eq!(
        refresh_delay(now, now + Duration::from_secs(100), MIN, MAX),
        Duration::from_secs(70)
    );
    // Never sooner than the minimum…
    assert_eq!(
        refresh_delay(now, now + Duration::from_secs(10), MIN, MAX),
        MIN
    );
    // …nor later than the maximum.
    assert_eq!(refresh_delay(now, now + 365 * day, MIN, MAX), MAX);
    // A peer's valid_until as far away as it can say.
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
    assert_eq!(refresh_delay(now, far, MIN, MAX), MAX);
    // Expired or expiring now: the minimum.
    assert_eq!(refresh_delay(now, now, MIN, MAX), MIN);
    assert_eq!(refresh_delay(now, now - day, MIN, MAX), MIN);
    // Bounds that cross: the minimum wins below it, the maximum above, as in Linkerd.
    let (min, max) = (Duration::from_secs(60), Duration::from_secs(30));
    assert_eq!(
        refresh_delay(now, now + Duration::from_secs(10), min, max),
        min
    );
    assert_eq!(refresh_delay(now, now + day, min, max), max);
}

#[test]
fn the_default_backoff_is_one_second_to_a_minute() {
    let timing = Timing::default();
    assert_eq!(timing.backoff_min, Duration::from_secs(1));
    assert_eq!(timing.backoff_max, Duration::from_secs(60));
    let mut backoff = Backoff::new(timing.backoff_min, timing.backoff_max);
    let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
    assert!(delays[0] >= Duration::from_millis(500) && delays[0] <= Duration::from_secs(1));
    assert!(
        delays.iter().all(|d| *d <= Duration::from_secs(60)),
        "{delays:?}"
    );
    assert!(delays[11] >= Duration::from_secs(30), "{delays:?}");
}

#[test]
fn a_certificate_for_our_name_and_key_is_accepted() {
    let (anchors, issuer) = ca_pem("root.linkerd.cluster.local");
    let certify = Certify::new(config(&anchors)).unwrap();
    let now = SystemTime::now();
    let not_after = now + Duration::from_secs(3600);
    let cert = leaf(LOCAL, &certify.key_pair, &issuer);
    let credentials = certify.accept(response(&cert, not_after), now).unwrap();
    assert_eq!(credentials.name, LOCAL);
    assert_eq!(credentials.chain, vec![cert.clone()]);
    // Whole seconds, as the service sends them.
    let expected = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            not_after
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
    assert_eq!(credentials.not_after, expected);
    assert_eq!(
        credentials.key.secret_pkcs8_der(),
        certify.key_pair.serialize_der()
    );

    // The farthest time the service can send is a time, not a panic.
    let mut far = response(&cert, not_after);
    far.valid_until = Some(prost_types::Timestamp {
        seconds: i64::MAX,
        nanos: i32::MAX,
    });
    let credentials = certify.accept(far, now).unwrap();
    assert!(credentials.not_after > not_after);
    let mut negative = response(&cert, not_after);
    negative.valid_until = Some(prost_types::Timestamp {
        seconds: -1,
        nanos: 0,
    });
    assert!(matches!(
        certify.accept(negative, now),
        Err(CertifyError::Response(reason)) if reason.contains("is not a time")
    ));
}

#[test]
fn unusable_answers_are_refused() {
    let (anchors, issuer) = ca_pem("root.linkerd.cluster.local");
    let certify = Certify::new(config(&anchors)).unwrap();
    let now = SystemTime::now();
    let later = now + Duration::from_secs(3600);
    let ours = leaf(LOCAL, &certify.key_pair, &issuer);
    let refused = |response: CertifyResponse| match certify.accept(response, now) {
        Err(CertifyError::Response(reason)) => reason,
        other => panic!("accepted or failed otherwise: {other:?}"),
    };

    let mut no_expiry = response(&ours, later);
    no_expiry.valid_until = None;
    assert!(refused(no_expiry).contains("no valid_until"));

    let expired = refused(response(&ours, now - Duration::from_secs(1)));
    assert!(expired.starts_with("it expired on "), "{expired}");

    let mut empty = response(&ours, later);
    empty.leaf_certificate.clear();
    assert!(refused(empty).contains("no certificate"));

    // Someone else's name.
    let other = leaf(
        "db.shop.serviceaccount.identity.linkerd.cluster.local",
        &certify.key_pair,
        &issuer,
    );
    let reason = refused(response(&other, later));
    assert!(
        reason.contains(&format!("not valid for {LOCAL}")),
        "{reason}"
    );

    // Another key.
    let stranger = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let reason = refused(response(&leaf(LOCAL, &stranger, &issuer), later));
    assert!(reason.contains("not for our key"), "{reason}");

    // Issued under other anchors.
    let (_, other_issuer) = ca_pem("root.linkerd.cluster.local");
    let reason = refused(response(
        &leaf(LOCAL, &certify.key_pair, &other_issuer),
        later,
    ));
    assert!(reason.contains("not valid for"), "{reason}");

    // Not a certificate.
    let mut garbage = response(&ours, later);
    garbage.leaf_certificate = b"garbage".to_vec();
    assert!(refused(garbage).contains("not valid for"));
}

#[tokio::test]
async fn failures_are_retried_until_nobody_listens() {
    let (anchors, _) = ca_pem("root.linkerd.cluster.local");
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "token").unwrap();
    // A port nothing listens on: every attempt fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut config = config(&anchors);
    config.addr = parse_control_addr(&addr.to_string()).unwrap();
    config.token_file = token;
    let timing = Timing {
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(5),
    };
    let certify = Certify::with_timing(config, timing).unwrap();
    let error = certify.certify().await.unwrap_err();
    assert!(matches!(error, CertifyError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");

    let (tx, rx) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(certify.run(tx));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(rx.borrow().is_none());
    drop(rx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the client stops once its receivers are gone")
        .unwrap();
}

#[tokio::test]
async fn a_missing_token_fails_the_attempt() {
    let (anchors, _) = ca_pem("root.linkerd.cluster.local");
    let certify = Certify::new(config(&anchors)).unwrap();
    let error = certify.certify().await.unwrap_err();
    assert!(matches!(error, CertifyError::Token { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("reading the token /nonexistent/token: "),
        "{error}"
    );
}
