//! Traffic engineering as BIRD 2, GoBGP and FRR see it (issue 8): path attributes per
//! prefix (communities with well-known ones, large communities, MED), LOCAL_PREF on iBGP
//! only, AS-path prepending, the local-ASN override, and per-Pod host routes that follow
//! their Pod. Each test runs the three routers at once on one lab, and every change that
//! must apply live is checked for "no session reset" on both sides: the routers' own
//! session counters ([`Router::session_generation`]) and the speaker's `since`.
//!
//! Passive sessions that come up when the router connects are covered by
//! `interop_transport.rs::passive_peers_are_connected_to_by_the_routers` (all three routers,
//! every connection checked to be the router's), so they are not repeated here.
//!
//! The routers originate nothing in these labs, so every BGP route they show is one the
//! speaker sent, and the tests compare whole tables: a stray route fails too.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use bgpintent_api::{AsPathPrepend, Asn, Family, NodeIntent, PathAttributes, Prefix, SessionState};
use bgpintent_controller::{
    fixtures,
    intent::{AS_PATH_PREPEND_ANNOTATION, Snapshot, resolve},
};
use bgpintent_tests::{
    interop::{ROUTER_NODES, ROUTES, Routers, UP, is_established, peer_routers, took, wait_established},
    lab::{
        BIRD_AS, Lab, Neighbor, ROUTER_PROGRAMS, Route, Router, SPEAKER, SPEAKER_AS, Topology, require,
        wait_until,
    },
    speaker::{self, Speaker},
};

/// The standard lab and the three routers with their sessions to the speaker, each passed
/// through `f(node, neighbor)`.
fn up(test: &str, f: impl Fn(&str, Neighbor) -> Neighbor) -> (Lab, Routers) {
    speaker::binary();
    let lab = Lab::standard(test, Topology::ROUTERS).unwrap();
    let routers = Routers::start(&lab, f);
    (lab, routers)
}

/// Prints how far a test got (shown with `--nocapture` and in failures): where the time goes.
fn step(test: &str, start: Instant, what: &str) {
    eprintln!("{test}: {:>5.1} s {what}", start.elapsed().as_secs_f64());
}

/// What a test asserts about one route at a router.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    as_path: Vec<u32>,
    med: Option<u32>,
    local_pref: Option<u32>,
    /// Sorted: the routers keep the order received, and the order carries no meaning.
    communities: Vec<(u16, u16)>,
    large_communities: Vec<(u32, u32, u32)>,
}

impl Seen {
    fn of(route: &Route) -> Self {
        let mut communities = route.communities.clone();
        communities.sort_unstable();
        let mut large_communities = route.large_communities.clone();
        large_communities.sort_unstable();
        Self {
            as_path: route.as_path.clone(),
            med: route.med,
            local_pref: route.local_pref,
            communities,
            large_communities,
        }
    }

    /// What a router should show for a route sent with `attrs` and `as_path`; `local_pref`
    /// is the router's view of LOCAL_PREF (see [`Route::local_pref`]).
    fn sent(attrs: &PathAttributes, as_path: &[u32], local_pref: Option<u32>) -> Self {
        Self {
            as_path: as_path.to_vec(),
            med: attrs.med,
            local_pref,
            communities: attrs
                .communities
                .iter()
                .map(|c| ((c.0 >> 16) as u16, c.0 as u16))
                .collect(),
            large_communities: attrs
                .large_communities
                .iter()
                .map(|l| (l.global, l.local1, l.local2))
                .collect(),
        }
    }
}

/// Every route of `routes`, by prefix. A prefix shown twice (two paths) is a failure of
/// its own: the speaker has one session per family with each router.
fn table(routes: &[Route]) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    for r in routes {
        assert!(
            out.insert(r.prefix.to_string(), Seen::of(r)).is_none(),
            "two paths for {} in {routes:#?}",
            r.prefix
        );
    }
    out
}

/// Waits until `router`'s `family` table is exactly `want`.
fn wait_table(router: &dyn Router, family: Family, want: &BTreeMap<String, Seen>, spk: &Speaker) {
    router
        .wait_routes(family, ROUTES, &format!("table {want:#?}"), &|r| {
            &table(r) == want
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(40)));
}

/// The router's view of every session to the speaker, and the speaker's `since` of every
/// peer: taken before and after a change that must not reset anything.
#[derive(Debug, PartialEq, Eq)]
struct Sessions {
    routers: BTreeMap<String, String>,
    speaker: BTreeMap<String, String>,
}

