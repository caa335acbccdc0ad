//! Path attributes: read from Service annotations and policies, merged per prefix.
//!
//! ```text
//!  Service annotations ─service_attributes─▶ ServiceRoutes.attributes ─┐
//!                                                                      ├─ merge, per (policy, IP):
//!  BGPPolicy spec.pathAttributes ──────────▶ PolicyReport.path_attributes ┘  Services first (by
//!                                                                        namespace/name), then the policy
//! ```
//!
//! **The rule.** Within a policy, the attributes of a prefix are those of every Service that
//! has this IP among the policy's IP types, in namespace/name order, then the policy's own
//! (`PathAttributes::merge`: communities united, LOCAL_PREF and MED from the first that sets
//! each). PodCIDRs, Egress IPs and labelled Pods' IPs carry the policy's (and, should a Pod
//! IP also be a Service IP, those Services' first, like any other holder of that IP).
//!
//! The rule does not depend on the Node: a prefix carries the same attributes in every
//! intent and every set shard that holds it, which is what the CRDs' prefix groups require
//! and what lets a speaker take a prefix from its intent or from a set without caring which.
//! The price is in the rare case of two Services sharing an IP with different traffic
//! policies: a Node announcing the IP for one of them also sends the other's communities.
//!
//! **Incremental upkeep.** [`Resolution::set_service`] keeps an index of which Services
//! have which IP and, after a change, recomputes the attributes of that Service's prefixes
//! on every Node holding one of them (its own Local Nodes, other Services' Local Nodes for
//! the same IP, Nodes whose PodCIDR, Egress IP or `local` Pod IP it is) and names the other
//! Services and the `cluster` Pods whose shards hold one of them, so their shards are
//! rewritten too. [`Resolution::set_pod`] sets the attributes of the prefixes it adds and
//! keeps the index of non-Service node-local prefixes ([`Resolution::other_local`]).

use std::collections::{BTreeMap, BTreeSet};

use bgpintent_api::{Community, FieldError, LargeCommunity, PathAttributes, Prefix, Source};
use bgpintent_crd::MAX_COMMUNITIES;
use k8s_openapi::api::core::v1::Service;

use super::{Problem, Resolution, Scope, ServiceChange, ServiceKey, ServiceRoutes, update_set};

/// Communities added to every announced IP of the Service: comma-separated,
/// `<0-65535>:<0-65535>` or well-known names.
pub const COMMUNITIES_ANNOTATION: &str = "bgpintent.io/communities";
/// Large communities (RFC 8092), comma-separated `<uint32>:<uint32>:<uint32>`.
pub const LARGE_COMMUNITIES_ANNOTATION: &str = "bgpintent.io/large-communities";
/// LOCAL_PREF of the Service's IPs (iBGP peers only); overrides the policy's.
pub const LOCAL_PREF_ANNOTATION: &str = "bgpintent.io/local-pref";
/// MED of the Service's IPs; overrides the policy's.
pub const MED_ANNOTATION: &str = "bgpintent.io/med";

fn annotation_field(name: &str) -> String {
    format!("metadata.annotations[{name}]")
}

fn list<T>(
    name: &str,
    value: &str,
    parse: fn(&str, &str) -> Result<T, FieldError>,
    errors: &mut Vec<FieldError>,
) -> Vec<T> {
    let field = annotation_field(name);
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.len() > MAX_COMMUNITIES as usize {
        errors.push(
            FieldError::new(&field, format!("must list at most {MAX_COMMUNITIES} values"))
                .with_value(items.len()),
        );
        return Vec::new();
    }
    items
        .into_iter()
        .filter_map(|item| parse(&field, item).map_err(|e| errors.push(e)).ok())
        .collect()
}

