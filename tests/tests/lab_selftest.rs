//! Harness self-test: BIRD, GoBGP and FRR peer with each other in the lab over IPv4 and
//! IPv6, and a route originated by each is read back from the others, with its
//! attributes, through the common `Route` type. If this fails, interop results of the
//! speaker mean nothing.

use std::time::{Duration, Instant};

use bgpintent_api::Family;
use bgpintent_tests::lab::{
    Announcement, BIRD, BIRD_AS, BirdConfig, FRR, FRR_AS, FrrConfig, GOBGP, GOBGP_AS, GobgpConfig, Lab,
    Neighbor, Origin, ROUTER_PROGRAMS, Router, Topology,
};

const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// Sessions of `node` to the two others, one per family.
fn mesh(lab: &Lab, node: &str) -> Vec<Neighbor> {
    let mut out = Vec::new();
    for (other, asn) in [(BIRD, BIRD_AS), (GOBGP, GOBGP_AS), (FRR, FRR_AS)] {
        if other == node {
            continue;
        }
        out.push(Neighbor::new(
            &format!("{other}4"),
            lab.v4(node),
            lab.v4(other),
            asn,
        ));
        let mut v6 = Neighbor::new(&format!("{other}6"), lab.v6(node), lab.v6(other), asn);
        if (node, other) == (BIRD, FRR) {
            // On a direct IPv6 session BIRD adds its link-local address as second next hop,
            // and FRR's bgpd without zebra treats such routes as withdrawn ("MP_REACH_NLRI
            // parse error"). A multihop session makes BIRD send the global one only.
            v6 = v6.multihop(1);
        }
        out.push(v6);
    }
    out
}

