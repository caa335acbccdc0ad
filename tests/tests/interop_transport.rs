//! Our speaker (real binary) against BIRD 2, GoBGP and FRR: how sessions are carried.
//! TCP-MD5 right and wrong, multihop TTL across a forwarding router, GTSM, passive mode,
//! and 4-octet AS numbers on both sides. Each test runs all three routers at once.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use bgpintent_api::{Asn, Family, PasswordRef, SessionState, TtlMode};
use bgpintent_crd::node_intent::SessionStateName;
use bgpintent_tests::{
    interop::{
        ROUTER_NODES, Routers, is_established, peer_routers, peer_status, poll_for, took, wait_established,
        wait_learned,
    },
    lab::{
        BIRD_AS, BirdConfig, FAR, FAR_FRR, FAR_GOBGP, FRR_AS, FrrConfig, GOBGP_AS, GobgpConfig, Lab,
        Neighbor, ROUTER_PROGRAMS, Router, SPEAKER, Topology, require,
    },
    speaker::{self, Options, Speaker},
};

const V4: &[&str] = &["203.0.113.20/32", "203.0.113.21/32"];
const V6: &[&str] = &["2001:db8:ffff::20/128", "2001:db8:ffff::21/128"];
const NO_ANSWER: &str = "no answer (MD5 or TTL mismatch?)";

fn password_ref(key: &str) -> Option<PasswordRef> {
    Some(PasswordRef {
        secret_name: "bgp-passwords".into(),
        key: key.into(),
        revision: "1".into(),
    })
}

fn options(passwords: &[(&str, &str)]) -> Options {
    Options {
        // A silent peer (MD5/GTSM mismatch) shows up as "no answer" after this.
        connect_timeout: Some("2s".into()),
        passwords: passwords
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    }
}

/// Asserts that for `window` neither the routers nor the speaker report any of `peers`
/// Established (polled every 200 ms).
fn never_established(
    window: Duration,
    lab: &Lab,
    routers: &[(&dyn Router, IpAddr)],
    peers: &[IpAddr],
    spk: &Speaker,
) {
    let _ = lab;
    for (at, up) in poll_for(window, Duration::from_millis(200), || {
        let mut up: Vec<String> = routers
            .iter()
            .filter(|(r, a)| r.session_state(*a).is_ok_and(|s| s == SessionState::Established))
            .map(|(r, a)| format!("{} to {a}", r.name()))
            .collect();
        if let Some(status) = spk.status() {
            up.extend(
                peers
                    .iter()
                    .filter(|p| is_established(&status, **p))
                    .map(|p| format!("speaker to {p}")),
            );
        }
        up
    }) {
        assert!(
            up.is_empty(),
            "at {at:?} sessions that must not come up are Established: {up:?}\n{}",
            spk.log_tail(40)
        );
    }
}

