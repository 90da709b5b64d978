//! What goes into each image: Debian files picked by path, the binary, and how it runs.
//!
//! The images are assembled the way distroless images are: no package manager, no shell, only the
//! files the binaries load, unpacked from Debian bookworm's own packages. `images/<name>/Dockerfile`
//! copies exactly these paths too; a test compares the two lists.

/// A path taken from an unpacked Debian package, at the same place in the image. A directory is
/// taken whole; a symbolic link stays a link (its target is picked separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub package: &'static str,
    pub path: &'static str,
}

const fn pick(package: &'static str, path: &'static str) -> Pick {
    Pick { package, path }
}

/// What every Rust binary here loads: the dynamic loader, glibc's libc and libm, and libgcc_s
/// for unwinding. Shared by all images as one identical layer.
pub const BASE: &[Pick] = &[
    pick("libc6", "lib64/ld-linux-x86-64.so.2"),
    pick("libc6", "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    pick("libc6", "lib/x86_64-linux-gnu/libc.so.6"),
    pick("libc6", "lib/x86_64-linux-gnu/libm.so.6"),
    pick("libgcc-s1", "lib/x86_64-linux-gnu/libgcc_s.so.1"),
];

/// The files the base layer writes itself (from `images/etc/`), as (path in the image, file in
/// the repository).
pub const BASE_FILES: &[(&str, &str)] = &[
    ("etc/passwd", "images/etc/passwd"),
    ("etc/group", "images/etc/group"),
];

/// Empty directories every image has: `/tmp` for libraries that want one, `/run` where the
/// init container mounts its xtables lock volume.
pub const BASE_DIRS: &[(&str, u32)] = &[("run", 0o755), ("tmp", 0o1777)];

/// `mesh-proxy init` runs `iptables-nft` or `iptables-legacy` and the matching `-save` (the
/// manifests pass the names, found on PATH); `-restore` and the IPv6 names are there for
/// `--ipv6=true`. Both multi-call binaries carry file capabilities, see [`FILE_CAPS`].
pub const IPTABLES: &[Pick] = &[
    pick("iptables", "usr/sbin/xtables-nft-multi"),
    pick("iptables", "usr/sbin/xtables-legacy-multi"),
    pick("iptables", "usr/sbin/iptables-nft"),
    pick("iptables", "usr/sbin/iptables-nft-save"),
    pick("iptables", "usr/sbin/iptables-nft-restore"),
    pick("iptables", "usr/sbin/iptables-legacy"),
    pick("iptables", "usr/sbin/iptables-legacy-save"),
    pick("iptables", "usr/sbin/iptables-legacy-restore"),
    pick("iptables", "usr/sbin/ip6tables-nft"),
    pick("iptables", "usr/sbin/ip6tables-nft-save"),
    pick("iptables", "usr/sbin/ip6tables-nft-restore"),
    pick("iptables", "usr/sbin/ip6tables-legacy"),
    pick("iptables", "usr/sbin/ip6tables-legacy-save"),
    pick("iptables", "usr/sbin/ip6tables-legacy-restore"),
    // Match and target extensions (owner, REDIRECT, multiport…), loaded with dlopen.
    pick("iptables", "usr/lib/x86_64-linux-gnu/xtables"),
    pick("libxtables12", "usr/lib/x86_64-linux-gnu/libxtables.so.12"),
    pick(
        "libxtables12",
        "usr/lib/x86_64-linux-gnu/libxtables.so.12.7.0",
    ),
    pick("libip4tc2", "usr/lib/x86_64-linux-gnu/libip4tc.so.2"),
    pick("libip4tc2", "usr/lib/x86_64-linux-gnu/libip4tc.so.2.0.0"),
    pick("libip6tc2", "usr/lib/x86_64-linux-gnu/libip6tc.so.2"),
    pick("libip6tc2", "usr/lib/x86_64-linux-gnu/libip6tc.so.2.0.0"),
    pick("libnftnl11", "usr/lib/x86_64-linux-gnu/libnftnl.so.11"),
    pick("libnftnl11", "usr/lib/x86_64-linux-gnu/libnftnl.so.11.6.0"),
    pick("libmnl0", "usr/lib/x86_64-linux-gnu/libmnl.so.0"),
    pick("libmnl0", "usr/lib/x86_64-linux-gnu/libmnl.so.0.2.0"),
    pick(
        "libnetfilter-conntrack3",
        "usr/lib/x86_64-linux-gnu/libnetfilter_conntrack.so.3",
    ),
    pick(
        "libnetfilter-conntrack3",
        "usr/lib/x86_64-linux-gnu/libnetfilter_conntrack.so.3.8.0",
    ),
    pick(
        "libnfnetlink0",
        "usr/lib/x86_64-linux-gnu/libnfnetlink.so.0",
    ),
    pick(
        "libnfnetlink0",
        "usr/lib/x86_64-linux-gnu/libnfnetlink.so.0.2.0",
    ),
    // /etc/protocols and /etc/services, for names in rules.
    pick("netbase", "etc/protocols"),
    pick("netbase", "etc/services"),
];

/// Files that get file capabilities CAP_NET_ADMIN and CAP_NET_RAW, as (path, effective bit).
///
/// `linkerd-init` runs as uid 65534 with no-new-privs and NET_ADMIN, NET_RAW added. The runtime
/// hands those to the process before it execs `mesh-proxy`, but a non-root exec keeps only what
/// the file grants, and no-new-privs refuses file capabilities the process did not already hold.
/// So, as Linkerd's proxy-init image does for its own binary: `mesh-proxy` is permitted both
/// (it keeps them from the runtime across the exec, and passes them on to the iptables it runs),
/// and the xtables binaries are permitted and effective (iptables does not raise capabilities
/// itself). `mesh-proxy` gets no effective bit: a file whose effective capabilities are outside
/// the bounding set fails to exec, and the proxy container adds no capability.
pub const FILE_CAPS: &[(&str, bool)] = &[
    ("usr/sbin/xtables-nft-multi", true),
    ("usr/sbin/xtables-legacy-multi", true),
    ("usr/local/bin/mesh-proxy", false),
];

/// The capabilities `path` gets, if any.
pub fn file_caps(path: &str) -> Option<bool> {
    FILE_CAPS.iter().find(|(p, _)| *p == path).map(|(_, e)| *e)
}

/// CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
pub const NET_CAPS_MASK: u32 = (1 << 12) | (1 << 13);

/// Every Debian package an image takes files from.
pub fn packages(images: &[ImageSpec]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = BASE.iter().map(|p| p.package).collect();
    for image in images {
        out.extend(image.picks.iter().map(|p| p.package));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Where each image's reference and user come from in `mesh install`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The image of the control-plane container with this name, and its `runAsUser`.
    Container(&'static str),
    /// The proxy image's repository with its last path segment replaced, same tag.
    BesideProxy(&'static str),
}

#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The archive's name, `target/images/<name>.tar`, and the Dockerfile's directory.
    pub name: &'static str,
    /// The cargo package and binary, installed as `/usr/local/bin/<binary>`.
    pub package: &'static str,
    pub binary: &'static str,
    pub picks: &'static [Pick],
    pub source: Source,
    /// The user when `source` gives none.
    pub default_user: u32,
    /// A command that must run in the image root (as root) for the image to be usable.
    pub smoke: &'static [&'static [&'static str]],
}

/// The proxy's container name in every meshed pod, and the controller's in `linkerd-identity`.
pub const PROXY_CONTAINER: &str = "linkerd-proxy";
pub const CONTROLLER_CONTAINER: &str = "identity";

pub fn images() -> Vec<ImageSpec> {
    vec![
        ImageSpec {
            name: "mesh-proxy",
            package: "mesh-proxy",
            binary: "mesh-proxy",
            picks: IPTABLES,
            source: Source::Container(PROXY_CONTAINER),
            default_user: 2102,
            smoke: &[
                &["/usr/local/bin/mesh-proxy", "--help"],
                &["iptables-nft", "--version"],
                &["iptables-legacy", "--version"],
                &["iptables-nft-save", "--version"],
                &["iptables-legacy-save", "--version"],
            ],
        },
        ImageSpec {
            name: "mesh-controller",
            package: "mesh-controller",
            binary: "mesh-controller",
            picks: &[],
            source: Source::Container(CONTROLLER_CONTAINER),
            default_user: 2103,
            smoke: &[&["/usr/local/bin/mesh-controller", "--help"]],
        },
        ImageSpec {
            name: "mesh-demo",
            package: "mesh-demo",
            binary: "mesh-demo",
            picks: &[],
            source: Source::BesideProxy("mesh-demo"),
            default_user: 65534,
            smoke: &[&["/usr/local/bin/mesh-demo", "--help"]],
        },
    ]
}

/// PATH in every image: `mesh-proxy init` finds iptables through it, and Kubernetes resolves
/// `command: [mesh-proxy, init]` with it.
pub const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the binary goes.
pub fn binary_path(binary: &str) -> String {
    format!("usr/local/bin/{binary}")
}
