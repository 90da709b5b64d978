//! Runs the proxy: binds the listeners, builds both stacks, serves until a shutdown signal,
//! then drains.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::admin::Admin;
use crate::config::{Config, Env};
use crate::drain::Shutdown;
use crate::identity::CredentialsRx;
use crate::identity::certify::{Certify, CertifyError};
use crate::inbound::Inbound;
use crate::inbound::policy::Policies;
use crate::log::LogHandle;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::outbound::discover::Resolve;
use crate::outbound::discover::destination::ControlPlane;
use crate::outbound::discover::namer::Namer;
use crate::tls::MeshTls;

/// The exit code for a malformed configuration (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// Why the proxy could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A listener could not be bound.
    #[error("binding the {server} listener on {addr}: {error}")]
    Bind {
        server: &'static str,
        addr: SocketAddr,
        error: io::Error,
    },
    /// The async runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(io::Error),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(io::Error),
    /// The control plane's address or settings are unusable.
    #[error("the destination service: {0}")]
    Destination(crate::control::AddrError),
    /// The policy service's address is unusable.
    #[error("the policy service: {0}")]
    PolicyService(crate::control::AddrError),
    /// The file namer's polling thread could not start.
    #[error("starting the file namer's thread: {0}")]
    NamerThread(io::Error),
    /// The admin server's thread could not start.
    #[error("starting the admin server's thread: {0}")]
    AdminThread(io::Error),
    /// The identity client could not start (its key, or its TLS configuration).
    #[error("the identity service client: {0}")]
    Certify(CertifyError),
    /// The identity files' watcher could not start.
    #[error("starting the identity source: {0}")]
    Identity(io::Error),
    /// No mesh TLS configuration can be built from the trust anchors.
    #[error("mesh TLS: {0}")]
    MeshTls(crate::tls::TlsError),
}

/// How often the proxy says it still waits for its first certificate.
const IDENTITY_WAIT_WARNING: Duration = Duration::from_secs(15);