fn sessions(lab: &Lab, routers: &Routers, spk: &Speaker) -> Sessions {
    let mut out = Sessions {
        routers: BTreeMap::new(),
        speaker: BTreeMap::new(),
    };
    for router in routers.all() {
        for address in [lab.v4(SPEAKER), lab.v6(SPEAKER)] {
            let generation = router
                .session_generation(address)
                .unwrap_or_else(|e| panic!("{}: {e}", router.name()));
            out.routers
                .insert(format!("{} to {address}", router.name()), generation);
        }
    }
    let status = spk.status().expect("speaker status");
    assert_eq!(status.established, 6, "{status:?}");
    for p in &status.peers {
        out.speaker
            .insert(p.address.clone(), format!("{:?} since {:?}", p.state, p.since));
    }
    out
}

/// What a router shows as LOCAL_PREF for a route from an eBGP peer that sent none (see
/// [`Route::local_pref`]): BIRD its default 100, GoBGP and FRR nothing.
fn ebgp_local_pref(router: &dyn Router) -> Option<u32> {
    (router.name() == "bird").then_some(100)
}

fn attrs(communities: &[&str], large: &[&str], med: Option<u32>, local_pref: Option<u32>) -> PathAttributes {
    PathAttributes {
        communities: communities.iter().map(|c| c.parse().unwrap()).collect(),
        large_communities: large.iter().map(|c| c.parse().unwrap()).collect(),
        local_pref,
        med,
    }
}

fn prefix(p: &str) -> Prefix {
    p.parse().unwrap()
}

/// Per family, the table a router should show for `intent`'s prefixes: `view(attributes)`
/// says what it shows for a prefix sent with them.
fn expected(
    intent: &NodeIntent,
    family: Family,
    view: impl Fn(&PathAttributes) -> Seen,
) -> BTreeMap<String, Seen> {
    let none = PathAttributes::default();
    intent
        .prefixes_of(family)
        .map(|p| (p.to_string(), view(intent.attributes.get(&p).unwrap_or(&none))))
        .collect()
}

const TAGGED_V4: &str = "203.0.113.30/32";
const OTHER_V4: &str = "203.0.113.31/32";
const PLAIN_V4: &str = "203.0.113.32/32";
const TAGGED_V6: &str = "2001:db8:ffff::30/128";
const OTHER_V6: &str = "2001:db8:ffff::31/128";
const PLAIN_V6: &str = "2001:db8:ffff::32/128";
const ALL: [&str; 6] = [TAGGED_V4, OTHER_V4, PLAIN_V4, TAGGED_V6, OTHER_V6, PLAIN_V6];

