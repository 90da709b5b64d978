use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, SanType};

use super::*;

const NAME: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";

fn request(params: &CertificateParams, key: &KeyPair) -> Vec<u8> {
    params.serialize_request(key).unwrap().der().to_vec()
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

/// A request as a proxy sends it: one DNS name, no subject.
fn proxy_request(name: &str, key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    request(&params, key)
}

#[test]
fn a_proxys_request_parses_with_its_key_and_name() {
    let key = p256();
    let csr = Csr::parse(&proxy_request(NAME, &key)).unwrap();
    assert_eq!(csr.dns_names(), [NAME]);
    assert_eq!(csr.public_key(), key.public_key_raw());
    csr.check_names(NAME).unwrap();
}

#[test]
fn a_common_name_equal_to_the_identity_is_allowed_and_another_is_not() {
    let key = p256();
    let mut params = CertificateParams::new(vec![NAME.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, NAME);
    Csr::parse(&request(&params, &key))
        .unwrap()
        .check_names(NAME)
        .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "admin");
    let err = Csr::parse(&request(&params, &key))
        .unwrap()
        .check_names(NAME)
        .unwrap_err();
    assert_eq!(err, CsrError::CommonName("admin".to_owned()));
}

#[test]
fn names_must_be_exactly_the_identity() {
    let key = p256();
    let csr = Csr::parse(&proxy_request(
        "other.shop.serviceaccount.identity.linkerd.cluster.local",
        &key,
    ))
    .unwrap();
    assert_eq!(
        csr.check_names(NAME).unwrap_err().to_string(),
        format!(
            "the certificate signing request names other.shop.serviceaccount.identity.linkerd.cluster.local, not {NAME}"
        )
    );

    let two = CertificateParams::new(vec![NAME.to_owned(), "x.example".to_owned()]).unwrap();
    let csr = Csr::parse(&request(&two, &key)).unwrap();
    assert_eq!(csr.check_names(NAME), Err(CsrError::NameCount(2)));

    let none = CertificateParams::new(Vec::<String>::new()).unwrap();
    let csr = Csr::parse(&request(&none, &key)).unwrap();
    assert_eq!(csr.check_names(NAME), Err(CsrError::NameCount(0)));

    let mut ip = CertificateParams::new(vec![NAME.to_owned()]).unwrap();
    ip.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let csr = Csr::parse(&request(&ip, &key)).unwrap();
    assert_eq!(csr.check_names(NAME), Err(CsrError::OtherName));
}

#[test]
fn only_p256_keys_are_accepted() {
    let ed = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    assert_eq!(
        Csr::parse(&proxy_request(NAME, &ed)),
        Err(CsrError::WrongKeyType)
    );
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    assert_eq!(
        Csr::parse(&proxy_request(NAME, &p384)),
        Err(CsrError::WrongKeyType)
    );
}

#[test]
fn a_tampered_request_fails_its_signature() {
    let key = p256();
    let der = proxy_request(NAME, &key);
    // Change a letter of the name: the body no longer matches the signature.
    let at = der
        .windows(3)
        .position(|w| w == b"web")
        .expect("the name is in the request");
    let mut tampered = der.clone();
    tampered[at] = b'x';
    assert_eq!(Csr::parse(&tampered), Err(CsrError::BadSignature));
}

#[test]
fn garbage_empty_oversized_and_trailing_bytes_are_malformed() {
    assert_eq!(Csr::parse(b""), Err(CsrError::Empty));
    assert!(matches!(
        Csr::parse(b"not a request"),
        Err(CsrError::Malformed(_))
    ));
    let big = vec![0x30; MAX_CSR_BYTES + 1];
    assert_eq!(Csr::parse(&big), Err(CsrError::TooLarge(MAX_CSR_BYTES + 1)));
    let mut trailing = proxy_request(NAME, &p256());
    trailing.push(0);
    assert!(matches!(
        Csr::parse(&trailing),
        Err(CsrError::Malformed(m)) if m.contains("after the request")
    ));
    // A certificate is not a request.
    let crt = CertificateParams::new(vec![NAME.to_owned()])
        .unwrap()
        .self_signed(&p256())
        .unwrap();
    assert!(matches!(Csr::parse(crt.der()), Err(CsrError::Malformed(_))));
}

#[test]
fn truncations_never_panic() {
    let der = proxy_request(NAME, &p256());
    for len in 0..der.len() {
        assert!(Csr::parse(&der[..len]).is_err(), "{len} bytes");
    }
}
