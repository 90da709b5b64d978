//! End to end: `mesh install --crds | kubectl apply -f -`, then `mesh install | kubectl apply -f -`,
//! against the fake API server acting as a kubelet; after that `mesh check` must pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mesh_testkube::FakeKube;

mod support;

fn mesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("mesh runs")
}

fn kubectl() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"));
    on_path
        .chain([PathBuf::from("/usr/bin/kubectl")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("kubectl is not installed (looked on PATH and in /usr/bin); this test needs the real kubectl"))
}

fn apply(kubeconfig: &Path, cache: &Path, manifest: &[u8]) -> Output {
    let mut child = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(["apply", "-f", "-"])
        .env("KUBECACHEDIR", cache)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest)
        .expect("write manifest");
    child.wait_with_output().expect("kubectl finishes")
}

fn must(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn install_then_check_passes() {
    let server = FakeKube::builder()
        .kubelet(true)
        .start()
        .expect("fake API server");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
    let cache = dir.path().join("cache");

    let crds = must(mesh(&["install", "--crds"]), "mesh install --crds");
    must(
        apply(&kubeconfig, &cache, &crds),
        "kubectl apply of the CRDs",
    );
    let control_plane = must(mesh(&["install"]), "mesh install");
    must(
        apply(&kubeconfig, &cache, &control_plane),
        "kubectl apply of the control plane",
    );

    // The fake kubelet runs no controller: stand in for their admin servers.
    for (component, _) in support::CONTROL_PLANE_ADMIN {
        let pods = support::component_pods(&server, "linkerd", component);
        assert_eq!(pods.len(), 1, "one {component} pod after install: {pods:?}");
    }
    support::route_control_plane_admin(&server, "linkerd", support::admin_server(200, "ready\n"));

    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    let out = mesh(&["--kubeconfig", kubeconfig, "check", "--proxy", "--wait=20s"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "mesh check after mesh install:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("Status check results are √\n"), "{text}");
    assert!(text.contains("√ control plane pods are ready"), "{text}");
    assert!(
        text.contains("√ issuer cert is issued by the trust anchor"),
        "{text}"
    );

    // And --pre now says mesh is already there.
    let pre = mesh(&["--kubeconfig", kubeconfig, "check", "--pre", "-o", "short"]);
    assert_eq!(pre.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&pre.stdout).contains("The \"linkerd\" namespace already exists")
    );
}
