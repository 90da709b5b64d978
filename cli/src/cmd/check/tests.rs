use std::time::Duration;

use super::parse_duration;
use super::report::{Check, Format, Report, render};

#[test]
fn durations_parse_like_go() {
    let cases = [
        ("0", 0),
        ("0s", 0),
        ("300ms", 300),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("1.5s", 1_500),
    ];
    for (text, ms) in cases {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    for text in ["", "5", "5x", "m", "1h30"] {
        assert!(parse_duration(text).is_err(), "{text}");
    }
}

fn sample() -> Report {
    let mut report = Report::default();
    report.push(
        "category",
        vec![
            Check::pass("check1").detail("seen 3 things"),
            Check::fail(
                "check2",
                "This should contain instructions for fail",
                "https://linkerd.io/2/checks/#hint-anchor",
            ),
        ],
    );
    report.push(
        "other",
        vec![Check::warn("check3", "line one\nline two", "do this")],
    );
    report
}

fn rendered(report: &Report, format: Format, verbose: bool) -> String {
    let mut out = Vec::new();
    render(report, format, verbose, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn table_matches_linkerd_layout() {
    let text = rendered(&sample(), Format::Table, false);
    assert_eq!(
        text,
        "category\n--------\n√ check1\n× check2\n    This should contain instructions for fail\n    \
         see https://linkerd.io/2/checks/#hint-anchor for hints\n\nother\n-----\n‼ check3\n    line one\n    \
         line two\n    do this\n\nStatus check results are ×\n"
    );
    let verbose = rendered(&sample(), Format::Table, true);
    assert!(verbose.contains("√ check1\n    seen 3 things\n"));
}

/// Linkerd's own golden for the table and JSON layouts, when the shared fixtures are present.
#[test]
fn layouts_match_linkerd_goldens() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/linkerd2/cli/cmd/testdata");
    if !dir.is_dir() {
        println!(
            "skipped: {} is absent (no ../shared next to the repository)",
            dir.display()
        );
        return;
    }
    let mut report = Report::default();
    report.push(
        "category",
        vec![
            Check::pass("check1"),
            Check::fail(
                "check2",
                "This should contain instructions for fail",
                "https://linkerd.io/2/checks/#hint-anchor",
            ),
        ],
    );
    let table = rendered(&report, Format::Table, false);
    let golden = std::fs::read_to_string(dir.join("check_output.golden")).unwrap();
    assert!(table.starts_with(&golden), "{table}");
    let json = rendered(&report, Format::Json, false);
    let golden = std::fs::read_to_string(dir.join("check_output_json.golden")).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&json).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&golden).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(
        json.trim_end(),
        golden.trim_end(),
        "same key order and indentation"
    );
}

#[test]
fn short_prints_only_problems() {
    let mut report = Report::default();
    report.push("fine", vec![Check::pass("a")]);
    report.push(
        "mixed",
        vec![Check::pass("b"), Check::warn("c", "soon", "renew")],
    );
    assert_eq!(
        rendered(&report, Format::Short, false),
        "mixed\n-----\n‼ c\n    soon\n    renew\n\nStatus check results are √\n"
    );
}

#[test]
fn only_retryable_failures_are_worth_waiting_for() {
    let mut report = Report::default();
    report.push("a", vec![Check::fail("x", "e", "h").retryable()]);
    assert!(report.worth_retrying());
    report.push("b", vec![Check::fail("y", "e", "h")]);
    assert!(!report.worth_retrying());
    assert!(!Report::default().worth_retrying());
}