/// Communities (a plain one and well-known no-export / no-advertise: they limit what the
/// router passes on, not what it accepts and shows), large communities (one with a 4-octet
/// global administrator) and MED, per prefix, reach all three routers exactly, a prefix
/// without attributes carries none; then every prefix's attributes change (replaced,
/// removed, added) and the routers show the new values with no session reset on either side.
#[test]
fn communities_large_communities_and_med_per_prefix_and_changed_live() {
    if !require("te-attributes", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    let (lab, routers) = up("te-attributes", |_, n| n);
    let mut intent = speaker::intent();
    peer_routers(&mut intent, &lab, |_, _| {});
    speaker::add_prefixes(&mut intent, &ALL);
    let tagged = attrs(&["64500:100", "no-export"], &["64500:1:2"], Some(50), None);
    let other = attrs(
        &["65000:7", "no-advertise"],
        &["4200000000:3:4", "64500:5:6"],
        Some(7),
        None,
    );
    for (p, a) in [
        (TAGGED_V4, &tagged),
        (TAGGED_V6, &tagged),
        (OTHER_V4, &other),
        (OTHER_V6, &other),
    ] {
        intent.attributes.insert(prefix(p), a.clone());
    }
    let mut spk = Speaker::start(&lab, &intent).unwrap();
    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    step("te-attributes", start, "sessions Established");

    let check_all = |intent: &NodeIntent, spk: &Speaker| {
        for router in routers.all() {
            for family in Family::ALL {
                let want = expected(intent, family, |a| {
                    Seen::sent(a, &[SPEAKER_AS], ebgp_local_pref(router))
                });
                wait_table(router, family, &want, spk);
            }
        }
    };
    check_all(&intent, &spk);
    step("te-attributes", start, "routers show the intent");
    let before = sessions(&lab, &routers, &spk);

    // Change: TAGGED's replaced (other values, large community gone), OTHER's removed,
    // PLAIN gains some.
    let tagged = attrs(&["64500:200"], &[], Some(60), None);
    let plain = attrs(&["no-export", "64500:300"], &["64500:7:8"], Some(0), None);
    intent.attributes.clear();
    for (p, a) in [
        (TAGGED_V4, &tagged),
        (TAGGED_V6, &tagged),
        (PLAIN_V4, &plain),
        (PLAIN_V6, &plain),
    ] {
        intent.attributes.insert(prefix(p), a.clone());
    }
    spk.write_intent(&intent).unwrap();
    check_all(&intent, &spk);
    step("te-attributes", start, "attributes changed");
    assert_eq!(
        sessions(&lab, &routers, &spk),
        before,
        "an attribute change reset a session\n{}",
        spk.log_tail(40)
    );
    took("te-attributes", start);
}

/// LOCAL_PREF goes to iBGP peers only (RFC 4271 §5.1.5). The speaker takes BIRD's AS, so
/// its BIRD sessions are iBGP and its GoBGP and FRR sessions eBGP (both routers expect AS
/// 64502 from it), and one announcement sets LOCAL_PREF 300:
/// * BIRD (iBGP) shows 300, 100 (the speaker's default) for a prefix that sets none, and an
///   empty AS path; a LOCAL_PREF change shows up live.
/// * GoBGP (eBGP) shows no LOCAL_PREF: it keeps one received over eBGP (checked by hand
///   with BIRD's `allow bgp_local_pref`), so this fails if the speaker sends it.
/// * FRR (eBGP) cannot tell: it ignores LOCAL_PREF received over eBGP, as RFC 4271 says.
///   It shows none, asserted as FRR's display, not as proof.
#[test]
fn local_pref_reaches_the_ibgp_router_only() {
    if !require("te-local-pref", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    let (lab, routers) = up("te-local-pref", |_, n| Neighbor { asn: BIRD_AS, ..n });
    let mut intent = speaker::intent();
    intent.local_asn = Asn::try_from(BIRD_AS).unwrap();
    peer_routers(&mut intent, &lab, |_, _| {});
    speaker::add_prefixes(&mut intent, &ALL);
    for p in [TAGGED_V4, TAGGED_V6] {
        intent
            .attributes
            .insert(prefix(p), attrs(&[], &[], Some(10), Some(300)));
    }
    let mut spk = Speaker::start(&lab, &intent).unwrap();
    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    step("te-local-pref", start, "sessions Established");

    let check_all = |intent: &NodeIntent, spk: &Speaker| {
        for router in routers.all() {
            for family in Family::ALL {
                let want = expected(intent, family, |a| match router.name() {
                    "bird" => Seen::sent(a, &[], Some(a.local_pref.unwrap_or(100))),
                    _ => Seen::sent(a, &[BIRD_AS], None),
                });
                wait_table(router, family, &want, spk);
            }
        }
    };
    check_all(&intent, &spk);
    step("te-local-pref", start, "routers show the intent");
    let before = sessions(&lab, &routers, &spk);

    for p in [TAGGED_V4, TAGGED_V6] {
        intent
            .attributes
            .insert(prefix(p), attrs(&[], &[], Some(10), Some(50)));
    }
    for p in [PLAIN_V4, PLAIN_V6] {
        intent
            .attributes
            .insert(prefix(p), attrs(&[], &[], None, Some(4_000_000_000)));
    }
    spk.write_intent(&intent).unwrap();
    check_all(&intent, &spk);
    step("te-local-pref", start, "LOCAL_PREF changed");
    assert_eq!(
        sessions(&lab, &routers, &spk),
        before,
        "a LOCAL_PREF change reset a session\n{}",
        spk.log_tail(40)
    );
    took("te-local-pref", start);
}

/// AS-path prepending: the Node's own AS three times in front → the eBGP routers see
/// `64500 64500 64500 64500`; another AS twice → `64510 64510 64500` (prepends go before
/// our own AS); removed → `64500` again. All live, with no session reset.
#[test]
fn as_path_prepend_reaches_the_routers_and_goes_away_live() {
    if !require("te-prepend", ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    let (lab, routers) = up("te-prepend", |_, n| n);
    let mut intent = speaker::intent();
    peer_routers(&mut intent, &lab, |_, _| {});
    speaker::add_prefixes(&mut intent, &ALL);
    intent
        .attributes
        .insert(prefix(TAGGED_V4), attrs(&["64500:1"], &[], Some(5), None));
    let prepend = |asn: u32, repeat: u8| {
        Some(AsPathPrepend {
            asn: Asn::try_from(asn).unwrap(),
            repeat,
        })
    };
    intent.as_path_prepend = prepend(SPEAKER_AS, 3);
    let mut spk = Speaker::start(&lab, &intent).unwrap();
    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    step("te-prepend", start, "sessions Established");

    let check_all = |intent: &NodeIntent, path: &[u32], spk: &Speaker| {
        for router in routers.all() {
            for family in Family::ALL {
                let want = expected(intent, family, |a| Seen::sent(a, path, ebgp_local_pref(router)));
                wait_table(router, family, &want, spk);
            }
        }
    };
    check_all(&intent, &[SPEAKER_AS; 4], &spk);
    step("te-prepend", start, "64500 prepended 3 times");
    let before = sessions(&lab, &routers, &spk);

    intent.as_path_prepend = prepend(64510, 2);
    spk.write_intent(&intent).unwrap();
    check_all(&intent, &[64510, 64510, SPEAKER_AS], &spk);
    step("te-prepend", start, "64510 prepended twice");

    intent.as_path_prepend = None;
    spk.write_intent(&intent).unwrap();
    check_all(&intent, &[SPEAKER_AS], &spk);
    step("te-prepend", start, "prepend removed");
    assert_eq!(
        sessions(&lab, &routers, &spk),
        before,
        "a prepend change reset a session\n{}",
        spk.log_tail(40)
    );
    took("te-prepend", start);
}

/// The AS a Node annotation overrides to (64510) is the AS the routers see. The routers
/// are configured to expect 64510 only, so:
/// 1. with the policy's AS (64500) every router refuses the speaker's OPEN: the speaker
///    reports each router's NOTIFICATION OPEN Message Error / Bad Peer AS (2/2), no session
///    is Established and no router has a route;
/// 2. with the override every session comes up and every route's AS path is `64510`;
/// 3. with the override gone the sessions reset and the routers refuse 64500 again. BIRD
///    and GoBGP drop the routes; FRR keeps them as stale: the reset is a Cease
///    NOTIFICATION (Other Configuration Change), not a Hard Reset, so with the N-bit
///    negotiated FRR applies graceful restart to it (RFC 8538 §3) and keeps the routes
///    for its restart time (120 s in the lab), although the AS they carry is no longer
///    the Node's.
///
/// About 18 s, most of it in steps 2 and 3: after refusing the speaker, BIRD (error wait)
/// and GoBGP (idle hold) accept its next TCP connection but send no OPEN for a while, and
/// the speaker gives up on such a connection only after its 5 s connect timeout, reported
/// as "no answer (MD5 or TTL mismatch?)". A 1 s connect timeout made it slower (~32 s):
/// more attempts, more errors, longer router backoffs.
#[test]
fn local_asn_override_is_the_as_the_routers_see() {
    if !require("te-asn", ROUTER_PROGRAMS) {
        return;
    }
    const OVERRIDE_AS: u32 = 64510;
    const BAD_PEER_AS: &str = "NOTIFICATION received: 2/2";
    let start = Instant::now();
    let (lab, routers) = up("te-asn", |_, n| Neighbor {
        asn: OVERRIDE_AS,
        ..n
    });
    let mut intent = speaker::intent();
    peer_routers(&mut intent, &lab, |_, _| {});
    let v4 = [TAGGED_V4, PLAIN_V4];
    let v6 = [TAGGED_V6, PLAIN_V6];
    speaker::add_prefixes(&mut intent, &[v4, v6].concat());
    let mut spk = Speaker::start(&lab, &intent).unwrap();
    let peers: Vec<IpAddr> = ROUTER_NODES
        .iter()
        .flat_map(|(n, _)| [lab.v4(n), lab.v6(n)])
        .collect();

    let refused_by_all = |spk: &Speaker, what: &str, stale_allowed: bool| {
        // Each peer must be seen refused at least once. A refusal shows only until the
        // next attempt fails otherwise (BIRD refuses connections during its error wait),
        // so the speaker's status is polled every 100 ms; the routers (a dozen CLI calls)
        // are checked about once a second and at the end.
        let mut refused = BTreeSet::new();
        let mut routers_checked = Instant::now();
        wait_until(what, UP, || {
            let Some(status) = spk.status() else {
                return Ok(None);
            };
            let up: Vec<&IpAddr> = peers.iter().filter(|p| is_established(&status, **p)).collect();
            assert!(
                up.is_empty(),
                "speaker Established with {up:?}\n{}",
                spk.log_tail(40)
            );
            for p in &status.peers {
                if p.last_down_reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(BAD_PEER_AS))
                {
                    refused.insert(p.address.clone());
                }
            }
            let done = refused.len() == peers.len();
            if done || routers_checked.elapsed() > Duration::from_secs(1) {
                check_routers_refuse(&lab, &routers, stale_allowed);
                routers_checked = Instant::now();
            }
            Ok(done.then_some(()))
        })
        .unwrap_or_else(|e| panic!("{e}; refused so far: {refused:?}\n{}", spk.log_tail(40)));
    };
    refused_by_all(&spk, "every router to refuse AS 64500 with Bad Peer AS", false);
    step("te-asn", start, "AS 64500 refused by every router");

    intent.local_asn = Asn::try_from(OVERRIDE_AS).unwrap();
    spk.write_intent(&intent).unwrap();
    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    step("te-asn", start, "sessions Established");
    for router in routers.all() {
        for (family, want) in [(Family::Ipv4, &v4), (Family::Ipv6, &v6)] {
            let want: BTreeMap<String, Seen> = want
                .iter()
                .map(|p| {
                    let seen = Seen::sent(
                        &PathAttributes::default(),
                        &[OVERRIDE_AS],
                        ebgp_local_pref(router),
                    );
                    (prefix(p).to_string(), seen)
                })
                .collect();
            wait_table(router, family, &want, &spk);
        }
    }

    step("te-asn", start, "AS 64510 sessions up, routes with AS path 64510");

    intent.local_asn = Asn::try_from(SPEAKER_AS).unwrap();
    spk.write_intent(&intent).unwrap();
    for router in routers.all() {
        for family in Family::ALL {
            router
                .wait_routes(family, ROUTES, "no route but stale ones", &|routes| {
                    routes.iter().all(|r| r.stale == Some(true))
                })
                .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(40)));
        }
    }
    // The status lags the sessions by up to one 250 ms tick.
    spk.wait_status("no session Established", UP, |s| s.established == 0)
        .unwrap_or_else(|e| panic!("{e}"));
    refused_by_all(&spk, "every router to refuse AS 64500 again", true);
    let stale: Vec<&str> = routers
        .all()
        .into_iter()
        .filter(|r| Family::ALL.iter().any(|f| !r.routes(*f).unwrap().is_empty()))
        .map(|r| r.name())
        .collect();
    step(
        "te-asn",
        start,
        &format!("AS 64500 refused again; stale routes kept by {stale:?}"),
    );
    took("te-asn", start);
}

