//! FSM scenarios as stories: each file in `tests/fsm_scenarios/` holds a configuration,
//! the inputs (`>` lines) and the actions they must produce (`<` lines), in order.
//!
//! ```text
//! # comment
//! config local_as=64500 peer_as=64501 ...     (see `parse_config` for keys)
//! > start                                     an input
//! < connect                                   an expected action
//! ```
//!
//! Inputs: `start`, `stop admin "text"`, `stop config "what"`, `stop restart`,
//! `connected [inbound]`, `connect-failed "error"`, `closed`, `wait <secs>` (time
//! passes, nothing happens), `timer <Name>` (time jumps to the timer's deadline and it
//! fires), `open key=value...`, `keepalive`, `notification c/s ["text"]`,
//! `bytes <hex>` (decoded as the agent would, malformed input included),
//! `update <nlri> aspath=a,b` (a well-formed IPv4 UPDATE), `route-refresh ipv4|ipv6`,
//! `routes ipv4=N ipv6=M [community=C] [med=M] [localpref=L] [large=a:b:c] [prepend=a,b]
//! [tagged=K]` (attributes on the first K prefixes, all when absent), `collision-dump`,
//! `stats` (counters, as a `<` line).
//!
//! `UPDATE_GOLDEN=1 cargo test --test fsm_scenarios` rewrites the `<` lines from what the
//! code does; the diff is then reviewed like any code change.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{Ipv4Addr, Ipv6Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use bgpintent_api::{Asn, DownReason, Family, GracefulRestart, NextHops, PeerIntent, Prefix, RouterId};
use bgpintent_speaker::{
    session::{Action, Announce, Config, Event, Session, Stop, Timer},
    wire::{
        AfiSafi, AsSegment, AttrValue, Capability, DecodeCtx, GracefulRestartCap, LargeCommunity, Message,
        MpReach, MpUnreach, Notification, Open, PathAttribute, RouteRefresh, Update,
    },
};

fn parse_config(line: &str) -> Config {
    let kv: BTreeMap<&str, &str> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.split_once('='))
        .collect();
    let get = |k: &str, d: &'static str| -> String { kv.get(k).copied().unwrap_or(d).to_string() };
    let asn = |k: &str, d| Asn::try_from(get(k, d).parse::<u32>().unwrap()).unwrap();
    let mut peer = PeerIntent::new();
    peer.hold_time_secs = get("hold", "90").parse().unwrap();
    peer.keepalive_time_secs = get("keepalive", "30").parse().unwrap();
    peer.connect_retry_secs = get("retry", "30").parse().unwrap();
    peer.passive = get("passive", "false") == "true";
    peer.families = get("families", "ipv4,ipv6")
        .split(',')
        .map(|f| if f == "ipv4" { Family::Ipv4 } else { Family::Ipv6 })
        .collect();
    peer.graceful_restart = GracefulRestart {
        enabled: get("gr", "on") == "on",
        restart_time_secs: 120,
        deferral_time_secs: 360,
        notification: get("notification", "on") == "on",
    };
    let next_hops = NextHops {
        ipv4: Some(get("nh4", "192.0.2.1").parse().unwrap()),
        ipv6: Some(get("nh6", "2001:db8::1").parse().unwrap()),
    };
    let mut cfg = Config::new(
        asn("local_as", "64500"),
        RouterId::try_from(get("router_id", "192.0.2.1").parse::<Ipv4Addr>().unwrap()).unwrap(),
        asn("peer_as", "64501"),
        &peer,
        next_hops,
        get("restarting", "false") == "true",
    );
    cfg.ipv6_link_local = kv.get("link_local").map(|l| l.parse::<Ipv6Addr>().unwrap());
    cfg
}

