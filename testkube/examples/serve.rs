//! Serves a fake API server until stdin closes, for trying kubectl by hand and for benchmarks
//! that drive real binaries: `cargo run -p mesh-testkube --example serve -- [--kubelet] [DIR…]`.
//!
//! Loads every YAML file in each DIR, prints the path of a kubeconfig for the server on stdout,
//! then serves until its standard input reaches end of file.

use std::io::Read;

fn main() -> anyhow::Result<()> {
    let mut builder = mesh_testkube::FakeKube::builder();
    for arg in std::env::args().skip(1) {
        if arg == "--kubelet" {
            builder = builder.kubelet(true);
        } else {
            builder = builder.fixtures_dir(arg);
        }
    }
    let server = builder.start()?;
    let dir = std::env::temp_dir().join(format!("testkube-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = server.write_kubeconfig(&dir)?;
    println!("{}", path.display());
    // Serve until whoever started us closes our stdin (or exits).
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    drop(server);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
