//! The object store: objects as JSON, one global resourceVersion, an event history for watch
//! resumption, and just enough server-side-apply bookkeeping to drop fields a manager stops
//! sending.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::selector::{FieldSelector, LabelSelector};

/// A resource the server serves: one group/version/plural, with what discovery reports about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    pub status_subresource: bool,
    /// Lower-case kind unless told otherwise (discovery's `singularName`).
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// The CRD's `additionalPrinterColumns` (empty: `Name` and `Age`, as the apiserver does).
    pub columns: Vec<PrinterColumn>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

impl ResourceType {
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
            status_subresource: false,
            singular: kind.to_lowercase(),
            short_names: Vec::new(),
            categories: Vec::new(),
            columns: Vec::new(),
        }
    }

    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    pub fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    pub fn with_categories(mut self, names: &[&str]) -> Self {
        self.categories = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource types a `CustomResourceDefinition` (as JSON) defines: one per served
    /// version.
    pub fn from_crd(crd: &Value) -> Result<Vec<Self>, String> {
        if crd["kind"] != "CustomResourceDefinition" {
            return Err(format!("not a CustomResourceDefinition: kind {}", crd["kind"]));
        }
        let spec = &crd["spec"];
        let names = &spec["names"];
        let text = |v: &Value, what: &str| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("CRD {}: {what} missing", crd["metadata"]["name"]))
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let group = text(&spec["group"], "spec.group")?;
        let plural = text(&names["plural"], "spec.names.plural")?;
        let kind = text(&names["kind"], "spec.names.kind")?;
        let namespaced = match spec["scope"].as_str() {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            other => return Err(format!("CRD {plural}.{group}: scope {other:?}")),
        };
        let mut out = Vec::new();
        for v in spec["versions"].as_array().into_iter().flatten() {
            if v["served"] == false {
                continue;
            }
            let mut t = Self::new(
                &group,
                &text(&v["name"], "versions[].name")?,
                &plural,
                &kind,
                namespaced,
            );
            t.status_subresource = v["subresources"].get("status").is_some();
            if let Some(singular) = names["singular"].as_str().filter(|s| !s.is_empty()) {
                t.singular = singular.to_owned();
            }
            t.short_names = strings(&names["shortNames"]);
            t.categories = strings(&names["categories"]);
            for c in v["additionalPrinterColumns"].as_array().into_iter().flatten() {
                t.columns.push(PrinterColumn {
                    name: text(&c["name"], "additionalPrinterColumns[].name")?,
                    type_: text(&c["type"], "additionalPrinterColumns[].type")?,
                    format: c["format"].as_str().unwrap_or_default().to_owned(),
                    description: c["description"].as_str().unwrap_or_default().to_owned(),
                    priority: c["priority"].as_i64().unwrap_or(0),
                    json_path: text(&c["jsonPath"], "additionalPrinterColumns[].jsonPath")?,
                });
            }
            out.push(t);
        }
        Ok(out)
    }
}

/// An API error, rendered as a `Status` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }

    pub fn status(&self) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code})
    }
}

/// One entry of the watch history.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub resource: usize,
    pub kind: &'static str,
    pub object: Value,
    /// The object before this change (`None` for `ADDED`): a watch with a selector needs it
    /// to tell "stopped matching" (a `DELETED` for that watcher) from "never matched".
    pub prev: Option<Value>,
}

impl Event {
    /// The event as a watcher with `wanted` sees it, as the apiserver's watch cache
    /// converts it (`cacheWatcher.convertToWatchEvent`): an object that starts matching is
    /// `ADDED`; one that stops matching is `DELETED`, carrying its previous content with the
    /// event's resourceVersion; a deletion is seen only if the object matched before.
    pub fn as_seen_by(&self, wanted: impl Fn(&Value) -> bool) -> Option<(&'static str, Value)> {
        let now = self.kind != "DELETED" && wanted(&self.object);
        let before = match (&self.prev, self.kind) {
            (Some(prev), _) => wanted(prev),
            (None, "DELETED") => wanted(&self.object),
            (None, _) => false,
        };
        match (before, now) {
            (false, true) => Some(("ADDED", self.object.clone())),
            (true, true) => Some(("MODIFIED", self.object.clone())),
            (true, false) => {
                let mut last = self.prev.clone().unwrap_or_else(|| self.object.clone());
                last["metadata"]["resourceVersion"] = self.object["metadata"]["resourceVersion"].clone();
                Some(("DELETED", last))
            }
            (false, false) => None,
        }
    }
}