/// `open as=64501 hold=90 id=192.0.2.2 families=ipv4,ipv6 as4=yes gr=120,n rr=yes`
fn parse_open(args: &str) -> Open {
    let kv: BTreeMap<&str, &str> = args
        .split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect();
    let asn: u32 = kv.get("as").unwrap_or(&"64501").parse().unwrap();
    let mut caps = Vec::new();
    for f in kv
        .get("families")
        .unwrap_or(&"ipv4,ipv6")
        .split(',')
        .filter(|f| !f.is_empty())
    {
        caps.push(Capability::Multiprotocol(if f == "ipv4" {
            AfiSafi::IPV4_UNICAST
        } else {
            AfiSafi::IPV6_UNICAST
        }));
    }
    if kv.get("rr").unwrap_or(&"yes") == &"yes" {
        caps.push(Capability::RouteRefresh);
    }
    if kv.get("as4").unwrap_or(&"yes") == &"yes" {
        caps.push(Capability::FourOctetAs(asn));
    }
    if let Some(gr) = kv.get("gr") {
        let mut parts = gr.split(',');
        let time = parts.next().unwrap().parse().unwrap();
        let flags: Vec<&str> = parts.collect();
        caps.push(Capability::GracefulRestart(GracefulRestartCap {
            restarting: flags.contains(&"r"),
            notification: flags.contains(&"n"),
            time,
            families: vec![(AfiSafi::IPV4_UNICAST, true), (AfiSafi::IPV6_UNICAST, true)],
        }));
    }
    Open {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(Asn::AS_TRANS),
        hold_time: kv.get("hold").unwrap_or(&"90").parse().unwrap(),
        router_id: kv.get("id").unwrap_or(&"192.0.2.2").parse().unwrap(),
        capabilities: caps,
    }
}

fn quoted(s: &str) -> String {
    s.trim().trim_matches('"').to_string()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn routes(args: &str) -> BTreeMap<Prefix, Arc<Announce>> {
    let kv: BTreeMap<&str, &str> = args
        .split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect();
    let n4: u32 = kv.get("ipv4").unwrap_or(&"0").parse().unwrap();
    let n6: u32 = kv.get("ipv6").unwrap_or(&"0").parse().unwrap();
    let tagged: usize = kv.get("tagged").map_or(usize::MAX, |k| k.parse().unwrap());
    let a = Arc::new(Announce {
        communities: kv
            .get("community")
            .map(|c| vec![c.parse().unwrap()])
            .unwrap_or_default(),
        med: kv.get("med").map(|m| m.parse().unwrap()),
        local_pref: kv.get("localpref").map(|l| l.parse().unwrap()),
        large_communities: kv
            .get("large")
            .map(|l| {
                let v: Vec<u32> = l.split(':').map(|x| x.parse().unwrap()).collect();
                vec![LargeCommunity {
                    global_admin: v[0],
                    local_data1: v[1],
                    local_data2: v[2],
                }]
            })
            .unwrap_or_default(),
        as_path_prepend: kv
            .get("prepend")
            .map(|p| p.split(',').map(|a| a.parse().unwrap()).collect())
            .unwrap_or_default(),
    });
    let plain = Arc::new(Announce::default());
    let v4 = (0..n4).map(|i| Prefix::host(Ipv4Addr::from(0xc612_0000 + i).into()));
    let v6 = (0..n6).map(|i| {
        Prefix::host(Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + u128::from(i)).into())
    });
    v4.chain(v6)
        .enumerate()
        .map(|(i, p)| (p, if i < tagged { a.clone() } else { plain.clone() }))
        .collect()
}

fn describe_open(o: &Open) -> String {
    let caps: Vec<String> = o
        .capabilities
        .iter()
        .map(|c| match c {
            Capability::Multiprotocol(af) => format!("mp {:?}", af.family().unwrap()),
            Capability::RouteRefresh => "rr".into(),
            Capability::FourOctetAs(a) => format!("as4 {a}"),
            Capability::GracefulRestart(g) => format!(
                "gr {}s{}{} F={}",
                g.time,
                if g.restarting { " R" } else { "" },
                if g.notification { " N" } else { "" },
                g.families.iter().filter(|f| f.1).count()
            ),
            Capability::Unknown { code, .. } => format!("cap {code}"),
        })
        .collect();
    format!(
        "OPEN as={} hold={} id={} [{}]",
        o.my_as,
        o.hold_time,
        o.router_id,
        caps.join(", ")
    )
}

