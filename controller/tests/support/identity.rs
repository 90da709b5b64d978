//! `mesh-controller identity` against the fake API server: its credentials, and a client that
//! verifies the service's name as a proxy does.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use mesh_pki::Credentials;
use rustls::pki_types::{CertificateDer, ServerName};
use tonic::codegen::http::Uri;
use tonic::codegen::{Context, Future, Pin, Poll, Service};
use tonic::transport::{Channel, Endpoint};

use super::Controller;

pub const CP_NS: &str = "linkerd";
pub const TRUST_DOMAIN: &str = "cluster.local";

/// The identity service's own name, which clients verify.
pub fn service_name() -> String {
    mesh_names::identity::service(CP_NS, TRUST_DOMAIN)
}

pub fn workload(sa: &str, ns: &str) -> String {
    mesh_names::identity::workload(sa, ns, CP_NS, TRUST_DOMAIN)
}

/// Writes the anchors to `dir/ca-bundle.crt` and the issuer to `dir/issuer/{crt,key}.pem`, as
/// the install manifests mount them. Returns (anchors file, issuer dir).
pub fn write_credentials(dir: &Path, credentials: &Credentials) -> (PathBuf, PathBuf) {
    let anchors = dir.join("ca-bundle.crt");
    let issuer = dir.join("issuer");
    std::fs::create_dir_all(&issuer).unwrap();
    std::fs::write(&anchors, &credentials.trust_anchors_pem).unwrap();
    std::fs::write(issuer.join("crt.pem"), &credentials.issuer_crt_pem).unwrap();
    std::fs::write(issuer.join("key.pem"), &credentials.issuer_key_pem).unwrap();
    (anchors, issuer)
}

/// Runs `command` (the controller, or a wrapper such as `taskset` followed by it) with
/// `--admin-addr 127.0.0.1:0 identity --addr 127.0.0.1:0` and the given files, then waits for
/// both listeners. `extra` goes after the rest.
pub fn start(
    command: Command,
    kubeconfig: &Path,
    anchors: &Path,
    issuer_dir: &Path,
    extra: &[&str],
) -> Result<Controller, (Option<ExitStatus>, String)> {
    let loopback = IpAddr::from([127, 0, 0, 1]);
    start_on(command, loopback, kubeconfig, anchors, issuer_dir, extra)
}

/// As [`start`], with the identity service on an ephemeral port of `ip` (the admin server
/// stays on loopback).
pub fn start_on(
    mut command: Command,
    ip: IpAddr,
    kubeconfig: &Path,
    anchors: &Path,
    issuer_dir: &Path,
    extra: &[&str],
) -> Result<Controller, (Option<ExitStatus>, String)> {
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--admin-addr", "127.0.0.1:0", "--log-level", "info"])
        .args(["identity", "--addr"])
        .arg(SocketAddr::new(ip, 0).to_string())
        .arg("--trust-anchors")
        .arg(anchors)
        .arg("--issuer-dir")
        .arg(issuer_dir)
        .args(extra);
    super::start(command, "grpc")
}

/// The trust anchors in `pem` as a root store.
pub fn roots(pem: &str) -> rustls::RootCertStore {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    roots
}

/// A client of the identity service over TLS, verifying the service's name against `anchors`.
pub async fn client(
    grpc: SocketAddr,
    anchors_pem: &str,
    name: &str,
) -> Result<IdentityClient<Channel>, tonic::transport::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(anchors_pem))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = Connector {
        addr: grpc,
        tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        name: ServerName::try_from(name.to_owned()).unwrap(),
    };
    let channel = Endpoint::from_static("http://identity.invalid")
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .connect_with_connector(connector)
        .await?;
    Ok(IdentityClient::new(channel))
}

#[derive(Clone)]
struct Connector {
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

type TlsIo = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl Service<Uri> for Connector {
    type Response = TlsIo;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<TlsIo>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(me.addr).await?;
            tcp.set_nodelay(true)?;
            let tls = me.tls.connect(me.name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// A proxy's CSR for `name`, DER, with a fresh P-256 key.
pub fn csr(name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}