#[test]
fn routers_peer_and_agree_on_route_attributes() {
    if !bgpintent_tests::lab::require("lab_selftest", ROUTER_PROGRAMS) {
        return;
    }
    let lab = Lab::standard("selftest", Topology::ROUTERS).unwrap();

    let mut bird_cfg = BirdConfig::new("192.0.2.2".parse().unwrap(), BIRD_AS);
    bird_cfg.neighbors = mesh(&lab, BIRD);
    bird_cfg.announcements = vec![
        Announcement::new("203.0.113.64/26")
            .med(20)
            .origin(Origin::Egp)
            .community(64502, 7)
            .large_community(64502, 3, 4),
        Announcement::new("2001:db8:ff02::/48").community(64502, 8),
    ];
    let mut gobgp_cfg = GobgpConfig::new(
        "192.0.2.3".parse().unwrap(),
        GOBGP_AS,
        vec![lab.v4(GOBGP), lab.v6(GOBGP)],
    );
    gobgp_cfg.neighbors = mesh(&lab, GOBGP);
    gobgp_cfg.announcements = vec![
        Announcement::new("203.0.113.0/26")
            .next_hop("192.0.2.3")
            .med(50)
            .origin(Origin::Igp)
            .community(64503, 100)
            .large_community(64503, 1, 2),
        Announcement::new("2001:db8:aaaa::/48")
            .next_hop("2001:db8:1::3")
            .community(64503, 101),
    ];
    let mut frr_cfg = FrrConfig::new("192.0.2.4".parse().unwrap(), FRR_AS);
    frr_cfg.neighbors = mesh(&lab, FRR);
    frr_cfg.announcements = vec![
        Announcement::new("203.0.113.128/26")
            .med(30)
            .origin(Origin::Incomplete)
            .community(64504, 9),
    ];

    let start = Instant::now();
    let bird = lab.start_bird(BIRD, &bird_cfg).unwrap();
    let gobgp = lab.start_gobgp(GOBGP, &gobgp_cfg).unwrap();
    let frr = lab.start_frr(FRR, &frr_cfg).unwrap();
    eprintln!("routers started in {:?}", start.elapsed());

    // Every session, seen from both ends.
    let routers: [(&str, &dyn Router); 3] = [(BIRD, &bird), (GOBGP, &gobgp), (FRR, &frr)];
    for (node, router) in routers {
        for (other, _) in routers.iter().filter(|(o, _)| *o != node) {
            for addr in [lab.v4(other), lab.v6(other)] {
                router.wait_established(addr, SESSION_TIMEOUT).unwrap();
            }
        }
    }
    eprintln!("all 6 sessions Established after {:?}", start.elapsed());

    // GoBGP's IPv4 route, at BIRD and FRR: best path is the direct one, all attributes.
    for router in [&bird as &dyn Router, &frr] {
        let r = router.wait_route("203.0.113.0/26", ROUTE_TIMEOUT).unwrap();
        assert_eq!(r.as_path, vec![GOBGP_AS], "{} {r:?}", router.name());
        assert_eq!(r.next_hops, vec![lab.v4(GOBGP)], "{} {r:?}", router.name());
        assert_eq!(r.origin, Some(Origin::Igp), "{} {r:?}", router.name());
        assert_eq!(r.med, Some(50), "{} {r:?}", router.name());
        assert_eq!(r.communities, vec![(64503, 100)], "{} {r:?}", router.name());
        assert_eq!(
            r.large_communities,
            vec![(64503, 1, 2)],
            "{} {r:?}",
            router.name()
        );
        assert_ne!(r.stale, Some(true), "{} {r:?}", router.name());
    }
    // GoBGP's IPv6 route over the IPv6 sessions.
    for router in [&bird as &dyn Router, &frr] {
        let r = router.wait_route("2001:db8:aaaa::/48", ROUTE_TIMEOUT).unwrap();
        assert_eq!(r.as_path, vec![GOBGP_AS], "{} {r:?}", router.name());
        assert_eq!(
            r.next_hops.first(),
            Some(&lab.v6(GOBGP)),
            "{} {r:?}",
            router.name()
        );
        assert_eq!(r.communities, vec![(64503, 101)], "{} {r:?}", router.name());
    }
    // BIRD's statics at GoBGP and FRR.
    for router in [&gobgp as &dyn Router, &frr] {
        let r = router.wait_route("203.0.113.64/26", ROUTE_TIMEOUT).unwrap();
        assert_eq!(r.as_path, vec![BIRD_AS], "{} {r:?}", router.name());
        assert_eq!(r.next_hops, vec![lab.v4(BIRD)], "{} {r:?}", router.name());
        assert_eq!(r.med, Some(20), "{} {r:?}", router.name());
        assert_eq!(r.origin, Some(Origin::Egp), "{} {r:?}", router.name());
        assert_eq!(r.communities, vec![(64502, 7)], "{} {r:?}", router.name());
        assert_eq!(
            r.large_communities,
            vec![(64502, 3, 4)],
            "{} {r:?}",
            router.name()
        );
        let r6 = router.wait_route("2001:db8:ff02::/48", ROUTE_TIMEOUT).unwrap();
        assert_eq!(r6.as_path, vec![BIRD_AS], "{} {r6:?}", router.name());
        assert_eq!(r6.communities, vec![(64502, 8)], "{} {r6:?}", router.name());
    }
    // FRR's `network` with its route-map at BIRD and GoBGP.
    for router in [&bird as &dyn Router, &gobgp] {
        let r = router.wait_route("203.0.113.128/26", ROUTE_TIMEOUT).unwrap();
        assert_eq!(r.as_path, vec![FRR_AS], "{} {r:?}", router.name());
        assert_eq!(r.next_hops, vec![lab.v4(FRR)], "{} {r:?}", router.name());
        assert_eq!(r.med, Some(30), "{} {r:?}", router.name());
        assert_eq!(r.origin, Some(Origin::Incomplete), "{} {r:?}", router.name());
        assert_eq!(r.communities, vec![(64504, 9)], "{} {r:?}", router.name());
    }
    // Withdraw at GoBGP: gone everywhere (a route check that can fail both ways).
    gobgp.withdraw(&gobgp_cfg.announcements[0]).unwrap();
    for router in [&bird as &dyn Router, &frr] {
        router
            .wait_routes(Family::Ipv4, ROUTE_TIMEOUT, "203.0.113.0/26 withdrawn", &|rs| {
                rs.iter().all(|r| r.prefix.to_string() != "203.0.113.0/26")
            })
            .unwrap();
    }
    eprintln!("self-test done after {:?}", start.elapsed());
}
