//! The object store: every object by type, namespace and name, a global resourceVersion, and the
//! log of changes that watches replay.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::resources::{Registry, ResourceKey, ResourceType};
use crate::status::ApiError;
use crate::time;

/// How many changes watches can replay. Older resourceVersions get 410 Gone.
const EVENT_LOG: usize = 50_000;

/// A stored object and its JSON, serialized once when it is written.
#[derive(Debug)]
pub struct Object {
    pub value: Value,
    pub json: Bytes,
}

impl Object {
    pub fn new(value: Value) -> Arc<Object> {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Arc::new(Object { value, json })
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn namespace(&self) -> &str {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn uid(&self) -> &str {
        self.value
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub key: ResourceKey,
    pub kind: EventType,
    pub object: Arc<Object>,
    /// The object before a modification, so a watch with a selector can tell an object leaving
    /// its selection from one changing within it.
    pub old: Option<Arc<Object>>,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but `status`, for types with a status subresource.
    Main,
    /// Only `status`.
    Status,
}

/// A SelfSubjectAccessReview answer the test wants to be "no".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub verb: String,
    pub group: String,
    pub resource: String,
}

/// What a new watch gets: the logged changes since its version, then the live ones.
pub type Subscription = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

type Objects = BTreeMap<(String, String), Arc<Object>>;

/// Everything behind the server's lock.
#[derive(Debug)]
pub struct State {
    pub registry: Registry,
    rv: u64,
    next_id: u64,
    objects: HashMap<ResourceKey, Objects>,
    events: VecDeque<Arc<Event>>,
    /// The resourceVersion of the newest event no longer in the log.
    forgotten: u64,
    tx: broadcast::Sender<Arc<Event>>,
    pub kubelet: bool,
    /// Set while the kubelet reconciles, so its own writes don't start another round.
    pub reconciling: bool,
    pub denials: Vec<Denial>,
    pub server_version: (u32, u32),
    /// Service-account tokens this server issued, by token.
    pub tokens: HashMap<String, crate::tokens::Token>,
    /// Pods the fake controllers want, waiting for admission webhooks.
    pub pending_pods: Vec<crate::admission::PendingPod>,
    /// Wakes the worker that admits [`State::pending_pods`].
    pub pod_work: Arc<tokio::sync::Notify>,
}

impl State {
    pub fn new(kubelet: bool) -> State {
        let (tx, _) = broadcast::channel(16_384);
        let mut state = State {
            registry: Registry::default(),
            rv: 1000,
            next_id: 0,
            objects: HashMap::new(),
            events: VecDeque::new(),
            // History before the server started is gone, as if compacted.
            forgotten: 1000,
            tx,
            kubelet,
            reconciling: false,
            denials: Vec::new(),
            server_version: (1, 33),
            tokens: HashMap::new(),
            pending_pods: Vec::new(),
            pod_work: Arc::new(tokio::sync::Notify::new()),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            state.ensure_namespace(ns);
        }
        if kubelet {
            crate::kubelet::ensure_node(&mut state);
        }
        state
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// A fresh number for names, UIDs and addresses.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn get(&self, key: &ResourceKey, ns: &str, name: &str) -> Option<Arc<Object>> {
        self.objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of one type, in one namespace or all, ordered by namespace then name.
    pub fn list(&self, key: &ResourceKey, ns: Option<&str>) -> Vec<Arc<Object>> {
        let Some(objects) = self.objects.get(key) else {
            return Vec::new();
        };
        match ns {
            None => objects.values().cloned().collect(),
            Some(ns) => objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, o)| o.clone())
                .collect(),
        }
    }

    /// Objects after `start` (exclusive), in order: the page that follows a continue token.
    pub fn list_after(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        start: (String, String),
    ) -> impl Iterator<Item = Arc<Object>> + '_ {
        let ns = ns.map(str::to_string);
        self.objects
            .get(key)
            .into_iter()
            .flat_map(move |objects| {
                objects.range((
                    std::ops::Bound::Excluded(start.clone()),
                    std::ops::Bound::Unbounded,
                ))
            })
            .take_while(move |((n, _), _)| ns.as_ref().is_none_or(|ns| n == ns))
            .map(|(_, o)| o.clone())
    }

