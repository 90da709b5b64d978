//! `mesh-controller identity` end to end: the real binary, the fake API server answering token
//! reviews, and a gRPC client over TLS that verifies the service's identity as a proxy does.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use linkerd2_proxy_api::identity::CertifyRequest;
use mesh_pki::Credentials;
use mesh_testkube::FakeKube;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Starts the controller built with this test.
fn start(
    kubeconfig: &Path,
    anchors: &Path,
    issuer_dir: &Path,
    extra: &[&str],
) -> Result<support::Controller, (Option<ExitStatus>, String)> {
    let binary = Command::new(env!("CARGO_BIN_EXE_mesh-controller"));
    support::identity::start(binary, kubeconfig, anchors, issuer_dir, extra)
}

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn request(identity: &str, token: &str, csr_name: &str) -> CertifyRequest {
    CertifyRequest {
        identity: identity.to_owned(),
        token: token.as_bytes().to_vec(),
        certificate_signing_request: support::identity::csr(csr_name),
    }
}

/// Verifies a leaf and its chain against `anchors` for `name`, as a server and as a client
/// certificate (proxies use it both ways).
fn verify(anchors: &str, leaf: &[u8], chain: &[Vec<u8>], name: &str) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(support::identity::roots(anchors));
    let end_entity = CertificateDer::from(leaf.to_vec());
    let intermediates: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let server = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    server
        .verify_server_cert(&end_entity, &intermediates, &name, &[], UnixTime::now())
        .unwrap();
    let client = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
        .build()
        .unwrap();
    client
        .verify_client_cert(&end_entity, &intermediates, UnixTime::now())
        .unwrap();
}

fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certifies_a_valid_token_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();
    let credentials =
        Credentials::generate(support::identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    let (anchors, issuer) = support::identity::write_credentials(dir.path(), &credentials);
    let controller = start(&kubeconfig, &anchors, &issuer, &[]).unwrap();

    let (status, body) = support::get(controller.admin, "/ready");
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    // The client trusts only the anchors and checks the service's identity name.
    let mut client = support::identity::client(
        controller.addr,
        &credentials.trust_anchors_pem,
        &support::identity::service_name(),
    )
    .await
    .unwrap();

    let web = support::identity::workload("web", "shop");
    let token = kube.issue_token("shop", "web", &["identity.l5d.io"]);
    let response = client
        .certify(request(&web, &token, &web))
        .await
        .unwrap()
        .into_inner();
    verify(
        &credentials.trust_anchors_pem,
        &response.leaf_certificate,
        &response.intermediate_certificates,
        &web,
    );
    let valid_until = response.valid_until.unwrap().seconds;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // The default lifetime, 24h, plus the 20s clock-skew allowance.
    assert!(
        (valid_until - now - 24 * 3600 - 20).abs() < 60,
        "{valid_until}"
    );

    // An unknown token.
    let refused = client
        .certify(request(&web, "not-a-token", &web))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused.code(),
            tonic::Code::FailedPrecondition | tonic::Code::InvalidArgument
        ),
        "{refused:?}"
    );
    assert!(
        refused.message().starts_with("invalid token"),
        "{refused:?}"
    );

    // A valid token for another audience (the API server's own).
    let other = kube.issue_token("shop", "web", &["https://kubernetes.default.svc"]);
    let refused = client
        .certify(request(&web, &other, &web))
        .await
        .unwrap_err();
    assert!(
        refused.message().starts_with("invalid token"),
        "{refused:?}"
    );

    // web's token asking for db's identity.
    let db = support::identity::workload("db", "shop");
    let refused = client.certify(request(&db, &token, &db)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().starts_with("identity mismatch"),
        "{refused:?}"
    );

    // A CSR for another name than the request's.
    let refused = client
        .certify(request(&web, &token, &db))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().starts_with("identity mismatch"));

    // Garbage instead of a CSR.
    let mut garbage = request(&web, &token, &web);
    garbage.certificate_signing_request = b"garbage".to_vec();
    let refused = client.certify(garbage).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().starts_with("malformed CSR"),
        "{refused:?}"
    );

    let (status, page) = support::get(controller.admin, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        metric(&page, "identity_certificates_issued_total"),
        Some(1.0)
    );
    for (reason, count) in [
        ("invalid_token", 2.0),
        ("identity_mismatch", 2.0),
        ("malformed_csr", 1.0),
    ] {
        let name = format!("identity_certify_refusals_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&page, &name), Some(count), "{page}");
    }
    let expiry = metric(&page, "identity_issuer_expiration_timestamp_seconds").unwrap();
    let issuer_end = credentials
        .not_after()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert_eq!(expiry, issuer_end);

    drop(client);
    let status = controller.terminate(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_issuer_is_picked_up_and_a_broken_one_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();
    let first = Credentials::generate(support::identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    let (anchors, issuer) = support::identity::write_credentials(dir.path(), &first);
    let controller = start(
        &kubeconfig,
        &anchors,
        &issuer,
        &["--issuer-poll-interval", "100ms"],
    )
    .unwrap();

    // A key that does not match: logged, the first issuer kept.
    std::fs::write(
        issuer.join("key.pem"),
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    assert!(
        controller.wait_for_log("keeping the current one", Duration::from_secs(30)),
        "{}",
        controller.stderr()
    );
    let web = support::identity::workload("web", "shop");
    let token = kube.issue_token("shop", "web", &["identity.l5d.io"]);
    let mut client = support::identity::client(
        controller.addr,
        &first.trust_anchors_pem,
        &support::identity::service_name(),
    )
    .await
    .unwrap();
    let response = client
        .certify(request(&web, &token, &web))
        .await
        .unwrap()
        .into_inner();
    verify(
        &first.trust_anchors_pem,
        &response.leaf_certificate,
        &response.intermediate_certificates,
        &web,
    );

    // New anchors and issuer together, as a rotation writes them.
    let second = Credentials::generate(support::identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    support::identity::write_credentials(dir.path(), &second);
    assert!(
        controller.wait_for_log("serving certificate renewed", Duration::from_secs(30)),
        "{}",
        controller.stderr()
    );
    // New connections verify against the new anchors, and leaves chain to them.
    let mut client = support::identity::client(
        controller.addr,
        &second.trust_anchors_pem,
        &support::identity::service_name(),
    )
    .await
    .unwrap();
    let response = client
        .certify(request(&web, &token, &web))
        .await
        .unwrap()
        .into_inner();
    verify(
        &second.trust_anchors_pem,
        &response.leaf_certificate,
        &response.intermediate_certificates,
        &web,
    );
    let (_, page) = support::get(controller.admin, "/metrics");
    assert_eq!(
        metric(&page, "identity_issuer_reloads_total{result=\"ok\"}"),
        Some(1.0),
        "{page}"
    );
}

#[test]
fn an_unusable_issuer_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path()).unwrap();

    // Issued two years ago for one year: expired.
    let expired = Credentials::generate(
        support::identity::TRUST_DOMAIN,
        SystemTime::now() - 2 * YEAR,
    )
    .unwrap();
    let (anchors, issuer) = support::identity::write_credentials(dir.path(), &expired);
    let Err((status, stderr)) = start(&kubeconfig, &anchors, &issuer, &[]) else {
        panic!("an expired issuer was accepted");
    };
    assert_eq!(status.and_then(|s| s.code()), Some(64), "{stderr}");
    assert!(
        stderr.contains("the issuer certificate expired on"),
        "{stderr}"
    );

    // Signed by other anchors than the ones given.
    let ours = Credentials::generate(support::identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    let theirs = Credentials::generate(support::identity::TRUST_DOMAIN, SystemTime::now()).unwrap();
    let (anchors, issuer) = support::identity::write_credentials(dir.path(), &ours);
    std::fs::write(&anchors, &theirs.trust_anchors_pem).unwrap();
    let Err((status, stderr)) = start(&kubeconfig, &anchors, &issuer, &[]) else {
        panic!("an issuer signed by other anchors was accepted");
    };
    assert_eq!(status.and_then(|s| s.code()), Some(64), "{stderr}");
    assert!(
        stderr.contains("is not signed by any trust anchor"),
        "{stderr}"
    );

    // No issuer at all.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let Err((status, stderr)) = start(&kubeconfig, &anchors, &empty, &[]) else {
        panic!("a missing issuer was accepted");
    };
    assert_eq!(status.and_then(|s| s.code()), Some(64), "{stderr}");
    assert!(stderr.contains("crt.pem"), "{stderr}");
}
