//! What is shown of a presented certificate, and whether its chain ends at the trust anchors.

use k8s_openapi::jiff::Timestamp;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519,
};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// The leaf certificate's fields, as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub subject_alt_names: Vec<String>,
    pub issuer: String,
    /// Hex bytes separated by colons, as openssl prints a serial.
    pub serial: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    pub not_after: String,
    pub public_key_algorithm: String,
    pub pem: String,
}

/// Whether the presented chain ends at a trust anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Every signature up to an anchor verifies and every certificate is valid now.
    Trusted,
    /// Why not.
    Untrusted(String),
    /// The anchors could not be read; why.
    Unknown(String),
}

/// Parses the leaf (DER).
pub fn describe(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the proxy presented an invalid certificate: {e}"))?;
    let subject_alt_names = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.iter().map(general_name).collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("invalid subject alternative names: {e}")),
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        subject_alt_names,
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: date(cert.validity().not_before.timestamp()),
        not_after: date(cert.validity().not_after.timestamp()),
        public_key_algorithm: key_algorithm(&cert),
        pem: pem("CERTIFICATE", der),
    })
}

/// Whether `chain` (leaf first, then what the proxy sent with it) is signed up to one of the
/// `anchors` (DER), each certificate valid at `now` (Unix seconds). Walks at most the length of
/// the chain, so a loop in the presented certificates cannot make it spin.
pub fn trust(chain: &[Vec<u8>], anchors: &[Vec<u8>], now: i64) -> Trust {
    let parsed: Vec<X509Certificate<'_>> = chain
        .iter()
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
        .collect();
    let anchors: Vec<X509Certificate<'_>> = anchors
        .iter()
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, c)| c))
        .collect();
    let Some(mut current) = parsed.first() else {
        return Trust::Untrusted("the proxy presented no certificate".to_string());
    };
    for _ in 0..parsed.len() {
        let validity = current.validity();
        if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
            return Trust::Untrusted(format!(
                "{} is not valid now ({} to {})",
                current.subject(),
                date(validity.not_before.timestamp()),
                date(validity.not_after.timestamp())
            ));
        }
        let signed_by = |issuer: &X509Certificate<'_>| {
            issuer.subject() == current.issuer()
                && current.verify_signature(Some(issuer.public_key())).is_ok()
        };
        if anchors.iter().any(signed_by) {
            return Trust::Trusted;
        }
        match parsed[1..].iter().find(|c| signed_by(c)) {
            Some(next) => current = next,
            None => break,
        }
    }
    Trust::Untrusted("it does not chain to any of the trust anchors".to_string())
}

/// The certificates of a PEM bundle, as DER; blocks that are not certificates are skipped.
pub fn bundle(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(text.as_bytes()) {
        let pem = pem.map_err(|e| format!("invalid PEM: {e}"))?;
        if pem.label == "CERTIFICATE" {
            out.push(pem.contents);
        }
    }
    if out.is_empty() {
        return Err("no certificate in it".to_string());
    }
    Ok(out)
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(dns) => format!("DNS:{dns}"),
        GeneralName::URI(uri) => format!("URI:{uri}"),
        GeneralName::RFC822Name(mail) => format!("email:{mail}"),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => {
                let octets: [u8; 4] = [ip[0], ip[1], ip[2], ip[3]];
                format!("IP:{}", std::net::Ipv4Addr::from(octets))
            }
            16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(ip);
                format!("IP:{}", std::net::Ipv6Addr::from(octets))
            }
            _ => "IP:<invalid>".to_string(),
        },
        other => other.to_string(),
    }
}

fn key_algorithm(cert: &X509Certificate<'_>) -> String {
    let key = cert.public_key();
    let oid = &key.algorithm.algorithm;
    if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => "ECDSA P-256".to_string(),
            Some(c) if c == OID_NIST_EC_P384 => "ECDSA P-384".to_string(),
            Some(c) if c == OID_NIST_EC_P521 => "ECDSA P-521".to_string(),
            Some(c) => format!("ECDSA {c}"),
            None => "ECDSA".to_string(),
        };
    }
    if *oid == OID_PKCS1_RSAENCRYPTION {
        return match key.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
            _ => "RSA".to_string(),
        };
    }
    if *oid == OID_SIG_ED25519 {
        return "Ed25519".to_string();
    }
    oid.to_id_string()
}

fn date(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| secs.to_string())
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
