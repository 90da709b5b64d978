//! `mesh-demo`: one binary, one role per subcommand (see the library's docs).

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use mesh_demo::faults::Faults;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "mesh-demo",
    version,
    about = "A small application to mesh: web, books (HTTP/1), authors (gRPC) and load"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// The front end: GET / calls books over HTTP/1 and authors over gRPC.
    Web {
        #[arg(long, env = "DEMO_ADDR", default_value = "0.0.0.0:8080")]
        addr: String,
        /// Base URL of the books back end.
        #[arg(long, env = "DEMO_BOOKS", default_value = "http://books:7000")]
        books: String,
        /// Base URL of the authors back end.
        #[arg(long, env = "DEMO_AUTHORS", default_value = "http://authors:7001")]
        authors: String,
    },
    /// The HTTP/1 back end: GET /books/<id>.
    Books {
        #[arg(long, env = "DEMO_ADDR", default_value = "0.0.0.0:7000")]
        addr: String,
        #[command(flatten)]
        faults: FaultArgs,
    },
    /// The gRPC back end: mesh.demo.Authors/Get.
    Authors {
        #[arg(long, env = "DEMO_ADDR", default_value = "0.0.0.0:7001")]
        addr: String,
        #[command(flatten)]
        faults: FaultArgs,
    },
    /// Steady traffic to the front end.
    Load {
        #[arg(long, env = "DEMO_TARGET", default_value = "http://web:8080/")]
        target: String,
        /// Requests per second.
        #[arg(long, env = "DEMO_RATE", default_value_t = 10)]
        rate: u32,
        /// Stop after this many requests (default: never).
        #[arg(long)]
        requests: Option<u64>,
    },
}

/// How a back end misbehaves.
#[derive(Args)]
struct FaultArgs {
    /// The fraction of requests that fail (0 to 1), spread evenly.
    #[arg(long, env = "DEMO_FAILURE_RATE", default_value_t = 0.0)]
    failure_rate: f64,
    /// Added to every request, in Go duration syntax (e.g. 150ms).
    #[arg(long, env = "DEMO_LATENCY", default_value = "0s")]
    latency: String,
}

impl FaultArgs {
    fn faults(&self) -> Result<Faults> {
        let latency = mesh_names::parse_duration(&self.latency)
            .map_err(|e| anyhow::anyhow!("--latency {:?}: {e}", self.latency))?;
        Faults::new(self.failure_rate, latency)
    }
}

async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().role {
        Role::Web {
            addr,
            books,
            authors,
        } => mesh_demo::web::run(bind(&addr).await?, &books, &authors).await,
        Role::Books { addr, faults } => {
            mesh_demo::books::run(bind(&addr).await?, faults.faults()?).await
        }
        Role::Authors { addr, faults } => {
            mesh_demo::authors::run(bind(&addr).await?, faults.faults()?).await
        }
        Role::Load {
            target,
            rate,
            requests,
        } => mesh_demo::load::run(&target, rate, requests, Duration::from_secs(10))
            .await
            .map(|_| ()),
    }
}
