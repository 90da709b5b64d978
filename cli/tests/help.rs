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
    "upgrade",
    "check",
    "stat",
    "edges",
    "routes",
    "identity",
    "diagnostics",
    "profile",
    "tap",
    "top",
    "dashboard",
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

/// Run as the kubectl plugin (`kubectl mesh` runs `kubectl-mesh`), the usage lines name the
/// command as the user typed it; everything else is the same help.
#[test]
fn the_kubectl_plugin_says_kubectl_mesh() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = dir.path().join("kubectl-mesh");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mesh"), &plugin).expect("symlink");
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["diagnostics", "--help"],
    ] {
        let plain = mesh().args(args).output().expect("run mesh");
        let out = std::process::Command::new(&plugin)
            .args(args)
            .output()
            .expect("run kubectl-mesh");
        assert!(out.status.success(), "kubectl-mesh {args:?} failed");
        let help = text(&out.stdout);
        assert!(help.contains("Usage: kubectl mesh "), "{help}");
        assert!(!help.contains("kubectl-mesh"), "{help}");
        assert_eq!(
            help,
            text(&plain.stdout).replace("Usage: mesh ", "Usage: kubectl mesh "),
            "kubectl-mesh {args:?}"
        );
    }
    // Usage errors name it the same way.
    let out = std::process::Command::new(&plugin)
        .arg("no-such-command")
        .output()
        .expect("run kubectl-mesh");
    assert_eq!(out.status.code(), Some(2));
    let error = text(&out.stderr);
    assert!(error.contains("Usage: kubectl mesh "), "{error}");
}
