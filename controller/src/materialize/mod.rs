//! From a [`Resolution`] to the objects the controller writes: one `BGPNodeIntent` per
//! Node, sharded `BGPAdvertisementSet`s per policy and family, router-ID annotations.
//!
//! Pure, like the engine. Storage decisions live here and only here:
//!
//! * a Node's intent holds its node-specific prefixes (PodCIDRs, Egress IPs, Local-policy
//!   Service IPs, `local` Pods) and the names of the sets of its policy, one list per family
//!   it has a next hop for — so the union of an intent and its sets is exactly
//!   [`Resolution::logical_intent`];
//! * Cluster-policy Service IPs and `cluster` Pod IPs go once into the sets, sharded by
//!   Service or Pod (see [`shards`]), so one Service or Pod change rewrites one set of at
//!   most ~16 KiB, whatever the Node count.
//!
//! Write order for the I/O layer ([`Diff`]): apply sets, then intents, then delete intents
//! and sets that are gone. A speaker therefore never points at a set that does not exist
//! yet, and a re-layout (new set names) is make-before-break.

pub mod shards;

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{Family, RouterId};
use bgpintent_crd::{
    BGPAdvertisementSet, BGPAdvertisementSetSpec, BGPNodeIntent, BGPNodeIntentSpec, BGPPolicy,
    MAX_PREFIXES_PER_GROUP, common::PrefixGroup,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::intent::{PodChange, PolicyReport, Resolution, ServiceChange};

/// Largest object we accept to write (the API server's own limit is ~1.5 MiB; etcd
/// performance degrades well before).
pub const MAX_OBJECT_BYTES: usize = 512 * 1024;
/// Label put on every generated object.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "bgp-intent-controller");

/// Shard counts per (policy, family): an input of [`materialize`] so counts stay stable
/// between runs (hysteresis), and an output to feed to the next run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub shards: BTreeMap<(String, Family), u32>,
}

/// Who owns a generated object (for `metadata.ownerReferences`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }
}

/// A `BGPNodeIntent` to write; owned by its Node.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentObject {
    pub owner: Owner,
    pub spec: BGPNodeIntentSpec,
    /// Serialized size of the whole object (JSON).
    pub bytes: usize,
}

/// One shard of a policy's shared prefixes; owned by the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SetObject {
    pub owner: Owner,
    pub family: Family,
    pub index: u32,
    pub count: u32,
    pub spec: BGPAdvertisementSetSpec,
    pub bytes: usize,
}

/// Everything the controller writes for one resolution.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Materialized {
    /// By Node name (= object name).
    pub intents: BTreeMap<String, IntentObject>,
    /// By object name.
    pub sets: BTreeMap<String, SetObject>,
    /// Node → router-ID annotation to add.
    pub annotations: BTreeMap<String, RouterId>,
    /// Nodes whose existing intent must be kept as is (owned by an invalid policy).
    pub held: BTreeSet<String>,
    pub layout: Layout,
    /// Objects over [`MAX_OBJECT_BYTES`] or a CRD list bound, described for a report.
    pub oversized: Vec<String>,
}

/// Object names to write and delete, in write order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    pub apply_sets: Vec<String>,
    pub apply_intents: Vec<String>,
    pub delete_intents: Vec<String>,
    pub delete_sets: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.apply_sets.is_empty()
            && self.apply_intents.is_empty()
            && self.delete_intents.is_empty()
            && self.delete_sets.is_empty()
    }
}

fn policy_owner(res: &Resolution, policy: &str) -> Owner {
    Owner {
        api_version: BGPPolicy::api_version(&()).into_owned(),
        kind: BGPPolicy::kind(&()).into_owned(),
        name: policy.to_owned(),
        uid: res
            .policies
            .get(policy)
            .map(|p| p.uid.clone())
            .unwrap_or_default(),
    }
}