/// How a write arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply { force: bool },
}

type Key = (usize, String, String);

/// Everything the server holds.
#[derive(Debug)]
pub struct Store {
    pub types: Vec<ResourceType>,
    objects: BTreeMap<Key, Value>,
    /// Leaf paths each field manager last applied, per object (SSA approximation).
    managed: BTreeMap<Key, BTreeMap<String, BTreeSet<String>>>,
    rv: u64,
    history: VecDeque<Event>,
    /// Watches from a resourceVersion at or below this get 410 Gone.
    compacted: u64,
    history_limit: usize,
    uid_counter: u64,
    pub events: broadcast::Sender<Event>,
}

fn meta(o: &Value) -> &Value {
    &o["metadata"]
}

fn name_of(o: &Value) -> String {
    meta(o)["name"].as_str().unwrap_or_default().to_owned()
}

/// The object without the fields the server owns, for no-op detection.
fn comparable(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    o
}

/// Everything but metadata and status: what `generation` tracks.
fn spec_part(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

fn leaves(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                leaves(child, &format!("{prefix}/{k}"), out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    if let Some((parent, last)) = pointer.rsplit_once('/')
        && let Some(Value::Object(m)) = v.pointer_mut(parent)
    {
        m.remove(&last.replace("~1", "/").replace("~0", "~"));
    }
}

impl Store {
    pub fn new(types: Vec<ResourceType>) -> Self {
        Self {
            types,
            objects: BTreeMap::new(),
            managed: BTreeMap::new(),
            rv: 100,
            history: VecDeque::new(),
            compacted: 0,
            history_limit: 10_000,
            uid_counter: 0,
            events: broadcast::channel(65_536).0,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Forgets the watch history: every watch resuming from an older resourceVersion gets
    /// 410 Gone and has to relist.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.types
            .iter()
            .position(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn get(&self, ty: usize, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&(ty, ns.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| self.not_found(ty, name))
    }

    fn not_found(&self, ty: usize, name: &str) -> ApiError {
        let t = &self.types[ty];
        let what = if t.group.is_empty() {
            t.plural.clone()
        } else {
            format!("{}.{}", t.plural, t.group)
        };
        ApiError::new(404, "NotFound", format!("{what} \"{name}\" not found"))
    }

    pub fn list(
        &self,
        ty: usize,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let items = self
            .objects
            .iter()
            .filter(|((t, n, _), o)| {
                *t == ty && ns.is_none_or(|ns| ns == n) && labels.matches(o) && fields.matches(o)
            })
            .map(|(_, o)| o.clone())
            .collect();
        (items, self.rv)
    }

    /// History after `rv` for a watch, or 410 when it is gone.
    pub fn since(&self, ty: usize, rv: u64) -> Result<Vec<Event>, ApiError> {
        if rv < self.compacted
            || self
                .history
                .front()
                .is_some_and(|e| e.rv > rv + 1 && rv < self.rv)
        {
            return Err(ApiError::new(
                410,
                "Expired",
                format!("too old resource version: {rv} ({})", self.compacted.max(rv + 1)),
            ));
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.resource == ty && e.rv > rv)
            .cloned()
            .collect())
    }

    fn record(&mut self, ty: usize, kind: &'static str, object: Value, prev: Option<Value>) {
        let event = Event {
            rv: self.rv,
            resource: ty,
            kind,
            object,
            prev,
        };
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted = e.rv;
            }
        }
        let _ = self.events.send(event);
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.uid_counter)
    }

    /// Stores `new` at `key` unless nothing changed. Returns the stored object and whether it
    /// was persisted.
    fn commit(&mut self, key: Key, mut new: Value) -> (Value, bool) {
        let old = self.objects.get(&key).cloned();
        if let Some(old) = &old {
            if comparable(old) == comparable(&new) {
                return (old.clone(), false);
            }
            let generation = meta(old)["generation"].as_i64().unwrap_or(1);
            let bump = spec_part(old) != spec_part(&new);
            new["metadata"]["generation"] = json!(if bump { generation + 1 } else { generation });
        }
        self.rv += 1;
        new["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let deleting = meta(&new).get("deletionTimestamp").is_some()
            && meta(&new)["finalizers"].as_array().is_none_or(Vec::is_empty);
        if deleting {
            self.objects.remove(&key);
            self.managed.remove(&key);
            self.record(key.0, "DELETED", new.clone(), old);
            return (new, true);
        }
        self.objects.insert(key.clone(), new.clone());
        let kind = if old.is_some() { "MODIFIED" } else { "ADDED" };
        self.record(key.0, kind, new.clone(), old);
        (new, true)
    }

    fn check_precondition(&self, ty: usize, current: &Value, incoming: &Value) -> Result<(), ApiError> {
        match meta(incoming)["resourceVersion"].as_str() {
            Some(rv) if !rv.is_empty() && Some(rv) != meta(current)["resourceVersion"].as_str() => {
                Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                        self.types[ty].plural,
                        name_of(current)
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn create(
        &mut self,
        ty: usize,
        ns: &str,
        mut object: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let t = self.types[ty].clone();
        if !object.is_object() {
            return Err(ApiError::new(400, "BadRequest", "body must be an object"));
        }
        let mut name = name_of(&object);
        if name.is_empty() {
            match meta(&object)["generateName"].as_str() {
                Some(prefix) => name = format!("{prefix}{:05x}", self.uid_counter + 1),
                None => return Err(ApiError::new(422, "Invalid", "metadata.name: Required value")),
            }
        }
        let key = (ty, ns.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.plural),
            ));
        }
        object["apiVersion"] = json!(t.api_version());
        object["kind"] = json!(t.kind);
        let uid = self.next_uid();
        let m = object["metadata"].as_object_mut().expect("object has metadata");
        m.insert("name".into(), json!(name));
        if t.namespaced {
            m.insert("namespace".into(), json!(ns));
        }
        m.insert("uid".into(), json!(uid));
        m.insert("generation".into(), json!(1));
        m.insert(
            "creationTimestamp".into(),
            json!(
                jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap()
                    .to_string()
            ),
        );
        m.remove("resourceVersion");
        if t.status_subresource
            && let Some(o) = object.as_object_mut()
        {
            o.remove("status");
        }
        if dry_run {
            return Ok(object);
        }
        Ok(self.commit(key, object).0)
    }

    pub fn replace(
        &mut self,
        ty: usize,
        ns: &str,
        name: &str,
        mut object: Value,
        status: bool,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        let current = self.get(ty, ns, name)?;
        self.check_precondition(ty, &current, &object)?;
        object = self.keep_server_fields(ty, &current, object, status);
        if dry_run {
            return Ok((object, false));
        }
        Ok(self.commit((ty, ns.to_owned(), name.to_owned()), object))
    }

    /// Carries over what a write to the main resource or to `/status` may not change.
    fn keep_server_fields(&self, ty: usize, current: &Value, incoming: Value, status: bool) -> Value {
        let t = &self.types[ty];
        let mut out = if status {
            let mut o = current.clone();
            o["status"] = incoming.get("status").cloned().unwrap_or(Value::Null);
            if o["status"].is_null()
                && let Some(m) = o.as_object_mut()
            {
                m.remove("status");
            }
            o
        } else {
            let mut o = incoming;
            if t.status_subresource {
                match current.get("status") {
                    Some(s) => o["status"] = s.clone(),
                    None => {
                        if let Some(m) = o.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            o
        };
        for key in [
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "name",
            "namespace",
        ] {
            match meta(current).get(key) {
                Some(v) => out["metadata"][key] = v.clone(),
                None => {
                    if let Some(m) = out["metadata"].as_object_mut() {
                        m.remove(key);
                    }
                }
            }
        }
        if meta(current).get("deletionTimestamp").is_some() {
            out["metadata"]["deletionTimestamp"] = meta(current)["deletionTimestamp"].clone();
        }
        out["apiVersion"] = json!(t.api_version());
        out["kind"] = json!(t.kind);
        out
    }

    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        ty: usize,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: Value,
        manager: Option<&str>,
        status: bool,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        let key = (ty, ns.to_owned(), name.to_owned());
        let current = match self.objects.get(&key) {
            Some(c) => c.clone(),
            None if matches!(kind, PatchKind::Apply { .. }) && !status => {
                let manager = manager.ok_or_else(|| {
                    ApiError::new(400, "BadRequest", "fieldManager is required for apply patch")
                })?;
                let mut owned = BTreeSet::new();
                leaves(&body, "", &mut owned);
                let created = self.create(ty, ns, body, dry_run)?;
                if !dry_run {
                    self.managed
                        .entry(key)
                        .or_default()
                        .insert(manager.to_owned(), owned);
                }
                return Ok((created, true));
            }
            None => return Err(self.not_found(ty, name)),
        };
        self.check_precondition(ty, &current, &body)?;
        let mut new = current.clone();
        match kind {
            PatchKind::Merge | PatchKind::Strategic => json_patch::merge(&mut new, &body),
            PatchKind::Json => {
                let ops: json_patch::Patch = serde_json::from_value(body)
                    .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid json patch: {e}")))?;
                json_patch::patch(&mut new, &ops)
                    .map_err(|e| ApiError::new(422, "Invalid", format!("json patch failed: {e}")))?;
            }
            PatchKind::Apply { .. } => {
                let manager = manager.ok_or_else(|| {
                    ApiError::new(400, "BadRequest", "fieldManager is required for apply patch")
                })?;
                let mut owned = BTreeSet::new();
                leaves(&body, "", &mut owned);
                let previous = self
                    .managed
                    .get(&key)
                    .and_then(|m| m.get(manager))
                    .cloned()
                    .unwrap_or_default();
                for gone in previous.difference(&owned) {
                    remove_pointer(&mut new, gone);
                }
                json_patch::merge(&mut new, &strip_nulls(body));
                if !dry_run {
                    self.managed
                        .entry(key.clone())
                        .or_default()
                        .insert(manager.to_owned(), owned);
                }
            }
        }
        let new = self.keep_server_fields(ty, &current, new, status);
        if dry_run {
            return Ok((new, false));
        }
        Ok(self.commit(key, new))
    }

    pub fn delete(&mut self, ty: usize, ns: &str, name: &str) -> Result<Value, ApiError> {
        let key = (ty, ns.to_owned(), name.to_owned());
        let current = self.get(ty, ns, name)?;
        let mut marked = current.clone();
        if meta(&marked).get("deletionTimestamp").is_none() {
            marked["metadata"]["deletionTimestamp"] = json!(
                jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap()
                    .to_string()
            );
        }
        let (result, _) = self.commit(key, marked);
        if !self.objects.contains_key(&(ty, ns.to_owned(), name.to_owned())) {
            self.collect_garbage(meta(&current)["uid"].as_str().unwrap_or_default().to_owned());
        }
        Ok(result)
    }

    /// Background cascading deletion: dependents whose owner is gone are deleted too.
    fn collect_garbage(&mut self, owner_uid: String) {
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                meta(o)["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(owner_uid.as_str())))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (ty, ns, name) in dependents {
            let _ = self.delete(ty, &ns, &name);
        }
    }
}

/// `null` in an applied configuration means "no opinion"; in a merge patch it would delete.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}
