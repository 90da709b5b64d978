//! `mesh dashboard`: a local web page of the mesh's live traffic, served by the CLI itself.
//!
//! Linkerd's `viz dashboard` port-forwards to a web deployment that asks a Prometheus. mesh
//! needs neither: the CLI serves a few embedded files and a JSON API on loopback, and answers
//! the API the way `mesh stat` works, reading the proxies through the API server's pod proxy
//! with the same code (`stat::live`).

mod api;
mod server;
mod tap;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::GlobalArgs;

/// Serve a local web dashboard of live traffic, read from the proxies
///
/// The dashboard shows each namespace's workloads with the columns of `mesh stat` (meshed pods,
/// success rate, requests per second, latency percentiles, open connections) and charts of
/// their success rate, request rate and p95 latency, refreshed every few seconds. Like
/// `mesh stat`, it reads the proxies' metrics through the Kubernetes API server's pod proxy,
/// with your kubeconfig's credentials: no Prometheus and nothing installed in the cluster.
///
/// Clicking a name shows its requests live, from the same streams as `mesh tap` (tap must be
/// on in its proxies).
///
/// It listens on loopback only (127.0.0.1 unless --address names another loopback address), on
/// a free port unless --port is given, prints the URL on stdout and opens it in a browser (with
/// xdg-open or open) unless --no-open is given. It runs until Ctrl-C.
///
/// Examples:
///   mesh dashboard
///   mesh dashboard -n emojivoto --port 50750 --no-open
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The port to listen on; 0 picks a free one
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    port: u16,
    /// The address to listen on; must be a loopback address
    ///
    /// The dashboard reads the cluster with your credentials and asks for none, so it is never
    /// served beyond this machine.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    address: IpAddr,
    /// Print the URL instead of opening it in a browser
    #[arg(long)]
    no_open: bool,
    /// The namespace the page shows first (default: the kubeconfig context's, else default)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// The sampling window of the numbers, e.g. 10s or 1m
    #[arg(short = 't', long, value_name = "DURATION", default_value = "10s", value_parser = api::window)]
    time_window: Duration,
    /// Give up on a proxy that has not answered in this long
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = mesh_names::parse_duration)]
    scrape_timeout: Duration,
    /// Timeout of each Kubernetes API request
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = mesh_names::parse_duration)]
    api_timeout: Duration,
}

pub fn run(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    if !args.address.is_loopback() {
        bail!(
            "--address {}: the dashboard serves only loopback addresses (127.0.0.1, ::1), \
             as it reads the cluster with your credentials and asks for none",
            args.address
        );
    }
    let runtime = crate::cmd::runtime()?;
    runtime.block_on(dashboard(args, global))
}

async fn dashboard(args: Args, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (client, _) = crate::client::client(global, args.api_timeout).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.address, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.address, args.port))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let state = api::State::new(
        client,
        api::Settings {
            namespace,
            window: args.time_window,
            scrape_timeout: args.scrape_timeout,
            api_timeout: args.api_timeout,
        },
        global.clone(),
    )?;
    let url = format!("http://{addr}/");
    // The URL first, alone on its line, so that scripts and tests can read it.
    crate::output::stdout(|out| {
        writeln!(out, "{url}")?;
        out.flush()
    })?;
    eprintln!("serving the mesh dashboard on {url}; Ctrl-C stops it");
    if !args.no_open {
        open(&url);
    }
    server::serve(listener, Arc::new(state)).await?;
    Ok(ExitCode::SUCCESS)
}

/// Opens `url` in the desktop's browser when there is a way to; never fails, since the URL is
/// printed anyway.
fn open(url: &str) {
    let Some(opener) = ["xdg-open", "open"].into_iter().find(|c| on_path(c)) else {
        eprintln!("no xdg-open or open found; open {url} in a browser");
        return;
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        // Reaped in the background; how it ends changes nothing.
        Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
        Err(e) => eprintln!("cannot run {opener} ({e}); open {url} in a browser"),
    }
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(command).is_file()))
}