/// Builds every object from scratch. `previous` is the layout of the last run (empty the
/// first time and offline).
pub fn materialize(res: &Resolution, previous: &Layout) -> Materialized {
    let mut out = Materialized {
        annotations: res.router_id_annotations.clone(),
        held: res.held.keys().cloned().collect(),
        ..Materialized::default()
    };
    for (policy, family) in set_keys(res) {
        let sizes = shards::sizes(res, &policy, family);
        let count = shards::choose_count(&sizes, previous.shards.get(&(policy.clone(), family)).copied());
        out.layout.shards.insert((policy.clone(), family), count);
        for index in 0..count {
            let set = build_set(res, &policy, family, index, count);
            out.sets
                .insert(shards::set_name(&policy, family, count, index), set);
        }
    }
    for node in res.nodes.keys() {
        let intent = build_intent(res, &out.layout, node).expect("node exists");
        out.intents.insert(node.clone(), intent);
    }
    out.check_sizes();
    out
}

/// Which (policy, family) need sets: policies that advertise Service IPs, or Pods while any
/// `cluster` Pod exists (so clusters that do not use per-Pod announcements get no empty
/// sets); families that at least one of their Nodes can announce.
fn set_keys(res: &Resolution) -> BTreeSet<(String, Family)> {
    let cluster_pods = res.has_cluster_pods();
    let needs_sets = |p: &PolicyReport| !p.service_ip_types.is_empty() || (p.pods && cluster_pods);
    let mut keys: BTreeSet<(String, Family)> = BTreeSet::new();
    for nr in res.nodes.values() {
        let policy = &nr.intent.policy.name;
        if res.policies.get(policy).is_some_and(needs_sets) {
            for family in nr.intent.next_hops.families() {
                keys.insert((policy.clone(), family));
            }
        }
    }
    // A Node held for invalid override annotations keeps its written intent, which names
    // its policy's sets: keep them even when no other Node of the policy needs them.
    for report in res.policies.values().filter(|p| needs_sets(p)) {
        for held in report.invalid_overrides.values() {
            keys.extend(held.families.iter().map(|f| (report.name.clone(), *f)));
        }
    }
    keys
}

/// One shard: the Services, then the `cluster` Pods (if the policy advertises Pods), whose
/// hash falls in it.
fn build_set(res: &Resolution, policy: &str, family: Family, index: u32, count: u32) -> SetObject {
    let mut prefixes: Vec<PrefixGroup> = res
        .services
        .iter()
        .filter(|(_, r)| r.shard_hash % count == index)
        .flat_map(|(key, routes)| shards::service_groups(res, policy, key, routes, family))
        .collect();
    prefixes.extend(
        res.pods
            .iter()
            .filter(|(_, r)| r.shard_hash % count == index)
            .flat_map(|(key, route)| shards::pod_groups(res, policy, key, route, family)),
    );
    let mut set = SetObject {
        owner: policy_owner(res, policy),
        family,
        index,
        count,
        spec: BGPAdvertisementSetSpec {
            policy: policy.to_owned(),
            prefixes,
        },
        bytes: 0,
    };
    set.bytes = json_len(&set.to_object(&shards::set_name(policy, family, count, index)));
    set
}

fn build_intent(res: &Resolution, layout: &Layout, node: &str) -> Option<IntentObject> {
    let nr = res.nodes.get(node)?;
    let mut intent = nr.intent.clone();
    for family in intent.next_hops.families() {
        let key = (intent.policy.name.clone(), family);
        if let Some(&count) = layout.shards.get(&key) {
            intent
                .sets
                .extend((0..count).map(|i| shards::set_name(&key.0, family, count, i)));
        }
    }
    let mut spec = BGPNodeIntentSpec::from(&intent);
    spec.prefixes = split_groups(spec.prefixes);
    let mut object = IntentObject {
        owner: Owner {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node.to_owned(),
            uid: nr.uid.clone(),
        },
        spec,
        bytes: 0,
    };
    object.bytes = json_len(&object.to_object());
    Some(object)
}

