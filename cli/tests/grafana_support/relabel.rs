//! Prometheus' Kubernetes pod discovery and target relabelling, enough to learn which labels a
//! scrape config gives a pod's series: the meta labels `role: pod` makes for each container
//! port, then the `relabel_configs` actions the config uses, with Prometheus' defaults
//! (`separator: ;`, `regex: (.*)` anchored at both ends, `replacement: $1`, `action: replace`).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

pub type LabelSet = BTreeMap<String, String>;

/// One job of a scrape config.
#[derive(Debug)]
pub struct Job {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    target_label: Option<String>,
    replacement: String,
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Replace,
    Keep,
    Drop,
    LabelMap,
    LabelDrop,
    LabelKeep,
}

/// The jobs of a Prometheus config (`scrape_configs:`), or an error naming what is not
/// understood.
pub fn jobs(yaml: &str) -> Result<Vec<Job>, String> {
    let config: Value = serde_saphyr::from_str(yaml).map_err(|e| format!("bad YAML: {e}"))?;
    let scrape = config["scrape_configs"]
        .as_array()
        .ok_or("no scrape_configs list")?;
    scrape
        .iter()
        .map(|job| {
            let name = job["job_name"].as_str().ok_or("a job without job_name")?;
            let rules = job["relabel_configs"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(rule)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("job {name}: {e}"))?;
            Ok(Job {
                name: name.to_string(),
                rules,
            })
        })
        .collect()
}

fn rule(v: &Value) -> Result<Rule, String> {
    let text = |key: &str| v[key].as_str().map(str::to_string);
    let action = match text("action").as_deref().unwrap_or("replace") {
        "replace" => Action::Replace,
        "keep" => Action::Keep,
        "drop" => Action::Drop,
        "labelmap" => Action::LabelMap,
        "labeldrop" => Action::LabelDrop,
        "labelkeep" => Action::LabelKeep,
        other => return Err(format!("action {other} is not simulated")),
    };
    let regex = text("regex").unwrap_or_else(|| "(.*)".to_string());
    let regex = Regex::new(&format!("^(?:{regex})$")).map_err(|e| format!("regex {regex}: {e}"))?;
    let source_labels = match &v["source_labels"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or("a non-string source label")
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("source_labels is {other}")),
    };
    let target_label = text("target_label");
    if action == Action::Replace && target_label.is_none() {
        return Err("a replace rule without target_label".into());
    }
    Ok(Rule {
        source_labels,
        separator: text("separator").unwrap_or_else(|| ";".into()),
        regex,
        target_label,
        replacement: text("replacement").unwrap_or_else(|| "$1".into()),
        action,
    })
}

impl Job {
    /// The labels of the target `meta` becomes, or `None` if a rule drops it. As in
    /// Prometheus, `job` is set first, `instance` defaults to the address, and labels starting
    /// with `__` are gone afterwards.
    pub fn relabel(&self, meta: &LabelSet) -> Option<LabelSet> {
        let mut labels = meta.clone();
        labels.insert("job".into(), self.name.clone());
        labels.insert("__metrics_path__".into(), "/metrics".into());
        labels.insert("__scheme__".into(), "http".into());
        for rule in &self.rules {
            if !rule.apply(&mut labels) {
                return None;
            }
        }
        if !labels.contains_key("instance") {
            let address = labels.get("__address__").cloned().unwrap_or_default();
            labels.insert("instance".into(), address);
        }
        labels.retain(|k, _| !k.starts_with("__"));
        Some(labels)
    }
}

impl Rule {
    /// Applies the rule; false means the target is dropped.
    fn apply(&self, labels: &mut LabelSet) -> bool {
        let value: Vec<&str> = self
            .source_labels
            .iter()
            .map(|l| labels.get(l).map(String::as_str).unwrap_or(""))
            .collect();
        let value = value.join(&self.separator);
        match self.action {
            Action::Keep => self.regex.is_match(&value),
            Action::Drop => !self.regex.is_match(&value),
            Action::Replace => {
                if let Some(caps) = self.regex.captures(&value) {
                    let mut target = String::new();
                    caps.expand(self.target_label.as_deref().unwrap_or(""), &mut target);
                    let mut new = String::new();
                    caps.expand(&self.replacement, &mut new);
                    if !target.is_empty() {
                        if new.is_empty() {
                            labels.remove(&target);
                        } else {
                            labels.insert(target, new);
                        }
                    }
                }
                true
            }
            Action::LabelMap => {
                let mut add = Vec::new();
                for (name, value) in labels.iter() {
                    if let Some(caps) = self.regex.captures(name) {
                        let mut new = String::new();
                        caps.expand(&self.replacement, &mut new);
                        add.push((new, value.clone()));
                    }
                }
                labels.extend(add);
                true
            }
            Action::LabelDrop => {
                labels.retain(|name, _| !self.regex.is_match(name));
                true
            }
            Action::LabelKeep => {
                labels.retain(|name, _| self.regex.is_match(name));
                true
            }
        }
    }
}

/// A pod as `kubernetes_sd_configs` with `role: pod` sees it: one set of meta labels per
/// declared container port, init containers included. `pod` is a Pod object as JSON, with
/// `status.podIP` and `status.phase`.
pub fn pod_targets(pod: &Value) -> Vec<LabelSet> {
    let meta = &pod["metadata"];
    let mut common = LabelSet::new();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    common.insert(
        "__meta_kubernetes_namespace".into(),
        text(&meta["namespace"]),
    );
    common.insert("__meta_kubernetes_pod_name".into(), text(&meta["name"]));
    common.insert(
        "__meta_kubernetes_pod_ip".into(),
        text(&pod["status"]["podIP"]),
    );
    common.insert(
        "__meta_kubernetes_pod_phase".into(),
        text(&pod["status"]["phase"]),
    );
    common.insert("__meta_kubernetes_pod_ready".into(), "true".into());
    for (kind, present) in [
        ("label", "labelpresent"),
        ("annotation", "annotationpresent"),
    ] {
        let map = meta[format!("{kind}s")]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in map {
            let k = sanitize(&k);
            common.insert(format!("__meta_kubernetes_pod_{kind}_{k}"), text(&v));
            common.insert(
                format!("__meta_kubernetes_pod_{present}_{k}"),
                "true".into(),
            );
        }
    }
    let ip = text(&pod["status"]["podIP"]);
    let mut targets = Vec::new();
    for (field, init) in [("initContainers", "true"), ("containers", "false")] {
        for c in pod["spec"][field]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for port in c["ports"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let number = port["containerPort"].as_u64().unwrap_or(0);
                let mut t = common.clone();
                t.insert("__address__".into(), format!("{ip}:{number}"));
                t.insert("__meta_kubernetes_pod_container_init".into(), init.into());
                t.insert(
                    "__meta_kubernetes_pod_container_name".into(),
                    text(&c["name"]),
                );
                t.insert(
                    "__meta_kubernetes_pod_container_image".into(),
                    text(&c["image"]),
                );
                t.insert(
                    "__meta_kubernetes_pod_container_port_name".into(),
                    text(&port["name"]),
                );
                t.insert(
                    "__meta_kubernetes_pod_container_port_number".into(),
                    number.to_string(),
                );
                t.insert(
                    "__meta_kubernetes_pod_container_port_protocol".into(),
                    "TCP".into(),
                );
                targets.push(t);
            }
        }
    }
    targets
}

/// Prometheus' label-name sanitising: anything but `[a-zA-Z0-9_]` becomes `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
