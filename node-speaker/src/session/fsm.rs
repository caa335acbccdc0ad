//! The transition function: one `match` on (state, event), side effects as actions.

use std::{sync::Arc, time::Instant};

use bgpintent_api::{DownReason, Family, Prefix, RouterId};
use bytes::BytesMut;

use super::{
    Action, AdjRibOut, Announce, Changes, Config, Event, Negotiated, Routes, State, Stop, Timer,
    negotiate::{negotiate, our_open},
};
use crate::wire::{
    DecodeCtx, DecodeError, EncodeCtx, Message, NextHop, Notification, Open, RouteAttrs, Update,
    build_updates,
    iana::{cease_subcode, error_code, fsm_subcode},
};

/// Counters of what the peer sent us (we parse, count and drop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub updates_received: u64,
    pub prefixes_received: u64,
    pub withdrawals_received: u64,
    /// UPDATEs handled as withdraw under RFC 7606.
    pub treat_as_withdraw: u64,
    /// Attributes dropped under RFC 7606.
    pub attributes_discarded: u64,
    pub end_of_rib_received: u64,
    pub updates_sent: u64,
    pub route_refreshes_received: u64,
    /// Every NOTIFICATION written to the connection (errors, Hold Timer Expired, Cease).
    pub notifications_sent: u64,
    /// Every NOTIFICATION the peer sent, malformed ones included.
    pub notifications_received: u64,
}

/// One peer's session. See the module docs of [`crate::session`].
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    state: State,
    /// Stopped on purpose: no automatic restart until the next [`Event::Start`].
    stopped: bool,
    /// Whether a TCP connection exists (so Close must be sent on the way to Idle).
    connected: bool,
    inbound: Option<bool>,
    our_open: Option<Open>,
    negotiated: Option<Negotiated>,
    /// Deadlines of armed timers; a timer event for a timer not armed here is stale.
    armed: [Option<Instant>; 4],
    /// Consecutive failures since the last Established, for the backoff.
    failures: u32,
    rng: u64,
    rib: AdjRibOut,
    stats: Stats,
    last_down: Option<DownReason>,
}

fn idx(t: Timer) -> usize {
    match t {
        Timer::ConnectRetry => 0,
        Timer::Hold => 1,
        Timer::Keepalive => 2,
        Timer::IdleHold => 3,
    }
}

