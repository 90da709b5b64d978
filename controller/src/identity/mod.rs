//! `mesh-controller identity`: Linkerd's `io.linkerd.proxy.identity.Identity` service.
//!
//! A proxy sends its service-account token and a CSR for the identity it claims; the service
//! asks the API server who the token belongs to (a `TokenReview` for the `identity.l5d.io`
//! audience), checks that the token, the request and the CSR name the same identity, and signs
//! a short-lived certificate with the issuer from `--issuer-dir`.
//!
//! - `certify`: the decisions, pure and unit-tested;
//! - `tokens`: the token review through kube;
//! - `files`: loading the issuer and re-reading it when the mounted Secret changes;
//! - `tls`: the service's own certificate (issued for its identity name, which proxies verify),
//!   its renewal, and the TLS accept loop;
//! - `metrics`: issued certificates, refusals by reason, the issuer's expiry.

pub mod certify;
pub mod files;
pub mod metrics;
pub mod tls;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use linkerd2_proxy_api::identity::identity_server::{Identity, IdentityServer};
use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use mesh_pki::Validity;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::args::IdentityArgs;
use crate::runtime::{Component, Context, Failure};
use certify::{Certifier, Naming};
use files::IssuerPaths;
use metrics::IdentityMetrics;
use tokens::{KubeReviewer, TokenReviewer};

/// The largest gRPC message accepted: a token and a CSR with room to spare.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

impl Component for IdentityArgs {
    const NAME: &'static str = "identity";
    const ADMIN_PORT: u16 = mesh_names::ports::IDENTITY_ADMIN;

    async fn run(self, ctx: Context) -> Result<(), Failure> {
        if self.issuance_lifetime.is_zero() {
            return Err(Failure::config(anyhow::anyhow!(
                "--issuance-lifetime must be longer than 0s"
            )));
        }
        let paths = IssuerPaths::new(&self.trust_anchors, &self.issuer_dir);
        let contents = paths.read().await.map_err(Failure::Config)?;
        let issuer = paths
            .load(&contents, SystemTime::now())
            .context("the issuer cannot be used")
            .map_err(Failure::Config)?;
        let metrics = IdentityMetrics::register(&mut ctx.metrics.registry());
        metrics.issuer_loaded(issuer.not_after());

        let validity = Validity {
            lifetime: self.issuance_lifetime,
            clock_skew: self.clock_skew_allowance,
        };
        let naming = Naming {
            control_plane_ns: ctx.common.control_plane_namespace.clone(),
            trust_domain: self.identity_trust_domain.clone(),
        };
        let name = mesh_names::identity::service(&naming.control_plane_ns, &naming.trust_domain);
        let (cert, expires) = tls::ServingCert::issue(&name, &issuer, validity)
            .context("cannot issue the service's own certificate")
            .map_err(Failure::Config)?;
        let cert = Arc::new(cert);
        let tls_config = tls::server_config(cert.clone()).map_err(Failure::Config)?;

        let client = ctx.kube_client().await?;
        let reviewer = KubeReviewer::new(client, self.token_review_timeout);

        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("cannot listen on --addr {}", self.addr))
            .map_err(Failure::Config)?;
        let bound = listener.local_addr().map_err(Failure::runtime)?;
        tracing::info!(addr = %bound, server = "grpc", identity = %name, "listening");

        let (issuer_tx, issuer_rx) = watch::channel(Arc::new(issuer));
        tokio::spawn(files::watch(
            paths,
            contents,
            issuer_tx,
            metrics.clone(),
            self.issuer_poll_interval,
            ctx.shutdown.clone(),
        ));
        tokio::spawn(tls::renew(
            cert,
            issuer_rx.clone(),
            validity,
            expires,
            ctx.shutdown.clone(),
        ));

        let service = IdentityService {
            certifier: Certifier {
                reviewer,
                issuer: issuer_rx,
                validity,
                naming,
            },
            metrics,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config));
        let incoming = tls::incoming(listener, acceptor, ctx.shutdown.clone());
        let server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(IdentityServer::new(service).max_decoding_message_size(MAX_MESSAGE_BYTES))
            .serve_with_incoming_shutdown(incoming, ctx.shutdown.clone().cancelled_owned());
        tokio::pin!(server);
        ctx.ready.set(true);

        tokio::select! {
            served = &mut server => served.context("the gRPC server failed").map_err(Failure::Runtime)?,
            _ = ctx.shutdown.cancelled() => {
                ctx.ready.set(false);
                match tokio::time::timeout(ctx.grace, &mut server).await {
                    Ok(served) => served.context("the gRPC server failed").map_err(Failure::Runtime)?,
                    Err(_) => tracing::warn!(grace = ?ctx.grace, "requests still in flight after the grace period"),
                }
            }
        }
        Ok(())
    }
}

/// The gRPC service: [`Certifier`] plus metrics and logs.
pub struct IdentityService<R> {
    pub certifier: Certifier<R>,
    pub metrics: IdentityMetrics,
}

#[tonic::async_trait]
impl<R: TokenReviewer> Identity for IdentityService<R> {
    async fn certify(
        &self,
        request: tonic::Request<CertifyRequest>,
    ) -> Result<tonic::Response<CertifyResponse>, tonic::Status> {
        let request = request.into_inner();
        match self.certifier.certify(&request, SystemTime::now()).await {
            Ok((identity, response)) => {
                self.metrics.issued();
                tracing::debug!(%identity, "issued a certificate");
                Ok(tonic::Response::new(response))
            }
            Err(refusal) => {
                self.metrics.refused(refusal.reason());
                tracing::info!(reason = refusal.reason(), "refused: {refusal}");
                Err(refusal.to_status())
            }
        }
    }
}

#[cfg(test)]
mod tests;
