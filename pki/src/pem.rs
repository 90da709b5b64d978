//! PEM files: blocks, certificates, keys in the forms people have, and validity windows.

use std::time::{Duration, SystemTime};

use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::time::ASN1Time;

use crate::CertError;

/// Every PEM block in `text` whose label is one of `labels`; at least one.
pub(crate) fn pem_blocks(file: &str, text: &str, labels: &[&str]) -> Result<Vec<Pem>, CertError> {
    let mut blocks = Vec::new();
    for pem in Pem::iter_from_buffer(text.as_bytes()) {
        let pem = pem.map_err(|e| CertError::Unreadable {
            file: file.to_owned(),
            message: format!("invalid PEM: {e}"),
        })?;
        if labels.contains(&pem.label.as_str()) {
            blocks.push(pem);
        }
    }
    if blocks.is_empty() {
        return Err(CertError::Unreadable {
            file: file.to_owned(),
            message: format!("no {} PEM block found", labels.join(" or ")),
        });
    }
    Ok(blocks)
}

pub(crate) fn parse_cert<'a>(file: &str, pem: &'a Pem) -> Result<X509Certificate<'a>, CertError> {
    pem.parse_x509().map_err(|e| CertError::Unreadable {
        file: file.to_owned(),
        message: format!("cannot parse the certificate: {e}"),
    })
}

pub(crate) fn check_validity(
    file: &str,
    what: &'static str,
    cert: &X509Certificate<'_>,
    now: SystemTime,
) -> Result<(), CertError> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let validity = cert.validity();
    let state = if now < validity.not_before.timestamp() {
        format!("is not valid before {}", validity.not_before)
    } else if now > validity.not_after.timestamp() {
        format!("expired on {}", validity.not_after)
    } else {
        return Ok(());
    };
    Err(CertError::Validity {
        file: file.to_owned(),
        what,
        state,
    })
}

pub(crate) fn to_system_time(time: ASN1Time) -> SystemTime {
    let secs = time.timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

pub(crate) fn to_pem(pem: &Pem) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(&pem.contents);
    let mut out = format!("-----BEGIN {}-----\n", pem.label);
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {}-----\n", pem.label));
    out
}

/// Wraps a SEC1 `EC PRIVATE KEY` (as step and openssl write them) in PKCS#8, the only form ring
/// reads. The curve is left to the parser: anything but P-256 fails there.
pub fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { id-ecPublicKey, prime256v1 }.
    const ALGORITHM: &[u8] = &[
        0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(ALGORITHM);
    body.push(0x04);
    push_der_len(&mut body, sec1.len());
    body.extend_from_slice(sec1);
    let mut out = vec![0x30];
    push_der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

pub(crate) fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The DER of the first certificate in `text`.
pub(crate) fn first_der(text: &str) -> Option<Vec<u8>> {
    Pem::iter_from_buffer(text.as_bytes())
        .filter_map(Result::ok)
        .find(|pem| pem.label == "CERTIFICATE")
        .map(|pem| pem.contents)
}

/// `time` without its fraction of a second, as a certificate stores it.
pub(crate) fn whole_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => time,
    }
}