impl Session {
    /// A session in Idle. `seed` feeds the jitter of reconnect delays; the agent passes a
    /// random value, tests a fixed one.
    pub fn new(cfg: Config, seed: u64) -> Self {
        Self {
            cfg,
            state: State::Idle,
            stopped: true,
            connected: false,
            inbound: None,
            our_open: None,
            negotiated: None,
            armed: [None; 4],
            failures: 0,
            rng: seed,
            rib: AdjRibOut::new(),
            stats: Stats::default(),
            last_down: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Applies the settings that may change under a running session (docs/reconfiguration.md):
    /// keepalive interval (from the next KEEPALIVE on, still capped to a third of the
    /// negotiated hold time), connect-retry base and passive mode (from the next attempt).
    /// Everything else in `new` is ignored: it needs a reset.
    pub fn update_live(&mut self, new: &Config) {
        self.cfg.keepalive_time_secs = new.keepalive_time_secs;
        self.cfg.connect_retry_secs = new.connect_retry_secs;
        self.cfg.passive = new.passive;
        if let Some(n) = self.negotiated.as_mut()
            && n.hold_time_secs > 0
        {
            let h = n.hold_time_secs;
            n.keepalive_secs = if new.keepalive_time_secs == 0 {
                (h / 3).max(1)
            } else {
                new.keepalive_time_secs.min(h / 3).max(1)
            };
        }
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn last_down_reason(&self) -> Option<&DownReason> {
        self.last_down.as_ref()
    }

    /// For collision resolution: the peer's identifier once its OPEN arrived.
    pub fn remote_router_id(&self) -> Option<RouterId> {
        self.negotiated.as_ref().map(|n| n.peer_router_id)
    }

    /// Whether the current connection was accepted (`Some(true)`) or ours.
    pub fn inbound(&self) -> Option<bool> {
        self.inbound
    }

    /// Whether an incoming connection can be handed straight to this session
    /// ([`Event::Connected`]). If not, and the state is OpenSent or OpenConfirm, the agent
    /// runs it in a second session and resolves the collision; in Established it refuses it.
    pub fn accepts_connection(&self) -> bool {
        match self.state {
            State::Idle => !self.stopped,
            State::Connect | State::Active => true,
            State::OpenSent | State::OpenConfirm | State::Established => false,
        }
    }

    /// How to read the peer's messages on this session now.
    pub fn decode_ctx(&self) -> DecodeCtx {
        DecodeCtx {
            four_octet_as: self.negotiated.as_ref().is_some_and(|n| n.four_octet_as),
            ibgp: self.cfg.ibgp(),
        }
    }

    fn encode_ctx(&self) -> EncodeCtx {
        EncodeCtx {
            four_octet_as: self.negotiated.as_ref().is_some_and(|n| n.four_octet_as),
        }
    }

    pub fn prefixes_sent(&self) -> bgpintent_api::PrefixCounts {
        let mut c = bgpintent_api::PrefixCounts::default();
        for f in Family::ALL {
            c.set(f, self.rib.sent_count(f) as u32);
        }
        c
    }

    /// The transition function.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if let Event::Timer(t) = event {
            // A timer that fired after being stopped or re-armed is not an event.
            match self.armed[idx(t)] {
                Some(at) if at <= now => self.armed[idx(t)] = None,
                _ => return out,
            }
        }
        match (self.state, event) {
            (_, Event::Routes(routes)) => self.set_routes(routes, &mut out),
            (_, Event::Stop(stop)) => self.stop(now, stop, &mut out),

            (State::Idle, Event::Start) => {
                self.stopped = false;
                self.failures = 0;
                self.start(now, &mut out);
            }
            (State::Idle, Event::Timer(Timer::IdleHold)) if !self.stopped => self.start(now, &mut out),
            (State::Idle | State::Connect | State::Active, Event::Connected { inbound })
                if !(self.state == State::Idle && self.stopped) =>
            {
                self.connected = true;
                self.inbound = Some(inbound);
                self.stop_timer(Timer::ConnectRetry, &mut out);
                self.stop_timer(Timer::IdleHold, &mut out);
                let open = our_open(&self.cfg);
                self.send(&Message::Open(open.clone()), &mut out);
                self.our_open = Some(open);
                self.arm(now, Timer::Hold, self.cfg.open_timeout, &mut out);
                self.set_state(State::OpenSent, None, &mut out);
            }
            (State::Idle, Event::Connected { .. }) => {
                // Stopped: refuse the connection the agent accepted for us.
                out.push(Action::Close);
            }
            (State::Connect, Event::ConnectFailed { error }) => {
                self.down(now, DownReason::ConnectFailed { error }, None, &mut out)
            }
            (State::Connect, Event::Timer(Timer::ConnectRetry)) => {
                self.down(now, DownReason::NoAnswer, None, &mut out)
            }

            (State::OpenSent, Event::Message(Message::Open(theirs))) => {
                self.receive_open(now, theirs, &mut out)
            }
            (State::OpenSent, Event::Timer(Timer::Hold)) => {
                // TCP completed (so not MD5/GTSM, which drop the SYN) but no OPEN came.
                let n = Notification::new(error_code::HOLD_TIMER_EXPIRED, 0, vec![]);
                let secs = self.cfg.open_timeout.as_secs();
                self.down(now, DownReason::NoOpen { secs }, Some(n), &mut out)
            }

            (State::OpenConfirm, Event::Message(Message::Keepalive)) => {
                self.restart_hold(now, &mut out);
                self.failures = 0;
                self.set_state(State::Established, None, &mut out);
                // RFC 4724 §4.1: the R-bit is for the first session after a restart.
                self.cfg.restarting = false;
                self.send_initial_table(&mut out);
            }
            (State::OpenConfirm | State::Established, Event::Timer(Timer::Hold)) => {
                let n = Notification::new(error_code::HOLD_TIMER_EXPIRED, 0, vec![]);
                self.down(now, DownReason::HoldTimerExpired, Some(n), &mut out)
            }
            (State::OpenConfirm | State::Established, Event::Timer(Timer::Keepalive)) => {
                self.send(&Message::Keepalive, &mut out);
                self.arm_keepalive(now, &mut out);
            }

            (State::Established, Event::Message(Message::Keepalive)) => self.restart_hold(now, &mut out),
            (State::Established, Event::Message(Message::Update(u))) => {
                self.restart_hold(now, &mut out);
                self.count_update(&u);
            }
            (State::Established, Event::Message(Message::RouteRefresh(rr))) => {
                self.restart_hold(now, &mut out);
                self.stats.route_refreshes_received += 1;
                // RFC 7313 §5: a refresh for a family not negotiated is ignored.
                let negotiated = self.negotiated_families();
                if let Some(family) = rr.afi_safi.family().filter(|f| negotiated.contains(f)) {
                    let changes = self.rib.take_full(family);
                    self.send_changes(family, changes, &mut out);
                    self.arm_keepalive(now, &mut out);
                }
            }

            (
                State::OpenSent | State::OpenConfirm | State::Established,
                Event::Message(Message::Notification(n)),
            ) => {
                self.stats.notifications_received += 1;
                let reason = DownReason::NotificationReceived {
                    code: n.code,
                    subcode: n.subcode,
                    message: n.shutdown_message().unwrap_or_default(),
                };
                self.down(now, reason, None, &mut out)
            }
            (state @ (State::OpenSent | State::OpenConfirm | State::Established), Event::Message(m)) => {
                // RFC 6608 subcodes say in which state the message was unexpected.
                let subcode = match state {
                    State::OpenSent => fsm_subcode::UNEXPECTED_IN_OPEN_SENT,
                    State::OpenConfirm => fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM,
                    _ => fsm_subcode::UNEXPECTED_IN_ESTABLISHED,
                };
                let n = Notification::new(error_code::FSM, subcode, vec![]);
                let what = format!("unexpected {} in {state}", m.kind());
                self.fail(now, n, what, &mut out)
            }
            (State::OpenSent | State::OpenConfirm | State::Established, Event::Malformed(e)) => {
                match e.notification() {
                    Some(n) => self.fail(now, n, e.to_string(), &mut out),
                    None => {
                        self.stats.notifications_received += 1;
                        let DecodeError::BadNotification(why) = e else {
                            unreachable!("only BadNotification has none")
                        };
                        let reason = DownReason::MalformedNotificationReceived {
                            error: why.to_string(),
                        };
                        self.down(now, reason, None, &mut out)
                    }
                }
            }
            (State::OpenSent | State::OpenConfirm | State::Established, Event::ConnectionLost { error }) => {
                let reason = match error {
                    None => DownReason::ConnectionClosed,
                    Some(error) => DownReason::TransportError { error },
                };
                // Still `connected` here, so `down` emits `Close`: the agent must drop its half
                // of the dead connection (a peer that closed without a NOTIFICATION left us in
                // CLOSE-WAIT, and the slot kept refusing the peer's reconnects).
                self.down(now, reason, None, &mut out)
            }
            (
                State::OpenSent | State::OpenConfirm | State::Established,
                Event::SendStalled {
                    queued_bytes,
                    waited_secs,
                },
            ) => {
                let reason = DownReason::SendStalled {
                    queued_bytes,
                    waited_secs,
                };
                self.down(now, reason, None, &mut out)
            }
            (
                State::Connect | State::OpenSent | State::OpenConfirm | State::Established,
                Event::CollisionDump,
            ) => {
                let n = Notification::cease(cease_subcode::CONNECTION_COLLISION_RESOLUTION);
                // The other connection carries on; this one must not come back by itself.
                self.stopped = true;
                self.down(now, DownReason::Collision, Some(n), &mut out)
            }
            // Anything else (a message in Idle, a second Start...) changes nothing.
            _ => {}
        }
        out
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.cfg.password_unavailable {
            // Fail closed: never a connection without the password the intent asks for.
            self.stopped = true;
            self.stop_timer(Timer::IdleHold, out);
            self.last_down = Some(DownReason::PasswordUnavailable);
            self.set_state(State::Idle, Some(DownReason::PasswordUnavailable), out);
            return;
        }
        if self.cfg.passive {
            self.set_state(State::Active, None, out);
        } else {
            out.push(Action::Connect);
            self.arm(now, Timer::ConnectRetry, self.cfg.connect_timeout, out);
            self.set_state(State::Connect, None, out);
        }
    }

    fn receive_open(&mut self, now: Instant, theirs: Open, out: &mut Vec<Action>) {
        let ours = self.our_open.clone().unwrap_or_else(|| our_open(&self.cfg));
        match negotiate(&self.cfg, &ours, &theirs) {
            Err(e) => {
                let n = Notification::new(error_code::OPEN_MESSAGE, e.subcode as u8, e.data);
                self.fail(now, n, e.reason.into_owned(), out)
            }
            Ok(neg) => {
                let hold = neg.hold_time_secs;
                self.negotiated = Some(neg);
                self.send(&Message::Keepalive, out);
                if hold == 0 {
                    self.stop_timer(Timer::Hold, out);
                } else {
                    self.arm(now, Timer::Hold, secs(hold), out);
                }
                self.arm_keepalive(now, out);
                self.set_state(State::OpenConfirm, None, out);
            }
        }
    }

    fn count_update(&mut self, u: &Update) {
        let s = &mut self.stats;
        s.updates_received += 1;
        s.prefixes_received += u.announced() as u64;
        s.withdrawals_received += u.withdrawn_count() as u64;
        s.treat_as_withdraw += u64::from(u.treat_as_withdraw.is_some());
        s.attributes_discarded += u.discarded.len() as u64;
        s.end_of_rib_received += u64::from(u.end_of_rib().is_some());
    }

    /// Sends `n` because of the peer's error, then goes Idle.
    fn fail(&mut self, now: Instant, n: Notification, message: String, out: &mut Vec<Action>) {
        let reason = DownReason::NotificationSent {
            code: n.code,
            subcode: n.subcode,
            message,
        };
        self.down(now, reason, Some(n), out)
    }

    fn stop(&mut self, now: Instant, stop: Stop, out: &mut Vec<Action>) {
        let graceful_notification = self.negotiated.as_ref().is_some_and(|n| n.graceful_notification);
        let (reason, notification) = match stop {
            Stop::Admin { message } => {
                let n = Notification::admin_shutdown(&message);
                // RFC 8538 §3.1: with the N-bit, only Hard Reset makes the peer drop our routes.
                let n = if graceful_notification {
                    Notification::hard_reset(&n)
                } else {
                    n
                };
                (DownReason::AdminShutdown, Some(n))
            }
            Stop::ConfigChanged { what } => (
                DownReason::ConfigChanged { what },
                Some(Notification::cease(cease_subcode::OTHER_CONFIGURATION_CHANGE)),
            ),
            Stop::IdentityChanged { what } => {
                let n = Notification::cease(cease_subcode::OTHER_CONFIGURATION_CHANGE);
                let n = if graceful_notification {
                    Notification::hard_reset(&n)
                } else {
                    n
                };
                (DownReason::ConfigChanged { what }, Some(n))
            }
            Stop::Restart => (DownReason::Restarting, None),
        };
        let restart = matches!(reason, DownReason::ConfigChanged { .. });
        if self.state == State::Idle {
            // Nothing to close. A config change needs nothing either (the next attempt
            // uses the new config); any other stop cancels the automatic restart.
            if !restart {
                self.stopped = true;
                self.stop_timer(Timer::IdleHold, out);
            }
            return;
        }
        self.stopped = !restart;
        // Only an open BGP connection (OpenSent onwards) gets a NOTIFICATION.
        let notification = notification.filter(|_| {
            matches!(
                self.state,
                State::OpenSent | State::OpenConfirm | State::Established
            )
        });
        // `down` arms IdleHold only when not stopped: a config change comes back.
        self.down(now, reason, notification, out);
    }

    /// The one way to Idle: NOTIFICATION (if any), close, timers off, state change with
    /// the reason, and the IdleHold timer for an automatic restart unless stopped.
    fn down(&mut self, now: Instant, reason: DownReason, n: Option<Notification>, out: &mut Vec<Action>) {
        if let Some(n) = n.filter(|_| self.connected) {
            self.send(&Message::Notification(n), out);
        }
        if self.connected || self.state == State::Connect {
            out.push(Action::Close);
        }
        self.connected = false;
        self.inbound = None;
        self.our_open = None;
        self.negotiated = None;
        self.rib.reset();
        for t in Timer::ALL {
            self.stop_timer(t, out);
        }
        self.last_down = Some(reason.clone());
        self.set_state(State::Idle, Some(reason), out);
        if !self.stopped {
            self.failures = self.failures.saturating_add(1);
            let delay = self.backoff();
            let at = now + delay;
            self.armed[idx(Timer::IdleHold)] = Some(at);
            out.push(Action::ArmTimer {
                timer: Timer::IdleHold,
                at,
            });
        }
    }

    /// connect_retry x 2^(failures-1), capped, x a jitter in [0.75, 1] (RFC 4271 §10).
    fn backoff(&mut self) -> std::time::Duration {
        let base = secs(self.cfg.connect_retry_secs.max(1));
        let exp = self.failures.saturating_sub(1).min(10);
        let d = base.saturating_mul(1 << exp).min(self.cfg.max_backoff.max(base));
        // splitmix64: deterministic from the seed, well spread even for small seeds.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let jitter = 0.75 + 0.25 * ((z >> 11) as f64 / (1u64 << 53) as f64);
        d.mul_f64(jitter)
    }

    /// Families both sides advertised (none before OPEN was negotiated).
    fn negotiated_families(&self) -> Vec<Family> {
        self.negotiated
            .as_ref()
            .map(|n| n.families.clone())
            .unwrap_or_default()
    }

    fn set_routes(&mut self, routes: Routes, out: &mut Vec<Action>) {
        self.rib.set_desired(routes);
        if self.state == State::Established {
            for f in self.negotiated_families() {
                if self.next_hop(f).is_some() {
                    let changes = self.rib.take_diff(f);
                    self.send_changes(f, changes, out);
                }
            }
        }
    }

    /// On Established: the whole table, then End-of-RIB, per negotiated family.
    fn send_initial_table(&mut self, out: &mut Vec<Action>) {
        for f in self.negotiated_families() {
            if self.next_hop(f).is_some() {
                let changes = self.rib.take_full(f);
                self.send_changes(f, changes, out);
            }
            self.send(&Message::Update(Update::end_of_rib_for(f)), out);
        }
    }

    fn next_hop(&self, family: Family) -> Option<NextHop> {
        self.cfg.next_hops.for_family(family).map(|addr| NextHop {
            addr,
            link_local: match family {
                Family::Ipv6 => self.cfg.ipv6_link_local,
                Family::Ipv4 => None,
            },
        })
    }

    fn route_attrs(&self, a: &Announce) -> RouteAttrs {
        let ibgp = self.cfg.ibgp();
        let mut as_path = a.as_path_prepend.clone();
        if !ibgp {
            as_path.push(self.cfg.local_asn.get());
        }
        RouteAttrs {
            as_path,
            med: a.med,
            local_pref: ibgp.then(|| a.local_pref.unwrap_or(100)),
            communities: a.communities.clone(),
            large_communities: a.large_communities.clone(),
            ..RouteAttrs::default()
        }
    }

    fn send_changes(&mut self, family: Family, changes: Changes, out: &mut Vec<Action>) {
        let ctx = self.encode_ctx();
        let nh = self.next_hop(family);
        let mut withdraw = changes.withdraw;
        let groups: Vec<(Arc<Announce>, Vec<Prefix>)> = changes.announce.into_iter().collect();
        let mut batches: Vec<(RouteAttrs, Vec<Prefix>)> = groups
            .into_iter()
            .map(|(a, p)| (self.route_attrs(&a), p))
            .collect();
        if batches.is_empty() && !withdraw.is_empty() {
            batches.push((RouteAttrs::default(), vec![]));
        }
        for (attrs, prefixes) in batches {
            // Withdrawals ride with the first group.
            let w = std::mem::take(&mut withdraw);
            match build_updates(family, &attrs, nh, &prefixes, &w, &ctx) {
                Ok(msgs) => {
                    self.stats.updates_sent += msgs.len() as u64;
                    out.extend(msgs.into_iter().map(Action::Send));
                }
                // Only reachable with attributes too large for any UPDATE (thousands of
                // communities); the intent is refused at the edge before that.
                Err(e) => debug_assert!(false, "cannot encode routes: {e}"),
            }
        }
    }

    fn send(&mut self, msg: &Message, out: &mut Vec<Action>) {
        let mut buf = BytesMut::new();
        match msg.encode(&self.encode_ctx(), &mut buf) {
            Ok(()) => out.push(Action::Send(buf.freeze())),
            Err(e) => debug_assert!(false, "cannot encode {msg:?}: {e}"),
        }
        match msg {
            Message::Update(_) => self.stats.updates_sent += 1,
            Message::Notification(_) => self.stats.notifications_sent += 1,
            _ => {}
        }
    }

    fn restart_hold(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Some(h) = self
            .negotiated
            .as_ref()
            .map(|n| n.hold_time_secs)
            .filter(|h| *h > 0)
        {
            self.arm(now, Timer::Hold, secs(h), out);
        }
    }

    fn arm_keepalive(&mut self, now: Instant, out: &mut Vec<Action>) {
        if let Some(k) = self
            .negotiated
            .as_ref()
            .map(|n| n.keepalive_secs)
            .filter(|k| *k > 0)
        {
            self.arm(now, Timer::Keepalive, secs(k), out);
        }
    }

    fn arm(&mut self, now: Instant, timer: Timer, after: std::time::Duration, out: &mut Vec<Action>) {
        let at = now + after;
        self.armed[idx(timer)] = Some(at);
        out.push(Action::ArmTimer { timer, at });
    }

    fn stop_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        if self.armed[idx(timer)].take().is_some() {
            out.push(Action::StopTimer(timer));
        }
    }

    fn set_state(&mut self, to: State, reason: Option<DownReason>, out: &mut Vec<Action>) {
        let from = std::mem::replace(&mut self.state, to);
        if from != to || reason.is_some() {
            out.push(Action::StateChanged { from, to, reason });
        }
    }
}

fn secs(s: u16) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(s))
}
