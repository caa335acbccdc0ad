//! An in-memory Kubernetes API server over real HTTP, for tests of code built on kube-runtime,
//! of the shipped binaries as processes, and of what real `kubectl` prints.
//!
//! No kube-apiserver can run in CI (none is packaged for Debian, PyPI, npm or crates.io), and
//! the published fakes either pin an older kube or answer `watch=true` with a list. This one is
//! small and ours: watchers, reflectors, field-selector watches, server-side apply, status
//! subresources, a Lease-based leader election and kubectl 1.35 all run against it unchanged.
//! It is a library ([`FakeApiServer`], in-process) and a binary (`fake-apiserver`, see
//! `src/main.rs` and the [`admin`] API) over the same code.
//!
//! ```text
//!  kube::Client ─┐                 ┌─ discovery, /version, OpenAPI v3 index (kubectl)
//!  kubectl ──────┼─HTTP─▶ faults ─▶┤
//!  curl ─────────┘  (per verb,     └─ resources ──▶ Store (objects as JSON, one global
//!                    path, client)     (JSON or        resourceVersion, watch history,
//!                                       Table)         SSA leaf ownership, GC of dependents)
//!  watch=true ◀── newline-delimited events ◀── broadcast of committed changes
//!  admin API (binary): /api/stop|start, /faults, /writes, /compact
//! ```
//!
//! # What it does
//! * list with `resourceVersion`, label selectors (equality and set-based) and field selectors;
//!   a watch with selectors sees what the apiserver's watch cache sends: an object that stops
//!   matching (a label removed) as `DELETED` with its last matching content, one that starts
//!   matching as `ADDED`;
//! * watch from a `resourceVersion`, replaying history; an expired one (see
//!   [`FakeApiServer::compact`]) gets an `ERROR` event with a 410 `Expired` Status, as the
//!   apiserver sends it, so watchers relist; `timeoutSeconds` ends a watch;
//! * create (201, 409 AlreadyExists, `generateName`), get (404 Status), replace (409 Conflict on
//!   a stale `resourceVersion`), delete (finalizers respected; dependents named by
//!   `ownerReferences` deleted in the background, like the garbage collector);
//! * patch: merge, JSON patch, strategic merge (approximated as merge), and apply (upsert; the
//!   fields a manager applied before and no longer sends are removed); `resourceVersion`
//!   preconditions in the body; `dryRun=All`;
//! * status subresources: writes to the main resource keep the stored status, writes to
//!   `/status` change only the status; `generation` bumps when anything outside metadata and
//!   status changes;
//! * **no-op writes are not persisted** and emit no event (the real apiserver does the same;
//!   without it a controller that writes its own status would loop);
//! * every write request is recorded ([`FakeApiServer::writes`], `GET /writes`) with whether
//!   it changed anything and who sent it (`x-fake-client` header, else the bearer token), so
//!   tests can count what each controller replica wrote;
//! * the server can be stopped and started again on the same address to simulate an outage;
//!   stopping cuts every open connection at once, as a crash does;
//! * the CRDs of `crd/*.yaml` are built in, and the binary serves more from `--crds`: each
//!   served version with its scope, status subresource, short names, categories and printer
//!   columns;
//! * discovery for kubectl: `/api`, `/api/v1`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}` (with
//!   `singularName`, `shortNames`, `categories`, verbs and the `/status` subresources),
//!   `/version`, and the OpenAPI v3 index (operations only) from which kubectl learns that
//!   the server validates fields; kubectl's aggregated-discovery request is answered with the
//!   legacy documents, and kubectl falls back to them as it does with older servers;
//! * server-side printing: a `meta.k8s.io/v1` `Table` when the `Accept` header asks for one,
//!   built like the apiserver's CRD table convertor (first JSONPath result only, `date` as a
//!   human duration, wrong-typed or missing values empty, `priority` kept for `-o wide`);
//!   built-in kinds get `NAME` and `AGE`; watches asking for Tables get one-row Tables per
//!   event (`kubectl get -w`);
//! * fault injection ([`Fault`], `POST /faults`): per verb, path substring, watch or not, and
//!   client: a `Status` error (409, 429 with `Retry-After`, 500, 503, ...), a delay, an
//!   accepted-but-silent request, a watch cut after n events, a watch answered with 410.
//!
//! # Fidelity gaps (what it does not do)
//! * No schema validation, defaulting, pruning or CEL: use `bgpintent_crd::check` for those.
//!   `fieldValidation=Strict` (kubectl sends it) is accepted and ignored, and the OpenAPI
//!   documents carry no schemas (`kubectl explain` does not work; client-side `kubectl
//!   apply` works with CRDs, which use a merge patch, but would not for built-in kinds, which
//!   need the schema for a strategic merge patch).
//! * Server-side apply has no `managedFields`, no conflicts between managers (`force` is
//!   accepted and ignored), and lists are replaced whole, not merged by key.
//! * Strategic merge patch is a JSON merge patch (no patch directives, lists replaced).
//! * Discovery is legacy only (no aggregated `apidiscovery.k8s.io/v2`); no protobuf, no
//!   OpenAPI v2; built-in kinds have no kind-specific columns (a real apiserver prints Node
//!   STATUS, ROLES, ...).
//! * No pagination (`limit`/`continue` ignored), no bookmarks, no RBAC, no authentication
//!   (a bearer token is only an identity), no admission, no TLS. client-go (kubectl) sends no
//!   token over plain http, so kubectl's writes have no client identity; kube-rs sends it.
//! * Field selectors accept any dotted path (the apiserver allows a few per kind).
//! * Garbage collection is immediate and ignores `blockOwnerDeletion` and propagation policy.
//! * One global resourceVersion; history is capped at 10,000 events.

