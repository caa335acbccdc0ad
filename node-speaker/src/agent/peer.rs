//! One peer's task: the sans-IO [`Session`] driven by sockets and tokio timers.
//!
//! ```text
//!  commands (routes, stop, restart, inbound connection) ──▶ ┌────────────┐ ──▶ PeerReport (watch)
//!  frames read from the socket (reader task)            ──▶ │  Session   │ ──▶ bytes written
//!  timer deadlines (sleep_until the earliest)           ──▶ └────────────┘ ──▶ connect attempts
//! ```
//!
//! Collisions (RFC 4271 §6.8): an inbound connection that arrives while our own attempt is
//! under way runs in a second `Session` until one of the two learns the peer's BGP
//! identifier (its OPEN); [`resolve_collision`] then picks the survivor and the loser gets
//! `CollisionDump` (Cease / Connection Collision Resolution). An inbound connection while a
//! session is Established is refused (closed), as the RFC's default.
//!
//! Writes never block the event loop: each connection has a writer task fed through an
//! [`Outbox`] (a queue bounded to [`MAX_QUEUED_BYTES`]). A peer that stops reading fills
//! its socket and stalls only that task; timers and commands keep running. When the
//! writer has made no progress for the hold time (the negotiated one; the OPEN wait in
//! OpenSent), or the queue outgrows its bound, the session gets `Event::SendStalled` and
//! is dropped with `DownReason::SendStalled`. On `Close` the queued UPDATEs are dropped
//! (the message being written is finished) and the NOTIFICATION gets [`CLOSE_GRACE`] to go out;
//! then the socket is dropped whatever the peer does, so a stop never waits on a stuck peer
//! for longer than that.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use bgpintent_api::{DownReason, PeerKey, PrefixCounts, SessionState};
use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    net::{self, ConnectOptions, Md5Key},
    session::{Action, Config, Event, Keep, Routes, Session, Stats, Stop, Timer, resolve_collision},
    wire::{self, Message},
};

/// What the agent tells a peer task.
#[derive(Debug)]
pub enum Command {
    Routes(Routes),
    /// A connection the listener accepted from this peer.
    Inbound(TcpStream),
    /// Close with Cease/Other Configuration Change and start again with these settings.
    Restart {
        config: Box<Config>,
        connect: Box<ConnectOptions>,
        what: String,
        /// Our identity changed: Cease wrapped in Hard Reset under the N-bit (RFC 8538).
        hard: bool,
    },
    /// Settings applied without a reset (keepalive, connect-retry, passive).
    Update {
        config: Box<Config>,
        connect: Box<ConnectOptions>,
    },
    /// Stop for good: `Admin` sends Cease/Administrative Shutdown, `Restart` closes silently.
    Stop(Stop),
}

/// What a peer task reports (the latest value wins).
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReport {
    pub key: PeerKey,
    pub state: SessionState,
    pub since: SystemTime,
    pub last_down_reason: Option<DownReason>,
    pub prefixes_sent: PrefixCounts,
    pub stats: Stats,
    /// Incremented on every transition out of Established (a flap).
    pub flaps: u64,
    /// Transitions to Idle from a state before Established, by reason label (cumulative).
    pub failures: std::collections::BTreeMap<&'static str, u64>,
}

/// Handle of a running peer task.
#[derive(Debug)]
pub struct PeerHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub report: watch::Receiver<PeerReport>,
    pub task: JoinHandle<()>,
}

/// Bytes queued for one connection beyond which the peer counts as stalled (the table of a
/// few hundred thousand prefixes is a few MB; a peer this far behind does not read).
pub const MAX_QUEUED_BYTES: usize = 64 << 20;
/// How long a NOTIFICATION may take to go out after `Close` before the socket is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The stall limit when no hold time applies (hold time 0 negotiated or offered).
const NO_HOLD_STALL: Duration = Duration::from_secs(240);

/// Input from the I/O helpers of one connection slot.
enum Io {
    Connected(Result<TcpStream, net::ConnectError>),
    Frame(Bytes),
    Lost(Option<String>),
    /// From the writer of connection `conn`: a write failed.
    WriteFailed {
        conn: u64,
        error: String,
    },
    /// From the writer of connection `conn`: nothing drained for the stall limit, or the
    /// queue outgrew [`MAX_QUEUED_BYTES`].
    Stalled {
        conn: u64,
        queued_bytes: u64,
        waited: Duration,
    },
}

