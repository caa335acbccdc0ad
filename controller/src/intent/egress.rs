//! A minimal typed view of Antrea's `crd.antrea.io/v1beta1` Egress.
//!
//! Only what the engine reads is typed: the name and the status the Antrea controller
//! writes once it has placed the Egress IP on a Node. Everything else in the object is
//! ignored (serde drops unknown fields), so a newer Antrea with more fields still parses.
//! A missing status (an Egress not yet assigned) is normal and means "announce nothing".

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// API version of the Antrea Egress we read.
pub const EGRESS_API_VERSION: &str = "crd.antrea.io/v1beta1";

/// An Antrea Egress: which Node currently holds which SNAT IP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Egress {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EgressStatus>,
}

/// `status` of an Antrea Egress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressStatus {
    /// Node the Egress IP is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_node: Option<String>,
    /// The assigned Egress IP.
    #[serde(rename = "egressIP", default, skip_serializing_if = "Option::is_none")]
    pub egress_ip: Option<String>,
}

impl Egress {
    /// An Egress assigned to `node` with `ip` (tests and examples).
    pub fn assigned(name: &str, node: &str, ip: &str) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            status: Some(EgressStatus {
                egress_node: Some(node.to_owned()),
                egress_ip: Some(ip.to_owned()),
            }),
        }
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
}
