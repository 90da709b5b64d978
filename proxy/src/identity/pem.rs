//! PEM and X.509 as identities need them: certificate chains, keys (PKCS#8, or SEC1 turned
//! into PKCS#8), and the leaf's DNS names and expiry.

use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::IdentityError;

/// Every `CERTIFICATE` block, in order; at least one. Other blocks are skipped.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(IdentityError::NoCertificate);
    }
    for (index, cert) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(cert).map_err(|e| IdentityError::Certificate {
            index,
            reason: e.to_string(),
        })?;
    }
    Ok(certs)
}

/// A PEM error in words (the library's own message prints bytes as numbers).
fn pem_error(e: rustls::pki_types::pem::Error) -> IdentityError {
    use rustls::pki_types::pem::Error;
    IdentityError::Pem(match e {
        Error::MissingSectionEnd { end_marker } => {
            format!("no END {} line", String::from_utf8_lossy(&end_marker))
        }
        Error::IllegalSectionStart { line } => {
            format!(
                "a malformed BEGIN line {:?}",
                String::from_utf8_lossy(&line)
            )
        }
        Error::Base64Decode(why) => format!("bad base64: {why}"),
        other => other.to_string(),
    })
}

/// The first private key: PKCS#8 as it is, SEC1 (`EC PRIVATE KEY`, as OpenSSL writes
/// P-256 keys) wrapped into PKCS#8.
pub(crate) fn pkcs8_key(pem: &[u8]) -> Result<PrivatePkcs8KeyDer<'static>, IdentityError> {
    let key = match PrivateKeyDer::from_pem_slice(pem) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(IdentityError::NoKey),
        Err(e) => return Err(pem_error(e)),
    };
    match key {
        PrivateKeyDer::Pkcs8(k) => Ok(k),
        PrivateKeyDer::Sec1(k) => Ok(PrivatePkcs8KeyDer::from(mesh_pki::sec1_to_pkcs8(
            k.secret_sec1_der(),
        ))),
        _ => Err(IdentityError::KeyForm),
    }
}

/// The DNS names (subjectAltName dNSName) of a certificate, in order.
pub fn leaf_dns_names(cert: &CertificateDer<'_>) -> Result<Vec<String>, IdentityError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| IdentityError::Certificate {
            index: 0,
            reason: e.to_string(),
        })?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| IdentityError::Certificate {
            index: 0,
            reason: e.to_string(),
        })?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(name) => Some((*name).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// When a certificate expires.
pub fn leaf_not_after(cert: &CertificateDer<'_>) -> Result<SystemTime, IdentityError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| IdentityError::Certificate {
            index: 0,
            reason: e.to_string(),
        })?;
    let secs = parsed.validity().not_after.timestamp();
    Ok(match u64::try_from(secs) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH,
    })
}
