//! The identity issuer as the identity service uses it: loaded and verified once, then signing
//! workload certificates.
//!
//! Leaf certificates look like Linkerd's: the identity name as the only DNS name (and the common
//! name), key usages digitalSignature and keyEncipherment, extended key usages serverAuth and
//! clientAuth, valid from `now - clock skew` to `now + lifetime + clock skew`, never past the
//! issuer's own expiry so that a proxy renews before its chain breaks.

use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
    SignatureAlgorithm,
};
use ring::rand::SecureRandom;

use crate::credentials::{CertError, Credentials, IdentityFiles};
use crate::csr::Csr;

/// How long certificates are valid and how far back they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub lifetime: Duration,
    pub clock_skew: Duration,
}

/// Why a certificate could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The name cannot be a DNS name in a certificate.
    #[error("{name:?} is not a valid DNS name")]
    Name { name: String },
    /// The issuer has expired: nothing it signs would verify.
    #[error("the issuer expired")]
    Expired,
    /// Generating a key or signing failed.
    #[error("cannot sign the certificate: {0}")]
    Sign(#[source] rcgen::Error),
}

/// A signed leaf certificate.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificates between the leaf and the trust anchors, DER (the issuer).
    pub chain: Vec<Vec<u8>>,
    pub not_after: SystemTime,
}

/// A loaded, verified issuer that signs workload certificates.
pub struct Issuer {
    signer: rcgen::Issuer<'static, KeyPair>,
    crt_der: Vec<u8>,
    credentials: Credentials,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("not_after", &self.credentials.not_after())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Reads the issuer and checks it as `mesh install` does: a CA, matching its key, signed by
    /// one of the anchors, and valid (with that anchor) at `now`.
    pub fn load(files: IdentityFiles<'_>, now: SystemTime) -> Result<Issuer, CertError> {
        let credentials = Credentials::load(files, now)?;
        Issuer::from_credentials(credentials, files.issuer_certificate.0)
    }

    fn from_credentials(credentials: Credentials, crt_file: &str) -> Result<Issuer, CertError> {
        let unreadable = |message: String| CertError::Unreadable {
            file: crt_file.to_owned(),
            message,
        };
        let crt_der = crate::pem::first_der(&credentials.issuer_crt_pem)
            .ok_or_else(|| unreadable("no certificate".to_owned()))?;
        let key = KeyPair::try_from(credentials.issuer_key_der.as_slice())
            .map_err(|e| unreadable(format!("cannot use the key: {e}")))?;
        let signer = rcgen::Issuer::from_ca_cert_der(&crt_der.as_slice().into(), key)
            .map_err(|e| unreadable(format!("cannot use the certificate: {e}")))?;
        Ok(Issuer {
            signer,
            crt_der,
            credentials,
        })
    }

    /// When the issuer expires.
    pub fn not_after(&self) -> SystemTime {
        self.credentials.not_after()
    }

    /// The issuer certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.crt_der
    }

    /// The trust anchors it was verified against, PEM.
    pub fn trust_anchors_pem(&self) -> &str {
        &self.credentials.trust_anchors_pem
    }

    /// Signs a certificate for `name` with the key of a request whose names were checked.
    pub fn certify(
        &self,
        csr: &Csr,
        name: &str,
        validity: Validity,
        now: SystemTime,
    ) -> Result<Leaf, IssueError> {
        let key = P256PublicKey(csr.public_key());
        self.sign(&key, name, validity, now)
    }

    /// A fresh key and a certificate for `name`: the identity service's own serving credentials.
    /// Returns the leaf and the key as PKCS#8 DER.
    pub fn issue_with_key(
        &self,
        name: &str,
        validity: Validity,
        now: SystemTime,
    ) -> Result<(Leaf, Vec<u8>), IssueError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(IssueError::Sign)?;
        let leaf = self.sign(&key, name, validity, now)?;
        Ok((leaf, key.serialize_der()))
    }

    fn sign(
        &self,
        key: &impl PublicKeyData,
        name: &str,
        validity: Validity,
        now: SystemTime,
    ) -> Result<Leaf, IssueError> {
        let issuer_end = self.not_after();
        if now >= issuer_end {
            return Err(IssueError::Expired);
        }
        let not_after = (now + validity.lifetime + validity.clock_skew).min(issuer_end);
        let not_before = now.checked_sub(validity.clock_skew).unwrap_or(now);

        let dns = name.to_owned().try_into().map_err(|_| IssueError::Name {
            name: name.to_owned(),
        })?;
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        params.subject_alt_names = vec![SanType::DnsName(dns)];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let crt = params
            .signed_by(key, &self.signer)
            .map_err(IssueError::Sign)?;
        Ok(Leaf {
            der: crt.der().to_vec(),
            chain: vec![self.crt_der.clone()],
            not_after: crate::pem::whole_seconds(not_after),
        })
    }
}

/// A CSR's key: an uncompressed P-256 point, which [`Csr::parse`] checked.
struct P256PublicKey<'a>(&'a [u8]);

impl PublicKeyData for P256PublicKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// 128 random bits, positive (RFC 5280 allows up to 20 octets); should the system's random source
/// fail, the time in nanoseconds still differs between certificates.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_be_bytes();
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from(bytes.to_vec())
}

#[cfg(test)]
mod tests;
