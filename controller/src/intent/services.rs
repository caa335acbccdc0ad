//! Which IPs of a Service are announced, and from where.
//!
//! A Service's contribution does not depend on policies or Nodes: it is a list of routes
//! (prefix, IP type, scope) plus, for `Local` routes, the Nodes with a usable local
//! endpoint. Policies then pick the IP types they advertise and the Nodes they own. Keeping
//! it policy-free is what makes a one-Service update cheap: recompute this value from the
//! Service and its EndpointSlices, then patch the Nodes and shard it touches.

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{Family, FieldError, PathAttributes, Prefix, ServiceIpType, fnv1a32};
use k8s_openapi::api::{
    core::v1::Service,
    discovery::v1::{Endpoint, EndpointSlice},
};
use serde::Serialize;

use super::report::Problem;

/// Label joining an EndpointSlice to its Service (same namespace).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `namespace/name` of a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn of(service: &Service) -> Self {
        Self::new(
            service.metadata.namespace.as_deref().unwrap_or("default"),
            service.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    /// Stable 32-bit hash used for sharding. FNV-1a (not `std`'s hasher, whose output may
    /// change between Rust releases and would reshuffle every shard on upgrade).
    pub fn shard_hash(&self) -> u32 {
        let mut bytes = Vec::with_capacity(self.namespace.len() + self.name.len() + 1);
        bytes.extend_from_slice(self.namespace.as_bytes());
        bytes.push(b'/');
        bytes.extend_from_slice(self.name.as_bytes());
        fnv1a32(&bytes)
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Whether a route is announced by every Node of a policy or only where an endpoint is.
/// Also the scope of a labelled Pod (`bgpintent.io/advertise=cluster|local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Scope {
    /// Traffic policy `Cluster` (the default): every owned Node.
    Cluster,
    /// Traffic policy `Local`: only Nodes with a usable local endpoint (for a Pod: its Node).
    Local,
}

/// One announced Service IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceRoute {
    pub prefix: Prefix,
    pub ip_type: ServiceIpType,
    pub scope: Scope,
}

/// A Service's contribution, before policies and Nodes are applied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServiceRoutes {
    /// Sorted and free of duplicates.
    pub routes: Vec<ServiceRoute>,
    /// For `Local` routes: Nodes with a usable endpoint, per family of the EndpointSlice.
    /// Empty when the Service has no `Local` route (nothing needs it).
    pub local_nodes: BTreeMap<Family, BTreeSet<String>>,
    /// Cached [`ServiceKey::shard_hash`].
    pub shard_hash: u32,
    /// Path attributes from the Service's `bgpintent.io/*` annotations; empty when it has
    /// none or when one is invalid.
    pub attributes: PathAttributes,
    /// Why the annotations are ignored, each naming its annotation and rule.
    pub invalid_annotations: Vec<FieldError>,
}

impl ServiceRoutes {
    /// Whether `node` announces a `Local` route of `family`.
    pub fn is_local_on(&self, family: Family, node: &str) -> bool {
        self.local_nodes.get(&family).is_some_and(|n| n.contains(node))
    }
}

/// EndpointSlices grouped by the Service they belong to.
pub fn slices_by_service(slices: &[EndpointSlice]) -> BTreeMap<ServiceKey, Vec<&EndpointSlice>> {
    let mut out: BTreeMap<ServiceKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.as_deref().unwrap_or("default");
        out.entry(ServiceKey::new(namespace, service))
            .or_default()
            .push(slice);
    }
    out
}

fn is_ready(e: &Endpoint) -> bool {
    // API docs: "A nil value should be interpreted as true".
    e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
}

fn is_serving_terminating(e: &Endpoint) -> bool {
    let c = e.conditions.as_ref();
    // serving: nil defers to ready; terminating: nil is false.
    let serving = c.and_then(|c| c.serving).unwrap_or_else(|| is_ready(e));
    let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
    serving && terminating
}

/// The family of a slice, `None` for FQDN slices (they never hold Pod endpoints).
fn slice_family(slice: &EndpointSlice) -> Option<Family> {
    match slice.address_type.as_str() {
        "IPv4" => Some(Family::Ipv4),
        "IPv6" => Some(Family::Ipv6),
        _ => None,
    }
}

