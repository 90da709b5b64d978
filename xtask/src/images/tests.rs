use std::collections::BTreeSet;
use std::path::Path;

use super::layout::{self, Node, RunConfig, Tree};
use super::{check, cluster, refs, spec};
use crate::util::root;

#[test]
fn caps_xattr_is_what_setcap_writes() {
    // `setcap cap_net_admin,cap_net_raw=ep FILE; getfattr -n security.capability FILE`.
    // And `=p`: the same without the effective flag.
    let hex = |effective| -> String {
        layout::caps_xattr(spec::NET_CAPS_MASK, effective)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(hex(true), "0100000200300000000000000000000000000000");
    assert_eq!(hex(false), "0000000200300000000000000000000000000000");
}

#[test]
fn rfc3339_dates() {
    assert_eq!(layout::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(layout::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(layout::rfc3339(1_796_238_245), "2026-12-02T19:04:05Z");
}

fn sample() -> Tree {
    let mut tree = Tree::default();
    // Inserted out of order; parents are created on the way.
    tree.insert(
        Path::new("usr/sbin/xtables-nft-multi"),
        Node::File {
            data: b"elf".to_vec(),
            mode: 0o755,
            caps: Some(layout::caps_xattr(spec::NET_CAPS_MASK, true)),
        },
    );
    tree.insert(
        Path::new("usr/sbin/iptables-nft"),
        Node::Symlink {
            target: "xtables-nft-multi".into(),
        },
    );
    tree.insert(Path::new("tmp"), Node::Dir { mode: 0o1777 });
    tree.insert(
        Path::new("etc/passwd"),
        Node::File {
            data: b"root:x:0:0::/:\n".to_vec(),
            mode: 0o644,
            caps: None,
        },
    );
    tree
}

#[test]
fn layer_is_sorted_owned_by_root_and_keeps_caps() {
    let tar = layout::layer_tar(&sample(), 1234).expect("tar");
    let entries = check::entries(&tar).expect("entries");
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc/",
            "etc/passwd",
            "tmp/",
            "usr/",
            "usr/sbin/",
            "usr/sbin/iptables-nft",
            "usr/sbin/xtables-nft-multi"
        ]
    );
    for e in &entries {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 1234), "{}", e.path);
        let capped = e.path == "usr/sbin/xtables-nft-multi";
        assert_eq!(e.caps.is_some(), capped, "{}", e.path);
    }
    assert_eq!(
        entries[6].caps.as_deref(),
        Some(layout::caps_xattr(spec::NET_CAPS_MASK, true).as_slice())
    );
}

#[test]
fn archives_are_reproducible_and_name_the_image_twice() {
    let run = RunConfig {
        user: "2102:2102".into(),
        entrypoint: vec!["/usr/local/bin/mesh-proxy".into()],
        cmd: vec![],
        env: vec![spec::PATH.into()],
        labels: Default::default(),
    };
    let build = || {
        let layer = layout::layer(&sample(), 7, "test").expect("layer");
        layout::archive("example.org/mesh/mesh-proxy:1.2.3", &run, &[&layer], 7).expect("archive")
    };
    let (a, b) = (build(), build());
    assert_eq!(layout::sha256(&a.bytes), layout::sha256(&b.bytes));
    assert_eq!(a.manifest_digest, b.manifest_digest);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.tar");
    std::fs::write(&path, &a.bytes).expect("write");
    let image = check::read(&path).expect("read back");
    for name in ["index.json", "manifest.json", "oci-layout"] {
        assert!(image.files.contains_key(name), "{name}");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&image.files["index.json"]).expect("index");
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "example.org/mesh/mesh-proxy:1.2.3"
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.2.3"
    );
    let docker: serde_json::Value =
        serde_json::from_slice(&image.files["manifest.json"]).expect("manifest.json");
    assert_eq!(
        docker[0]["RepoTags"],
        serde_json::json!(["example.org/mesh/mesh-proxy:1.2.3"])
    );
    assert_eq!(image.config["config"]["User"], "2102:2102");
    assert_eq!(image.config["created"], "1970-01-01T00:00:07Z");
    assert_eq!(image.layers.len(), 1);
    assert!(layout::archive("no-tag", &run, &[], 0).is_err());
}

#[test]
fn references_come_from_the_rendered_manifests() {
    let json = br#"{"kind": "Namespace", "metadata": {"name": "linkerd"}}
{"kind": "Deployment", "spec": {"template": {"spec": {
  "initContainers": [{"name": "linkerd-init", "image": "reg.io:5000/o/mesh-proxy:9.9",
     "command": ["mesh-proxy", "init"], "args": ["--proxy-uid", "2102"],
     "securityContext": {"runAsUser": 65534}}],
  "containers": [{"name": "linkerd-proxy", "image": "reg.io:5000/o/mesh-proxy:9.9",
     "securityContext": {"runAsUser": 2102}},
    {"name": "identity", "image": "reg.io:5000/o/mesh-controller:9.9",
     "securityContext": {"runAsUser": 2103}}]}}}}
"#;
    let rendered = refs::parse(json).expect("parse");
    let specs = spec::images();
    let got: Vec<(String, u32)> = specs
        .iter()
        .map(|s| rendered.image(s).expect("image"))
        .collect();
    assert_eq!(
        got,
        [
            ("reg.io:5000/o/mesh-proxy:9.9".to_owned(), 2102),
            ("reg.io:5000/o/mesh-controller:9.9".to_owned(), 2103),
            ("reg.io:5000/o/mesh-demo:9.9".to_owned(), 65534),
        ]
    );
    let init = rendered.container("linkerd-init").expect("init");
    assert_eq!(init.command, ["mesh-proxy", "init"]);
    assert_eq!(init.run_as_user, Some(65534));
    assert_eq!(
        refs::beside("mesh-proxy:1", "mesh-demo").expect("beside"),
        "mesh-demo:1"
    );
    assert!(refs::beside("reg.io:5000/mesh-proxy", "x").is_err());
}

