//! Per-Pod announcements: Pods labelled `bgpintent.io/advertise=cluster|local` have their IPs
//! announced as host routes.
//!
//! Like a Service, a Pod's contribution is computed without looking at policies or Nodes:
//! [`pod_route`] says whether the Pod itself is announceable (labelled, Running, Ready, not
//! terminating, not hostNetwork, has IPs) and, if so, its prefixes and scope. Policies and
//! Nodes are applied by [`Resolution::set_pod`], which is also the incremental path: one Pod
//! event recomputes one [`PodRoute`] and patches the Nodes and the shard it touches.
//!
//! * `cluster` — every Node of every policy with `advertisements.pod` announces the IPs,
//!   wherever the Pod runs (as a Cluster-policy Service IP: the CNI forwards from any Node).
//!   They are shared prefixes: stored once in the policy's `BGPAdvertisementSet` shards.
//! * `local` — only the Node in `spec.nodeName`, if a policy with `advertisements.pod` owns
//!   it: node-local prefixes in that Node's intent. A Pod on a Node no policy owns is
//!   announced nowhere.
//!
//! In both cases a Node announces only the families it has a next hop for.
//! `advertisements.pod` keeps its Antrea meaning too (the Node's `spec.podCIDRs`, see
//! [`Source::PodCidr`]); labelled Pods add host routes on top.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use bgpintent_api::{Family, Prefix, Source, fnv1a32};
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use super::{Resolution, Scope, report::Problem, update_set};

/// The label that opts a Pod in; its value is the scope (`cluster` or `local`).
pub const ADVERTISE_LABEL: &str = "bgpintent.io/advertise";
/// The label selector of the controller's Pod watch: only opted-in Pods reach the cache.
pub const POD_SELECTOR: &str = "bgpintent.io/advertise in (cluster,local)";

/// `namespace/name` of a Pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
}

impl PodKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn of(pod: &Pod) -> Self {
        Self::new(
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    /// Stable 32-bit shard hash of `namespace/name` (FNV-1a, as for Services).
    pub fn shard_hash(&self) -> u32 {
        fnv1a32(format!("{}/{}", self.namespace, self.name).as_bytes())
    }

    pub fn source(&self) -> Source {
        Source::Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

impl fmt::Display for PodKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An announceable Pod, before policies and Nodes are applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRoute {
    /// `cluster` → [`Scope::Cluster`], `local` → [`Scope::Local`].
    pub scope: Scope,
    /// `spec.nodeName`: the announcing Node for `local`, informational for `cluster`.
    pub node: String,
    /// Host prefixes of `status.podIPs` (both families for dual stack); sorted, no duplicates.
    pub prefixes: Vec<Prefix>,
    /// Cached [`PodKey::shard_hash`].
    pub shard_hash: u32,
}

/// Why a Pod is not announced, whatever the policies say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodSkip {
    /// No `bgpintent.io/advertise` label (the controller does not even watch it).
    NotLabelled,
    /// The label has a value other than `cluster` or `local`.
    UnknownScope(String),
    /// `spec.hostNetwork`: the Pod's IP is its Node's.
    HostNetwork,
    /// `metadata.deletionTimestamp` is set: withdrawn as soon as deletion starts.
    Terminating,
    /// `status.phase` is not `Running`.
    NotRunning(Option<String>),
    /// The `Ready` condition is not `True`.
    NotReady(Option<String>),
    /// No `spec.nodeName` (not scheduled).
    NotScheduled,
    /// No (valid) `status.podIPs` / `status.podIP`.
    NoIps,
}

impl fmt::Display for PodSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodSkip::NotLabelled => write!(f, "it has no {ADVERTISE_LABEL} label"),
            PodSkip::UnknownScope(v) => write!(
                f,
                "its {ADVERTISE_LABEL} label is {v:?}, not \"cluster\" or \"local\""
            ),
            PodSkip::HostNetwork => {
                f.write_str("it uses hostNetwork, so its IP is its Node's (announce the Node, not the Pod)")
            }
            PodSkip::Terminating => f.write_str("it is being deleted (deletionTimestamp is set)"),
            PodSkip::NotRunning(phase) => write!(
                f,
                "its phase is {}, not Running",
                phase.as_deref().unwrap_or("unset")
            ),
            PodSkip::NotReady(status) => write!(
                f,
                "its Ready condition is {}, not True",
                status.as_deref().unwrap_or("missing")
            ),
            PodSkip::NotScheduled => f.write_str("it has no spec.nodeName (not scheduled)"),
            PodSkip::NoIps => f.write_str("it has no valid status.podIPs"),
        }
    }
}

