//! What the speaker should be doing: the intent, the prefixes of the sets it names, and the
//! passwords its peers reference. Built by a source (Kubernetes or files); the agent diffs
//! one `Desired` against the next.
//!
//! ```text
//!  intent.prefixes + .attributes ─┐
//!  set tables (prefixes + attrs) ─┼─ routes() ─▶ prefix → Arc<Announce> (one Arc per
//!  intent.as_path_prepend ────────┘              distinct attributes, shared by prefixes)
//! ```

use std::{collections::BTreeMap, sync::Arc};

use bgpintent_api::{NodeIntent, PasswordRef, PathAttributes};
use bgpintent_crd::convert::PrefixTable;

use crate::{
    session::{Announce, Routes},
    wire::LargeCommunity,
};

/// A password value, resolved from its reference. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub Vec<u8>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Everything the agent acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub intent: NodeIntent,
    /// `metadata.generation` of the BGPNodeIntent (reported back as `observedGeneration`).
    pub generation: Option<i64>,
    /// Prefixes (with their attributes) of the sets the intent names, by set name (those
    /// found; a missing set is reported).
    pub set_prefixes: BTreeMap<String, PrefixTable>,
    /// Passwords by reference; a reference whose value could not be read is absent.
    pub passwords: BTreeMap<PasswordRef, Password>,
}

impl Desired {
    /// Every prefix this Node announces, its own and those of its sets, with the attributes
    /// it is sent with. Prefixes with equal attributes share one `Announce` (and so one
    /// UPDATE group in the Adj-RIB-Out).
    ///
    /// The controller writes a prefix's attributes identically wherever the prefix appears;
    /// should the intent and a set still disagree (one written before the other), the
    /// intent's win, then the set last by name.
    pub fn routes(&self) -> Routes {
        let prepend = self.intent.as_path_prepend.map(|p| p.path()).unwrap_or_default();
        let none = PathAttributes::default();
        let mut shared: BTreeMap<&PathAttributes, Arc<Announce>> = BTreeMap::new();
        let mut routes = Routes::new();
        let tables = self
            .set_prefixes
            .values()
            .map(|t| (&t.prefixes, &t.attributes))
            .chain(std::iter::once((&self.intent.prefixes, &self.intent.attributes)));
        for (prefixes, attributes) in tables {
            for prefix in prefixes.keys() {
                let attrs = attributes.get(prefix).unwrap_or(&none);
                let announce = shared
                    .entry(attrs)
                    .or_insert_with(|| Arc::new(announce(attrs, &prepend)));
                routes.insert(*prefix, announce.clone());
            }
        }
        routes
    }

    /// Sets the intent names that the source has not (yet) found.
    pub fn missing_sets(&self) -> Vec<&str> {
        self.intent
            .sets
            .iter()
            .filter(|s| !self.set_prefixes.contains_key(*s))
            .map(String::as_str)
            .collect()
    }

    pub fn password(&self, reference: Option<&PasswordRef>) -> Option<&[u8]> {
        reference
            .and_then(|r| self.passwords.get(r))
            .map(|p| p.0.as_slice())
    }
}