fn integer(name: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<u32> {
    value
        .trim()
        .parse()
        .map_err(|_| {
            errors.push(
                FieldError::new(
                    annotation_field(name),
                    "must be an integer between 0 and 4294967295",
                )
                .with_value(format!("{value:?}")),
            )
        })
        .ok()
}

/// The attributes a Service's `bgpintent.io/*` annotations ask for. When any of them is
/// invalid, all of the Service's own attributes are ignored (its IPs are then sent with the
/// policy's only) and the errors, each naming its annotation and rule, say why.
pub fn service_attributes(service: &Service) -> (PathAttributes, Vec<FieldError>) {
    let Some(annotations) = &service.metadata.annotations else {
        return (PathAttributes::default(), Vec::new());
    };
    let mut errors = Vec::new();
    let mut attrs = PathAttributes::default();
    if let Some(v) = annotations.get(COMMUNITIES_ANNOTATION) {
        attrs.communities = list(COMMUNITIES_ANNOTATION, v, Community::from_field, &mut errors)
            .into_iter()
            .collect();
    }
    if let Some(v) = annotations.get(LARGE_COMMUNITIES_ANNOTATION) {
        attrs.large_communities = list(
            LARGE_COMMUNITIES_ANNOTATION,
            v,
            LargeCommunity::from_field,
            &mut errors,
        )
        .into_iter()
        .collect();
    }
    if let Some(v) = annotations.get(LOCAL_PREF_ANNOTATION) {
        attrs.local_pref = integer(LOCAL_PREF_ANNOTATION, v, &mut errors);
    }
    if let Some(v) = annotations.get(MED_ANNOTATION) {
        attrs.med = integer(MED_ANNOTATION, v, &mut errors);
    }
    if errors.is_empty() {
        (attrs, errors)
    } else {
        (PathAttributes::default(), errors)
    }
}

/// [`PathAttributes::merge`], bounded to what a prefix group may hold
/// ([`MAX_COMMUNITIES`] of each kind): past the bound, the communities of the more specific
/// sources are kept. Returns whether anything was left out.
pub(crate) fn merge_bounded(sources: &[&PathAttributes]) -> (PathAttributes, bool) {
    let mut merged = PathAttributes::merge(sources.iter().copied());
    let max = MAX_COMMUNITIES as usize;
    let over = merged.communities.len() > max || merged.large_communities.len() > max;
    if over {
        merged.communities = first(sources.iter().map(|s| &s.communities), max);
        merged.large_communities = first(sources.iter().map(|s| &s.large_communities), max);
    }
    (merged, over)
}

fn first<'a, T: Ord + Copy + 'a>(sets: impl Iterator<Item = &'a BTreeSet<T>>, max: usize) -> BTreeSet<T> {
    let mut out = BTreeSet::new();
    for v in sets.flatten() {
        if out.len() == max {
            break;
        }
        out.insert(*v);
    }
    out
}

impl Resolution {
    /// Services whose attributes apply to `prefix` under `policy`: those with a route for it
    /// of an IP type the policy announces, in namespace/name order.
    pub fn attribute_services(&self, policy: &str, prefix: Prefix) -> Vec<(&ServiceKey, &ServiceRoutes)> {
        let Some(report) = self.policies.get(policy) else {
            return Vec::new();
        };
        self.service_ips
            .get(&prefix)
            .into_iter()
            .flatten()
            .filter_map(|key| self.services.get_key_value(key))
            .filter(|(_, routes)| {
                routes
                    .routes
                    .iter()
                    .any(|r| r.prefix == prefix && report.service_ip_types.contains(&r.ip_type))
            })
            .collect()
    }

    /// The attributes `prefix` is announced with by the Nodes of `policy` (see the module
    /// documentation for the rule), and whether the community bound cut some off.
    pub fn prefix_attributes(&self, policy: &str, prefix: Prefix) -> (PathAttributes, bool) {
        let Some(report) = self.policies.get(policy) else {
            return (PathAttributes::default(), false);
        };
        let mut sources: Vec<&PathAttributes> = self
            .attribute_services(policy, prefix)
            .into_iter()
            .map(|(_, r)| &r.attributes)
            .collect();
        sources.push(&report.path_attributes);
        merge_bounded(&sources)
    }

    /// Updates the Service index and the attributes that depend on one Service, after
    /// `key` changed from `old` to its current entry in `services` (`set_service` calls
    /// this last, with the node-local prefixes already updated).
    pub(super) fn service_attributes_changed(
        &mut self,
        key: &ServiceKey,
        old: Option<&ServiceRoutes>,
        change: &mut ServiceChange,
    ) {
        let new = self.services.get(key).cloned();
        let prefixes: BTreeSet<Prefix> = old
            .into_iter()
            .chain(new.as_ref())
            .flat_map(|r| r.routes.iter().map(|r| r.prefix))
            .collect();
        for r in old.iter().flat_map(|r| r.routes.iter()) {
            update_set(&mut self.service_ips, r.prefix, key.clone(), false);
        }
        for r in new.iter().flat_map(|r| r.routes.iter()) {
            update_set(&mut self.service_ips, r.prefix, key.clone(), true);
        }
        let cluster_families = |r: Option<&ServiceRoutes>| {
            r.into_iter()
                .flat_map(|r| r.routes.iter())
                .filter(|r| r.scope == Scope::Cluster)
                .map(|r| r.prefix.family())
                .collect::<Vec<_>>()
        };
        let attributes_changed = old.map(|r| &r.attributes) != new.as_ref().map(|r| &r.attributes);
        if attributes_changed {
            // This Service's own groups carry the new attributes.
            change.shared_families.extend(cluster_families(old));
            change.shared_families.extend(cluster_families(new.as_ref()));
        }
        let routes_changed = old.map(|r| &r.routes) != new.as_ref().map(|r| &r.routes);

        // Nodes that may hold one of these prefixes node-locally.
        let mut nodes: BTreeSet<String> = change.nodes.clone();
        for prefix in &prefixes {
            nodes.extend(self.other_local.get(prefix).into_iter().flatten().cloned());
            for other in self.service_ips.get(prefix).into_iter().flatten() {
                let routes = &self.services[other];
                let local = routes
                    .routes
                    .iter()
                    .any(|r| r.prefix == *prefix && r.scope == Scope::Local);
                if local {
                    nodes.extend(
                        routes
                            .local_nodes
                            .get(&prefix.family())
                            .into_iter()
                            .flatten()
                            .cloned(),
                    );
                }
                // Other Services' shards holding a prefix whose attributes may have changed.
                if other != key && (attributes_changed || routes_changed) {
                    let cluster = routes
                        .routes
                        .iter()
                        .any(|r| r.prefix == *prefix && r.scope == Scope::Cluster);
                    if cluster {
                        change
                            .shared_others
                            .entry(other.clone())
                            .or_default()
                            .insert(prefix.family());
                    }
                }
            }
        }
        // `cluster` Pods with one of these IPs: their groups carry its attributes too.
        if attributes_changed || routes_changed {
            for prefix in &prefixes {
                for pod in self.cluster_pod_ips.get(prefix).into_iter().flatten() {
                    change
                        .shared_pods
                        .entry(pod.clone())
                        .or_default()
                        .insert(prefix.family());
                }
            }
        }
        for node in nodes {
            for prefix in &prefixes {
                if self.refresh_attributes(&node, *prefix) {
                    change.nodes.insert(node.clone());
                }
            }
        }
    }

    /// Sets the attributes of `prefix` in `node`'s intent from the rule (none when the Node
    /// does not announce it node-locally). Returns whether they changed.
    fn refresh_attributes(&mut self, node: &str, prefix: Prefix) -> bool {
        let Some(nr) = self.nodes.get(node) else {
            return false;
        };
        let attrs = if nr.intent.prefixes.contains_key(&prefix) {
            self.prefix_attributes(&nr.intent.policy.name, prefix).0
        } else {
            PathAttributes::default()
        };
        let map = &mut self.nodes.get_mut(node).expect("checked above").intent.attributes;
        if attrs.is_empty() {
            map.remove(&prefix).is_some()
        } else {
            map.insert(prefix, attrs.clone()).as_ref() != Some(&attrs)
        }
    }

    /// After a non-Service source of `prefix` (a `local` Pod) was added to or removed from
    /// `node`'s intent: keeps [`Resolution::other_local`] and the prefix's attributes there
    /// up to date.
    pub(super) fn node_local_changed(&mut self, node: &str, prefix: Prefix) {
        let other = self.nodes.get(node).is_some_and(|nr| {
            nr.intent
                .prefixes
                .get(&prefix)
                .is_some_and(|sources| sources.iter().any(|s| !matches!(s, Source::Service { .. })))
        });
        update_set(&mut self.other_local, prefix, node.to_owned(), other);
        self.refresh_attributes(node, prefix);
    }

    /// Prefixes whose merged communities were cut to the bound, reported on the policy.
    pub(super) fn attribute_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for policy in self.policies.keys() {
            for prefix in self.service_ips.keys() {
                if self.prefix_attributes(policy, *prefix).1 {
                    let services: Vec<String> = self
                        .attribute_services(policy, *prefix)
                        .iter()
                        .map(|(k, _)| k.to_string())
                        .collect();
                    out.push(Problem::new(
                        &format!("BGPPolicy {policy}"),
                        "spec.pathAttributes",
                        format!(
                            "{prefix} has more than {MAX_COMMUNITIES} communities or large communities once \
                             those of Services {} and the policy are united; only the first {MAX_COMMUNITIES} \
                             (Services' first) are sent",
                            services.join(", ")
                        ),
                    ));
                }
            }
        }
        out
    }
}

