//! The control plane's certificates: the identity trust anchors and issuer, generated or read from
//! files and verified, and the injector webhook's serving certificate.
//!
//! The webhook certificate is derived, not drawn at random: its keys come from the issuer key
//! through HMAC-SHA256 and it is signed with Ed25519, whose signatures are deterministic, and it is
//! valid exactly as long as the issuer. The same issuer therefore always gives the same manifest,
//! byte for byte, and the derived keys reveal nothing the manifest does not already hold.

use std::time::{Duration, SystemTime};

use crate::pem::{check_validity, parse_cert, pem_blocks, sec1_to_pkcs8, to_pem, to_system_time};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// How long a generated trust anchor is valid. Linkerd's one-year default has bitten many users
/// (linkerd2 #4808), and rotating an anchor is far harder than rotating an issuer.
pub const ANCHOR_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a generated issuer is valid.
pub const ISSUER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The identity credentials the control plane needs, as normalized PEM.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// One or more CA certificates.
    pub trust_anchors_pem: String,
    pub issuer_crt_pem: String,
    /// PKCS#8, whatever form the key file had.
    pub issuer_key_pem: String,
    pub(crate) issuer_key_der: Vec<u8>,
    not_before: SystemTime,
    not_after: SystemTime,
}

/// A webhook's serving certificate and the CA the API server trusts it through.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub ca_pem: String,
    pub crt_pem: String,
    pub key_pem: String,
}

/// The three files of `--identity-*-file`.
#[derive(Debug, Clone, Copy)]
pub struct IdentityFiles<'a> {
    pub trust_anchors: (&'a str, &'a str),
    pub issuer_certificate: (&'a str, &'a str),
    pub issuer_key: (&'a str, &'a str),
}

/// Why certificates could not be generated or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file holds no PEM block of the expected kind, or one that does not parse.
    #[error("{file}: {message}")]
    Unreadable { file: String, message: String },
    /// The issuer key is not a P-256 ECDSA key, which the identity controller signs with.
    #[error("{file}: the issuer key must be an ECDSA P-256 key")]
    WrongKeyType { file: String },
    /// The issuer certificate lacks `CA:TRUE`.
    #[error("{file}: the issuer certificate is not a CA (basicConstraints CA:TRUE is missing)")]
    NotACa { file: String },
    /// The key belongs to another certificate.
    #[error("{key_file}: the issuer key does not match the issuer certificate in {crt_file}")]
    KeyMismatch { key_file: String, crt_file: String },
    /// No trust anchor signed the issuer.
    #[error(
        "{crt_file}: the issuer certificate is not signed by any trust anchor in {anchors_file}"
    )]
    NotSignedByAnchors {
        crt_file: String,
        anchors_file: String,
    },
    /// A certificate is outside its validity period.
    #[error("{file}: the {what} certificate {state}")]
    Validity {
        file: String,
        what: &'static str,
        state: String,
    },
    /// Generating or signing failed.
    #[error("cannot create the {what} certificate: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
}

impl Credentials {
    /// Generates a fresh ECDSA P-256 trust anchor, valid ten years, and an issuer signed by it,
    /// valid one year, both starting at `now`.
    pub fn generate(trust_domain: &str, now: SystemTime) -> Result<Credentials, CertError> {
        let generate = |what| move |source| CertError::Generate { what, source };
        let anchor_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate("trust anchor"))?;
        let mut anchor = ca_params(&format!("root.linkerd.{trust_domain}"), 1);
        anchor.not_before = now.into();
        anchor.not_after = (now + ANCHOR_VALIDITY).into();
        let anchor_crt = anchor
            .self_signed(&anchor_key)
            .map_err(generate("trust anchor"))?;

