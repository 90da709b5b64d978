use std::sync::Arc;

use crate::outbound::discover::DstLabels;
use crate::outbound::discover::namer::file::{
    BadLine, FileState, MAX_FILE_BYTES, MAX_LINES, Watched, parse,
};

fn labels() -> DstLabels {
    Arc::new([("dst_service".into(), "web".into())])
}

#[test]
fn good_lines() {
    let text = "\
# web, version 1

10.0.0.2:8080   # the second
10.0.0.1:8080 tls=web.default.serviceaccount.identity.linkerd.cluster.local
[fd00::1]:9090
10.0.0.3 8081
  fd00::2 80 tls=a_b.c-d
10.0.0.1:8080
";
    let (endpoints, bad) = parse(text, &labels());
    assert_eq!(bad, []);
    let got: Vec<(String, Option<&str>)> = endpoints
        .iter()
        .map(|e| (e.addr.to_string(), e.identity.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "10.0.0.1:8080".into(),
                Some("web.default.serviceaccount.identity.linkerd.cluster.local")
            ),
            ("10.0.0.2:8080".into(), None),
            ("10.0.0.3:8081".into(), None),
            ("[fd00::1]:9090".into(), None),
            ("[fd00::2]:80".into(), Some("a_b.c-d")),
        ]
    );
    assert!(endpoints.iter().all(|e| e.labels == labels() && !e.h2_hint));
}

#[test]
fn bad_lines_are_skipped_and_named() {
    let text = "\
10.0.0.1:80
web:80
10.0.0.2
10.0.0.3:99999
10.0.0.4:80 tls=
10.0.0.5:80 weight=3
10.0.0.6:80 tls=a tls=b
10.0.0.7:80 tls=bad..name
fd00::1:80
10.0.0.8:80
";
    let (endpoints, bad) = parse(text, &labels());
    let addrs: Vec<String> = endpoints.iter().map(|e| e.addr.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.8:80"]);
    let lines: Vec<usize> = bad.iter().map(|b: &BadLine| b.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9]);
    assert!(bad[0].reason.contains("\"web:80\""), "{:?}", bad[0]);
    assert!(bad[4].reason.contains("weight=3"), "{:?}", bad[4]);
}

#[test]
fn lines_are_bounded() {
    let text = "10.0.0.1:80\n".repeat(MAX_LINES + 5);
    let (endpoints, bad) = parse(&text, &labels());
    assert_eq!(endpoints.len(), 1);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, MAX_LINES + 1);
}

#[test]
fn files_too_large_or_not_text_count_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big"), "#".repeat(MAX_FILE_BYTES + 1)).unwrap();
    std::fs::write(dir.path().join("binary"), b"10.0.0.1:80\n\xff\n").unwrap();
    std::fs::create_dir(dir.path().join("dir")).unwrap();
    std::fs::write(dir.path().join("empty"), "").unwrap();
    std::fs::write(dir.path().join("fits"), "#".repeat(MAX_FILE_BYTES)).unwrap();
    for name in ["big", "binary", "dir", "nothing"] {
        assert_eq!(
            Watched::load(dir.path(), name).state,
            FileState::Missing,
            "{name}"
        );
    }
    for name in ["empty", "fits"] {
        assert_eq!(
            Watched::load(dir.path(), name).state,
            FileState::Present(Arc::new([])),
            "{name}"
        );
    }
}

#[test]
fn a_same_size_rewrite_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web");
    std::fs::write(&path, "10.0.0.1:80\n").unwrap();
    let mut file = Watched::load(dir.path(), "web");
    assert!(!file.refresh(dir.path(), "web"), "nothing changed");
    // Same size, and likely the same modification time.
    std::fs::write(&path, "10.0.0.2:80\n").unwrap();
    assert!(file.refresh(dir.path(), "web"));
    let FileState::Present(endpoints) = &file.state else {
        panic!("{:?}", file.state)
    };
    assert_eq!(endpoints[0].addr.to_string(), "10.0.0.2:80");
    std::fs::remove_file(&path).unwrap();
    assert!(file.refresh(dir.path(), "web"));
    assert_eq!(file.state, FileState::Missing);
}
