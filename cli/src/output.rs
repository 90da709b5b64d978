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

/// A table of left-aligned columns three spaces apart, as `kubectl get` and Linkerd print them;
/// nothing when there are no rows. Widths count characters, so `√` and `×` line up.
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c))))
            .collect();
        format!("{}\n", padded.join("   ").trim_end())
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}
