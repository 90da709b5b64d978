//! `cargo xtask bench inject`: throughput and peak memory of `mesh inject` on a large manifest.
//!
//! Generates a multi-document manifest of the requested size (100 MB by default) shaped like real
//! ones, then runs the release binary on it a few times. Each run happens in a fresh child of a
//! fresh process, so its peak RSS (from getrusage) is the binary's own.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, root, sh};

const RUNS: usize = 3;

pub fn run(args: &[String]) -> Result<()> {
    let mut megabytes = 100usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--size-mb" => {
                megabytes = it
                    .next()
                    .context("--size-mb needs a number")?
                    .parse()
                    .context("--size-mb needs a number")?
            }
            "--measure" => return measure(it.as_slice()),
            other => {
                bail!("unknown argument {other:?}; usage: cargo xtask bench inject [--size-mb N]")
            }
        }
    }
    sh(cargo().args(["build", "--release", "--quiet", "-p", "mesh-cli"]))?;
    let mesh = root().join("target/release/mesh");
    let input = root().join(format!("target/bench/inject-{megabytes}mb.yaml"));
    let size = generate(&input, megabytes * 1_000_000)?;
    eprintln!("input: {} ({:.1} MB)", input.display(), size as f64 / 1e6);

    let mut seconds = Vec::new();
    let mut rss_kb = Vec::new();
    for _ in 0..RUNS {
        // A fresh process per run, so getrusage sees only this one child.
        let out = Command::new(std::env::current_exe()?)
            .args(["bench", "inject", "--measure"])
            .arg(&mesh)
            .arg("inject")
            .arg(&input)
            .output()?;
        if !out.status.success() {
            bail!(
                "measuring run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let mut fields = line.split_whitespace();
        let (Some(s), Some(kb)) = (fields.next(), fields.next()) else {
            bail!("unexpected measurement {line:?}");
        };
        seconds.push(s.parse::<f64>()?);
        rss_kb.push(kb.parse::<u64>()?);
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[RUNS / 2];
    let peak = rss_kb.iter().max().copied().unwrap_or(0) as f64 * 1024.0;
    let mb = size as f64 / 1e6;
    println!("mesh inject on {mb:.1} MB ({RUNS} runs)");
    println!("  median time   {median:.3} s   (runs: {seconds:.3?})");
    println!(
        "  throughput    {:.0} MB/s      (target >= 100 MB/s)",
        mb / median
    );
    println!(
        "  peak RSS      {:.1} MB = {:.2}x the input (target <= 2x)",
        peak / 1e6,
        peak / size as f64
    );
    Ok(())
}

/// Runs the command with stdout discarded and prints "<seconds> <max rss KiB>".
fn measure(cmd: &[String]) -> Result<()> {
    let (program, args) = cmd.split_first().context("--measure needs a command")?;
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let elapsed = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{program} failed: {status}");
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    println!("{elapsed} {}", usage.max_rss());
    Ok(())
}

/// Writes a deterministic manifest of about `bytes` bytes, unless one is already there.
fn generate(path: &Path, bytes: usize) -> Result<u64> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() as usize >= bytes
    {
        return Ok(meta.len());
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let mut text = String::with_capacity(bytes + 4096);
    let mut i = 0;
    while text.len() < bytes {
        match i % 4 {
            0 | 1 => deployment(&mut text, i),
            2 => service(&mut text, i),
            _ => config_map(&mut text, i),
        }
        i += 1;
    }
    std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(text.len() as u64)
}

fn deployment(out: &mut String, i: usize) {
    let _ = write!(
        out,
        "---\n# Deployment {i}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-{ns}\n  labels:\n    app.kubernetes.io/name: app-{i}\n    app.kubernetes.io/part-of: shop\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n      labels:\n        app: app-{i}\n        version: \"v{v}\"\n    spec:\n      serviceAccountName: app-{i}\n      containers:\n      - name: app\n        image: registry.example.com/shop/app-{i}:1.{v}.0\n        args: [\"--port\", \"8080\", \"--log-level\", \"info\"]\n        env:\n        - name: DATABASE_URL\n          value: postgres://db.team-{ns}.svc.cluster.local:5432/app\n        - name: FEATURE_FLAGS\n          value: 'checkout,search,recommendations'\n        - name: ENABLED\n          value: \"yes\"\n        ports:\n        - name: http\n          containerPort: 8080\n        - name: admin\n          containerPort: 9090\n        readinessProbe:\n          httpGet:\n            path: /ready\n            port: 9090\n        resources:\n          requests:\n            cpu: 100m\n            memory: 128Mi\n          limits:\n            memory: 256Mi\n",
        ns = i % 50,
        v = i % 7
    );
}

fn service(out: &mut String, i: usize) {
    let _ = write!(
        out,
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\n  namespace: team-{ns}\nspec:\n  selector:\n    app: app-{i}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n",
        ns = i % 50
    );
}

fn config_map(out: &mut String, i: usize) {
    let _ = write!(
        out,
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}-config\ndata:\n  settings.yaml: |\n    cache:\n      ttl: 30s\n      size: 1000\n    retries: 3\n"
    );
}
