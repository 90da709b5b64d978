//! `mesh edges` over outbound metrics with and without the `dst_*` labels, read from fake admin
//! servers (`fake_proxy`); goldens in testdata/edges/ (`UPDATE_GOLDENS=1` rewrites them).
#![allow(clippy::unwrap_used)]

mod fake_proxy;
mod stat_support;
mod support;

use fake_proxy::scenario::{BOOKS_ID, NS, VOTE_BOT_ID, WEB_ID, cluster};
use serde_json::Value;
use stat_support::{mesh, stderr, stdout};

fn golden(name: &str, actual: &str) {
    let path = support::testdata().join("edges").join(name);
    if let Err(e) = support::check_golden(&path, actual) {
        panic!("{e}");
    }
}

/// vote-bot → web and web → books are named by `dst_deployment`; vote-bot's traffic to `api`
/// (no labels) and to `books` (the file namer's `dst_service` only) falls back to the Service.
#[test]
fn edges_go_workload_to_workload_with_dst_labels() {
    let server = cluster();
    for (name, args) in [
        ("deploy.golden.txt", &["edges", "deploy", "-n", NS][..]),
        (
            "deploy-wide.golden.txt",
            &["edges", "deploy", "-n", NS, "-o", "wide"][..],
        ),
        (
            "deploy.golden.json",
            &["edges", "deploy", "-n", NS, "-o", "json"][..],
        ),
    ] {
        let out = mesh(&server, args);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        golden(name, &stdout(&out));
    }
    let out = mesh(&server, &["edges", "deploy", "-n", NS, "-o", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let edge = |src: &str, dst: &str| {
        rows.iter()
            .find(|r| r["src"] == src && r["dst"] == dst)
            .unwrap_or_else(|| panic!("no edge {src} → {dst} in {rows:#?}"))
    };
    assert_eq!(edge("vote-bot", "web")["dst_kind"], "deployment");
    assert_eq!(edge("web", "books")["dst_kind"], "deployment");
    assert_eq!(edge("vote-bot", "api")["dst_kind"], "service");
    assert_eq!(edge("vote-bot", "books")["dst_kind"], "service");
    assert_eq!(rows.len(), 4, "{rows:#?}");
}

/// SECURED reads the client's outbound `tls` label: √ with the verified `server_id` where
/// vote-bot and web spoke mTLS, × with the proxy's `no_tls_reason` where they did not.
/// CLIENT_ID is what the server's inbound side verified of that client: books also served a
/// client of another service account, which is not web's.
#[test]
fn edges_show_mtls_from_the_clients_outbound_series() {
    let server = cluster();
    let out = mesh(&server, &["edges", "deploy", "-n", NS, "-o", "wide"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let row = |src: &str, dst: &str| -> Vec<String> {
        table
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|cells| cells[0] == src && cells[1] == dst)
            .unwrap_or_else(|| panic!("no edge {src} → {dst} in\n{table}"))
    };
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "SRC",
            "DST",
            "SRC_NS",
            "DST_NS",
            "SECURED",
            "CLIENT_ID",
            "SERVER_ID",
            "MSG"
        ]
    );
    assert_eq!(
        row("vote-bot", "web")[4..],
        ["√", "vote-bot.emojivoto", "web.emojivoto", "-"]
    );
    assert_eq!(
        row("web", "books")[4..],
        ["√", "web.emojivoto", "books.emojivoto", "-"]
    );
    let plain = ["×", "-", "-", "not_provided_by_service_discovery"];
    assert_eq!(row("vote-bot", "svc/api")[4..], plain);
    assert_eq!(row("vote-bot", "svc/books")[4..], plain);

    let out = mesh(&server, &["edges", "deploy", "-n", NS, "-o", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let edge = |src: &str, dst: &str| {
        rows.iter()
            .find(|r| r["src"] == src && r["dst"] == dst)
            .unwrap_or_else(|| panic!("no edge {src} → {dst} in {rows:#?}"))
    };
    assert_eq!(edge("web", "books")["server_id"], BOOKS_ID);
    assert_eq!(edge("web", "books")["client_id"], WEB_ID);
    assert_eq!(edge("vote-bot", "web")["client_id"], VOTE_BOT_ID);
    assert_eq!(edge("vote-bot", "api")["client_id"], "");
    assert_eq!(edge("web", "books")["no_tls_reason"], "");
    assert_eq!(edge("vote-bot", "api")["server_id"], "");
    assert_eq!(
        edge("vote-bot", "api")["no_tls_reason"],
        "not_provided_by_service_discovery"
    );
}
