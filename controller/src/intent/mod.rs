//! The intent engine: a cluster snapshot in, per-Node intents and reports out.
//!
//! ```text
//!  Snapshot ──resolve()──▶ Resolution ──materialize()──▶ objects to write
//!  (policies, Nodes,        per-Node intents (node-local      BGPNodeIntent per Node
//!   Services, slices,       prefixes), per-Service and        BGPAdvertisementSet shards
//!   Egresses, Pods,         per-Pod routes, reports,          Node annotation patches
//!   Secret)                 annotations
//! ```
//!
//! Everything here is pure: no client, clock or randomness. [`resolve`] recomputes from
//! scratch; [`Resolution::set_service`] applies one Service change to an existing
//! resolution with the same result (a property test checks they agree), so the controller
//! can react to Service and EndpointSlice churn without recomputing 5,000 Nodes.
//! [`Resolution::set_pod`] does the same for one labelled Pod (see the `pods` module).
//!
//! Prefixes announced by every Node of a policy (Cluster traffic policy) are held once, in
//! [`Resolution::services`], not copied into each Node's intent; that is both the storage
//! model of `BGPAdvertisementSet` and what keeps a 5,000 × 10,000 cluster within memory.
//! [`Resolution::logical_intent`] expands them into the full per-Node list for tests,
//! `render` and `explain`.

mod attributes;
mod egress;
pub mod explain;
mod nodes;
mod overrides;
mod passwords;
mod pods;
mod report;
mod router_id;
mod selection;
mod services;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use bgpintent_api::{Family, NodeIntent, PeerIntent, PolicyRef, Prefix, RouterId, Source};
use bgpintent_crd::BGPPolicy;
use k8s_openapi::api::{
    core::v1::{Node, Pod, Secret, Service},
    discovery::v1::EndpointSlice,
};

pub use attributes::{
    COMMUNITIES_ANNOTATION, LARGE_COMMUNITIES_ANNOTATION, LOCAL_PREF_ANNOTATION, MED_ANNOTATION, describe,
    service_attributes,
};
pub use egress::{EGRESS_API_VERSION, Egress, EgressStatus};
pub use nodes::ROUTER_ID_ANNOTATION;
pub use overrides::{
    AS_PATH_PREPEND_ANNOTATION, LOCAL_ASN_ANNOTATION, OVERRIDE_ANNOTATIONS, PEERS_ANNOTATION,
};
pub use passwords::PasswordBook;
pub use pods::{ADVERTISE_LABEL, POD_SELECTOR, PodChange, PodKey, PodRoute, PodSkip, pod_route, pod_scope};
pub use report::{InvalidOverrides, NodeReport, PolicyReport, Problem, RouterIdCollision, RouterIdSource};
pub use services::{
    SERVICE_NAME_LABEL, Scope, ServiceKey, ServiceRoute, ServiceRoutes, local_nodes, service_routes,
    slices_by_service,
};

use nodes::NodeFacts;
use selection::ParsedPolicy;

/// Everything the engine reads, as the informers (or manifest files) hold it.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub policies: Vec<BGPPolicy>,
    pub nodes: Vec<Node>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub egresses: Vec<Egress>,
    /// Pods labelled `bgpintent.io/advertise` (the controller watches only those; offline,
    /// unlabelled Pods are ignored).
    pub pods: Vec<Pod>,
    /// The passwords Secret (`bgp-passwords` in the controller's namespace), if it exists.
    pub passwords: Option<Secret>,
    /// Node → `spec.policy.name` of the BGPNodeIntent currently written for it. Only used
    /// so that a policy whose node selector became invalid holds the Nodes it owned (see
    /// the `selection` module); empty offline.
    pub current_owners: BTreeMap<String, String>,
}

/// Counts only: the passwords Secret must never reach a log line through `{:?}`.
impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("policies", &self.policies.len())
            .field("nodes", &self.nodes.len())
            .field("services", &self.services.len())
            .field("endpoint_slices", &self.endpoint_slices.len())
            .field("egresses", &self.egresses.len())
            .field("pods", &self.pods.len())
            .field(
                "passwords",
                &self
                    .passwords
                    .as_ref()
                    .map(|s| s.metadata.name.clone().unwrap_or_default()),
            )
            .field("current_owners", &self.current_owners.len())
            .finish()
    }
}

