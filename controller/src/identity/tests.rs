use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use linkerd2_proxy_api::identity::CertifyRequest;
use mesh_pki::{IdentityFiles, Issuer, Validity};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use tokio::sync::watch;

use super::certify::{
    Certifier, Naming, Refusal, check_request, identity_of_review, identity_of_user,
};
use super::tokens::{Review, ReviewError, TokenReviewer};

const WEB: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";

fn naming() -> Naming {
    Naming {
        control_plane_ns: "linkerd".to_owned(),
        trust_domain: "cluster.local".to_owned(),
    }
}

fn csr(name: &str) -> Vec<u8> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn request(identity: &str, token: &str, csr_name: &str) -> CertifyRequest {
    CertifyRequest {
        identity: identity.to_owned(),
        token: token.as_bytes().to_vec(),
        certificate_signing_request: csr(csr_name),
    }
}

fn authenticated(username: &str) -> Review {
    Review::Authenticated {
        username: username.to_owned(),
        audiences: vec!["identity.l5d.io".to_owned()],
    }
}

#[test]
fn service_account_users_become_identity_names() {
    assert_eq!(
        identity_of_user("system:serviceaccount:shop:web", &naming()).unwrap(),
        WEB
    );
    for user in [
        "system:serviceaccount:shop",
        "system:serviceaccount:shop:web:extra",
        "system:node:worker-1",
        "alice",
        "system:serviceaccount::web",
        "system:serviceaccount:Shop:web",
        "system:serviceaccount:shop:web.x",
        "system:serviceaccount:shop:-web",
    ] {
        let err = identity_of_user(user, &naming()).unwrap_err();
        assert_eq!(err.reason(), "invalid_token", "{user}");
        assert!(err.to_string().starts_with("invalid token: user"), "{err}");
    }
}

#[test]
fn reviews_need_authentication_and_the_identity_audience() {
    let n = naming();
    assert_eq!(
        identity_of_review(authenticated("system:serviceaccount:shop:web"), &n).unwrap(),
        WEB
    );
    let other_audience = Review::Authenticated {
        username: "system:serviceaccount:shop:web".to_owned(),
        audiences: vec!["https://kubernetes.default.svc".to_owned()],
    };
    let err = identity_of_review(other_audience, &n).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid token: not valid for the audience identity.l5d.io"
    );
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    let err = identity_of_review(Review::Rejected { error: None }, &n).unwrap_err();
    assert_eq!(err.to_string(), "invalid token: not authenticated");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let rejected = Review::Rejected {
        error: Some("token has expired".to_owned()),
    };
    let err = identity_of_review(rejected, &n).unwrap_err();
    assert_eq!(err.to_string(), "invalid token: token has expired");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[test]
fn requests_are_checked_before_any_review() {
    let good = request(WEB, "t", WEB);
    let (identity, token, csr) = check_request(&good).unwrap();
    assert_eq!(
        (identity, token, csr.dns_names()),
        (WEB, "t", &[WEB.to_owned()][..])
    );

    let refusal = |req: CertifyRequest| check_request(&req).unwrap_err();
    let mut missing = good.clone();
    missing.identity.clear();
    assert_eq!(
        refusal(missing),
        Refusal::MalformedRequest("missing identity".to_owned())
    );
    let mut no_token = good.clone();
    no_token.token.clear();
    assert_eq!(refusal(no_token).reason(), "malformed_request");
    let mut huge_token = good.clone();
    huge_token.token = vec![b'a'; super::certify::MAX_TOKEN_BYTES + 1];
    assert_eq!(refusal(huge_token).code(), tonic::Code::InvalidArgument);
    let mut long_name = good.clone();
    long_name.identity = "a".repeat(254);
    assert_eq!(refusal(long_name).reason(), "malformed_request");

    let mut garbage = good.clone();
    garbage.certificate_signing_request = b"garbage".to_vec();
    let err = refusal(garbage);
    assert_eq!(err.reason(), "malformed_csr");
    assert!(err.to_string().starts_with("malformed CSR: "), "{err}");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let other = request(
        WEB,
        "t",
        "db.shop.serviceaccount.identity.linkerd.cluster.local",
    );
    let err = refusal(other);
    assert_eq!(err.reason(), "identity_mismatch");
    assert!(err.to_string().starts_with("identity mismatch: "), "{err}");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

/// Reviews from a table; unknown tokens are rejected, "slow" never answers in time.
struct Table(HashMap<&'static str, Review>);

impl TokenReviewer for Table {
    async fn review(&self, token: String) -> Result<Review, ReviewError> {
        if token == "slow" {
            return Err(ReviewError::Timeout(Duration::from_secs(10)));
        }
        Ok(self
            .0
            .get(token.as_str())
            .cloned()
            .unwrap_or(Review::Rejected { error: None }))
    }
}

fn fixture_issuer() -> Issuer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/install/certs");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let texts = [read("ca.crt"), read("issuer.crt"), read("issuer.key")];
    Issuer::load(
        IdentityFiles {
            trust_anchors: ("ca.crt", &texts[0]),
            issuer_certificate: ("issuer.crt", &texts[1]),
            issuer_key: ("issuer.key", &texts[2]),
        },
        SystemTime::now(),
    )
    .unwrap()
}

fn certifier() -> Certifier<Table> {
    let (_tx, rx) = watch::channel(Arc::new(fixture_issuer()));
    let table = HashMap::from([
        ("web-token", authenticated("system:serviceaccount:shop:web")),
        ("node-token", authenticated("system:node:worker-1")),
    ]);
    Certifier {
        reviewer: Table(table),
        issuer: rx,
        validity: Validity {
            lifetime: Duration::from_secs(24 * 3600),
            clock_skew: Duration::from_secs(20),
        },
        naming: naming(),
    }
}

#[tokio::test]
async fn a_valid_token_gets_a_certificate_for_its_identity() {
    let certifier = certifier();
    let now = SystemTime::now();
    let (identity, response) = certifier
        .certify(&request(WEB, "web-token", WEB), now)
        .await
        .unwrap();
    assert_eq!(identity, WEB);
    assert_eq!(response.intermediate_certificates.len(), 1);
    let valid_until = response.valid_until.unwrap().seconds;
    let expected = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 24 * 3600
        + 20;
    assert_eq!(valid_until, expected as i64);
    let leaf = mesh_pki::Csr::parse(&response.leaf_certificate);
    assert!(leaf.is_err(), "the leaf is a certificate, not a request");
}

#[tokio::test]
async fn refusals_say_why() {
    let certifier = certifier();
    let now = SystemTime::now();
    let refuse = |req: CertifyRequest| {
        let certifier = &certifier;
        async move { certifier.certify(&req, now).await.unwrap_err() }
    };
    let err = refuse(request(WEB, "stolen", WEB)).await;
    assert_eq!(
        err,
        Refusal::InvalidToken {
            message: "not authenticated".to_owned(),
            rejected_by_api: false,
        }
    );

    let db = "db.shop.serviceaccount.identity.linkerd.cluster.local";
    let err = refuse(request(db, "web-token", db)).await;
    assert_eq!(
        err.to_string(),
        format!("identity mismatch: the token is for {WEB}, the request for {db}")
    );
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    let err = refuse(request(WEB, "node-token", WEB)).await;
    assert_eq!(err.reason(), "invalid_token");

    let err = refuse(request(WEB, "slow", WEB)).await;
    assert_eq!(err.reason(), "token_review_failed");
    assert_eq!(err.code(), tonic::Code::Internal);
}