fn describe_update(u: &Update) -> String {
    if let Some(af) = u.end_of_rib() {
        return format!("End-of-RIB {:?}", af.family().unwrap());
    }
    let (family, ann, wd) = match (u.mp_reach(), u.mp_unreach()) {
        (Some(MpReach::Unicast { family, nlri, .. }), un) => {
            let w = match un {
                Some(MpUnreach::Unicast { withdrawn, .. }) => withdrawn.len(),
                _ => 0,
            };
            (*family, nlri.len(), w)
        }
        (None, Some(MpUnreach::Unicast { family, withdrawn })) => (*family, 0, withdrawn.len()),
        _ => (Family::Ipv4, u.nlri.len(), u.withdrawn.len()),
    };
    let mut s = format!("UPDATE {family} +{ann} -{wd}");
    for a in &u.attributes {
        match &a.value {
            AttrValue::AsPath(segs) => {
                let p: Vec<String> = segs
                    .iter()
                    .flat_map(|s| s.asns.iter().map(u32::to_string))
                    .collect();
                write!(s, " aspath=[{}]", p.join(" ")).unwrap();
            }
            AttrValue::NextHop(nh) => write!(s, " nh={nh}").unwrap(),
            AttrValue::MpReach(MpReach::Unicast {
                next_hop, link_local, ..
            }) => {
                write!(s, " nh={next_hop}").unwrap();
                if let Some(ll) = link_local {
                    write!(s, ",{ll}").unwrap();
                }
            }
            AttrValue::LocalPref(l) => write!(s, " localpref={l}").unwrap(),
            AttrValue::Med(m) => write!(s, " med={m}").unwrap(),
            AttrValue::Communities(c) => write!(s, " communities={c:?}").unwrap(),
            AttrValue::LargeCommunities(l) => {
                let l: Vec<String> = l
                    .iter()
                    .map(|l| format!("{}:{}:{}", l.global_admin, l.local_data1, l.local_data2))
                    .collect();
                write!(s, " large=[{}]", l.join(" ")).unwrap();
            }
            _ => {}
        }
    }
    s
}

fn describe(session: &Session, start: Instant, a: &Action) -> String {
    match a {
        Action::Connect => "connect".into(),
        Action::Close => "close".into(),
        Action::StopTimer(t) => format!("stop {t:?}"),
        Action::ArmTimer { timer, at } => {
            let d = at.duration_since(start);
            format!("arm {timer:?} at {:.3}s", d.as_secs_f64())
        }
        Action::StateChanged { from, to, reason } => match reason {
            Some(r) => format!("state {from} -> {to}: {r}"),
            None => format!("state {from} -> {to}"),
        },
        Action::Send(bytes) => {
            let ctx = DecodeCtx {
                four_octet_as: true,
                ibgp: session.config().ibgp(),
            };
            match Message::decode(bytes, &ctx).expect("we send what we can read") {
                Message::Open(o) => format!("send {}", describe_open(&o)),
                Message::Keepalive => "send KEEPALIVE".into(),
                Message::Notification(n) => format!("send NOTIFICATION {n}"),
                Message::Update(u) => format!("send {}", describe_update(&u)),
                Message::RouteRefresh(r) => format!("send ROUTE-REFRESH {:?}", r.afi_safi),
            }
        }
    }
}

