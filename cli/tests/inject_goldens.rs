//! Golden tests for `mesh inject` and `mesh uninject`, through the real binary.
//!
//! Each `testdata/inject/<case>.in.{yaml,json}` runs with the arguments in `<case>.args` (if any;
//! a leading `uninject` picks that subcommand). A successful run is compared with
//! `<case>.golden.{yaml,json}` and its stderr with `<case>.report`; a failing run with
//! `<case>.error`, which holds the exit code and stderr, and must write nothing to stdout.
//! `UPDATE_GOLDENS=1` rewrites the goldens.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::path::Path;

use support::{check_golden, mesh, testdata, text};

/// Cases whose uninject cannot give back the input byte for byte, and why. Cases run with flags are
/// not checked either: uninject keeps `config.linkerd.io/*` settings, as Linkerd does.
const NOT_ROUND_TRIP: &[(&str, &str)] = &[
    (
        "already_injected",
        "the input already carries the annotation",
    ),
    (
        "flow_style",
        "flow mappings keep the emptied `annotations: {}`",
    ),
    ("json", "JSON keeps the emptied `\"annotations\": {}`"),
    (
        "manual_json",
        "JSON keeps the emptied `\"annotations\": {}` and `\"labels\": {}`",
    ),
    (
        "manual_flow_style",
        "flow mappings keep the emptied `annotations: {}` and `labels: {}`",
    ),
];

struct Case {
    name: String,
    input: String,
    args: Vec<String>,
}

impl Case {
    /// Plain inject, or manual inject with nothing but the trust anchors: no settings that
    /// uninject would (rightly) keep.
    fn is_plain(&self) -> bool {
        self.args.is_empty()
            || self.args
                == [
                    "--manual",
                    "--identity-trust-anchors-file",
                    "trust-anchors.pem",
                ]
    }
}

fn cases() -> Vec<Case> {
    let dir = testdata().join("inject");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .expect("testdata/inject")
        .filter_map(|e| {
            let file = e.ok()?.file_name().into_string().ok()?;
            let name = file
                .strip_suffix(".in.yaml")
                .or_else(|| file.strip_suffix(".in.json"))?
                .to_owned();
            let args = std::fs::read_to_string(dir.join(format!("{name}.args")))
                .map(|a| a.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default();
            Some(Case {
                name,
                input: file,
                args,
            })
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() > 30, "expected the full set of inject cases");
    cases
}

fn run(dir: &Path, args: &[String], input: &str) -> std::process::Output {
    let (sub, rest) = match args.first().map(String::as_str) {
        Some("uninject") => ("uninject", &args[1..]),
        _ => ("inject", args),
    };
    mesh()
        .current_dir(dir)
        .arg(sub)
        .args(rest)
        .arg(input)
        .output()
        .expect("run mesh")
}

#[test]
fn goldens() {
    let dir = testdata().join("inject");
    let mut failures = Vec::new();
    for case in cases() {
        let out = run(&dir, &case.args, &case.input);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let code = out.status.code().unwrap_or(-1);
        let result = if code == 0 {
            let ext = if stdout.starts_with('{') {
                "json"
            } else {
                "yaml"
            };
            check_golden(&dir.join(format!("{}.golden.{ext}", case.name)), &stdout)
                .and_then(|()| check_golden(&dir.join(format!("{}.report", case.name)), &stderr))
        } else if !stdout.is_empty() {
            Err(format!(
                "failed with exit {code} but wrote to stdout:\n{stdout}"
            ))
        } else {
            check_golden(
                &dir.join(format!("{}.error", case.name)),
                &format!("exit: {code}\n{stderr}"),
            )
        };
        if let Err(e) = result {
            failures.push(format!("case {}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn injecting_injected_output_changes_nothing() {
    if support::update_goldens() {
        return; // The goldens are being rewritten; check them on the next run.
    }
    let dir = testdata().join("inject");
    for case in cases() {
        if case
            .args
            .first()
            .is_some_and(|a| a == "uninject" || a == "-o")
        {
            continue;
        }
        let golden = dir.join(format!("{}.golden.yaml", case.name));
        let golden = match std::fs::read_to_string(&golden) {
            Ok(text) => text,
            Err(_) => continue,
        };
        let out = run(&dir, &case.args, &format!("{}.golden.yaml", case.name));
        assert!(
            out.status.success(),
            "case {}: {}",
            case.name,
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            golden,
            "case {}: inject is not idempotent",
            case.name
        );
    }
}

#[test]
fn uninject_gives_back_the_input() {
    if support::update_goldens() {
        return; // The goldens are being rewritten; check them on the next run.
    }
    let dir = testdata().join("inject");
    for case in cases() {
        let skip = NOT_ROUND_TRIP.iter().any(|(name, _)| *name == case.name);
        if skip || !case.input.ends_with(".yaml") || !case.is_plain() {
            continue;
        }
        let golden = format!("{}.golden.yaml", case.name);
        if !dir.join(&golden).exists() {
            continue;
        }
        let out = run(&dir, &["uninject".to_owned()], &golden);
        assert!(
            out.status.success(),
            "case {}: {}",
            case.name,
            text(&out.stderr)
        );
        let input = std::fs::read_to_string(dir.join(&case.input)).expect("input");
        assert_eq!(
            text(&out.stdout),
            input,
            "case {}: uninject(inject(x)) != x",
            case.name
        );
    }
}

#[test]
fn block_yaml_output_only_adds_lines() {
    if support::update_goldens() {
        return; // The goldens are being rewritten; check them on the next run.
    }
    let dir = testdata().join("inject");
    for case in cases() {
        if !case.input.ends_with(".yaml") || case.name.contains("flow") || !case.is_plain() {
            continue;
        }
        let Ok(golden) = std::fs::read_to_string(dir.join(format!("{}.golden.yaml", case.name)))
        else {
            continue;
        };
        let input = std::fs::read_to_string(dir.join(&case.input)).expect("input");
        let mut output_lines = golden.split_inclusive('\n');
        // A line with a flow collection may be rewritten in place; every other line must stay.
        for line in input
            .split_inclusive('\n')
            .filter(|l| !l.contains('{') && !l.contains('['))
        {
            assert!(
                output_lines.any(|l| l == line),
                "case {}: input line {line:?} is missing or out of order in the output",
                case.name
            );
        }
    }
}
