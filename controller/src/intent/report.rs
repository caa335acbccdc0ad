//! What the engine tells operators besides the intents: per-policy reports (the input of
//! the policy status conditions), per-Node notes, and problems with individual objects.
//!
//! Reports are values with stable ordering (sorted maps and sets), so the status writer can
//! compare them with what is written and update only on change.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use bgpintent_api::{Asn, Family, FieldError, PathAttributes, PeerKey, RouterId, ServiceIpType};
use serde::Serialize;

/// A problem with one object that does not fail a policy (a bad Service IP, a malformed
/// Secret key). Never carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// `Kind namespace/name` or `Kind name`.
    pub object: String,
    /// JSON path of the field.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(object: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            object: object.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn from_field(object: &str, e: &FieldError) -> Self {
        Self::new(object, e.field.clone(), e.to_string())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.object, self.field, self.message)
    }
}

/// Everything the status writer needs about one BGPPolicy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PolicyReport {
    pub name: String,
    pub uid: String,
    pub generation: i64,
    /// `Accepted`: no errors from `spec.settings()` or the node selector.
    pub accepted: bool,
    /// Why the policy is not accepted, each naming its field.
    pub errors: Vec<FieldError>,
    /// Valid fields bgp-intent does not act on (e.g. an enabled `bfd`).
    pub ignored: Vec<FieldError>,
    /// Nodes the selector matches (for an invalid selector: the Nodes it holds).
    pub selected: BTreeSet<String>,
    /// Nodes this policy owns and has an intent for.
    pub effective: BTreeSet<String>,
    /// Nodes whose intent the I/O layer keeps as already written (fail static): every Node
    /// of an invalid policy, and the Nodes of a valid one whose override annotations are
    /// invalid (those are also `effective` and listed in `invalid_overrides`).
    pub held: BTreeSet<String>,
    /// Owned Nodes whose override annotations (`bgpintent.io/local-asn`, `.../peers`,
    /// `.../as-path-prepend`) break a rule. Non-empty means `NodeOverridesValid` False.
    pub invalid_overrides: BTreeMap<String, InvalidOverrides>,
    /// Selected Nodes owned by an older policy: Node → owning policy. Non-empty means
    /// `Conflicted`.
    pub conflicts: BTreeMap<String, String>,
    /// Owned Nodes of this policy's ASN sharing a router ID.
    pub router_id_collisions: Vec<RouterIdCollision>,
    /// Peers without an entry in the passwords Secret: informational, not an error.
    pub unauthenticated_peers: Vec<PeerKey>,
    /// Service IP types this policy announces (empty when not accepted).
    pub service_ip_types: BTreeSet<ServiceIpType>,
    /// `spec.pathAttributes`, parsed (empty when not accepted).
    pub path_attributes: PathAttributes,
    /// `advertisements.pod` is set (false when not accepted): the owned Nodes announce their
    /// PodCIDRs and the labelled Pods (see the `pods` module).
    pub pods: bool,
}

/// Why a Node's overrides were refused: its intent is held until they are fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidOverrides {
    /// `metadata.uid` of the Node (for its Events).
    pub uid: String,
    /// Families the Node has a next hop for: the shared sets of those families are kept
    /// for its held intent.
    pub families: BTreeSet<Family>,
    /// By annotation name; each error's field is the full path, e.g.
    /// `metadata.annotations[bgpintent.io/peers][1].asn`.
    pub errors: BTreeMap<String, Vec<FieldError>>,
}

/// Two or more Nodes of one ASN with the same BGP identifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RouterIdCollision {
    pub asn: Asn,
    pub router_id: RouterId,
    pub nodes: BTreeSet<String>,
}

/// Where a Node's router ID comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RouterIdSource {
    /// The `bgpintent.io/router-id` annotation (written by us earlier, or by the operator).
    Annotation,
    /// The Node's IPv4 InternalIP.
    InternalIp,
    /// FNV-1a-32 of the Node name (Antrea's fallback); `attempt` > 0 when the plain hash
    /// collided with another Node of the same ASN and a salted hash was used instead.
    NameHash { attempt: u32 },
}

impl fmt::Display for RouterIdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterIdSource::Annotation => f.write_str("annotation bgpintent.io/router-id"),
            RouterIdSource::InternalIp => f.write_str("IPv4 InternalIP"),
            RouterIdSource::NameHash { attempt: 0 } => f.write_str("FNV-1a-32 of the Node name"),
            RouterIdSource::NameHash { attempt } => {
                write!(
                    f,
                    "FNV-1a-32 of the Node name, salted (attempt {attempt}) to avoid a collision"
                )
            }
        }
    }
}

/// Notes about one Node with an intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub router_id_source: RouterIdSource,
    /// What the Node's override annotations change, one line each (empty without any).
    pub overrides: Vec<String>,
    /// Human-readable notes (no InternalIP of a family, invalid annotation, ...).
    pub notes: Vec<String>,
}
