//! The connection to the identity service: TCP to each address the service's name resolves
//! to (`control::tcp`), then TLS verifying the service's identity against the trust anchors,
//! then HTTP/2.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::Channel;

use super::causes;
use crate::config::ControlAddr;
use crate::control::{self, tcp};

/// A client configuration that verifies servers against `roots` (ring, TLS 1.2 and 1.3, ALPN
/// h2) and presents no certificate: the proxy authenticates with its token.
pub fn client_config(
    provider: Arc<rustls::crypto::CryptoProvider>,
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Opens a channel to the service at `addr` whose certificate must name `server_name`; the
/// error says why not, with its causes.
pub async fn channel(
    addr: &ControlAddr,
    server_name: ServerName<'static>,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Channel, String> {
    let connector = Connector {
        addr: addr.clone(),
        server_name,
        tls: TlsConnector::from(tls),
    };
    // The endpoint's URI only gives requests their `:authority`; the connector decides
    // where to go.
    let endpoint = control::endpoint(addr).map_err(|e| causes(&e))?;
    endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| causes(&e))
}

#[derive(Clone)]
struct Connector {
    addr: ControlAddr,
    server_name: ServerName<'static>,
    tls: TlsConnector,
}

type Io = TokioIo<TlsStream<TcpStream>>;

impl tonic::codegen::Service<http::Uri> for Connector {
    type Response = Io;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Io>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let tcp = tcp(&me.addr).await?;
            let tls = me.tls.connect(me.server_name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}
