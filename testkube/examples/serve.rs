//! Runs a fake API server until interrupted, printing a kubeconfig path, for trying kubectl
//! against it by hand: `cargo run -p mesh-testkube --example serve -- [--kubelet] [FIXTURE_DIR]`.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut builder = mesh_testkube::FakeKube::builder();
    for arg in &args {
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
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