/// While the speaker offers an AS the routers refuse: no router has a session Established
/// with it, nor a route (but stale ones, if `stale_allowed`).
fn check_routers_refuse(lab: &Lab, routers: &Routers, stale_allowed: bool) {
    for router in routers.all() {
        for address in [lab.v4(SPEAKER), lab.v6(SPEAKER)] {
            let state = router.session_state(address);
            assert!(
                !state.as_ref().is_ok_and(|s| *s == SessionState::Established),
                "{} Established with {address}",
                router.name()
            );
        }
        for family in Family::ALL {
            let routes = router.routes(family).unwrap_or_default();
            assert!(
                routes.iter().all(|r| stale_allowed && r.stale == Some(true)),
                "{}: {routes:#?}",
                router.name()
            );
        }
    }
}

/// Per-Pod host routes under the `local` scope, computed by the controller's engine: a
/// policy with `advertisements.pod` and path attributes owns the lab's speaker Node (whose
/// `bgpintent.io/as-path-prepend` annotation asks for its AS twice more) and a second Node,
/// and a Pod labelled `bgpintent.io/advertise=local` runs on the speaker Node. The speaker
/// follows the intent `resolve` gives for its Node: the routers get the Pod's /32 and /128
/// with the policy's communities and MED and the prepended AS path; the Pod moves to the
/// other Node → they are withdrawn (and the engine gives them to that Node); it moves back
/// → announced again. No session resets along the way.
#[test]
fn local_pod_host_routes_follow_their_pod() {
    if !require("te-pods", ROUTER_PROGRAMS) {
        return;
    }
    const OTHER: &str = "node-b";
    const POD_V4: &str = "203.0.113.50/32";
    const POD_V6: &str = "2001:db8:ffff::50/128";
    let start = Instant::now();
    let (lab, routers) = up("te-pods", |_, n| n);
    let mut policy = fixtures::policy("lab")
        .select("bgp", "on")
        .asn(i64::from(SPEAKER_AS))
        .communities(&["64500:7", "no-export"])
        .med(20)
        .pod();
    for (node, asn) in ROUTER_NODES {
        for address in [lab.v4(node), lab.v6(node)] {
            policy = policy.peer(&address.to_string(), i64::from(asn));
        }
    }
    let policy = policy.build();
    let nodes = vec![
        fixtures::node(SPEAKER)
            .label("bgp", "on")
            .annotation(AS_PATH_PREPEND_ANNOTATION, r#"{"repeat": 2}"#)
            .ipv4("192.0.2.1")
            .ipv6("2001:db8:1::1")
            .build(),
        fixtures::node(OTHER)
            .label("bgp", "on")
            .ipv4("192.0.2.100")
            .ipv6("2001:db8:1::100")
            .build(),
    ];
    // The Pod's IPs are its host routes (no Pod CIDRs on the Nodes, so nothing else).
    let snapshot_with_pod_on = |node: &str| Snapshot {
        policies: vec![policy.clone()],
        nodes: nodes.clone(),
        pods: vec![
            fixtures::pod("shop", "web-0", "local")
                .on(node)
                .ips(&["203.0.113.50", "2001:db8:ffff::50"])
                .build(),
        ],
        ..Snapshot::default()
    };
    // The intents of both Nodes for the Pod on `node`; the pod prefixes of each.
    let resolve_with_pod_on = |node: &str| {
        let resolution = resolve(&snapshot_with_pod_on(node));
        assert!(resolution.problems.is_empty(), "{:?}", resolution.problems);
        let intent = |n: &str| {
            resolution
                .logical_intent(n)
                .unwrap_or_else(|| panic!("the policy owns {n}: {resolution:#?}"))
        };
        (intent(SPEAKER), intent(OTHER))
    };
    let prepend_twice = || {
        Some(AsPathPrepend {
            asn: Asn::try_from(SPEAKER_AS).unwrap(),
            repeat: 2,
        })
    };
    let pod_prefixes =
        |intent: &NodeIntent| -> Vec<String> { intent.prefixes.keys().map(ToString::to_string).collect() };

    let (here, there) = resolve_with_pod_on(SPEAKER);
    assert_eq!(pod_prefixes(&here), [POD_V4, POD_V6]);
    assert!(pod_prefixes(&there).is_empty(), "{there:?}");
    assert_eq!(
        here.as_path_prepend,
        prepend_twice(),
        "from the Node's annotation"
    );
    let mut spk = Speaker::start(&lab, &here).unwrap();
    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    step("te-pods", start, "sessions Established");
    let pod_routes = |router: &dyn Router, family: Family| -> BTreeMap<String, Seen> {
        let p = match family {
            Family::Ipv4 => POD_V4,
            Family::Ipv6 => POD_V6,
        };
        let seen = Seen::sent(
            &attrs(&["64500:7", "no-export"], &[], Some(20), None),
            &[SPEAKER_AS; 3],
            ebgp_local_pref(router),
        );
        BTreeMap::from([(p.to_owned(), seen)])
    };
    for router in routers.all() {
        for family in Family::ALL {
            wait_table(router, family, &pod_routes(router, family), &spk);
        }
    }
    step("te-pods", start, "routers have the Pod's routes");
    let before = sessions(&lab, &routers, &spk);

    // The Pod is rescheduled on the other Node.
    let (here, there) = resolve_with_pod_on(OTHER);
    assert!(pod_prefixes(&here).is_empty(), "{here:?}");
    assert_eq!(pod_prefixes(&there), [POD_V4, POD_V6]);
    spk.write_intent(&here).unwrap();
    for router in routers.all() {
        for family in Family::ALL {
            wait_table(router, family, &BTreeMap::new(), &spk);
        }
    }
    step("te-pods", start, "routers have no Pod route");

    // And back.
    let (here, _) = resolve_with_pod_on(SPEAKER);
    spk.write_intent(&here).unwrap();
    for router in routers.all() {
        for family in Family::ALL {
            wait_table(router, family, &pod_routes(router, family), &spk);
        }
    }
    step("te-pods", start, "routers have the Pod's routes");
    assert_eq!(
        sessions(&lab, &routers, &spk),
        before,
        "a Pod move reset a session\n{}",
        spk.log_tail(40)
    );
    took("te-pods", start);
}
