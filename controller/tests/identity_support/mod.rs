//! Running the real `mesh-controller identity` against the fake API server, and a client for it.
//! Shared by the end-to-end test and the benchmark.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use mesh_pki::Credentials;
use rustls::pki_types::{CertificateDer, ServerName};
use tonic::codegen::http::Uri;
use tonic::codegen::{Context, Future, Pin, Poll, Service};
use tonic::transport::{Channel, Endpoint};

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

/// A running `mesh-controller identity`, killed on drop.
pub struct Controller {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub admin: SocketAddr,
    pub grpc: SocketAddr,
}

/// Runs `command` (the controller, or a wrapper such as `taskset` followed by it) with
/// `--admin-addr 127.0.0.1:0 identity --addr 127.0.0.1:0` and the given files, then waits for
/// both listeners (at most 30 s). `extra` goes after the rest.
pub fn start(
    mut command: Command,
    kubeconfig: &Path,
    anchors: &Path,
    issuer_dir: &Path,
    extra: &[&str],
) -> Result<Controller, (Option<ExitStatus>, String)> {
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--admin-addr", "127.0.0.1:0", "--log-level", "info"])
        .args(["identity", "--addr", "127.0.0.1:0"])
        .arg("--trust-anchors")
        .arg(anchors)
        .arg("--issuer-dir")
        .arg(issuer_dir)
        .args(extra)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("mesh-controller starts");
    let stderr = Arc::new(Mutex::new(String::new()));
    let pipe = child.stderr.take().expect("stderr is piped");
    let sink = stderr.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = stderr.lock().unwrap().clone();
        if let (Some(admin), Some(grpc)) = (listening(&text, "admin"), listening(&text, "grpc")) {
            return Ok(Controller {
                child,
                stderr,
                admin,
                grpc,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            // The process is gone, so the pipe ends: the reader drains it and stops.
            let _ = reader.join();
            return Err((Some(status), stderr.lock().unwrap().clone()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err((None, text));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The address of the `listening ... server="<server>"` log line.
fn listening(text: &str, server: &str) -> Option<SocketAddr> {
    let tag = format!("server=\"{server}\"");
    text.lines()
        .filter(|l| l.contains("listening") && l.contains(&tag))
        .find_map(|l| {
            let at = l.find("addr=")? + "addr=".len();
            l[at..].split_whitespace().next()?.parse().ok()
        })
}

impl Controller {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit.
    pub fn terminate(mut self, limit: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Polls stderr until it contains `needle` (at most `limit`).
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on the admin server: (status, body).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: admin\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
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
