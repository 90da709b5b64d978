//! A fake Kubernetes API server for tests.
//!
//! It listens on `127.0.0.1` (an ephemeral port), speaks the real REST paths, and is good enough
//! for kube-rs and the real `kubectl` (get, apply, patch, delete, watch) to work against it. It
//! keeps objects as JSON in memory, serves discovery and a minimal OpenAPI v3, honours label and
//! field selectors and `limit`/`continue` pagination, streams watches, serves CRDs as new
//! resources, forwards the pod proxy and port-forward subresources to local addresses, and can act
//! as a kubelet so that workloads get Ready pods and Services get EndpointSlices.
//!
//! ```no_run
//! # fn main() -> Result<(), mesh_testkube::Error> {
//! let server = mesh_testkube::FakeKube::builder().kubelet(true).start()?;
//! server.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: emojivoto\n")?;
//! let dir = tempfile_dir();
//! let kubeconfig = server.write_kubeconfig(&dir)?;
//! // Run `kubectl --kubeconfig <kubeconfig> get ns` or build a kube::Client from it.
//! # let _ = kubeconfig;
//! # Ok(())
//! # }
//! # fn tempfile_dir() -> std::path::PathBuf { std::env::temp_dir() }
//! ```
//!
//! What a control plane relies on behaves as on a real API server (1.33):
//!
//! - **TokenReview**: [`FakeKube::issue_token`] makes a service-account token (creating the
//!   namespace and service account if missing); `POST
//!   /apis/authentication.k8s.io/v1/tokenreviews` authenticates it as
//!   `system:serviceaccount:<ns>:<sa>` with the intersection of the token's and the review's
//!   audiences (the API server's own, `https://kubernetes.default.svc.cluster.local`, when the
//!   review names none), and refuses unknown, [revoked](FakeKube::revoke_token) and orphaned
//!   tokens with the API server's error text.
//! - **Events** in `v1` and `events.k8s.io/v1` (kube-runtime's recorder creates, then merge-patches
//!   a series). They are stored apart: [`FakeKube::objects`] takes `"Event.events.k8s.io"` for the
//!   latter.
//! - **Namespaces** carry `kubernetes.io/metadata.name`; **Services** get a cluster IP,
//!   `clusterIPs`, IP family fields, and each port's `protocol` and `targetPort`.
//! - **Mutating admission webhooks**: every create (`POST`, [`FakeKube::create`],
//!   [`FakeKube::apply_yaml`], and the pods the fake controllers make) is sent to each matching
//!   `MutatingWebhookConfiguration` (rules, `namespaceSelector`, `objectSelector`), before the
//!   object is named, as an `AdmissionReview` v1 over HTTPS: `clientConfig.url`, or
//!   `clientConfig.service` routed with [`FakeKube::route_service`], the certificate checked
//!   against `caBundle` and `<service>.<namespace>.svc`. JSONPatches are applied, warnings become
//!   `Warning: 299` headers, denials and call failures (`failurePolicy`, `timeoutSeconds`) fail
//!   the create with the API server's status and message; [`FakeKube::admission_calls`] shows
//!   what was sent. Controller pods that a webhook selects appear shortly after their owner
//!   (poll for them): they are admitted by a worker, and a refused one leaves a
//!   `FailedCreate` event and is retried every second.
//! - **EndpointSlices** (kubelet mode): each Service with a selector gets `discovery.k8s.io/v1`
//!   slices of its pods, kept up to date as pods come, go or change readiness, as
//!   kube-controller-manager's controller does (named target ports resolved per pod).
//!
//! Bodies are JSON (YAML for server-side apply). kubectl's generators, such as `kubectl create
//! namespace x`, send protobuf and get a 415; `kubectl create -f` and `kubectl apply` send JSON.
//!
//! [`workspace::binary`] gives a test another binary of this workspace (the CLI's and the control
//! plane's tests start the real `mesh-proxy`), fresh, without building it twice.
//!
//! The server runs its own tokio runtime on a background thread, so synchronous tests that run
//! real binaries can use it as well as async ones. Dropping the handle stops it.

