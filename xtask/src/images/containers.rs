//! `cargo xtask images --containers`: the archives in a real container runtime (needs root,
//! containerd and runc).
//!
//! A throwaway containerd (its own root, state and socket; no CRI plugin, no systemd: runc's
//! cgroupfs driver) imports every archive with `ctr images import`, as `kind load
//! image-archive` does. Then, in network namespaces made for the purpose:
//! - the proxy image's `linkerd-init`, with the command, arguments and user `mesh install`
//!   renders, no-new-privs and NET_ADMIN, NET_RAW added, read-only root and a tmpfs /run, run
//!   by runc on the image as containerd mounts it (`ctr` 1.6 cannot set a user); its rules
//!   must then be in the namespace;
//! - the proxy with `ctr run`, as the image's user and with no added capability: `/ready` on
//!   its admin port must answer;
//! - the controller's and the demo's `--help` with `ctr run`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::{Built, spec};
use crate::util::display;

const NAMESPACE: &str = "k8s.io";

/// The containerd this check starts, killed (by its own pid) when dropped.
struct Containerd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Containerd {
    fn start(dir: &Path) -> Result<Self> {
        let config = format!(
            r#"version = 2
root = "{0}/root"
state = "{0}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{0}/c.sock"
[ttrpc]
  address = "{0}/c.sock.ttrpc"
[debug]
  address = "{0}/debug.sock"
"#,
            dir.display()
        );
        std::fs::write(dir.join("config.toml"), config)?;
        let log = std::fs::File::create(dir.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting containerd")?;
        let me = Self {
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while me.ctr(&["version"]).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "containerd did not answer in 30s; see {}",
                    dir.join("containerd.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(me)
    }

    fn ctr_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.dir.join("c.sock"))
            .args(["--namespace", NAMESPACE])
            .args(args);
        cmd
    }

    fn ctr(&self, args: &[&str]) -> Result<String> {
        output(&mut self.ctr_command(args))
    }
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", display(cmd)))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{} failed ({}): {text}", display(cmd), out.status);
    }
    Ok(text)
}

/// A network namespace made for one check, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(name: &str) -> Result<Self> {
        let name = format!("mesh-images-{}-{name}", std::process::id());
        output(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Self(name);
        output(Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

pub fn run(built: &[Built]) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("mesh-ctrd.")
        .tempdir_in("/tmp")?;
    let containerd = Containerd::start(dir.path())?;
    for b in built {
        let path = b.path.to_string_lossy();
        containerd.ctr(&["images", "import", &path])?;
    }
    let images = containerd.ctr(&["images", "ls", "-q"])?;
    for b in built {
        ensure!(
            images.lines().any(|l| l.trim() == b.reference),
            "ctr images import did not create {}: {images}",
            b.reference
        );
        eprintln!("containers: imported {}", b.reference);
    }
    for b in built {
        match b.spec.name {
            "mesh-proxy" => {
                init(&containerd, b)?;
                proxy(&containerd, b)?;
            }
            _ => {
                let id = format!("help-{}-{}", b.spec.name, std::process::id());
                let binary = format!("/{}", spec::binary_path(b.spec.binary));
                let text =
                    containerd.ctr(&["run", "--rm", &b.reference, &id, &binary, "--help"])?;
                ensure!(text.contains("Usage"), "{binary} --help printed {text}");
                eprintln!("containers: {} --help runs", b.spec.name);
            }
        }
    }
    Ok(())
}

/// `linkerd-init` as the manifests run it, by runc on the image's root as containerd mounts it.
fn init(containerd: &Containerd, b: &Built) -> Result<()> {
    let init = b.rendered.container("linkerd-init")?;
    let uid = init.run_as_user.unwrap_or(65534);
    let bundle = containerd.dir.join("init-bundle");
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    let rootfs_str = rootfs.to_string_lossy().into_owned();
    containerd.ctr(&["images", "mount", "--rw", &b.reference, &rootfs_str])?;
    let result = (|| {
        let ns = Netns::new("init")?;
        let mut spec: Value = serde_json::from_str(&containerd.ctr(&["oci", "spec"])?)?;
        let mut args = init.command.clone();
        args.extend(init.args.iter().cloned());
        let process = &mut spec["process"];
        process["args"] = json!(args);
        process["env"] = json!([spec::PATH]);
        process["user"] = json!({"uid": uid, "gid": uid});
        process["noNewPrivileges"] = json!(true);
        for set in ["bounding", "effective", "permitted"] {
            if let Some(caps) = process["capabilities"][set].as_array_mut() {
                for cap in ["CAP_NET_ADMIN", "CAP_NET_RAW"] {
                    if !caps.iter().any(|c| c == cap) {
                        caps.push(json!(cap));
                    }
                }
            }
        }
        spec["root"] = json!({"path": "rootfs", "readonly": true});
        spec["linux"]["cgroupsPath"] = json!(format!("/mesh-images-{}", std::process::id()));
        if let Some(namespaces) = spec["linux"]["namespaces"].as_array_mut() {
            for n in namespaces.iter_mut() {
                if n["type"] == "network" {
                    n["path"] = json!(ns.path());
                }
            }
        }
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec)?,
        )?;
        let id = format!("init-{}", std::process::id());
        let text = output(
            Command::new("runc")
                .arg("--root")
                .arg(containerd.dir.join("runc"))
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(&id),
        )
        .context("linkerd-init in a container")?;
        let rules = output(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns.0,
                    "chroot",
                    &rootfs_str,
                    "iptables-nft-save",
                    "-t",
                    "nat",
                ])
                .env("PATH", spec::PATH.trim_start_matches("PATH=")),
        )?;
        ensure!(
            rules.contains("REDIRECT") && rules.contains(&format!("--uid-owner {}", b.user)),
            "linkerd-init ran ({text}) but left no redirect rules in its namespace:\n{rules}"
        );
        eprintln!(
            "containers: linkerd-init as {uid}, no-new-privs, NET_ADMIN+NET_RAW: rules in its netns"
        );
        Ok(())
    })();
    let unmount = containerd.ctr(&["images", "unmount", &rootfs_str]);
    result.and(unmount.map(|_| ()))
}

/// The proxy with `ctr run`: the image's user, no added capability, `/ready` answers.
fn proxy(containerd: &Containerd, b: &Built) -> Result<()> {
    let ns = Netns::new("proxy")?;
    let id = format!("proxy-{}", std::process::id());
    let with_ns = format!("network:{}", ns.path());
    containerd.ctr(&[
        "run",
        "-d",
        "--null-io",
        "--with-ns",
        &with_ns,
        &b.reference,
        &id,
    ])?;
    let result = (|| {
        let info: Value = serde_json::from_str(&containerd.ctr(&["containers", "info", &id])?)?;
        let process = &info["Spec"]["process"];
        ensure!(
            process["user"]["uid"] == b.user && process["noNewPrivileges"] == true,
            "proxy container runs as {} with noNewPrivileges {}",
            process["user"],
            process["noNewPrivileges"]
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = output(Command::new("ip").args([
                "netns",
                "exec",
                &ns.0,
                "curl",
                "-sf",
                "--max-time",
                "2",
                "http://127.0.0.1:4191/ready",
            ]));
            match ready {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(e.context("the proxy's /ready did not answer in 30s"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
        eprintln!(
            "containers: mesh-proxy as {} with no added capability: /ready answers",
            b.user
        );
        Ok(())
    })();
    let _ = containerd.ctr(&["tasks", "kill", "-s", "SIGKILL", &id]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while containerd.ctr(&["tasks", "delete", &id]).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = containerd.ctr(&["containers", "delete", &id]);
    result
}
