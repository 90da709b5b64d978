//! `mesh` given hostile input: deep and exploding YAML, a directory that loops, flags at
//! their limits. Each run is killed past a time or memory bound, so a regression shows as
//! `broken`, never as a hung or swapping machine.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::run::{Run, run_bounded};
use super::{Ctx, Outcome, Report, mb};

/// A run of `mesh` above this is killed.
const RSS_LIMIT: u64 = 512 << 20;
/// Memory an error on a small input may take.
const RSS_BOUND: u64 = 256 << 20;

fn mesh(ctx: &Ctx, args: &[&str]) -> Result<Run> {
    let mut cmd = Command::new(&ctx.mesh_bin);
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", &ctx.dir)
        .current_dir(&ctx.dir);
    run_bounded(&mut cmd, Duration::from_secs(20), RSS_LIMIT)
}

/// An error exit: 1 (invalid input) or 2 (usage), no panic, within bounds.
fn expect_clean_error(report: &mut Report, what: &str, run: &Run) {
    report.note(format!(
        "{what}: {} ({})",
        run.describe(),
        run.first_error()
    ));
    report.expect(
        matches!(run.code(), Some(1 | 2)),
        format!("{what} did not exit with an error: {}", run.describe()),
    );
    report.expect(!run.panicked(), format!("{what} panicked"));
    report.expect(
        run.peak_rss < RSS_BOUND,
        format!("{what} took {}", mb(run.peak_rss)),
    );
}

/// Row 4: a sequence nested 300 000 deep must be an error, not a stack overflow.
pub fn inject_deep_yaml(ctx: &Ctx) -> Result<Outcome> {
    let depth = ctx.pick(300_000, 1_000_000);
    let path = ctx.dir.join("deep.yaml");
    std::fs::write(&path, format!("x:\n  {}", "- ".repeat(depth)))?;
    let file = path.to_string_lossy();
    let mut report = Report::new(format!("mesh inject/uninject of a {depth}-deep sequence"));
    expect_clean_error(&mut report, "inject", &mesh(ctx, &["inject", &file])?);
    expect_clean_error(&mut report, "uninject", &mesh(ctx, &["uninject", &file])?);
    Ok(report.outcome())
}

/// Nine anchors, each a list of nine of the one before: 9^9 strings when expanded.
fn alias_bomb() -> String {
    let mut doc = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n");
    doc.push_str(
        "  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let (prev, name) = (pair[0], pair[1]);
        let refs = vec![format!("*{prev}"); 9].join(",");
        doc.push_str(&format!("  {name}: &{name} [{refs}]\n"));
    }
    doc
}

/// Row 5: `-o json` of an alias bomb must fail fast in bounded memory.
pub fn inject_alias_bomb(ctx: &Ctx) -> Result<Outcome> {
    let bomb = alias_bomb();
    let path = ctx.dir.join("bomb.yaml");
    std::fs::write(&path, &bomb)?;
    let file = path.to_string_lossy();
    let mut report = Report::new(format!(
        "mesh inject/uninject -o json of a {}-byte alias bomb",
        bomb.len()
    ));
    for sub in ["inject", "uninject"] {
        let run = mesh(ctx, &[sub, "-o", "json", &file])?;
        expect_clean_error(&mut report, sub, &run);
        report.expect(
            run.elapsed < Duration::from_secs(5),
            format!("{sub} took {:?}", run.elapsed),
        );
    }
    Ok(report.outcome())
}

/// Row 10: a directory holding a symlink to its parent is read once, not until the loop
/// depth runs out.
pub fn inject_symlink_loop(ctx: &Ctx) -> Result<Outcome> {
    let top = ctx.dir.join("loop");
    let dir = top.join("k8s");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: looped\nspec:\n  containers:\n  \
         - name: app\n    image: app\n",
    )?;
    let link = dir.join("up");
    if !link.exists() {
        std::os::unix::fs::symlink("..", &link).context("creating the symlink")?;
    }
    let run = mesh(ctx, &["inject", &dir.to_string_lossy()])?;
    let out = String::from_utf8_lossy(&run.stdout);
    let copies = out.matches("name: looped").count();
    let mut report = Report::new("mesh inject DIR where DIR/up -> ..");
    report.note(format!(
        "{}; the one manifest emitted {copies}×",
        run.describe()
    ));
    report.expect(run.code() == Some(0), format!("exit {:?}", run.code()));
    report.expect(copies == 1, format!("emitted {copies} times"));
    report.expect(!run.panicked(), "panicked");
    Ok(report.outcome())
}

/// Row 11: an unreachable proxy is a runtime error, exit 2.
pub fn stat_unreachable(ctx: &Ctx) -> Result<Outcome> {
    let run = mesh(ctx, &["stat", "--proxy", "127.0.0.1:1"])?;
    let mut report = Report::new("mesh stat --proxy 127.0.0.1:1");
    report.note(format!("{} ({})", run.describe(), run.first_error()));
    report.expect(run.code() == Some(2), format!("exit {:?}", run.code()));
    report.expect(!run.panicked(), "panicked");
    Ok(report.outcome())
}

/// Row 12: a time window too large for a duration, and a zero one, are usage errors.
pub fn stat_time_window(ctx: &Ctx) -> Result<Outcome> {
    let mut report = Report::new("mesh stat -t 99999999999999999999s and -t 0s");
    for window in ["99999999999999999999s", "0s"] {
        let run = mesh(ctx, &["stat", "--proxy", "127.0.0.1:1", "-t", window])?;
        report.note(format!(
            "-t {window}: {} ({})",
            run.describe(),
            run.first_error()
        ));
        report.expect(
            run.code() == Some(2) && run.stderr.contains("time"),
            format!("-t {window} was not refused as a usage error"),
        );
        report.expect(!run.panicked(), format!("-t {window} panicked"));
    }
    Ok(report.outcome())
}
