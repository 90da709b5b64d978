use std::path::Path;

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

const NAME: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";
const HOUR: Duration = Duration::from_secs(3600);
const VALIDITY: Validity = Validity {
    lifetime: Duration::from_secs(24 * 3600),
    clock_skew: Duration::from_secs(20),
};

fn read(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/install/certs");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn fixture_issuer(now: SystemTime) -> Result<Issuer, CertError> {
    let texts = [read("ca.crt"), read("issuer.crt"), read("issuer.key")];
    Issuer::load(
        IdentityFiles {
            trust_anchors: ("ca.crt", &texts[0]),
            issuer_certificate: ("issuer.crt", &texts[1]),
            issuer_key: ("issuer.key", &texts[2]),
        },
        now,
    )
}

fn csr_for(name: &str) -> (Csr, KeyPair) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    (Csr::parse(der.der()).unwrap(), key)
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_leaf_is_linkerds_shape_and_chains_to_the_issuer() {
    let now = SystemTime::now();
    let issuer = fixture_issuer(now).unwrap();
    let (csr, key) = csr_for(NAME);
    let leaf = issuer.certify(&csr, NAME, VALIDITY, now).unwrap();

    let (rest, cert) = X509Certificate::from_der(&leaf.der).unwrap();
    assert!(rest.is_empty());
    let (_, issuer_crt) = X509Certificate::from_der(&leaf.chain[0]).unwrap();
    assert_eq!(leaf.chain, [issuer.certificate_der().to_vec()]);
    cert.verify_signature(Some(issuer_crt.public_key()))
        .unwrap();
    // Chain building compares names byte for byte.
    assert_eq!(cert.issuer().as_raw(), issuer_crt.subject().as_raw());
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    assert_eq!(dns_names(&cert), [NAME]);
    assert_eq!(cert.subject().to_string(), format!("CN={NAME}"));
    assert!(!cert.is_ca());

    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && usage.key_encipherment());
    assert!(!usage.key_cert_sign());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.any);

    let validity = cert.validity();
    assert_eq!(validity.not_before.timestamp(), secs(now) - 20);
    assert_eq!(validity.not_after.timestamp(), secs(now) + 24 * 3600 + 20);
    assert_eq!(secs(leaf.not_after), validity.not_after.timestamp());
}

#[test]
fn serial_numbers_differ() {
    let now = SystemTime::now();
    let issuer = fixture_issuer(now).unwrap();
    let (csr, _) = csr_for(NAME);
    let serial = |leaf: Leaf| {
        let (_, cert) = X509Certificate::from_der(&leaf.der).unwrap();
        cert.raw_serial().to_vec()
    };
    let a = serial(issuer.certify(&csr, NAME, VALIDITY, now).unwrap());
    let b = serial(issuer.certify(&csr, NAME, VALIDITY, now).unwrap());
    assert_ne!(a, b);
}

#[test]
fn a_leaf_never_outlives_its_issuer() {
    // The fixture issuer expires on 2125-01-01.
    let issuer_end = 4_891_363_200;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(issuer_end - 3600);
    let issuer = fixture_issuer(now).unwrap();
    let (csr, _) = csr_for(NAME);
    let leaf = issuer.certify(&csr, NAME, VALIDITY, now).unwrap();
    assert_eq!(secs(leaf.not_after), issuer_end as i64);
    let after = now + 2 * HOUR;
    assert!(matches!(
        issuer.certify(&csr, NAME, VALIDITY, after),
        Err(IssueError::Expired)
    ));
}

#[test]
fn serving_credentials_come_with_their_key() {
    let now = SystemTime::now();
    let issuer = fixture_issuer(now).unwrap();
    let name = "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local";
    let (leaf, key_der) = issuer.issue_with_key(name, VALIDITY, now).unwrap();
    let key = KeyPair::try_from(key_der.as_slice()).unwrap();
    let (_, cert) = X509Certificate::from_der(&leaf.der).unwrap();
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    assert_eq!(dns_names(&cert), [name]);
}

#[test]
fn names_that_cannot_be_dns_names_are_refused() {
    let now = SystemTime::now();
    let issuer = fixture_issuer(now).unwrap();
    let (csr, _) = csr_for(NAME);
    assert!(matches!(
        issuer.certify(&csr, "bad\u{e9}name", VALIDITY, now),
        Err(IssueError::Name { .. })
    ));
}

#[test]
fn an_issuer_that_fails_the_install_checks_is_refused() {
    let texts = [
        read("ca.crt"),
        read("expired-issuer.crt"),
        read("expired-issuer.key"),
    ];
    let err = Issuer::load(
        IdentityFiles {
            trust_anchors: ("ca.crt", &texts[0]),
            issuer_certificate: ("crt.pem", &texts[1]),
            issuer_key: ("key.pem", &texts[2]),
        },
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "crt.pem: the issuer certificate expired on Jan  1 00:00:00 2001 +00:00"
    );
}

#[test]
fn linkerds_own_issuer_signs_leaves_that_chain_by_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/linkerd2/cli/cmd/testdata");
    if !dir.is_dir() {
        eprintln!("skipped: Linkerd's fixtures (../shared/conformance/linkerd2) are not here");
        return;
    }
    let text = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let texts = [
        text("valid-trust-anchors.pem"),
        text("valid-crt.pem"),
        text("valid-key.pem"),
    ];
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let issuer = Issuer::load(
        IdentityFiles {
            trust_anchors: ("a", &texts[0]),
            issuer_certificate: ("c", &texts[1]),
            issuer_key: ("k", &texts[2]),
        },
        when,
    )
    .unwrap();
    let (csr, _) = csr_for(NAME);
    let leaf = issuer.certify(&csr, NAME, VALIDITY, when).unwrap();
    let (_, cert) = X509Certificate::from_der(&leaf.der).unwrap();
    let (_, issuer_crt) = X509Certificate::from_der(&leaf.chain[0]).unwrap();
    assert_eq!(cert.issuer().as_raw(), issuer_crt.subject().as_raw());
    cert.verify_signature(Some(issuer_crt.public_key()))
        .unwrap();
}