/// TCP-MD5: the IPv4 sessions use the same key on both sides and come up; the IPv6
/// sessions have different keys on the two sides, never come up, and the speaker's status
/// says why ("no answer (MD5 or TTL mismatch?)"): a key mismatch is a silent drop.
#[test]
fn md5_right_key_establishes_and_wrong_key_reports_no_answer() {
    if !require("md5", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    speaker::binary();
    let lab = Lab::standard("md5", Topology::ROUTERS).unwrap();
    let routers = Routers::start(&lab, |_, n| {
        if n.address.is_ipv4() {
            n.password("lab-md5-right")
        } else {
            n.password("lab-md5-routers-v6")
        }
    });
    let mut intent = speaker::intent();
    peer_routers(&mut intent, &lab, |address, p| {
        p.password = password_ref(if address.is_ipv4() { "right" } else { "wrong" });
    });
    speaker::add_prefixes(&mut intent, &[V4, V6].concat());
    let spk = Speaker::start_with(
        &lab,
        Some(&intent),
        options(&[("right", "lab-md5-right"), ("wrong", "lab-md5-speaker-v6")]),
    )
    .unwrap();

    wait_established(&lab, &routers.all(), &[Family::Ipv4], &spk);
    for router in routers.all() {
        wait_learned(router, Family::Ipv4, V4, &spk);
    }
    let v6_peers: Vec<IpAddr> = ROUTER_NODES.iter().map(|(n, _)| lab.v6(n)).collect();
    let status = spk
        .wait_status(
            "every IPv6 peer down with \"no answer\"",
            Duration::from_secs(20),
            |s| {
                v6_peers.iter().all(|p| {
                    peer_status(s, *p).is_some_and(|p| {
                        p.state != SessionStateName::Established
                            && p.last_down_reason.as_deref() == Some(NO_ANSWER)
                    })
                })
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.established, 3, "{status:?}");
    for router in routers.all() {
        let state = router.session_state(lab.v6(SPEAKER)).unwrap();
        assert_ne!(
            state,
            SessionState::Established,
            "{}: IPv6 session up despite the key mismatch",
            router.name()
        );
        assert!(
            router
                .routes(Family::Ipv6)
                .unwrap()
                .iter()
                .all(|r| r.as_path.is_empty()),
            "{}: IPv6 routes arrived without a session",
            router.name()
        );
    }
    took("md5", start);
}

/// Multihop across `rtr`: BIRD, GoBGP and FRR one router away (TTL 2 on their side). With
/// TTL 1 on ours nothing comes up (our SYNs die at `rtr`: "time exceeded", reported as
/// unreachable); changing the intent to TTL 2 resets the sessions and they come up with
/// the routes.
///
/// The routers are passive here. Were they active, their connections accepted during the
/// TTL 1 phase would stay half-open on their side (our OPEN, and later our FIN, die at
/// `rtr`), and each router then refuses our TTL 2 connection as a collision with that
/// stale one until its own timers clear it (minutes for FRR/GoBGP). The accepted path
/// with a TTL is covered by the passive test (direct) and `net_sockets` (multihop).
#[test]
fn multihop_ttl_1_fails_and_ttl_2_establishes_across_a_router() {
    if !require("multihop", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    speaker::binary();
    let lab = Lab::standard(
        "multihop",
        Topology {
            multihop: true,
            far_routers: true,
            ..Topology::default()
        },
    )
    .unwrap();
    let to_speaker = |node: &str, asn: u32| {
        let _ = asn;
        vec![
            Neighbor::new(
                "spk4",
                lab.v4(node),
                lab.v4(SPEAKER),
                speaker::intent().local_asn.get(),
            )
            .multihop(2)
            .passive()
            .no_export(),
        ]
    };
    let id = |node: &str| match lab.v4(node) {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!(),
    };
    let mut b = BirdConfig::new(id(FAR), BIRD_AS);
    b.neighbors = to_speaker(FAR, BIRD_AS);
    let mut g = GobgpConfig::new(id(FAR_GOBGP), GOBGP_AS, vec![lab.v4(FAR_GOBGP)]);
    g.neighbors = to_speaker(FAR_GOBGP, GOBGP_AS);
    let mut f = FrrConfig::new(id(FAR_FRR), FRR_AS);
    f.neighbors = to_speaker(FAR_FRR, FRR_AS);
    let bird = lab.start_bird(FAR, &b).unwrap();
    let gobgp = lab.start_gobgp(FAR_GOBGP, &g).unwrap();
    let frr = lab.start_frr(FAR_FRR, &f).unwrap();
    let routers: [(&dyn Router, &str, u32); 3] = [
        (&bird, FAR, BIRD_AS),
        (&gobgp, FAR_GOBGP, GOBGP_AS),
        (&frr, FAR_FRR, FRR_AS),
    ];

    let mut intent = speaker::intent();
    let mut peers = Vec::new();
    for (_, node, asn) in routers {
        let key = speaker::add_peer(&mut intent, &lab.v4(node).to_string(), asn);
        intent.peers.get_mut(&key).unwrap().ttl = TtlMode::Multihop { ttl: 1 };
        peers.push(key.address);
    }
    speaker::add_prefixes(&mut intent, V4);
    let mut spk = Speaker::start_with(&lab, Some(&intent), options(&[])).unwrap();

    // TTL 1: our SYNs and our OPENs (on accepted connections) die at `rtr`.
    let sessions: Vec<(&dyn Router, IpAddr)> =
        routers.iter().map(|(r, _, _)| (*r, lab.v4(SPEAKER))).collect();
    never_established(Duration::from_secs(6), &lab, &sessions, &peers, &spk);
    spk.wait_status(
        "every far peer down as unreachable",
        Duration::from_secs(10),
        |s| {
            peers.iter().all(|p| {
                peer_status(s, *p).is_some_and(|p| {
                    p.state != SessionStateName::Established
                        && p.last_down_reason
                            .as_deref()
                            .is_some_and(|r| r.contains("unreachable"))
                })
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // TTL 2: a reset-causing change; the sessions come up and carry the routes.
    for p in intent.peers.values_mut() {
        p.ttl = TtlMode::Multihop { ttl: 2 };
    }
    spk.write_intent(&intent).unwrap();
    for (router, _, _) in routers {
        router
            .wait_established(lab.v4(SPEAKER), Duration::from_secs(40))
            .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(40)));
        let routes = router
            .wait_routes(Family::Ipv4, Duration::from_secs(15), "both prefixes", &|r| {
                V4.iter().all(|p| r.iter().any(|r| r.prefix.to_string() == *p))
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(40)));
        for r in routes
            .iter()
            .filter(|r| V4.contains(&r.prefix.to_string().as_str()))
        {
            assert_eq!(
                r.as_path,
                [speaker::intent().local_asn.get()],
                "{}: {r:?}",
                router.name()
            );
        }
    }
    took("multihop", start);
}

/// GTSM (RFC 5082): the IPv4 sessions use TTL security on both sides (BIRD `ttl security
/// on`, GoBGP `ttl-security`, FRR `ttl-security hops 1`) and come up. The IPv6 sessions
/// have GTSM on our side only: the routers send TTL 1, which our minimum TTL (255) drops,
/// so they never come up; that is what proves the minimum is enforced.
#[test]
fn gtsm_both_sides_establishes_and_one_side_does_not() {
    if !require("gtsm", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    speaker::binary();
    let lab = Lab::standard("gtsm", Topology::ROUTERS).unwrap();
    let routers = Routers::start(&lab, |_, mut n| {
        if n.address.is_ipv4() {
            n.gtsm_hops = Some(1);
        }
        n
    });
    let mut intent = speaker::intent();
    peer_routers(&mut intent, &lab, |_, p| p.ttl = TtlMode::Gtsm { hops: 1 });
    speaker::add_prefixes(&mut intent, &[V4, V6].concat());
    let spk = Speaker::start_with(&lab, Some(&intent), options(&[])).unwrap();

    wait_established(&lab, &routers.all(), &[Family::Ipv4], &spk);
    for router in routers.all() {
        wait_learned(router, Family::Ipv4, V4, &spk);
    }
    let v6_peers: Vec<IpAddr> = ROUTER_NODES.iter().map(|(n, _)| lab.v6(n)).collect();
    let sessions: Vec<(&dyn Router, IpAddr)> =
        routers.all().into_iter().map(|r| (r, lab.v6(SPEAKER))).collect();
    never_established(Duration::from_secs(8), &lab, &sessions, &v6_peers, &spk);
    took("gtsm", start);
}

/// Passive: our peers are `passive`, so every session is one the routers opened (checked
/// with `ss`: our end is port 179 on each connection).
#[test]
fn passive_peers_are_connected_to_by_the_routers() {
    if !require("passive", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    speaker::binary();
    let lab = Lab::standard("passive", Topology::ROUTERS).unwrap();
    let routers = Routers::start(&lab, |_, n| n);
    let mut intent = speaker::intent();
    peer_routers(&mut intent, &lab, |_, p| p.passive = true);
    speaker::add_prefixes(&mut intent, &[V4, V6].concat());
    let spk = Speaker::start_with(&lab, Some(&intent), options(&[])).unwrap();

    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    for router in routers.all() {
        wait_learned(router, Family::Ipv4, V4, &spk);
        wait_learned(router, Family::Ipv6, V6, &spk);
    }
    let ss = lab
        .ns(SPEAKER)
        .exec("ss", &["-Htn", "state", "established"])
        .unwrap();
    for (node, _) in ROUTER_NODES {
        for peer in [lab.v4(node), lab.v6(node)] {
            let shown = match peer {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            };
            let conns: Vec<&str> = ss.lines().filter(|l| l.contains(&format!(" {shown}:"))).collect();
            assert!(!conns.is_empty(), "no connection with {peer} in\n{ss}");
            for c in conns {
                let cols: Vec<&str> = c.split_whitespace().collect();
                let (local, remote) = (cols[cols.len() - 2], cols[cols.len() - 1]);
                assert!(
                    local.ends_with(":179") && !remote.ends_with(":179"),
                    "{peer}: we opened this connection ({c}) although the peer is passive"
                );
            }
        }
    }
    took("passive", start);
}

/// 4-octet AS numbers (RFC 6793) on both sides: local AS 4200000001, routers 4200000002-4;
/// each router sees the session with the right AS and the routes with AS_PATH
/// [4200000001].
#[test]
fn four_octet_asns_on_both_sides() {
    if !require("asn4", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    speaker::binary();
    const LOCAL: u32 = 4_200_000_001;
    let remote = |node: &str| match node {
        n if n == bgpintent_tests::lab::BIRD => 4_200_000_002,
        n if n == bgpintent_tests::lab::GOBGP => 4_200_000_003,
        _ => 4_200_000_004,
    };
    let lab = Lab::standard("asn4", Topology::ROUTERS).unwrap();
    let mut bird = lab.bird_config();
    let mut gobgp = lab.gobgp_config();
    let mut frr = lab.frr_config();
    bird.asn = remote(bgpintent_tests::lab::BIRD);
    gobgp.asn = remote(bgpintent_tests::lab::GOBGP);
    frr.asn = remote(bgpintent_tests::lab::FRR);
    for n in bird
        .neighbors
        .iter_mut()
        .chain(gobgp.neighbors.iter_mut())
        .chain(frr.neighbors.iter_mut())
    {
        n.asn = LOCAL;
    }
    let routers = Routers {
        bird: lab.start_bird(bgpintent_tests::lab::BIRD, &bird).unwrap(),
        gobgp: lab.start_gobgp(bgpintent_tests::lab::GOBGP, &gobgp).unwrap(),
        frr: lab.start_frr(bgpintent_tests::lab::FRR, &frr).unwrap(),
    };
    let mut intent = speaker::intent();
    intent.local_asn = Asn::try_from(LOCAL).unwrap();
    for (node, _) in ROUTER_NODES {
        for a in [lab.v4(node), lab.v6(node)] {
            speaker::add_peer(&mut intent, &a.to_string(), remote(node));
        }
    }
    speaker::add_prefixes(&mut intent, &[V4, V6].concat());
    let spk = Speaker::start_with(&lab, Some(&intent), options(&[])).unwrap();

    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    for router in routers.all() {
        for (family, want) in [(Family::Ipv4, V4), (Family::Ipv6, V6)] {
            for r in wait_learned(router, family, want, &spk) {
                assert_eq!(r.as_path, [LOCAL], "{}: {r:?}", router.name());
            }
        }
    }
    let status = spk.status().unwrap();
    for (node, _) in ROUTER_NODES {
        let p = peer_status(&status, lab.v4(node)).unwrap();
        assert_eq!(p.asn, i64::from(remote(node)), "{p:?}");
    }
    // BIRD also shows the negotiated AS of its neighbour.
    let info = routers.bird.protocol_info(lab.v4(SPEAKER)).unwrap();
    assert!(info.contains("Neighbor AS:      4200000001"), "{info}");
    let _ = (BIRD_AS, GOBGP_AS, FRR_AS);
    took("asn4", start);
}
