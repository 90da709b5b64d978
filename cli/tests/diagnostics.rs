//! `mesh diagnostics endpoints` against the fake API server, with a stand-in for the destination
//! controller's admin port (the controller's side of `/endpoints` is tested in its own crate).

#![allow(clippy::unwrap_used)] // Tests fail loudly.

mod support;

use mesh_testkube::FakeKube;
use serde_json::json;
use support::{check_golden, mesh, testdata, text};

/// What the controller answers: web's two endpoints, 404 for a Service that does not exist,
/// nothing for one without endpoints. Any other request line fails the lookup.
fn controller(request_line: &str) -> (u16, String) {
    let answer = |authority: &str, endpoints| {
        json!({"authority": authority, "exists": true, "endpoints": endpoints}).to_string()
    };
    match request_line {
        "GET /endpoints?authority=web.shop.svc.cluster.local%3A80 HTTP/1.1" => (
            200,
            answer(
                "web.shop.svc.cluster.local:80",
                json!([
                    {"namespace": "shop", "ip": "10.1.0.1", "port": 8080, "pod": "web-1", "service": "web"},
                    {"namespace": "shop", "ip": "10.1.0.2", "port": 8080, "pod": "web-2", "service": "web"},
                ]),
            ),
        ),
        "GET /endpoints?authority=empty.shop.svc.cluster.local%3A80 HTTP/1.1" => {
            (200, answer("empty.shop.svc.cluster.local:80", json!([])))
        }
        "GET /endpoints?authority=nope.shop.svc.cluster.local%3A80 HTTP/1.1" => {
            (404, "Service nope.shop not found\n".to_string())
        }
        other => (500, format!("unexpected request {other}\n")),
    }
}

fn cluster() -> (FakeKube, tempfile::TempDir) {
    let server = FakeKube::start().unwrap();
    server
        .create(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "linkerd-destination-1", "namespace": "linkerd",
                         "labels": {"linkerd.io/control-plane-component": "destination"}},
            "spec": {"containers": [{"name": "destination", "image": "controller"}]},
        }))
        .unwrap();
    server
        .edit_status("Pod", "linkerd", "linkerd-destination-1", |status| {
            status["phase"] = json!("Running");
            status["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        })
        .unwrap();
    server.set_pod_proxy(
        "linkerd",
        "linkerd-destination-1",
        mesh_names::ports::DESTINATION_ADMIN,
        support::admin_server_with(controller),
    );
    let dir = tempfile::tempdir().unwrap();
    server.write_kubeconfig(dir.path()).unwrap();
    (server, dir)
}

fn run(dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    mesh()
        .arg("--kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .args(["diagnostics", "endpoints"])
        .args(args)
        .env_remove("KUBECONFIG")
        .env("KUBECACHEDIR", dir.path())
        .output()
        .unwrap()
}

#[test]
fn endpoints_are_listed_as_the_destination_controller_answers() {
    let (_server, dir) = cluster();
    let out = run(&dir, &["web.shop.svc.cluster.local:80"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    check_golden(
        &testdata().join("diagnostics/endpoints.golden.txt"),
        &text(&out.stdout),
    )
    .unwrap();
    let out = run(&dir, &["-o", "json", "web.shop.svc.cluster.local:80"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    check_golden(
        &testdata().join("diagnostics/endpoints.golden.json"),
        &text(&out.stdout),
    )
    .unwrap();

    // No endpoints, no Service: what was found is printed, the rest named, exit 1.
    let out = run(
        &dir,
        &[
            "web.shop.svc.cluster.local:80",
            "empty.shop.svc.cluster.local:80",
            "nope.shop.svc.cluster.local:80",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        3,
        "{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("No endpoints found for empty.shop.svc.cluster.local:80."),
        "{err}"
    );
    assert!(
        err.contains("nope.shop.svc.cluster.local:80: Service nope.shop not found"),
        "{err}"
    );

    // Not an authority: a usage error before any request.
    let out = run(&dir, &["web.shop"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("expected NAME:PORT"));
}

#[test]
fn no_ready_destination_controller_is_an_error() {
    let server = FakeKube::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.write_kubeconfig(dir.path()).unwrap();
    let out = run(&dir, &["web.shop.svc.cluster.local:80"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no ready linkerd-destination pod in namespace linkerd"),
        "{}",
        text(&out.stderr)
    );
}
