//! `mesh-proxy await`: run the application only once the proxy is ready, and optionally
//! stop the proxy when the application exits (so Jobs complete).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::signal::unix::{SignalKind, signal};

use crate::app::EXIT_CONFIG;
use crate::config::{Env, ProcessEnv};

/// Exit code when the proxy never became ready (EX_UNAVAILABLE).
pub const EXIT_NOT_READY: u8 = 69;

/// Wait for the proxy to be ready, then run a command and exit with its status.
#[derive(Debug, Parser)]
#[command(name = "mesh-proxy await", version)]
pub struct AwaitArgs {
    /// How long to wait for the proxy's /ready, like 30s or 2m.
    ///
    /// When it passes, the command is not run and the exit code is 69.
    #[arg(long, default_value = "2m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Ask the proxy to shut down (POST /shutdown) once the command exits.
    ///
    /// Needed for Jobs: the pod completes only when every container, the proxy
    /// included, has exited.
    #[arg(long)]
    pub shutdown: bool,

    /// The command and its arguments, after `--`.
    ///
    /// Without one, `await` only waits: exit 0 once the proxy is ready, 69 if it never is. That is
    /// how a postStart hook holds back the application's containers until the proxy is up.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s).ok_or_else(|| {
        format!("{s:?} is not a duration (use a whole number and a unit: 500ms, 30s, 2m)")
    })
}

/// Runs `mesh-proxy await` with the arguments after `await`.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("mesh-proxy await")).chain(args);
    let args = match AwaitArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let admin = match admin_addr(&ProcessEnv) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("mesh-proxy await: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mesh-proxy await: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let disabled = ProcessEnv
        .var("LINKERD_AWAIT_DISABLED")
        .is_some_and(|v| !v.is_empty());
    runtime.block_on(run_async(args, admin, disabled))
}

/// The proxy's admin address, as a client must dial it.
fn admin_addr(env: &dyn Env) -> Result<SocketAddr, String> {
    const NAME: &str = "LINKERD2_PROXY_ADMIN_LISTEN_ADDR";
    let mut addr = match env.var(NAME) {
        Some(v) => crate::config::parse_socket_addr(&v)
            .ok_or_else(|| format!("{NAME}={v:?}: not a socket address (use IP:PORT)"))?,
        None => SocketAddr::from((Ipv4Addr::LOCALHOST, 4191)),
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}

async fn run_async(args: AwaitArgs, admin: SocketAddr, disabled: bool) -> ExitCode {
    if !disabled && !wait_ready(admin, args.timeout).await {
        eprintln!(
            "mesh-proxy await: the proxy at {admin} was not ready within {}ms; not running the command",
            args.timeout.as_millis()
        );
        if args.shutdown {
            shutdown(admin).await;
        }
        return ExitCode::from(EXIT_NOT_READY);
    }
    if args.command.is_empty() {
        return ExitCode::SUCCESS;
    }
    let code = run_command(&args.command).await;
    if args.shutdown {
        shutdown(admin).await;
    }
    ExitCode::from(code)
}

async fn wait_ready(admin: SocketAddr, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            return false;
        }
        let attempt = request(admin, "GET", "/ready");
        if let Ok(Ok(200)) =
            tokio::time::timeout(remaining.min(Duration::from_secs(1)), attempt).await
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10).min(remaining)).await;
    }
}

/// Runs the command, passing SIGTERM and SIGINT on to it; returns its exit code, or
/// 128 + the signal that killed it.
async fn run_command(command: &[OsString]) -> u8 {
    let Some((program, rest)) = command.split_first() else {
        return EXIT_CONFIG;
    };
    let mut child = match tokio::process::Command::new(program).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "mesh-proxy await: running {}: {e}",
                program.to_string_lossy()
            );
            return match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => 1,
            };
        }
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("mesh-proxy await: cannot install signal handlers");
        return 1;
    };
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    loop {
        let forward = tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(s) => match (s.code(), s.signal()) {
                        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
                        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
                        (None, None) => 1,
                    },
                    Err(e) => {
                        eprintln!("mesh-proxy await: waiting for the command: {e}");
                        1
                    }
                };
            }
            _ = term.recv() => Signal::SIGTERM,
            _ = int.recv() => Signal::SIGINT,
        };
        if let Some(pid) = pid {
            let _ = kill(pid, forward);
        }
    }
}

async fn shutdown(admin: SocketAddr) {
    match tokio::time::timeout(Duration::from_secs(5), request(admin, "POST", "/shutdown")).await {
        Ok(Ok(200)) => {}
        Ok(Ok(status)) => eprintln!("mesh-proxy await: POST /shutdown answered {status}"),
        Ok(Err(e)) => eprintln!("mesh-proxy await: POST /shutdown to {admin}: {e}"),
        Err(_) => eprintln!("mesh-proxy await: POST /shutdown to {admin} timed out"),
    }
}

/// A minimal HTTP/1.1 request; returns the response status.
async fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(256);
    s.take(4096).read_to_end(&mut buf).await?;
    let status = buf
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok());
    status
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::collections::BTreeMap;

    #[test]
    fn clap_definition_is_valid() {
        AwaitArgs::command().debug_assert();
    }

    #[test]
    fn parses_flags_and_command() {
        let a = AwaitArgs::try_parse_from([
            "await",
            "--timeout",
            "5s",
            "--shutdown",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .unwrap();
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert!(a.shutdown);
        assert_eq!(a.command, ["sh", "-c", "exit 3"]);
        assert!(AwaitArgs::try_parse_from(["await", "--timeout", "5", "--", "true"]).is_err());
        let wait_only = AwaitArgs::try_parse_from(["await"]).unwrap();
        assert!(
            wait_only.command.is_empty(),
            "no command: only wait for the proxy"
        );
    }

    #[test]
    fn admin_address_defaults_and_wildcards() {
        let empty: BTreeMap<&str, &str> = BTreeMap::new();
        assert_eq!(
            admin_addr(&empty).unwrap(),
            "127.0.0.1:4191".parse().unwrap()
        );
        let wildcard = BTreeMap::from([("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "0.0.0.0:9990")]);
        assert_eq!(
            admin_addr(&wildcard).unwrap(),
            "127.0.0.1:9990".parse().unwrap()
        );
        let bad = BTreeMap::from([("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "localhost")]);
        assert!(
            admin_addr(&bad)
                .unwrap_err()
                .contains("LINKERD2_PROXY_ADMIN_LISTEN_ADDR")
        );
    }
}
