//! An in-memory Kubernetes API server over real HTTP, for tests of code built on kube-runtime.
//!
//! No kube-apiserver can run in CI (none is packaged for Debian, PyPI, npm or crates.io), and
//! the published fakes either pin an older kube or answer `watch=true` with a list. This one is
//! small and ours: watchers, reflectors, field-selector watches, server-side apply, status
//! subresources and a Lease-based leader election all run against it unchanged.
//!
//! ```text
//!  kube::Client ──HTTP──▶ axum fallback handler ──▶ Store (objects as JSON, one global
//!                          (path → resource type)     resourceVersion, watch history,
//!                                ▲                    SSA leaf ownership, GC of dependents)
//!  watch=true ◀── newline-delimited events ◀── broadcast of committed changes
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
//! * every write request is recorded ([`FakeApiServer::writes`]) with whether it changed
//!   anything, so tests can count what a controller wrote;
//! * the server can be stopped and started again on the same address to simulate an outage.
//!
//! # Fidelity gaps (what it does not do)
//! * No schema validation, defaulting, pruning or CEL: use `bgpintent_crd::check` for those.
//! * Server-side apply has no `managedFields`, no conflicts between managers (`force` is
//!   accepted and ignored), and lists are replaced whole, not merged by key.
//! * Strategic merge patch is a JSON merge patch (no patch directives, lists replaced).
//! * No discovery (`/api`, `/apis`), so `kubectl` cannot talk to it; no pagination
//!   (`limit`/`continue` ignored), no bookmarks, no RBAC, no authentication, no admission.
//! * Field selectors accept any dotted path (the apiserver allows a few per kind).
//! * Garbage collection is immediate and ignores `blockOwnerDeletion` and propagation policy.
//! * One global resourceVersion; history is capped at 10,000 events.

mod http;
mod selector;
mod store;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use serde_json::Value;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use selector::{FieldSelector, LabelSelector};
use store::Store;
pub use store::{ApiError, ResourceType};

/// The request header [`FakeApiServer::client_as`] sets.
pub const CLIENT_HEADER: &str = "x-fake-client";

/// One write request as the server received it.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Whether the write changed the stored object.
    pub persisted: bool,
    /// The `x-fake-client` header of the request (see [`FakeApiServer::client_as`]).
    pub client: String,
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    writes: Mutex<Vec<WriteRecord>>,
    stopped: watch::Sender<bool>,
}

/// The resources every test server serves.
pub fn default_types() -> Vec<ResourceType> {
    vec![
        ResourceType::new("", "v1", "nodes", "Node", false).with_status(),
        ResourceType::new("", "v1", "services", "Service", true).with_status(),
        ResourceType::new("", "v1", "secrets", "Secret", true),
        ResourceType::new("", "v1", "pods", "Pod", true).with_status(),
        ResourceType::new("", "v1", "namespaces", "Namespace", false),
        ResourceType::new("", "v1", "events", "Event", true),
        ResourceType::new("events.k8s.io", "v1", "events", "Event", true),
        ResourceType::new("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true),
        ResourceType::new("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceType::new("bgpintent.io", "v1alpha1", "bgppolicies", "BGPPolicy", false).with_status(),
        ResourceType::new(
            "bgpintent.io",
            "v1alpha1",
            "bgpnodeintents",
            "BGPNodeIntent",
            false,
        )
        .with_status(),
        ResourceType::new(
            "bgpintent.io",
            "v1alpha1",
            "bgpadvertisementsets",
            "BGPAdvertisementSet",
            false,
        ),
    ]
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
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(types)),
            writes: Mutex::new(Vec::new()),
            stopped: watch::channel(false).0,
        });
        let mut server = Self {
            addr,
            shared,
            task: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        self.shared.stopped.send_replace(false);
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(self.shared.clone());
        let mut stopped = self.shared.stopped.subscribe();
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

    /// Stops serving: open watches end and new connections are refused, like an apiserver
    /// outage. The store is kept.
    pub async fn stop(&mut self) {
        self.shared.stopped.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }

    /// Serves again on the same address after [`FakeApiServer::stop`].
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the same address");
        self.serve(listener);
    }

    /// Forgets the watch history, so every watch must relist (410 Gone).
    pub fn compact(&self) {
        self.shared.store.lock().expect("store lock").compact();
    }

    /// Write requests received so far.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.shared.writes.lock().expect("writes lock").clone()
    }

    pub fn clear_writes(&self) {
        self.shared.writes.lock().expect("writes lock").clear();
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