pub mod admin;
mod conn;
mod discovery;
mod faults;
mod http;
mod selector;
mod store;
mod table;

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use faults::{Fault, FaultAction};
pub use selector::{FieldSelector, LabelSelector};
use store::Store;
pub use store::{ApiError, PrinterColumn, ResourceType};
pub use table::{JsonPath, human_duration};

/// The request header [`FakeApiServer::client_as`] sets.
pub const CLIENT_HEADER: &str = "x-fake-client";

/// One write request as the server received it.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    /// Position among all writes since the server started (not reset by
    /// [`FakeApiServer::clear_writes`]).
    pub index: usize,
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Whether the write changed the stored object.
    pub persisted: bool,
    /// Who sent it: the `x-fake-client` header (see [`FakeApiServer::client_as`]), else the
    /// bearer token, else "".
    pub client: String,
    /// Milliseconds since the server started.
    pub at_ms: u64,
    /// The fault rule that answered instead of the store, if any.
    pub fault: Option<u64>,
}

impl WriteRecord {
    /// The admin API's JSON form.
    pub fn to_json(&self) -> Value {
        json!({"index": self.index, "method": self.method, "path": self.path, "query": self.query,
               "contentType": self.content_type, "body": String::from_utf8_lossy(&self.body),
               "persisted": self.persisted, "client": self.client, "atMs": self.at_ms,
               "fault": self.fault})
    }
}

#[derive(Debug, Default)]
struct Writes {
    /// Index of `list[0]`.
    first: usize,
    list: Vec<WriteRecord>,
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    writes: Mutex<Writes>,
    stopped: watch::Sender<bool>,
    faults: Mutex<faults::Faults>,
    /// Bumped whenever a fault rule is removed (silent requests check theirs).
    faults_cleared: watch::Sender<u64>,
    started: Instant,
}

