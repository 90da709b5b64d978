//! What `Certify` decides: from a request, a token review and the current issuer to a certificate
//! or a refusal. No gRPC and no Kubernetes here, so every rule is tested without either.
//!
//! The order is Linkerd's: the request's shape and its CSR first (cheap, and no API call for a
//! malformed request), then the token review, then the names must agree.

use std::sync::Arc;
use std::time::SystemTime;

use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use mesh_pki::{Csr, CsrError, IssueError, Issuer, Validity};
use tokio::sync::watch;

use super::tokens::{Review, ReviewError, TokenReviewer};

/// The largest token accepted. Projected service-account tokens are one or two kilobytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The longest identity name: a DNS name.
pub const MAX_IDENTITY_BYTES: usize = 253;

/// Why a request was refused; each becomes a gRPC status and a metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A field is missing or larger than its limit.
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    /// The CSR does not parse, does not verify, or has the wrong key type.
    #[error("malformed CSR: {0}")]
    MalformedCsr(String),
    /// The token does not authenticate a service account for the identity audience.
    #[error("invalid token: {message}")]
    InvalidToken {
        message: String,
        /// The API server reported an error with the token (Linkerd answers InvalidArgument).
        rejected_by_api: bool,
    },
    /// The request, its CSR and its token do not name the same identity.
    #[error("identity mismatch: {0}")]
    IdentityMismatch(String),
    /// The token review could not be done (API error, time-out).
    #[error("cannot review the token: {0}")]
    ReviewFailed(String),
    /// The issuer cannot sign (expired).
    #[error("cannot issue: {0}")]
    Issuer(String),
}

impl Refusal {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MalformedRequest(_) => "malformed_request",
            Refusal::MalformedCsr(_) => "malformed_csr",
            Refusal::InvalidToken { .. } => "invalid_token",
            Refusal::IdentityMismatch(_) => "identity_mismatch",
            Refusal::ReviewFailed(_) => "token_review_failed",
            Refusal::Issuer(_) => "issuer",
        }
    }

    /// The gRPC code, as Linkerd's identity service answers: InvalidArgument for a malformed
    /// request or a token the API server reports an error for, FailedPrecondition for names that
    /// disagree and unauthenticated tokens, Internal when the review fails.
    pub fn code(&self) -> tonic::Code {
        match self {
            Refusal::MalformedRequest(_) | Refusal::MalformedCsr(_) => tonic::Code::InvalidArgument,
            Refusal::InvalidToken {
                rejected_by_api: true,
                ..
            } => tonic::Code::InvalidArgument,
            Refusal::InvalidToken { .. } | Refusal::IdentityMismatch(_) => {
                tonic::Code::FailedPrecondition
            }
            Refusal::ReviewFailed(_) => tonic::Code::Internal,
            Refusal::Issuer(_) => tonic::Code::Unavailable,
        }
    }

    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.code(), self.to_string())
    }
}

/// Names the service issues under.
#[derive(Debug, Clone)]
pub struct Naming {
    pub control_plane_ns: String,
    pub trust_domain: String,
}

/// The identity a Kubernetes user name stands for, if it is a service account's:
/// `system:serviceaccount:<ns>:<sa>` with both parts DNS-1123 labels.
pub fn identity_of_user(username: &str, naming: &Naming) -> Result<String, Refusal> {
    let invalid = |why: &str| Refusal::InvalidToken {
        message: format!("user {username:?} {why}"),
        rejected_by_api: true,
    };
    let rest = username
        .strip_prefix(mesh_names::identity::SERVICE_ACCOUNT_USER_PREFIX)
        .ok_or_else(|| invalid("is not a service account"))?;
    let (ns, sa) = rest
        .split_once(':')
        .ok_or_else(|| invalid("is not a service account"))?;
    if !is_dns_label(ns) || !is_dns_label(sa) {
        return Err(invalid("has a namespace or name that is not a DNS label"));
    }
    Ok(mesh_names::identity::workload(
        sa,
        ns,
        &naming.control_plane_ns,
        &naming.trust_domain,
    ))
}

