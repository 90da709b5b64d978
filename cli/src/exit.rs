//! Exit codes scripts can trust.

use std::io;
use std::process::ExitCode;

/// The run went as planned, but what it looked at failed: invalid input, a refused injection, a
/// failed check. Exits 1. Any other error is a usage or runtime error and exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// Turns a command's result into the process exit code, printing any error to stderr.
pub fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let code = if err.downcast_ref::<Failed>().is_some() {
                1
            } else {
                2
            };
            eprintln!("Error: {err:#}");
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
