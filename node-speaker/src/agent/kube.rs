//! Kubernetes source and status writer: O(1) watches per speaker.
//!
//! * its own `BGPNodeIntent` (`fieldSelector=metadata.name=<node>`);
//! * the `BGPAdvertisementSet`s of its policy (`fieldSelector=spec.policy=<policy>`, a
//!   selectable field of the CRD), of which it uses those its intent names;
//! * each password by reference: a `get` of the one Secret when a `revision` it has not
//!   read yet appears (never a watch on Secrets, never another Secret).
//!
//! Fail static: while the API server is unreachable the reflectors keep their last state,
//! nothing is published, and the agent changes nothing. After a relist the recomputed
//! state equals the old one, so nothing is sent to any peer.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bgpintent_api::PasswordRef;
use bgpintent_crd::{
    BGPAdvertisementSet, BGPNodeIntent, BGPNodeIntentStatus,
    convert::{parse_node_intent_without_sources, parse_prefix_groups_without_sources},
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use tokio::sync::{Notify, watch};

use super::{Desired, IntentState, NodeStatus, Password, readiness::publish};

/// Field manager of the speaker's status writes.
pub const FIELD_MANAGER: &str = "bgp-intent-speaker";

/// Where the speaker reads from.
#[derive(Clone)]
pub struct KubeSource {
    pub client: Client,
    pub node: String,
    /// Namespace of the passwords Secret (the speaker's own).
    pub namespace: String,
}

impl std::fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource")
            .field("node", &self.node)
            .field("namespace", &self.namespace)
            .finish()
    }
}

fn drive<K>(
    store_writer: reflector::store::Writer<K>,
    api: Api<K>,
    config: watcher::Config,
    poke: Arc<Notify>,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let stream = reflector::reflector(
        store_writer,
        watcher(api, config)
            .default_backoff()
            .modify(|o: &mut K| o.managed_fields_mut().clear()),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => poke.notify_one(),
                // Fail static: the store keeps what it had.
                Err(error) => {
                    let error = bgpintent_telemetry::watch_error(&error);
                    tracing::warn!(%error, "watch failed; keeping the last known intent")
                }
            }
        }
    })
}

struct Sets {
    policy: String,
    store: Store<BGPAdvertisementSet>,
    task: tokio::task::JoinHandle<()>,
}

impl KubeSource {
    /// Follows the cluster; `state` says whether the intent is loaded, missing or invalid.
    pub fn follow(self, state: watch::Sender<IntentState>) -> watch::Receiver<Option<Desired>> {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(self.run(tx, state));
        rx
    }

