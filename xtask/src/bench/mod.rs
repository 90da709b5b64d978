//! `cargo xtask bench <what>`: benchmarks. They print figures and ratios; they never fail on speed.

mod check;
mod destination;
mod identity;
mod inject;
mod injector;
mod proxy;
mod stat;

use anyhow::{Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("check") => check::run(&args[1..]),
        Some("destination") => destination::run(&args[1..]),
        Some("identity") => identity::run(&args[1..]),
        Some("inject") => inject::run(&args[1..]),
        Some("injector") => injector::run(&args[1..]),
        Some("proxy") => proxy::run(&args[1..]),
        Some("stat") => stat::run(&args[1..]),
        Some(other) => {
            bail!(
                "unknown benchmark {other:?}; try: check, destination, identity, inject, injector, proxy, stat"
            )
        }
        None => bail!(
            "usage: cargo xtask bench <check|destination|identity|inject|injector|proxy|stat>"
        ),
    }
}
