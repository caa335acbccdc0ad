//! How many shards a policy's shared prefixes of one family get, and what goes in each.
//!
//! A Service (or a `cluster` Pod) lands in shard `fnv1a32(namespace/name) % count`, so a
//! Service or Pod change rewrites exactly one shard per family. The count is chosen from the
//! content's size with hysteresis: it is kept from the previous layout while every shard
//! stays under [`SOFT_MAX_SET_BYTES`] and the average stays over [`MIN_AVG_SET_BYTES`];
//! otherwise it is recomputed so the average is [`TARGET_SET_BYTES`]. Changing the count
//! rewrites every shard and every intent of the policy (new set names), so it must be rare:
//! the 2 KiB–15 KiB band means a policy has to roughly halve or double its shared content
//! before that happens.

use std::collections::BTreeMap;

use bgpintent_api::{Family, PathAttributes, Prefix, ServiceIpType, Source};
use bgpintent_crd::{
    MAX_PREFIXES_PER_GROUP,
    common::PrefixGroup,
    convert::{path_attributes_spec, source_ref},
};

use crate::intent::{PodKey, PodRoute, Resolution, Scope, ServiceKey, ServiceRoutes};

/// Bytes of prefix groups above which a shard forces a re-layout. With object overhead
/// this keeps one rewritten set under 16 KiB.
pub const SOFT_MAX_SET_BYTES: usize = 15 * 1024;
/// Average bytes per shard aimed at when the count is (re)computed.
pub const TARGET_SET_BYTES: usize = 8 * 1024;
/// Average below which the count is recomputed (shrunk).
pub const MIN_AVG_SET_BYTES: usize = 2 * 1024;
/// Upper bound on shards per policy and family (every intent lists their names).
pub const MAX_SHARDS: u32 = 1024;

/// The groups one Service contributes to the shared set of a policy and family: one group
/// per (IP type, attributes), prefixes sorted, split at the CRD's per-group bound. A
/// prefix's attributes are merged over every Service that has it (see `intent::attributes`),
/// so they are the same in every shard that holds it.
pub(crate) fn service_groups(
    res: &Resolution,
    policy: &str,
    key: &ServiceKey,
    routes: &ServiceRoutes,
    family: Family,
) -> Vec<PrefixGroup> {
    let Some(report) = res.policies.get(policy) else {
        return Vec::new();
    };
    let mut by_type: BTreeMap<(ServiceIpType, PathAttributes), Vec<Prefix>> = BTreeMap::new();
    for r in &routes.routes {
        if r.scope == Scope::Cluster
            && report.service_ip_types.contains(&r.ip_type)
            && r.prefix.family() == family
        {
            let (attrs, _) = res.prefix_attributes(policy, r.prefix);
            by_type.entry((r.ip_type, attrs)).or_default().push(r.prefix);
        }
    }
    let mut out = Vec::new();
    for ((ip_type, attrs), prefixes) in by_type {
        let source = Source::Service {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            ip_type,
        };
        push_groups(&mut out, &source, &attrs, &prefixes);
    }
    out
}

/// The groups one `cluster` Pod contributes to the shared set of a policy and family (none
/// when the policy does not advertise Pods or the Pod has no IP of that family): one group
/// per attribute set, as for a Service.
pub(crate) fn pod_groups(
    res: &Resolution,
    policy: &str,
    key: &PodKey,
    route: &PodRoute,
    family: Family,
) -> Vec<PrefixGroup> {
    if route.scope != Scope::Cluster || !res.policies.get(policy).is_some_and(|p| p.pods) {
        return Vec::new();
    }
    let mut by_attrs: BTreeMap<PathAttributes, Vec<Prefix>> = BTreeMap::new();
    for prefix in route.prefixes.iter().filter(|p| p.family() == family) {
        let (attrs, _) = res.prefix_attributes(policy, *prefix);
        by_attrs.entry(attrs).or_default().push(*prefix);
    }
    let mut out = Vec::new();
    for (attrs, prefixes) in by_attrs {
        push_groups(&mut out, &key.source(), &attrs, &prefixes);
    }
    out
}

/// Groups of one source with one attribute set, split at the CRD's per-group bound.
fn push_groups(out: &mut Vec<PrefixGroup>, source: &Source, attrs: &PathAttributes, prefixes: &[Prefix]) {
    let attributes = (!attrs.is_empty()).then(|| path_attributes_spec(attrs));
    let source = source_ref(source);
    for chunk in prefixes.chunks(MAX_PREFIXES_PER_GROUP as usize) {
        out.push(PrefixGroup {
            source: source.clone(),
            prefixes: chunk.iter().map(Prefix::to_string).collect(),
            attributes: attributes.clone(),
        });
    }
}

/// Serialized size of groups as they appear in a list (with separators).
pub(crate) fn groups_bytes(groups: &[PrefixGroup]) -> usize {
    groups
        .iter()
        .map(|g| serde_json::to_vec(g).map(|v| v.len() + 1).unwrap_or(0))
        .sum()
}

