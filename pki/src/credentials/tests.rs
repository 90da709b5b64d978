use std::path::{Path, PathBuf};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/install/certs")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name))
        .unwrap_or_else(|e| panic!("testdata/install/certs/{name}: {e}"))
}

fn files<'a>(texts: &'a [(&'a str, String); 3]) -> IdentityFiles<'a> {
    IdentityFiles {
        trust_anchors: (texts[0].0, &texts[0].1),
        issuer_certificate: (texts[1].0, &texts[1].1),
        issuer_key: (texts[2].0, &texts[2].1),
    }
}

fn load(anchors: &str, crt: &str, key: &str) -> Result<Credentials, CertError> {
    let texts = [(anchors, read(anchors)), (crt, read(crt)), (key, read(key))];
    Credentials::load(files(&texts), SystemTime::now())
}

fn parse(pem: &str) -> Pem {
    Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .expect("a PEM block")
        .expect("valid PEM")
}

const YEAR: u64 = 365 * 24 * 3600;

#[test]
fn generated_credentials_chain_and_last_ten_years_and_one_year() {
    let now = SystemTime::now();
    let identity = Credentials::generate("cluster.local", now).unwrap();
    let anchor_pem = parse(&identity.trust_anchors_pem);
    let anchor = anchor_pem.parse_x509().unwrap();
    let issuer_pem = parse(&identity.issuer_crt_pem);
    let issuer = issuer_pem.parse_x509().unwrap();

    assert!(anchor.is_ca() && issuer.is_ca());
    // id-ecPublicKey with the prime256v1 curve.
    for cert in [&anchor, &issuer] {
        let alg = &cert.public_key().algorithm;
        assert_eq!(alg.algorithm.to_id_string(), "1.2.840.10045.2.1");
        let curve = alg.parameters.as_ref().unwrap().as_oid().unwrap();
        assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7");
    }
    let lifetime = |c: &X509Certificate<'_>| {
        (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) as u64
    };
    assert_eq!(lifetime(&anchor), 10 * YEAR);
    assert_eq!(lifetime(&issuer), YEAR);
    assert_eq!(
        anchor.subject().to_string(),
        "CN=root.linkerd.cluster.local"
    );
    assert_eq!(
        issuer.subject().to_string(),
        "CN=identity.linkerd.cluster.local"
    );
    issuer.verify_signature(Some(anchor.public_key())).unwrap();

    // What was generated passes the same checks as files do.
    let texts = [
        ("ca", identity.trust_anchors_pem.clone()),
        ("crt", identity.issuer_crt_pem.clone()),
        ("key", identity.issuer_key_pem.clone()),
    ];
    let loaded = Credentials::load(files(&texts), now + Duration::from_secs(60)).unwrap();
    assert_eq!(loaded.issuer_key_pem, identity.issuer_key_pem);
}

#[test]
fn fixture_credentials_load_in_pkcs8_and_sec1_form() {
    let pkcs8 = load("ca.crt", "issuer.crt", "issuer.key").unwrap();
    let sec1 = load("ca.crt", "issuer.crt", "issuer-sec1.key").unwrap();
    assert!(read("issuer-sec1.key").contains("BEGIN EC PRIVATE KEY"));
    assert!(pkcs8.issuer_key_pem.contains("BEGIN PRIVATE KEY"));
    assert!(sec1.issuer_key_pem.contains("BEGIN PRIVATE KEY"));
    assert_eq!(pkcs8.issuer_crt_pem, sec1.issuer_crt_pem);
    // Loading twice gives the same bytes, the webhook certificate included.
    let again = load("ca.crt", "issuer.crt", "issuer.key").unwrap();
    let webhook = |i: &Credentials| i.webhook("linkerd-proxy-injector", "linkerd", "cluster.local");
    let (a, b) = (webhook(&pkcs8).unwrap(), webhook(&again).unwrap());
    assert_eq!(
        (&a.ca_pem, &a.crt_pem, &a.key_pem),
        (&b.ca_pem, &b.crt_pem, &b.key_pem)
    );
}

#[test]
fn bad_credentials_are_refused_with_the_reason() {
    let message = |r: Result<Credentials, CertError>| r.unwrap_err().to_string();
    assert_eq!(
        message(load("other-ca.crt", "issuer.crt", "issuer.key")),
        "issuer.crt: the issuer certificate is not signed by any trust anchor in other-ca.crt"
    );
    assert_eq!(
        message(load("ca.crt", "issuer.crt", "expired-issuer.key")),
        "expired-issuer.key: the issuer key does not match the issuer certificate in issuer.crt"
    );
    assert_eq!(
        message(load("ca.crt", "expired-issuer.crt", "expired-issuer.key")),
        "expired-issuer.crt: the issuer certificate expired on Jan  1 00:00:00 2001 +00:00"
    );
    assert_eq!(
        message(load("ca.crt", "leaf.crt", "leaf.key")),
        "leaf.crt: the issuer certificate is not a CA (basicConstraints CA:TRUE is missing)"
    );
    assert_eq!(
        message(load("ca.crt", "issuer.key", "issuer.key")),
        "issuer.key: no CERTIFICATE PEM block found"
    );
    assert_eq!(
        message(load("ca.crt", "issuer.crt", "ca.crt")),
        "ca.crt: no PRIVATE KEY or EC PRIVATE KEY PEM block found"
    );
    // A not-yet-valid issuer: the fixtures start in 2025.
    let texts = [
        ("ca.crt", read("ca.crt")),
        ("issuer.crt", read("issuer.crt")),
        ("issuer.key", read("issuer.key")),
    ];
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(30 * YEAR);
    let err = Credentials::load(files(&texts), past)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "issuer.crt: the issuer certificate is not valid before Jan  1 00:00:00 2025"
        ),
        "{err}"
    );
}