/// The session's form of a prefix's attributes. The session decides per peer what goes on
/// the wire: LOCAL_PREF to iBGP peers only, our own AS after the prepends to eBGP peers.
fn announce(attrs: &PathAttributes, prepend: &[u32]) -> Announce {
    Announce {
        as_path_prepend: prepend.to_vec(),
        med: attrs.med,
        local_pref: attrs.local_pref,
        communities: attrs.communities.iter().map(|c| c.0).collect(),
        large_communities: attrs
            .large_communities
            .iter()
            .map(|l| LargeCommunity {
                global_admin: l.global,
                local_data1: l.local1,
                local_data2: l.local2,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bgpintent_api::{AsPathPrepend, Asn, NextHops, PolicyRef, Prefix, RouterId, Source};

    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn tagged(community: &str, med: Option<u32>) -> PathAttributes {
        PathAttributes {
            communities: [community.parse().unwrap()].into(),
            med,
            ..PathAttributes::default()
        }
    }

    fn table(prefixes: &[&str], attributes: &[(&str, PathAttributes)]) -> PrefixTable {
        PrefixTable {
            prefixes: prefixes
                .iter()
                .map(|s| (p(s), BTreeSet::from([Source::PodCidr])))
                .collect(),
            attributes: attributes.iter().map(|(s, a)| (p(s), a.clone())).collect(),
        }
    }

    fn desired(own: PrefixTable, sets: Vec<(&str, PrefixTable)>) -> Desired {
        Desired {
            intent: NodeIntent {
                node: "n".into(),
                policy: PolicyRef {
                    name: "p".into(),
                    uid: "u".into(),
                    generation: 1,
                },
                router_id: RouterId::try_from(std::net::Ipv4Addr::new(192, 0, 2, 1)).unwrap(),
                local_asn: Asn::try_from(64512).unwrap(),
                listen_port: 179,
                confederation: None,
                next_hops: NextHops::default(),
                peers: BTreeMap::new(),
                prefixes: own.prefixes,
                sets: sets.iter().map(|(n, _)| n.to_string()).collect(),
                attributes: own.attributes,
                as_path_prepend: None,
            },
            generation: Some(1),
            set_prefixes: sets.into_iter().map(|(n, t)| (n.to_string(), t)).collect(),
            passwords: BTreeMap::new(),
        }
    }

    #[test]
    fn routes_carry_attributes_and_share_one_announce_per_distinct_set() {
        let a = tagged("64512:1", Some(5));
        let b = PathAttributes {
            local_pref: Some(200),
            large_communities: ["64512:0:7".parse().unwrap()].into(),
            ..PathAttributes::default()
        };
        let own = table(&["10.0.0.0/24", "10.0.1.0/24"], &[("10.0.0.0/24", a.clone())]);
        let set = table(
            &["192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"],
            &[("192.0.2.1/32", a.clone()), ("192.0.2.2/32", b)],
        );
        let routes = desired(own, vec![("s-0", set)]).routes();
        assert_eq!(routes.len(), 5);
        let r = |s: &str| &routes[&p(s)];
        // Same attributes (one from the intent, one from a set): the same allocation.
        assert!(Arc::ptr_eq(r("10.0.0.0/24"), r("192.0.2.1/32")));
        assert!(Arc::ptr_eq(r("10.0.1.0/24"), r("192.0.2.3/32")));
        assert!(!Arc::ptr_eq(r("10.0.0.0/24"), r("10.0.1.0/24")));
        assert_eq!(r("10.0.1.0/24").as_ref(), &Announce::default());
        assert_eq!(
            r("10.0.0.0/24").as_ref(),
            &Announce {
                med: Some(5),
                communities: vec![0xFC00_0001],
                ..Announce::default()
            }
        );
        let with_b = r("192.0.2.2/32");
        assert_eq!(with_b.local_pref, Some(200));
        assert_eq!(
            with_b.large_communities,
            [LargeCommunity {
                global_admin: 64512,
                local_data1: 0,
                local_data2: 7
            }]
        );
        let distinct: BTreeSet<*const Announce> = routes.values().map(Arc::as_ptr).collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn prepend_applies_to_every_route_and_a_change_is_a_routes_change() {
        let own = table(&["10.0.0.0/24"], &[("10.0.0.0/24", tagged("1:1", None))]);
        let set = table(&["192.0.2.1/32"], &[]);
        let mut d = desired(own, vec![("s-0", set)]);
        let before = d.routes();
        d.intent.as_path_prepend = Some(AsPathPrepend {
            asn: Asn::try_from(64512).unwrap(),
            repeat: 2,
        });
        let after = d.routes();
        assert!(after.values().all(|a| a.as_path_prepend == [64512, 64512]));
        assert_ne!(before, after, "the agent sees the change and sends it as routes");
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_intent_wins_over_a_set_that_disagrees() {
        let own = table(&["192.0.2.1/32"], &[("192.0.2.1/32", tagged("1:1", None))]);
        let stale = table(&["192.0.2.1/32"], &[("192.0.2.1/32", tagged("2:2", None))]);
        let routes = desired(own, vec![("s-0", stale)]).routes();
        assert_eq!(routes[&p("192.0.2.1/32")].communities, [0x0001_0001]);
    }
}