/// One Node with an intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResolution {
    /// `metadata.uid` of the Node (owner of its BGPNodeIntent).
    pub uid: String,
    /// The intent with only node-specific prefixes (PodCIDRs, Egress IPs, Service IPs with
    /// a Local traffic policy, `local` Pods); `sets` is filled in by materialization. See
    /// [`Resolution::logical_intent`] for the full list.
    pub intent: NodeIntent,
    pub report: NodeReport,
}

/// The engine's answer for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolution {
    /// Nodes owned by a valid policy, by name.
    pub nodes: BTreeMap<String, NodeResolution>,
    /// Nodes whose current intent is kept → their policy: the Nodes of an invalid policy,
    /// and Nodes with invalid override annotations (`PolicyReport::invalid_overrides`).
    pub held: BTreeMap<String, String>,
    /// Router-ID annotations to add (Node → value); only for Nodes without one.
    pub router_id_annotations: BTreeMap<String, RouterId>,
    /// Every BGPPolicy, by name.
    pub policies: BTreeMap<String, PolicyReport>,
    /// Every Service's routes (policy-independent), by namespace/name.
    pub services: BTreeMap<ServiceKey, ServiceRoutes>,
    /// Every announceable labelled Pod's route (policy-independent), by namespace/name.
    pub pods: BTreeMap<PodKey, PodRoute>,
    /// Service IP → the Services that have it: whose attributes it carries.
    pub service_ips: BTreeMap<Prefix, BTreeSet<ServiceKey>>,
    /// IP of a `cluster` Pod → the Pods that have it: their shards carry the attributes of
    /// any Service with the same IP (see the `attributes` module).
    pub cluster_pod_ips: BTreeMap<Prefix, BTreeSet<PodKey>>,
    /// PodCIDRs, Egress IPs and `local` Pod IPs → the Nodes announcing them (see the
    /// `attributes` module).
    pub other_local: BTreeMap<Prefix, BTreeSet<String>>,
    /// Problems with individual objects (bad IPs, malformed Secret keys), sorted.
    pub problems: Vec<Problem>,
}

/// What [`Resolution::set_service`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceChange {
    pub service: ServiceKey,
    /// Nodes whose node-specific prefixes changed.
    pub nodes: BTreeSet<String>,
    /// Families whose Cluster-scope (shared) routes of this Service changed.
    pub shared_families: BTreeSet<Family>,
    /// Other Services whose shared groups hold an IP of this one whose attributes may have
    /// changed (Services sharing an IP), with the families concerned.
    pub shared_others: BTreeMap<ServiceKey, BTreeSet<Family>>,
    /// `cluster` Pods whose shared groups hold such an IP, with the families concerned.
    pub shared_pods: BTreeMap<PodKey, BTreeSet<Family>>,
}

