//! `mesh inject` as a user runs it: every kind of input, every exit code, and the edges of the
//! process (stdin, pipes, https).

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers outside #[test] functions too.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;

use support::{mesh, run_with_stdin, testdata, text};

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: nginx\n";
const INJECTED_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    linkerd.io/inject: enabled\nspec:\n  containers:\n  - name: web\n    image: nginx\n";

#[test]
fn reads_stdin() {
    let out = run_with_stdin(mesh().args(["inject", "-"]), POD.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), INJECTED_POD);
    assert_eq!(text(&out.stderr), "\npod \"web\" injected\n\n");
}

#[test]
fn reads_a_directory_recursively_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("b/nested")).unwrap();
    std::fs::write(dir.path().join("b/nested/z.yml"), POD.replace("web", "z")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), POD.replace("web", "a")).unwrap();
    std::fs::write(
        dir.path().join("c.json"),
        r#"{"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "c"}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
    let out = mesh().arg("inject").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "\npod \"a\" injected\npod \"z\" injected\nnamespace \"c\" annotated\n\n"
    );
    // A mix of YAML and JSON inputs is written as one YAML stream kubectl can read.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: z\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("kind: Namespace\napiVersion: v1\nmetadata:\n  name: c\n  annotations:\n    linkerd.io/inject: enabled\n"), "{stdout}");
}

/// A link back up the tree is not followed (as `kubectl apply -R` and Linkerd's inject walk), so
/// each file is read once; a link to a file is read.
#[test]
fn directory_links_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/pod.yaml"), POD).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("sub/up")).unwrap();
    std::os::unix::fs::symlink("sub/pod.yaml", dir.path().join("link.yaml")).unwrap();
    let out = mesh().arg("inject").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "\npod \"web\" injected\npod \"web\" injected\n\n"
    );
}

#[test]
fn files_and_stdin_mix_into_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ns.yaml");
    std::fs::write(
        &file,
        "kind: Namespace\napiVersion: v1\nmetadata:\n  name: shop",
    )
    .unwrap();
    let out = run_with_stdin(mesh().arg("inject").arg(&file).arg("-"), POD.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "kind: Namespace\napiVersion: v1\nmetadata:\n  name: shop\n  annotations:\n    linkerd.io/inject: enabled\n---\n{INJECTED_POD}"
        )
    );
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad_yaml = dir.path().join("bad.yaml");
    std::fs::write(&bad_yaml, "kind: Pod\nmetadata:\n  name: x\n bad: indent\n").unwrap();
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(&latin1, b"kind: Pod\nmetadata:\n  name: caf\xe9\n").unwrap();
    let empty_dir = dir.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();

    let cases: Vec<(Vec<std::ffi::OsString>, i32, &str)> = vec![
        (
            vec!["inject".into(), bad_yaml.clone().into()],
            1,
            "document 1, line 4:2: ",
        ),
        (vec!["inject".into(), latin1.into()], 1, "not UTF-8 text"),
        (
            vec!["inject".into(), dir.path().join("missing.yaml").into()],
            2,
            "cannot read",
        ),
        (
            vec!["inject".into(), empty_dir.into()],
            2,
            "no .yaml, .yml or .json files",
        ),
        (
            vec!["inject".into(), "http://example.com/x.yaml".into()],
            2,
            "use https://example.com/x.yaml",
        ),
        (
            vec![
                "inject".into(),
                "--admin-port".into(),
                "0".into(),
                bad_yaml.clone().into(),
            ],
            2,
            "--admin-port",
        ),
        (
            vec![
                "inject".into(),
                "--no-such-flag".into(),
                bad_yaml.clone().into(),
            ],
            2,
            "unexpected argument",
        ),
        (vec!["inject".into()], 2, "required"),
        (
            vec!["inject".into(), "-".into(), "-".into()],
            2,
            "more than once",
        ),
    ];
    for (args, code, message) in cases {
        let out = mesh().args(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {:?} lacks {message:?}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_refusal_anywhere_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), POD).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        POD.replace("spec:\n", "spec:\n  hostNetwork: true\n"),
    )
    .unwrap();
    let out = mesh().arg("inject").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("failed to inject pod/web (document 1): hostNetwork is enabled")
    );
}