/// The built-in resources every server serves (the core and other Kubernetes groups the
/// controller and speaker use), with the short names and categories of a real cluster.
pub fn builtin_types() -> Vec<ResourceType> {
    vec![
        ResourceType::new("", "v1", "nodes", "Node", false)
            .with_status()
            .with_short_names(&["no"]),
        ResourceType::new("", "v1", "services", "Service", true)
            .with_status()
            .with_short_names(&["svc"])
            .with_categories(&["all"]),
        ResourceType::new("", "v1", "secrets", "Secret", true),
        ResourceType::new("", "v1", "pods", "Pod", true)
            .with_status()
            .with_short_names(&["po"])
            .with_categories(&["all"]),
        ResourceType::new("", "v1", "namespaces", "Namespace", false)
            .with_status()
            .with_short_names(&["ns"]),
        ResourceType::new("", "v1", "events", "Event", true).with_short_names(&["ev"]),
        ResourceType::new("events.k8s.io", "v1", "events", "Event", true).with_short_names(&["ev"]),
        ResourceType::new("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true),
        ResourceType::new("coordination.k8s.io", "v1", "leases", "Lease", true),
    ]
}

/// Our CRDs as committed in `crd/`, built in so that every server serves them with their
/// discovery names and printer columns.
const OUR_CRDS: [&str; 3] = [
    include_str!("../../../crd/bgppolicies.yaml"),
    include_str!("../../../crd/bgpnodeintents.yaml"),
    include_str!("../../../crd/bgpadvertisementsets.yaml"),
];

/// The resources every test server serves: [`builtin_types`] and our CRDs.
pub fn default_types() -> Vec<ResourceType> {
    let mut types = builtin_types();
    for yaml in OUR_CRDS {
        types = merge_types(types, types_from_yaml(yaml).expect("crd/*.yaml are CRDs"));
    }
    types
}

/// `base` with `extra` added; an `extra` type with the group, version and plural of a `base`
/// one replaces it.
pub fn merge_types(mut base: Vec<ResourceType>, extra: Vec<ResourceType>) -> Vec<ResourceType> {
    for t in extra {
        match base
            .iter_mut()
            .find(|b| b.group == t.group && b.version == t.version && b.plural == t.plural)
        {
            Some(b) => *b = t,
            None => base.push(t),
        }
    }
    base
}

/// The types of every `CustomResourceDefinition` in a (multi-document) YAML text. Other
/// documents are skipped.
pub fn types_from_yaml(yaml: &str) -> Result<Vec<ResourceType>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| format!("cannot parse YAML: {e}"))?;
    let mut out = Vec::new();
    for doc in docs {
        if doc["kind"] == "CustomResourceDefinition" {
            out.extend(ResourceType::from_crd(&doc)?);
        } else if doc["kind"] == "List" {
            for item in doc["items"].as_array().into_iter().flatten() {
                if item["kind"] == "CustomResourceDefinition" {
                    out.extend(ResourceType::from_crd(item)?);
                }
            }
        }
    }
    Ok(out)
}

