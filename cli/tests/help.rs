//! The `--help` text of every command, as goldens in testdata/cli/: help is output users read, so
//! a change to it should show up in review. `UPDATE_GOLDENS=1` rewrites them.

mod support;

use support::{check_golden, mesh, testdata, text};

/// The subcommands whose help is checked; the test fails if `mesh --help` lists one not here.
const COMMANDS: &[&str] = &[
    "inject",
    "uninject",
    "install",
    "uninstall",
    "check",
    "stat",
    "diagnostics",
    "tap",
    "top",
    "version",
    "completion",
];

#[test]
fn help_goldens() {
    let root = mesh().arg("--help").output().expect("run mesh");
    assert!(root.status.success());
    let root_help = text(&root.stdout);
    let mut failures = Vec::new();
    if let Err(e) = check_golden(&testdata().join("cli/help-mesh.txt"), &root_help) {
        failures.push(e);
    }
    let listed: Vec<&str> = root_help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    for command in &listed {
        assert!(
            COMMANDS.contains(command),
            "`mesh {command}` has no help golden; add it to COMMANDS"
        );
    }
    for command in COMMANDS.iter().filter(|c| listed.contains(c)) {
        let out = mesh().args([command, "--help"]).output().expect("run mesh");
        assert!(out.status.success(), "mesh {command} --help failed");
        let path = testdata().join(format!("cli/help-{command}.txt"));
        if let Err(e) = check_golden(&path, &text(&out.stdout)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