/// Splits groups over the CRD's per-group prefix bound (a Service with thousands of
/// external IPs) into several groups of the same source.
fn split_groups(groups: Vec<PrefixGroup>) -> Vec<PrefixGroup> {
    let max = MAX_PREFIXES_PER_GROUP as usize;
    if groups.iter().all(|g| g.prefixes.len() <= max) {
        return groups;
    }
    groups
        .into_iter()
        .flat_map(|g| {
            g.prefixes
                .chunks(max)
                .map(|c| PrefixGroup {
                    source: g.source.clone(),
                    prefixes: c.to_vec(),
                    attributes: g.attributes.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn json_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX)
}

fn labels() -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([(
        MANAGED_BY.0.to_owned(),
        MANAGED_BY.1.to_owned(),
    )]))
}

impl IntentObject {
    /// The object as it is applied (server-side apply body).
    pub fn to_object(&self) -> BGPNodeIntent {
        let mut object = BGPNodeIntent::new(&self.owner.name, self.spec.clone());
        object.metadata = ObjectMeta {
            name: Some(self.owner.name.clone()),
            labels: labels(),
            owner_references: Some(vec![self.owner.reference()]),
            ..ObjectMeta::default()
        };
        object
    }
}

impl SetObject {
    /// The object as it is applied, under `name`.
    pub fn to_object(&self, name: &str) -> BGPAdvertisementSet {
        let mut object = BGPAdvertisementSet::new(name, self.spec.clone());
        object.metadata = ObjectMeta {
            name: Some(name.to_owned()),
            labels: labels(),
            owner_references: Some(vec![self.owner.reference()]),
            ..ObjectMeta::default()
        };
        object
    }
}

/// What [`Materialized::apply_service_change`] rewrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Touched {
    pub sets: Vec<String>,
    pub intents: Vec<String>,
    /// A shard outgrew its bound and everything was re-laid out; the lists then hold every
    /// object that changed.
    pub relayout: bool,
}

impl Materialized {
    /// Updates the objects one Service change affects (`change` from
    /// [`Resolution::set_service`] on `res`): its shard in each set of the changed families
    /// (and the shards of Services and `cluster` Pods sharing an IP with it, when that IP's
    /// attributes may have changed) and the intents of the Nodes whose Local routes or
    /// attributes changed. Equal to a full [`materialize`] with the same layout (a property
    /// test checks it).
    pub fn apply_service_change(&mut self, res: &Resolution, change: &ServiceChange) -> Touched {
        // (shard hash, family) of everything whose shared groups changed.
        let mut changed: BTreeSet<(u32, Family)> = change
            .shared_families
            .iter()
            .map(|f| (change.service.shard_hash(), *f))
            .collect();
        for (other, families) in &change.shared_others {
            changed.extend(families.iter().map(|f| (other.shard_hash(), *f)));
        }
        for (pod, families) in &change.shared_pods {
            changed.extend(families.iter().map(|f| (pod.shard_hash(), *f)));
        }
        self.apply_change(res, &changed, &change.nodes)
    }

    /// Updates the objects one Pod change affects (`change` from [`Resolution::set_pod`] on
    /// `res`): its shard in each set of the changed families and the intents of the Nodes
    /// whose `local` Pod prefixes changed. When the first `cluster` Pod appears or the last
    /// one goes, policies that advertise Pods but no Service IP gain or lose their sets:
    /// that is a re-layout. Equal to a full [`materialize`] with the same layout.
    pub fn apply_pod_change(&mut self, res: &Resolution, change: &PodChange) -> Touched {
        if change.shared_layout {
            return self.relayout(res);
        }
        let hash = change.pod.shard_hash();
        let changed = change.shared_families.iter().map(|f| (hash, *f)).collect();
        self.apply_change(res, &changed, &change.nodes)
    }