/// Messages waiting for the writer task of one connection.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Bytes>,
    bytes: usize,
    /// Set by `Close`: write what is left (no UPDATEs) until this deadline, then end.
    closing: Option<Instant>,
    /// Set once the stall was reported (the queue bound), so it is reported once.
    stalled: bool,
}

/// The sending half of one connection: a task that writes the [`Outbox`].
struct Writer {
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    /// The stall limit in ms, kept current by the slot (it follows the session's state).
    stall_ms: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Writer {
    fn spawn(write: OwnedWriteHalf, conn: u64, stall: Duration, io: mpsc::UnboundedSender<Io>) -> Self {
        let outbox = Arc::new(Mutex::new(Outbox::default()));
        let wake = Arc::new(Notify::new());
        let stall_ms = Arc::new(AtomicU64::new(stall.as_millis() as u64));
        let task = tokio::spawn(write_frames(
            write,
            conn,
            outbox.clone(),
            wake.clone(),
            stall_ms.clone(),
            io,
        ));
        Self {
            outbox,
            wake,
            stall_ms,
            task,
        }
    }

    /// Queues one message. Returns the queued bytes when that passed the bound (once).
    fn send(&self, bytes: Bytes) -> Option<usize> {
        let mut o = self.outbox.lock().expect("outbox lock");
        if o.closing.is_some() {
            return None;
        }
        o.bytes += bytes.len();
        o.queue.push_back(bytes);
        let over = (o.bytes > MAX_QUEUED_BYTES && !o.stalled).then_some(o.bytes);
        if over.is_some() {
            o.stalled = true;
        }
        drop(o);
        self.wake.notify_one();
        over
    }

    /// Starts the close: queued UPDATEs are dropped, the rest (OPEN, KEEPALIVE, the
    /// NOTIFICATION) still goes out after the message being written, within [`CLOSE_GRACE`];
    /// returns the task, which ends by itself by then. Without a NOTIFICATION to send the
    /// connection is dropped at once (`None`).
    fn close(self) -> Option<JoinHandle<()>> {
        {
            let mut o = self.outbox.lock().expect("outbox lock");
            // UPDATEs go (a table behind a stuck window); OPEN and KEEPALIVE stay, so a
            // NOTIFICATION never overtakes the OPEN it follows on the wire.
            o.queue
                .retain(|m| m.get(18) != Some(&wire::iana::message_type::UPDATE));
            o.bytes = o.queue.iter().map(Bytes::len).sum();
            let notification = o
                .queue
                .iter()
                .any(|m| m.get(18) == Some(&wire::iana::message_type::NOTIFICATION));
            if !notification {
                drop(o);
                self.task.abort();
                return None;
            }
            o.closing = Some(Instant::now() + CLOSE_GRACE);
        }
        self.wake.notify_one();
        Some(self.task)
    }
}

async fn write_frames(
    mut write: OwnedWriteHalf,
    conn: u64,
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    stall_ms: Arc<AtomicU64>,
    io: mpsc::UnboundedSender<Io>,
) {
    loop {
        let (message, closing) = {
            let mut o = outbox.lock().expect("outbox lock");
            let message = o.queue.pop_front();
            if let Some(m) = &message {
                o.bytes -= m.len();
            }
            (message, o.closing)
        };
        let Some(message) = message else {
            match closing {
                Some(deadline) => {
                    let _ = tokio::time::timeout_at(deadline, write.shutdown()).await;
                    return;
                }
                None => {
                    wake.notified().await;
                    continue;
                }
            }
        };
        let mut written = 0;
        let mut progress = Instant::now();
        while written < message.len() {
            let closing = outbox.lock().expect("outbox lock").closing;
            let stall = Duration::from_millis(stall_ms.load(Ordering::Relaxed));
            let deadline = closing.unwrap_or(progress + stall);
            tokio::select! {
                r = write.write(&message[written..]) => match r {
                    Ok(0) | Err(_) if closing.is_some() => return,
                    Ok(0) => {
                        let _ = io.send(Io::WriteFailed { conn, error: "write returned 0".into() });
                        return;
                    }
                    Ok(n) => {
                        written += n;
                        progress = Instant::now();
                    }
                    Err(e) => {
                        let _ = io.send(Io::WriteFailed { conn, error: e.to_string() });
                        return;
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if closing.is_none() {
                        let queued = outbox.lock().expect("outbox lock").bytes + message.len() - written;
                        let _ = io.send(Io::Stalled { conn, queued_bytes: queued as u64, waited: stall });
                    }
                    return;
                }
                // A close (or a changed limit) while a write waits: look again.
                _ = wake.notified() => {}
            }
        }
    }
}

/// One connection and the session that runs on it.
struct Slot {
    session: Session,
    timers: [Option<Instant>; 4],
    writer: Option<Writer>,
    /// Which connection the writer belongs to (its reports carry it; older ones are stale).
    conn: u64,
    /// The writer of a closed connection still sending its NOTIFICATION (ends by itself
    /// within [`CLOSE_GRACE`]); a stop waits for it so the NOTIFICATION leaves first.
    flushing: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
    connecting: Option<JoinHandle<()>>,
    io_tx: mpsc::UnboundedSender<Io>,
    io_rx: mpsc::UnboundedReceiver<Io>,
}

impl Slot {
    fn new(config: Config, seed: u64) -> Self {
        let (io_tx, io_rx) = mpsc::unbounded_channel();
        Self {
            session: Session::new(config, seed),
            timers: [None; 4],
            writer: None,
            conn: 0,
            flushing: None,
            reader: None,
            connecting: None,
            io_tx,
            io_rx,
        }
    }

    fn next_deadline(&self) -> Option<(Instant, Timer)> {
        Timer::ALL
            .iter()
            .filter_map(|t| self.timers[*t as usize].map(|at| (at, *t)))
            .min_by_key(|(at, _)| *at)
    }

    fn attach(&mut self, stream: TcpStream) {
        self.detach();
        let (read, write) = stream.into_split();
        self.conn += 1;
        self.writer = Some(Writer::spawn(
            write,
            self.conn,
            self.stall_limit(),
            self.io_tx.clone(),
        ));
        self.reader = Some(tokio::spawn(read_frames(read, self.io_tx.clone())));
    }

    /// How long the peer may leave our writes undrained: the negotiated hold time, the OPEN
    /// wait before that.
    fn stall_limit(&self) -> Duration {
        let cfg = self.session.config();
        match self.session.negotiated().map(|n| n.hold_time_secs) {
            Some(0) => NO_HOLD_STALL,
            Some(h) => Duration::from_secs(u64::from(h)),
            None if cfg.hold_time_secs == 0 => NO_HOLD_STALL,
            None => cfg.open_timeout,
        }
    }

    /// Waits (at most [`CLOSE_GRACE`]) for the NOTIFICATION of a closed connection to go out.
    async fn flushed(&mut self) {
        if let Some(f) = self.flushing.take() {
            let _ = tokio::time::timeout(CLOSE_GRACE + Duration::from_millis(100), f).await;
        }
    }

    fn detach(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        if let Some(c) = self.connecting.take() {
            c.abort();
        }
        // A connection dropped without `Close` (replaced, collision) goes at once.
        if let Some(w) = self.writer.take() {
            w.task.abort();
        }
        // Drop what the old connection still had queued.
        while self.io_rx.try_recv().is_ok() {}
    }

    /// Feeds one event and carries out the resulting actions. Returns the state changes.
    async fn handle(
        &mut self,
        event: Event,
        connect: &ConnectOptions,
    ) -> Vec<(SessionState, Option<DownReason>)> {
        let now = Instant::now();
        let actions = self.session.handle(now.into_std(), event);
        let mut changes = Vec::new();
        for action in actions {
            match action {
                Action::Connect => {
                    let tx = self.io_tx.clone();
                    let mut options = connect.clone();
                    // Let the FSM's own connect timer fire first: it reports `NoAnswer`.
                    options.timeout =
                        self.session.config().connect_timeout + std::time::Duration::from_secs(1);
                    self.connecting = Some(tokio::spawn(async move {
                        let _ = tx.send(Io::Connected(net::connect(&options).await));
                    }));
                }
                Action::Send(bytes) => {
                    if let Some(w) = self.writer.as_ref()
                        && let Some(queued) = w.send(bytes)
                    {
                        let _ = self.io_tx.send(Io::Stalled {
                            conn: self.conn,
                            queued_bytes: queued as u64,
                            waited: Duration::ZERO,
                        });
                    }
                }
                Action::Close => {
                    if let Some(w) = self.writer.take() {
                        self.flushing = w.close();
                    }
                    self.detach();
                }
                Action::ArmTimer { timer, at } => self.timers[timer as usize] = Some(Instant::from_std(at)),
                Action::StopTimer(timer) => self.timers[timer as usize] = None,
                Action::StateChanged { to, reason, .. } => changes.push((to, reason)),
            }
        }
        if let Some(w) = self.writer.as_ref() {
            let limit = self.stall_limit().as_millis() as u64;
            if w.stall_ms.swap(limit, Ordering::Relaxed) != limit {
                w.wake.notify_one();
            }
        }
        changes
    }

    /// The session event for an I/O report, `None` for a stale one (an older connection's).
    fn io_event(&mut self, io: Io) -> Option<Event> {
        Some(match io {
            Io::Connected(Ok(stream)) => {
                self.connecting = None;
                if self.writer.is_some() {
                    return None;
                }
                self.attach(stream);
                Event::Connected { inbound: false }
            }
            Io::Connected(Err(e)) => {
                self.connecting = None;
                Event::ConnectFailed { error: e.to_string() }
            }
            Io::Frame(f) => decode(self, &f),
            Io::Lost(error) => Event::ConnectionLost { error },
            Io::WriteFailed { conn, error } if conn == self.conn && self.writer.is_some() => {
                Event::ConnectionLost { error: Some(error) }
            }
            Io::Stalled {
                conn,
                queued_bytes,
                waited,
            } if conn == self.conn && self.writer.is_some() => Event::SendStalled {
                queued_bytes,
                waited_secs: waited.as_secs(),
            },
            Io::WriteFailed { .. } | Io::Stalled { .. } => return None,
        })
    }
}

impl Drop for Slot {
    /// A slot let go (a collision's loser, a restart) takes its connection with it: the
    /// reader and writer tasks would otherwise keep the socket open.
    fn drop(&mut self) {
        self.detach();
    }
}

async fn read_frames(mut read: OwnedReadHalf, tx: mpsc::UnboundedSender<Io>) {
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        // Split off every complete frame; the session decodes it with its negotiated context.
        loop {
            match wire::frame_len(&buf) {
                Ok(Some(len)) if buf.len() >= len => {
                    let frame = buf.split_to(len).freeze();
                    if tx.send(Io::Frame(frame)).is_err() {
                        return;
                    }
                }
                Ok(_) => break,
                // A bad header: hand the bytes over so the session answers with the right
                // NOTIFICATION, then stop reading.
                Err(_) => {
                    let _ = tx.send(Io::Frame(buf.split().freeze()));
                    return;
                }
            }
        }
        match read.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = tx.send(Io::Lost(None));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Io::Lost(Some(e.to_string())));
                return;
            }
        }
    }
}

