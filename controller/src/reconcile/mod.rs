//! The only Kubernetes I/O of the controller: informers in, server-side applies out.
//!
//! ```text
//!  reflectors (trimmed caches) ──poke──▶ debounce ──▶ pass():
//!      Snapshot ─resolve─▶ Resolution ─materialize─▶ Materialized
//!      compare with what the caches hold ──▶ only changed objects are written, in order:
//!        1. BGPAdvertisementSets   (new shards exist before an intent names them)
//!        2. BGPNodeIntents
//!        3. router-ID annotations on Nodes
//!        4. deletes: intents, then sets   (make before break)
//!        5. BGPPolicy status (only on change), Events (once per distinct problem)
//! ```
//!
//! Writes happen only while the Lease says we lead ([`crate::lease`]); followers keep
//! their caches warm. Because each pass compares with the *cluster's* objects, not with
//! what this replica wrote last, a new leader, a relist after a 410, or a restart writes
//! nothing that is already correct. Every write is an idempotent server-side apply under
//! one field manager, so the short overlap any lease scheme allows only repeats identical
//! writes. A pass in flight when leadership is lost (the Lease taken, or not renewed by the
//! renew deadline) or at shutdown is dropped, which cancels its writes in flight: none lands
//! after the step-down unless the server had already committed it.

mod watch;
mod write;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bgpintent_crd::{BGPAdvertisementSet, BGPNodeIntent};
use kube::{Client, ResourceExt, runtime::events::Reporter};
use tokio::sync::{Notify, watch as channel};

pub use watch::{Stores, egress_resource, start as start_informers};
pub use write::{FIELD_MANAGER, Writer};

use crate::{
    intent::{self, Snapshot},
    materialize::{self, Layout, MANAGED_BY},
    metrics::Metrics,
};

/// What the reconcile loop needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespace of the passwords Secret (the controller's own).
    pub namespace: String,
    pub passwords_secret: String,
    /// Quiet time after the last change before a pass runs.
    pub debounce: Duration,
    /// Delay before retrying a pass that failed.
    pub retry: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub applied: usize,
    pub deleted: usize,
    pub statuses: usize,
    pub failures: Vec<String>,
}

/// The reconcile loop of one replica.
pub struct Reconciler {
    settings: Settings,
    stores: Stores,
    writer: Writer,
    metrics: Metrics,
    layout: Layout,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Starts the informers and runs passes until `shutdown`. `leader` gates every write;
/// `ready` flips to true once the caches have synced.
pub async fn run(
    client: Client,
    settings: Settings,
    metrics: Metrics,
    leader: channel::Receiver<bool>,
    ready: channel::Sender<bool>,
    mut shutdown: channel::Receiver<bool>,
    reporter: Reporter,
) {
    let trigger = Arc::new(Notify::new());
    let (stores, informers) = watch::start(
        client.clone(),
        &settings.namespace,
        &settings.passwords_secret,
        trigger.clone(),
    );
    let informers = tokio::spawn(informers);
    tokio::select! {
        _ = stores.wait_until_ready() => {}
        _ = shutdown.wait_for(|s| *s) => { informers.abort(); return; }
    }
    tracing::info!("caches synced");
    ready.send_replace(true);
    let writer = Writer::new(client, reporter, leader.clone());
    let mut reconciler = Reconciler {
        settings: settings.clone(),
        stores,
        writer,
        metrics,
        layout: Layout::default(),
    };
    let mut leader = leader;
    'passes: loop {
        if *leader.borrow() {
            // Cancelled by shutdown: writes are idempotent applies, so a pass cut short
            // leaves nothing the next pass (or the next leader) does not repeat.
            let mut lost = leader.clone();
            let report = tokio::select! {
                report = reconciler.pass() => report,
                _ = shutdown.wait_for(|s| *s) => break 'passes,
                // Leadership lost mid-pass (the Lease was taken, or could not be renewed in
                // time): drop the pass, which cancels the writes in flight, so that none of
                // them lands after the step-down where the server has not committed it yet.
                _ = lost.wait_for(|l| !*l) => {
                    tracing::warn!("leadership lost during a pass: its writes in flight are cancelled");
                    continue 'passes;
                }
            };
            if !report.failures.is_empty() {
                tracing::warn!(failures = ?report.failures, "pass incomplete; retrying");
                let t = trigger.clone();
                let retry = settings.retry;
                tokio::spawn(async move {
                    tokio::time::sleep(retry).await;
                    t.notify_one();
                });
            }
        }
        tokio::select! {
            _ = trigger.notified() => {}
            changed = leader.changed() => { if changed.is_err() { break; } }
            _ = shutdown.wait_for(|s| *s) => break,
        }
        // Debounce: wait for a quiet period so a burst of events makes one pass.
        loop {
            tokio::select! {
                _ = trigger.notified() => continue,
                _ = tokio::time::sleep(settings.debounce) => break,
                _ = shutdown.wait_for(|s| *s) => break 'passes,
            }
        }
    }
    informers.abort();
}

