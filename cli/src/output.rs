//! Writing results to stdout.

use std::io::{self, BufWriter, Write};

/// Writes everything `write` produces to stdout through one buffer, then flushes. A broken pipe
/// comes back as an `io::Error` of kind `BrokenPipe`, which `main` turns into a quiet exit.
pub fn stdout<F>(write: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    write(&mut out)?;
    out.flush()
}