/// Where the attributes of a prefix on a Node come from, most specific first, for
/// `explain`: each Service that contributes (with its annotation errors, if it has any),
/// then the policy.
pub(crate) fn attribute_sources(res: &Resolution, policy: &str, prefix: Prefix) -> Vec<String> {
    let mut lines = Vec::new();
    for (key, routes) in res.attribute_services(policy, prefix) {
        if !routes.invalid_annotations.is_empty() {
            let errors: Vec<String> = routes
                .invalid_annotations
                .iter()
                .map(ToString::to_string)
                .collect();
            lines.push(format!(
                "Service {key}: its bgpintent.io annotations are ignored: {}",
                errors.join("; ")
            ));
        } else if !routes.attributes.is_empty() {
            lines.push(format!("Service {key}: {}", describe(&routes.attributes)));
        }
    }
    if let Some(report) = res.policies.get(policy)
        && !report.path_attributes.is_empty()
    {
        lines.push(format!(
            "BGPPolicy {policy} spec.pathAttributes: {}",
            describe(&report.path_attributes)
        ));
    }
    lines
}

/// One line for humans: `communities 64512:1, no-export; LOCAL_PREF 200 (iBGP only); MED 10`.
pub fn describe(a: &PathAttributes) -> String {
    let mut parts = Vec::new();
    if !a.communities.is_empty() {
        let c: Vec<String> = a.communities.iter().map(ToString::to_string).collect();
        parts.push(format!("communities {}", c.join(", ")));
    }
    if !a.large_communities.is_empty() {
        let c: Vec<String> = a.large_communities.iter().map(ToString::to_string).collect();
        parts.push(format!("large communities {}", c.join(", ")));
    }
    if let Some(l) = a.local_pref {
        parts.push(format!("LOCAL_PREF {l} (iBGP peers only)"));
    }
    if let Some(m) = a.med {
        parts.push(format!("MED {m}"));
    }
    if parts.is_empty() {
        "no path attributes beyond the defaults".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Non-Service node-local prefixes (PodCIDRs, Egress IPs; `local` Pods are added by
/// [`Resolution::set_pod`]) → the Nodes announcing them: the
/// Nodes to revisit when a Service with the same IP changes.
pub(super) fn other_local_index<'a>(
    nodes: impl Iterator<Item = (&'a String, &'a BTreeMap<Prefix, BTreeSet<Source>>)>,
) -> BTreeMap<Prefix, BTreeSet<String>> {
    let mut out: BTreeMap<Prefix, BTreeSet<String>> = BTreeMap::new();
    for (node, prefixes) in nodes {
        for (prefix, sources) in prefixes {
            if sources.iter().any(|s| !matches!(s, Source::Service { .. })) {
                out.entry(*prefix).or_default().insert(node.clone());
            }
        }
    }
    out
}