#[test]
fn a_closed_pipe_exits_quietly() {
    // Large enough that the writer is still going when the reader goes away.
    let big: String = (0..20_000)
        .map(|i| POD.replace("web", &format!("web-{i}")) + "---\n")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    std::fs::write(&file, big).unwrap();
    let mut child = mesh()
        .arg("inject")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("Error"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_teaches() {
    let out = mesh().args(["inject", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "kubectl apply -f -",
        "--skip-inbound-ports",
        "Proxy configuration",
        "hostNetwork",
    ] {
        assert!(help.contains(needle), "inject --help lacks {needle:?}");
    }
}

#[test]
fn version_and_completions() {
    let out = mesh().args(["version", "--client"]).output().unwrap();
    assert_eq!(
        text(&out.stdout),
        format!("Client version: {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = mesh()
        .args(["version", "--client", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clientVersion"], env!("CARGO_PKG_VERSION"));
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef mesh"),
        ("fish", "complete -c mesh"),
    ] {
        let out = mesh().args(["completion", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains(marker),
            "{shell} completion lacks {marker:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = mesh()
        .args(["generate", "man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(dir.path().join("mesh-inject.1")).unwrap();
    assert!(page.contains(".TH mesh-inject"), "{page}");
}

#[test]
fn the_shipped_example_injects() {
    let out = mesh()
        .arg("inject")
        .arg(testdata().join("examples/emojivoto.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stderr);
    for line in [
        "deployment \"web\" injected",
        "deployment \"emoji\" injected",
        "service \"web-svc\" skipped",
    ] {
        assert!(report.contains(line), "{report}");
    }
}

#[test]
fn uninject_takes_the_tap_variable_out_with_the_proxy() {
    let dir = testdata().join("inject");
    let manual = [
        "--manual",
        "--identity-trust-anchors-file",
        "trust-anchors.pem",
    ];
    let roundtrip = |extra: &[&str], input: &str| {
        let injected = mesh()
            .current_dir(&dir)
            .arg("inject")
            .args(manual)
            .args(extra)
            .arg(input)
            .output()
            .unwrap();
        assert!(injected.status.success(), "{}", text(&injected.stderr));
        assert!(text(&injected.stdout).contains("MESH_PROXY_TAP_ENABLED"));
        let back = run_with_stdin(mesh().args(["uninject", "-"]), &injected.stdout);
        assert!(back.status.success(), "{}", text(&back.stderr));
        text(&back.stdout)
    };
    // On from the values: the input comes back byte for byte.
    let input = "manual_tap_values.in.yaml";
    let back = roundtrip(&["--set", "proxy.enableTap=true"], input);
    assert_eq!(back, std::fs::read_to_string(dir.join(input)).unwrap());
    // On from the flag: the setting stays, as every config.linkerd.io setting does.
    let back = roundtrip(&["--enable-tap"], "manual_tap.in.yaml");
    assert!(!back.contains("MESH_PROXY_TAP_ENABLED"), "{back}");
    assert!(
        back.contains("config.linkerd.io/enable-tap: \"true\""),
        "{back}"
    );
}

/// An https server with a certificate from a throwaway CA; returns its port and the CA's PEM.
fn https_server(body: &'static str) -> (u16, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mesh test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let path_ok = head.starts_with(b"GET /manifest.yaml ");
            let response = if path_ok {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = tls.write_all(response.as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, ca_cert.pem())
}

#[test]
fn fetches_https_urls_trusting_the_given_ca() {
    let (port, ca) = https_server(POD);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let url = format!("https://localhost:{port}/manifest.yaml");

    let out = mesh()
        .args(["inject", &url])
        .env("SSL_CERT_FILE", &ca_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), INJECTED_POD);

    let missing = format!("https://localhost:{port}/nope.yaml");
    let out = mesh()
        .args(["inject", &missing])
        .env("SSL_CERT_FILE", &ca_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("404"), "{}", text(&out.stderr));

    // Without the CA the certificate is not trusted.
    let out = mesh()
        .args(["inject", &url])
        .env("SSL_CERT_FILE", dir.path().join("none.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn output_json_round_trips_through_inject() {
    let out = run_with_stdin(mesh().args(["inject", "-o", "json", "-"]), POD.as_bytes());
    assert!(out.status.success());
    let json = text(&out.stdout);
    let again = run_with_stdin(mesh().args(["inject", "-"]), json.as_bytes());
    assert_eq!(
        text(&again.stdout),
        json,
        "injecting JSON output changes nothing"
    );
}

#[test]
fn manual_reads_the_trust_anchors_from_the_cluster() {
    let anchors = std::fs::read_to_string(testdata().join("inject/trust-anchors.pem")).unwrap();
    let indented: String = anchors.lines().map(|l| format!("    {l}\n")).collect();
    let server = mesh_testkube::FakeKube::builder()
        .fixture_yaml(format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: linkerd\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: linkerd-identity-trust-roots\n  namespace: linkerd\ndata:\n  ca-bundle.crt: |\n{indented}"
        ))
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).unwrap();
    let out = run_with_stdin(
        mesh()
            .args(["inject", "--manual", "-"])
            .arg("--kubeconfig")
            .arg(&kubeconfig),
        POD.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let first_line = anchors.lines().nth(1).unwrap();
    assert!(
        stdout.contains(first_line),
        "the cluster's anchors are in the proxy env:\n{stdout}"
    );

    // A control plane in another namespace is not found, and the error says where it looked.
    let out = run_with_stdin(
        mesh()
            .args(["inject", "--manual", "-L", "elsewhere", "-"])
            .arg("--kubeconfig")
            .arg(&kubeconfig),
        POD.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("ConfigMap elsewhere/linkerd-identity-trust-roots"),
        "{}",
        text(&out.stderr)
    );
}

/// A document nested hundreds of thousands deep is refused with its position, for every command
/// and output format, instead of overflowing the stack.
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("x:\n  {}a\n", "- ".repeat(300_000));
    for args in [
        &["inject", "-"][..],
        &["inject", "-o", "json", "-"],
        &["uninject", "-"],
        &["uninject", "-o", "json", "-"],
    ] {
        let out = run_with_stdin(mesh().args(args), deep.as_bytes());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("line 2:513: collections nested more than 256 levels deep"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing is half-written");
    }
}

/// A few hundred bytes of nested aliases are refused in `-o json` instead of expanding into
/// gigabytes; as YAML the text is passed through untouched.
#[test]
fn alias_bombs_are_refused() {
    let mut bomb = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for (name, prev) in "bcdefghi".chars().zip("abcdefgh".chars()) {
        let items = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("  {name}: &{name} [{items}]\n"));
    }
    assert!(bomb.len() < 500);
    for args in [
        &["inject", "-o", "json", "-"][..],
        &["uninject", "-o", "json", "-"],
    ] {
        let out = run_with_stdin(mesh().args(args), bomb.as_bytes());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("line 10:18: aliases expand"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