/// Runs one scenario and returns the file as it should be.
fn run(text: &str) -> String {
    let mut out = String::new();
    let mut session: Option<Session> = None;
    let start = Instant::now();
    let mut now = start;
    let mut deadlines: BTreeMap<Timer, Instant> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("< ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("config") {
            session = Some(Session::new(parse_config(line), 7));
            continue;
        }
        let Some(input) = line.strip_prefix("> ") else {
            continue;
        };
        let s = session.as_mut().expect("config before inputs");
        let (cmd, args) = input.split_once(' ').unwrap_or((input, ""));
        let event = match cmd {
            "start" => Event::Start,
            "stop" => match args.split_once(' ').unwrap_or((args, "")) {
                ("admin", m) => Event::Stop(Stop::Admin { message: quoted(m) }),
                ("config", w) => Event::Stop(Stop::ConfigChanged { what: quoted(w) }),
                ("identity", w) => Event::Stop(Stop::IdentityChanged { what: quoted(w) }),
                ("restart", _) => Event::Stop(Stop::Restart),
                other => panic!("stop {other:?}"),
            },
            "connected" => Event::Connected {
                inbound: args == "inbound",
            },
            "connect-failed" => Event::ConnectFailed { error: quoted(args) },
            "closed" => Event::ConnectionLost { error: None },
            "send-stalled" => Event::SendStalled {
                queued_bytes: args.parse().unwrap(),
                waited_secs: 90,
            },
            "wait" => {
                now += Duration::from_secs(args.parse().unwrap());
                continue;
            }
            "timer" => {
                let t = match args {
                    "ConnectRetry" => Timer::ConnectRetry,
                    "Hold" => Timer::Hold,
                    "Keepalive" => Timer::Keepalive,
                    "IdleHold" => Timer::IdleHold,
                    t => panic!("timer {t}"),
                };
                // A timer not armed still fires (the FSM must ignore stale ones).
                now = now.max(deadlines.get(&t).copied().unwrap_or(now));
                Event::Timer(t)
            }
            "open" => Event::Message(Message::Open(parse_open(args))),
            "keepalive" => Event::Message(Message::Keepalive),
            "notification" => {
                let (cs, text) = args.split_once(' ').unwrap_or((args, ""));
                let (c, sub) = cs.split_once('/').unwrap();
                let n = if text.is_empty() {
                    Notification::new(c.parse().unwrap(), sub.parse().unwrap(), vec![])
                } else {
                    Notification::admin_shutdown(&quoted(text))
                };
                Event::Message(Message::Notification(n))
            }
            "bytes" => match Message::decode(&hex(args), &s.decode_ctx()) {
                Ok(m) => Event::Message(m),
                Err(e) => Event::Malformed(e),
            },
            "update" => {
                let (nlri, path) = args.split_once(" aspath=").unwrap();
                let path = path.split(',').map(|a| a.parse().unwrap()).collect();
                Event::Message(Message::Update(Update {
                    attributes: vec![
                        PathAttribute::new(AttrValue::Origin(0)),
                        PathAttribute::new(AttrValue::AsPath(vec![AsSegment::sequence(path)])),
                        PathAttribute::new(AttrValue::NextHop(Ipv4Addr::new(192, 0, 2, 2))),
                    ],
                    nlri: vec![nlri.parse().unwrap()],
                    ..Update::default()
                }))
            }
            "route-refresh" => Event::Message(Message::RouteRefresh(RouteRefresh {
                afi_safi: if args == "ipv4" {
                    AfiSafi::IPV4_UNICAST
                } else {
                    AfiSafi::IPV6_UNICAST
                },
                subtype: 0,
            })),
            "routes" => Event::Routes(routes(args)),
            "collision-dump" => Event::CollisionDump,
            "live" => {
                // A live reconfiguration (docs/reconfiguration.md): `live keepalive=N`.
                let mut c = s.config().clone();
                for kv in args.split_whitespace() {
                    match kv.split_once('=') {
                        Some(("keepalive", v)) => c.keepalive_time_secs = v.parse().unwrap(),
                        Some(("passive", v)) => c.passive = v == "true",
                        other => panic!("live {other:?}"),
                    }
                }
                s.update_live(&c);
                continue;
            }
            "stats" => {
                let st = s.stats();
                let sent = s.prefixes_sent();
                writeln!(
                    out,
                    "< stats updates={} prefixes={} withdrawn={} treat-as-withdraw={} discarded={} eor={} sent-v4={} sent-v6={}",
                    st.updates_received,
                    st.prefixes_received,
                    st.withdrawals_received,
                    st.treat_as_withdraw,
                    st.attributes_discarded,
                    st.end_of_rib_received,
                    sent.ipv4,
                    sent.ipv6
                )
                .unwrap();
                continue;
            }
            other => panic!("unknown input {other:?}"),
        };
        let actions = s.handle(now, event);
        for a in &actions {
            match a {
                Action::ArmTimer { timer, at } => {
                    deadlines.insert(*timer, *at);
                }
                Action::StopTimer(t) => {
                    deadlines.remove(t);
                }
                _ => {}
            }
            if let Action::StateChanged {
                to: bgpintent_api::SessionState::Idle,
                reason,
                ..
            } = a
            {
                assert!(reason.is_some(), "every transition to Idle carries a DownReason");
            }
            writeln!(out, "< {}", describe(s, start, a)).unwrap();
        }
    }
    let _: Option<DownReason> = None;
    out
}

#[test]
fn scenarios() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fsm_scenarios");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "scenario files missing");
    let mut failed = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let got = run(&text);
        if got != text {
            if update {
                std::fs::write(&f, &got).unwrap();
            } else {
                eprintln!("--- {} differs; got:\n{got}", f.display());
                failed.push(f);
            }
        }
    }
    assert!(
        failed.is_empty(),
        "scenarios differ (UPDATE_GOLDEN=1 to rewrite): {failed:?}"
    );
}
