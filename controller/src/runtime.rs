//! What every component shares at run time: logging, the admin server, metrics, readiness, the
//! Kubernetes client and graceful shutdown on SIGTERM.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::args::CommonArgs;

/// How a component ended badly.
#[derive(Debug)]
pub enum Failure {
    /// A flag, file or certificate cannot be used; nothing was served (exit 64).
    Config(anyhow::Error),
    /// Something failed while running (exit 1).
    Runtime(anyhow::Error),
}

impl Failure {
    pub fn config(err: impl Into<anyhow::Error>) -> Failure {
        Failure::Config(err.into())
    }
    pub fn runtime(err: impl Into<anyhow::Error>) -> Failure {
        Failure::Runtime(err.into())
    }
}

/// A control-plane component: one subcommand of `mesh-controller`.
pub trait Component: Send + 'static {
    /// The name in logs and metrics, as the manifests name the component.
    const NAME: &'static str;
    /// The admin port the install manifests give the component.
    const ADMIN_PORT: u16;

    /// Validates its flags and files, serves until `ctx.shutdown` is cancelled, then drains
    /// within `ctx.grace`. It calls `ctx.ready.set(true)` once it can answer.
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// What the runtime hands a component.
#[derive(Clone)]
pub struct Context {
    pub common: CommonArgs,
    /// Cancelled on SIGTERM or SIGINT.
    pub shutdown: CancellationToken,
    /// How long in-flight work may take after `shutdown`.
    pub grace: Duration,
    pub ready: Ready,
    pub metrics: Metrics,
    /// What the admin server answers on `/endpoints`, once a component provides it.
    pub lookups: Lookups,
}

impl Context {
    /// A Kubernetes client from `--kubeconfig`, `$KUBECONFIG` or the in-cluster service account.
    pub async fn kube_client(&self) -> Result<kube::Client, Failure> {
        crate::k8s::client(self.common.kubeconfig.as_deref())
            .await
            .map_err(Failure::Config)
    }
}

/// Whether the component can answer; `/ready` says so.
#[derive(Clone, Debug, Default)]
pub struct Ready(Arc<AtomicBool>);

impl Ready {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A diagnostic lookup on the admin port: `/endpoints?authority=NAME:PORT` answers what a `Get`
/// for that authority would start with, as JSON (`mesh diagnostics endpoints` reads it). Only
/// the destination component sets one.
#[derive(Clone, Default)]
pub struct Lookups(Arc<std::sync::OnceLock<LookupFn>>);

/// Authority → JSON, or an HTTP status and a message.
pub type LookupFn = Arc<dyn Fn(&str) -> Result<String, (u16, String)> + Send + Sync>;

impl Lookups {
    pub fn set(&self, lookup: LookupFn) {
        let _ = self.0.set(lookup);
    }
    pub fn get(&self) -> Option<&LookupFn> {
        self.0.get()
    }
}

/// The component's Prometheus registry; register metrics at start-up.
#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<Registry>>);

impl Metrics {
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        crate::lock(&self.0)
    }
}

/// Runs one component with the shared admin server, until SIGTERM.
pub async fn component<C: Component>(common: CommonArgs, component: C) -> Result<(), Failure> {
    let shutdown = CancellationToken::new();
    let ctx = Context {
        grace: common.shutdown_grace_period,
        common,
        shutdown: shutdown.clone(),
        ready: Ready::default(),
        metrics: Metrics::default(),
        lookups: Lookups::default(),
    };
    let admin_addr = ctx
        .common
        .admin_addr
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], C::ADMIN_PORT)));
    let listener = TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("cannot listen on admin address {admin_addr}"))
        .map_err(Failure::Config)?;
    let bound = listener.local_addr().map_err(Failure::runtime)?;
    tracing::info!(addr = %bound, server = "admin", component = C::NAME, "listening");
    let admin = tokio::spawn(crate::admin::serve(
        listener,
        ctx.ready.clone(),
        ctx.metrics.clone(),
        ctx.lookups.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(signals(shutdown.clone()));

    let result = component.run(ctx.clone()).await;
    ctx.ready.set(false);
    shutdown.cancel();
    let _ = admin.await;
    if result.is_ok() {
        tracing::info!(component = C::NAME, "stopped");
    }
    result
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for signals; SIGTERM will not drain");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
        _ = shutdown.cancelled() => {}
    }
    shutdown.cancel();
}

/// Logs to stderr with the filter `--log-level` gives.
pub fn init_logging(filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("--log-level {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal, so that logs read from a pipe parse.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}
