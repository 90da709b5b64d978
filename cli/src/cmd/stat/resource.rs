//! Resource types and the `TYPE [NAME…]` / `TYPE/NAME…` arguments, as Linkerd spells them.

use std::fmt;

use mesh_names::metrics as m;

/// A kind of resource `mesh stat` can report on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    // Declared in Linkerd's display order: alphabetical by canonical name.
    Authority,
    CronJob,
    DaemonSet,
    Deployment,
    Job,
    Namespace,
    Pod,
    ReplicaSet,
    ReplicationController,
    Service,
    StatefulSet,
}

impl Kind {
    /// What `all` stands for.
    pub const ALL: [Kind; 9] = [
        Kind::CronJob,
        Kind::DaemonSet,
        Kind::Deployment,
        Kind::Job,
        Kind::Pod,
        Kind::ReplicaSet,
        Kind::ReplicationController,
        Kind::Service,
        Kind::StatefulSet,
    ];

    /// The name in JSON output (`kind`) and in metric labels (`dst_<name>`).
    pub fn canonical(self) -> &'static str {
        match self {
            Kind::Authority => "authority",
            Kind::CronJob => "cronjob",
            Kind::DaemonSet => "daemonset",
            Kind::Deployment => "deployment",
            Kind::Job => "job",
            Kind::Namespace => "namespace",
            Kind::Pod => "pod",
            Kind::ReplicaSet => "replicaset",
            Kind::ReplicationController => "replicationcontroller",
            Kind::Service => "service",
            Kind::StatefulSet => "statefulset",
        }
    }

    /// The prefix of names in a table that mixes kinds, e.g. `deploy/web`.
    pub fn short(self) -> &'static str {
        match self {
            Kind::Authority => "au",
            Kind::CronJob => "cronjob",
            Kind::DaemonSet => "ds",
            Kind::Deployment => "deploy",
            Kind::Job => "job",
            Kind::Namespace => "ns",
            Kind::Pod => "po",
            Kind::ReplicaSet => "rs",
            Kind::ReplicationController => "rc",
            Kind::Service => "svc",
            Kind::StatefulSet => "sts",
        }
    }

    /// The outbound metric label that names a destination of this kind.
    pub fn dst_label(self) -> &'static str {
        match self {
            Kind::Authority => m::AUTHORITY,
            Kind::CronJob => m::DST_CRONJOB,
            Kind::DaemonSet => m::DST_DAEMONSET,
            Kind::Deployment => m::DST_DEPLOYMENT,
            Kind::Job => m::DST_JOB,
            Kind::Namespace => m::DST_NAMESPACE,
            Kind::Pod => m::DST_POD,
            Kind::ReplicaSet => m::DST_REPLICASET,
            Kind::ReplicationController => m::DST_REPLICATIONCONTROLLER,
            Kind::Service => m::DST_SERVICE,
            Kind::StatefulSet => m::DST_STATEFULSET,
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Some(match text.to_ascii_lowercase().as_str() {
            "au" | "authority" | "authorities" => Kind::Authority,
            "cj" | "cronjob" | "cronjobs" => Kind::CronJob,
            "ds" | "daemonset" | "daemonsets" => Kind::DaemonSet,
            "deploy" | "deployment" | "deployments" => Kind::Deployment,
            "job" | "jobs" => Kind::Job,
            "ns" | "namespace" | "namespaces" => Kind::Namespace,
            "po" | "pod" | "pods" => Kind::Pod,
            "rs" | "replicaset" | "replicasets" => Kind::ReplicaSet,
            "rc" | "replicationcontroller" | "replicationcontrollers" => {
                Kind::ReplicationController
            }
            "svc" | "service" | "services" => Kind::Service,
            "sts" | "statefulset" | "statefulsets" => Kind::StatefulSet,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical())
    }
}

/// One kind, and the names asked for (none: every resource of the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    pub names: Vec<String>,
}

const VALID: &str = "valid types: deploy, sts, ds, rs, rc, job, cronjob, po, ns, svc, au, all";

/// Reads `TYPE [NAME…]`, `all`, or `TYPE/NAME…` (a `TYPE/` alone means every one of that
/// type). Targets of one kind are merged.
pub fn parse_targets(args: &[String]) -> Result<Vec<Target>, String> {
    let Some(first) = args.first() else {
        return Err(format!("name a resource type, e.g. deploy; {VALID}"));
    };
    if first.contains('/') {
        let mut asked: Vec<(Kind, Option<&str>)> = Vec::new();
        for arg in args {
            let Some((kind, name)) = arg.split_once('/') else {
                return Err(format!(
                    "{arg:?}: mix no TYPE/NAME and TYPE NAME forms; write every resource as TYPE/NAME"
                ));
            };
            let kind = parse_kind(kind)?;
            if name.contains('/') {
                return Err(format!("{arg:?} is not TYPE/NAME"));
            }
            asked.push((kind, (!name.is_empty()).then_some(name)));
        }
        let mut targets: Vec<Target> = Vec::new();
        for &(kind, _) in &asked {
            if targets.iter().any(|t| t.kind == kind) {
                continue;
            }
            let of_kind = asked.iter().filter(|(k, _)| *k == kind);
            // `deploy/ deploy/web` asks for every deployment.
            let every = of_kind.clone().any(|(_, name)| name.is_none());
            let mut names: Vec<String> = Vec::new();
            if !every {
                for name in of_kind.filter_map(|(_, name)| *name) {
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_string());
                    }
                }
            }
            targets.push(Target { kind, names });
        }
        return Ok(targets);
    }
    if first.eq_ignore_ascii_case("all") {
        if args.len() > 1 {
            return Err("\"all\" takes no names".to_string());
        }
        return Ok(Kind::ALL
            .iter()
            .map(|&kind| Target {
                kind,
                names: Vec::new(),
            })
            .collect());
    }
    let kind = parse_kind(first)?;
    let mut names: Vec<String> = Vec::new();
    for name in &args[1..] {
        if name.contains('/') {
            return Err(format!(
                "{name:?}: mix no TYPE NAME and TYPE/NAME forms; write every resource as TYPE/NAME"
            ));
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(vec![Target { kind, names }])
}

/// Reads `TYPE/NAME` for `--from` and `--to`.
pub fn parse_one(text: &str) -> Result<(Kind, String), String> {
    match text.split_once('/') {
        Some((kind, name)) if !name.is_empty() && !name.contains('/') => {
            Ok((parse_kind(kind)?, name.to_string()))
        }
        _ => Err(format!("{text:?} is not TYPE/NAME, e.g. deploy/web")),
    }
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    Kind::parse(text).ok_or_else(|| format!("unknown resource type {text:?}; {VALID}"))
}