/// The scope a Pod asks for, if it is labelled.
pub fn pod_scope(pod: &Pod) -> Result<Scope, PodSkip> {
    match pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ADVERTISE_LABEL))
        .map(String::as_str)
    {
        None => Err(PodSkip::NotLabelled),
        Some("cluster") => Ok(Scope::Cluster),
        Some("local") => Ok(Scope::Local),
        Some(other) => Err(PodSkip::UnknownScope(other.to_owned())),
    }
}

/// The raw IP strings of a Pod with the field each came from: `status.podIPs`, else
/// `status.podIP` (older kubelets, hand-written manifests).
pub(crate) fn pod_ips(pod: &Pod) -> Vec<(String, &str)> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    match &status.pod_ips {
        Some(ips) if !ips.is_empty() => ips
            .iter()
            .enumerate()
            .map(|(i, ip)| (format!("status.podIPs[{i}].ip"), ip.ip.as_str()))
            .collect(),
        _ => status
            .pod_ip
            .iter()
            .map(|ip| ("status.podIP".to_owned(), ip.as_str()))
            .collect(),
    }
}

/// Whether one labelled Pod is announceable, and its route. A hostNetwork Pod and
/// unparsable IPs are also reported in `problems` (the label asks for something that cannot
/// be done); the other reasons are ordinary life-cycle states.
pub fn pod_route(pod: &Pod, problems: &mut Vec<Problem>) -> Result<PodRoute, PodSkip> {
    let scope = pod_scope(pod)?;
    let key = PodKey::of(pod);
    let object = format!("Pod {key}");
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    if spec.and_then(|s| s.host_network) == Some(true) {
        problems.push(Problem::new(
            &object,
            "spec.hostNetwork",
            format!("labelled {ADVERTISE_LABEL} but uses hostNetwork: its IP is its Node's; not announced"),
        ));
        return Err(PodSkip::HostNetwork);
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(PodSkip::Terminating);
    }
    let phase = status.and_then(|s| s.phase.clone());
    if phase.as_deref() != Some("Running") {
        return Err(PodSkip::NotRunning(phase));
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    if ready.as_deref() != Some("True") {
        return Err(PodSkip::NotReady(ready));
    }
    let Some(node) = spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()) else {
        return Err(PodSkip::NotScheduled);
    };
    let mut prefixes = BTreeSet::new();
    for (field, ip) in pod_ips(pod) {
        match Prefix::host_from_field(&field, ip) {
            Ok(p) => {
                prefixes.insert(p);
            }
            Err(e) => problems.push(Problem::from_field(&object, &e)),
        }
    }
    if prefixes.is_empty() {
        return Err(PodSkip::NoIps);
    }
    Ok(PodRoute {
        scope,
        node,
        prefixes: prefixes.into_iter().collect(),
        shard_hash: key.shard_hash(),
    })
}

/// What [`Resolution::set_pod`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodChange {
    pub pod: PodKey,
    /// Nodes whose node-specific prefixes may have changed.
    pub nodes: BTreeSet<String>,
    /// Families whose shared (`cluster`) Pod prefixes changed.
    pub shared_families: BTreeSet<Family>,
    /// The first `cluster` Pod appeared or the last one went: policies that advertise Pods
    /// but no Service IP type gain or lose their sets, so the layout must be recomputed.
    pub shared_layout: bool,
}

