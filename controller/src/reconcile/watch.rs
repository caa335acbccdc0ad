//! The informers: one reflector per kind, with caches trimmed to what the engine reads.
//! Pods are watched cluster-wide but only those labelled `bgpintent.io/advertise=cluster|local`
//! ([`POD_SELECTOR`], filtered by the API server), so the cache holds the opted-in Pods, not
//! every Pod of the cluster.
//!
//! Every event pokes one shared [`Notify`]; the pass loop debounces those pokes. Antrea's
//! `Egress` is optional: its absence is probed, logged once, and probed again every minute,
//! so installing Antrea later needs no restart.

use std::{sync::Arc, time::Duration};

use bgpintent_crd::{BGPAdvertisementSet, BGPNodeIntent, BGPPolicy};
use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    core::v1::{Node, Pod, PodSpec, PodStatus, Secret, Service},
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

use crate::intent::{ADVERTISE_LABEL, POD_SELECTOR};

/// Read-only caches of everything the controller reads.
#[derive(Clone)]
pub struct Stores {
    pub policies: Store<BGPPolicy>,
    pub nodes: Store<Node>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    /// Labelled Pods only ([`POD_SELECTOR`]).
    pub pods: Store<Pod>,
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
        let _ = self.pods.wait_until_ready().await;
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

/// What the engine reads of a Pod (see `intent::pods`): name, namespace, uid, our label,
/// deletionTimestamp, resourceVersion (the watcher resumes from it), nodeName, hostNetwork,
/// phase, Pod IPs and the Ready condition. Containers, volumes and the rest of the status are
/// large and churn; they are dropped.
pub fn trim_pod(p: &mut Pod) {
    let metadata = std::mem::take(&mut p.metadata);
    p.metadata = kube::api::ObjectMeta {
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resource_version: metadata.resource_version,
        deletion_timestamp: metadata.deletion_timestamp,
        labels: metadata.labels.map(|mut l| {
            l.retain(|k, _| k == ADVERTISE_LABEL);
            l
        }),
        ..Default::default()
    };
    if let Some(spec) = p.spec.as_mut() {
        *spec = PodSpec {
            node_name: spec.node_name.take(),
            host_network: spec.host_network.take(),
            ..Default::default()
        };
    }
    if let Some(status) = p.status.as_mut() {
        *status = PodStatus {
            phase: status.phase.take(),
            pod_ip: status.pod_ip.take(),
            pod_ips: status.pod_ips.take(),
            conditions: status.conditions.take().map(|mut c| {
                c.retain(|c| c.type_ == "Ready");
                for c in &mut c {
                    // Timestamps and messages change without changing readiness.
                    c.last_probe_time = None;
                    c.last_transition_time = None;
                    c.message = None;
                    c.reason = None;
                }
                c
            }),
            ..Default::default()
        };
    }
}

/// The watcher configuration of the Pod reflector: labelled Pods only.
pub fn pod_watch_config() -> watcher::Config {
    watcher::Config::default().labels(POD_SELECTOR)
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
    let (pods, w8) = reflect(
        Api::all(client.clone()),
        pod_watch_config(),
        trim_pod,
        trigger.clone(),
    );
    let egress_writer = reflector::store::Writer::new(egress_resource());
    let egress_reader = egress_writer.as_reader();
    let (settled_tx, egress_settled) = watch::channel(false);
    let egress = drive_egress(client, egress_writer, settled_tx, trigger);
    let stores = Stores {
        policies,
        nodes,
        services,
        slices,
        pods,
        secrets,
        egresses: egress_reader,
        intents,
        sets,
        egress_settled,
    };
    let all = async move {
        tokio::join!(w1, w2, w3, w4, w5, w6, w7, w8, egress);
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

async fn pump<S, K>(stream: S, kind: String, trigger: Arc<Notify>)
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            // Init and InitApply are followed by InitDone: poke once for the batch.
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(_) => trigger.notify_one(),
            Err(error) => {
                let error = bgpintent_telemetry::watch_error(&error);
                tracing::warn!(%kind, %error, "watch failed; retrying with backoff")
            }
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
            Err(error) => {
                let error = bgpintent_telemetry::watch_error(&error);
                tracing::warn!(kind = "Egress", %error, "watch failed; retrying with backoff")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{Container, PodCondition},
        apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry,
    };

    use super::*;
    use crate::{
        fixtures::pod,
        intent::{OVERRIDE_ANNOTATIONS, ROUTER_ID_ANNOTATION, pod_route},
    };

    #[test]
    fn a_trimmed_pod_keeps_what_the_engine_reads_and_nothing_else() {
        for p in [
            pod("ns", "a", "local")
                .on("n1")
                .ips(&["198.51.100.1", "2001:db8::1"]),
            pod("ns", "a", "cluster")
                .on("n1")
                .ips(&["198.51.100.1"])
                .ready("False"),
            pod("ns", "a", "local")
                .on("n1")
                .ips(&["198.51.100.1"])
                .terminating(),
            pod("ns", "a", "local").on("n1").host_network().ips(&["10.0.0.1"]),
        ] {
            let mut p = p.build();
            p.metadata.resource_version = Some("42".into());
            p.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
            p.metadata.annotations = Some([("big".to_owned(), "x".repeat(1000))].into());
            p.metadata
                .labels
                .get_or_insert_default()
                .insert("app".into(), "db".into());
            p.spec.get_or_insert_default().containers = vec![Container {
                name: "c".into(),
                image: Some("registry.example/c:1".into()),
                ..Container::default()
            }];
            let status = p.status.get_or_insert_default();
            status.host_ip = Some("10.0.0.1".into());
            status.conditions.get_or_insert_default().push(PodCondition {
                type_: "Initialized".into(),
                status: "True".into(),
                ..PodCondition::default()
            });
            let before = pod_route(&p, &mut Vec::new());
            trim_pod(&mut p);
            assert_eq!(pod_route(&p, &mut Vec::new()), before);
            assert_eq!(p.metadata.resource_version.as_deref(), Some("42"));
            assert!(p.metadata.managed_fields.is_none() && p.metadata.annotations.is_none());
            assert_eq!(
                p.metadata.labels.as_ref().unwrap().keys().collect::<Vec<_>>(),
                [ADVERTISE_LABEL]
            );
            assert!(p.spec.as_ref().unwrap().containers.is_empty());
            let status = p.status.as_ref().unwrap();
            assert!(status.host_ip.is_none());
            assert!(status.conditions.iter().flatten().all(|c| c.type_ == "Ready"));
        }
    }

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
