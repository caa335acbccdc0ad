//! Which policy owns which Node.
//!
//! A Node is owned by the oldest policy (creationTimestamp, then name) that selects it; the
//! other selecting policies report a conflict for it. A policy without a creationTimestamp
//! (an offline manifest) sorts before every timestamped one.
//!
//! # Invalid policies hold, they do not release
//!
//! An invalid policy still takes part in ownership: it owns the Nodes it would own if it
//! were valid, but gets no new intent for them ("held"). The I/O layer keeps the intent
//! already written for a held Node, so a typo in an edited policy neither tears down its
//! sessions nor hands its Nodes to a younger policy with different peers and ASN — the two
//! outcomes an operator least expects from a bad edit. Other policies are unaffected: the
//! Nodes a valid policy owns and the intents it gets are the same whether an invalid policy
//! exists or not, unless the invalid one is older and selects the same Nodes, in which case
//! it owned them anyway.
//!
//! When the node selector itself is invalid, the Nodes it selects are unknown. The policy
//! then holds the Nodes whose current intent names it (`Snapshot::current_owners`), which
//! is exactly the set it owned before the bad edit. Offline, with no current intents, such
//! a policy holds nothing.
//!
//! A valid policy's Node whose override annotations are invalid is held the same way, alone
//! (see `overrides`): it stays owned and effective, but gets no new intent until fixed.

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{FieldError, PolicySettings, Selector};
use bgpintent_crd::{BGPPolicy, convert};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::nodes::NodeFacts;

/// A BGPPolicy, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct ParsedPolicy {
    pub name: String,
    pub uid: String,
    pub generation: i64,
    pub created: Option<Time>,
    pub selector: Option<Selector>,
    pub settings: Option<PolicySettings>,
    pub errors: Vec<FieldError>,
}

impl ParsedPolicy {
    pub fn read(policy: &BGPPolicy) -> Self {
        let mut errors = Vec::new();
        let selector = match convert::selector("spec.nodeSelector", &policy.spec.node_selector) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.extend(e.0);
                None
            }
        };
        let settings = match policy.spec.settings() {
            Ok(s) => Some(s),
            Err(e) => {
                errors.extend(e.0);
                None
            }
        };
        Self {
            name: policy.metadata.name.clone().unwrap_or_default(),
            uid: policy.metadata.uid.clone().unwrap_or_default(),
            generation: policy.metadata.generation.unwrap_or(0),
            created: policy.metadata.creation_timestamp.clone(),
            selector,
            settings,
            errors,
        }
    }

    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    fn selects(&self, node: &NodeFacts, current_owners: &BTreeMap<String, String>) -> bool {
        match &self.selector {
            Some(s) => s.matches(&node.labels),
            None => current_owners.get(&node.name) == Some(&self.name),
        }
    }
}

/// Policies in ownership order: oldest first, then by name.
pub(crate) fn by_age(mut policies: Vec<ParsedPolicy>) -> Vec<ParsedPolicy> {
    policies.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));
    policies
}

/// The outcome of selection, indexed like the policy slice it was computed from.
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    /// Node → index of its owning policy.
    pub owner: BTreeMap<String, usize>,
    pub selected: Vec<BTreeSet<String>>,
    /// Per policy: Node → name of the older policy that owns it.
    pub conflicts: Vec<BTreeMap<String, String>>,
}

pub(crate) fn ownership(
    policies: &[ParsedPolicy],
    nodes: &[NodeFacts],
    current_owners: &BTreeMap<String, String>,
) -> Ownership {
    let mut out = Ownership {
        owner: BTreeMap::new(),
        selected: vec![BTreeSet::new(); policies.len()],
        conflicts: vec![BTreeMap::new(); policies.len()],
    };
    for node in nodes {
        let mut owner: Option<usize> = None;
        for (i, policy) in policies.iter().enumerate() {
            if !policy.selects(node, current_owners) {
                continue;
            }
            out.selected[i].insert(node.name.clone());
            match owner {
                None => owner = Some(i),
                Some(o) => {
                    out.conflicts[i].insert(node.name.clone(), policies[o].name.clone());
                }
            }
        }
        if let Some(o) = owner {
            out.owner.insert(node.name.clone(), o);
        }
    }
    out
}