impl Resolution {
    /// Replaces (or, with `None`, removes) one Pod's route and updates the Nodes it touches.
    /// `resolve` is built on this, so applying a change here gives exactly what a full
    /// recomputation would.
    pub fn set_pod(&mut self, key: PodKey, route: Option<PodRoute>) -> PodChange {
        let is_cluster = |r: Option<&PodRoute>| r.is_some_and(|r| r.scope == Scope::Cluster);
        let flips = is_cluster(self.pods.get(&key)) != is_cluster(route.as_ref());
        let mut change = self.replace_pod(key, route);
        // Only this Pod's own cluster-ness changing can flip "any cluster Pod"; then the
        // flip happened iff no other cluster Pod exists.
        change.shared_layout = flips
            && !self
                .pods
                .iter()
                .any(|(k, r)| *k != change.pod && r.scope == Scope::Cluster);
        change
    }

    /// [`Resolution::set_pod`] without `shared_layout` (which costs a scan of every Pod;
    /// `resolve` does not need it).
    pub(super) fn replace_pod(&mut self, key: PodKey, route: Option<PodRoute>) -> PodChange {
        let mut change = PodChange {
            pod: key.clone(),
            ..PodChange::default()
        };
        if self.pods.get(&key) == route.as_ref() {
            return change;
        }
        let old = self.pods.remove(&key);
        let shared = |r: &Option<PodRoute>| -> BTreeSet<Prefix> {
            r.iter()
                .filter(|r| r.scope == Scope::Cluster)
                .flat_map(|r| r.prefixes.iter().copied())
                .collect()
        };
        change.shared_families = shared(&old)
            .symmetric_difference(&shared(&route))
            .map(|p| p.family())
            .collect();
        if let Some(old) = &old {
            self.apply_local_pod(&key, old, false, &mut change.nodes);
            self.index_cluster_pod(&key, old, false);
        }
        if let Some(new) = route {
            self.apply_local_pod(&key, &new, true, &mut change.nodes);
            self.index_cluster_pod(&key, &new, true);
            self.pods.insert(key, new);
        }
        change
    }

    /// Adds or removes a `cluster` Pod in [`Resolution::cluster_pod_ips`].
    fn index_cluster_pod(&mut self, key: &PodKey, route: &PodRoute, add: bool) {
        if route.scope != Scope::Cluster {
            return;
        }
        for prefix in &route.prefixes {
            update_set(&mut self.cluster_pod_ips, *prefix, key.clone(), add);
        }
    }

    /// Whether any `cluster` Pod is announceable (policies with `advertisements.pod` then
    /// need sets even when they advertise no Service IP).
    pub fn has_cluster_pods(&self) -> bool {
        self.pods.values().any(|r| r.scope == Scope::Cluster)
    }

    /// Adds or removes a `local` Pod's prefixes on its Node, if that Node has an intent whose
    /// policy advertises Pods and a next hop of the prefix's family, with their attributes
    /// (see the `attributes` module).
    fn apply_local_pod(&mut self, key: &PodKey, route: &PodRoute, add: bool, touched: &mut BTreeSet<String>) {
        if route.scope != Scope::Local {
            return;
        }
        let Some(nr) = self.nodes.get_mut(&route.node) else {
            return;
        };
        let announces = self.policies.get(&nr.intent.policy.name).is_some_and(|p| p.pods);
        if !announces {
            return;
        }
        let source = key.source();
        let mut changed = Vec::new();
        for prefix in &route.prefixes {
            if nr.intent.next_hops.for_family(prefix.family()).is_none() {
                continue;
            }
            update_set(&mut nr.intent.prefixes, *prefix, source.clone(), add);
            changed.push(*prefix);
        }
        if !changed.is_empty() {
            touched.insert(route.node.clone());
        }
        for prefix in changed {
            self.node_local_changed(&route.node, prefix);
        }
    }

    /// Adds the `cluster` Pod prefixes (of one family, or both) to `out`. The caller checks
    /// that the policy advertises Pods.
    pub(super) fn add_shared_pods(
        &self,
        family: Option<Family>,
        out: &mut BTreeMap<Prefix, BTreeSet<Source>>,
    ) {
        for (key, route) in &self.pods {
            if route.scope != Scope::Cluster {
                continue;
            }
            for prefix in &route.prefixes {
                if family.is_none_or(|f| f == prefix.family()) {
                    out.entry(*prefix).or_default().insert(key.source());
                }
            }
        }
    }
}