        let issuer_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate("issuer"))?;
        let issuer_name = format!("identity.linkerd.{trust_domain}");
        let mut issuer = ca_params(&issuer_name, 0);
        issuer.subject_alt_names = vec![rcgen::SanType::DnsName(
            issuer_name.try_into().map_err(generate("issuer"))?,
        )];
        issuer.not_before = now.into();
        issuer.not_after = (now + ISSUER_VALIDITY).into();
        let signer = Issuer::new(anchor, &anchor_key);
        let issuer_crt = issuer
            .signed_by(&issuer_key, &signer)
            .map_err(generate("issuer"))?;

        Ok(Credentials {
            trust_anchors_pem: anchor_crt.pem(),
            issuer_crt_pem: issuer_crt.pem(),
            issuer_key_pem: issuer_key.serialize_pem(),
            issuer_key_der: issuer_key.serialize_der(),
            not_before: now,
            not_after: now + ISSUER_VALIDITY,
        })
    }

    /// Reads the credentials from files (given as `(name, text)`) and checks that they fit
    /// together: the issuer is a CA, matches its key, is signed by one of the anchors, and both it
    /// and that anchor are valid at `now`.
    pub fn load(files: IdentityFiles<'_>, now: SystemTime) -> Result<Credentials, CertError> {
        let (anchors_file, anchors_text) = files.trust_anchors;
        let (crt_file, crt_text) = files.issuer_certificate;
        let (key_file, key_text) = files.issuer_key;

        let anchors = pem_blocks(anchors_file, anchors_text, &["CERTIFICATE"])?;
        let issuer_pem = pem_blocks(crt_file, crt_text, &["CERTIFICATE"])?.remove(0);
        let key_pem = pem_blocks(key_file, key_text, &["PRIVATE KEY", "EC PRIVATE KEY"])?.remove(0);

        let anchor_certs = anchors
            .iter()
            .map(|pem| parse_cert(anchors_file, pem))
            .collect::<Result<Vec<_>, _>>()?;
        let issuer = parse_cert(crt_file, &issuer_pem)?;

        let key_der = match key_pem.label.as_str() {
            "EC PRIVATE KEY" => sec1_to_pkcs8(&key_pem.contents),
            _ => key_pem.contents.clone(),
        };
        let key = KeyPair::try_from(key_der.as_slice()).map_err(|_| CertError::Unreadable {
            file: key_file.to_owned(),
            message: "cannot parse the private key (expected PKCS#8 or SEC1 PEM)".to_owned(),
        })?;
        if !key.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err(CertError::WrongKeyType {
                file: key_file.to_owned(),
            });
        }

        if !issuer.is_ca() {
            return Err(CertError::NotACa {
                file: crt_file.to_owned(),
            });
        }
        if issuer.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CertError::KeyMismatch {
                key_file: key_file.to_owned(),
                crt_file: crt_file.to_owned(),
            });
        }
        let signer = anchor_certs
            .iter()
            .find(|anchor| {
                anchor.subject() == issuer.issuer()
                    && issuer.verify_signature(Some(anchor.public_key())).is_ok()
            })
            .ok_or_else(|| CertError::NotSignedByAnchors {
                crt_file: crt_file.to_owned(),
                anchors_file: anchors_file.to_owned(),
            })?;
        check_validity(crt_file, "issuer", &issuer, now)?;
        check_validity(anchors_file, "trust anchor", signer, now)?;

        let not_before = to_system_time(issuer.validity().not_before);
        let not_after = to_system_time(issuer.validity().not_after);
        Ok(Credentials {
            trust_anchors_pem: anchors.iter().map(to_pem).collect(),
            issuer_crt_pem: to_pem(&issuer_pem),
            issuer_key_pem: key.serialize_pem(),
            issuer_key_der: key.serialize_der(),
            not_before,
            not_after,
        })
    }

    /// When the issuer expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Empty credentials, for rendering what to delete.
    pub fn placeholder() -> Credentials {
        Credentials {
            trust_anchors_pem: String::new(),
            issuer_crt_pem: String::new(),
            issuer_key_pem: String::new(),
            issuer_key_der: Vec::new(),
            not_before: SystemTime::UNIX_EPOCH,
            not_after: SystemTime::UNIX_EPOCH,
        }
    }

    /// The serving certificate for the webhook behind `service` in `namespace`, and its CA.
    /// Deterministic: see the module documentation.
    pub fn webhook(
        &self,
        service: &str,
        namespace: &str,
        cluster_domain: &str,
    ) -> Result<Webhook, CertError> {
        let generate = |source| CertError::Generate {
            what: "webhook",
            source,
        };
        let ca_key = self.derived_key(&format!("webhook ca {namespace} {service}"))?;
        let mut ca = ca_params(&format!("{service}.{namespace}.svc webhook CA"), 0);
        ca.not_before = self.not_before.into();
        ca.not_after = self.not_after.into();
        let ca_crt = ca.self_signed(&ca_key).map_err(generate)?;

        let leaf_key = self.derived_key(&format!("webhook serving {namespace} {service}"))?;
        let host = format!("{service}.{namespace}.svc");
        let mut leaf =
            CertificateParams::new(vec![host.clone(), format!("{host}.{cluster_domain}")])
                .map_err(generate)?;
        leaf.distinguished_name = common_name(&host);
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = self.not_before.into();
        leaf.not_after = self.not_after.into();
        let leaf_crt = leaf
            .signed_by(&leaf_key, &Issuer::new(ca, &ca_key))
            .map_err(generate)?;
        Ok(Webhook {
            ca_pem: ca_crt.pem(),
            crt_pem: leaf_crt.pem(),
            key_pem: leaf_key.serialize_pem(),
        })
    }

    /// An Ed25519 key whose seed is HMAC-SHA256(issuer key, purpose).
    fn derived_key(&self, purpose: &str) -> Result<KeyPair, CertError> {
        let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.issuer_key_der);
        let seed = ring::hmac::sign(&mac, format!("mesh {purpose}").as_bytes());
        // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): a fixed prefix, then the 32 bytes.
        let mut pkcs8 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        pkcs8.extend_from_slice(seed.as_ref());
        KeyPair::try_from(pkcs8).map_err(|source| CertError::Generate {
            what: "webhook",
            source,
        })
    }
}

fn ca_params(name: &str, path_len: u8) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

#[cfg(test)]
mod tests;