/// Resolves a snapshot. Pure and deterministic: the result does not depend on the order of
/// any input list.
pub fn resolve(snapshot: &Snapshot) -> Resolution {
    let mut problems = Vec::new();
    let mut facts: Vec<NodeFacts> = snapshot
        .nodes
        .iter()
        .map(|n| NodeFacts::read(n, &mut problems))
        .collect();
    facts.sort_by(|a, b| a.name.cmp(&b.name));
    let policies = selection::by_age(snapshot.policies.iter().map(ParsedPolicy::read).collect());
    let owners = selection::ownership(&policies, &facts, &snapshot.current_owners);
    let book = match &snapshot.passwords {
        Some(secret) => PasswordBook::read(secret, &mut problems),
        None => PasswordBook::default(),
    };
    let egresses = egress_index(&snapshot.egresses, &mut problems);

    // Router IDs of Nodes owned by valid policies, per ASN.
    let effective: Vec<(&NodeFacts, &ParsedPolicy)> = facts
        .iter()
        .filter_map(|n| owners.owner.get(&n.name).map(|&i| (n, &policies[i])))
        .filter(|(_, p)| p.is_valid())
        .collect();
    // Their override annotations; a Node with an invalid one is held.
    let node_overrides = overrides::read_all(&effective);
    let with_asn: Vec<(&NodeFacts, bgpintent_api::Asn)> = effective
        .iter()
        .map(|(n, p)| {
            let asn = p.settings.as_ref().expect("valid").local_asn;
            (*n, node_overrides[&n.name].0.local_asn(asn))
        })
        .collect();
    let (router_ids, collisions) = router_id::choose(&with_asn);

    let mut res = Resolution::default();
    for (i, policy) in policies.iter().enumerate() {
        let mut report = PolicyReport {
            name: policy.name.clone(),
            uid: policy.uid.clone(),
            generation: policy.generation,
            accepted: policy.is_valid(),
            errors: policy.errors.clone(),
            ignored: policy
                .settings
                .as_ref()
                .map(|s| s.ignored.clone())
                .unwrap_or_default(),
            selected: owners.selected[i].clone(),
            conflicts: owners.conflicts[i].clone(),
            ..PolicyReport::default()
        };
        let owned = owners
            .owner
            .iter()
            .filter(|(_, o)| **o == i)
            .map(|(n, _)| n.clone());
        if policy.is_valid() {
            report.effective = owned.collect();
            let settings = policy.settings.as_ref().expect("valid");
            report.service_ip_types = settings.advertisements.service_ip_types.clone();
            report.path_attributes = settings.path_attributes.clone();
            report.pods = settings.advertisements.pod;
            report.unauthenticated_peers =
                overrides::peers_in_use(settings, &report.effective, &node_overrides)
                    .filter(|k| book.lookup(k).is_none())
                    .collect();
            report.invalid_overrides = overrides::invalid(&facts, &report.effective, &node_overrides);
            for node in report.invalid_overrides.keys() {
                report.held.insert(node.clone());
                res.held.insert(node.clone(), policy.name.clone());
            }
            report.router_id_collisions = collisions
                .iter()
                .filter(|c| c.nodes.iter().any(|n| report.effective.contains(n)))
                .cloned()
                .collect();
        } else {
            report.held = owned.collect();
            for node in &report.held {
                res.held.insert(node.clone(), policy.name.clone());
            }
        }
        res.policies.insert(policy.name.clone(), report);
    }

    for (node, policy) in &effective {
        let settings = policy.settings.as_ref().expect("valid");
        let (node_override, errors) = &node_overrides[&node.name];
        if !errors.is_empty() {
            continue; // held
        }
        let local_asn = node_override.local_asn(settings.local_asn);
        let chosen = &router_ids[&node.name];
        if chosen.write {
            res.router_id_annotations.insert(node.name.clone(), chosen.id);
        }
        let mut notes: Vec<String> = chosen.note.iter().cloned().collect();
        let families: Vec<Family> = node.next_hops.families().collect();
        for family in Family::ALL {
            if node.next_hops.for_family(family).is_none() {
                notes.push(format!(
                    "no {family} InternalIP: {family} prefixes are not announced from this Node"
                ));
            }
        }
        let peers = node_override
            .peers(&settings.peers)
            .iter()
            .map(|(key, peer)| {
                let peer_family = Family::of(key.address);
                let intent = PeerIntent {
                    local_address: node.next_hops.for_family(peer_family),
                    // A session carries the families we can give a next hop for; a Node with
                    // no InternalIP at all still offers the peer's own family so the OPEN is
                    // valid (it then announces nothing).
                    families: if families.is_empty() {
                        vec![peer_family]
                    } else {
                        families.clone()
                    },
                    password: book.lookup(key).cloned(),
                    ..peer.clone()
                };
                (*key, intent)
            })
            .collect();
        let mut prefixes: BTreeMap<Prefix, BTreeSet<Source>> = BTreeMap::new();
        let mut add = |prefix: Prefix, source: Source, notes: &mut Vec<String>| {
            if node.next_hops.for_family(prefix.family()).is_some() {
                prefixes.entry(prefix).or_default().insert(source);
            } else {
                notes.push(format!(
                    "{prefix} ({source}) not announced: no {} next hop",
                    prefix.family()
                ));
            }
        };
        if settings.advertisements.pod {
            for cidr in &node.pod_cidrs {
                add(*cidr, Source::PodCidr, &mut notes);
            }
        }
        if settings.advertisements.egress {
            for (name, ip) in egresses.get(&node.name).into_iter().flatten() {
                add(*ip, Source::Egress { name: name.clone() }, &mut notes);
            }
        }
        // PodCIDRs and Egress IPs carry the policy's attributes; Service IPs get theirs as
        // the Services are added below.
        let attributes = prefixes
            .keys()
            .filter(|_| !settings.path_attributes.is_empty())
            .map(|p| (*p, settings.path_attributes.clone()))
            .collect();
        let intent = NodeIntent {
            node: node.name.clone(),
            policy: PolicyRef {
                name: policy.name.clone(),
                uid: policy.uid.clone(),
                generation: policy.generation,
            },
            router_id: chosen.id,
            local_asn,
            listen_port: settings.listen_port,
            confederation: settings.confederation.clone(),
            next_hops: node.next_hops,
            peers,
            prefixes,
            sets: BTreeSet::new(),
            attributes,
            as_path_prepend: node_override.as_path_prepend(local_asn),
        };
        res.nodes.insert(
            node.name.clone(),
            NodeResolution {
                uid: node.uid.clone(),
                intent,
                report: NodeReport {
                    router_id_source: chosen.source,
                    overrides: node_override.describe(&policy.name, settings.local_asn, &settings.peers),
                    notes,
                },
            },
        );
    }

    res.other_local = attributes::other_local_index(res.nodes.iter().map(|(n, nr)| (n, &nr.intent.prefixes)));
    let slices = slices_by_service(&snapshot.endpoint_slices);
    for service in &snapshot.services {
        let key = ServiceKey::of(service);
        let service_slices = slices.get(&key).map(Vec::as_slice).unwrap_or_default();
        let routes = service_routes(service, service_slices, &mut problems);
        res.set_service(key, Some(routes));
    }
    for pod in &snapshot.pods {
        if let Ok(route) = pod_route(pod, &mut problems) {
            res.replace_pod(PodKey::of(pod), Some(route));
        }
    }
    problems.extend(res.attribute_problems());
    problems.sort();
    problems.dedup();
    res.problems = problems;
    res
}