    async fn run(self, tx: watch::Sender<Option<Desired>>, state: watch::Sender<IntentState>) {
        let poke = Arc::new(Notify::new());
        let intents: Api<BGPNodeIntent> = Api::all(self.client.clone());
        let writer = reflector::store::Writer::default();
        let intent_store = writer.as_reader();
        let _intent_task = drive(
            writer,
            intents,
            watcher::Config::default().fields(&format!("metadata.name={}", self.node)),
            poke.clone(),
        );
        let _ = intent_store.wait_until_ready().await;
        let mut sets: Option<Sets> = None;
        let mut passwords: BTreeMap<(String, String), (String, Password)> = BTreeMap::new();
        loop {
            let intent = intent_store.get(&reflector::ObjectRef::new(&self.node));
            let desired = match intent {
                None => {
                    if let Some(s) = sets.take() {
                        s.task.abort();
                    }
                    publish(
                        &state,
                        IntentState::Missing {
                            what: format!(
                                "no BGPNodeIntent {} (no BGPPolicy selects this Node, or the controller has not written it yet)",
                                self.node
                            ),
                        },
                    );
                    Some(None)
                }
                Some(object) => {
                    let policy = object.spec.policy.name.clone();
                    if sets.as_ref().is_none_or(|s| s.policy != policy) {
                        if let Some(s) = sets.take() {
                            s.task.abort();
                        }
                        let writer = reflector::store::Writer::default();
                        let store = writer.as_reader();
                        let api: Api<BGPAdvertisementSet> = Api::all(self.client.clone());
                        let config = watcher::Config::default().fields(&format!("spec.policy={policy}"));
                        let task = drive(writer, api, config, poke.clone());
                        // Do not publish a state without the sets: that would withdraw them.
                        let _ = store.wait_until_ready().await;
                        sets = Some(Sets { policy, store, task });
                    }
                    let d = self
                        .desired(&object, sets.as_ref().map(|s| &s.store), &mut passwords)
                        .await;
                    match d {
                        Ok(d) => {
                            publish(&state, IntentState::Loaded);
                            Some(Some(d))
                        }
                        Err(error) => {
                            publish(&state, IntentState::Invalid { error });
                            None
                        }
                    }
                }
            };
            if let Some(desired) = desired {
                tx.send_if_modified(|old| {
                    if *old == desired {
                        false
                    } else {
                        *old = desired;
                        true
                    }
                });
            }
            let missing_password = tx.borrow().as_ref().is_some_and(|d| {
                d.intent
                    .peers
                    .values()
                    .filter_map(|p| p.password.as_ref())
                    .any(|r| !d.passwords.contains_key(r))
            });
            tokio::select! {
                _ = poke.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)), if missing_password => {}
            }
            if tx.is_closed() {
                return;
            }
        }
    }

    /// The desired state for `object`, or the error (naming the field) when it cannot be
    /// parsed: the caller keeps the last good one.
    async fn desired(
        &self,
        object: &BGPNodeIntent,
        sets: Option<&Store<BGPAdvertisementSet>>,
        cache: &mut BTreeMap<(String, String), (String, Password)>,
    ) -> Result<Desired, String> {
        let intent = match parse_node_intent_without_sources(&self.node, &object.spec) {
            Ok(i) => i,
            Err(error) => {
                let error = format!("BGPNodeIntent {}: {error}", self.node);
                tracing::error!(%error, "the intent does not parse; keeping the last good one");
                return Err(error);
            }
        };
        let mut set_prefixes = BTreeMap::new();
        for set in sets.map(|s| s.state()).unwrap_or_default() {
            let name = set.name_any();
            if !intent.sets.contains(&name) {
                continue;
            }
            match parse_prefix_groups_without_sources("spec.prefixes", &set.spec.prefixes) {
                Ok(p) => {
                    set_prefixes.insert(name, p);
                }
                Err(error) => {
                    tracing::error!(set = %name, %error, "a BGPAdvertisementSet does not parse; skipped")
                }
            }
        }
        let mut passwords = BTreeMap::new();
        for reference in intent.peers.values().filter_map(|p| p.password.as_ref()) {
            if let Some(p) = self.password(reference, cache).await {
                passwords.insert(reference.clone(), p);
            }
        }
        Ok(Desired {
            intent,
            generation: object.metadata.generation,
            set_prefixes,
            passwords,
        })
    }

    /// The value behind a reference; read again only when its revision is new. On a read
    /// failure the previous value of the same key is kept (the session stays up).
    async fn password(
        &self,
        reference: &PasswordRef,
        cache: &mut BTreeMap<(String, String), (String, Password)>,
    ) -> Option<Password> {
        let key = (reference.secret_name.clone(), reference.key.clone());
        if let Some((revision, value)) = cache.get(&key)
            && *revision == reference.revision
        {
            return Some(value.clone());
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        match api.get(&reference.secret_name).await {
            Ok(secret) => {
                let value = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&reference.key))
                    .map(|v| v.0.clone())
                    .or_else(|| {
                        secret
                            .string_data
                            .as_ref()
                            .and_then(|d| d.get(&reference.key))
                            .map(|v| v.as_bytes().to_vec())
                    });
                match value {
                    Some(v) => {
                        let p = Password(v);
                        cache.insert(key, (reference.revision.clone(), p.clone()));
                        Some(p)
                    }
                    None => {
                        tracing::error!(secret = %reference.secret_name, key = %reference.key, "the password key is not in the Secret");
                        cache.get(&key).map(|(_, v)| v.clone())
                    }
                }
            }
            Err(error) => {
                let error = bgpintent_telemetry::api_error(&error);
                tracing::warn!(secret = %reference.secret_name, %error, "cannot read the passwords Secret; retrying");
                cache.get(&key).map(|(_, v)| v.clone())
            }
        }
    }
}

/// Writes the intent's status when it changes, at most once per `interval`, until
/// `shutdown`; a write in flight is abandoned then (the API client bounds each request too).
pub async fn write_status(
    client: Client,
    node: String,
    mut status: watch::Receiver<NodeStatus>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::select! {
        () = write_status_loop(client, node, &mut status, interval) => {}
        _ = shutdown.wait_for(|s| *s) => {}
    }
}

async fn write_status_loop(
    client: Client,
    node: String,
    status: &mut watch::Receiver<NodeStatus>,
    interval: Duration,
) {
    let api: Api<BGPNodeIntent> = Api::all(client);
    let mut written: Option<BGPNodeIntentStatus> = None;
    loop {
        if status.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(interval).await;
        let now = status.borrow_and_update().clone();
        if !now.present {
            continue;
        }
        let api_status = now.to_api(written.as_ref());
        if written.as_ref() == Some(&api_status) {
            continue;
        }
        let body = serde_json::json!({"apiVersion": "bgpintent.io/v1alpha1", "kind": "BGPNodeIntent",
            "metadata": {"name": node}, "status": api_status});
        match api
            .patch_status(
                &node,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => written = Some(api_status),
            Err(error) => {
                let error = bgpintent_telemetry::api_error(&error);
                tracing::warn!(%error, "cannot write the intent status; will retry");
                // Retry soon even without a new change.
                status.mark_changed();
            }
        }
    }
}
