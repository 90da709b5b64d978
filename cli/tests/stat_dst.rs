//! `mesh stat` over outbound metrics that carry the destination endpoint's `dst_*` labels, read
//! from fake admin servers whose counters grow at fixed rates (`fake_proxy`), so the tables are
//! goldens in testdata/stat/ (`UPDATE_GOLDENS=1` rewrites them).
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
    let path = support::testdata().join("stat").join(name);
    if let Err(e) = support::check_golden(&path, actual) {
        panic!("{e}");
    }
}

#[test]
fn proxy_rows_by_destination_resource() {
    let admin = vote_bot().serve().to_string();
    let run = |args: &[&str]| {
        let mut cmd = support::mesh_offline();
        cmd.args(["stat", "--proxy", &admin, "-t", "4s"]).args(args);
        spawn(cmd)
    };
    let cases: Vec<(&str, Child)> = vec![
        ("proxy-svc.golden.txt", run(&["svc"])),
        ("proxy-deploy.golden.txt", run(&["deploy"])),
        ("proxy-po.golden.txt", run(&["po"])),
        ("proxy-ns.golden.txt", run(&["ns"])),
        ("proxy-au.golden.txt", run(&["--direction", "outbound"])),
        ("proxy-svc-named.golden.txt", run(&["svc/web-svc"])),
    ];
    let json = run(&["deploy", "-o", "json"]);
    let none = run(&["sts"]);
    for (name, child) in cases {
        let out = finish(child, name);
        golden(name, &stdout(&out));
    }

    let out = finish(json, "-o json");
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["kind"], "deployment");
    assert_eq!(rows[0]["namespace"], NS);
    assert_eq!(rows[0]["name"], "web");
    let rps = rows[0]["rps"].as_f64().unwrap();
    assert!((1.9..=2.1).contains(&rps), "{rps}");
    let success = rows[0]["success"].as_f64().unwrap();
    assert!((success - 0.875).abs() < 1e-9, "{success}");

    let out = finish(none, "sts");
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("No traffic found. Read outbound traffic of 1 proxy for 4s: no request named a statefulset (the dst_statefulset label"),
        "{}",
        stderr(&out)
    );

    let out = support::mesh_offline()
        .args(["stat", "--proxy", &admin, "svc", "--direction", "inbound"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("only outbound"), "{}", stderr(&out));
    let out = support::mesh_offline()
        .args(["stat", "--proxy", &admin, "svc/a", "deploy/b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("one resource type at a time"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn to_and_from_match_dst_labels_in_a_cluster() {
    let server = cluster();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = mesh_command(&kubeconfig, dir.path());
        cmd.args(["stat", "-n", NS, "-t", "4s"]).args(args);
        spawn(cmd)
    };
    let cases: Vec<(&str, Child)> = vec![
        // By dst_deployment.
        (
            "to-deploy.golden.txt",
            run(&["deploy", "--to", "deploy/web"]),
        ),
        // By dst_service, and by the authority where no label names the Service.
        (
            "to-svc-labelled.golden.txt",
            run(&["deploy", "--to", "svc/web-svc"]),
        ),
        (
            "to-svc-authority.golden.txt",
            run(&["deploy", "--to", "svc/api"]),
        ),
        ("to-ns.golden.txt", run(&["deploy", "--to", "ns/emojivoto"])),
        // Split by the destination's workload, and by its Service.
        (
            "from-deploy.golden.txt",
            run(&["deploy", "--from", "deploy/vote-bot"]),
        ),
        (
            "from-svc.golden.txt",
            run(&["svc", "--from", "deploy/vote-bot"]),
        ),
    ];
    for (name, child) in cases {
        let out = finish(child, name);
        golden(name, &stdout(&out));
        assert!(
            !stderr(&out).contains("No traffic matched"),
            "{name}: {}",
            stderr(&out)
        );
    }
}