/// What a Dockerfile puts in its image: the `cp -a --parents` list, and each `COPY src dest`.
struct Dockerfile {
    copied: BTreeSet<String>,
    copies: BTreeSet<(String, String)>,
    text: String,
}

fn dockerfile(name: &str) -> Dockerfile {
    let path = root().join("images").join(name).join("Dockerfile");
    let text = std::fs::read_to_string(&path).expect("Dockerfile");
    let mut copied = BTreeSet::new();
    let mut copies = BTreeSet::new();
    let mut in_list = false;
    for line in text.lines() {
        let line = line.trim().trim_end_matches('\\').trim();
        if line.contains("cp -a --parents") {
            in_list = true;
            continue;
        }
        if in_list {
            if line == "/rootfs/" {
                in_list = false;
            } else {
                copied.insert(line.to_owned());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("COPY ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [src, dest] = words[..] {
                copies.insert((src.to_owned(), dest.to_owned()));
            }
        }
    }
    Dockerfile {
        copied,
        copies,
        text,
    }
}

#[test]
fn dockerfiles_copy_what_the_xtask_copies() {
    for image in spec::images() {
        let d = dockerfile(image.name);
        let want: BTreeSet<String> = spec::BASE
            .iter()
            .chain(image.picks)
            .map(|p| p.path.to_owned())
            .collect();
        assert_eq!(d.copied, want, "{}: Debian paths", image.name);
        let binary = format!("/{}", spec::binary_path(image.binary));
        let mut copies: BTreeSet<(String, String)> = spec::BASE_FILES
            .iter()
            .map(|(dest, src)| ((*src).to_owned(), format!("/{dest}")))
            .collect();
        copies.insert((
            format!("target/release/{}", image.binary),
            format!("/rootfs{binary}"),
        ));
        assert_eq!(d.copies, copies, "{}: COPY lines", image.name);
        assert!(
            d.text.contains("COPY --from=debian /rootfs/ /"),
            "{}",
            image.name
        );
        let user = image.default_user;
        assert!(
            d.text.contains(&format!("\nUSER {user}:{user}\n")),
            "{}: USER",
            image.name
        );
        assert!(
            d.text.contains(&format!("\nENV {}\n", spec::PATH)),
            "{}: PATH",
            image.name
        );
        assert!(
            d.text.contains(&format!("\nENTRYPOINT [\"{binary}\"]\n")),
            "{}: ENTRYPOINT",
            image.name
        );
        for (dir, mode) in spec::BASE_DIRS {
            let mkdir = if *mode == 0o755 {
                format!("mkdir -p /rootfs/{dir}")
            } else {
                format!("mkdir -p -m {mode:o} /rootfs/{dir}")
            };
            assert!(d.text.contains(&mkdir), "{}: {mkdir}", image.name);
        }
        let binary_rel = spec::binary_path(image.binary);
        let capped: Vec<(&str, bool)> = spec::FILE_CAPS
            .iter()
            .copied()
            .filter(|(f, _)| image.picks.iter().any(|p| p.path == *f) || *f == binary_rel)
            .collect();
        if capped.is_empty() {
            assert!(!d.text.contains("setcap"), "{}", image.name);
        }
        for (effective, flags) in [(true, "ep"), (false, "p")] {
            let files: Vec<String> = capped
                .iter()
                .filter(|(_, e)| *e == effective)
                .map(|(f, _)| format!("/rootfs/{f}"))
                .collect();
            if !files.is_empty() {
                let setcap = format!(
                    "setcap cap_net_admin,cap_net_raw={flags} {}",
                    files.join(" ")
                );
                assert!(d.text.contains(&setcap), "{}: {setcap}", image.name);
            }
        }
    }
}

#[test]
fn every_picked_package_is_a_debian_package_the_dockerfile_installs() {
    for image in spec::images() {
        let d = dockerfile(image.name);
        for pick in image.picks {
            // The iptables package pulls in its libraries and netbase.
            let installed = d
                .text
                .contains("install -y --no-install-recommends iptables");
            assert!(
                installed,
                "{}: {} comes from {}",
                image.name, pick.path, pick.package
            );
        }
    }
}

#[test]
fn example_images_are_read_from_the_manifests() {
    let text = "containers:\n- name: web\n  image: a/mesh-demo:1\n- image: \"b:2\"\n";
    assert_eq!(check::image_lines(text), ["a/mesh-demo:1", "b:2"]);
    let demo = std::fs::read_to_string(root().join("testdata/examples/demo.yaml")).expect("demo");
    let images = check::image_lines(&demo);
    assert_eq!(images.len(), 4, "{images:?}");
    assert!(
        images.iter().all(|i| i.contains("/mesh-demo:")),
        "{images:?}"
    );
}

#[test]
fn a_success_rate_is_read_from_mesh_stat() {
    // `mesh stat deploy -n NS`: no NAMESPACE column.
    let table = "NAME       MESHED   SUCCESS       RPS   LATENCY_P50\n\
                 vote-bot      1/1         -         -             -\n\
                 web           1/1    90.91%    4.4rps          65ms\n";
    assert!(cluster::has_success_rate(table, "web"));
    assert!(!cluster::has_success_rate(table, "vote-bot"));
    assert!(!cluster::has_success_rate(table, "books"));
}
