use std::time::{Duration, SystemTime};

use super::testing::Ca;
use super::*;

const WEB: &str = "web.ns.serviceaccount.identity.linkerd.cluster.local";

#[test]
fn the_identity_is_the_leafs_dns_name_or_the_configured_one() {
    let ca = Ca::new("root");
    let anchors = TrustAnchors::from_pem(ca.pem.as_bytes()).unwrap();
    let leaf = ca.leaf(WEB);
    let now = SystemTime::now();
    let c = Credentials::from_pem(
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        &anchors,
        None,
        now,
    )
    .unwrap();
    assert_eq!(c.name, WEB);
    assert_eq!(c.chain.len(), 1);
    assert!(c.not_after > now + Duration::from_secs(365 * 24 * 3600));
    let named = Credentials::from_pem(
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        &anchors,
        Some(WEB),
        now,
    )
    .unwrap();
    assert_eq!(named, c);

    let err = Credentials::from_pem(
        leaf.cert_pem.as_bytes(),
        leaf.key_pem.as_bytes(),
        &anchors,
        Some("db.ns.serviceaccount.identity.linkerd.cluster.local"),
        now,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the certificate is for {WEB}, not db.ns.serviceaccount.identity.linkerd.cluster.local"
        )
    );
}

#[test]
fn certificates_that_cannot_serve_are_refused() {
    let ca = Ca::new("root");
    let anchors = TrustAnchors::from_pem(ca.pem.as_bytes()).unwrap();
    let leaf = ca.leaf(WEB);
    let now = SystemTime::now();
    let load = |cert: &str, key: &str| {
        Credentials::from_pem(cert.as_bytes(), key.as_bytes(), &anchors, None, now)
    };

    // Another leaf's key.
    let other = ca.leaf(WEB);
    let err = load(&leaf.cert_pem, &other.key_pem).unwrap_err();
    assert!(matches!(err, IdentityError::Key(_)), "{err}");

    // Another CA.
    let stranger = Ca::new("other root").leaf(WEB);
    let err = load(&stranger.cert_pem, &stranger.key_pem).unwrap_err();
    assert!(matches!(err, IdentityError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains(WEB), "{err}");

    // Expired.
    let old = ca.leaf_with(WEB, |p| p.not_after = rcgen::date_time_ymd(2001, 1, 1));
    let err = load(&old.cert_pem, &old.key_pem).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    // No DNS name to be the identity.
    let unnamed = ca.leaf_with(WEB, |p| {
        p.subject_alt_names = vec![rcgen::SanType::IpAddress([10, 0, 0, 1].into())]
    });
    let err = load(&unnamed.cert_pem, &unnamed.key_pem).unwrap_err();
    assert_eq!(err, IdentityError::NoDnsName);

    // Not PEM, or no key.
    assert_eq!(
        load("hello", &leaf.key_pem).unwrap_err(),
        IdentityError::NoCertificate
    );
    assert_eq!(
        load(&leaf.cert_pem, &leaf.cert_pem).unwrap_err(),
        IdentityError::NoKey
    );
    let broken = leaf.cert_pem.replace("MII", "M!I");
    assert!(matches!(
        load(&broken, &leaf.key_pem).unwrap_err(),
        IdentityError::Pem(_)
    ));
}

#[test]
fn a_sec1_key_is_taken_as_pkcs8() {
    let ca = Ca::new("root");
    let anchors = TrustAnchors::from_pem(ca.pem.as_bytes()).unwrap();
    let leaf = ca.leaf(WEB);
    // ring writes PKCS#8 v1 for P-256 as a fixed 26-byte prefix, then the ECPrivateKey's
    // OCTET STRING contents: that inner structure is the SEC1 key.
    let der = &leaf.key_der;
    assert_eq!(&der[..3], &[0x30, 0x81, 0x87], "unexpected PKCS#8 layout");
    let sec1 = &der[der.len() - 0x6d..];
    assert_eq!(sec1[0], 0x30);
    let pem = format!(
        "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
        base64(sec1)
    );
    let c = Credentials::from_pem(
        leaf.cert_pem.as_bytes(),
        pem.as_bytes(),
        &anchors,
        None,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(c.name, WEB);
}

#[test]
fn trust_anchors_must_be_ca_certificates_in_pem() {
    assert_eq!(
        TrustAnchors::from_pem(b"").unwrap_err(),
        IdentityError::NoCertificate
    );
    let two = format!("{}{}", Ca::new("a").pem, Ca::new("b").pem);
    assert_eq!(TrustAnchors::from_pem(two.as_bytes()).unwrap().len(), 2);
    let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
    let err = TrustAnchors::from_pem(garbage.as_bytes()).unwrap_err();
    assert!(
        matches!(err, IdentityError::Certificate { index: 0, .. }),
        "{err}"
    );
}

/// Standard base64 with padding, for writing PEM by hand.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A self-signed CA certificate, PEM.
pub(crate) fn ca_pem(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

#[tokio::test]
async fn metrics_follow_the_credentials() {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let (tx, rx) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(export_metrics(rx, metrics.clone()));
    let page = || metrics.render();
    // Enabled at once, with zeros, as Linkerd shows them before the first certificate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !page().contains("identity_cert_refresh_count 0") {
        assert!(std::time::Instant::now() < deadline, "{}", page());
        tokio::task::yield_now().await;
    }
    assert!(page().contains("identity_cert_expiration_timestamp_seconds 0\n"));
    let not_after = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000);
    tx.send_replace(Some(Arc::new(Credentials {
        name: "web.shop.serviceaccount.identity.linkerd.cluster.local".into(),
        chain: Vec::new(),
        key: rustls::pki_types::PrivatePkcs8KeyDer::from(Vec::new()),
        not_after,
    })));
    while !page().contains("identity_cert_refresh_count 1") {
        assert!(std::time::Instant::now() < deadline, "{}", page());
        tokio::task::yield_now().await;
    }
    assert!(page().contains("identity_cert_expiration_timestamp_seconds 2000000000\n"));
    drop(tx);
    task.await.unwrap();
}

#[test]
fn no_identity_metrics_without_an_identity_source() {
    assert!(
        !crate::metrics::Metrics::new()
            .render()
            .contains("identity_")
    );
}
