//! One AdmissionReview in, one out. The injector never blocks an object because of its own
//! trouble: a request it cannot decode, a namespace it cannot read or a pod it cannot inject is
//! admitted unchanged, with a warning in the response.

use std::time::Instant;

use base64::Engine as _;
use mesh_inject::manual::{Context, Owner};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::Settings;
use super::decide::{self, Skip};
use super::events::{Recorder, Regarding, Severity};
use super::metrics::{Metrics, Outcome};
use super::namespaces::Namespaces;
use super::owners::ReplicaSets;

const REVIEW_VERSION: &str = "admission.k8s.io/v1";

/// Everything a review needs, shared by all connections.
pub struct Reviewer {
    pub settings: Settings,
    pub control_plane_namespace: String,
    /// `linkerd.io/created-by` on injected pods.
    pub created_by: String,
    /// The version injected proxies default to.
    pub version: String,
    pub namespaces: Namespaces,
    pub replica_sets: ReplicaSets,
    pub events: Recorder,
    pub metrics: Metrics,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: Option<String>,
    request: Option<RequestIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    object: Value,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    kind: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// What to answer: always allowed, with a patch or a warning or neither.
struct Answer {
    patch: Option<json_patch::Patch>,
    warning: Option<String>,
    outcome: Outcome,
}

impl Answer {
    fn unchanged(outcome: Outcome) -> Answer {
        Answer {
            patch: None,
            warning: None,
            outcome,
        }
    }
    fn warn(reason: &'static str, warning: String) -> Answer {
        Answer {
            patch: None,
            warning: Some(warning),
            outcome: Outcome::Error(reason),
        }
    }
}

impl Reviewer {
    /// Answers one AdmissionReview body with an AdmissionReview body.
    pub async fn review(&self, body: &[u8]) -> Vec<u8> {
        let started = Instant::now();
        let (api_version, uid, kind, answer) = match serde_json::from_slice::<ReviewIn>(body) {
            Ok(ReviewIn {
                api_version,
                request: Some(request),
            }) => {
                let answer = self.answer(&request).await;
                (api_version, request.uid, request.kind.kind, answer)
            }
            Ok(ReviewIn { api_version, .. }) => (
                api_version,
                String::new(),
                String::new(),
                Answer::warn(
                    "decode",
                    "mesh proxy-injector: the AdmissionReview has no request".to_owned(),
                ),
            ),
            Err(err) => {
                tracing::warn!(%err, "cannot decode an AdmissionReview");
                (
                    None,
                    String::new(),
                    String::new(),
                    Answer::warn(
                        "decode",
                        format!("mesh proxy-injector: cannot decode the AdmissionReview: {err}"),
                    ),
                )
            }
        };
        self.metrics
            .record(&kind, answer.outcome, started.elapsed().as_secs_f64());
        let patch = answer.patch.and_then(|p| match serde_json::to_vec(&p) {
            Ok(bytes) => Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            Err(err) => {
                tracing::warn!(%err, "cannot encode a patch");
                None
            }
        });
        let api_version = match api_version.as_deref() {
            Some(v @ ("admission.k8s.io/v1" | "admission.k8s.io/v1beta1")) => v,
            _ => REVIEW_VERSION,
        };
        let out = ReviewOut {
            api_version,
            kind: "AdmissionReview",
            response: ResponseOut {
                uid,
                allowed: true,
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
                warnings: answer.warning.into_iter().collect(),
            },
        };
        serde_json::to_vec(&out).unwrap_or_default()
    }

    async fn answer(&self, request: &RequestIn) -> Answer {
        if request.operation != "CREATE" {
            return Answer::unchanged(Outcome::Skipped("not_create"));
        }
        let namespace = request
            .namespace
            .as_deref()
            .or_else(|| request.object["metadata"]["namespace"].as_str())
            .unwrap_or("default");
        match request.kind.kind.as_str() {
            "Pod" => self.pod(&request.object, namespace, request.dry_run).await,
            "Service" => self.service(&request.object, namespace).await,
            _ => Answer::unchanged(Outcome::Skipped("unsupported_resource")),
        }
    }

