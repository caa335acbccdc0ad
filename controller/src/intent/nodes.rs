//! What the engine reads from a Node: labels, InternalIPs (next hops and router ID), Pod
//! CIDRs, the router-ID annotation and the override annotations (parsed in `overrides`).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
};

use bgpintent_api::{NextHops, Prefix};
use k8s_openapi::api::core::v1::Node;

use super::report::Problem;

/// Annotation holding a Node's BGP identifier. Written once by the controller when missing
/// and never changed afterwards, so a router ID survives address changes.
pub const ROUTER_ID_ANNOTATION: &str = "bgpintent.io/router-id";

/// A Node, parsed.
#[derive(Debug, Clone)]
pub(crate) struct NodeFacts {
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// First InternalIP of each family.
    pub next_hops: NextHops,
    pub pod_cidrs: Vec<Prefix>,
    /// The raw router-ID annotation, if present.
    pub router_id_annotation: Option<String>,
    /// The raw per-Node override annotations (`bgpintent.io/local-asn`, ...), by name.
    pub override_annotations: BTreeMap<String, String>,
}

impl NodeFacts {
    pub fn read(node: &Node, problems: &mut Vec<Problem>) -> Self {
        let name = node.metadata.name.clone().unwrap_or_default();
        let object = format!("Node {name}");
        let mut next_hops = NextHops::default();
        let addresses = node.status.as_ref().and_then(|s| s.addresses.as_ref());
        for (i, a) in addresses.into_iter().flatten().enumerate() {
            if a.type_ != "InternalIP" {
                continue;
            }
            match a.address.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) if next_hops.ipv4.is_none() => next_hops.ipv4 = Some(v4),
                Ok(IpAddr::V6(v6)) if next_hops.ipv6.is_none() => next_hops.ipv6 = Some(v6),
                Ok(_) => {}
                Err(_) => problems.push(Problem::new(
                    &object,
                    format!("status.addresses[{i}].address"),
                    format!("InternalIP {:?} is not an IP address; ignored", a.address),
                )),
            }
        }
        let spec = node.spec.clone().unwrap_or_default();
        let (field, cidrs) = match spec.pod_cidrs {
            Some(c) if !c.is_empty() => ("spec.podCIDRs", c),
            _ => ("spec.podCIDR", spec.pod_cidr.into_iter().collect()),
        };
        let mut pod_cidrs = Vec::new();
        for (i, c) in cidrs.iter().enumerate() {
            let f = if field == "spec.podCIDRs" {
                format!("{field}[{i}]")
            } else {
                field.to_owned()
            };
            match Prefix::from_field(&f, c) {
                Ok(p) => pod_cidrs.push(p),
                Err(e) => problems.push(Problem::from_field(&object, &e)),
            }
        }
        Self {
            uid: node.metadata.uid.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            router_id_annotation: node
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ROUTER_ID_ANNOTATION))
                .cloned(),
            override_annotations: super::overrides::of(node.metadata.annotations.as_ref()),
            name,
            next_hops,
            pod_cidrs,
        }
    }

    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.next_hops.ipv4
    }
}
