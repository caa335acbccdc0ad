//! Our speaker (real binary) in Kubernetes mode against BIRD 2, GoBGP and FRR: it reads its
//! BGPNodeIntent, its policy's BGPAdvertisementSets and the passwords Secret from an API
//! server (the in-process fake, over real HTTP, running inside the speaker's namespace),
//! announces them, writes its status back, and rides out a 60 s API server outage without
//! withdrawing a route or resetting a session.
//!
//! ```text
//!   fake API server (thread in <id>-spk, 127.0.0.1) ◀── KUBECONFIG ── bgp-intent-speaker
//!        ▲ put / get / stop / restart (commands over a channel)            │ BGP
//!      test ──── polls routes ─────────────────────────────▶ BIRD, GoBGP, FRR
//! ```

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use bgpintent_api::{Family, PasswordRef};
use bgpintent_crd::BGPNodeIntentStatus;
use bgpintent_tests::{
    apiserver::{API_VERSION, ApiServer, NAMESPACE},
    interop::{Routers, is_established, learned, peer_routers, set, took, wait_established, wait_learned},
    lab::{BIRD, Lab, ROUTER_PROGRAMS, SPEAKER, Topology, require},
    speaker::{self, Options, Speaker},
};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use serde_json::{Value, json};

const SECRET: &str = "bgp-passwords";
const PASSWORD: &str = "lab-kube-md5";
const POLICY: &str = "lab";
const SET: &str = "lab-ipv4-1-0";

/// Node-local prefixes (in the intent) and shared ones (in the set).
const LOCAL_V4: &[&str] = &["203.0.113.40/32"];
const LOCAL_V6: &[&str] = &["2001:db8:ffff::40/128"];
const SET_V4: &[&str] = &["203.0.113.41/32", "203.0.113.42/32"];
/// Added to the set while the API server is down: arrives after it is back.
const LATE_V4: &str = "203.0.113.43/32";

fn set_object(prefixes: &[&str]) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "BGPAdvertisementSet",
        "metadata": {"name": SET},
        "spec": {
            "policy": POLICY,
            "prefixes": [{
                "source": {"kind": "Service", "namespace": "default", "name": "web", "ipType": "LoadBalancerIP"},
                "prefixes": prefixes,
            }],
        },
    })
}

