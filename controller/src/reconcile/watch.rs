//! The informers: one reflector per kind, with caches trimmed to what the engine reads.
//!
//! Every event pokes one shared [`Notify`]; the pass loop debounces those pokes. Antrea's
//! `Egress` is optional: its absence is probed, logged once, and probed again every minute,
//! so installing Antrea later needs no restart.

use std::{sync::Arc, time::Duration};

use bgpintent_crd::{BGPAdvertisementSet, BGPNodeIntent, BGPPolicy};
use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    core::v1::{Node, Secret, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use tokio::sync::{Notify, watch};

/// Read-only caches of everything the controller reads.
#[derive(Clone)]
pub struct Stores {
    pub policies: Store<BGPPolicy>,
    pub nodes: Store<Node>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub secrets: Store<Secret>,
    pub egresses: Store<DynamicObject>,
    pub intents: Store<BGPNodeIntent>,
    pub sets: Store<BGPAdvertisementSet>,
    /// True once the Egress CRD was found and synced, or found absent.
    pub egress_settled: watch::Receiver<bool>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// Waits until every cache has its initial list.
    pub async fn wait_until_ready(&self) {
        let _ = self.policies.wait_until_ready().await;
        let _ = self.nodes.wait_until_ready().await;
        let _ = self.services.wait_until_ready().await;
        let _ = self.slices.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
        let _ = self.intents.wait_until_ready().await;
        let _ = self.sets.wait_until_ready().await;
        let _ = self.egress_settled.clone().wait_for(|s| *s).await;
    }
}

/// Antrea's Egress (`crd.antrea.io/v1beta1`, cluster-scoped).
pub fn egress_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("crd.antrea.io", "v1beta1", "Egress"),
        "egresses",
    )
}

fn trim_meta<K: Resource>(o: &mut K) {
    o.managed_fields_mut().clear();
}

fn trim_node(n: &mut Node) {
    trim_meta(n);
    if let Some(status) = n.status.as_mut() {
        // Only addresses are read (InternalIP per family); the rest is large and churns.
        *status = k8s_openapi::api::core::v1::NodeStatus {
            addresses: status.addresses.take(),
            ..Default::default()
        };
    }
    if let Some(spec) = n.spec.as_mut() {
        spec.taints = None;
        spec.config_source = None;
    }
}

fn trim_slice(s: &mut EndpointSlice) {
    trim_meta(s);
    for e in &mut s.endpoints {
        e.target_ref = None;
        e.hints = None;
        e.deprecated_topology = None;
    }
}

/// Starts every reflector; returns the stores and a future that drives them (run it in a
/// task; it ends when `shutdown` flips).
pub fn start(
    client: Client,
    namespace: &str,
    passwords_secret: &str,
    trigger: Arc<Notify>,
) -> (Stores, impl std::future::Future<Output = ()> + Send + 'static) {
    let default = watcher::Config::default();
    let (policies, w1) = reflect(
        Api::all(client.clone()),
        default.clone(),
        trim_meta,
        trigger.clone(),
    );
    let (nodes, w2) = reflect(
        Api::all(client.clone()),
        default.clone(),
        trim_node,
        trigger.clone(),
    );
    let (services, w3) = reflect(
        Api::all(client.clone()),
        default.clone(),
        trim_meta,
        trigger.clone(),
    );
    let (slices, w4) = reflect(
        Api::all(client.clone()),
        default.clone(),
        trim_slice,
        trigger.clone(),
    );
    let secret_cfg = watcher::Config::default().fields(&format!("metadata.name={passwords_secret}"));
    let (secrets, w5) = reflect(
        Api::namespaced(client.clone(), namespace),
        secret_cfg,
        trim_meta,
        trigger.clone(),
    );
    let (intents, w6) = reflect(
        Api::all(client.clone()),
        default.clone(),
        trim_meta,
        trigger.clone(),
    );
    let (sets, w7) = reflect(Api::all(client.clone()), default, trim_meta, trigger.clone());
    let egress_writer = reflector::store::Writer::new(egress_resource());
    let egress_reader = egress_writer.as_reader();
    let (settled_tx, egress_settled) = watch::channel(false);
    let egress = drive_egress(client, egress_writer, settled_tx, trigger);
    let stores = Stores {
        policies,
        nodes,
        services,
        slices,
        secrets,
        egresses: egress_reader,
        intents,
        sets,
        egress_settled,
    };
    let all = async move {
        tokio::join!(w1, w2, w3, w4, w5, w6, w7, egress);
    };
    (stores, all)
}

fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    trigger: Arc<Notify>,
) -> (Store<K>, impl std::future::Future<Output = ()> + Send + 'static)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff().modify(trim));
    (reader, pump(stream, kind, trigger))
}

async fn pump<S, K, E>(stream: S, kind: String, trigger: Arc<Notify>)
where
    S: Stream<Item = Result<watcher::Event<K>, E>>,
    E: std::fmt::Display,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            // Init and InitApply are followed by InitDone: poke once for the batch.
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(_) => trigger.notify_one(),
            Err(error) => tracing::warn!(%kind, %error, "watch failed; retrying with backoff"),
        }
    }
}

async fn drive_egress(
    client: Client,
    writer: reflector::store::Writer<DynamicObject>,
    settled: watch::Sender<bool>,
    trigger: Arc<Notify>,
) {
    let resource = egress_resource();
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let mut reported_absent = false;
    loop {
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                if !reported_absent {
                    tracing::info!(
                        "Antrea Egress CRD (crd.antrea.io/v1beta1) not installed: no Egress IPs to announce"
                    );
                    reported_absent = true;
                }
                settled.send_replace(true);
            }
            Err(error) => tracing::warn!(%error, "cannot tell whether Antrea Egress is installed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    tracing::info!("Antrea Egress CRD found: watching Egresses");
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|o: &mut DynamicObject| {
                o.managed_fields_mut().clear();
                // Only the status is read.
                if let Some(data) = o.data.as_object_mut() {
                    data.retain(|k, _| k == "status");
                }
            }),
    );
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => {
                settled.send_replace(true);
                trigger.notify_one();
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(_) => trigger.notify_one(),
            Err(error) => tracing::warn!(kind = "Egress", %error, "watch failed; retrying with backoff"),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;
    use crate::intent::{OVERRIDE_ANNOTATIONS, ROUTER_ID_ANNOTATION};

    #[test]
    fn trimmed_nodes_keep_the_annotations_the_engine_reads() {
        let mut node = crate::fixtures::node("n1")
            .annotation(ROUTER_ID_ANNOTATION, "192.0.2.1")
            .ipv4("192.0.2.1")
            .build();
        for a in OVERRIDE_ANNOTATIONS {
            node.metadata
                .annotations
                .get_or_insert_default()
                .insert(a.into(), "x".into());
        }
        node.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        let before = node.metadata.annotations.clone();
        trim_node(&mut node);
        assert_eq!(node.metadata.annotations, before);
        assert!(node.metadata.managed_fields.is_none_or(|m| m.is_empty()));
    }
}
