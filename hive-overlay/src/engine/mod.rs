//! The swarm engine: one sans-IO state machine per agent and swarm.

mod fetch;
mod input;
mod known;
mod serve;
mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use hive_core::cache::FragmentCache;
use hive_core::overlay::{LocalView, NeighbourView, OverlayPolicy};
use hive_core::time::{Duration, Instant};
use hive_core::transport::Class;
use hive_core::wire::{Bye, ByeReason, Have, Hello, Message, Pong};
use hive_core::{ContentId, FragmentId, PeerId, PeerInfo, Role, SeqSet, TrackId};

pub use input::Input;
pub use types::{FragmentInfo, Output, SwarmConfig, SwarmStats, Verify};

use fetch::Want;
use serve::{Parked, Upload};

/// Most disjoint ranges kept of one neighbour's announcements per track (a live window is one
/// or a few; a peer announcing scattered fragments cannot make its view grow without bound).
const MAX_VIEW_RANGES: usize = 1024;

/// How often the cache expires idle tracks, old listings are forgotten and stale connection
/// attempts are dropped: as often as the default neighbour review, so that an agent wakes once
/// for both (the simulator's thousands of agents each woke 1.5 times a second for them).
const HOUSEKEEPING: Duration = Duration::from_secs(2);
/// An agent with fewer neighbours (connected or being dialled) reviews its neighbourhood as soon
/// as new candidates arrive, not at the next review.
const FEW: usize = 2;
/// Most peers taken from one peer-exchange message.
const MAX_EXCHANGED: usize = 32;
/// Largest upload capacity a neighbour's Hello is believed to offer (kbit/s): 1 Gbit/s. A
/// neighbour claiming more (to be chosen first) is taken at this.
const MAX_CLAIMED_UPLOAD_KBPS: u32 = 1_000_000;
/// Most peers remembered as refused for serving bad bytes (the oldest are forgotten first).
const MAX_BANNED: usize = 1024;
/// Tracker-listed roles remembered (the most recent), on which a neighbour's supernode or
/// seeder role is believed.
const MAX_VOUCHED: usize = 4096;
/// Most trusted hashes kept for fragments not listed yet (a hash service can be faster than
/// the manifest); the lowest fragments go first.
const MAX_EARLY_HASHES: usize = 4096;

/// A peer id's [head](PeerId::head): ordered as the ids are, so the keys of neighbours sorted
/// by id are sorted too, and nearly always distinct (ids are hashes).
#[inline]
fn id_key(peer: &PeerId) -> u64 {
    peer.head()
}

/// Whether two ids are equal, settled for different ids (nearly always, in the scans over
/// candidates) by their first eight bytes.
#[inline]
fn same_id(a: &PeerId, b: &PeerId) -> bool {
    id_key(a) == id_key(b) && a == b
}

/// Per-neighbour state beyond what policies see.
#[derive(Debug, Default)]
struct Link {
    /// Our requests to it: (request id, fragment), by increasing request id (ids are handed
    /// out in increasing order, so a new request goes at the end). A few at a time: a short
    /// list, without a tree's node allocations.
    requests: Vec<(u64, FragmentId)>,
    /// Whether its Hello arrived.
    hello: bool,
}

impl Link {
    /// Records a request; `request_id` is above every id recorded before.
    fn add_request(&mut self, request_id: u64, fragment: FragmentId) {
        debug_assert!(self.requests.last().is_none_or(|(r, _)| *r < request_id));
        self.requests.push((request_id, fragment));
    }

    /// The fragment asked for by `request_id`, if that request is open.
    fn request(&self, request_id: u64) -> Option<FragmentId> {
        self.requests
            .iter()
            .find(|(r, _)| *r == request_id)
            .map(|(_, f)| *f)
    }

    /// Closes a request; returns its fragment if it was open.
    fn take_request(&mut self, request_id: u64) -> Option<FragmentId> {
        let i = self.requests.iter().position(|(r, _)| *r == request_id)?;
        Some(self.requests.remove(i).1)
    }
}

