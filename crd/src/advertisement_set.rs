//! `BGPAdvertisementSet`: prefixes every Node of a policy announces, stored once.
//!
//! A ClusterIP with `internalTrafficPolicy: Cluster` is announced by every Node the policy
//! owns. Copying it into every BGPNodeIntent would make one Service change rewrite every
//! intent; instead the controller writes it into one of a few sets (owned by the policy,
//! sharded so no object grows past a bounded size) and each intent names its sets.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::PrefixGroup;

/// A shard of the prefixes every Node of one policy announces.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "bgpintent.io",
    version = "v1alpha1",
    kind = "BGPAdvertisementSet",
    plural = "bgpadvertisementsets",
    singular = "bgpadvertisementset",
    shortname = "bas",
    category = "bgp-intent",
    printcolumn = r#"{"name":"Policy","type":"string","jsonPath":".spec.policy"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BGPAdvertisementSetSpec {
    /// Name of the policy whose Nodes announce these prefixes.
    #[schemars(length(max = 253))]
    pub policy: String,
    /// Prefixes grouped by source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8192))]
    pub prefixes: Vec<PrefixGroup>,
}
