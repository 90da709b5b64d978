//! `mesh routes` through the real binary, against fake admin servers whose route and HTTP
//! counters grow at fixed rates (`fake_proxy`), directly and through the fake API server's pod
//! proxy. Goldens in testdata/routes/ (`UPDATE_GOLDENS=1` rewrites them).
#![allow(clippy::unwrap_used)]

mod fake_proxy;
mod stat_support;
mod support;

use std::process::{Child, Command, Output, Stdio};

use fake_proxy::scenario::{NS, cluster, vote_bot};
use serde_json::Value;
use stat_support::{mesh_command, stderr, stdout};

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn golden(name: &str, actual: &str) {
    let path = support::testdata().join("routes").join(name);
    if let Err(e) = support::check_golden(&path, actual) {
        panic!("{e}");
    }
}

/// JSON rates to one place, as the table shows them, so a window a few milliseconds off the
/// nominal one still matches; success rates (exact ratios) to three.
fn rounded(value: Value, places: i32) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            let scale = 10f64.powi(places);
            serde_json::json!((n.as_f64().unwrap() * scale).round() / scale)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| rounded(v, places)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let places = if k.ends_with("rps") { 1 } else { 3 };
                    (k, rounded(v, places))
                })
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn routes_read_from_proxies_directly() {
    let admin = vote_bot().serve().to_string();
    let run = |args: &[&str]| {
        let mut cmd = support::mesh_offline();
        cmd.args(["routes", "--proxy", &admin, "-t", "4s"])
            .args(args);
        spawn(cmd)
    };
    let cases = vec![
        ("proxy.golden.txt", run(&[])),
        ("proxy-wide.golden.txt", run(&["-o", "wide"])),
        ("proxy-to-books.golden.txt", run(&["--to", "svc/books"])),
    ];
    let json = run(&["-o", "json"]);
    let nothing = run(&["--to", "svc/nowhere"]);
    for (name, child) in cases {
        golden(name, &stdout(&finish(child, name)));
    }
    let out = finish(json, "-o json");
    let rows: Value = serde_json::from_str(&stdout(&out)).unwrap();
    golden(
        "proxy.golden.json",
        &format!(
            "{}\n",
            serde_json::to_string_pretty(&rounded(rows, 3)).unwrap()
        ),
    );
    let out = finish(nothing, "--to svc/nowhere");
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("No traffic found."),
        "{}",
        stderr(&out)
    );
}

#[test]
fn routes_of_a_workload_in_a_cluster() {
    let server = cluster();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = mesh_command(&kubeconfig, dir.path());
        cmd.args(["routes", "-n", NS, "-t", "4s"]).args(args);
        spawn(cmd)
    };
    let to_web = run(&["deploy/vote-bot", "--to", "svc/web-svc", "-o", "wide"]);
    let books = run(&["deploy/books"]);
    let out = finish(to_web, "deploy/vote-bot --to svc/web-svc");
    golden("deploy-to-web-svc-wide.golden.txt", &stdout(&out));
    let out = finish(books, "deploy/books");
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("No traffic found."),
        "{}",
        stderr(&out)
    );

    for (args, says) in [
        (
            &["routes", "-n", NS, "deploy/nope"][..],
            "deployment \"nope\" not found",
        ),
        (
            &["routes", "-n", NS, "svc/web-svc"][..],
            "has no pods of its own",
        ),
        (
            &["routes", "-n", NS, "deploy/web", "--to", "deploy/books"][..],
            "use svc/NAME",
        ),
        (&["routes"][..], "TYPE/NAME"),
    ] {
        let out = mesh_command(&kubeconfig, dir.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}
