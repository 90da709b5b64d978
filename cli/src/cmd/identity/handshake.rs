//! Asking a proxy for its certificate: a port-forward to its inbound port through the API
//! server, then a TLS 1.3 handshake with the identity name as the server name, as a meshed
//! client starts one. No client certificate is sent, and the chain is accepted whatever it
//! is: the command shows certificates, and judges trust apart from the handshake.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::AsyncWriteExt as _;

/// The presented chain, leaf first, as DER.
pub type Chain = Vec<Vec<u8>>;

/// Port-forwards to `port` of `pod` and returns the chain its proxy presents for `identity`,
/// or why it could not, within `timeout`.
pub async fn fetch(
    pods: &Api<Pod>,
    pod: &str,
    port: u16,
    identity: &str,
    timeout: Duration,
) -> Result<Chain, String> {
    match tokio::time::timeout(timeout, fetch_inner(pods, pod, port, identity)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "the proxy's port {port} did not complete a TLS handshake in {}",
            mesh_names::format_duration(timeout)
        )),
    }
}

async fn fetch_inner(
    pods: &Api<Pod>,
    pod: &str,
    port: u16,
    identity: &str,
) -> Result<Chain, String> {
    let server_name = ServerName::try_from(identity.to_string())
        .map_err(|e| format!("identity name {identity:?} is not a valid TLS server name: {e}"))?;
    let mut forwarder = pods.portforward(pod, &[port]).await.map_err(|e| {
        format!(
            "cannot port-forward to port {port}: {}",
            crate::client::describe(e)
        )
    })?;
    let (Some(stream), Some(errors)) = (forwarder.take_stream(port), forwarder.take_error(port))
    else {
        forwarder.abort();
        return Err(format!("the port-forward gave no stream for port {port}"));
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config()?));
    let result = connector.connect(server_name, stream).await;
    let chain = match result {
        Ok(mut tls) => {
            let chain: Chain = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default();
            // A polite close; the connection is ours alone.
            let _ = tls.shutdown().await;
            Ok(chain)
        }
        Err(e) => {
            // The kubelet reports a port it cannot reach on the error channel before it
            // closes the data stream, so by now the message is there if there is one.
            match errors.now_or_never().flatten() {
                Some(message) => Err(format!("cannot reach the proxy's port {port}: {message}")),
                None => Err(format!("TLS handshake with the proxy failed: {e}")),
            }
        }
    };
    forwarder.abort();
    let chain = chain?;
    if chain.is_empty() {
        return Err("the proxy presented no certificate".to_string());
    }
    Ok(chain)
}

/// TLS 1.3 only, as Linkerd's proxies speak to each other, with the ring provider.
fn client_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(ShowAnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// Accepts any certificate chain, but still checks the handshake signature, so the server
/// proved it holds the key of the certificate it showed.
#[derive(Debug)]
struct ShowAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ShowAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
