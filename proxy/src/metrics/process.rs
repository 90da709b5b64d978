//! `process_*` metrics from /proc, and `proxy_build_info`.

use mesh_names::metrics as m;
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::resource::{Resource, getrlimit};
use nix::unistd::{SysconfVar, sysconf};

#[derive(Debug)]
pub struct Process {
    start_time: SystemTime,
}

impl Default for Process {
    fn default() -> Self {
        Process {
            start_time: SystemTime::now(),
        }
    }
}

impl Process {
    pub fn render(&self, out: &mut String) {
        let start = self
            .start_time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        gauge(
            out,
            m::PROCESS_START_TIME_SECONDS,
            "Time that the process started (in seconds since the UNIX epoch)",
            &start.to_string(),
        );
        if let Some((cpu, rss, vsz)) = stat() {
            counter(
                out,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                &cpu.to_string(),
            );
            gauge(
                out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &rss.to_string(),
            );
            gauge(
                out,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                &vsz.to_string(),
            );
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let open = fds.count();
            gauge(
                out,
                "process_open_fds",
                "Number of open file descriptors.",
                &open.to_string(),
            );
        }
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            gauge(
                out,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                &soft.to_string(),
            );
        }
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let _ = writeln!(out, "# HELP proxy_build_info Proxy build info");
        let _ = writeln!(out, "# TYPE proxy_build_info gauge");
        let _ = writeln!(
            out,
            "proxy_build_info{{version=\"{}\",git_sha=\"{}\",profile=\"{profile}\",vendor=\"mesh\"}} 1",
            env!("CARGO_PKG_VERSION"),
            option_env!("MESH_GIT_SHA").unwrap_or("unknown"),
        );
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn counter(out: &mut String, name: &str, help: &str, value: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// CPU seconds, resident bytes and virtual bytes from /proc/self/stat.
fn stat() -> Option<(f64, u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 of the man page is fields[0] here; utime is 14, stime 15, vsize 23, rss 24.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let vsize: u64 = fields.get(20)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let page = sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    Some(((utime + stime) as f64 / ticks, rss_pages * page, vsize))
}