impl Reconciler {
    /// Everything the engine reads, from the caches.
    fn snapshot(&self) -> Snapshot {
        let egresses = self
            .stores
            .egresses
            .state()
            .iter()
            .filter_map(|o| {
                serde_json::to_value(&**o)
                    .ok()
                    .and_then(|v| serde_json::from_value(v).ok())
            })
            .collect();
        let passwords = self
            .stores
            .secrets
            .state()
            .into_iter()
            .find(|s| s.name_any() == self.settings.passwords_secret)
            .map(|s| (*s).clone());
        let current_owners: BTreeMap<String, String> = self
            .stores
            .intents
            .state()
            .iter()
            .map(|i| (i.name_any(), i.spec.policy.name.clone()))
            .collect();
        Snapshot {
            policies: owned(self.stores.policies.state()),
            nodes: owned(self.stores.nodes.state()),
            services: owned(self.stores.services.state()),
            endpoint_slices: owned(self.stores.slices.state()),
            egresses,
            pods: owned(self.stores.pods.state()),
            passwords,
            current_owners,
        }
    }

    /// One full pass: compute, compare with the cluster, write the differences.
    pub async fn pass(&mut self) -> PassReport {
        let span = tracing::info_span!("reconcile", run = self.metrics.reconcile_runs.get() + 1);
        tracing::Instrument::instrument(self.pass_inner(), span).await
    }

    async fn pass_inner(&mut self) -> PassReport {
        let started = std::time::Instant::now();
        self.metrics.reconcile_runs.inc();
        let snapshot = self.snapshot();
        let res = intent::resolve(&snapshot);
        if self.layout.shards.is_empty() {
            self.layout = layout_of(&self.stores.sets.state());
        }
        let mat = materialize::materialize(&res, &self.layout);
        self.layout = mat.layout.clone();
        for o in &mat.oversized {
            tracing::error!(object = %o, "object over the size bound; not written");
        }

        let mut report = PassReport::default();
        let current_sets: BTreeMap<String, Arc<BGPAdvertisementSet>> = self
            .stores
            .sets
            .state()
            .into_iter()
            .map(|s| (s.name_any(), s))
            .collect();
        let current_intents: BTreeMap<String, Arc<BGPNodeIntent>> = self
            .stores
            .intents
            .state()
            .into_iter()
            .map(|i| (i.name_any(), i))
            .collect();
        let oversized = |kind: &str, name: &str| {
            mat.oversized
                .iter()
                .any(|o| o.starts_with(&format!("{kind} {name}:")))
        };

        for (name, set) in &mat.sets {
            let desired = set.to_object(name);
            if oversized("BGPAdvertisementSet", name)
                || write::same(current_sets.get(name).map(|a| &**a), &desired)
            {
                continue;
            }
            self.writer
                .apply(&desired, "BGPAdvertisementSet", &self.metrics, &mut report)
                .await;
        }
        for (name, intent) in &mat.intents {
            let desired = intent.to_object();
            if oversized("BGPNodeIntent", name)
                || write::same(current_intents.get(name).map(|a| &**a), &desired)
            {
                continue;
            }
            self.writer
                .apply(&desired, "BGPNodeIntent", &self.metrics, &mut report)
                .await;
        }
        for (node, router_id) in &mat.annotations {
            self.writer.annotate_node(node, *router_id, &mut report).await;
        }
        for (name, intent) in &current_intents {
            if managed(&**intent) && !mat.intents.contains_key(name) && !mat.held.contains(name) {
                self.writer
                    .delete::<BGPNodeIntent>(name, "BGPNodeIntent", &self.metrics, &mut report)
                    .await;
            }
        }
        for (name, set) in &current_sets {
            if managed(&**set) && !mat.sets.contains_key(name) {
                self.writer
                    .delete::<BGPAdvertisementSet>(name, "BGPAdvertisementSet", &self.metrics, &mut report)
                    .await;
            }
        }
        self.writer.policy_statuses(&res, &self.stores, &mut report).await;
        self.writer.events(&res, &self.stores).await;

        self.metrics.intents.clear();
        for intent in mat.intents.values() {
            self.metrics
                .intents
                .get_or_create(&crate::metrics::PolicyLabel {
                    policy: intent.spec.policy.name.clone(),
                })
                .inc();
        }
        for failure in &report.failures {
            let reason = failure.split(':').next().unwrap_or("other");
            let reason: &'static str = match reason {
                "apply" => "apply",
                "delete" => "delete",
                "status" => "status",
                "annotate" => "annotate",
                _ => "other",
            };
            self.metrics
                .reconcile_failures
                .get_or_create(&crate::metrics::ReasonLabel { reason })
                .inc();
        }
        self.metrics
            .reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            applied = report.applied,
            deleted = report.deleted,
            statuses = report.statuses,
            failures = report.failures.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "pass done"
        );
        report
    }
}

fn owned<K: Clone>(v: Vec<Arc<K>>) -> Vec<K> {
    v.into_iter().map(|o| (*o).clone()).collect()
}

fn managed<K: kube::Resource>(o: &K) -> bool {
    o.meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
}

/// The shard counts the cluster's sets were written with (`<policy>-<family>-<count>-<index>`),
/// so a new leader keeps the layout instead of re-sharding.
fn layout_of(sets: &[Arc<BGPAdvertisementSet>]) -> Layout {
    let mut layout = Layout::default();
    for set in sets.iter().filter(|s| managed(&***s)) {
        let name = set.name_any();
        let mut parts = name.rsplitn(4, '-');
        let (_index, count, family) = (parts.next(), parts.next(), parts.next());
        let family = match family {
            Some("ipv4") => bgpintent_api::Family::Ipv4,
            Some("ipv6") => bgpintent_api::Family::Ipv6,
            _ => continue,
        };
        if let Some(count) = count.and_then(|c| c.parse::<u32>().ok()) {
            layout.shards.insert((set.spec.policy.clone(), family), count);
        }
    }
    layout
}