/// Reads the configuration from `env` and runs the proxy until it has shut down.
///
/// A malformed configuration exits with 64 and names every bad variable; a failure to
/// start (a port in use) exits with 1; a graceful shutdown exits with 0.
pub fn main(env: &dyn Env) -> ExitCode {
    let config = match Config::from_env(env) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("mesh-proxy: invalid configuration:");
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let log = crate::log::init(&config.log_filter, config.log_format);
    for name in &config.unsupported {
        tracing::debug!(variable = %name, "not supported yet; ignored");
    }
    let runtime = if config.cores <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(4)
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.cores)
            .enable_all()
            .max_blocking_threads(4)
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mesh-proxy: {}", RunError::Runtime(e));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(config, log));
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the proxy until SIGTERM, SIGINT or `POST /shutdown`, then drains.
pub async fn run(config: Config, log: LogHandle) -> Result<(), RunError> {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::with_limits(config.metrics));

    let admin_listener = bind("admin", config.admin.listen).await?;
    let mut inbound_listeners = Vec::new();
    for addr in &config.inbound.listen {
        inbound_listeners.push(bind("inbound", *addr).await?);
    }
    let mut outbound_listeners = Vec::new();
    for addr in &config.outbound.listen {
        match bind("outbound", *addr).await {
            Ok(l) => outbound_listeners.push(l),
            // Linkerd's dual-stack form lists an IPv6 address too; a pod without IPv6
            // still runs on the IPv4 one.
            Err(RunError::Bind { error, .. })
                if addr.is_ipv6()
                    && config.outbound.listen.len() > 1
                    && error.kind() == io::ErrorKind::AddrNotAvailable =>
            {
                tracing::warn!(%addr, %error, "IPv6 is not available; listening on IPv4 only");
            }
            Err(e) => return Err(e),
        }
    }
    let own: Arc<[SocketAddr]> = inbound_listeners
        .iter()
        .chain(&outbound_listeners)
        .filter_map(|l| l.local_addr().ok())
        .collect();

    // One identity source: certificate files, or the identity service, asked at once
    // (traffic is served once it has answered). Both feed one credentials channel, which
    // mesh TLS, `/ready` and the identity metrics follow.
    let source = match (&config.identity, &config.certify) {
        (Some(files), _) => {
            let rx = crate::identity::start(files).map_err(RunError::Identity)?;
            Some((
                rx,
                files.trust_anchors.clone(),
                files.local_name.clone(),
                false,
            ))
        }
        (None, Some(certify)) => {
            let rx = Certify::new(certify.clone())
                .map_err(RunError::Certify)?
                .spawn();
            let name = Some(certify.local_name.clone());
            Some((rx, certify.trust_anchors.clone(), name, true))
        }
        (None, None) => None,
    };
    let (credentials, mesh_tls, identity) = match source {
        Some((credentials, anchors, local_name, wait)) => {
            tokio::spawn(crate::identity::export_metrics(
                credentials.clone(),
                metrics.clone(),
            ));
            // A mesh client sends its ClientHello at once; a silent one is not mesh TLS.
            let first_bytes = config
                .inbound
                .server_speaks_first
                .0
                .unwrap_or(crate::config::DEFAULT_SERVER_SPEAKS_FIRST);
            let tls = MeshTls::new(&anchors, credentials.clone(), local_name, first_bytes)
                .map_err(RunError::MeshTls)?;
            let identity = wait.then(|| credentials.clone());
            (Some(credentials), Some(tls), identity)
        }
        None => (None, None, None),
    };

    // Each side forks above its upstream into two sibling stages, HTTP and opaque TCP, and
    // detection hands every connection to one of them.
    let policies = Policies::new(&config.policy, metrics.clone(), mesh_tls.as_ref())
        .map_err(RunError::PolicyService)?;
    let upstream = Inbound::new(config.clone(), metrics.clone(), own.clone())
        .with_policies(policies)
        .with_mesh_tls(mesh_tls.clone())
        .push_connect()
        .share();
    let (http, tcp) = (upstream.clone().push_http(), upstream.clone().push_tcp());
    let inbound = upstream.push_detect(http, tcp).into_inner();
    let mut sources: Vec<Arc<dyn Resolve>> = Vec::new();
    if let Some(destination) = &config.destination {
        let client = ControlPlane::new(destination, mesh_tls.as_ref());
        sources.push(client.map_err(RunError::Destination)?);
    }
    let namer = match &config.namer {
        Some(c) => Some(Arc::new(Namer::new(c).map_err(RunError::NamerThread)?)),
        None => None,
    };
    if let Some(namer) = &namer {
        sources.push(namer.clone());
    }
    let route_by_host = !sources.is_empty();
    let upstream = Outbound::new(config.clone(), metrics.clone(), own)
        .with_mesh_tls(mesh_tls)
        .push_connect()
        .push_balance()
        .push_discover(sources, route_by_host)
        .share();
    let (http, tcp) = (upstream.clone().push_http(), upstream.clone().push_tcp());
    let outbound = upstream.push_detect(http, tcp).into_inner();

    let shutdown = Shutdown::new();
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;

    for listener in &inbound_listeners {
        log_listening("inbound", listener);
    }
    for listener in &outbound_listeners {
        log_listening("outbound", listener);
    }
    if config.admin.tap == crate::config::TapEndpoint::Enabled {
        metrics.tap().enable();
        tracing::info!("tap is enabled on the admin server");
    }
    let admin = Arc::new(
        Admin::new(
            metrics,
            Arc::new(log),
            shutdown.trigger(),
            config.admin.shutdown_endpoint,
        )
        .with_namer(namer)
        .with_identity(credentials),
    );
    log_listening("admin", &admin_listener);
    let admin_listener = admin_listener.into_std().map_err(RunError::AdminThread)?;
    admin
        .clone()
        .spawn(admin_listener)
        .map_err(RunError::AdminThread)?;

    // As Linkerd's proxy does, a proxy with an identity service serves nothing until it has
    // its first certificate: connections wait in the listeners' backlogs, and `/ready`
    // answers 503.
    let serve = async {
        if let Some(identity) = identity {
            certified(identity).await;
        }
        for listener in inbound_listeners {
            tokio::spawn(inbound.clone().serve(listener, shutdown.drain()));
        }
        for listener in outbound_listeners {
            tokio::spawn(outbound.clone().serve(listener, shutdown.drain()));
        }
        admin.set_ready();
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("received SIGTERM"),
        _ = sigint.recv() => tracing::info!("received SIGINT"),
        () = shutdown.triggered() => {}
        () = serve => {}
    }
    let grace = config.shutdown_grace_period;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "shutting down: no new connections; draining"
    );
    let started = std::time::Instant::now();
    if shutdown.finish(grace).await {
        tracing::info!("drained; exiting");
    } else {
        tracing::info!("grace period over with connections still open; exiting");
    }
    // Admin responses in progress (the answer to POST /shutdown among them) are finished,
    // within what is left of the grace period.
    admin.closed(grace.saturating_sub(started.elapsed())).await;
    Ok(())
}

/// Waits until the identity source has sent a certificate, warning now and then.
async fn certified(mut identity: CredentialsRx) {
    loop {
        tokio::select! {
            result = identity.wait_for(Option::is_some) => {
                if result.is_err() {
                    // The source is gone without a certificate: nothing will be served.
                    tracing::error!("identity: the identity client stopped; not serving");
                    std::future::pending::<()>().await;
                }
                return;
            }
            () = tokio::time::sleep(IDENTITY_WAIT_WARNING) => {
                tracing::warn!("identity: waiting for the first certificate; not serving yet");
            }
        }
    }
}

async fn bind(server: &'static str, addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| RunError::Bind {
            server,
            addr,
            error,
        })
}

fn log_listening(server: &'static str, listener: &TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(server, %addr, "listening");
    }
}
