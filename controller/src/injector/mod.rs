//! `mesh-controller proxy-injector`: the mutating admission webhook that adds the proxy to new
//! pods, as Linkerd's proxy injector does.
//!
//! - `decide`: the pure part: whether to inject a pod (Linkerd's table), the injected pod (the
//!   sidecar from `mesh_inject::manual`, the same code as `mesh inject --manual` and
//!   `mesh install`), a Service's opaque-ports annotation, and the JSONPatch between them;
//! - `review`: AdmissionReview in and out, never blocking an object for its own trouble;
//! - `server`: HTTPS; `tls`: the reloaded serving certificate; `namespaces`: the namespace
//!   reflector; `owners`: the ReplicaSets' owners, for naming workloads; `events`: Kubernetes
//!   Events; `metrics`; `config`: the files read at start-up.

mod config;
pub mod decide;
mod events;
mod metrics;
mod namespaces;
mod owners;
mod review;
mod server;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::args::InjectorArgs;
use crate::runtime::{Component, Context, Failure};

pub use server::MAX_BODY;

/// How often the serving certificate files are compared with what is loaded.
const TLS_POLL: Duration = Duration::from_secs(3);

impl Component for InjectorArgs {
    const NAME: &'static str = "proxy-injector";
    const ADMIN_PORT: u16 = mesh_names::ports::INJECTOR_ADMIN;

    async fn run(self, ctx: Context) -> Result<(), Failure> {
        let settings =
            config::Settings::load(&self.config, &self.trust_anchors).map_err(Failure::Config)?;
        let (certs, files) = tls::Certs::load(&self.tls_dir)
            .with_context(|| format!("--tls-dir {}", self.tls_dir.display()))
            .map_err(Failure::Config)?;
        let tls_config = certs
            .server_config()
            .context("cannot build the TLS configuration")
            .map_err(Failure::Config)?;
        let client = ctx.kube_client().await?;
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("cannot listen on --addr {}", self.addr))
            .map_err(Failure::Config)?;
        let bound = listener.local_addr().map_err(Failure::runtime)?;
        tracing::info!(addr = %bound, server = "webhook", "listening");

        let metrics = metrics::Metrics::register(&mut ctx.metrics.registry());
        let namespaces = namespaces::Namespaces::spawn(client.clone(), ctx.shutdown.clone());
        let replica_sets = owners::ReplicaSets::spawn(client.clone(), ctx.shutdown.clone());
        let events = events::Recorder::spawn(client.clone(), ctx.shutdown.clone());
        tokio::spawn(certs.watch(files, TLS_POLL, ctx.shutdown.clone()));
        {
            // The certificate is loaded already; ready once the namespaces are known.
            let (namespaces, ready) = (namespaces.clone(), ctx.ready.clone());
            tokio::spawn(async move {
                if namespaces.synced().await {
                    tracing::info!("namespaces synced; ready");
                    ready.set(true);
                }
            });
        }
        let version = env!("CARGO_PKG_VERSION").to_owned();
        let reviewer = Arc::new(review::Reviewer {
            settings,
            control_plane_namespace: ctx.common.control_plane_namespace.clone(),
            created_by: format!("mesh/proxy-injector {version}"),
            version,
            namespaces,
            replica_sets,
            events,
            metrics,
        });
        let acceptor = TlsAcceptor::from(Arc::new(tls_config));
        server::serve(
            listener,
            acceptor,
            reviewer,
            ctx.shutdown.clone(),
            ctx.grace,
        )
        .await;
        Ok(())
    }
}