    /// Rewrites the shard each `(hash, family)` of `changed` falls in, in every set of that
    /// family, and the intents of `nodes`; a full re-layout if a shard outgrows its bound.
    fn apply_change(
        &mut self,
        res: &Resolution,
        changed: &BTreeSet<(u32, Family)>,
        nodes: &BTreeSet<String>,
    ) -> Touched {
        let mut touched = Touched::default();
        let keys: BTreeSet<((String, Family), u32, u32)> = self
            .layout
            .shards
            .iter()
            .flat_map(|((policy, f), count)| {
                changed
                    .iter()
                    .filter(move |(_, sf)| sf == f)
                    .map(move |(hash, _)| ((policy.clone(), *f), *count, hash % count))
            })
            .collect();
        for ((policy, family), count, index) in keys {
            let name = shards::set_name(&policy, family, count, index);
            let set = build_set(res, &policy, family, index, count);
            if shards::groups_bytes(&set.spec.prefixes) > shards::SOFT_MAX_SET_BYTES
                && count < shards::MAX_SHARDS
            {
                return self.relayout(res);
            }
            if self.sets.get(&name) != Some(&set) {
                self.sets.insert(name.clone(), set);
                touched.sets.push(name);
            }
        }
        for node in nodes {
            if let Some(intent) = build_intent(res, &self.layout, node)
                && self.intents.get(node) != Some(&intent)
            {
                self.intents.insert(node.clone(), intent);
                touched.intents.push(node.clone());
            }
        }
        touched
    }

    /// Recomputes everything with the current layout as the previous one; the lists hold
    /// every object that changed.
    fn relayout(&mut self, res: &Resolution) -> Touched {
        let fresh = materialize(res, &self.layout);
        let diff = diff(self, &fresh);
        *self = fresh;
        Touched {
            sets: diff.apply_sets,
            intents: diff.apply_intents,
            relayout: true,
        }
    }

    /// Size of the largest object.
    pub fn largest_object(&self) -> usize {
        let i = self.intents.values().map(|o| o.bytes);
        let s = self.sets.values().map(|o| o.bytes);
        i.chain(s).max().unwrap_or(0)
    }

    fn check_sizes(&mut self) {
        for (name, o) in &self.intents {
            if o.bytes > MAX_OBJECT_BYTES || o.spec.prefixes.len() > 8192 {
                self.oversized.push(format!(
                    "BGPNodeIntent {name}: {} bytes, {} prefix groups (limits {MAX_OBJECT_BYTES} bytes, 8192 groups)",
                    o.bytes,
                    o.spec.prefixes.len()
                ));
            }
        }
        for (name, o) in &self.sets {
            if o.bytes > MAX_OBJECT_BYTES {
                self.oversized
                    .push(format!("BGPAdvertisementSet {name}: {} bytes", o.bytes));
            }
        }
    }
}

/// Which objects to write and delete to go from `old` to `new`. Held Nodes' intents are
/// never deleted.
pub fn diff(old: &Materialized, new: &Materialized) -> Diff {
    let changed = |a: Option<&SetObject>, b: &SetObject| a != Some(b);
    Diff {
        apply_sets: new
            .sets
            .iter()
            .filter(|(n, s)| changed(old.sets.get(*n), s))
            .map(|(n, _)| n.clone())
            .collect(),
        apply_intents: new
            .intents
            .iter()
            .filter(|(n, i)| old.intents.get(*n) != Some(*i))
            .map(|(n, _)| n.clone())
            .collect(),
        delete_intents: old
            .intents
            .keys()
            .filter(|n| !new.intents.contains_key(*n) && !new.held.contains(*n))
            .cloned()
            .collect(),
        delete_sets: old
            .sets
            .keys()
            .filter(|n| !new.sets.contains_key(*n))
            .cloned()
            .collect(),
    }
}
