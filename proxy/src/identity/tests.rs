use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use super::*;

/// A self-signed CA certificate, PEM.
pub(crate) fn ca_pem(name: &str) -> (String, rcgen::Issuer<'static, KeyPair>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

#[test]
fn trust_anchors_are_every_certificate_of_the_bundle() {
    let (first, _) = ca_pem("root.linkerd.cluster.local");
    let (second, _) = ca_pem("next.linkerd.cluster.local");
    let bundle = format!("# comment\n{first}\n{second}");
    let anchors = parse_trust_anchors(&bundle).unwrap();
    assert_eq!(anchors.len(), 2);
    assert_eq!(root_store(&anchors).len(), 2);
}

#[test]
fn unusable_trust_anchors_say_why() {
    assert_eq!(parse_trust_anchors(""), Err(TrustAnchorsError::Empty));
    assert_eq!(
        parse_trust_anchors("not pem at all"),
        Err(TrustAnchorsError::Empty)
    );
    let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(
        matches!(parse_trust_anchors(broken), Err(TrustAnchorsError::Pem(_))),
        "{:?}",
        parse_trust_anchors(broken)
    );
    // Base64 of something that is not a certificate.
    let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    let (good, _) = ca_pem("root.linkerd.cluster.local");
    let error = parse_trust_anchors(&format!("{good}{garbage}")).unwrap_err();
    assert!(
        matches!(error, TrustAnchorsError::Unusable { index: 2, .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("certificate 2 cannot be a trust anchor")
    );
}

#[tokio::test]
async fn metrics_follow_the_credentials() {
    let metrics = Arc::new(Metrics::new());
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
        key: PrivatePkcs8KeyDer::from(Vec::new()),
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
    assert!(!Metrics::new().render().contains("identity_"));
}