/// The CRD types of a file, or of every `*.yaml`/`*.yml`/`*.json` file of a directory.
pub fn types_from_path(path: &Path) -> Result<Vec<ResourceType>, String> {
    let files = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        out.extend(types_from_yaml(&text).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    Ok(out)
}

/// Antrea's Egress, served only when a test asks for it (its absence is a normal cluster).
pub fn antrea_egress_type() -> ResourceType {
    ResourceType::new("crd.antrea.io", "v1beta1", "egresses", "Egress", false).with_status()
}

/// A running fake API server.
#[derive(Debug)]
pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Starts a server with [`default_types`] on a free loopback port.
    pub async fn start() -> Self {
        Self::start_with(default_types()).await
    }

    pub async fn start_with(types: Vec<ResourceType>) -> Self {
        Self::bind("127.0.0.1:0".parse().expect("address"), types)
            .await
            .expect("bind loopback")
    }

    /// Serves `types` on `addr` (port 0: a free one).
    pub async fn bind(addr: SocketAddr, types: Vec<ResourceType>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(types)),
            writes: Mutex::new(Writes::default()),
            stopped: watch::channel(false).0,
            faults: Mutex::new(faults::Faults::default()),
            faults_cleared: watch::channel(0).0,
            started: Instant::now(),
        });
        let mut server = Self {
            addr,
            shared,
            task: None,
        };
        server.serve(listener);
        Ok(server)
    }

    fn serve(&mut self, listener: TcpListener) {
        self.shared.stopped.send_replace(false);
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(self.shared.clone());
        let mut stopped = self.shared.stopped.subscribe();
        let listener = conn::KillableListener::new(listener, self.shared.stopped.subscribe());
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<conn::Conn>())
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the API is being served (not [`FakeApiServer::stop`]ped).
    pub fn is_serving(&self) -> bool {
        self.task.is_some()
    }

    /// A kube client talking to this server (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        self.client_as("")
    }

    /// A client whose write requests are recorded with `name`, to tell replicas apart.
    pub fn client_as(&self, name: &str) -> kube::Client {
        let mut config = kube::Config::new(self.url().parse().expect("valid url"));
        if !name.is_empty() {
            config.headers.push((
                axum::http::HeaderName::from_static(CLIENT_HEADER),
                axum::http::HeaderValue::from_str(name).expect("header value"),
            ));
        }
        kube::Client::try_from(config).expect("client from config")
    }

    /// Stops serving, like a crashed apiserver: the listener is closed and every open
    /// connection is cut at once (watches end with no final chunk, requests in flight get no
    /// answer), so new connections are refused. The store is kept.
    pub async fn stop(&mut self) {
        self.shared.stopped.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }

    /// Serves again on the same address after [`FakeApiServer::stop`].
    pub async fn restart(&mut self) {
        self.try_restart().await.expect("rebind the same address");
    }

    /// [`FakeApiServer::restart`], reporting a failed bind; does nothing while serving.
    pub async fn try_restart(&mut self) -> std::io::Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    /// Adds a fault rule; returns its id.
    pub fn add_fault(&self, fault: Fault) -> u64 {
        self.shared.faults.lock().expect("faults lock").add(fault)
    }

    /// The rules in force with their remaining uses.
    pub fn faults(&self) -> Vec<(u64, Fault)> {
        self.shared.faults.lock().expect("faults lock").list()
    }

    /// Removes one rule (a silent request it holds is then cut); false if unknown.
    pub fn clear_fault(&self, id: u64) -> bool {
        let removed = self.shared.faults.lock().expect("faults lock").remove(id);
        self.shared.faults_cleared.send_modify(|n| *n += 1);
        removed
    }

    pub fn clear_faults(&self) {
        self.shared.faults.lock().expect("faults lock").clear();
        self.shared.faults_cleared.send_modify(|n| *n += 1);
    }

    /// Milliseconds since the server started (the clock of [`WriteRecord::at_ms`]).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Forgets the watch history, so every watch must relist (410 Gone).
    pub fn compact(&self) {
        self.shared.store.lock().expect("store lock").compact();
    }

    /// Write requests received so far (since the last [`FakeApiServer::clear_writes`]).
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.shared.writes.lock().expect("writes lock").list.clone()
    }

    /// Write requests with `index >= since`, and the index the next write will get.
    pub fn writes_since(&self, since: usize) -> (Vec<WriteRecord>, usize) {
        let w = self.shared.writes.lock().expect("writes lock");
        let skip = since.saturating_sub(w.first);
        (
            w.list.iter().skip(skip).cloned().collect(),
            w.first + w.list.len(),
        )
    }

    pub fn clear_writes(&self) {
        let mut w = self.shared.writes.lock().expect("writes lock");
        w.first += w.list.len();
        w.list.clear();
    }

    fn resource(&self, api_version: &str, kind: &str) -> usize {
        let store = self.shared.store.lock().expect("store lock");
        store
            .types
            .iter()
            .position(|t| t.api_version() == api_version && t.kind == kind)
            .unwrap_or_else(|| panic!("{api_version} {kind} is not served"))
    }

    /// Creates or replaces `object` directly in the store (no HTTP, not recorded as a write):
    /// how tests set up and change the cluster.
    pub fn put(&self, object: Value) -> Value {
        let ty = self.resource(
            object["apiVersion"].as_str().unwrap_or(""),
            object["kind"].as_str().unwrap_or(""),
        );
        let ns = object["metadata"]["namespace"].as_str().unwrap_or("").to_owned();
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let mut store = self.shared.store.lock().expect("store lock");
        match store.get(ty, &ns, &name) {
            Ok(_) => {
                let mut object = object;
                if let Some(m) = object["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                let status = object.get("status").cloned();
                let (stored, _) = store
                    .replace(ty, &ns, &name, object, false, false)
                    .expect("replace");
                match status {
                    Some(s) if store.types[ty].status_subresource => {
                        let mut with_status = stored;
                        with_status["status"] = s;
                        store
                            .replace(ty, &ns, &name, with_status, true, false)
                            .expect("replace status")
                            .0
                    }
                    _ => stored,
                }
            }
            Err(_) => {
                let status = object.get("status").cloned();
                let created = store.create(ty, &ns, object, false).expect("create");
                match status {
                    Some(s) if store.types[ty].status_subresource => {
                        let mut with_status = created;
                        with_status["status"] = s;
                        store
                            .replace(ty, &ns, &name, with_status, true, false)
                            .expect("status")
                            .0
                    }
                    _ => created,
                }
            }
        }
    }

    /// Reads an object from the store.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let ty = self.resource(api_version, kind);
        self.shared
            .store
            .lock()
            .expect("store lock")
            .get(ty, namespace, name)
            .ok()
    }

    /// Every object of a kind, in name order.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let ty = self.resource(api_version, kind);
        let store = self.shared.store.lock().expect("store lock");
        store
            .list(ty, None, &LabelSelector::default(), &FieldSelector::default())
            .0
    }

    /// Deletes an object directly (with garbage collection of its dependents).
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let ty = self.resource(api_version, kind);
        self.shared
            .store
            .lock()
            .expect("store lock")
            .delete(ty, namespace, name)
            .is_ok()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.shared.stopped.send_replace(true);
    }
}