    pub fn subscribe(&self, key: &ResourceKey, since: u64) -> Result<Subscription, ApiError> {
        if since < self.forgotten {
            return Err(ApiError::gone(format!(
                "too old resource version: {since} ({})",
                self.forgotten + 1
            )));
        }
        let backlog = self
            .events
            .iter()
            .filter(|e| e.rv > since && e.key == *key)
            .cloned()
            .collect();
        Ok((backlog, self.tx.subscribe()))
    }

    pub fn ensure_namespace(&mut self, ns: &str) {
        let key = core("namespaces");
        if ns.is_empty() || self.get(&key, "", ns).is_some() {
            return;
        }
        let rt = self.type_of(&key);
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        let _ = self.create(&rt, "", obj, false);
    }

    pub fn type_of(&self, key: &ResourceKey) -> ResourceType {
        self.registry
            .by_key(key)
            .cloned()
            .unwrap_or_else(|| panic!("{key:?} is a built-in type"))
    }

    /// POST: stores a new object, filling in what the server owns.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Object>, ApiError> {
        let ns = self.check_namespace(rt, ns, &obj)?;
        let meta = metadata(&mut obj)?;
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let id = self.next_id();
                    format!("{prefix}{}", random_suffix(id))
                }
                _ => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ));
                }
            },
        };
        validate_name(rt, &name)?;
        if self.get(&rt.key(), &ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        let id = self.next_id();
        let meta = metadata(&mut obj)?;
        meta.insert("name".into(), json!(name));
        if rt.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(uid(id)));
        meta.insert("creationTimestamp".into(), json!(time::now()));
        meta.insert("generation".into(), json!(1));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        set_type_meta(rt, &mut obj);
        self.defaults(rt, &mut obj)?;
        if dry_run {
            return Ok(Object::new(obj));
        }
        let stored = self.commit(rt, &ns, &name, obj, EventType::Added, None);
        self.after_write(rt, &stored, EventType::Added);
        Ok(stored)
    }

    /// PUT: replaces an object, keeping what the server owns.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        part: Part,
        dry_run: bool,
    ) -> Result<Arc<Object>, ApiError> {
        let old = self
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        let meta = metadata(&mut obj)?;
        if let Some(body_name) = meta.get("name").and_then(Value::as_str)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = meta.get("resourceVersion").and_then(Value::as_str)
            && !rv.is_empty()
            && rv
                != old.value["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
        {
            return Err(ApiError::conflict(&rt.group, &rt.plural, name));
        }
        let mut next = match part {
            Part::Status => {
                let mut next = old.value.clone();
                match obj.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        if let Some(m) = next.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                next
            }
            Part::Main => {
                let mut next = obj;
                if rt.has_subresource("status") {
                    match old.value.get("status") {
                        Some(status) => next["status"] = status.clone(),
                        None => {
                            if let Some(m) = next.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                let meta = metadata(&mut next)?;
                for owned in ["uid", "creationTimestamp", "generation", "namespace"] {
                    match old.value["metadata"].get(owned) {
                        Some(v) => meta.insert(owned.into(), v.clone()),
                        None => meta.remove(owned),
                    };
                }
                meta.insert("name".into(), json!(name));
                set_type_meta(rt, &mut next);
                if spec_of(&next) != spec_of(&old.value) {
                    let generation = old.value["metadata"]["generation"].as_i64().unwrap_or(1);
                    next["metadata"]["generation"] = json!(generation + 1);
                }
                self.defaults(rt, &mut next)?;
                next
            }
        };
        if next == old.value {
            return Ok(old);
        }
        if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        if dry_run {
            return Ok(Object::new(next));
        }
        let stored = self.commit(rt, ns, name, next, EventType::Modified, Some(old));
        self.after_write(rt, &stored, EventType::Modified);
        Ok(stored)
    }

    /// DELETE: removes an object, then what it owns, as the garbage collector would.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Arc<Object>, ApiError> {
        let old = self
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if dry_run {
            return Ok(old);
        }
        self.remove(rt, &old);
        self.after_write(rt, &old, EventType::Deleted);
        Ok(old)
    }

    fn remove(&mut self, rt: &ResourceType, old: &Arc<Object>) {
        let ns = old.namespace().to_string();
        let name = old.name().to_string();
        if let Some(objects) = self.objects.get_mut(&rt.key()) {
            objects.remove(&(ns, name));
        }
        self.rv += 1;
        let mut value = old.value.clone();
        value["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(rt.key(), EventType::Deleted, Object::new(value), None);
    }

    /// Stores `obj` with a new resourceVersion and tells the watches.
    pub fn commit(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        kind: EventType,
        old: Option<Arc<Object>>,
    ) -> Arc<Object> {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let stored = Object::new(obj);
        self.objects
            .entry(rt.key())
            .or_default()
            .insert((ns.to_string(), name.to_string()), stored.clone());
        self.record(rt.key(), kind, stored.clone(), old);
        stored
    }

    fn record(
        &mut self,
        key: ResourceKey,
        kind: EventType,
        object: Arc<Object>,
        old: Option<Arc<Object>>,
    ) {
        let event = Arc::new(Event {
            rv: self.rv,
            key,
            kind,
            object,
            old,
        });
        if self.events.len() == EVENT_LOG
            && let Some(dropped) = self.events.pop_front()
        {
            self.forgotten = dropped.rv;
        }
        self.events.push_back(event.clone());
        // Nobody listening is fine.
        let _ = self.tx.send(event);
    }

    fn after_write(&mut self, rt: &ResourceType, obj: &Arc<Object>, kind: EventType) {
        let key = rt.key();
        if key
            == (
                "apiextensions.k8s.io".to_string(),
                "customresourcedefinitions".to_string(),
            )
        {
            self.crd_written(obj, kind);
        }
        if key == core("namespaces") && kind == EventType::Deleted {
            self.namespace_deleted(obj.name());
        }
        if kind == EventType::Deleted {
            self.collect_garbage(obj.uid());
        }
        if self.kubelet && !self.reconciling {
            crate::kubelet::reconcile(self);
        }
    }

    fn crd_written(&mut self, crd: &Arc<Object>, kind: EventType) {
        let key = crd
            .value
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .zip(
                crd.value
                    .pointer("/spec/names/plural")
                    .and_then(Value::as_str),
            )
            .map(|(g, p)| (g.to_string(), p.to_string()));
        match kind {
            EventType::Deleted => {
                if let Some(key) = key {
                    if let Some(rt) = self.registry.by_key(&key).cloned() {
                        for obj in self.list(&key, None) {
                            self.remove(&rt, &obj);
                        }
                    }
                    self.registry.unregister(&key);
                }
            }
            EventType::Added | EventType::Modified => {
                if self.registry.register_crd(&crd.value).is_ok() {
                    self.set_crd_status(crd);
                }
            }
        }
    }

    /// Marks a CRD Established and NamesAccepted, as the apiextensions controller does.
    fn set_crd_status(&mut self, crd: &Arc<Object>) {
        let now = time::now();
        let condition = |t: &str, reason: &str, message: &str| json!({ "type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message });
        let stored: Vec<Value> = crd
            .value
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let status = json!({
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
            "acceptedNames": crd.value.pointer("/spec/names").cloned().unwrap_or(json!({})),
            "storedVersions": stored,
        });
        if crd.value.get("status") == Some(&status) {
            return;
        }
        let mut next = crd.value.clone();
        next["status"] = status;
        let rt = self.type_of(&(
            "apiextensions.k8s.io".to_string(),
            "customresourcedefinitions".to_string(),
        ));
        let name = crd.name().to_string();
        self.commit(&rt, "", &name, next, EventType::Modified, Some(crd.clone()));
    }

    fn namespace_deleted(&mut self, ns: &str) {
        let types: Vec<ResourceType> = self
            .registry
            .types()
            .iter()
            .filter(|t| t.namespaced)
            .cloned()
            .collect();
        for rt in types {
            for obj in self.list(&rt.key(), Some(ns)) {
                self.remove(&rt, &obj);
            }
        }
    }

    /// Deletes every object owned by `uid`, and what they own in turn.
    fn collect_garbage(&mut self, uid: &str) {
        let mut gone = vec![uid.to_string()];
        while let Some(uid) = gone.pop() {
            let types: Vec<ResourceType> = self.registry.types().to_vec();
            for rt in types {
                let owned: Vec<Arc<Object>> = self
                    .objects
                    .get(&rt.key())
                    .map(|objs| {
                        objs.values()
                            .filter(|o| owned_by(&o.value, &uid))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                for obj in owned {
                    self.remove(&rt, &obj);
                    gone.push(obj.uid().to_string());
                }
            }
        }
    }

    fn check_namespace(
        &self,
        rt: &ResourceType,
        url_ns: &str,
        obj: &Value,
    ) -> Result<String, ApiError> {
        if !rt.namespaced {
            return Ok(String::new());
        }
        let body_ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !url_ns.is_empty() && !body_ns.is_empty() && url_ns != body_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let ns = if url_ns.is_empty() { body_ns } else { url_ns };
        if ns.is_empty() {
            return Err(ApiError::bad_request(
                "an empty namespace may not be set during creation",
            ));
        }
        if self.get(&core("namespaces"), "", ns).is_none() {
            return Err(ApiError::not_found("", "namespaces", ns));
        }
        Ok(ns.to_string())
    }

    /// Fields the API server fills in on write.
    fn defaults(&mut self, rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "namespaces") => {
                // API servers since 1.21 label every namespace with its own name, so that
                // selectors (network policies, webhooks) can pick namespaces by name.
                let name = obj
                    .pointer("/metadata/name")
                    .cloned()
                    .unwrap_or(Value::Null);
                if !obj["metadata"]["labels"].is_object() {
                    obj["metadata"]["labels"] = json!({});
                }
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
                if obj.pointer("/status/phase").is_none() {
                    obj["status"] = json!({ "phase": "Active" });
                }
            }
            ("", "secrets") => {
                if let Some(Value::Object(string_data)) =
                    obj.as_object_mut().and_then(|m| m.remove("stringData"))
                {
                    if !obj.get("data").is_some_and(Value::is_object) {
                        obj["data"] = json!({});
                    }
                    for (k, v) in string_data {
                        let text = v.as_str().unwrap_or_default();
                        obj["data"][k] = json!(STANDARD.encode(text));
                    }
                }
                if obj.get("type").is_none() {
                    obj["type"] = json!("Opaque");
                }
            }
            ("", "services") => {
                let kind = obj
                    .pointer("/spec/type")
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP");
                if kind != "ExternalName" && obj.pointer("/spec/clusterIP").is_none() {
                    let id = self.next_id();
                    if !obj.get("spec").is_some_and(Value::is_object) {
                        obj["spec"] = json!({});
                    }
                    obj["spec"]["clusterIP"] =
                        json!(format!("10.96.{}.{}", (id >> 8) & 0xff, id & 0xff));
                    if obj.pointer("/spec/type").is_none() {
                        obj["spec"]["type"] = json!("ClusterIP");
                    }
                }
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let mut probe = self.registry.clone();
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let t = probe
                    .register_crd(obj)
                    .map_err(|e| ApiError::invalid(&rt.kind, &name, "spec", &e))?;
                let want = format!("{}.{}", t.plural, t.group);
                if name != want {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        &name,
                        "metadata.name",
                        &format!(
                            "Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
                        ),
                    ));
                }
            }
            ("", "pods") if self.kubelet => crate::kubelet::run_pod(self, obj),
            _ => {}
        }
        Ok(())
    }
}

pub fn core(plural: &str) -> ResourceKey {
    (String::new(), plural.to_string())
}

pub fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
        })
}

fn metadata(obj: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let Value::Object(map) = obj else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if meta.is_null() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

fn set_type_meta(rt: &ResourceType, obj: &mut Value) {
    let api_version = match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if rt.versions.iter().any(|have| rt.api_version(have) == v) => v.to_string(),
        _ => rt.api_version(rt.preferred_version()),
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(rt.kind);
}

fn spec_of(obj: &Value) -> Vec<(&String, &Value)> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .collect()
        })
        .unwrap_or_default()
}

fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let ok = if rt.group == "rbac.authorization.k8s.io" {
        !name.contains('/') && !name.contains('%') && name != "." && name != ".."
    } else {
        name.len() <= 253
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.kind,
            name,
            "metadata.name",
            &format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case \
                 alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

fn uid(id: u64) -> String {
    format!("7e570000-0000-4000-8000-{id:012x}")
}

/// Five characters from Kubernetes' suffix alphabet, derived from `id`.
pub fn random_suffix(id: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (0..5)
        .map(|i| ALPHABET[((x >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}