fn secret_object() -> Value {
    let secret = Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(SECRET.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "bird-v4".to_owned(),
            ByteString(PASSWORD.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let mut value = serde_json::to_value(secret).unwrap();
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Secret");
    value
}

fn status_of(object: &Value) -> Option<BGPNodeIntentStatus> {
    serde_json::from_value(object.get("status")?.clone()).ok()
}

/// The speaker's `since` per peer (from its own status endpoint): equal before and after
/// means no session went down in between.
fn since(spk: &Speaker) -> BTreeMap<String, String> {
    spk.status()
        .expect("speaker status")
        .peers
        .into_iter()
        .map(|p| (p.address, p.since.map(|t| t.0.to_string()).unwrap_or_default()))
        .collect()
}

fn updates_sent(spk: &Speaker, peers: &[IpAddr]) -> BTreeMap<IpAddr, f64> {
    peers
        .iter()
        .map(|p| (*p, spk.peer_metric("updates_sent", *p).expect("metrics")))
        .collect()
}

#[test]
fn kubernetes_source_status_and_api_outage() {
    const TEST: &str = "kube_outage";
    if !require(TEST, ROUTER_PROGRAMS) {
        return;
    }
    let start = Instant::now();
    speaker::binary();
    let lab = Lab::standard(TEST, Topology::ROUTERS).unwrap();
    // BIRD's IPv4 session is authenticated: the password comes from the Secret.
    let bird_v4 = lab.v4(BIRD);
    let routers = Routers::start(&lab, |node, n| {
        if node == BIRD && n.address.is_ipv4() {
            n.password(PASSWORD)
        } else {
            n
        }
    });
    let api = ApiServer::start(&lab);

    let mut intent = speaker::intent();
    let peers: Vec<IpAddr> = peer_routers(&mut intent, &lab, |address, p| {
        if address == bird_v4 {
            p.password = Some(PasswordRef {
                secret_name: SECRET.into(),
                key: "bird-v4".into(),
                revision: "r1".into(),
            });
        }
    })
    .into_iter()
    .map(|k| k.address)
    .collect();
    speaker::add_prefixes(&mut intent, &[LOCAL_V4, LOCAL_V6].concat());
    intent.sets.insert(SET.into());
    api.put(secret_object());
    api.put(set_object(SET_V4));
    let object = api.put_intent(&intent);
    let generation = object["metadata"]["generation"].as_i64().expect("generation");
    let spk = api.start_speaker(&lab, Options::default()).unwrap();

    // Intent and set prefixes at every router, over every session (MD5 one included).
    wait_established(&lab, &routers.all(), &[Family::Ipv4, Family::Ipv6], &spk);
    let v4: Vec<&str> = [LOCAL_V4, SET_V4].concat();
    for router in routers.all() {
        wait_learned(router, Family::Ipv4, &v4, &spk);
        wait_learned(router, Family::Ipv6, LOCAL_V6, &spk);
    }

    eprintln!(
        "{TEST}: routes at every router after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    // The status written through the API server: every peer Established, the generation run.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status = status_of(
            &api.get(API_VERSION, "BGPNodeIntent", SPEAKER)
                .expect("the intent exists"),
        );
        if let Some(s) = &status
            && s.observed_generation == Some(generation)
            && peers.iter().all(|p| is_established(s, *p))
        {
            break status.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "status in the API server never showed generation {generation} with every peer \
             Established: {status:?}\n{}",
            spk.log_tail(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status.peers.len(), peers.len(), "{status:?}");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(ready.status, "True", "{ready:?}");

    // A set change through the API reaches the routers (the set watch works).
    let mut v4_more = v4.clone();
    v4_more.push("203.0.113.44/32");
    api.put(set_object(&[SET_V4, &["203.0.113.44/32"]].concat()));
    for router in routers.all() {
        wait_learned(router, Family::Ipv4, &v4_more, &spk);
    }
    api.put(set_object(SET_V4));
    for router in routers.all() {
        wait_learned(router, Family::Ipv4, &v4, &spk);
    }

    // Outage: 60 s without the API server. Fail static: every route stays at every poll
    // of every router, no session resets.
    let since_before = since(&spk);
    std::thread::sleep(Duration::from_millis(500)); // let the last withdraw's counters settle
    let updates_before = updates_sent(&spk, &peers);
    eprintln!(
        "{TEST}: API server stopped after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    api.stop();
    let outage = Instant::now();
    let want: BTreeMap<Family, Vec<&str>> =
        BTreeMap::from([(Family::Ipv4, v4.clone()), (Family::Ipv6, LOCAL_V6.to_vec())]);
    let mut polls = 0;
    let mut bad = Vec::new();
    while outage.elapsed() < Duration::from_secs(60) {
        for router in routers.all() {
            for (family, want) in &want {
                match router.routes(*family) {
                    Ok(routes) if learned(&routes) == set(want) => {}
                    Ok(routes) => bad.push(format!(
                        "{:?} {}: {family:?} {:?}",
                        outage.elapsed(),
                        router.name(),
                        learned(&routes)
                    )),
                    Err(e) => bad.push(format!("{:?} {}: {e}", outage.elapsed(), router.name())),
                }
            }
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(polls >= 60, "only {polls} polls in 60 s");
    assert!(
        bad.is_empty(),
        "routes changed during the outage: {bad:?}\n{}",
        spk.log_tail(40)
    );
    assert_eq!(since(&spk), since_before, "a session went down during the outage");

    // A change made while the speaker could not see it, then the API server back: the
    // speaker relists and sends exactly that change, nothing else.
    api.put(set_object(&[SET_V4, &[LATE_V4]].concat()));
    api.restart();
    let back = Instant::now();
    let mut v4_late = v4.clone();
    v4_late.push(LATE_V4);
    for router in routers.all() {
        router
            .wait_routes(Family::Ipv4, Duration::from_secs(60), "the late prefix", &|r| {
                learned(r) == set(&v4_late)
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", spk.log_tail(40)));
    }
    eprintln!(
        "{TEST}: late prefix at every router {:.1} s after the API server came back",
        back.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(1));
    let updates_after = updates_sent(&spk, &peers);
    for peer in &peers {
        let want = if peer.is_ipv4() { 1.0 } else { 0.0 };
        assert_eq!(
            updates_after[peer] - updates_before[peer],
            want,
            "UPDATEs sent to {peer} across the outage and resync (want only the late prefix)"
        );
    }
    assert_eq!(since(&spk), since_before, "a session went down on resync");
    took(TEST, start);
}