/// Node → (Egress name, host prefix of its IP).
fn egress_index(egresses: &[Egress], problems: &mut Vec<Problem>) -> BTreeMap<String, Vec<(String, Prefix)>> {
    let mut out: BTreeMap<String, Vec<(String, Prefix)>> = BTreeMap::new();
    for egress in egresses {
        let Some(status) = &egress.status else { continue };
        let (Some(node), Some(ip)) = (&status.egress_node, &status.egress_ip) else {
            continue;
        };
        if node.is_empty() || ip.is_empty() {
            continue;
        }
        match Prefix::host_from_field("status.egressIP", ip) {
            Ok(p) => out
                .entry(node.clone())
                .or_default()
                .push((egress.name().to_owned(), p)),
            Err(e) => problems.push(Problem::from_field(&format!("Egress {}", egress.name()), &e)),
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

/// Adds `item` to the set of `key`, or removes it (dropping a set left empty): the
/// upkeep of every prefix → set map of the engine (a Node's prefixes and their sources,
/// and the indexes of Services, `cluster` Pods and Nodes by IP), shared so the Service
/// and Pod incremental paths keep them in one way.
pub(crate) fn update_set<K: Ord, V: Ord>(map: &mut BTreeMap<K, BTreeSet<V>>, key: K, item: V, add: bool) {
    if add {
        map.entry(key).or_default().insert(item);
    } else if let Some(set) = map.get_mut(&key) {
        set.remove(&item);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}

impl Resolution {
    /// Replaces (or, with `None`, removes) one Service's routes and updates the Nodes they
    /// touch. `resolve` is built on this, so applying a change here gives exactly what a
    /// full recomputation would.
    pub fn set_service(&mut self, key: ServiceKey, routes: Option<ServiceRoutes>) -> ServiceChange {
        let mut change = ServiceChange {
            service: key.clone(),
            ..ServiceChange::default()
        };
        if self.services.get(&key) == routes.as_ref() {
            return change;
        }
        let old = self.services.remove(&key);
        if old.as_ref().map(|r| &r.routes) != routes.as_ref().map(|r| &r.routes) {
            let cluster = |r: &Option<ServiceRoutes>| -> BTreeSet<ServiceRoute> {
                r.iter()
                    .flat_map(|r| r.routes.iter())
                    .filter(|r| r.scope == Scope::Cluster)
                    .copied()
                    .collect()
            };
            let (a, b) = (cluster(&old), cluster(&routes));
            change.shared_families = a.symmetric_difference(&b).map(|r| r.prefix.family()).collect();
        }
        if let Some(old) = &old {
            self.apply_local(&key, old, false, &mut change.nodes);
        }
        if let Some(new) = routes {
            self.apply_local(&key, &new, true, &mut change.nodes);
            self.services.insert(key.clone(), new);
        }
        self.service_attributes_changed(&key, old.as_ref(), &mut change);
        change
    }

    /// Adds or removes the Local-scope routes of one Service on the Nodes that announce them.
    fn apply_local(
        &mut self,
        key: &ServiceKey,
        routes: &ServiceRoutes,
        add: bool,
        touched: &mut BTreeSet<String>,
    ) {
        for route in routes.routes.iter().filter(|r| r.scope == Scope::Local) {
            let family = route.prefix.family();
            let Some(nodes) = routes.local_nodes.get(&family) else {
                continue;
            };
            let source = Source::Service {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                ip_type: route.ip_type,
            };
            for node in nodes {
                let Some(nr) = self.nodes.get_mut(node) else {
                    continue;
                };
                if nr.intent.next_hops.for_family(family).is_none() {
                    continue;
                }
                let announces = self
                    .policies
                    .get(&nr.intent.policy.name)
                    .is_some_and(|p| p.service_ip_types.contains(&route.ip_type));
                if !announces {
                    continue;
                }
                update_set(&mut nr.intent.prefixes, route.prefix, source.clone(), add);
                touched.insert(node.clone());
            }
        }
    }

    /// Cluster-scope Service routes (and `cluster` Pods) a policy announces from every Node
    /// it owns (of one family, or both), with their sources.
    pub fn shared_prefixes(
        &self,
        policy: &str,
        family: Option<Family>,
    ) -> BTreeMap<Prefix, BTreeSet<Source>> {
        let mut out: BTreeMap<Prefix, BTreeSet<Source>> = BTreeMap::new();
        let Some(report) = self.policies.get(policy) else {
            return out;
        };
        for (key, routes) in &self.services {
            for r in &routes.routes {
                if r.scope == Scope::Cluster
                    && report.service_ip_types.contains(&r.ip_type)
                    && family.is_none_or(|f| f == r.prefix.family())
                {
                    out.entry(r.prefix).or_default().insert(Source::Service {
                        namespace: key.namespace.clone(),
                        name: key.name.clone(),
                        ip_type: r.ip_type,
                    });
                }
            }
        }
        if report.pods {
            self.add_shared_pods(family, &mut out);
        }
        out
    }

    /// The full list of prefixes a Node announces: its node-specific ones plus its policy's
    /// shared ones of the families it has a next hop for, with their attributes. `sets` is
    /// left empty.
    pub fn logical_intent(&self, node: &str) -> Option<NodeIntent> {
        let nr = self.nodes.get(node)?;
        let mut intent = nr.intent.clone();
        for family in intent.next_hops.families().collect::<Vec<_>>() {
            for (prefix, sources) in self.shared_prefixes(&intent.policy.name, Some(family)) {
                intent.prefixes.entry(prefix).or_default().extend(sources);
                let (attrs, _) = self.prefix_attributes(&intent.policy.name, prefix);
                if !attrs.is_empty() {
                    intent.attributes.insert(prefix, attrs);
                }
            }
        }
        Some(intent)
    }

    /// Shared prefixes of the Node's policy it cannot announce for lack of a next hop.
    pub fn unannounced_shared(&self, node: &str) -> BTreeMap<Family, usize> {
        let Some(nr) = self.nodes.get(node) else {
            return BTreeMap::new();
        };
        Family::ALL
            .into_iter()
            .filter(|f| nr.intent.next_hops.for_family(*f).is_none())
            .map(|f| (f, self.shared_prefixes(&nr.intent.policy.name, Some(f)).len()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests;