/// Per-Service and per-Pod (hash, bytes) of the shared content of one policy and family.
pub(crate) fn sizes(res: &Resolution, policy: &str, family: Family) -> Vec<(u32, usize)> {
    let services = res.services.iter().map(|(key, routes)| {
        let bytes = groups_bytes(&service_groups(res, policy, key, routes, family));
        (routes.shard_hash, bytes)
    });
    let pods = res.pods.iter().map(|(key, route)| {
        let bytes = groups_bytes(&pod_groups(res, policy, key, route, family));
        (route.shard_hash, bytes)
    });
    services.chain(pods).filter(|(_, bytes)| *bytes > 0).collect()
}

fn max_load(sizes: &[(u32, usize)], count: u32) -> usize {
    let mut loads = vec![0usize; count as usize];
    for (hash, bytes) in sizes {
        loads[(hash % count) as usize] += bytes;
    }
    loads.into_iter().max().unwrap_or(0)
}

/// The shard count for content of these sizes, keeping `previous` when it still fits.
pub(crate) fn choose_count(sizes: &[(u32, usize)], previous: Option<u32>) -> u32 {
    let total: usize = sizes.iter().map(|(_, b)| b).sum();
    if let Some(n) = previous.filter(|n| (1..=MAX_SHARDS).contains(n)) {
        let dense_enough = n == 1 || total >= n as usize * MIN_AVG_SET_BYTES;
        if dense_enough && max_load(sizes, n) <= SOFT_MAX_SET_BYTES {
            return n;
        }
    }
    let mut n = (total.div_ceil(TARGET_SET_BYTES) as u32).clamp(1, MAX_SHARDS);
    while n < MAX_SHARDS && max_load(sizes, n) > SOFT_MAX_SET_BYTES {
        n = (n + n.div_ceil(8)).min(MAX_SHARDS);
    }
    n
}

/// A DNS-subdomain name for shard `index` of `count` of a policy's shared `family` set.
///
/// The count is part of the name so a re-layout is make-before-break: new sets are created
/// under new names, intents switch to them, then the old sets are deleted; a speaker never
/// reads shard 3-of-8 content under a name its intent means as 3-of-16.
pub fn set_name(policy: &str, family: Family, count: u32, index: u32) -> String {
    let fam = match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    };
    let width = (count.saturating_sub(1)).to_string().len();
    let suffix = format!("-{fam}-{count}-{index:0width$}");
    const MAX: usize = 253;
    if policy.len() + suffix.len() <= MAX {
        return format!("{policy}{suffix}");
    }
    // Truncate, keep names of different long policies apart with a hash, and end on an
    // alphanumeric character as DNS subdomains must.
    let hash = format!("-{:08x}", bgpintent_api::fnv1a32(policy.as_bytes()));
    let keep = MAX - suffix.len() - hash.len();
    let head = policy
        .get(..keep)
        .unwrap_or_default()
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{head}{hash}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_dns_subdomains_even_for_long_policies() {
        assert_eq!(set_name("default", Family::Ipv4, 16, 3), "default-ipv4-16-03");
        assert_eq!(set_name("default", Family::Ipv6, 1, 0), "default-ipv6-1-0");
        let long = format!("{}.x", "a".repeat(250));
        let other = format!("{}.y", "a".repeat(250));
        let n = set_name(&long, Family::Ipv4, 1024, 1023);
        assert!(n.len() <= 253, "{}", n.len());
        assert_ne!(n, set_name(&other, Family::Ipv4, 1024, 1023));
        let re = regex_lite(&n);
        assert!(re, "{n}");
    }

    /// DNS-1123 subdomain: lowercase alphanumerics, '-' and '.', alphanumeric at both ends,
    /// each dot-separated label non-empty.
    fn regex_lite(s: &str) -> bool {
        s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
    }

    #[test]
    fn count_has_hysteresis() {
        // 1,000 Services of 100 bytes: 100,000 bytes → 13 shards at 8 KiB average.
        let sizes: Vec<(u32, usize)> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761), 100))
            .collect();
        let n = choose_count(&sizes, None);
        assert!((12..=20).contains(&n), "{n}");
        // Growing by 20% keeps the count; doubling it does not.
        let more: Vec<(u32, usize)> = (0..1200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761), 100))
            .collect();
        assert_eq!(choose_count(&more, Some(n)), n);
        let double: Vec<(u32, usize)> = (0..3000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761), 100))
            .collect();
        assert!(choose_count(&double, Some(n)) > n);
        // Shrinking far below the band recomputes.
        let few: Vec<(u32, usize)> = (0..10u32).map(|i| (i, 100)).collect();
        assert_eq!(choose_count(&few, Some(n)), 1);
        assert_eq!(choose_count(&[], None), 1);
    }

    #[test]
    fn every_shard_is_under_the_soft_max() {
        let sizes: Vec<(u32, usize)> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761), 120))
            .collect();
        let n = choose_count(&sizes, None);
        assert!(max_load(&sizes, n) <= SOFT_MAX_SET_BYTES);
    }
}
