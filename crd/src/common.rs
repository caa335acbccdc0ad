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

/// Prefixes announced for one reason.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrefixGroup {
    pub source: SourceRef,
    /// Prefixes in CIDR notation; host routes are /32 and /128.
    #[schemars(schema_with = "crate::schema::cidr_list")]
    pub prefixes: Vec<String>,
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