/// The swarm engine of one agent in one swarm.
///
/// See the [crate docs](crate) for the driving loop.
pub struct Swarm {
    cfg: SwarmConfig,
    me: PeerInfo,
    content: ContentId,
    policy: Box<dyn OverlayPolicy>,
    cache: Arc<dyn FragmentCache>,
    /// Neighbours as policies see them, sorted by id (deterministic order).
    views: Vec<NeighbourView>,
    /// [`id_key`] of each neighbour, in the order of `views`: a neighbour is looked up on every
    /// message, by a search of this short array of words rather than of the views themselves.
    keys: Vec<u64>,
    /// Per-neighbour state beyond the views, in the order of `views`.
    links: Vec<Link>,
    candidates: Vec<PeerInfo>,
    connecting: BTreeMap<PeerId, Instant>,
    known: known::Known,
    wants: BTreeMap<FragmentId, Want>,
    next_request_id: u64,
    out: VecDeque<Output>,
    pending_have: BTreeMap<TrackId, SeqSet>,
    have_flush_at: Option<Instant>,
    uploads: VecDeque<Upload>,
    parked: Vec<Parked>,
    /// Neighbours' requests for fragments not listed yet but expected any moment (the next
    /// sequences of a known track): decided when the manifest lists them, refused if it does
    /// not in time.
    expected: Vec<Parked>,
    slot_freed: bool,
    /// Uploads whose last chunk was emitted but not yet reported sent: (peer, bytes to that
    /// peer still to be reported before it is). They hold their upload slot until then.
    draining: Vec<(PeerId, u64)>,
    /// Data bytes emitted per peer and not yet reported sent by the driver.
    unsent: BTreeMap<PeerId, u64>,
    upload_tokens: f64,
    upload_last_refill: Instant,
    upload_wake_at: Instant,
    next_review: Instant,
    next_expire: Instant,
    origin_bps: Option<u64>,
    /// Upload slots in use as the limit: `cfg.upload_slots`, or fewer when sized from the uplink.
    slots: usize,
    /// Highest bitrate listed so far (bit/s), from the fragments' sizes and durations.
    top_bps: u64,
    stats: SwarmStats,
    /// Peers that served bytes failing verification: never connected again (oldest first).
    banned: VecDeque<PeerId>,
    /// Roles the tracker listed peers with (the last [`MAX_VOUCHED`], oldest first in
    /// `vouched_order`): a supernode or seeder role is believed on this word, not the peer's.
    vouched: BTreeMap<PeerId, Role>,
    vouched_order: VecDeque<PeerId>,
    /// Trusted hashes of fragments not listed yet.
    early_hashes: BTreeMap<FragmentId, hive_core::ContentHash>,
    /// The congestion-control priority last asked of each uploading connection.
    cc_priority: BTreeMap<PeerId, f64>,
    /// When an upload becomes urgent next.
    urgency_wake: Option<Instant>,
}

/// Roles that draw a site's traffic and an uploader's priority: believed only on the tracker's
/// word (see [`Swarm::believed_role`]).
fn privileged(role: Role) -> bool {
    matches!(role, Role::Supernode | Role::Seeder)
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("me", &self.me.id)
            .field("policy", &self.policy.name())
            .field("neighbours", &self.views.len())
            .field("wants", &self.wants)
            .field("next_timeout", &self.poll_timeout())
            .finish()
    }
}

impl Swarm {
    /// An engine for `content`, as `me`, deciding with `policy`, storing into `cache`.
    pub fn new(
        now: Instant,
        me: PeerInfo,
        content: ContentId,
        cfg: SwarmConfig,
        policy: Box<dyn OverlayPolicy>,
        cache: Arc<dyn FragmentCache>,
    ) -> Self {
        let mut me = me;
        me.role = cfg.role;
        Swarm {
            me,
            content,
            policy,
            cache,
            views: Vec::new(),
            keys: Vec::new(),
            links: Vec::new(),
            candidates: Vec::new(),
            connecting: BTreeMap::new(),
            known: known::Known::default(),
            wants: BTreeMap::new(),
            next_request_id: 1,
            out: VecDeque::new(),
            pending_have: BTreeMap::new(),
            have_flush_at: None,
            uploads: VecDeque::new(),
            parked: Vec::new(),
            expected: Vec::new(),
            slot_freed: false,
            draining: Vec::new(),
            unsent: BTreeMap::new(),
            upload_tokens: 0.0,
            upload_last_refill: now,
            upload_wake_at: now,
            next_review: now,
            next_expire: now + HOUSEKEEPING,
            origin_bps: None,
            slots: cfg.upload_slots,
            top_bps: 0,
            stats: SwarmStats::default(),
            banned: VecDeque::new(),
            vouched: BTreeMap::new(),
            vouched_order: VecDeque::new(),
            early_hashes: BTreeMap::new(),
            cc_priority: BTreeMap::new(),
            urgency_wake: None,
            cfg,
        }
    }

