//! The HTTPS call to a webhook: where `clientConfig` points, TLS checked against `caBundle` and
//! the service's DNS name, one `POST`, bounded in time and size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use crate::server::{Shared, lock};
use crate::store::core;

/// The most a webhook may answer, as the API server allows.
const MAX_RESPONSE: usize = 3 * 1024 * 1024;

/// Where one webhook is reached.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL as the API server names it in errors, with `?timeout=`.
    pub url: String,
    /// The name the certificate must carry.
    server_name: String,
    /// `host:port` for the Host header.
    authority: String,
    /// Path and query.
    path: String,
    /// Where to connect, or why there is nowhere to.
    connect: Result<SocketAddr, String>,
}

/// Reads `clientConfig`: a `url`, or a `service` routed with `FakeKube::route_service`.
pub fn endpoint(shared: &Shared, config: &Value, timeout: Duration) -> Result<Endpoint, String> {
    let query = format!("timeout={}s", timeout.as_secs());
    if let Some(url) = config.get("url").and_then(Value::as_str) {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid webhook url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("webhook url {url:?} must use https"));
        }
        let host = uri
            .host()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let path = uri.path().to_string();
        let authority = uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| host.clone());
        let connect = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SocketAddr::new(ip, port)),
            Err(_) if host == "localhost" => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
            Err(_) => Err(format!("dial tcp: lookup {host}: no such host")),
        };
        return Ok(Endpoint {
            url: format!("https://{authority}{path}?{query}"),
            server_name: host,
            authority,
            path: format!("{path}?{query}"),
            connect,
        });
    }
    let Some(service) = config.get("service") else {
        return Err("webhook clientConfig has neither url nor service".to_string());
    };
    let text = |k: &str| service.get(k).and_then(Value::as_str).unwrap_or("");
    let (ns, name) = (text("namespace"), text("name"));
    let port = service
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(443);
    let path = match text("path") {
        "" => "/".to_string(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    };
    let server_name = format!("{name}.{ns}.svc");
    let authority = format!("{server_name}:{port}");
    let exists = shared.state().get(&core("services"), ns, name).is_some();
    let route = lock(&shared.routes)
        .get(&(ns.to_string(), name.to_string(), port))
        .copied();
    let connect = match (exists, route) {
        (false, _) => Err(format!("service \"{name}\" not found")),
        (true, None) => Err(format!("no endpoints available for service \"{name}\"")),
        (true, Some(addr)) => Ok(addr),
    };
    Ok(Endpoint {
        url: format!("https://{authority}{path}?{query}"),
        server_name,
        authority,
        path: format!("{path}?{query}"),
        connect,
    })
}

/// POSTs `body` and returns the answer's body. Errors read like the API server's reasons after
/// `Post "<url>": `.
pub async fn post(endpoint: &Endpoint, ca_bundle: &str, body: Bytes) -> Result<Bytes, String> {
    let addr = endpoint.connect.clone()?;
    let tls = tls_config(ca_bundle)?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                format!("dial tcp {addr}: connect: connection refused")
            }
            _ => format!("dial tcp {addr}: {e}"),
        })?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(endpoint.server_name.clone())
        .map_err(|e| format!("invalid server name {:?}: {e}", endpoint.server_name))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: failed to verify certificate: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::post(endpoint.path.as_str())
        .header(header::HOST, endpoint.authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, */*")
        .header(header::USER_AGENT, "kube-apiserver-admission")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| format!("cannot read the response: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "the server responded with the status code {} but did not return more information",
            status.as_u16()
        ));
    }
    Ok(bytes)
}

/// Trusts exactly the certificates in `caBundle` (base64 of PEM, as the JSON of `[]byte`).
fn tls_config(ca_bundle: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = STANDARD
        .decode(ca_bundle.trim())
        .map_err(|e| format!("invalid caBundle: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("invalid caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
