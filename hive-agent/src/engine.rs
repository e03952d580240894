//! The event loop that drives the swarm engines: one task owns every [`Swarm`] of the agent,
//! takes inputs as [`Cmd`]s, and carries out what the engines ask (send, fetch, deliver,
//! connect, disconnect). It follows the sans-IO rule: after every input, drain `poll_output`,
//! then sleep until the earliest `poll_timeout` or the next input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hive_core::cache::{FragmentCache, LiveWindowCache, VodCache};
use hive_core::time::{Clock, Instant};
use hive_core::transport::{Class, Connection};
use hive_core::wire::{ByeReason, Hello, Message};
use hive_core::{ContentId, FragmentId, Locality, PeerAddr, PeerId, PeerInfo};
use hive_overlay::{FragmentInfo, Input, Output, Swarm};
use tokio::sync::{mpsc, oneshot};

use crate::peers::{WriterCmd, next_conn_id, spawn_dial, spawn_io};
use crate::{Shared, metrics::ContentSnapshot};

/// The answer to a player's fragment request.
pub(crate) type PlayerReply = oneshot::Sender<Result<Bytes, String>>;

/// An input of the engine task.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A player wants a fragment.
    Fetch {
        info: FragmentInfo,
        live: bool,
        deadline: Option<Instant>,
        reply: PlayerReply,
    },
    /// A manifest listed these fragments.
    Publish {
        content: ContentId,
        live: bool,
        fragments: Vec<FragmentInfo>,
    },
    /// A connection opened by a peer, with its Hello.
    Inbound {
        conn: Arc<dyn Connection>,
        hello: Hello,
    },
    /// A dial succeeded.
    Dialled {
        content: ContentId,
        info: PeerInfo,
        conn: Arc<dyn Connection>,
    },
    /// A message from a connection.
    Message { conn_id: u64, message: Message },
    /// A connection ended.
    Closed { conn_id: u64 },
    /// A peer sent something undecodable.
    ProtocolError { conn_id: u64 },
    /// Data bytes the transport accepted.
    Sent { conn_id: u64, bytes: u64 },
    /// Peers to consider (tracker, or given by hand).
    Candidates {
        content: Option<ContentId>,
        peers: Vec<PeerInfo>,
    },
    /// Where the tracker placed this agent.
    Locality(Locality),
    /// An input of one stream's engine, forwarded as it is: origin results, failed dials,
    /// the tracker's role, admission tokens, trusted hashes.
    Swarm { content: ContentId, input: Input },
    /// Streams no player uses any more.
    Forget(Vec<ContentId>),
    /// Who sets the connections' congestion-control priority from now on.
    Priority(crate::PriorityMode),
    /// Stop: say Bye to everyone.
    Shutdown(oneshot::Sender<()>),
}

struct Slot {
    swarm: Swarm,
    live: bool,
}

struct Conn {
    content: ContentId,
    peer: PeerId,
    /// The transport's connection (its congestion-control priority follows the engine).
    conn: Arc<dyn Connection>,
    writer: mpsc::Sender<WriterCmd>,
    /// Whether this side dialled (the duplicate-connection tie-break).
    dialled: bool,
    /// The token of the peer's last admitted `Hello` (with tokens required): checked again
    /// every [`TOKEN_RECHECK`], so that it must be renewed (a re-sent `Hello`) before it
    /// expires.
    token: Option<Bytes>,
}

/// Candidates given before the stream was known, per content (or for any).
type Pending = Vec<(Option<ContentId>, Vec<PeerInfo>)>;

pub(crate) struct Engine {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Cmd>,
    swarms: HashMap<ContentId, Slot>,
    conns: HashMap<u64, Conn>,
    by_peer: HashMap<(ContentId, PeerId), u64>,
    waiting: HashMap<FragmentId, Vec<PlayerReply>>,
    live_cache: Arc<LiveWindowCache>,
    vod_cache: Arc<VodCache>,
    pending_candidates: Pending,
    locality: Locality,
    tokens: HashMap<ContentId, Bytes>,
    /// When neighbours' tokens are next checked for expiry.
    next_token_check: Instant,
    /// Who sets the connections' congestion-control priority.
    priority: crate::PriorityMode,
    last_snapshot: Instant,
    /// Something changed since the last snapshot of the counters.
    dirty: bool,
}

