//! What one Node announces, to whom, and why.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use crate::{
    AsPathPrepend, Asn, Family, NextHops, PathAttributes, PeerIntent, PeerKey, Prefix, ResetCause, RouterId,
};

/// The Service IP types a policy can advertise (Antrea's `ipTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ServiceIpType {
    ClusterIP,
    ExternalIP,
    LoadBalancerIP,
}

impl ServiceIpType {
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceIpType::ClusterIP => "ClusterIP",
            ServiceIpType::ExternalIP => "ExternalIP",
            ServiceIpType::LoadBalancerIP => "LoadBalancerIP",
        }
    }
}

impl fmt::Display for ServiceIpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceIpType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ClusterIP" => Ok(Self::ClusterIP),
            "ExternalIP" => Ok(Self::ExternalIP),
            "LoadBalancerIP" => Ok(Self::LoadBalancerIP),
            _ => Err(format!(
                "{s:?} is not one of ClusterIP, ExternalIP, LoadBalancerIP"
            )),
        }
    }
}

/// Why a prefix is announced. Every announced prefix has at least one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    Service {
        namespace: String,
        name: String,
        ip_type: ServiceIpType,
    },
    /// The Node's own `spec.podCIDRs`.
    PodCidr,
    /// An Antrea Egress assigned to this Node.
    Egress { name: String },
    /// A Pod selected for per-Pod announcement.
    Pod { namespace: String, name: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Service {
                namespace,
                name,
                ip_type,
            } => write!(f, "Service {namespace}/{name} ({ip_type})"),
            Source::PodCidr => f.write_str("PodCIDR"),
            Source::Egress { name } => write!(f, "Egress {name}"),
            Source::Pod { namespace, name } => write!(f, "Pod {namespace}/{name}"),
        }
    }
}

/// The policy a Node's intent comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyRef {
    pub name: String,
    pub uid: String,
    pub generation: i64,
}

/// BGP confederation membership (RFC 5065), as Antrea's `confederation` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Confederation {
    /// The AS the confederation presents to the outside.
    pub identifier: Asn,
    /// The other member ASes: peers in them are confederation-internal.
    pub member_asns: BTreeSet<Asn>,
}

/// Everything one Node's speaker needs: its identity, its sessions, its announcements.
///
/// Collections are ordered maps and sets, so two equal intents serialize identically and a
/// diff between two intents is a merge of sorted sequences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIntent {
    pub node: String,
    pub policy: PolicyRef,
    pub router_id: RouterId,
    pub local_asn: Asn,
    pub listen_port: u16,
    pub confederation: Option<Confederation>,
    pub next_hops: NextHops,
    pub peers: BTreeMap<PeerKey, PeerIntent>,
    /// Node-local announcements with their sources.
    pub prefixes: BTreeMap<Prefix, BTreeSet<Source>>,
    /// Names of the shared prefix sets this Node also announces.
    pub sets: BTreeSet<String>,
    /// Path attributes of node-local prefixes, merged from their sources; prefixes absent
    /// here carry none beyond the defaults. Every key is also a key of `prefixes`.
    pub attributes: BTreeMap<Prefix, PathAttributes>,
    /// Prepended on every announcement of this Node (its `bgpintent.io/as-path-prepend`).
    pub as_path_prepend: Option<AsPathPrepend>,
}

impl NodeIntent {
    /// Prefixes of one family, in order.
    pub fn prefixes_of(&self, family: Family) -> impl Iterator<Item = Prefix> + '_ {
        self.prefixes
            .keys()
            .copied()
            .filter(move |p| p.family() == family)
    }

    /// Changes of the speaker's own identity that reset every session, in the order checked.
    pub fn speaker_reset(&self, new: &NodeIntent) -> Option<ResetCause> {
        if self.local_asn != new.local_asn || self.confederation != new.confederation {
            Some(ResetCause::LocalAsn)
        } else if self.router_id != new.router_id {
            Some(ResetCause::RouterId)
        } else if self.listen_port != new.listen_port {
            Some(ResetCause::ListenPort)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_display() {
        let s = Source::Service {
            namespace: "ns".into(),
            name: "web".into(),
            ip_type: ServiceIpType::ClusterIP,
        };
        assert_eq!(s.to_string(), "Service ns/web (ClusterIP)");
        assert_eq!(Source::Egress { name: "e1".into() }.to_string(), "Egress e1");
    }

    #[test]
    fn ip_type_round_trip() {
        for t in [
            ServiceIpType::ClusterIP,
            ServiceIpType::ExternalIP,
            ServiceIpType::LoadBalancerIP,
        ] {
            assert_eq!(t.as_str().parse::<ServiceIpType>().unwrap(), t);
        }
        assert!("NodePort".parse::<ServiceIpType>().is_err());
    }
}
