//! `cargo xtask bench <what>`: benchmarks. They print figures and ratios; they never fail on speed.

mod inject;

use anyhow::{Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("inject") => inject::run(&args[1..]),
        Some(other) => bail!("unknown benchmark {other:?}; try: inject"),
        None => bail!("usage: cargo xtask bench <inject>"),
    }
}
