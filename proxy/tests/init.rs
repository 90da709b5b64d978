//! `mesh-proxy init` run for real: inside throwaway network namespaces as root, with both
//! iptables backends, and its failure modes as any user.
//!
//! The namespace tests need root and iptables. CI runs as root with iptables installed
//! (`cargo xtask deps`); elsewhere they fail and say why rather than pass without checking.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mesh-proxy");

fn init(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("init")
        .args(args)
        .output()
        .expect("run mesh-proxy init")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A network namespace deleted on drop, even when the test fails.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("mpinit{}{tag}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            text(&out.stderr)
        );
        Netns { name }
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs a command inside the namespace and returns its stdout; it must succeed.
    fn exec(&self, cmd: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .expect("run ip netns exec");
        assert!(
            out.status.success(),
            "{cmd:?} in {}: {}",
            self.name,
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Fails, saying why, unless this runs as root with the given binaries on PATH.
fn require_root_and(bins: &[&str]) {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default();
    assert_eq!(
        uid.trim(),
        "0",
        "this test needs root to create network namespaces and change iptables; CI runs as root"
    );
    for bin in bins {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {bin} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{bin} is missing; `cargo xtask deps` installs it (Debian package iptables)"
        );
    }
}

/// The `-A` lines of iptables-save, quotes removed, so they compare with the dry-run's words.
/// iptables-save groups rules by chain, so this sorts by chain and keeps each chain's order.
fn saved_rules(saved: &str) -> Vec<String> {
    by_chain(
        saved
            .lines()
            .filter(|l| l.starts_with("-A "))
            .map(|l| l.replace('"', "")),
    )
}

fn by_chain(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut lines: Vec<String> = lines.collect();
    lines.sort_by_key(|l| l.split(' ').nth(1).unwrap_or_default().to_string());
    lines
}

/// The `-A` rules the dry run prints for one binary, in the same form.
fn dry_run_rules(args: &[&str], bin: &str) -> Vec<String> {
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let out = init(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let prefix = format!("{bin} -t nat ");
    by_chain(
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter(|l| l.starts_with("-A "))
            .map(|l| l.trim_end_matches(" -w").to_string()),
    )
}

/// Installs, re-installs and changes the rules with one backend, checking iptables-save each
/// time: the saved rules are exactly the dry run's, a second run changes nothing, and a run
/// with other flags replaces the rules without duplicating the jumps.
fn check_backend(backend: &str) {
    let v4 = format!("iptables-{backend}");
    let v6 = format!("ip6tables-{backend}");
    let (v4_save, v6_save) = (format!("{v4}-save"), format!("{v6}-save"));
    require_root_and(&[&v4, &v4_save, &v6, &v6_save, "ip", "nsenter"]);
    let ns = Netns::new(&backend[..1]);
    let netns = ns.path();
    // -w: legacy iptables takes a machine-wide lock, and other tests run iptables meanwhile.
    let args = [
        "-w",
        "--netns",
        &netns,
        "--firewall-bin-path",
        &v4,
        "--firewall-save-bin-path",
        &v4_save,
        "--inbound-ports-to-ignore",
        "4190,4191,8000-8100",
        "--outbound-ports-to-ignore",
        "5432",
        "--subnets-to-ignore",
        "10.42.0.0/16,fd00:42::/64",
    ];

    let first = init(&args);
    assert!(first.status.success(), "first run: {}", text(&first.stderr));
    let saved_v4 = ns.exec(&[&v4_save, "-t", "nat"]);
    let saved_v6 = ns.exec(&[&v6_save, "-t", "nat"]);
    let nsenter = format!("nsenter --net={netns} -- {v4}");
    assert_eq!(
        saved_rules(&saved_v4),
        dry_run_rules(&args, &nsenter),
        "{saved_v4}"
    );
    let nsenter6 = format!("nsenter --net={netns} -- {v6}");
    assert_eq!(
        saved_rules(&saved_v6),
        dry_run_rules(&args, &nsenter6),
        "{saved_v6}"
    );
    for line in [
        "-A PREROUTING -m comment --comment proxy-init/install-proxy-init-prerouting -j PROXY_INIT_REDIRECT",
        "-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,8000:8100 -m comment --comment proxy-init/ignore-port-4190,4191,8000:8100 -j RETURN",
        "-A PROXY_INIT_REDIRECT -s 10.42.0.0/16 -m comment --comment proxy-init/ignore-subnet-10.42.0.0/16 -j RETURN",
        "-A PROXY_INIT_REDIRECT -p tcp -m comment --comment proxy-init/redirect-all-incoming-to-proxy-port -j REDIRECT --to-ports 4143",
        "-A OUTPUT -m comment --comment proxy-init/install-proxy-init-output -j PROXY_INIT_OUTPUT",
        "-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -m comment --comment proxy-init/ignore-proxy-user-id -j RETURN",
        "-A PROXY_INIT_OUTPUT -o lo -m comment --comment proxy-init/ignore-loopback -j RETURN",
        "-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 5432 -m comment --comment proxy-init/ignore-port-5432 -j RETURN",
        "-A PROXY_INIT_OUTPUT -p tcp -m comment --comment proxy-init/redirect-all-outgoing-to-proxy-port -j REDIRECT --to-ports 4140",
    ] {
        assert!(
            saved_rules(&saved_v4).iter().any(|l| l == line),
            "missing {line}\n{saved_v4}"
        );
    }
    assert!(saved_v6.contains("fd00:42::/64"), "{saved_v6}");
    assert!(
        !saved_v6.contains("10.42.0.0/16"),
        "an IPv4 subnet leaked into ip6tables\n{saved_v6}"
    );

    let second = init(&args);
    assert!(
        second.status.success(),
        "second run: {}",
        text(&second.stderr)
    );
    let said = text(&second.stdout);
    assert_eq!(said.matches("already in place").count(), 2, "{said}");
    assert!(
        !said.contains(" -A "),
        "the second run changed rules:\n{said}"
    );
    assert_eq!(
        saved_rules(&ns.exec(&[&v4_save, "-t", "nat"])),
        saved_rules(&saved_v4)
    );
    assert_eq!(
        saved_rules(&ns.exec(&[&v6_save, "-t", "nat"])),
        saved_rules(&saved_v6)
    );

    let mut changed = args.to_vec();
    let at = changed
        .iter()
        .position(|a| *a == "5432")
        .expect("5432 is in the flags");
    changed[at] = "22";
    let third = init(&changed);
    assert!(
        third.status.success(),
        "run with new flags: {}",
        text(&third.stderr)
    );
    let saved = saved_rules(&ns.exec(&[&v4_save, "-t", "nat"]));
    assert_eq!(saved, dry_run_rules(&changed, &nsenter), "{saved:#?}");
    assert_eq!(
        saved
            .iter()
            .filter(|l| l.ends_with("-j PROXY_INIT_REDIRECT"))
            .count(),
        1
    );
    assert_eq!(
        saved
            .iter()
            .filter(|l| l.ends_with("-j PROXY_INIT_OUTPUT"))
            .count(),
        1
    );
    assert!(
        saved.iter().any(|l| l.contains("--dports 22 ")),
        "{saved:#?}"
    );
    assert!(
        !saved.iter().any(|l| l.contains("--dports 5432 ")),
        "{saved:#?}"
    );
}

#[test]
fn installs_idempotently_with_iptables_nft() {
    check_backend("nft");
}

#[test]
fn installs_idempotently_with_iptables_legacy() {
    check_backend("legacy");
}

#[test]
fn a_missing_binary_fails_naming_the_command() {
    let out = init(&[
        "--ipv6=false",
        "--firewall-save-bin-path",
        "/nonexistent/iptables-save",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot run `/nonexistent/iptables-save -t nat`"),
        "{err}"
    );
}

#[test]
fn a_failing_iptables_command_is_shown_with_its_status() {
    // `true` as iptables-save reports an empty table; `false` as iptables fails the first change.
    let out = init(&[
        "--ipv6=false",
        "--firewall-bin-path",
        "false",
        "--firewall-save-bin-path",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("`false -t nat -N PROXY_INIT_REDIRECT` failed (exit status: 1)"),
        "{err}"
    );
    let said = text(&out.stdout);
    assert_eq!(
        said.trim(),
        "false -t nat -N PROXY_INIT_REDIRECT",
        "no command after the failing one"
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = init(&["--incoming-proxy-port", "http", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--incoming-proxy-port"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing is printed before the flags are valid"
    );

    let out = init(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--bogus"),
        "{}",
        text(&out.stderr)
    );

    let out = init(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--inbound-ports-to-ignore"));
}