/// Sleeps until `clock` reads `t`; for ever for [`Instant::MAX`], "no timer" (a sleep until
/// the far point it maps to would, once a paused test clock had jumped there, end at once, and
/// the loop would spin).
async fn sleep_until(clock: &dyn Clock, t: Instant) {
    if t == Instant::MAX {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(clock.to_std(t))).await;
}

/// Inputs queued for the engine task, at most: senders wait when it is full.
pub(crate) const QUEUE: usize = 4096;

/// The counters readers see are at most this old.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

/// How often neighbours' tokens are checked again: a neighbour whose token expired without a
/// renewed one in a re-sent `Hello` is dropped within this.
pub(crate) const TOKEN_RECHECK: Duration = Duration::from_secs(1);

impl Engine {
    pub(crate) fn new(shared: Arc<Shared>, tx: mpsc::Sender<Cmd>) -> Self {
        let cfg = &shared.cfg;
        let live_cache = Arc::new(LiveWindowCache::new(cfg.live_window));
        let vod_cache = Arc::new(VodCache::new(cfg.vod_cache_bytes));
        let locality = cfg.locality.clone();
        let priority = cfg.priority;
        shared.metrics.set_priority_mode(priority);
        Engine {
            shared,
            tx,
            swarms: HashMap::new(),
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            waiting: HashMap::new(),
            live_cache,
            vod_cache,
            pending_candidates: Vec::new(),
            locality,
            tokens: HashMap::new(),
            next_token_check: Instant::ZERO,
            priority,
            last_snapshot: Instant::ZERO,
            dirty: false,
        }
    }

