//! Adj-RIB-Out of one peer (RFC 4271 §3.2): what we want the peer to have, what it has,
//! and the difference between the two as the fewest changes.
//!
//! The table is keyed by prefix and stores the announcement attributes by value (behind
//! an `Arc`, so thousands of prefixes share one allocation). Diffs are merges of two
//! sorted maps, so their cost is linear in the table, and announcements come out grouped
//! by attributes: prefixes that share attributes share UPDATEs.

use std::{
    collections::{BTreeMap, btree_map::Entry},
    sync::Arc,
};

use bgpintent_api::{Family, Prefix};

use crate::wire::LargeCommunity;

/// How to announce a prefix, independent of the session type: the session turns it into
/// AS_PATH (our AS for eBGP, after the prepends) and LOCAL_PREF (iBGP only).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Announce {
    /// ASNs put in front of the path (for eBGP, before our own AS).
    pub as_path_prepend: Vec<u32>,
    pub med: Option<u32>,
    /// iBGP only; 100 when `None` (the RFC 4271 §9.1.1 customary default).
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<LargeCommunity>,
}

/// The routes a peer should have.
pub type Routes = BTreeMap<Prefix, Arc<Announce>>;

/// Changes for one family: withdrawals, and announcements grouped by attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub withdraw: Vec<Prefix>,
    pub announce: BTreeMap<Arc<Announce>, Vec<Prefix>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.withdraw.is_empty() && self.announce.is_empty()
    }

    pub fn announced(&self) -> usize {
        self.announce.values().map(Vec::len).sum()
    }
}

#[derive(Debug, Clone, Default)]
pub struct AdjRibOut {
    desired: Routes,
    /// What the peer was sent and not withdrawn: the peer's view of us.
    sent: Routes,
}

impl AdjRibOut {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_desired(&mut self, routes: Routes) {
        self.desired = routes;
    }

    pub fn desired(&self) -> &Routes {
        &self.desired
    }

    /// The session went down: the peer no longer has anything from us.
    pub fn reset(&mut self) {
        self.sent.clear();
    }

    pub fn sent_count(&self, family: Family) -> usize {
        self.sent.keys().filter(|p| p.family() == family).count()
    }

    /// Everything desired for `family` (initial table, route refresh), marked as sent.
    /// Prefixes the peer had but that are no longer desired are withdrawn as well, so
    /// the result also brings a stale peer in line.
    pub fn take_full(&mut self, family: Family) -> Changes {
        // The diff brings `sent` up to date and says what to withdraw; the announcements
        // are then simply everything desired, in prefix order within each group.
        let withdraw = self.take_diff(family).withdraw;
        let mut announce: BTreeMap<Arc<Announce>, Vec<Prefix>> = BTreeMap::new();
        for (p, a) in family_range(&self.desired, family) {
            announce.entry(a.clone()).or_default().push(*p);
        }
        Changes { withdraw, announce }
    }

    /// Only what changed for `family` since the last call: new or changed prefixes
    /// announced, gone ones withdrawn. Marks the result as sent.
    pub fn take_diff(&mut self, family: Family) -> Changes {
        let mut changes = Changes::default();
        for (p, a) in family_range(&self.desired, family) {
            match self.sent.entry(*p) {
                Entry::Occupied(mut e) if e.get() != a => {
                    e.insert(a.clone());
                    changes.announce.entry(a.clone()).or_default().push(*p);
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(e) => {
                    e.insert(a.clone());
                    changes.announce.entry(a.clone()).or_default().push(*p);
                }
            }
        }
        let gone: Vec<Prefix> = family_range(&self.sent, family)
            .map(|(p, _)| *p)
            .filter(|p| !self.desired.contains_key(p))
            .collect();
        for p in &gone {
            self.sent.remove(p);
        }
        changes.withdraw = gone;
        changes
    }
}

fn family_range(routes: &Routes, family: Family) -> impl Iterator<Item = (&Prefix, &Arc<Announce>)> {
    // Prefix orders IPv4 before IPv6, so a family is a contiguous run.
    routes.iter().filter(move |(p, _)| p.family() == family)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[(&str, &Arc<Announce>)]) -> Routes {
        list.iter()
            .map(|(p, a)| (p.parse().unwrap(), Arc::clone(a)))
            .collect()
    }

    #[test]
    fn diff_sends_only_what_changed() {
        let plain = Arc::new(Announce::default());
        let tagged = Arc::new(Announce {
            communities: vec![1],
            ..Announce::default()
        });
        let mut rib = AdjRibOut::new();
        rib.set_desired(routes(&[("192.0.2.1/32", &plain), ("192.0.2.2/32", &plain)]));
        let first = rib.take_diff(Family::Ipv4);
        assert_eq!(first.announced(), 2);
        assert!(
            rib.take_diff(Family::Ipv4).is_empty(),
            "nothing changed, nothing sent"
        );

        rib.set_desired(routes(&[("192.0.2.2/32", &tagged), ("192.0.2.3/32", &plain)]));
        let d = rib.take_diff(Family::Ipv4);
        assert_eq!(d.withdraw, vec!["192.0.2.1/32".parse::<Prefix>().unwrap()]);
        assert_eq!(
            d.announce[&tagged],
            vec!["192.0.2.2/32".parse::<Prefix>().unwrap()]
        );
        assert_eq!(
            d.announce[&plain],
            vec!["192.0.2.3/32".parse::<Prefix>().unwrap()]
        );
        assert_eq!(rib.sent_count(Family::Ipv4), 2);
    }

    #[test]
    fn families_are_independent() {
        let a = Arc::new(Announce::default());
        let mut rib = AdjRibOut::new();
        rib.set_desired(routes(&[("192.0.2.1/32", &a), ("2001:db8::1/128", &a)]));
        assert_eq!(rib.take_diff(Family::Ipv6).announced(), 1);
        assert_eq!(rib.sent_count(Family::Ipv4), 0);
        assert_eq!(rib.take_full(Family::Ipv4).announced(), 1);
    }

    #[test]
    fn full_table_after_reset_and_for_refresh() {
        let a = Arc::new(Announce::default());
        let mut rib = AdjRibOut::new();
        rib.set_desired(routes(&[("192.0.2.1/32", &a), ("192.0.2.2/32", &a)]));
        assert_eq!(rib.take_full(Family::Ipv4).announced(), 2);
        // A refresh re-sends everything even though nothing changed.
        assert_eq!(rib.take_full(Family::Ipv4).announced(), 2);
        rib.reset();
        assert_eq!(rib.sent_count(Family::Ipv4), 0);
        let after = rib.take_full(Family::Ipv4);
        assert_eq!((after.announced(), after.withdraw.len()), (2, 0));
    }

    #[test]
    fn full_table_lists_each_prefix_once_even_when_attributes_changed() {
        let a = Arc::new(Announce::default());
        let b = Arc::new(Announce {
            med: Some(5),
            ..Announce::default()
        });
        let mut rib = AdjRibOut::new();
        rib.set_desired(routes(&[("192.0.2.1/32", &a), ("192.0.2.9/32", &a)]));
        rib.take_diff(Family::Ipv4);
        rib.set_desired(routes(&[
            ("192.0.2.0/32", &b),
            ("192.0.2.1/32", &b),
            ("192.0.2.2/32", &a),
        ]));
        let full = rib.take_full(Family::Ipv4);
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        assert_eq!(full.announce[&b], vec![p("192.0.2.0/32"), p("192.0.2.1/32")]);
        assert_eq!(full.announce[&a], vec![p("192.0.2.2/32")]);
        assert_eq!(full.withdraw, vec![p("192.0.2.9/32")]);
    }
}