    /// Uploads served at once (see [`SwarmConfig::slots_from_uplink`]).
    pub fn upload_slots(&self) -> usize {
        self.slots
    }

    /// A listed fragment's bitrate: the highest so far is what policies measure uplinks
    /// against, and with `slots_from_uplink` the slots follow it.
    fn note_bitrate(&mut self, info: &FragmentInfo) {
        let secs = info.duration.as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        let bps = (info.size_estimate as f64 * 8.0 / secs) as u64;
        if bps <= self.top_bps {
            return;
        }
        self.top_bps = bps;
        self.size_slots();
    }

    /// The uploads' rate limit in bytes per second: the configured cap, else the pacing share
    /// of the advertised uplink when it is known (none when neither applies).
    pub(crate) fn upload_cap(&self) -> Option<u64> {
        self.cfg.upload_cap_bps.or_else(|| {
            if !self.cfg.uplink_known {
                return None;
            }
            let permille = u64::from(self.cfg.upload_pacing_permille?);
            let uplink = u64::from(self.me.upload_kbps).checked_mul(1000 / 8)?;
            (uplink > 0).then(|| (uplink.saturating_mul(permille) / 1000).max(1))
        })
    }

    /// Applies the upload-slot rule ([`crate::profile::upload_slots`]) for the highest bitrate
    /// listed so far, when the slots follow the uplink.
    fn size_slots(&mut self) {
        self.slots = if self.cfg.slots_from_uplink && self.top_bps > 0 {
            crate::profile::upload_slots(self.me.upload_kbps, self.top_bps, self.cfg.upload_slots)
        } else {
            self.cfg.upload_slots
        };
    }

    /// The settings in force (a role change applies its profile to them).
    pub fn config(&self) -> &SwarmConfig {
        &self.cfg
    }

    /// This agent.
    pub fn me(&self) -> &PeerInfo {
        &self.me
    }

    /// Sets where this agent sits (e.g. as the tracker placed it); policies and the next
    /// `Hello`s use it.
    pub fn set_locality(&mut self, locality: hive_core::Locality) {
        self.me.locality = locality;
    }

    /// Replaces the admission token presented in later `Hello`s (a renewed registrar token),
    /// and greets every neighbour again with it: a neighbour checks tokens again as they
    /// expire and drops a peer that did not present a renewed one. An unchanged token changes
    /// nothing.
    pub fn set_token(&mut self, token: bytes::Bytes) {
        if token == self.cfg.token {
            return;
        }
        self.cfg.token = token;
        let peers: Vec<PeerId> = self.views.iter().map(|v| v.info.id).collect();
        for peer in peers {
            self.send(peer, Message::Hello(self.hello()), Class::Control);
        }
    }

    /// The counters.
    pub fn stats(&self) -> SwarmStats {
        self.stats
    }

    /// Connected neighbours, as policies see them.
    pub fn neighbours(&self) -> &[NeighbourView] {
        &self.views
    }

    /// Known peers not connected.
    pub fn candidates(&self) -> &[PeerInfo] {
        &self.candidates
    }

