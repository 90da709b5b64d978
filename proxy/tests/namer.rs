//! The dtab and file namer through the real binary: configuration errors, and the admin
//! server's `/dtab`. Traffic through the namer is tested where the balancer takes it.

// Helpers here are test code: a setup failure should panic.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Proxy, command, http_request};

/// Runs the proxy with `env` until it exits (at most 10 s); its exit code and stderr.
fn exit_of(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = command();
    cmd.env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:0")
        .env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the proxy did not exit within 10s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

#[test]
fn a_bad_dtab_exits_64_naming_the_variable_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let (code, err) = exit_of(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir_s),
        (
            "MESH_PROXY_DTAB",
            "/svc => /#/io.l5d.fs;\n/svc/web => 2 * /a &",
        ),
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("MESH_PROXY_DTAB: not a dtab: at 2:21: expected a path"),
        "{err}"
    );

    let file = dir.path().join("dtab");
    std::fs::write(&file, "# routes\n/svc => /#/io.l5d.fs |\n").unwrap();
    let file_s = file.to_str().unwrap();
    let (code, err) = exit_of(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir_s),
        ("MESH_PROXY_DTAB_FILE", file_s),
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains(&format!(
            "MESH_PROXY_DTAB_FILE={file_s:?}: not a dtab: at 3:1"
        )),
        "{err}"
    );
}

#[test]
fn namer_variables_that_do_not_fit_together_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let (code, err) = exit_of(&[("MESH_PROXY_DTAB", "/svc => /#/io.l5d.fs")]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("MESH_PROXY_DTAB is set but MESH_PROXY_FS_NAMER_DIR is not"),
        "{err}"
    );
    let (code, err) = exit_of(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir_s),
        ("MESH_PROXY_DTAB", "/svc => ~"),
        ("MESH_PROXY_DTAB_FILE", "/dev/null"),
    ]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("MESH_PROXY_DTAB and MESH_PROXY_DTAB_FILE are both set"),
        "{err}"
    );
    let missing = dir.path().join("missing");
    let (code, err) = exit_of(&[("MESH_PROXY_FS_NAMER_DIR", missing.to_str().unwrap())]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("MESH_PROXY_FS_NAMER_DIR="), "{err}");
}

fn dtab_request(admin: SocketAddr, method: &str, body: &str) -> (u16, String) {
    let r = http_request(
        admin,
        &format!(
            "{method} /dtab HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    (r.status, r.body_string())
}

#[test]
fn without_a_namer_dtab_is_not_found() {
    let proxy = Proxy::start(&[]);
    for method in ["GET", "PUT"] {
        let (status, body) = dtab_request(proxy.admin, method, "/svc => ~");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("without a namer"), "{body}");
    }
}

#[test]
fn put_dtab_replaces_it_and_get_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&[
        ("MESH_PROXY_FS_NAMER_DIR", dir.path().to_str().unwrap()),
        ("MESH_PROXY_DTAB", "/svc => /#/io.l5d.fs"),
    ]);
    let (status, body) = dtab_request(proxy.admin, "GET", "");
    assert_eq!((status, body.as_str()), (200, "/svc => /#/io.l5d.fs\n"));
    let (status, body) = dtab_request(
        proxy.admin,
        "PUT",
        "/svc => 3 * /#/io.l5d.fs/a & /#/io.l5d.fs/b",
    );
    assert_eq!(
        (status, body.as_str()),
        (200, "/svc => 3 * /#/io.l5d.fs/a & 1 * /#/io.l5d.fs/b\n")
    );
    let (status, body) = dtab_request(proxy.admin, "GET", "");
    assert_eq!(
        (status, body.as_str()),
        (200, "/svc => 3 * /#/io.l5d.fs/a & 1 * /#/io.l5d.fs/b\n")
    );
    let (status, body) = dtab_request(proxy.admin, "PUT", "/svc => /a;\n/b =>> /c");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at 2:6"), "{body}");
    let (status, body) = dtab_request(proxy.admin, "GET", "");
    assert_eq!(
        (status, body.as_str()),
        (200, "/svc => 3 * /#/io.l5d.fs/a & 1 * /#/io.l5d.fs/b\n")
    );
}