fn decode(slot: &Slot, frame: &[u8]) -> Event {
    match Message::decode(frame, &slot.session.decode_ctx()) {
        Ok(m) => Event::Message(m),
        Err(e) => Event::Malformed(e),
    }
}

/// The settings a peer task starts with.
#[derive(Debug)]
pub struct PeerStart {
    pub key: PeerKey,
    pub config: Config,
    pub connect: ConnectOptions,
    pub routes: Routes,
    pub seed: u64,
}

/// Spawns the task of one peer.
pub fn spawn(start: PeerStart) -> PeerHandle {
    let (commands, rx) = mpsc::unbounded_channel();
    let report = PeerReport {
        key: start.key,
        state: SessionState::Idle,
        since: SystemTime::now(),
        last_down_reason: None,
        prefixes_sent: PrefixCounts::default(),
        stats: Stats::default(),
        flaps: 0,
        failures: Default::default(),
    };
    let (report_tx, report_rx) = watch::channel(report);
    let span = tracing::info_span!("peer", peer = %start.key);
    let task = tokio::spawn(tracing::Instrument::instrument(run(start, rx, report_tx), span));
    PeerHandle {
        commands,
        report: report_rx,
        task,
    }
}

async fn run(
    start: PeerStart,
    mut commands: mpsc::UnboundedReceiver<Command>,
    report: watch::Sender<PeerReport>,
) {
    let PeerStart {
        key: _,
        mut config,
        mut connect,
        routes,
        seed,
    } = start;
    let local_id = config.router_id;
    let mut primary = Slot::new(config.clone(), seed);
    let mut secondary: Option<Slot> = None;
    let mut routes_now = routes;
    let apply = |changes: Vec<(SessionState, Option<DownReason>)>,
                 slot: &Slot,
                 report: &watch::Sender<PeerReport>| {
        for (state, reason) in changes {
            report.send_modify(|r| {
                if r.state == SessionState::Established && state != SessionState::Established {
                    r.flaps += 1;
                } else if state == SessionState::Idle
                    && let Some(reason) = reason.as_ref().filter(|r| {
                        // Our own stops are not failures.
                        !matches!(
                            r,
                            DownReason::AdminShutdown
                                | DownReason::ConfigChanged { .. }
                                | DownReason::Restarting
                        )
                    })
                {
                    *r.failures.entry(reason.label()).or_default() += 1;
                }
                if state != r.state {
                    r.since = SystemTime::now();
                }
                r.state = state;
                if reason.is_some() {
                    r.last_down_reason = reason.clone();
                }
            });
            match &reason {
                Some(reason) => tracing::info!(%state, %reason, "session state"),
                None => tracing::info!(%state, "session state"),
            }
        }
        report.send_modify(|r| {
            let new = slot.session.stats();
            // RFC 7606 outcomes keep the session up; they are logged (and counted) here.
            let more = |old: u64, new: u64| new.checked_sub(old).filter(|n| *n > 0);
            if let Some(n) = more(r.stats.treat_as_withdraw, new.treat_as_withdraw) {
                tracing::warn!(
                    updates = n,
                    "UPDATE with a malformed attribute treated as withdraw (RFC 7606)"
                );
            }
            if let Some(n) = more(r.stats.attributes_discarded, new.attributes_discarded) {
                tracing::warn!(attributes = n, "malformed path attribute discarded (RFC 7606)");
            }
            r.prefixes_sent = slot.session.prefixes_sent();
            r.stats = new;
        });
    };
    let changes = primary.handle(Event::Routes(routes_now.clone()), &connect).await;
    apply(changes, &primary, &report);
    let changes = primary.handle(Event::Start, &connect).await;
    apply(changes, &primary, &report);

    loop {
        let primary_deadline = primary.next_deadline();
        let secondary_deadline = secondary.as_ref().and_then(Slot::next_deadline);
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { return };
                match command {
                    Command::Routes(r) => {
                        routes_now = r;
                        let changes = primary.handle(Event::Routes(routes_now.clone()), &connect).await;
                        apply(changes, &primary, &report);
                        if let Some(s) = secondary.as_mut() {
                            s.handle(Event::Routes(routes_now.clone()), &connect).await;
                        }
                    }
                    Command::Inbound(stream) => {
                        let state = primary.session.state();
                        if primary.session.accepts_connection() && primary.writer.is_none() {
                            if let Some(c) = primary.connecting.take() { c.abort(); }
                            primary.attach(stream);
                            let changes = primary.handle(Event::Connected { inbound: true }, &connect).await;
                            apply(changes, &primary, &report);
                        } else if state == SessionState::Established || secondary.is_some() {
                            drop(stream);
                        } else {
                            // RFC 4271 §6.8: the peer's connection gets our OPEN and runs
                            // until a BGP identifier decides. It is started passive (it
                            // must not connect by itself); its state changes are logged.
                            let mut passive = config.clone();
                            passive.passive = true;
                            let mut s = Slot::new(passive, seed ^ 0x5eed);
                            s.handle(Event::Routes(routes_now.clone()), &connect).await;
                            s.handle(Event::Start, &connect).await;
                            s.attach(stream);
                            let changes = s.handle(Event::Connected { inbound: true }, &connect).await;
                            log_collision(&changes);
                            secondary = Some(s);
                        }
                    }
                    Command::Restart { config: c, connect: o, what, hard } => {
                        config = *c;
                        connect = *o;
                        let stop = if hard { Stop::IdentityChanged { what } } else { Stop::ConfigChanged { what } };
                        let changes = primary.handle(Event::Stop(stop), &connect).await;
                        apply(changes, &primary, &report);
                        primary.detach();
                        secondary = None;
                        primary = Slot::new(config.clone(), seed.wrapping_add(1));
                        let changes = primary.handle(Event::Routes(routes_now.clone()), &connect).await;
                        apply(changes, &primary, &report);
                        let changes = primary.handle(Event::Start, &connect).await;
                        apply(changes, &primary, &report);
                    }
                    Command::Update { config: c, connect: o } => {
                        primary.session.update_live(&c);
                        config = *c;
                        connect = *o;
                    }
                    Command::Stop(stop) => {
                        let changes = primary.handle(Event::Stop(stop), &connect).await;
                        apply(changes, &primary, &report);
                        primary.detach();
                        // The NOTIFICATION goes out before the task ends (the process may
                        // exit next), but a peer that does not read holds us CLOSE_GRACE at most.
                        primary.flushed().await;
                        return;
                    }
                }
            }
            _ = sleep_until(primary_deadline) => {
                let timer = primary_deadline.map(|(_, t)| t).expect("armed");
                // Fired: forget the deadline. The session re-arms it if it wants it again; a
                // deadline kept here that the session already dropped would fire forever.
                primary.timers[timer as usize] = None;
                let changes = primary.handle(Event::Timer(timer), &connect).await;
                apply(changes, &primary, &report);
            }
            _ = sleep_until(secondary_deadline) => {
                if let Some(s) = secondary.as_mut() {
                    let timer = secondary_deadline.map(|(_, t)| t).expect("armed");
                    s.timers[timer as usize] = None;
                    log_collision(&s.handle(Event::Timer(timer), &connect).await);
                }
            }
            io = primary.io_rx.recv() => {
                let Some(event) = primary.io_event(io.expect("slot holds a sender")) else { continue };
                let changes = primary.handle(event, &connect).await;
                apply(changes, &primary, &report);
            }
            io = async { match secondary.as_mut() { Some(s) => s.io_rx.recv().await, None => std::future::pending().await } } => {
                if let Some(s) = secondary.as_mut() {
                    let event = match io.expect("slot holds a sender") {
                        Io::Connected(_) => continue,
                        io => match s.io_event(io) { Some(e) => e, None => continue },
                    };
                    log_collision(&s.handle(event, &connect).await);
                }
            }
        }
        // Collision resolution once a remote identifier is known on either connection.
        if let Some(s) = secondary.as_ref() {
            let remote = s
                .session
                .remote_router_id()
                .or(primary.session.remote_router_id());
            let secondary_dead = s.session.state() == SessionState::Idle;
            if secondary_dead {
                secondary = None;
            } else if let Some(remote) = remote
                && primary.session.state() != SessionState::Idle
            {
                // The primary is our outbound attempt, the secondary the peer's connection.
                let keep = resolve_collision(local_id, config.local_asn, remote, config.peer_asn);
                let mut s = secondary.take().expect("checked");
                tracing::info!(?keep, %remote, "connection collision resolved");
                if keep == Keep::RemotelyInitiated {
                    let changes = primary.handle(Event::CollisionDump, &connect).await;
                    apply(changes, &primary, &report);
                    primary.detach();
                    primary = promote(s, &config);
                    report.send_modify(|r| r.state = primary.session.state());
                } else {
                    log_collision(&s.handle(Event::CollisionDump, &connect).await);
                    s.detach();
                }
            } else if primary.session.state() == SessionState::Idle {
                // Our attempt failed: the peer's connection simply becomes the session.
                primary = promote(secondary.take().expect("checked"), &config);
                report.send_modify(|r| r.state = primary.session.state());
            }
        }
    }
}

/// The collision connection becomes the session: it takes the configured passive mode
/// back (it ran passive so as not to connect by itself).
fn promote(mut slot: Slot, config: &Config) -> Slot {
    slot.session.update_live(config);
    slot
}

/// State changes of the collision connection (not the session's status: that is the
/// primary's until this one wins).
fn log_collision(changes: &[(SessionState, Option<DownReason>)]) {
    for (state, reason) in changes {
        match reason {
            Some(reason) => tracing::info!(%state, %reason, "collision connection state"),
            None => tracing::info!(%state, "collision connection state"),
        }
    }
}

async fn sleep_until(deadline: Option<(Instant, Timer)>) {
    match deadline {
        Some((at, _)) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A key from a password, never logged.
pub fn md5_key(password: Option<&[u8]>) -> Option<Md5Key> {
    password.and_then(|p| Md5Key::new(p.to_vec()).ok())
}