/// RFC 1123 label: 1–63 of `[a-z0-9-]`, starting and ending alphanumeric.
fn is_dns_label(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63
                && alnum(first)
                && alnum(last)
                && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// Checks the request's fields and its CSR; returns the identity, token and CSR.
pub fn check_request(req: &CertifyRequest) -> Result<(&str, &str, Csr), Refusal> {
    let malformed = |m: String| Refusal::MalformedRequest(m);
    if req.identity.is_empty() {
        return Err(malformed("missing identity".to_owned()));
    }
    if req.identity.len() > MAX_IDENTITY_BYTES {
        return Err(malformed(format!(
            "identity longer than {MAX_IDENTITY_BYTES} bytes"
        )));
    }
    if req.token.is_empty() {
        return Err(malformed("missing token".to_owned()));
    }
    if req.token.len() > MAX_TOKEN_BYTES {
        return Err(malformed(format!(
            "token of {} bytes, more than {MAX_TOKEN_BYTES}",
            req.token.len()
        )));
    }
    let token = std::str::from_utf8(&req.token).map_err(|_| Refusal::InvalidToken {
        message: "the token is not UTF-8".to_owned(),
        rejected_by_api: true,
    })?;
    let csr = Csr::parse(&req.certificate_signing_request)
        .map_err(|e| Refusal::MalformedCsr(e.to_string()))?;
    csr.check_names(&req.identity).map_err(|e| match e {
        CsrError::NameCount(_)
        | CsrError::OtherName
        | CsrError::NameMismatch { .. }
        | CsrError::CommonName(_) => Refusal::IdentityMismatch(e.to_string()),
        e => Refusal::MalformedCsr(e.to_string()),
    })?;
    Ok((&req.identity, token, csr))
}

/// The identity a review authenticates, requiring the identity audience in its answer (an
/// API server that ignores audiences must not pass a token meant for something else).
pub fn identity_of_review(review: Review, naming: &Naming) -> Result<String, Refusal> {
    match review {
        Review::Rejected { error: Some(error) } => Err(Refusal::InvalidToken {
            message: error,
            rejected_by_api: true,
        }),
        Review::Rejected { error: None } => Err(Refusal::InvalidToken {
            message: "not authenticated".to_owned(),
            rejected_by_api: false,
        }),
        Review::Authenticated {
            username,
            audiences,
        } => {
            if !audiences
                .iter()
                .any(|a| a == mesh_names::identity::TOKEN_AUDIENCE)
            {
                return Err(Refusal::InvalidToken {
                    message: format!(
                        "not valid for the audience {}",
                        mesh_names::identity::TOKEN_AUDIENCE
                    ),
                    rejected_by_api: false,
                });
            }
            identity_of_user(&username, naming)
        }
    }
}

/// The Certify logic with its collaborators: the token reviewer and the current issuer.
pub struct Certifier<R> {
    pub reviewer: R,
    pub issuer: watch::Receiver<Arc<Issuer>>,
    pub validity: Validity,
    pub naming: Naming,
}

impl<R: TokenReviewer> Certifier<R> {
    pub async fn certify(
        &self,
        req: &CertifyRequest,
        now: SystemTime,
    ) -> Result<(String, CertifyResponse), Refusal> {
        let (requested, token, csr) = check_request(req)?;
        let review = self
            .reviewer
            .review(token.to_owned())
            .await
            .map_err(|e: ReviewError| Refusal::ReviewFailed(e.to_string()))?;
        let authenticated = identity_of_review(review, &self.naming)?;
        if authenticated != requested {
            return Err(Refusal::IdentityMismatch(format!(
                "the token is for {authenticated}, the request for {requested}"
            )));
        }
        let issuer = self.issuer.borrow().clone();
        let leaf = issuer
            .certify(&csr, requested, self.validity, now)
            .map_err(|e| match e {
                IssueError::Name { .. } => Refusal::IdentityMismatch(e.to_string()),
                e => Refusal::Issuer(e.to_string()),
            })?;
        let response = CertifyResponse {
            leaf_certificate: leaf.der,
            intermediate_certificates: leaf.chain,
            valid_until: Some(timestamp(leaf.not_after)),
        };
        Ok((authenticated, response))
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    prost_types::Timestamp {
        seconds: i64::try_from(secs).unwrap_or(i64::MAX),
        nanos: 0,
    }
}