#[test]
fn webhook_certificate_is_served_under_the_service_name_and_signed_by_its_ca() {
    let identity = load("ca.crt", "issuer.crt", "issuer.key").unwrap();
    let webhook = identity
        .webhook("linkerd-proxy-injector", "mesh-system", "example.org")
        .unwrap();
    let ca_pem = parse(&webhook.ca_pem);
    let ca = ca_pem.parse_x509().unwrap();
    let leaf_pem = parse(&webhook.crt_pem);
    let leaf = leaf_pem.parse_x509().unwrap();
    assert!(ca.is_ca());
    assert!(!leaf.is_ca());
    leaf.verify_signature(Some(ca.public_key())).unwrap();
    let names: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "linkerd-proxy-injector.mesh-system.svc",
            "linkerd-proxy-injector.mesh-system.svc.example.org"
        ]
    );
    // The key in the Secret is the one the certificate names.
    let key = KeyPair::from_pem(&webhook.key_pem).unwrap();
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
    // Valid exactly as long as the issuer.
    let issuer_pem = parse(&identity.issuer_crt_pem);
    let issuer = issuer_pem.parse_x509().unwrap();
    assert_eq!(leaf.validity(), issuer.validity());
    // Another namespace gets other keys.
    let other = identity
        .webhook("linkerd-proxy-injector", "linkerd", "example.org")
        .unwrap();
    assert_ne!(other.key_pem, webhook.key_pem);
}

#[test]
fn linkerds_own_test_credentials_are_accepted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/linkerd2/cli/cmd/testdata");
    if !dir.is_dir() {
        eprintln!("skipped: Linkerd's fixtures (../shared/conformance/linkerd2) are not here");
        return;
    }
    let text = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    let texts = [
        ("valid-trust-anchors.pem", text("valid-trust-anchors.pem")),
        ("valid-crt.pem", text("valid-crt.pem")),
        ("valid-key.pem", text("valid-key.pem")),
    ];
    // Their issuer is valid from 2020-08-28 to 2030-08-26; check inside that window.
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let identity = Credentials::load(files(&texts), when).unwrap();
    assert!(identity.issuer_key_pem.contains("BEGIN PRIVATE KEY"));
}

/// Writes the fixtures in testdata/install/certs. They are committed; run this only to replace
/// them (MESH_REGENERATE_CERTS=1), then convert issuer.key to SEC1 with
/// `openssl ec -in issuer.key -out issuer-sec1.key`.
#[test]
fn fixtures_are_current() {
    if std::env::var_os("MESH_REGENERATE_CERTS").is_some() {
        regenerate();
    }
    // The checks the other tests rely on: long-lived good credentials, an expired issuer.
    let identity = load("ca.crt", "issuer.crt", "issuer.key").unwrap();
    let issuer_pem = parse(&identity.issuer_crt_pem);
    let issuer = issuer_pem.parse_x509().unwrap();
    assert!(issuer.validity().not_after.timestamp() > 4_000_000_000);
}

fn regenerate() {
    let dir = fixtures();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    let at = |year: i32| rcgen::date_time_ymd(year, 1, 1);
    let key = || KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();

    let mut anchor = ca_params("root.linkerd.cluster.local", 1);
    anchor.not_before = at(2025);
    anchor.not_after = at(2125);
    let anchor_key = key();
    write("ca.crt", anchor.self_signed(&anchor_key).unwrap().pem());

    let mut other = ca_params("root.linkerd.cluster.local", 1);
    other.not_before = at(2025);
    other.not_after = at(2125);
    write("other-ca.crt", other.self_signed(&key()).unwrap().pem());

    let signer = Issuer::new(anchor, &anchor_key);
    let issue = |name: &str, params: CertificateParams| {
        let key = key();
        write(
            &format!("{name}.crt"),
            params.signed_by(&key, &signer).unwrap().pem(),
        );
        write(&format!("{name}.key"), key.serialize_pem());
    };
    let mut issuer = ca_params("identity.linkerd.cluster.local", 0);
    issuer.not_before = at(2025);
    issuer.not_after = at(2125);
    issue("issuer", issuer);
    let mut expired = ca_params("identity.linkerd.cluster.local", 0);
    expired.not_before = at(2000);
    expired.not_after = at(2001);
    issue("expired-issuer", expired);
    let mut leaf =
        CertificateParams::new(vec!["identity.linkerd.cluster.local".to_owned()]).unwrap();
    leaf.not_before = at(2025);
    leaf.not_after = at(2125);
    issue("leaf", leaf);
}

#[test]
fn a_bundle_of_anchors_is_kept_whole_for_rotation() {
    // During a trust-anchor rotation the bundle holds the old and the new anchor.
    let bundle = format!(
        "{}\n# the current anchor\n{}",
        read("other-ca.crt"),
        read("ca.crt")
    );
    let texts = [
        ("bundle.crt", bundle),
        ("issuer.crt", read("issuer.crt")),
        ("issuer.key", read("issuer.key")),
    ];
    let identity = Credentials::load(files(&texts), SystemTime::now()).unwrap();
    assert_eq!(
        identity
            .trust_anchors_pem
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    assert_eq!(
        identity.trust_anchors_pem,
        format!("{}{}", read("other-ca.crt"), read("ca.crt"))
    );
}
