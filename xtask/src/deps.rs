//! System packages the tests and benchmarks need, installed from Debian and PyPI.
//!
//! A fresh machine lacks most of these. CI runs as root on a clean clone, so `cargo xtask ci`
//! installs what is missing before it runs anything that needs it.

use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{have, sh};

/// Debian packages the test suite needs, as (a binary it provides, the package).
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    ("curl", "curl"),
    // mesh-proxy's balancing tests drive HTTP/1 and HTTP/2 load while endpoints change.
    ("h2load", "nghttp2-client"),
    // mesh-proxy init and the network-namespace test: both iptables backends, ip netns, setpriv.
    ("iptables-legacy", "iptables"),
    ("ip", "iproute2"),
    ("setpriv", "util-linux"),
    // mesh-proxy's server-speaks-first test: a real SMTP server.
    ("aiosmtpd", "python3-aiosmtpd"),
    // mesh stat --watch and mesh top, driven under a real terminal.
    ("tmux", "tmux"),
    // mesh check's --wait spinner test runs mesh under a pseudo-terminal.
    ("script", "bsdutils"),
    // The Grafana dashboards' queries run in a real Prometheus.
    ("prometheus", "prometheus"),
    // mesh dashboard's page is rendered in a real headless browser.
    ("chromium", "chromium"),
    // cargo xtask images: Debian packages unpacked into the images' root filesystems.
    ("dpkg-deb", "dpkg"),
    ("chroot", "coreutils"),
    // cargo xtask images --containers: a throwaway containerd and runc run the images.
    ("containerd", "containerd"),
    ("runc", "runc"),
];

/// Python packages the checks need, as (the command it provides, the PyPI package).
pub const PIP_PACKAGES: &[(&str, &str)] = &[("kubernetes-validate", "kubernetes-validate==1.37.*")];

pub fn ensure_all() -> Result<()> {
    ensure_debian(TEST_PACKAGES)?;
    ensure_pip(PIP_PACKAGES)
}

/// Installs each missing package with apt-get. Needs root.
pub fn ensure_debian(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(bin, _)| !have(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing system packages {}; install them as root (apt-get install -y {})",
            missing.join(", "),
            missing.join(" ")
        );
    }
    let mut update = Command::new("apt-get");
    update.args(["update", "-qq"]);
    sh(&mut update)?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    sh(&mut install)
}

/// Installs each missing Python package with pip.
pub fn ensure_pip(wanted: &[(&str, &str)]) -> Result<()> {
    for (bin, pkg) in wanted {
        if have(bin) {
            continue;
        }
        let mut pip = Command::new("python3");
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            pkg,
        ]);
        sh(&mut pip)?;
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}