    async fn pod(&self, pod: &Value, namespace: &str, dry_run: bool) -> Answer {
        let name = decide::display_name("Pod", pod);
        let ns = match self.namespaces.annotations(namespace).await {
            Ok(ns) => ns,
            Err(err) => {
                tracing::warn!(%err, pod = %name, namespace, "cannot read the namespace; admitted without the proxy");
                return Answer::warn(
                    "namespace",
                    format!(
                        "mesh proxy-injector: {name} admitted without the proxy: cannot read namespace {namespace}: {err}"
                    ),
                );
            }
        };
        let plan = match decide::decide(pod, &ns) {
            Ok(plan) => plan,
            Err(skips) => {
                let reasons = skips
                    .iter()
                    .map(Skip::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                tracing::info!(namespace, "skipped {name}: {reasons}");
                if !dry_run
                    && !skips.iter().all(|s| s.is_routine())
                    && let Some(owner) = direct_owner(pod, namespace)
                {
                    self.events.record(
                        owner,
                        Severity::Normal,
                        "InjectionSkipped",
                        format!("Linkerd sidecar proxy injection skipped: {reasons}"),
                    );
                }
                let first = skips.first().map_or("", |s| s.label());
                return Answer::unchanged(Outcome::Skipped(first));
            }
        };
        let owner = self.owner(pod, namespace).await;
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
        let (kind, owner_name) = match &owner {
            Some(o) => (o.kind.as_str(), o.name.as_str()),
            None => ("Pod", pod_name),
        };
        let context = Context {
            values: &self.settings.values,
            trust_anchors_pem: &self.settings.trust_anchors_pem,
            control_plane_namespace: &self.control_plane_namespace,
            cli_version: &self.version,
        };
        let injection = decide::injected(
            pod,
            &ns,
            plan,
            Owner {
                kind,
                name: owner_name,
                namespace,
            },
            &context,
            &self.created_by,
        );
        match injection {
            Ok(target) => {
                tracing::info!(namespace, "injection patch generated for: {name}");
                if let (false, Some(owner)) = (dry_run, owner) {
                    self.events.record(
                        owner,
                        Severity::Normal,
                        "Injected",
                        "Linkerd sidecar proxy injected".to_owned(),
                    );
                }
                Answer {
                    patch: Some(decide::patch(pod, &target)),
                    warning: None,
                    outcome: Outcome::Injected,
                }
            }
            Err(err) => {
                tracing::warn!(namespace, %err, "cannot inject {name}; admitted without the proxy");
                if let (false, Some(owner)) = (dry_run, owner) {
                    self.events.record(
                        owner,
                        Severity::Warning,
                        "InjectionFailed",
                        format!("Linkerd sidecar proxy injection failed: {err}"),
                    );
                }
                Answer::warn(
                    "inject",
                    format!("mesh proxy-injector: {name} admitted without the proxy: {err}"),
                )
            }
        }
    }

    async fn service(&self, service: &Value, namespace: &str) -> Answer {
        let ns = match self.namespaces.annotations(namespace).await {
            Ok(ns) => ns,
            Err(err) => {
                let name = decide::display_name("Service", service);
                tracing::warn!(%err, service = %name, namespace, "cannot read the namespace; admitted unchanged");
                return Answer::warn(
                    "namespace",
                    format!(
                        "mesh proxy-injector: {name} admitted unchanged: cannot read namespace {namespace}: {err}"
                    ),
                );
            }
        };
        match decide::annotated_service(service, &ns, &self.settings.values.proxy.opaque_ports) {
            Some(target) => Answer {
                patch: Some(decide::patch(service, &target)),
                warning: None,
                outcome: Outcome::Annotated,
            },
            None => Answer::unchanged(Outcome::Skipped("unchanged")),
        }
    }

    /// The workload that owns a pod: its controller, or for a ReplicaSet that a Deployment
    /// owns, the Deployment. If the ReplicaSet cannot be read, it is named instead.
    async fn owner(&self, pod: &Value, namespace: &str) -> Option<Regarding> {
        let direct = direct_owner(pod, namespace)?;
        if direct.kind != "ReplicaSet" {
            return Some(direct);
        }
        let owners = match self.replica_sets.owners(namespace, &direct.name).await {
            Ok(owners) => owners,
            Err(err) => {
                tracing::warn!(%err, "cannot name the pod's workload");
                return Some(direct);
            }
        };
        let parent = owners
            .into_iter()
            .find(|r| r.controller == Some(true) && r.kind == "Deployment");
        Some(match parent {
            Some(d) => Regarding {
                api_version: d.api_version,
                kind: d.kind,
                name: d.name,
                namespace: namespace.to_owned(),
                uid: Some(d.uid),
            },
            None => direct,
        })
    }
}

/// The pod's controller as its `ownerReferences` name it.
fn direct_owner(pod: &Value, namespace: &str) -> Option<Regarding> {
    let r = decide::controller_of(pod)?;
    Some(Regarding {
        api_version: r["apiVersion"].as_str().unwrap_or("").to_owned(),
        kind: r["kind"].as_str()?.to_owned(),
        name: r["name"].as_str()?.to_owned(),
        namespace: namespace.to_owned(),
        uid: r["uid"].as_str().map(str::to_owned),
    })
}
