//! Our speaker (the real binary, standalone mode) against BIRD 2, GoBGP and FRR in network
//! namespaces: IPv4 and IPv6 sessions, IPv4 and IPv6 prefixes with the right next hops and
//! attributes, and an intent change that adds and withdraws exactly what changed.

use std::{collections::BTreeSet, time::Duration};

use bgpintent_api::Family;
use bgpintent_crd::node_intent::SessionStateName;
use bgpintent_tests::{
    lab::{
        BIRD, BIRD_AS, FRR, FRR_AS, GOBGP, GOBGP_AS, Lab, Origin, ROUTER_PROGRAMS, Route, Router, SPEAKER_AS,
        Topology,
    },
    speaker::{self, Speaker},
};

const UP: Duration = Duration::from_secs(30);
const ROUTES: Duration = Duration::from_secs(15);

fn prefixes(routes: &[Route]) -> BTreeSet<String> {
    routes
        .iter()
        .filter(|r| r.from.is_some() || !r.as_path.is_empty())
        .map(|r| r.prefix.to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn check_routes(router: &dyn Router, family: Family, want: &[&str], next_hop: &str) {
    let want = set(want);
    let routes = router
        .wait_routes(family, ROUTES, &format!("{want:?}"), &|r| prefixes(r) == want)
        .unwrap_or_else(|e| panic!("{e}"));
    for r in routes.iter().filter(|r| want.contains(&r.prefix.to_string())) {
        assert_eq!(
            r.next_hops.first().map(ToString::to_string).as_deref(),
            Some(next_hop),
            "{}: {r:?}",
            router.name()
        );
        assert_eq!(
            r.as_path,
            [SPEAKER_AS],
            "{}: eBGP path is our AS: {r:?}",
            router.name()
        );
        assert_eq!(r.origin, Some(Origin::Igp), "{}: {r:?}", router.name());
    }
}

#[test]
fn sessions_prefixes_next_hops_and_intent_changes_with_bird_gobgp_and_frr() {
    if !bgpintent_tests::lab::require("interop_basic", ROUTER_PROGRAMS) {
        return;
    }
    speaker::binary();
    let lab = Lab::standard("basic", Topology::ROUTERS).unwrap();
    let bird = lab.start_bird(BIRD, &lab.bird_config()).unwrap();
    let gobgp = lab.start_gobgp(GOBGP, &lab.gobgp_config()).unwrap();
    let frr = lab.start_frr(FRR, &lab.frr_config()).unwrap();

    let mut intent = speaker::intent();
    for (router, asn) in [(BIRD, BIRD_AS), (GOBGP, GOBGP_AS), (FRR, FRR_AS)] {
        speaker::add_peer(&mut intent, &lab.v4(router).to_string(), asn);
        speaker::add_peer(&mut intent, &lab.v6(router).to_string(), asn);
    }
    speaker::add_prefixes(
        &mut intent,
        &[
            "203.0.113.10/32",
            "203.0.113.11/32",
            "2001:db8:ffff::10/128",
            "2001:db8:ffff::11/128",
        ],
    );
    let mut spk = Speaker::start(&lab, &intent).unwrap();

    let routers: [(&dyn Router, &str); 3] = [(&bird, BIRD), (&gobgp, GOBGP), (&frr, FRR)];
    for (router, _) in routers {
        router
            .wait_established(lab.v4(bgpintent_tests::lab::SPEAKER), UP)
            .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(30)));
        router
            .wait_established(lab.v6(bgpintent_tests::lab::SPEAKER), UP)
            .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(30)));
    }
    let status = spk
        .wait_status("all six sessions Established", UP, |s| s.established == 6)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status
            .peers
            .iter()
            .all(|p| p.state == SessionStateName::Established)
    );

    for (router, _) in routers {
        check_routes(
            router,
            Family::Ipv4,
            &["203.0.113.10/32", "203.0.113.11/32"],
            "192.0.2.1",
        );
        check_routes(
            router,
            Family::Ipv6,
            &["2001:db8:ffff::10/128", "2001:db8:ffff::11/128"],
            "2001:db8:1::1",
        );
    }

    // Change: one prefix of each family withdrawn, one added.
    intent.prefixes.clear();
    speaker::add_prefixes(
        &mut intent,
        &[
            "203.0.113.10/32",
            "203.0.113.12/32",
            "2001:db8:ffff::10/128",
            "2001:db8:ffff::12/128",
        ],
    );
    spk.write_intent(&intent).unwrap();
    for (router, _) in routers {
        check_routes(
            router,
            Family::Ipv4,
            &["203.0.113.10/32", "203.0.113.12/32"],
            "192.0.2.1",
        );
        check_routes(
            router,
            Family::Ipv6,
            &["2001:db8:ffff::10/128", "2001:db8:ffff::12/128"],
            "2001:db8:1::1",
        );
    }
    // A prefix change never resets a session.
    let after = spk.status().unwrap();
    assert_eq!(after.established, 6);
    for p in &after.peers {
        let before = status.peers.iter().find(|b| b.address == p.address).unwrap();
        assert_eq!(
            p.since, before.since,
            "{} was reset by a prefix change",
            p.address
        );
    }
}
