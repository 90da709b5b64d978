//! The runner every fuzz target uses (the same runner sits in each crate that has fuzz targets:
//! `inject/tests/fuzz_support`, `cli/src/metrics/fuzz` (which `cli/src/cmd/profile/fuzz.rs` uses
//! too), `proxy/src/fuzz_runner.rs`; keep them alike).
//!
//! - `MESH_FUZZ_CASES=N` runs N inputs per target instead of the target's small default;
//! - `MESH_FUZZ_SEED=S` fixes the random seed, to replay a run (the default is a fresh seed);
//! - each target prints `fuzz <name>: <n> executions in <time> (slowest input <time>)`, which
//!   `cargo xtask fuzz` adds up;
//! - an input that panics, fails a property or takes longer than [`MAX_INPUT_TIME`] fails the test
//!   with the smallest such input proptest could shrink it to.

use std::cell::Cell;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestCaseResult, TestRunner};

/// No single input may take longer, even in a debug build on a busy machine: far above what any
/// input here needs, far below what a quadratic blow-up or a hang takes.
pub const MAX_INPUT_TIME: Duration = Duration::from_secs(5);

/// Runs `test` on inputs drawn from `strategy`.
pub fn fuzz<S>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> TestCaseResult,
) where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("MESH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    let rng_seed = std::env::var("MESH_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(RngSeed::Random, RngSeed::Fixed);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    });
    let executions = Cell::new(0u64);
    let slowest = Cell::new(Duration::ZERO);
    let started = Instant::now();
    let result = runner.run(&strategy, |input| {
        let start = Instant::now();
        let outcome = test(input);
        let took = start.elapsed();
        executions.set(executions.get() + 1);
        slowest.set(slowest.get().max(took));
        if took > MAX_INPUT_TIME {
            return Err(TestCaseError::fail(format!("one input took {took:?}")));
        }
        outcome
    });
    eprintln!(
        "fuzz {name}: {} executions in {:.1?} (slowest input {:.1?})",
        executions.get(),
        started.elapsed(),
        slowest.get()
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}