/// Nodes with a usable local endpoint, per family: a ready endpoint; or, when no endpoint
/// of that family of the Service is ready anywhere, a serving-and-terminating one.
///
/// kube-proxy falls back to terminating endpoints per Node (a Node with only terminating
/// local endpoints still serves traffic that reaches it). For announcements the
/// Service-wide rule is the better one: while any ready endpoint exists, a Node whose Pods
/// are all terminating withdraws its route, so new connections drain away from it instead
/// of being attracted to it; only when every endpoint is terminating do we keep announcing
/// from the Nodes that still serve, rather than black-holing the Service.
pub fn local_nodes(slices: &[&EndpointSlice]) -> BTreeMap<Family, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for family in Family::ALL {
        let endpoints: Vec<&Endpoint> = slices
            .iter()
            .filter(|s| slice_family(s) == Some(family))
            .flat_map(|s| s.endpoints.iter())
            .collect();
        let any_ready = endpoints.iter().any(|e| is_ready(e));
        let nodes: BTreeSet<String> = endpoints
            .iter()
            .filter(|e| {
                if any_ready {
                    is_ready(e)
                } else {
                    is_serving_terminating(e)
                }
            })
            .filter_map(|e| e.node_name.clone())
            .collect();
        if !nodes.is_empty() {
            out.insert(family, nodes);
        }
    }
    out
}

/// Routes of one Service. Problems (unparsable IPs) are appended to `problems`.
///
/// `ExternalName` and headless Services have no ClusterIP; their external and load-balancer
/// IPs are still announced (kube-proxy programs them regardless of the ClusterIP).
pub fn service_routes(
    service: &Service,
    slices: &[&EndpointSlice],
    problems: &mut Vec<Problem>,
) -> ServiceRoutes {
    let key = ServiceKey::of(service);
    let object = format!("Service {key}");
    let mut routes = BTreeSet::new();
    let spec = service.spec.clone().unwrap_or_default();
    let local = |p: &Option<String>| {
        if p.as_deref() == Some("Local") {
            Scope::Local
        } else {
            Scope::Cluster
        }
    };
    let internal = local(&spec.internal_traffic_policy);
    let external = local(&spec.external_traffic_policy);
    let mut add = |field: String, value: &str, ip_type, scope| match Prefix::host_from_field(&field, value) {
        Ok(prefix) => {
            routes.insert(ServiceRoute {
                prefix,
                ip_type,
                scope,
            });
        }
        Err(e) => problems.push(Problem::from_field(&object, &e)),
    };
    if spec.type_.as_deref() != Some("ExternalName") {
        let (field, ips) = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ("spec.clusterIPs", ips.clone()),
            _ => ("spec.clusterIP", spec.cluster_ip.iter().cloned().collect()),
        };
        for (i, ip) in ips.iter().enumerate() {
            if ip.is_empty() || ip == "None" {
                continue;
            }
            let field = if field == "spec.clusterIPs" {
                format!("{field}[{i}]")
            } else {
                field.into()
            };
            add(field, ip, ServiceIpType::ClusterIP, internal);
        }
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        add(
            format!("spec.externalIPs[{i}]"),
            ip,
            ServiceIpType::ExternalIP,
            external,
        );
    }
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref());
    for (i, ing) in ingress.iter().copied().flatten().enumerate() {
        if let Some(ip) = &ing.ip {
            add(
                format!("status.loadBalancer.ingress[{i}].ip"),
                ip,
                ServiceIpType::LoadBalancerIP,
                external,
            );
        }
    }
    let routes: Vec<ServiceRoute> = routes.into_iter().collect();
    let local_nodes = if routes.iter().any(|r| r.scope == Scope::Local) {
        local_nodes(slices)
    } else {
        BTreeMap::new()
    };
    let (attributes, invalid_annotations) = super::attributes::service_attributes(service);
    problems.extend(invalid_annotations.iter().map(|e| {
        Problem::new(
            &object,
            e.field.clone(),
            format!("{e}; the Service's attributes are ignored"),
        )
    }));
    ServiceRoutes {
        routes,
        local_nodes,
        shard_hash: key.shard_hash(),
        attributes,
        invalid_annotations,
    }
}
