//! `mesh stat` over outbound metrics that carry the destination endpoint's `dst_*` labels, read
//! from fake admin servers whose counters grow at fixed rates (`fake_proxy`), so the tables are
//! goldens in testdata/stat/ (`UPDATE_GOLDENS=1` rewrites them).
#![allow(clippy::unwrap_used)]

mod fake_proxy;
mod stat_support;
mod support;

use std::process::{Child, Command, Output, Stdio};

use fake_proxy::{Http, Page, outbound};
use mesh_testkube::FakeKube;
use serde_json::Value;
use stat_support::{mesh_command, meshed_deployment, pods_of, stderr, stdout};

const NS: &str = "emojivoto";

/// What vote-bot's proxy sent: to web-svc's two pods (labels from the control plane), to
/// `books` (named by the file namer, which gives only `dst_service`), and to `api` by a name
/// discovery did not know (no `dst_*` labels at all); and what it received.
pub fn vote_bot() -> Page {
    let web = |pod: &str, ip: &str| {
        outbound(
            "web-svc.emojivoto.svc.cluster.local:80",
            &format!("{ip}:8080"),
            &[
                ("namespace", NS),
                ("service", "web-svc"),
                ("deployment", "web"),
                ("pod", pod),
                ("serviceaccount", "web"),
            ],
        )
    };
    let series = |labels: String, rps, failures, latency_ms| Http {
        labels,
        rps,
        failures,
        latency_ms,
    };
    Page {
        http: vec![
            series(web("web-5d9f-x", "10.0.0.7"), 1.0, 0.0, 150.0),
            series(web("web-5d9f-y", "10.0.0.8"), 1.0, 0.25, 250.0),
            series(
                outbound("books:7000", "10.0.0.9:7000", &[("service", "books")]),
                0.5,
                0.0,
                1500.0,
            ),
            series(
                outbound(
                    "api.emojivoto.svc.cluster.local:8080",
                    "10.96.0.20:8080",
                    &[],
                ),
                0.4,
                0.5,
                700.0,
            ),
            series(
                "direction=\"inbound\",authority=\"vote-bot:8080\",target_addr=\"127.0.0.1:8080\",target_ip=\"127.0.0.1\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"".into(),
                3.0,
                0.0,
                1.0,
            ),
        ],
        routes: Vec::new(),
    }
}

/// What web's proxy sent: to the books Deployment, named by the control plane.
fn web() -> Page {
    Page {
        http: vec![Http {
            labels: outbound(
                "books.emojivoto.svc.cluster.local:7000",
                "10.0.0.12:7000",
                &[
                    ("namespace", NS),
                    ("service", "books"),
                    ("deployment", "books"),
                    ("pod", "books-7c-z"),
                ],
            ),
            rps: 1.5,
            failures: 0.1,
            latency_ms: 350.0,
        }],
        routes: Vec::new(),
    }
}

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

/// A cluster of three meshed Deployments: vote-bot and web send, books only receives.
fn cluster() -> FakeKube {
    let server = FakeKube::builder().kubelet(true).start().unwrap();
    for name in ["vote-bot", "web", "books"] {
        server.apply_yaml(&meshed_deployment(NS, name, 1)).unwrap();
    }
    for (name, app, ip) in [
        ("web-svc", "web", "10.96.0.10"),
        ("books", "books", "10.96.0.11"),
        ("api", "api", "10.96.0.20"),
    ] {
        server
            .apply_yaml(&format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  clusterIP: {ip}\n  selector: {{app: {app}}}\n  ports: [{{port: 80}}]\n"
            ))
            .unwrap();
    }
    for (name, page) in [
        ("vote-bot", vote_bot()),
        ("web", web()),
        ("books", Page::default()),
    ] {
        let pod = pods_of(&server, NS, name).remove(0);
        server.set_pod_proxy(NS, &pod, 4191, page.serve());
    }
    server
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