    /// The policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// The next output, if any. Drain until `None` after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Swarm::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_review.min(self.next_expire);
        if let Some(h) = self.have_flush_at {
            t = t.min(h);
        }
        if !self.uploads.is_empty() && self.upload_cap().is_some() {
            t = t.min(self.upload_wake_at);
        }
        if let Some(u) = self.urgency_wake {
            t = t.min(u);
        }
        for w in self.wants.values() {
            if let Some(x) = w.wake_at() {
                t = t.min(x);
            }
        }
        for p in self.parked.iter().chain(&self.expected) {
            t = t.min(p.expires_at());
        }
        Some(t)
    }

    /// Advances timers: request give-ups, waits, Have batches, uploads, neighbour review,
    /// cache expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_have_if_due(now);
        self.pump_uploads(now);
        self.wake_wants(now);
        self.expire_parked(now);
        self.expire_expected(now);
        if now >= self.next_review {
            self.next_review = now + self.cfg.neighbour_review;
            self.review_neighbours(now);
        }
        if now >= self.next_expire {
            self.next_expire = now + HOUSEKEEPING;
            self.cache.expire(now);
            self.forget_old_fragments();
            self.connecting
                .retain(|_, t| now.saturating_duration_since(*t) < Duration::from_secs(10));
        }
    }

    /// Whether the engine sets each uploading connection's congestion-control priority from
    /// the urgency of its uploads ([`SwarmConfig::priority_follows_urgency`]), changed at run
    /// time: a driver that fixes one priority for every connection (`hive agent --priority P`)
    /// turns it off; turned on again, every upload's priority is sent anew.
    pub fn set_priority_follows_urgency(&mut self, now: Instant, follow: bool) {
        self.cfg.priority_follows_urgency = follow;
        // Forget what was asked: once following again, every upload's priority is sent anew
        // (the driver may have set others meanwhile).
        self.cc_priority.clear();
        if follow {
            self.follow_urgency(now);
        } else {
            self.urgency_wake = None;
        }
    }

    /// This agent's role changed (a tracker promoted it to supernode): the policy sees the new
    /// role from now on, and every neighbour is greeted again so that its view shows it. A
    /// consume-only agent stays one (it never uploads), and an unchanged role changes nothing.
    ///
    /// The role's [`RoleProfile`](crate::RoleProfile) applies from now on (neighbours, upload
    /// slots, queueing): a promoted supernode keeps as many neighbours and serves as a
    /// simulated one does. Neighbours beyond a smaller limit are pruned at the next review.
    pub fn set_role(&mut self, _now: Instant, role: Role) {
        if !self.me.role.takes(role) {
            return;
        }
        self.me.role = role;
        crate::RoleProfile::of(role).apply_as(role, &mut self.cfg);
        self.size_slots();
        let peers: Vec<PeerId> = self.views.iter().map(|v| v.info.id).collect();
        for peer in peers {
            self.send(peer, Message::Hello(self.hello()), Class::Control);
        }
    }

    /// Peers to consider, from the tracker (or the operator): their roles are the tracker's word,
    /// the only one a neighbour's supernode or seeder role is believed on (see
    /// [`Swarm::believed_role`]).
    pub fn handle_candidates(&mut self, now: Instant, peers: Vec<PeerInfo>) {
        for p in &peers {
            self.vouch(p.id, p.role);
        }
        self.add_candidates(now, peers);
    }

    /// Remembers the role the tracker lists `peer` with, and applies it to a neighbour.
    fn vouch(&mut self, peer: PeerId, role: Role) {
        if self.vouched.insert(peer, role).is_none() {
            self.vouched_order.push_back(peer);
            while self.vouched_order.len() > MAX_VOUCHED {
                if let Some(old) = self.vouched_order.pop_front() {
                    self.vouched.remove(&old);
                }
            }
        }
        let trusting = self.trusts_claims();
        self.with_view(peer, |v| {
            if privileged(role) {
                v.info.role = role;
            } else if privileged(v.info.role) && !trusting {
                v.info.role = Role::Peer;
            }
        });
    }

    /// Whether this agent believes a neighbour's own word for its role: supernodes and seeders
    /// do (a branch supernode dials the gateway site's, whose tracker replies need not list it;
    /// a liar gains an upload slot there, not a site's traffic).
    fn trusts_claims(&self) -> bool {
        privileged(self.me.role)
    }

    /// The role a neighbour claiming `claimed` is taken for: a supernode or seeder role only
    /// when the tracker listed it so (or this agent is a supernode, see `trusts_claims`), an
    /// ordinary peer otherwise; other roles (peer, consume-only) as claimed, since they only
    /// limit their holder. Upload capacity claims are capped apart (1 Gbit/s).
    pub fn believed_role(&self, peer: &PeerId, claimed: Role) -> Role {
        if !privileged(claimed) || self.trusts_claims() {
            return claimed;
        }
        match self.vouched.get(peer) {
            Some(&r) if privileged(r) => r,
            _ => Role::Peer,
        }
    }

    /// Candidates from anywhere (a neighbour's peer exchange too): roles as believed.
    fn add_candidates(&mut self, now: Instant, peers: Vec<PeerInfo>) {
        let before = self.candidates.len();
        for mut p in peers {
            p.role = self.believed_role(&p.id, p.role);
            if p.id == self.me.id
                || self.is_banned(&p.id)
                || self.is_neighbour(&p.id)
                || self.candidates.iter().any(|c| same_id(&c.id, &p.id))
            {
                continue;
            }
            if self.candidates.len() >= self.cfg.max_candidates {
                break;
            }
            self.candidates.push(p);
        }
        if self.candidates.len() > before && self.views.len() + self.connecting.len() < FEW {
            // New candidates for an agent with hardly a neighbour (it has just joined, or came
            // before the agents it needs, such as a branch supernode before any at the gateway
            // site): build the neighbourhood now rather than at the next review. (With four
            // for "hardly", wan-6000 ran 9% slower.)
            self.review_neighbours(now);
        }
    }

    /// A connection to `peer` is up (dialled or accepted). The engine greets it.
    pub fn handle_peer_connected(&mut self, now: Instant, peer: PeerInfo) {
        let mut peer = peer;
        peer.role = self.believed_role(&peer.id, peer.role);
        self.connecting.remove(&peer.id);
        self.candidates.retain(|c| !same_id(&c.id, &peer.id));
        if self.is_neighbour(&peer.id) || peer.id == self.me.id {
            return;
        }
        if self.is_banned(&peer.id) {
            self.out.push_back(Output::Disconnect {
                peer: peer.id,
                reason: ByeReason::BadData,
            });
            return;
        }
        if self.views.len() >= self.cfg.max_neighbours + self.cfg.inbound_slack {
            // Full: refuse politely; the other side looks elsewhere.
            self.send(
                peer.id,
                Message::Bye(Bye {
                    reason: ByeReason::Pruned,
                    detail: "neighbour limit".into(),
                }),
                Class::Control,
            );
            self.out.push_back(Output::Disconnect {
                peer: peer.id,
                reason: ByeReason::Pruned,
            });
            return;
        }
        let view = NeighbourView {
            info: peer.clone(),
            have: Default::default(),
            throughput_bps: None,
            rtt: None,
            choked: false,
            inflight_requests: 0,
            bytes_from: 0,
            bytes_to: 0,
            connected_at: now,
        };
        let pos = self.views.partition_point(|v| v.info.id < peer.id);
        self.views.insert(pos, view);
        self.keys.insert(pos, id_key(&peer.id));
        self.links.insert(pos, Link::default());
        self.send(peer.id, Message::Hello(self.hello()), Class::Control);
        if let Some(h) = self.snapshot_have() {
            self.send(peer.id, Message::Have(h), Class::Control);
        }
    }

    /// A dial requested by [`Output::Connect`] failed.
    pub fn handle_connect_failed(&mut self, _now: Instant, peer: PeerId) {
        self.connecting.remove(&peer);
        self.candidates.retain(|c| !same_id(&c.id, &peer));
    }

    /// The connection to `peer` ended (by either side, or by the transport).
    pub fn handle_peer_disconnected(&mut self, now: Instant, peer: PeerId) {
        let Some(i) = self.slot(&peer) else {
            return;
        };
        self.views.remove(i);
        self.keys.remove(i);
        let link = self.links.remove(i);
        self.uploads.retain(|u| u.to != peer);
        self.cc_priority.remove(&peer);
        self.unsent.remove(&peer);
        self.draining.retain(|(p, _)| *p != peer);
        for (_, fragment) in link.requests {
            self.abandon_peer_request(now, fragment, peer);
        }
    }

    /// A message from a neighbour.
    pub fn handle_message(&mut self, now: Instant, from: PeerId, message: Message) {
        let Some(i) = self.slot(&from) else {
            return;
        };
        // Nothing but a Hello (or a goodbye) counts before the neighbour's Hello: whatever it
        // announces, asks or offers waits until it has said who it is.
        if !self.links[i].hello && !matches!(message, Message::Hello(_) | Message::Bye(_)) {
            return;
        }
        match message {
            Message::Hello(h) => self.on_hello(now, from, h),
            Message::Have(h) => self.on_have(now, from, h),
            Message::Request(r) => self.on_request(now, from, r),
            Message::Data(d) => self.on_data(now, from, d),
            Message::Cancel(c) => self.on_cancel(from, c.request_id),
            Message::Reject(r) => self.on_reject(now, from, r.request_id, r.reason),
            Message::Choke => self.with_view(from, |v| v.choked = true),
            Message::Unchoke => self.with_view(from, |v| v.choked = false),
            Message::PeerExchange(px) => {
                // A neighbour's suggestions are only candidates (each is authenticated by the
                // transport when dialled), and only a few per message count.
                // Their roles are believed only on the tracker's word.
                let mut peers = px.peers;
                peers.truncate(MAX_EXCHANGED);
                self.add_candidates(now, peers)
            }
            Message::Bye(_) => {
                self.handle_peer_disconnected(now, from);
                self.out.push_back(Output::Disconnect {
                    peer: from,
                    reason: ByeReason::Leaving,
                });
            }
            Message::Ping(p) => {
                self.send(from, Message::Pong(Pong { nonce: p.nonce }), Class::Control)
            }
            Message::Pong(_) => {}
            // Kinds added by later protocol versions are ignored.
            _ => {}
        }
    }

    fn hello(&self) -> Hello {
        Hello {
            versions: hive_core::wire::SUPPORTED_VERSIONS.to_vec(),
            peer: self.me.id,
            content: self.content,
            role: self.me.role,
            upload_kbps: self.me.upload_kbps,
            locality: self.me.locality.clone(),
            token: self.cfg.token.clone(),
        }
    }

    fn on_hello(&mut self, now: Instant, from: PeerId, h: Hello) {
        if h.content != self.content || h.peer != from {
            self.drop_peer(
                now,
                from,
                ByeReason::ProtocolError,
                "wrong swarm or identity in Hello",
            );
            return;
        }
        if let Some(l) = self.link_mut(&from) {
            l.hello = true;
        }
        let role = self.believed_role(&from, h.role);
        self.with_view(from, |v| {
            v.info.role = role;
            v.info.upload_kbps = h.upload_kbps.min(MAX_CLAIMED_UPLOAD_KBPS);
            v.info.locality = h.locality;
        });
    }

    fn on_have(&mut self, now: Instant, from: PeerId, h: Have) {
        let content = self.content;
        let snapshot = matches!(h.kind, hive_core::wire::HaveKind::Snapshot);
        // Fragments we are waiting for and that this announcement offers are decided again at
        // once (others are decided at the time their policy asked to wait until).
        let offered = |id: &FragmentId| {
            h.tracks
                .iter()
                .any(|(t, th)| *t == id.track && th.seqs.contains(id.sequence))
        };
        let ready: Vec<FragmentId> = self
            .wants
            .iter()
            .filter(|(id, w)| w.is_waiting() && offered(id))
            .map(|(id, _)| *id)
            .collect();
        self.with_view(from, |v| {
            if snapshot {
                v.have.clear();
            }
            for (track, th) in h.tracks {
                let set = v.have.entry(content, track);
                if th.floor > 0 {
                    set.remove_below(th.floor);
                }
                set.union_with(&th.seqs);
                // A neighbour's view is bounded: past the limit, its oldest ranges go (the
                // newest are what it will be asked for).
                let excess = set.range_count().saturating_sub(MAX_VIEW_RANGES);
                if excess > 0 {
                    let floor = set.ranges().nth(excess).map(|r| *r.start());
                    if let Some(floor) = floor {
                        set.remove_below(floor);
                    }
                }
            }
        });
        for id in ready {
            self.decide(now, id);
        }
    }

    /// Where `peer` sits in `views`, `keys` and `links`, if it is a neighbour.
    #[inline]
    fn slot(&self, peer: &PeerId) -> Option<usize> {
        let k = id_key(peer);
        let mut i = self.keys.partition_point(|&x| x < k);
        while self.keys.get(i) == Some(&k) {
            if self.views.get(i).is_some_and(|v| v.info.id == *peer) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// Whether `peer` served bytes that failed verification.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.iter().any(|b| same_id(b, peer))
    }

    /// Refuses `peer` from now on: it served bytes that failed verification.
    fn ban(&mut self, now: Instant, peer: PeerId, fragment: FragmentId) {
        if !self.is_banned(&peer) {
            if self.banned.len() >= MAX_BANNED {
                self.banned.pop_front();
            }
            self.banned.push_back(peer);
            self.stats.bad_peers += 1;
        }
        self.candidates.retain(|c| !same_id(&c.id, &peer));
        self.drop_peer(
            now,
            peer,
            ByeReason::BadData,
            "fragment failed its trusted hash",
        );
        self.out.push_back(Output::BadPeer { peer, fragment });
    }

    /// Whether `peer` is a connected neighbour.
    #[inline]
    fn is_neighbour(&self, peer: &PeerId) -> bool {
        self.slot(peer).is_some()
    }

    /// The link to `peer`, if it is a neighbour.
    #[inline]
    fn link_mut(&mut self, peer: &PeerId) -> Option<&mut Link> {
        let i = self.slot(peer)?;
        self.links.get_mut(i)
    }

    fn with_view(&mut self, peer: PeerId, f: impl FnOnce(&mut NeighbourView)) {
        if let Some(i) = self.slot(&peer) {
            f(&mut self.views[i]);
        }
    }

    fn send(&mut self, to: PeerId, message: Message, class: Class) {
        self.out.push_back(Output::Send { to, message, class });
    }

    fn drop_peer(&mut self, now: Instant, peer: PeerId, reason: ByeReason, detail: &str) {
        if self.is_neighbour(&peer) {
            self.send(
                peer,
                Message::Bye(Bye {
                    reason,
                    detail: detail.to_string(),
                }),
                Class::Control,
            );
            self.handle_peer_disconnected(now, peer);
            self.out.push_back(Output::Disconnect { peer, reason });
        }
    }

    /// The policy, and the local view it decides on (disjoint borrows of `self`), showing the
    /// first `shown` neighbours (all of them with `usize::MAX`).
    fn policy_and_view(&mut self, shown: usize) -> (&mut dyn OverlayPolicy, LocalView<'_>) {
        let view = LocalView {
            me: &self.me,
            neighbours: &self.views[..shown.min(self.views.len())],
            candidates: &self.candidates,
            max_neighbours: self.cfg.max_neighbours,
            origin_throughput_bps: self.origin_bps,
            top_bitrate_bps: (self.top_bps > 0).then_some(self.top_bps),
        };
        (self.policy.as_mut(), view)
    }

    fn review_neighbours(&mut self, now: Instant) {
        let (policy, view) = self.policy_and_view(usize::MAX);
        let plan = policy.plan_neighbours(now, &view);
        for peer in plan.drop {
            self.drop_peer(now, peer, ByeReason::Pruned, "pruned by policy");
        }
        let mut room = self
            .cfg
            .max_neighbours
            .saturating_sub(self.views.len() + self.connecting.len());
        for id in plan.connect {
            if room == 0 {
                break;
            }
            if self.is_neighbour(&id) || self.connecting.contains_key(&id) {
                continue;
            }
            if let Some(info) = self.candidates.iter().find(|c| c.id == id).cloned() {
                self.connecting.insert(id, now);
                self.out.push_back(Output::Connect(info));
                room -= 1;
            }
        }
    }

    fn is_uploader(&self) -> bool {
        self.me.role != Role::ConsumeOnly
    }

    /// Distinct neighbours' ids (for tests and reports).
    pub fn neighbour_ids(&self) -> BTreeSet<PeerId> {
        self.views.iter().map(|v| v.info.id).collect()
    }
}
