//! `BGPPolicy`: field-for-field compatible with Antrea's `crd.antrea.io/v1alpha1` BGPPolicy,
//! plus the session extensions of design §3.
//!
//! Names, defaults and ranges of Antrea's fields are kept exactly (an Antrea manifest works
//! after changing `apiVersion`), except that ASNs accept the full 4-octet range. Extensions
//! are optional and their absence keeps Antrea's behaviour.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Confederation, PathAttributesSpec};

/// A BGP policy: which Nodes speak BGP, with which ASN, to which peers, announcing what.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "bgpintent.io",
    version = "v1alpha1",
    kind = "BGPPolicy",
    plural = "bgppolicies",
    singular = "bgppolicy",
    shortname = "bgpp",
    category = "bgp-intent",
    doc = "Which Nodes speak BGP, with which ASN, to which peers, announcing what (Antrea-compatible).",
    status = "BGPPolicyStatus",
    printcolumn = r#"{"name":"Local ASN","type":"integer","jsonPath":".spec.localASN"}"#,
    printcolumn = r#"{"name":"Selected","type":"integer","jsonPath":".status.selectedNodes"}"#,
    printcolumn = r#"{"name":"Effective","type":"integer","jsonPath":".status.effectiveNodes"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Conflicted","type":"string","jsonPath":".status.conditions[?(@.type==\"Conflicted\")].status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Peers","type":"integer","priority":1,"jsonPath":".status.peers.total"}"#,
    printcolumn = r#"{"name":"Established","type":"integer","priority":1,"jsonPath":".status.peers.established"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BGPPolicySpec {
    /// Nodes this policy applies to. When several policies select a Node, the oldest
    /// (creationTimestamp, then name) wins and the others report `Conflicted`.
    pub node_selector: LabelSelector,

    /// AS number of the BGP process on the selected Nodes (4-octet, not 23456).
    #[serde(rename = "localASN")]
    #[schemars(range(min = 1, max = 4294967294_i64), extend("x-kubernetes-validations" = [
        {"rule": "self != 23456", "message": "must not be 23456 (AS_TRANS)"}
    ]))]
    pub local_asn: i64,

    /// Port the BGP process listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), extend("default" = 179))]
    pub listen_port: Option<i32>,

    /// BGP confederation (RFC 5065) the Nodes belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confederation: Option<Confederation>,

    /// What to announce.
    #[serde(default)]
    pub advertisements: Advertisements,

    /// The routers to peer with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub bgp_peers: Vec<BGPPeer>,

    /// Extension: path attributes of every prefix this policy announces. A Service's
    /// `bgpintent.io/*` annotations add to them (communities) or take precedence over them
    /// (`localPref`, `med`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_attributes: Option<PathAttributesSpec>,
}

/// What a policy announces.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Advertisements {
    /// Service IPs of the listed types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceAdvertisement>,
    /// `pod: {}` announces the Node's `spec.podCIDRs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodAdvertisement>,
    /// `egress: {}` announces the Egress IPs assigned to the Node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<EgressAdvertisement>,
}

/// Service IP types to announce.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAdvertisement {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Which Service IPs: `ClusterIP` (`spec.clusterIPs`), `ExternalIP` (`spec.externalIPs`),
    /// `LoadBalancerIP` (`status.loadBalancer.ingress[].ip`).
    #[schemars(length(max = 3))]
    pub ip_types: Vec<ServiceIpType>,
}

/// A Service IP type.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum ServiceIpType {
    ClusterIP,
    ExternalIP,
    LoadBalancerIP,
}

/// Announce Pod CIDRs (`pod: {}`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PodAdvertisement {}

/// Announce Egress IPs (`egress: {}`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EgressAdvertisement {}

/// A BGP peer (router) of the selected Nodes.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.keepaliveTimeSeconds) || (has(self.holdTimeSeconds) ? (self.holdTimeSeconds == 0 || self.keepaliveTimeSeconds < self.holdTimeSeconds) : self.keepaliveTimeSeconds < 90)",
        "message": "keepaliveTimeSeconds must be less than holdTimeSeconds (default 90)",
        "fieldPath": ".keepaliveTimeSeconds"
    }
]))]
pub struct BGPPeer {
    /// IP address of the peer.
    #[schemars(schema_with = "crate::schema::ip")]
    pub address: String,