mod admission;
mod api;
mod discovery;
mod endpointslices;
mod kubelet;
mod patch;
mod portforward;
mod proxy;
mod resources;
mod selector;
mod server;
mod status;
mod store;
mod table;
mod time;
mod tokens;
mod watch;
pub mod workspace;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

pub use kubelet::NODE;
pub use server::Fault;
use server::{FaultRule, Shared, lock};
use store::{Denial, Part, State};

/// What can go wrong setting up or feeding the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener or the runtime could not be created.
    #[error("cannot start the fake API server")]
    Start(#[source] std::io::Error),
    /// A fixture file or directory could not be read.
    #[error("cannot read fixture {}", path.display())]
    ReadFixture {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A YAML stream did not parse.
    #[error("{origin}: invalid YAML: {message}")]
    Yaml { origin: String, message: String },
    /// The API refused an object, as it would refuse a client.
    #[error("{origin}: document {index}: {message}")]
    Rejected {
        origin: String,
        index: usize,
        message: String,
    },
    /// No object of that kind, namespace and name.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: String,
        namespace: String,
        name: String,
    },
    /// The kubeconfig could not be written.
    #[error("cannot write kubeconfig {}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Configures a [`FakeKube`] before it starts.
#[derive(Debug, Default)]
pub struct Builder {
    kubelet: bool,
    fixtures: Vec<(String, String)>,
    fixture_dirs: Vec<PathBuf>,
    version: Option<(u32, u32)>,
}

impl Builder {
    /// Act as a kubelet and controller manager: workloads get Ready pods and a status.
    pub fn kubelet(mut self, on: bool) -> Self {
        self.kubelet = on;
        self
    }

    /// Load every `*.yaml`/`*.yml` file in `dir` (sorted by name) at start.
    pub fn fixtures_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.fixture_dirs.push(dir.into());
        self
    }

    /// Load this YAML stream at start.
    pub fn fixture_yaml(mut self, yaml: impl Into<String>) -> Self {
        self.fixtures.push(("fixture".to_string(), yaml.into()));
        self
    }

    /// The Kubernetes version `/version` reports (default 1.33).
    pub fn version(mut self, major: u32, minor: u32) -> Self {
        self.version = Some((major, minor));
        self
    }

    pub fn start(self) -> Result<FakeKube, Error> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(Error::Start)?;
        listener.set_nonblocking(true).map_err(Error::Start)?;
        let addr = listener.local_addr().map_err(Error::Start)?;
        let mut state = State::new(false);
        if let Some(version) = self.version {
            state.server_version = version;
        }
        let shared = Arc::new(Shared::new(state, addr));
        // The server runs before the fixtures load, because a fixture's create may call an
        // admission webhook from the server's runtime. On an error the handle's drop stops it.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testkube")
            .enable_all()
            .build()
            .map_err(Error::Start)?;
        let handle = runtime.handle().clone();
        runtime.spawn(admission::pod_worker(shared.clone()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("testkube".into())
            .spawn(move || {
                runtime.block_on(server::serve(listener, serving, rx));
                // The runtime is dropped here, on its own thread, which ends open watches.
                drop(runtime);
            })
            .map_err(Error::Start)?;
        let kube = FakeKube {
            shared,
            addr,
            runtime: handle,
            shutdown: Some(tx),
            thread: Some(thread),
        };
        for dir in &self.fixture_dirs {
            kube.load_dir(dir)?;
        }
        for (origin, yaml) in &self.fixtures {
            kube.apply_yaml_from(origin, yaml)?;
        }
        if self.kubelet {
            let mut state = kube.shared.state();
            state.kubelet = true;
            kubelet::ensure_node(&mut state);
            kubelet::reconcile(&mut state);
        }
        Ok(kube)
    }
}

/// A running fake API server. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeKube {
    shared: Arc<Shared>,
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl FakeKube {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A server with no fixtures and no kubelet.
    pub fn start() -> Result<FakeKube, Error> {
        Builder::default().start()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig YAML for this server: one cluster, context and user named `testkube`, no
    /// credentials, namespace `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: testkube
  cluster:
    server: {url}
contexts:
- name: testkube
  context:
    cluster: testkube
    user: testkube
    namespace: default
current-context: testkube
users:
- name: testkube
  user: {{}}
preferences: {{}}
",
            url = self.url()
        )
    }

    /// Writes [`FakeKube::kubeconfig`] to `dir/kubeconfig` and returns that path.
    pub fn write_kubeconfig(&self, dir: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let path = dir.as_ref().join("kubeconfig");
        std::fs::write(&path, self.kubeconfig()).map_err(|source| Error::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Creates or replaces every object in a YAML stream (`---`-separated, `kind: List` too),
    /// creating missing namespaces on the way. Returns the stored objects.
    ///
    /// Creations go through mutating admission webhooks as a `POST` does, and this call blocks
    /// its thread while they answer: a webhook served on the same current-thread runtime as the
    /// caller cannot answer (the call then times out). Serve it from another thread, or use a
    /// multi-thread runtime.
    pub fn apply_yaml(&self, yaml: &str) -> Result<Vec<Value>, Error> {
        self.apply_yaml_from("yaml", yaml)
    }

    /// Like [`FakeKube::apply_yaml`], for a file.
    pub fn apply_file(&self, path: impl AsRef<Path>) -> Result<Vec<Value>, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFixture {
            path: path.to_path_buf(),
            source,
        })?;
        self.apply_yaml_from(&path.display().to_string(), &text)
    }

    fn load_dir(&self, dir: &Path) -> Result<(), Error> {
        let read_err = |source| Error::ReadFixture {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        files.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
        files.sort();
        for file in files {
            self.apply_file(&file)?;
        }
        Ok(())
    }

    fn apply_yaml_from(&self, origin: &str, yaml: &str) -> Result<Vec<Value>, Error> {
        // Fixtures are trusted and can be large (thousands of pods), so the parser's default
        // budget for untrusted input is lifted.
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_documents: usize::MAX,
                max_nodes: usize::MAX,
                max_events: usize::MAX,
                max_total_scalar_bytes: usize::MAX,
                max_reader_input_bytes: None,
            },
        };
        let docs: Vec<Value> =
            serde_saphyr::from_multiple_with_options(yaml, options).map_err(|e| Error::Yaml {
                origin: origin.to_string(),
                message: e.to_string(),
            })?;
        let mut objects = Vec::new();
        for doc in docs {
            match doc.get("items").and_then(Value::as_array) {
                Some(items) if doc["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                    objects.extend(items.iter().cloned())
                }
                _ => objects.push(doc),
            }
        }
        let mut stored = Vec::new();
        for (index, obj) in objects.into_iter().enumerate() {
            let rejected = |message: String| Error::Rejected {
                origin: origin.to_string(),
                index,
                message,
            };
            let mut state = self.shared.state();
            let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
            let kind = obj["kind"].as_str().unwrap_or("");
            let rt = state
                .registry
                .by_kind(&api_version, kind)
                .cloned()
                .ok_or_else(|| rejected(format!("no resource type for {api_version} {kind}")))?;
            let ns = if rt.namespaced {
                let ns = obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_string();
                state.ensure_namespace(&ns);
                ns
            } else {
                String::new()
            };
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let result = match state.get(&rt.key(), &ns, name) {
                Some(_) => {
                    let name = name.to_string();
                    let mut obj = obj.clone();
                    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("resourceVersion");
                    }
                    let status = obj.get("status").cloned();
                    let main = state.update(&rt, &ns, &name, obj, Part::Main, false);
                    match (main, status) {
                        (Ok(_), Some(status)) => state.update(
                            &rt,
                            &ns,
                            &name,
                            json!({ "status": status }),
                            Part::Status,
                            false,
                        ),
                        (other, _) => other,
                    }
                }
                None => {
                    let version = resources::split_api_version(&api_version).1;
                    let attrs =
                        admission::Attributes::create(&rt, version, &ns, admission::admin_user());
                    let plan = if admission::has_configurations(&state) {
                        admission::plan(&state, &attrs)
                    } else {
                        admission::Plan::default()
                    };
                    if plan.is_empty() {
                        state.create(&rt, &ns, obj, false)
                    } else {
                        // Webhooks are called without the lock, as for a POST.
                        drop(state);
                        let mut obj = obj;
                        if rt.namespaced {
                            obj["metadata"]["namespace"] = json!(ns);
                        }
                        admission::admit_blocking(&self.runtime, &self.shared, attrs, plan, obj)
                            .and_then(|admitted| {
                                self.shared.state().create(&rt, &ns, admitted.object, false)
                            })
                    }
                }
            };
            let obj = result.map_err(|e| rejected(e.message))?;
            stored.push(obj.value.clone());
        }
        Ok(stored)
    }

    /// Creates one object through the same path as a POST, creating its namespace if missing.
    pub fn create(&self, obj: Value) -> Result<Value, Error> {
        let yaml = serde_json::to_string(&obj).unwrap_or_default();
        let mut out = self.apply_yaml_from("object", &yaml)?;
        Ok(out.pop().unwrap_or(Value::Null))
    }

    /// Every object of a kind (`"Pod"`, `"Deployment"`, a CRD's kind), in one namespace or all,
    /// ordered by namespace and name.
    pub fn objects(&self, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let state = self.shared.state();
        let Some(rt) = state.registry.by_kind_name(kind).cloned() else {
            return Vec::new();
        };
        state
            .list(&rt.key(), namespace)
            .iter()
            .map(|o| o.value.clone())
            .collect()
    }

    /// One object by kind, namespace (`""` for cluster-scoped) and name.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = self.shared.state();
        let rt = state.registry.by_kind_name(kind)?.clone();
        state
            .get(&rt.key(), namespace, name)
            .map(|o| o.value.clone())
    }

    /// Deletes one object and what it owns.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> Result<(), Error> {
        let not_found = || Error::NotFound {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let mut state = self.shared.state();
        let rt = state
            .registry
            .by_kind_name(kind)
            .cloned()
            .ok_or_else(not_found)?;
        state
            .delete(&rt, namespace, name, false)
            .map_err(|_| not_found())?;
        Ok(())
    }

    /// Changes an object's `status` with `edit`, as a controller would.
    pub fn edit_status(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<(), Error> {
        let not_found = || Error::NotFound {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let mut state = self.shared.state();
        let rt = state
            .registry
            .by_kind_name(kind)
            .cloned()
            .ok_or_else(not_found)?;
        let obj = state
            .get(&rt.key(), namespace, name)
            .ok_or_else(not_found)?;
        let mut next = obj.value.clone();
        if !next["status"].is_object() {
            next["status"] = json!({});
        }
        edit(&mut next["status"]);
        state
            .update(&rt, namespace, name, next, Part::Status, false)
            .map_err(|_| not_found())?;
        Ok(())
    }

    /// Marks every container of a pod (and the pod) Ready or not.
    pub fn set_pod_ready(&self, namespace: &str, pod: &str, ready: bool) -> Result<(), Error> {
        self.edit_status("Pod", namespace, pod, |status| {
            set_ready(status, None, ready);
        })
    }

    /// Marks one container (regular or init) Ready or not; the pod follows.
    pub fn set_container_ready(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        ready: bool,
    ) -> Result<(), Error> {
        self.edit_status("Pod", namespace, pod, |status| {
            set_ready(status, Some(container), ready);
        })
    }

    /// Forwards `/api/v1/namespaces/NS/pods/POD:PORT/proxy/…` to `target`. A request without a
    /// port goes to the first registered one. Port forwarding
    /// (`/api/v1/namespaces/NS/pods/POD/portforward?ports=PORT`, over a WebSocket with the
    /// kubelet's `v4.channel.k8s.io` protocol) reaches the same address; an unregistered port
    /// gets the kubelet's "connection refused" error on the port's error channel.
    pub fn set_pod_proxy(&self, namespace: &str, pod: &str, port: u16, target: SocketAddr) {
        let mut proxies = lock(&self.shared.proxies);
        let entry = proxies
            .entry((namespace.to_string(), pod.to_string()))
            .or_default();
        entry.retain(|(p, _)| *p != port);
        entry.push((port, target));
    }

    /// A service-account token for `namespace/service_account`, as a pod would get one projected
    /// with these audiences (none: the API server's own, `https://kubernetes.default.svc.cluster.local`).
    /// The namespace and service account are created if missing. `TokenReview`s authenticate it
    /// as `system:serviceaccount:<namespace>:<service_account>` while the service account exists
    /// (with the same uid) and the token is not revoked.
    pub fn issue_token(
        &self,
        namespace: &str,
        service_account: &str,
        audiences: &[&str],
    ) -> String {
        tokens::issue(
            &mut self.shared.state(),
            namespace,
            service_account,
            audiences,
        )
    }

    /// Makes later `TokenReview`s of `token` fail, as if it had expired. Returns whether the
    /// server had issued it.
    pub fn revoke_token(&self, token: &str) -> bool {
        tokens::revoke(&mut self.shared.state(), token)
    }

    /// SelfSubjectAccessReviews for this verb, group and resource answer "denied"; `"*"` matches
    /// anything.
    pub fn deny_access(&self, verb: &str, group: &str, resource: &str) {
        self.shared.state().denials.push(Denial {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
        });
    }

    /// Requests whose path contains `path_contains` get `fault`, until [`FakeKube::clear_faults`].
    pub fn inject_fault(&self, path_contains: &str, fault: Fault) {
        lock(&self.shared.faults).push(FaultRule {
            path_contains: path_contains.to_string(),
            fault,
        });
    }

    /// Shorthand for a 500 on every request whose path contains `path_contains`.
    pub fn fail_requests(&self, path_contains: &str) {
        self.inject_fault(path_contains, Fault::Status(500));
    }

    /// Shorthand for delaying every request.
    pub fn delay_requests(&self, delay: Duration) {
        self.inject_fault("/", Fault::Delay(delay));
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state().resource_version()
    }

    /// Sends the server's own calls to `port` of Service `namespace/service` (admission webhooks
    /// with `clientConfig.service`) to `target`, where the test listens. The TLS name checked is
    /// still `<service>.<namespace>.svc`. A call to a Service that exists but has no route fails
    /// as one without endpoints does.
    pub fn route_service(&self, namespace: &str, service: &str, port: u16, target: SocketAddr) {
        lock(&self.shared.routes)
            .insert((namespace.to_string(), service.to_string(), port), target);
    }

    /// Every `AdmissionReview` request sent to a webhook so far, oldest first (at most 10 000).
    pub fn admission_calls(&self) -> Vec<Value> {
        lock(&self.shared.admission_calls).clone()
    }
}

fn set_ready(status: &mut Value, only: Option<&str>, ready: bool) {
    let mut all_ready = true;
    for field in ["containerStatuses", "initContainerStatuses"] {
        if let Some(list) = status.get_mut(field).and_then(Value::as_array_mut) {
            for c in list.iter_mut() {
                let is_sidecar_or_main =
                    field == "containerStatuses" || c.pointer("/state/running").is_some();
                if only.is_none_or(|name| c["name"] == name) {
                    c["ready"] = json!(ready);
                }
                if is_sidecar_or_main && c["ready"] != json!(true) {
                    all_ready = false;
                }
            }
        }
    }
    let pod_ready = if only.is_some() { all_ready } else { ready };
    let text = if pod_ready { "True" } else { "False" };
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions.iter_mut() {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                c["status"] = json!(text);
            }
        }
    }
}