    /// Runs until [`Cmd::Shutdown`] or until every sender is gone.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        loop {
            let deadline = self
                .swarms
                .values()
                .filter_map(|s| s.swarm.poll_timeout())
                .min()
                .unwrap_or(Instant::MAX)
                .min(if self.dirty {
                    self.last_snapshot + SNAPSHOT_EVERY
                } else {
                    Instant::MAX
                })
                .min(self.token_deadline());
            let cmd = tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => Some(c),
                    None => break,
                },
                _ = sleep_until(&*self.shared.clock, deadline) => None,
            };
            if let Some(cmd) = cmd {
                if let Cmd::Shutdown(done) = cmd {
                    self.shutdown();
                    let _ = done.send(());
                    return;
                }
                self.supervised(cmd);
                // Take what else is queued before the timers.
                for _ in 0..256 {
                    match rx.try_recv() {
                        Ok(Cmd::Shutdown(done)) => {
                            self.shutdown();
                            let _ = done.send(());
                            return;
                        }
                        Ok(c) => self.supervised(c),
                        Err(_) => break,
                    }
                }
            }
            self.timers();
        }
        self.shutdown();
    }

    /// Handles `cmd`; should anything in it panic (a bug, reached by some input), the stream it
    /// concerns is restarted — its swarm, connections and waiting players dropped, the cache
    /// kept — and every other stream goes on. The engine task itself never dies of it.
    fn supervised(&mut self, cmd: Cmd) {
        let content = self.content_of(&cmd);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(cmd)));
        if r.is_err() {
            self.restart(content);
        }
    }

    /// The stream a command concerns, if one.
    fn content_of(&self, cmd: &Cmd) -> Option<ContentId> {
        match cmd {
            Cmd::Fetch { info, .. } => Some(info.id.content),
            Cmd::Publish { content, .. }
            | Cmd::Dialled { content, .. }
            | Cmd::Swarm { content, .. } => Some(*content),
            Cmd::Inbound { hello, .. } => Some(hello.content),
            Cmd::Message { conn_id, .. }
            | Cmd::Closed { conn_id }
            | Cmd::ProtocolError { conn_id }
            | Cmd::Sent { conn_id, .. } => self.conns.get(conn_id).map(|c| c.content),
            Cmd::Candidates { content, .. } => *content,
            Cmd::Locality(_) | Cmd::Forget(_) | Cmd::Priority(_) | Cmd::Shutdown(_) => None,
        }
    }

    /// Drops the stream `content` after a panic in its handling (see [`Engine::supervised`]):
    /// its players are answered with an error, its connections closed; the next request for
    /// it starts it afresh. Without a stream to blame, nothing is dropped.
    fn restart(&mut self, content: Option<ContentId>) {
        self.shared
            .metrics
            .engine_restarts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(c) = content else {
            tracing::error!("the engine panicked handling an input; it goes on");
            return;
        };
        tracing::error!(content = %c.short(), "the engine panicked in a stream; restarting that stream");
        let conns: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, x)| x.content == c)
            .map(|(id, _)| *id)
            .collect();
        for id in conns {
            if let Some(x) = self.conns.remove(&id) {
                let _ = x.writer.try_send(WriterCmd::Close);
                self.by_peer.remove(&(x.content, x.peer));
            }
        }
        let waiting: Vec<FragmentId> = self
            .waiting
            .keys()
            .filter(|f| f.content == c)
            .copied()
            .collect();
        for f in waiting {
            for r in self.waiting.remove(&f).unwrap_or_default() {
                let _ = r.send(Err(
                    "the stream was restarted after an internal error".into()
                ));
            }
        }
        self.swarms.remove(&c);
        self.shared.left(c);
    }

    /// When neighbours' tokens must be checked next ([`Instant::MAX`]: none to check).
    fn token_deadline(&self) -> Instant {
        if self.shared.swarms.token_check.is_some()
            && self.conns.values().any(|c| c.token.is_some())
        {
            self.next_token_check
        } else {
            Instant::MAX
        }
    }

    /// Checks every neighbour's last token again at `now` (tokens expire): a neighbour whose
    /// token no longer passes, and that sent no renewed one, is dropped.
    fn recheck_tokens(&mut self, now: Instant) {
        if now < self.token_deadline() {
            return;
        }
        self.next_token_check = now + TOKEN_RECHECK;
        let Some(check) = self.shared.swarms.token_check.clone() else {
            return;
        };
        let expired: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.token
                    .as_ref()
                    .is_some_and(|t| !check(t, c.peer, c.content))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(c) = self.conns.get(&id) {
                tracing::info!(
                    peer = %c.peer.short(),
                    content = %c.content.short(),
                    "the neighbour's token expired and no renewed one came; dropped"
                );
            }
            self.shared
                .metrics
                .tokens_expired
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.dirty = true;
            self.drop_conn(id, true);
        }
    }

    fn timers(&mut self) {
        let t = self.shared.now();
        self.recheck_tokens(t);
        // Players that went away (their HTTP request closed: a seek, a quality switch, a tab
        // closed) withdraw their requests, so the swarm stops fetching for nobody.
        let gone: Vec<FragmentId> = self
            .waiting
            .iter_mut()
            .filter_map(|(id, replies)| {
                replies.retain(|r| !r.is_closed());
                replies.is_empty().then_some(*id)
            })
            .collect();
        // What timers change is published too (the counters were refreshed only after a
        // command, so a cancel or a timeout alone never reached the stats).
        if !gone.is_empty() {
            self.dirty = true;
        }
        for id in gone {
            self.waiting.remove(&id);
            if let Some(s) = self.swarms.get_mut(&id.content) {
                s.swarm.handle_player_cancel(t, id);
            }
            self.drain(id.content);
        }
        let due: Vec<ContentId> = self
            .swarms
            .iter()
            .filter(|(_, s)| s.swarm.poll_timeout().is_some_and(|d| d <= t))
            .map(|(c, _)| *c)
            .collect();
        if !due.is_empty() {
            self.dirty = true;
        }
        for c in due {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if let Some(s) = self.swarms.get_mut(&c) {
                    s.swarm.handle_timeout(t);
                }
                self.drain(c);
            }));
            if r.is_err() {
                self.restart(Some(c));
            }
        }
        if self.dirty && t.saturating_duration_since(self.last_snapshot) >= SNAPSHOT_EVERY {
            self.last_snapshot = t;
            self.dirty = false;
            self.snapshot();
        }
    }

    fn snapshot(&self) {
        let per: Vec<ContentSnapshot> = self
            .swarms
            .iter()
            .map(|(c, s)| ContentSnapshot {
                content: *c,
                live: s.live,
                policy: s.swarm.policy_name(),
                role: s.swarm.me().role,
                stats: s.swarm.stats(),
                neighbours: s
                    .swarm
                    .neighbours()
                    .iter()
                    .map(|v| crate::metrics::NeighbourSnapshot {
                        peer: v.info.id,
                        role: v.info.role,
                        bytes_from: v.bytes_from,
                        bytes_to: v.bytes_to,
                        throughput_bps: v.throughput_bps,
                        upload_kbps: v.info.upload_kbps,
                        inflight_requests: v.inflight_requests,
                    })
                    .collect(),
            })
            .collect();
        let cache = (self.live_cache.stats(), self.vod_cache.stats());
        self.shared.metrics.publish(per, cache, self.conns.len());
    }

    fn swarm_for(&mut self, content: ContentId, live: bool) -> &mut Slot {
        let shared = self.shared.clone();
        let pending = &mut self.pending_candidates;
        let tokens = &self.tokens;
        let locality = &self.locality;
        let live_cache = &self.live_cache;
        let vod_cache = &self.vod_cache;
        let tx = &self.tx;
        let priority = self.priority;
        self.swarms.entry(content).or_insert_with(|| {
            let t = shared.now();
            let cache: Arc<dyn FragmentCache> = if let Some(c) = &shared.swarms.cache {
                c.clone()
            } else if live {
                live_cache.clone()
            } else {
                vod_cache.clone()
            };
            let mut me = PeerInfo::new(shared.peer_id, PeerAddr::Memory(0));
            me.addrs = shared.transport.local_addrs();
            me.locality = locality.clone();
            me.role = shared.cfg.role;
            me.upload_kbps = shared.cfg.upload_kbps;
            let mut cfg = shared.cfg.swarm.clone();
            cfg.priority_follows_urgency &= priority == crate::PriorityMode::Urgency;
            if cfg.role != shared.cfg.role {
                // The settings are a viewer's; another role starts with its own profile.
                hive_overlay::RoleProfile::of(shared.cfg.role).apply_as(shared.cfg.role, &mut cfg);
            }
            cfg.verify = if shared.cfg.integrity.requires_trusted_hash() {
                hive_overlay::Verify::Trusted
            } else {
                hive_overlay::Verify::SenderHash
            };
            if !live {
                // An on-demand title's listing is kept whole: any part may be asked for.
                cfg.known_window = None;
            }
            if let Some(tok) = tokens.get(&content) {
                cfg.token = tok.clone();
            }
            let policy = (shared.swarms.policy)(content, shared.peer_id);
            let mut swarm = Swarm::new(t, me, content, cfg, policy, cache);
            let mut keep = Vec::new();
            for (c, peers) in pending.drain(..) {
                match c {
                    Some(c) if c != content => keep.push((Some(c), peers)),
                    _ => swarm.handle_candidates(t, peers),
                }
            }
            *pending = keep;
            tracing::info!(content = %content.short(), live, "joined swarm");
            shared.joined(content, tx.clone());
            Slot { swarm, live }
        })
    }

    fn handle(&mut self, cmd: Cmd) {
        self.dirty = true;
        let t = self.shared.now();
        match cmd {
            Cmd::Fetch {
                info,
                live,
                deadline,
                reply,
            } => {
                let content = info.id.content;
                let id = info.id;
                self.waiting.entry(id).or_default().push(reply);
                self.swarm_for(content, live)
                    .swarm
                    .handle_player_request(t, info, deadline);
                self.drain(content);
            }
            Cmd::Publish {
                content,
                live,
                fragments,
            } => {
                // A master playlist lists no fragments and does not say whether the stream is
                // live: the swarm (and its cache) waits for a media playlist.
                if fragments.is_empty() && !self.swarms.contains_key(&content) {
                    return;
                }
                self.swarm_for(content, live)
                    .swarm
                    .handle_fragments_published(t, fragments);
                self.drain(content);
            }
            Cmd::Inbound { conn, hello } => self.inbound(conn, hello),
            Cmd::Dialled {
                content,
                info,
                conn,
            } => {
                if !self.swarms.contains_key(&content) {
                    conn.abort();
                    return;
                }
                let mut info = info;
                if let Some(a) = conn.remote_addr() {
                    info.addrs = vec![PeerAddr::Socket(a)];
                }
                self.adopt(content, info, conn, true);
            }
            Cmd::Message { conn_id, message } => {
                let Some(c) = self.conns.get(&conn_id) else {
                    return;
                };
                let (content, peer) = (c.content, c.peer);
                if let Message::Hello(h) = &message {
                    // A first Hello, or one re-sent with a role or a renewed token: for this
                    // connection's stream only.
                    if h.content != content || !self.admit(h, peer) {
                        self.drop_conn(conn_id, true);
                        return;
                    }
                    self.admitted(conn_id, h);
                }
                if let Some(s) = self.swarms.get_mut(&content) {
                    s.swarm.handle_message(t, peer, message);
                }
                self.drain(content);
            }
            Cmd::Closed { conn_id } => self.drop_conn(conn_id, false),
            Cmd::ProtocolError { conn_id } => self.drop_conn(conn_id, true),
            Cmd::Sent { conn_id, bytes } => {
                let Some(c) = self.conns.get(&conn_id) else {
                    return;
                };
                let (content, peer) = (c.content, c.peer);
                if let Some(s) = self.swarms.get_mut(&content) {
                    s.swarm.handle_sent(t, peer, bytes);
                }
                self.drain(content);
            }
            Cmd::Candidates { content, peers } => {
                let targets: Vec<ContentId> = match content {
                    Some(c) if self.swarms.contains_key(&c) => vec![c],
                    Some(c) => {
                        self.pending_candidates.push((Some(c), peers));
                        return;
                    }
                    None if self.swarms.is_empty() => {
                        self.pending_candidates.push((None, peers));
                        return;
                    }
                    None => self.swarms.keys().copied().collect(),
                };
                for c in targets {
                    if let Some(s) = self.swarms.get_mut(&c) {
                        s.swarm.handle_candidates(t, peers.clone());
                    }
                    self.drain(c);
                }
            }
            Cmd::Locality(l) => {
                self.locality = l.clone();
                for s in self.swarms.values_mut() {
                    s.swarm.set_locality(l.clone());
                }
            }
            Cmd::Swarm { content, input } => {
                match &input {
                    Input::Token(token) => {
                        self.tokens.insert(content, token.clone());
                        // Later handshakes carry it (the swarm re-sends its Hello to open
                        // connections).
                        self.shared.handshake.set_own(content, token.clone());
                    }
                    Input::Role(role) => {
                        tracing::info!(content = %content.short(), ?role, "the tracker set this agent's role");
                    }
                    _ => {}
                }
                if let Some(s) = self.swarms.get_mut(&content) {
                    s.swarm.handle_input(t, input);
                    self.drain(content);
                }
            }
            Cmd::Forget(contents) => {
                for c in contents {
                    let ids: Vec<u64> = self
                        .conns
                        .iter()
                        .filter(|(_, x)| x.content == c)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in ids {
                        self.drop_conn(id, true);
                    }
                    self.swarms.remove(&c);
                    self.shared.left(c);
                }
            }
            Cmd::Priority(mode) => self.set_priority(mode),
            Cmd::Shutdown(_) => {}
        }
    }

    /// Whether the engines set priorities from urgency (the configuration allows it, and no
    /// fixed priority overrides it).
    fn follows_urgency(&self) -> bool {
        self.priority == crate::PriorityMode::Urgency
            && self.shared.cfg.swarm.priority_follows_urgency
    }

    /// From now on, `mode` sets the connections' congestion-control priority.
    fn set_priority(&mut self, mode: crate::PriorityMode) {
        self.priority = mode;
        self.shared.metrics.set_priority_mode(mode);
        let t = self.shared.now();
        let follow = self.follows_urgency();
        let contents: Vec<ContentId> = self.swarms.keys().copied().collect();
        for c in contents {
            if let Some(s) = self.swarms.get_mut(&c) {
                s.swarm.set_priority_follows_urgency(t, follow);
            }
            self.drain(c);
        }
        if let crate::PriorityMode::Fixed(p) = mode {
            for c in self.conns.values() {
                self.apply_priority(&c.conn, p);
            }
        }
        tracing::info!(priority = %mode, "congestion-control priority");
    }

    /// Sets one connection's priority (a transport or controller without the knob says so,
    /// and keeps its own).
    fn apply_priority(&self, conn: &Arc<dyn Connection>, p: f64) {
        match conn.set_cc_priority(p) {
            Ok(()) => self.shared.metrics.note_priority(p),
            Err(e) => tracing::trace!(error = %e, "no priority knob"),
        }
    }

    /// Whether a peer's Hello carries an admission token this agent accepts.
    fn admit(&self, h: &Hello, peer: PeerId) -> bool {
        match &self.shared.swarms.token_check {
            None => true,
            Some(check) => {
                let ok = h.peer == peer && check(&h.token, h.peer, h.content);
                if !ok {
                    tracing::info!(peer = %peer.short(), "Hello without a valid token; refused");
                }
                ok
            }
        }
    }

    /// Notes the token of an admitted `Hello`, to be checked again until it is renewed.
    fn admitted(&mut self, conn_id: u64, h: &Hello) {
        if self.shared.swarms.token_check.is_none() {
            return;
        }
        let first = self.conns.values().all(|c| c.token.is_none());
        if let Some(c) = self.conns.get_mut(&conn_id) {
            c.token = Some(h.token.clone());
        }
        if first {
            self.next_token_check = self.shared.now() + TOKEN_RECHECK;
        }
    }

    fn inbound(&mut self, conn: Arc<dyn Connection>, hello: Hello) {
        let peer = conn.remote_peer_id();
        if !self.swarms.contains_key(&hello.content) || !self.admit(&hello, peer) {
            conn.abort();
            return;
        }
        let mut info = PeerInfo::new(peer, PeerAddr::Memory(0));
        info.addrs = conn
            .remote_addr()
            .map(|a| vec![PeerAddr::Socket(a)])
            .unwrap_or_default();
        info.role = hello.role;
        info.upload_kbps = hello.upload_kbps;
        info.locality = hello.locality.clone();
        let content = hello.content;
        if self.adopt(content, info, conn, false) {
            if let Some(&id) = self.by_peer.get(&(content, peer)) {
                self.admitted(id, &hello);
            }
            let t = self.shared.now();
            if let Some(s) = self.swarms.get_mut(&content) {
                s.swarm.handle_message(t, peer, Message::Hello(hello));
            }
            self.drain(content);
        }
    }

    /// Registers a connection with its swarm; false when it was a duplicate and closed.
    fn adopt(
        &mut self,
        content: ContentId,
        info: PeerInfo,
        conn: Arc<dyn Connection>,
        dialled: bool,
    ) -> bool {
        let peer = info.id;
        let mut token = None;
        if let Some(&old) = self.by_peer.get(&(content, peer)) {
            // Both sides dialled at once: keep the connection the smaller id dialled, on both
            // sides, so exactly one survives.
            let keep_new = (self.shared.peer_id < peer) == dialled;
            let old_dialled = self.conns.get(&old).is_some_and(|c| c.dialled);
            if !keep_new || old_dialled == dialled {
                conn.abort();
                return false;
            }
            if let Some(c) = self.conns.remove(&old) {
                let _ = c.writer.try_send(WriterCmd::Close);
                // The peer's Hello may have come on the old one: its token is still the one
                // to check again as it expires.
                token = c.token;
            }
        }
        if let crate::PriorityMode::Fixed(p) = self.priority {
            self.apply_priority(&conn, p);
        }
        let conn_id = next_conn_id();
        let writer = spawn_io(
            conn_id,
            conn.clone(),
            self.tx.clone(),
            self.shared.swarms.limits.clone(),
        );
        self.conns.insert(
            conn_id,
            Conn {
                content,
                peer,
                conn,
                writer,
                dialled,
                token,
            },
        );
        let replaced = self.by_peer.insert((content, peer), conn_id).is_some();
        if !replaced && let Some(s) = self.swarms.get_mut(&content) {
            s.swarm.handle_peer_connected(self.shared.now(), info);
        }
        self.drain(content);
        true
    }

    fn drop_conn(&mut self, conn_id: u64, close: bool) {
        let Some(c) = self.conns.remove(&conn_id) else {
            return;
        };
        if close {
            let _ = c.writer.try_send(WriterCmd::Close);
        }
        if self.by_peer.get(&(c.content, c.peer)) == Some(&conn_id) {
            self.by_peer.remove(&(c.content, c.peer));
            if let Some(s) = self.swarms.get_mut(&c.content) {
                s.swarm.handle_peer_disconnected(self.shared.now(), c.peer);
            }
            self.drain(c.content);
        }
    }

    /// Carries out everything the swarm of `content` asks.
    fn drain(&mut self, content: ContentId) {
        loop {
            let Some(out) = self
                .swarms
                .get_mut(&content)
                .and_then(|s| s.swarm.poll_output())
            else {
                return;
            };
            match out {
                Output::Send { to, message, class } => self.send(content, to, message, class),
                Output::FetchOrigin { fragment, deadline } => {
                    self.fetch_origin(content, fragment, deadline)
                }
                Output::Deliver { fragment, data } => {
                    for r in self.waiting.remove(&fragment).unwrap_or_default() {
                        let _ = r.send(Ok(data.clone()));
                    }
                }
                Output::Failed { fragment } => {
                    for r in self.waiting.remove(&fragment).unwrap_or_default() {
                        let _ = r.send(Err("the fragment could not be fetched".into()));
                    }
                }
                Output::NeedHash { fragment } => {
                    // Fetch the list beside the manifest that lists it (deduplicated there).
                    let url = self
                        .shared
                        .proxy
                        .contents
                        .lock()
                        .manifest_of(fragment.content, fragment.track);
                    if let Some(url) = url {
                        crate::integrity::manifest_seen(
                            &self.shared,
                            &url,
                            content,
                            vec![fragment],
                        );
                    }
                }
                Output::BadPeer { peer, fragment } => {
                    tracing::warn!(
                        peer = %peer.short(),
                        %fragment,
                        "a peer served bytes that fail the trusted hash: dropped and refused"
                    );
                    // The hash was signed (the engine only bans on a trusted hash): the
                    // tracker hears of it and may stop introducing the peer.
                    if let Some(d) = self.shared.announce.discovery.clone() {
                        let me = self.shared.peer_id;
                        tokio::spawn(async move {
                            d.report_bad_peer(content, me, peer).await;
                        });
                    }
                }
                Output::Connect(info) => spawn_dial(
                    self.shared.transport.clone(),
                    content,
                    info,
                    self.tx.clone(),
                    Duration::from_secs(10),
                ),
                Output::CcPriority { peer, priority } => {
                    let conn = self
                        .by_peer
                        .get(&(content, peer))
                        .and_then(|id| self.conns.get(id));
                    // A fixed priority (set since the engine asked) wins.
                    if let Some(c) = conn
                        && self.priority == crate::PriorityMode::Urgency
                    {
                        self.apply_priority(&c.conn, priority);
                    }
                }
                Output::Disconnect { peer, reason } => {
                    if let Some(id) = self.by_peer.remove(&(content, peer)) {
                        tracing::debug!(peer = %peer.short(), ?reason, "disconnect");
                        if let Some(c) = self.conns.remove(&id) {
                            let _ = c.writer.try_send(WriterCmd::Close);
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, content: ContentId, to: PeerId, message: Message, class: Class) {
        let Some(id) = self.by_peer.get(&(content, to)) else {
            return;
        };
        if let Some(c) = self.conns.get(id) {
            if let Err(mpsc::error::TrySendError::Full(_)) =
                c.writer.try_send(WriterCmd::Send(message, class))
            {
                // It reads nothing we send, not even what the send window allows: drop it
                // rather than queue without bound.
                tracing::debug!(peer = %to.short(), "peer's send queue full; dropping it");
                let id = *id;
                self.drop_conn(id, true);
            }
        }
    }

    fn fetch_origin(&mut self, content: ContentId, fragment: FragmentInfo, _deadline: Instant) {
        let shared = self.shared.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let id = fragment.id;
            let result = shared
                .proxy
                .fetcher
                .get_once(&fragment.url, id.range, shared.cfg.origin_timeout)
                .await
                .map(|f| f.body)
                .map_err(|e| e.to_string());
            if let Err(e) = &result {
                tracing::debug!(url = %fragment.url, error = %e, "origin fetch failed");
            }
            let input = Input::Origin {
                fragment: id,
                result,
                hash: None,
            };
            let _ = tx.send(Cmd::Swarm { content, input }).await;
        });
    }

    fn shutdown(&mut self) {
        for (_, c) in self.conns.drain() {
            let _ = c.writer.try_send(WriterCmd::Send(
                Message::Bye(hive_core::wire::Bye {
                    reason: ByeReason::Leaving,
                    detail: "agent shutting down".into(),
                }),
                Class::Control,
            ));
            let _ = c.writer.try_send(WriterCmd::Close);
        }
        for (_, rs) in self.waiting.drain() {
            for r in rs {
                let _ = r.send(Err("agent shutting down".into()));
            }
        }
        self.snapshot();
    }
}