    /// Port the peer listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), extend("default" = 179))]
    pub port: Option<i32>,

    /// AS number of the peer (4-octet, not 23456).
    #[schemars(range(min = 1, max = 4294967294_i64), extend("x-kubernetes-validations" = [
        {"rule": "self != 23456", "message": "must not be 23456 (AS_TRANS)"}
    ]))]
    pub asn: i64,

    /// TTL of outgoing packets (1 = directly connected). With `ttlSecurity`, the number of
    /// hops the peer may be away instead.
    #[serde(rename = "multihopTTL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255), extend("default" = 1))]
    pub multihop_ttl: Option<i32>,

    /// How long the peer keeps our routes after the session drops (RFC 4724).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600), extend("default" = 120))]
    pub graceful_restart_time_seconds: Option<i32>,

    /// Extension: proposed hold time; 0 disables keepalives. Default 90.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535), extend("x-kubernetes-validations" = [
        {"rule": "self == 0 || self >= 3", "message": "must be 0 (no keepalives) or between 3 and 65535"}
    ]))]
    pub hold_time_seconds: Option<i32>,

    /// Extension: seconds between KEEPALIVEs; below the hold time. Default a third of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub keepalive_time_seconds: Option<i32>,

    /// Extension: base connect-retry interval (jittered, backed off on repeated failure).
    /// Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub connect_retry_seconds: Option<i32>,

    /// Extension: listen only; never connect to the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<bool>,

    /// Extension: GTSM (RFC 5082). Send TTL 255 and accept only packets that travelled at
    /// most `multihopTTL` hops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<bool>,

    /// Extension: advertise the graceful-restart capability (RFC 4724) to this peer. With
    /// `false` the peer withdraws our routes as soon as the session drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub graceful_restart: Option<bool>,

    /// Extension: graceful-restart selection deferral time. Default 360.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub graceful_restart_deferral_seconds: Option<i32>,

    /// Accepted for compatibility with Antrea manifests; bgp-intent does not run BFD and
    /// reports an enabled `bfd` on the policy status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<Bfd>,
}

impl BGPPeer {
    /// A peer with only its address and AS set: every other field takes its default.
    pub fn new(address: impl Into<String>, asn: i64) -> Self {
        Self {
            address: address.into(),
            port: None,
            asn,
            multihop_ttl: None,
            graceful_restart_time_seconds: None,
            hold_time_seconds: None,
            keepalive_time_seconds: None,
            connect_retry_seconds: None,
            passive: None,
            ttl_security: None,
            graceful_restart: None,
            graceful_restart_deferral_seconds: None,
            bfd: None,
        }
    }
}

/// Antrea's BFD settings (accepted, not acted on).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bfd {
    /// Whether Antrea would run BFD for this peer.
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Milliseconds (Antrea's meaning; not used).
    #[schemars(range(min = 10, max = 60000))]
    pub min_transmit_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Milliseconds (Antrea's meaning; not used).
    #[schemars(range(min = 10, max = 60000))]
    pub min_receive_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Missed packets before down (Antrea's meaning; not used).
    #[schemars(range(min = 2, max = 255))]
    pub multiplier: Option<i32>,
}

/// Written by the controller only.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPPolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `Conflicted`, `NodeOverridesValid`, `Ready`, sorted by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// Nodes the selector matches.
    #[serde(default)]
    pub selected_nodes: i32,
    /// Nodes this policy owns (selected and not owned by an older policy).
    #[serde(default)]
    pub effective_nodes: i32,
    /// Sessions of the owned Nodes, as their speakers report them.
    #[serde(default)]
    pub peers: PeerCounts,
}

/// Session counts.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct PeerCounts {
    /// Sessions in Established.
    #[serde(default)]
    pub established: i32,
    /// All sessions of the owned Nodes.
    #[serde(default)]
    pub total: i32,
}
