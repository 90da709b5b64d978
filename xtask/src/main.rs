//! Project automation, run as `cargo xtask <task>`.
//!
//! Tasks are Rust rather than shell so they behave the same on every machine. xtask depends on no
//! product crate: it drives them through `cargo` and their binaries, as a user would.

mod bench;
mod chaos;
mod ci;
mod deps;
mod e2e;
mod fuzz;
mod images;
mod man;
mod util;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci                 fmt, clippy, every test and the schema checks; what CI runs
  validate           check rendered manifest goldens against Kubernetes' schemas
  deps               install the system packages the tests need (apt-get, pip)
  bench <what>       benchmarks that print ratios; <what> is one of: balance, check, destination, identity, inject, injector, mesh, proxy, stat
  chaos [--long] [--case N|NAME]...
                     attacks on the real binaries on loopback; one line per case,
                     holds or broken (short run in CI, --long with a 10-minute soak)
  e2e [--images] [--install] [--workload]
                     mesh check against the real cluster in $KUBECONFIG (not run in CI)
  fuzz [--cases N | --time SECS]
                     the parsers' fuzz targets with N inputs each (default 10000), or rounds
                     of fresh inputs for SECS seconds; prints executions per target
  hot-symbols        record which mesh-proxy functions serve traffic (callgrind) into
                     proxy/hot-symbols.txt, the release link's symbol order
  man [DIR]          write man pages for `mesh` (default target/man)
  images [--check] [--containers]
                     container image archives under target/images/ (no container engine);
                     --check builds twice, compares, and checks their structure (root);
                     --containers runs them in a throwaway containerd and runc (root)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    match task {
        "ci" => ci::run(rest),
        "deps" => deps::ensure_all(),
        "validate" => ci::validate_goldens(),
        "bench" => bench::run(rest),
        "chaos" => chaos::run(rest),
        "e2e" => e2e::run(rest),
        "fuzz" => fuzz::run(rest),
        "man" => man::run(rest),
        "images" => images::run(rest),
        "hot-symbols" => bench::symbols::run(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task {other:?}\n\n{USAGE}"),
    }
}
