//! Pieces shared by several custom resources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// BGP confederation (RFC 5065), as Antrea's `confederation`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Confederation {
    /// The confederation's AS number, presented to peers outside it.
    #[schemars(range(min = 1, max = 4294967294_i64), extend("x-kubernetes-validations" = [
        {"rule": "self != 23456", "message": "must not be 23456 (AS_TRANS)"}
    ]))]
    pub identifier: i64,
    /// AS numbers of the other members of the confederation.
    #[serde(rename = "memberASNs", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(range(min = 1, max = 4294967294_i64)))]
    pub member_asns: Vec<i64>,
}

/// Prefixes announced for one reason, with the path attributes they are sent with.
///
/// A prefix with several sources appears in several groups; every group that holds it
/// carries the same `attributes` (they are merged over all its sources), and a source whose
/// prefixes carry different attributes appears in one group per attribute set.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrefixGroup {
    pub source: SourceRef,
    /// Prefixes in CIDR notation; host routes are /32 and /128.
    #[schemars(schema_with = "crate::schema::cidr_list")]
    pub prefixes: Vec<String>,
    /// Path attributes these prefixes are sent with, merged over all their sources; absent:
    /// none beyond ORIGIN, AS_PATH and NEXT_HOP (and LOCAL_PREF 100 to iBGP peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<PathAttributesSpec>,
}

/// BGP path attributes set on announcements: communities (RFC 1997), large communities
/// (RFC 8092), LOCAL_PREF and MED (RFC 4271).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PathAttributesSpec {
    /// Standard communities (RFC 1997): `<0-65535>:<0-65535>` or a well-known name such as
    /// `no-export`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::community_list")]
    pub communities: Vec<String>,
    /// Large communities: `<uint32>:<uint32>:<uint32>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::large_community_list")]
    pub large_communities: Vec<String>,
    /// LOCAL_PREF; sent to iBGP peers only (eBGP peers never receive LOCAL_PREF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub local_pref: Option<i64>,
    /// MULTI_EXIT_DISC, sent to every peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub med: Option<i64>,
}

impl PathAttributesSpec {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// AS-path prepending on every announcement of a Node.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AsPathPrependSpec {
    /// The AS number prepended (usually the Node's own).
    #[schemars(range(min = 1, max = 4294967294_i64), extend("x-kubernetes-validations" = [
        {"rule": "self != 23456", "message": "must not be 23456 (AS_TRANS)"}
    ]))]
    pub asn: i64,
    /// How many times it is prepended.
    #[schemars(range(min = 1, max = 10))]
    pub repeat: i32,
}

/// Why prefixes are announced.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub kind: SourceKind,
    /// Namespace of the Service or Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    /// Name of the Service, Egress or Pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// For Services: which of its IPs.
    #[serde(rename = "ipType", default, skip_serializing_if = "Option::is_none")]
    pub ip_type: Option<crate::policy::ServiceIpType>,
}

/// The kinds of [`SourceRef`].
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum SourceKind {
    Service,
    #[serde(rename = "PodCIDR")]
    PodCidr,
    Egress,
    Pod,
}

/// The policy an object was generated from.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReference {
    /// The BGPPolicy's name.
    #[schemars(length(max = 253))]
    pub name: String,
    /// Its uid.
    #[schemars(length(max = 64))]
    pub uid: String,
    /// The `metadata.generation` the intent was computed from.
    pub generation: i64,
}
