//! The mesh's certificates, shared by `mesh install`, `mesh check` and the identity service:
//!
//! - [`Credentials`]: the trust anchors and the identity issuer, generated or loaded from PEM
//!   files and verified, and the proxy injector's webhook certificate derived from them;
//! - [`Csr`]: a proxy's certificate signing request, parsed and verified;
//! - [`Issuer`]: a verified issuer that signs workload certificates as Linkerd's identity
//!   service does.
//!
//! Pure: no I/O beyond the text it is given, no clock beyond the `now` it is passed.

mod credentials;
mod csr;
mod issuer;
mod pem;

pub use credentials::{
    ANCHOR_VALIDITY, CertError, Credentials, ISSUER_VALIDITY, IdentityFiles, Webhook,
};
pub use csr::{Csr, CsrError, MAX_CSR_BYTES};
pub use issuer::{IssueError, Issuer, Leaf, Validity};
pub use pem::sec1_to_pkcs8;
